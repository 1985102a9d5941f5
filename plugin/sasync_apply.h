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

#include <networking/host.h>

typedef struct sasync_apply_t sasync_apply_t;

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
	 * Number of CHILD SA records waiting for their IKE SA.
	 */
	u_int (*get_waiting)(sasync_apply_t *this);

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
