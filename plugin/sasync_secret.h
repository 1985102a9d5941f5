/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_secret sasync_secret
 * @{ @ingroup sasync
 */

#ifndef SASYNC_SECRET_H_
#define SASYNC_SECRET_H_

#include "sasync_counters.h"

#include <library.h>

/** a key of the sync channel has at least this many bytes */
#define SASYNC_KEY_MIN 32

/** a key file holds this many keys at most: the one used to connect, and
 * one more accepted while the keys are being changed */
#define SASYNC_KEYS_MAX 2

/** how to make a key, quoted in the errors */
#define SASYNC_KEY_HOWTO "(umask 077; echo \"0s$(head -c 32 /dev/urandom | " \
						 "base64)\" > /etc/swanctl/private/sasync.key)"

/**
 * Parse one key: "0x" and hex digits, or "0s" and base64, as strongSwan
 * writes binary secrets, decoding to at least SASYNC_KEY_MIN bytes that look
 * random (a passphrase is refused: the key is used without stretching).
 *
 * @param str			key as written
 * @param key			allocated key, on success
 * @return				NULL on success, else why the key is refused
 */
char *sasync_secret_parse(char *str, chunk_t *key);

/**
 * Load the keys of the sync channel from the settings: the file named by
 * charon.plugins.sasync.secret_file (one key per line, owned by root or
 * charon's user, not readable by others), or charon.plugins.sasync.secret;
 * refused if more than one of these and secret_id is set. Errors are
 * logged, with the command that makes a key.
 *
 * @param keys			SASYNC_KEYS_MAX keys, the first used to connect;
 *						unused ones empty; to wipe with sasync_secret_clear()
 * @return				number of keys loaded, 0 if none is valid
 */
int sasync_secret_load(chunk_t keys[SASYNC_KEYS_MAX]);

/**
 * The identity of the keys in charon's credential manager, if that is the
 * only key source set (charon.plugins.sasync.secret_id).
 *
 * @return				identity (allocated), NULL if secret_id is not set,
 *						or secret or secret_file is set as well (refused by
 *						sasync_secret_load())
 */
identification_t *sasync_secret_id();

/**
 * Look the keys of the sync channel up in charon's credential manager: the
 * IKE shared keys owned by exactly id (as swanctl loads the secrets section
 * "ike-<name> { id = <id> secret = ... }"), the first found first, each
 * checked as sasync_secret_parse() checks a key.
 *
 * @param id			identity owning the keys
 * @param keys			SASYNC_KEYS_MAX keys, allocated; unused ones empty;
 *						to wipe with sasync_secret_clear()
 * @param weak			number of keys of id refused (short or not random)
 * @return				number of keys found
 */
int sasync_secret_lookup(identification_t *id, chunk_t keys[SASYNC_KEYS_MAX],
						 int *weak);

typedef struct sasync_secret_creds_t sasync_secret_creds_t;

/**
 * Keys of the sync channel from charon's credential manager, looked up each
 * time the link needs them, as swanctl --load-creds changes them at any time.
 */
struct sasync_secret_creds_t {

	/**
	 * Look the keys up (sasync_secret_lookup()), logging when what is found
	 * changes; a lookup without a valid key counts as sync-no-key. Not
	 * thread-safe: the link calls it with its lock held.
	 *
	 * @param keys		as in sasync_secret_lookup()
	 * @return			number of keys found
	 */
	int (*get_keys)(sasync_secret_creds_t *this,
					chunk_t keys[SASYNC_KEYS_MAX]);

	/**
	 * Destroy a sasync_secret_creds_t.
	 */
	void (*destroy)(sasync_secret_creds_t *this);
};

/**
 * Create the key source of an identity.
 *
 * @param id			identity owning the keys, adopted
 * @param counters		counters to update
 * @return				key source
 */
sasync_secret_creds_t *sasync_secret_creds_create(identification_t *id,
												  sasync_counters_t *counters);

/**
 * Wipe and free keys.
 *
 * @param keys			SASYNC_KEYS_MAX keys, empty afterwards
 */
void sasync_secret_clear(chunk_t keys[SASYNC_KEYS_MAX]);

#endif /** SASYNC_SECRET_H_ @}*/
