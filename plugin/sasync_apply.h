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
#include "sasync_keystore.h"
#include "sasync_msg.h"

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
 * Called when a bulk resync from the primary starts and when it is done.
 *
 * @param data			user data
 * @param peer			the primary sending it
 * @param seen			IKE SAs it named so far (all of them when done)
 * @param total			IKE SAs the primary had at its start
 * @param done			TRUE at its end
 */
typedef void (*sasync_apply_resync_t)(void *data, host_t *peer, u_int seen,
									  u_int total, bool done);

/**
 * Applies received sync records on a standby node.
 *
 * IKE SAs are rebuilt in charon as passive SAs (they initiate and answer
 * nothing) with keys derived from the synced inputs; CHILD SAs are
 * installed through charon's kernel interface with their inbound SA and
 * policies, and their outbound direction handed to sasync_outbound_t.
 * A CHILD SA that arrives before its IKE SA waits for it, an IKE SA whose
 * connection is not loaded for that; both for at most 60 s, de-duplicated
 * and bounded (sasync_wait_t), and a delete drops them. Records act only on
 * SAs restored here or handed over by a demotion, and only within this
 * node's config (sasync_validate_t); a rejected record changes nothing and
 * is counted. An IKE SA that replaces another (rekey, reauthentication)
 * takes over its CHILD SAs, virtual IPs and leases through charon's
 * inherit_post(). Key inputs go to the key store, so a promoted node can
 * sync what it restored on to others.
 */
struct sasync_apply_t {

	/**
	 * Apply one record, parsed by sasync_dispatch_t. Ignored (and logged)
	 * unless this node is a standby.
	 *
	 * @param peer		node that sent it
	 * @param msg		record
	 */
	void (*apply)(sasync_apply_t *this, host_t *peer, sasync_msg_t *msg);

	/**
	 * Report a record that could not be parsed: logged, counted as
	 * sync-rx-len-bad and passed to the error callback.
	 *
	 * @param peer		node that sent it
	 * @param reason	what is wrong with it
	 */
	void (*reject)(sasync_apply_t *this, host_t *peer, char *reason);

	/**
	 * Number of CHILD SA records waiting for their IKE SA.
	 */
	u_int (*get_waiting)(sasync_apply_t *this);

	/**
	 * Progress of the latest bulk resync received.
	 *
	 * @param seen		IKE SAs it named so far
	 * @param total		IKE SAs the primary had at its start
	 * @return			TRUE while it runs
	 */
	bool (*get_resync_progress)(sasync_apply_t *this, u_int *seen,
								u_int *total);

	/**
	 * Set the callback for the start and end of a bulk resync.
	 *
	 * @param cb		callback, NULL to unset
	 * @param data		user data to pass to cb
	 */
	void (*set_resync_cb)(sasync_apply_t *this, sasync_apply_resync_t cb,
						  void *data);

	/**
	 * Hold off records while the role changes: no record is being applied
	 * from the time this returns until resume(). A record checks the role
	 * under the same lock, so none is restored passive after a promotion.
	 */
	void (*hold)(sasync_apply_t *this);

	/**
	 * Let records be applied again. On a promoted node, CHILD SA records
	 * still waiting for their IKE SA are dropped (logged and counted): no
	 * one sends that IKE SA anymore; and charon's %unique counters are
	 * moved past what restored CHILD SAs hold, before the node makes CHILD
	 * SAs of its own. IKE SA records waiting for their connection stay,
	 * and are restored active once it is loaded.
	 */
	void (*resume)(sasync_apply_t *this);

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
 * @param keys			key store to keep the key inputs of restored SAs in
 */
sasync_apply_t *sasync_apply_create(sasync_role_t *role,
									sasync_counters_t *counters,
									sasync_outbound_t *outbound,
									sasync_keystore_t *keys);

#endif /** SASYNC_APPLY_H_ @}*/
