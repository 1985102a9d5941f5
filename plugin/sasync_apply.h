/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_apply sasync_apply
 * @{ @ingroup sasync
 */

#ifndef SASYNC_APPLY_H_
#define SASYNC_APPLY_H_

#include "sasync_role.h"
#include "sasync_counters.h"
#include "sasync_outbound.h"
#include "sasync_capture.h"

#include <networking/host.h>

typedef struct sasync_apply_t sasync_apply_t;

/**
 * Called for each record that is rejected or can't be applied.
 *
 * @param data			user data
 * @param peer			node that sent the record, NULL if not known (a
 *						record retried later)
 * @param counter		counter that was incremented (SASYNC_CTR_APPLY_FAILED
 *						or SASYNC_CTR_SYNC_RX_LEN_BAD)
 * @param reason		what went wrong
 */
typedef void (*sasync_apply_error_t)(void *data, host_t *peer,
									 sasync_counter_t counter, char *reason);

/**
 * Applies received sync records on a standby node.
 *
 * IKE SAs are rebuilt in charon as passive SAs (they initiate and answer
 * nothing) with keys derived from the synced inputs; CHILD SAs are
 * installed through charon's kernel interface with their inbound SA and
 * policies, and their outbound direction handed to sasync_outbound_t.
 * A CHILD SA that arrives before its IKE SA waits for it.
 */
struct sasync_apply_t {

	/**
	 * Apply one received record (a sasync_link_recv_t).
	 *
	 * @param peer		node that sent it
	 * @param data		record encoding
	 */
	void (*receive)(sasync_apply_t *this, host_t *peer, chunk_t data);

	/**
	 * Hand restored SAs to the capture side, which syncs them on once this
	 * node is promoted.
	 */
	void (*set_capture)(sasync_apply_t *this, sasync_capture_t *capture);

	/**
	 * Number of CHILD SA records waiting for their IKE SA.
	 */
	u_int (*get_waiting)(sasync_apply_t *this);

	/**
	 * Set the callback for records rejected or not applied (each one is
	 * logged and counted as well).
	 *
	 * It is called with an internal lock held: it must not call back into
	 * this object. Once this returns, the previous callback is not running
	 * and is not called again.
	 *
	 * @param cb		callback, NULL to unset
	 * @param data		user data to pass to cb
	 */
	void (*set_error_cb)(sasync_apply_t *this, sasync_apply_error_t cb,
						 void *data);

	/**
	 * Destroy a sasync_apply_t.
	 */
	void (*destroy)(sasync_apply_t *this);
};

/**
 * Create the standby side.
 *
 * @param role			role of this node, records are applied as standby
 * @param counters		counters to update
 * @param outbound		outbound guard for restored CHILD SAs
 */
sasync_apply_t *sasync_apply_create(sasync_role_t *role,
									sasync_counters_t *counters,
									sasync_outbound_t *outbound);

#endif /** SASYNC_APPLY_H_ @}*/
