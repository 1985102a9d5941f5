/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_dispatch sasync_dispatch
 * @{ @ingroup sasync
 */

#ifndef SASYNC_DISPATCH_H_
#define SASYNC_DISPATCH_H_

#include "sasync_link.h"
#include "sasync_role.h"
#include "sasync_counters.h"
#include "sasync_capture.h"
#include "sasync_apply.h"

typedef struct sasync_dispatch_t sasync_dispatch_t;

/**
 * The one entry of everything the link receives: each frame is parsed once
 * with the codec and routed by its type.
 *
 *   - SA records (IKE_*, CHILD_*, RESYNC_DONE) go to sasync_apply_t;
 *   - a RESYNC_REQUEST (the only record a standby sends) makes the primary
 *     send everything again to that node, through sasync_capture_t;
 *   - a partner's link coming up makes the primary send it everything
 *     (bulk resync), as it may have lost its state; only to that node, the
 *     other standbys are current;
 *   - at most one bulk resync starts per partner every
 *     SASYNC_RESYNC_INTERVAL_MS: a request (or link up) within that time of
 *     the last one is deferred to its end, and all requests deferred meanwhile
 *     make that one resync (counted as resync-deferred). None is dropped:
 *     the resync at the end sends what the node holds then;
 *   - a frame that does not parse is rejected through the apply side's
 *     error path (logged, counted, reported).
 */
struct sasync_dispatch_t {

	/**
	 * Destroy a sasync_dispatch_t, after the link: the link calls it from
	 * its threads until it is destroyed itself.
	 */
	void (*destroy)(sasync_dispatch_t *this);
};

/** at most one bulk resync per partner in this interval (ms) */
#define SASYNC_RESYNC_INTERVAL_MS 2000

/**
 * Create the dispatcher and register it with the link.
 *
 * @param link			link to receive from
 * @param role			role of this node
 * @param counters		counters (resync-deferred)
 * @param capture		sender of bulk resyncs
 * @param apply			applies SA records
 */
sasync_dispatch_t *sasync_dispatch_create(sasync_link_t *link,
										  sasync_role_t *role,
										  sasync_counters_t *counters,
										  sasync_capture_t *capture,
										  sasync_apply_t *apply);

#endif /** SASYNC_DISPATCH_H_ @}*/
