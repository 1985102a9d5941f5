/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_switchover sasync_switchover
 * @{ @ingroup sasync
 */

#ifndef SASYNC_SWITCHOVER_H_
#define SASYNC_SWITCHOVER_H_

#include "sasync_counters.h"
#include "sasync_keystore.h"
#include "sasync_link.h"
#include "sasync_promote.h"
#include "sasync_role.h"

typedef struct sasync_switchover_t sasync_switchover_t;

/** longest wait for the exchanges in flight, by default (ms,
 * charon.plugins.sasync.switchover_timeout; 0 switches over at once) */
#define SASYNC_SWITCHOVER_TIMEOUT 3000

/**
 * The old primary's side of a graceful switchover: it hands the role over
 * only once the exchanges it has in flight are complete.
 *
 * A node that demotes at once makes every IKE SA passive, with what it has
 * in flight: the peer's answer to an IKE or CHILD rekey it started then
 * reaches the new primary (the cluster address moved), which did not start
 * that exchange and cannot complete it, and the tunnel is lost. Here the
 * node stays primary and keeps the cluster addresses while it:
 * - makes every IKE SA with no exchange in flight passive at once, so it
 *   starts nothing new (charon starts no task on a passive SA, and drops
 *   what the peer sends on it: the peer retransmits to the new primary);
 * - lets the others complete their exchange and what charon queued
 *   behind it (its records reach the standby as any primary's), and makes
 *   them passive when done; a rekey's new IKE SA too;
 * - waits until no record is queued for the partners (the heartbeat that
 *   says it is a standby would overtake them);
 * - then demotes as usual, its heartbeats say so and the new primary takes
 *   the addresses. What is still in flight after the timeout is cut as an
 *   immediate demotion would, counted as switchover-cut.
 * If the switchover is cancelled before it demotes (the node taking over is
 * gone), the SAs it made passive become established again.
 */
struct sasync_switchover_t {

	/**
	 * Start handing the role over, in jobs.
	 *
	 * @param why			what hands it over, for logs and the demotion's
	 *						reason ("switchover to b", a demotion's reason)
	 * @param cancellable	a node takes over, and cancel() may come if it
	 *						goes; FALSE for a demotion asked for here
	 * @param timeout		longest wait for the exchanges in flight (ms)
	 * @return				FALSE if one is running already or not primary
	 */
	bool (*start)(sasync_switchover_t *this, char *why, bool cancellable,
				  u_int timeout);

	/**
	 * Cancel a running switchover: the node taking over is gone. Ignored
	 * for a demotion asked for here, and once the demotion began.
	 */
	void (*cancel)(sasync_switchover_t *this);

	/**
	 * IKE SAs the last switchover made passive, 0 while it runs.
	 */
	u_int (*get_passive)(sasync_switchover_t *this);

	/**
	 * Whether a switchover is running.
	 */
	bool (*is_running)(sasync_switchover_t *this);

	/**
	 * Destroy a sasync_switchover_t; a running switchover stops where it
	 * is, once a look at the SAs in progress is done.
	 */
	void (*destroy)(sasync_switchover_t *this);
};

/**
 * Whether an IKE SA has an exchange in flight: a request of ours not yet
 * answered, or one the peer is not done with (an IKEv1 Quick Mode waiting
 * for its third message, EAP rounds).
 *
 * @param ike_sa		IKE SA, checked out
 * @return				TRUE if busy
 */
bool sasync_switchover_busy(ike_sa_t *ike_sa);

/**
 * Create the switchover handler.
 *
 * @param role			role of this node
 * @param promote		promotion and demotion
 * @param keys			key store
 * @param counters		counters
 * @param link			sync link, NULL for none
 */
sasync_switchover_t *sasync_switchover_create(sasync_role_t *role,
											  sasync_promote_t *promote,
											  sasync_keystore_t *keys,
											  sasync_counters_t *counters,
											  sasync_link_t *link);

#endif /** SASYNC_SWITCHOVER_H_ @}*/
