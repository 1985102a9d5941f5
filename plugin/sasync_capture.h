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

#include <bus/listeners/listener.h>

typedef struct sasync_capture_t sasync_capture_t;

/**
 * Bus listener of the active node: turns IKE and CHILD SA events into sync
 * records.
 *
 * It keeps the key inputs of each IKE SA (the key exchange secret, nonces
 * and, for rekeyed SAs, the previous SK_d) and the keys of each CHILD SA
 * until they are gone. An IKE SA is sent once it is established; a CHILD
 * SA installed before its IKE SA was sent is held back until then, so a
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
	 * primary.
	 */
	void (*resync)(sasync_capture_t *this);

	/**
	 * Keep the key inputs of an IKE SA restored from a record, so that once
	 * promoted this node can sync it on to others.
	 *
	 * @param ike_sa	restored IKE SA
	 * @param msg		its IKE_ADD record
	 */
	void (*adopt_ike)(sasync_capture_t *this, ike_sa_t *ike_sa,
					  sasync_msg_t *msg);

	/**
	 * Keep the keys of a CHILD SA restored from a record.
	 *
	 * @param child_sa	restored CHILD SA
	 * @param msg		its CHILD_ADD record
	 */
	void (*adopt_child)(sasync_capture_t *this, child_sa_t *child_sa,
						sasync_msg_t *msg);

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
 */
sasync_capture_t *sasync_capture_create(sasync_link_t *link, sasync_role_t *role,
										sasync_counters_t *counters);

/**
 * Milliseconds since the epoch, the timestamp of records (sync lag).
 */
uint64_t sasync_now_ms();

#endif /** SASYNC_CAPTURE_H_ @}*/
