/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_secret sasync_secret
 * @{ @ingroup sasync
 */

#ifndef SASYNC_SECRET_H_
#define SASYNC_SECRET_H_

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
 * charon's user, not readable by others), else charon.plugins.sasync.secret.
 * Errors are logged, with the command that makes a key.
 *
 * @param keys			SASYNC_KEYS_MAX keys, the first used to connect;
 *						unused ones empty; to wipe with sasync_secret_clear()
 * @return				number of keys loaded, 0 if none is valid
 */
int sasync_secret_load(chunk_t keys[SASYNC_KEYS_MAX]);

/**
 * Wipe and free keys.
 *
 * @param keys			SASYNC_KEYS_MAX keys, empty afterwards
 */
void sasync_secret_clear(chunk_t keys[SASYNC_KEYS_MAX]);

#endif /** SASYNC_SECRET_H_ @}*/
