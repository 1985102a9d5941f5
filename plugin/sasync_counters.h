/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_counters sasync_counters
 * @{ @ingroup sasync
 */

#ifndef SASYNC_COUNTERS_H_
#define SASYNC_COUNTERS_H_

#include <library.h>

typedef enum sasync_counter_t sasync_counter_t;
typedef struct sasync_counters_t sasync_counters_t;

/**
 * Plugin counters, shown in the "ha" section of the plugin's vici stats.
 */
enum sasync_counter_t {
	/** bulk resyncs completed, sent or received */
	SASYNC_CTR_RESYNC,
	/** IKE/ISAKMP SA records synced (sent on the active, applied on a standby) */
	SASYNC_CTR_VIKE_SYNC,
	/** CHILD/IPsec SA records synced (sent on the active, applied on a standby) */
	SASYNC_CTR_CONN_SYNC,
	/** frames sent on the sync channel */
	SASYNC_CTR_SYNC_TX,
	/** frames received and accepted on the sync channel */
	SASYNC_CTR_SYNC_RX,
	/** frames rejected for a bad length or a malformed body */
	SASYNC_CTR_SYNC_RX_LEN_BAD,
	/** frames rejected because authentication/decryption failed */
	SASYNC_CTR_SYNC_RX_AUTH_BAD,
	/** frames rejected as replayed or reordered */
	SASYNC_CTR_SYNC_RX_REPLAY,
	/** IKEv2 message ID updates synced */
	SASYNC_CTR_MID_SYNC,
	/** RFC 6311 message ID synchronisations completed after promotion */
	SASYNC_CTR_MID_SYNC_RFC6311,
	/** IKE or CHILD SA deletes synced */
	SASYNC_CTR_DELETE_SYNC,
	/** promotions to the active role */
	SASYNC_CTR_PROMOTIONS,
	/** demotions to the standby role */
	SASYNC_CTR_DEMOTIONS,
	/** CHILD SA rekeys forced by the first outbound use after promotion */
	SASYNC_CTR_FORCED_REKEYS,
	/** records that could not be applied (unknown config, missing IKE SA...) */
	SASYNC_CTR_APPLY_FAILED,
	/** CHILD SA records waiting for their IKE SA */
	SASYNC_CTR_CHILD_WAITING,
	/** records dropped after waiting too long for their connection or
	 * IKE SA (also counted in apply-failed) */
	SASYNC_CTR_WAIT_EXPIRED,
	/** forced rekeys retried because the previous try did not complete */
	SASYNC_CTR_FORCED_REKEY_RETRIES,
	/** restored SAs announced up (updown) at promotion */
	SASYNC_CTR_UPDOWN,
	/** IKE SAs a standby refused to initiate (sasync_standby_t) */
	SASYNC_CTR_INITIATE_REFUSED,
	/** start actions a promoted node ran for CHILD configs it did not hold */
	SASYNC_CTR_START_ACTIONS,
	/** partners declared dead after heartbeat_lost missed heartbeats */
	SASYNC_CTR_HEARTBEAT_LOST,
	/** promotions of this node by the election (sasync_cluster_t) */
	SASYNC_CTR_ELECTIONS,
	/** another primary seen while primary; one of the two demoted */
	SASYNC_CTR_SPLIT_BRAIN,
	/** cluster addresses found missing on the primary or left on a standby,
	 * and repaired (sasync_address_t) */
	SASYNC_CTR_ADDRESS_REPAIRS,
	/** passive SAs a full resync did not name, destroyed (sasync_resync_t) */
	SASYNC_CTR_RESYNC_REMOVED,
	/** sync connections refused before authentication: unknown source, full
	 * slots, a reflection, a wrong node name (sasync_link_t) */
	SASYNC_CTR_SYNC_REJECTED,
	/** records dropped from a full send queue; the partner gets a resync
	 * once the queue drained (sasync_link_t) */
	SASYNC_CTR_SYNC_DROPPED,
	/** records naming an SA this node runs itself, not one sync restored
	 * or demotion handed over (sasync_validate_t; also in apply-failed) */
	SASYNC_CTR_REJECT_OWN_SA,
	/** CHILD SA records whose traffic selectors the child config does not
	 * allow (also in apply-failed) */
	SASYNC_CTR_REJECT_TS,
	/** IKE SA records whose addresses the IKE config does not allow (also
	 * in apply-failed) */
	SASYNC_CTR_REJECT_HOSTS,
	/** records whose key or IV lengths are not those of their proposal
	 * (also in apply-failed) */
	SASYNC_CTR_REJECT_KEYS,
	/** records dropped because too many records wait already (also in
	 * apply-failed) */
	SASYNC_CTR_WAIT_DROPPED,
	/** resync requests (or links up) within the minimum interval of the
	 * last bulk resync to that partner, coalesced into one at its end */
	SASYNC_CTR_RESYNC_DEFERRED,
	/** message ID updates not sent (mid_sync = coalesced: RFC 6311 covers
	 * them after a promotion) */
	SASYNC_CTR_MID_SYNC_COALESCED,
	/** key lookups of secret_id that found no valid key in charon's
	 * credentials (none loaded, or too short or not random): a connection
	 * not made or refused (sasync_secret_creds_t) */
	SASYNC_CTR_SYNC_NO_KEY,
	/** records a demoted node sent about SAs it still acted on (exchanges
	 * in flight at the demotion), for the new primary */
	SASYNC_CTR_HANDOVER_SENT,
	/** such records a primary applied */
	SASYNC_CTR_HANDOVER_APPLIED,
	/** rekeyed CHILD SAs a promoted node deleted at the peer: the failed
	 * node's delete of them may never have reached it */
	SASYNC_CTR_REKEYED_DELETED,
	/** passive IKE SAs a standby lost without sync saying so (a terminate
	 * on the standby); each makes it ask for a resync */
	SASYNC_CTR_PASSIVE_LOST,
	/** sync connections closed because they made no progress for 30 s
	 * (nothing written and nothing acknowledged): a partner that takes no
	 * records; what they held is sent again on the next connection */
	SASYNC_CTR_SYNC_STALLED,
	/** IKE and CHILD SAs a primary deleted at the peer because the node
	 * before it started deleting them just before a switchover or
	 * demotion: its DELETE may never have reached the peer */
	SASYNC_CTR_HANDOVER_DELETED,
	/** graceful switchovers this node handed its role over in
	 * (sasync_switchover_t) */
	SASYNC_CTR_SWITCHOVERS,
	/** exchanges in flight such a switchover let complete first */
	SASYNC_CTR_SWITCHOVER_WAITED,
	/** exchanges still in flight when it timed out: cut, as by an
	 * immediate demotion (the peer's answer goes to the new primary) */
	SASYNC_CTR_SWITCHOVER_CUT,
	/** switchovers this node completed without the primary's hand-over
	 * (it did not hand over in time) */
	SASYNC_CTR_SWITCHOVER_FORCED,
	SASYNC_CTR_MAX,
};

/**
 * Names of the counters, as shown over vici ("vike-sync", ...).
 */
extern enum_name_t *sasync_counter_names;

/**
 * Thread-safe counter set, plus gauges that are set rather than counted.
 */
struct sasync_counters_t {

	/**
	 * Increment a counter by one.
	 */
	void (*inc)(sasync_counters_t *this, sasync_counter_t counter);

	/**
	 * Add n to a counter.
	 */
	void (*add)(sasync_counters_t *this, sasync_counter_t counter, u_int n);

	/**
	 * Get the current value of a counter.
	 */
	uint64_t (*get)(sasync_counters_t *this, sasync_counter_t counter);

	/**
	 * Set the current depth of the send queue (gauge).
	 */
	void (*set_queue_depth)(sasync_counters_t *this, u_int depth);

	/**
	 * Get the current depth of the send queue.
	 */
	u_int (*get_queue_depth)(sasync_counters_t *this);

	/**
	 * Record the lag of a received record, in ms (updates last and max).
	 */
	void (*record_lag)(sasync_counters_t *this, uint32_t ms);

	/**
	 * Get the last and maximum lag in ms.
	 */
	void (*get_lag)(sasync_counters_t *this, uint32_t *last, uint32_t *max);

	/**
	 * Reset all counters (not gauges) to zero.
	 */
	void (*reset)(sasync_counters_t *this);

	/**
	 * Destroy a sasync_counters_t.
	 */
	void (*destroy)(sasync_counters_t *this);
};

/**
 * Create a counter set, all zero.
 */
sasync_counters_t *sasync_counters_create();

#endif /** SASYNC_COUNTERS_H_ @}*/
