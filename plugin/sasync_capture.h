/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_capture sasync_capture
 * @{ @ingroup sasync
 */

#ifndef SASYNC_CAPTURE_H_
#define SASYNC_CAPTURE_H_

#include "sasync_link.h"
#include "sasync_role.h"
#include "sasync_counters.h"

#include "sasync_msg.h"
#include "sasync_keystore.h"

#include <bus/listeners/listener.h>

typedef struct sasync_capture_t sasync_capture_t;

/** mid_sync = coalesced: seconds between message ID records of an IKEv2 SA
 * whose peer supports RFC 6311 */
#define SASYNC_MID_COALESCE 300

/**
 * Bus listener of the active node: turns IKE and CHILD SA events into sync
 * records.
 *
 * It keeps the key inputs of each IKE SA (the key exchange secret, nonces
 * and, for rekeyed SAs, the previous SK_d read from the rekeyed SA's keymat)
 * and the keys of each CHILD SA in the key store until they are gone. An
 * IKE SA is sent once it is established, a rekeyed one once charon moved
 * identities, virtual IPs and CHILD SAs to it (its record names the SA it
 * replaces, as does the record of an IKEv1 reauthentication); a CHILD SA
 * installed before its IKE SA was sent is held back until then, so a
 * standby never sees a CHILD SA without its IKE SA.
 */
struct sasync_capture_t {

	/**
	 * Implements the bus listener interface.
	 */
	listener_t listener;

	/**
	 * Send every synced IKE SA and its CHILD SAs again, then RESYNC_DONE
	 * (bulk resync of a node that (re)joined). Runs in a job; only as
	 * primary. Only the node that needs it gets it: the other standbys
	 * are current and keep their state without a full resync.
	 *
	 * @param to		partner node to resync, NULL for all of them
	 */
	void (*resync)(sasync_capture_t *this, host_t *to);

	/**
	 * Progress of the latest bulk resync: IKE SAs gone through of those
	 * there were when it started. It sends at the pace its partners'
	 * queues drain, so at 100,000 SAs this is where it stands.
	 *
	 * @param sent		IKE SAs gone through
	 * @param total		IKE SAs at its start, 0 if there was none
	 */
	void (*get_resync_progress)(sasync_capture_t *this, u_int *sent,
								u_int *total);

	/**
	 * As standby: ask the primary for a bulk resync (a RESYNC_REQUEST).
	 */
	void (*request_resync)(sasync_capture_t *this);

	/**
	 * Destroy a sasync_capture_t.
	 */
	void (*destroy)(sasync_capture_t *this);
};

/**
 * Create the capture listener.
 *
 * @param link			link to send records on
 * @param role			role of this node, records are only sent as primary
 * @param counters		counters to update
 * @param keys			key store to keep the key inputs in
 */
sasync_capture_t *sasync_capture_create(sasync_link_t *link, sasync_role_t *role,
										sasync_counters_t *counters,
										sasync_keystore_t *keys);

#endif /** SASYNC_CAPTURE_H_ @}*/
