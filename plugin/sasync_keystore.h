/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_keystore sasync_keystore
 * @{ @ingroup sasync
 */

#ifndef SASYNC_KEYSTORE_H_
#define SASYNC_KEYSTORE_H_

#include "sasync_msg.h"

#include <sa/ike_sa.h>
#include <sa/child_sa.h>
#include <collections/array.h>

typedef struct sasync_keystore_t sasync_keystore_t;
typedef struct sasync_ike_keys_t sasync_ike_keys_t;
typedef struct sasync_child_keys_t sasync_child_keys_t;

/**
 * Key inputs of one IKE SA and what its standbys were last told of it.
 *
 * charon keeps derived keys only inside the keymat; a standby has to
 * derive them again, from the same inputs.
 */
struct sasync_ike_keys_t {
	/** key exchange shared secret */
	chunk_t secret;
	/** nonces */
	chunk_t nonce_i;
	chunk_t nonce_r;
	/** SK_d and PRF of the SA this one rekeyed (IKEv2), if any */
	chunk_t old_skd;
	uint16_t old_prf;
	/** IKEv1: public values, pre-shared key, auth method, phase 1 IV */
	chunk_t local_ke;
	chunk_t remote_ke;
	chunk_t psk;
	auth_method_t auth;
	chunk_t iv;
	/** next message IDs (IKEv2) or DPD sequence numbers (IKEv1) */
	uint32_t mid_i;
	uint32_t mid_r;
	/** conditions and extensions when last sent */
	uint32_t conditions;
	uint32_t extensions;
	/** the standbys hold this IKE SA */
	bool synced;
	/** this node holds the IKE SA for the primary: the apply side restored
	 * it, or a demotion handed it over to the new primary. Records act on
	 * such SAs only, never on one the node runs itself */
	bool restored;
	/** the node held this IKE SA as primary when it was demoted: what it
	 * still does on it while it is not passive (an exchange in flight at
	 * the demotion) goes to the new primary (sasync_capture_t) */
	bool handover;
	/** id and unique id of the IKE SA this one replaces (IKEv2 rekey or
	 * IKEv1 reauthentication), until the standbys were told */
	ike_sa_id_t *replaces;
	u_int replaces_unique;
	/** CHILD_ADD records (sasync_msg_t*) held until the IKE SA is synced */
	array_t *held;
	/** inbound SPI and protocol of the CHILD SA this node proposed in a
	 * CREATE_CHILD_SA exchange it started and that is not answered yet */
	uint32_t pending_spi;
	protocol_id_t pending_protocol;
	/** promoted: its RFC 6311 message ID sync is still to be started
	 * (sasync_promote_sync_due()) */
	bool midsync_due;
	/** when message IDs were last sent (time_monotonic(), mid_sync =
	 * coalesced) */
	time_t mid_sent;
};

/**
 * Keys of one CHILD SA, from this node's point of view.
 */
struct sasync_child_keys_t {
	chunk_t encr_in;
	chunk_t integ_in;
	chunk_t encr_out;
	chunk_t integ_out;
	/** this node initiated the CHILD SA */
	bool initiator;
	/** the standbys hold (or were sent) this CHILD SA */
	bool synced;
};

/**
 * Key inputs of every IKE and CHILD SA this node holds, below both sides:
 * the capture side fills it from charon's bus on the active node, the apply
 * side from records on a standby. So a promoted standby can sync on what it
 * restored (failback), and both sides encode and decode the key attributes
 * of a record in one place.
 *
 * Entries are keyed by the local unique id of the SA. Every entry returned
 * is valid until unlock(): callers hold the lock while they use it.
 */
struct sasync_keystore_t {

	/**
	 * Lock the store (recursive).
	 */
	void (*lock)(sasync_keystore_t *this);

	/**
	 * Unlock the store.
	 */
	void (*unlock)(sasync_keystore_t *this);

	/**
	 * Entry of an IKE SA.
	 *
	 * @param unique	unique id of the IKE SA
	 * @param create	create an empty entry if there is none
	 * @return			entry, NULL if none (and create is FALSE)
	 */
	sasync_ike_keys_t *(*get_ike)(sasync_keystore_t *this, u_int unique,
								  bool create);

	/**
	 * Remove the entry of an IKE SA.
	 *
	 * @param unique	unique id of the IKE SA
	 * @return			removed entry (free it with sasync_ike_keys_destroy()),
	 *					NULL if none
	 */
	sasync_ike_keys_t *(*remove_ike)(sasync_keystore_t *this, u_int unique);

	/**
	 * Entry of a CHILD SA.
	 *
	 * @param unique	unique id of the CHILD SA
	 * @return			entry, NULL if none
	 */
	sasync_child_keys_t *(*get_child)(sasync_keystore_t *this, u_int unique);

	/**
	 * Keep the keys of a CHILD SA, replacing what there was.
	 *
	 * @param unique	unique id of the CHILD SA
	 * @param keys		keys, owned by the store
	 */
	void (*put_child)(sasync_keystore_t *this, u_int unique,
					  sasync_child_keys_t *keys);

	/**
	 * Forget the keys of a CHILD SA.
	 *
	 * @param unique	unique id of the CHILD SA
	 * @return			TRUE if the standbys held it
	 */
	bool (*remove_child)(sasync_keystore_t *this, u_int unique);

	/**
	 * Number of IKE and CHILD SA entries.
	 *
	 * @param children	count CHILD SAs instead of IKE SAs
	 */
	u_int (*get_count)(sasync_keystore_t *this, bool children);

	/**
	 * Mark every IKE SA entry as one a demotion hands over to the new
	 * primary (sasync_ike_keys_t.handover).
	 */
	void (*hand_over)(sasync_keystore_t *this);

	/**
	 * Destroy a sasync_keystore_t, wiping every key.
	 */
	void (*destroy)(sasync_keystore_t *this);
};

/**
 * Add the key inputs of an IKE SA to a record (IKE_ADD).
 *
 * @param keys		key inputs
 * @param version	IKE version of the SA
 * @param msg		record to add them to
 */
void sasync_ike_keys_encode(sasync_ike_keys_t *keys, ike_version_t version,
							sasync_msg_t *msg);

/**
 * Replace the key inputs of an IKE SA by those of a record.
 *
 * @param keys		entry to update
 * @param msg		IKE_ADD record
 * @return			FALSE if the record lacks the secret or a nonce
 */
bool sasync_ike_keys_decode(sasync_ike_keys_t *keys, sasync_msg_t *msg);

/**
 * Wipe and free an IKE SA entry.
 */
void sasync_ike_keys_destroy(sasync_ike_keys_t *keys);

/**
 * Add the keys of a CHILD SA to a record (CHILD_ADD).
 */
void sasync_child_keys_encode(sasync_child_keys_t *keys, sasync_msg_t *msg);

/**
 * Create CHILD SA keys from a CHILD_ADD record.
 *
 * @return			keys, marked synced
 */
sasync_child_keys_t *sasync_child_keys_decode(sasync_msg_t *msg);

/**
 * Destroy a checked out IKE SA this node holds for the primary because sync
 * says so (a delete, a rekey's take-over, a resync that does not name it),
 * so the capture side does not take its end for a loss
 * (sasync_keystore_sync_destroying()).
 *
 * @param ike_sa		IKE SA, checked out
 */
void sasync_keystore_sync_destroy(ike_sa_t *ike_sa);

/**
 * Whether the calling thread is in sasync_keystore_sync_destroy().
 */
bool sasync_keystore_sync_destroying();

/**
 * Create an empty key store.
 */
sasync_keystore_t *sasync_keystore_create();

#endif /** SASYNC_KEYSTORE_H_ @}*/
