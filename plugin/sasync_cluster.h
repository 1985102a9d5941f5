/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_cluster sasync_cluster
 * @{ @ingroup sasync
 */

#ifndef SASYNC_CLUSTER_H_
#define SASYNC_CLUSTER_H_

#include "sasync_capture.h"
#include "sasync_counters.h"
#include "sasync_link.h"
#include "sasync_promote.h"
#include "sasync_role.h"
#include "sasync_switchover.h"

typedef struct sasync_cluster_t sasync_cluster_t;
typedef struct sasync_cluster_node_t sasync_cluster_node_t;
typedef struct sasync_cluster_listener_t sasync_cluster_listener_t;

/** version of the data our heartbeats carry: 2 added the flags (a node
 * of version 1 sends none) */
#define SASYNC_BEAT_VERSION 2

/** heartbeat flag of a standby that asks the primary to hand over */
#define SASYNC_BEAT_TAKEOVER 0x01

/** longest node name heartbeats carry */
#define SASYNC_NODE_ID_MAX 64

/**
 * A partner node as its heartbeats describe it.
 */
struct sasync_cluster_node_t {
	/** configured address of the node */
	host_t *host;
	/** its heartbeats arrive */
	bool alive;
	/** a heartbeat with valid data has arrived at least once */
	bool heard;
	/** its role, priority and name, from its last heartbeat */
	sasync_role_state_t role;
	u_int priority;
	char name[SASYNC_NODE_ID_MAX + 1];
	/** promotions counted through the cluster when it last became primary */
	uint32_t epoch;
	/** a standby asking the primary to hand over (SASYNC_BEAT_TAKEOVER) */
	bool takeover;
};

/**
 * Listener for changes of the partner nodes.
 */
struct sasync_cluster_listener_t {

	/**
	 * A partner came alive, was declared dead, or changed its role, epoch
	 * or priority. Called from the link's callbacks, so it must not block
	 * nor call back into the cluster or the link.
	 *
	 * @param node		the node, as it is now
	 */
	void (*node_changed)(sasync_cluster_listener_t *this,
						 sasync_cluster_node_t *node);
};

/**
 * Roles from heartbeats: the election of a primary among the nodes.
 *
 * Every heartbeat carries the sender's role, priority, name and epoch (the
 * number of the promotion that made it primary: one more than the highest
 * seen, 0 for a node configured primary at start). With the election on:
 * - when no primary is alive (it missed heartbeat_lost heartbeats, or none
 *   appeared within a start-up grace period), the best living standby
 *   promotes itself: highest priority, then the smallest name;
 * - a primary that hears another primary with a higher epoch (the one that
 *   took over more recently), or the same epoch and a better priority or
 *   name, demotes itself and sends no DELETE (split brain);
 * - with preempt, a standby of higher priority than the living primary
 *   promotes itself, and the former primary then demotes.
 * Without the election, roles change only by ha-promote/ha-demote (e.g.
 * keepalived's notify scripts); heartbeats are still sent and shown.
 * Either way, a demoted node asks the living primary (when there is one,
 * or once one appears) for a full resync: its SAs may be stale.
 *
 * A switchover (an operator promoting a standby while the primary lives)
 * is graceful when the plugin moves the cluster addresses: the standby's
 * heartbeats ask the primary to hand over, the primary finishes its
 * exchanges in flight holding the addresses (sasync_switchover_t) and
 * demotes, and only then does the standby promote and take them. A primary
 * that does not hand over within the switchover timeout plus a heartbeat
 * timeout is overtaken as before, by the newer epoch.
 *
 * Decisions run in a job of their own, never in the link's callbacks.
 */
struct sasync_cluster_t {

	/**
	 * Enumerate the partner nodes (sasync_cluster_node_t*), under a lock
	 * until the enumerator is destroyed.
	 */
	enumerator_t *(*create_node_enumerator)(sasync_cluster_t *this);

	/**
	 * Register a listener (one at most).
	 *
	 * @param listener	listener, NULL to unregister; once this returns, the
	 *					previous one is not called anymore
	 */
	void (*set_listener)(sasync_cluster_t *this,
						 sasync_cluster_listener_t *listener);

	/**
	 * Promote this node, by a graceful switchover if a living primary is
	 * connected and switchovers are graceful: ask it to hand over and wait
	 * (in the calling thread) until it did, or until the wait timed out,
	 * and promote. Else promote at once.
	 *
	 * @param reason	why, for logs and events
	 * @param count		number of IKE SAs activated, if not NULL
	 * @return			FALSE if already primary
	 */
	bool (*promote)(sasync_cluster_t *this, char *reason, u_int *count);

	/**
	 * Demote this node, gracefully if switchovers are: it finishes its
	 * exchanges in flight holding the cluster addresses first, as when a
	 * standby takes over (sasync_switchover_t), and this waits for that.
	 * Else at once.
	 *
	 * @param reason	why, for logs and events
	 * @param count		number of IKE SAs made passive, if not NULL
	 * @return			FALSE if already standby
	 */
	bool (*demote)(sasync_cluster_t *this, char *reason, u_int *count);

	/**
	 * Get the epoch of this node.
	 */
	uint32_t (*get_epoch)(sasync_cluster_t *this);

	/**
	 * Destroy a sasync_cluster_t.
	 */
	void (*destroy)(sasync_cluster_t *this);
};

/**
 * Create the cluster and start sending this node's state in heartbeats.
 *
 * @param link			sync link, heartbeats travel on it
 * @param role			role of this node
 * @param promote		promotion and demotion
 * @param switchover	hand-over of the role, the old primary's side
 * @param capture		capture side, to ask a new primary for a resync
 * @param counters		counters to update
 * @param name			name of this node (node_id)
 * @param priority		priority of this node
 * @param election		elect the primary from heartbeats
 * @param preempt		promote over a living primary of lower priority
 * @param timeout		heartbeat timeout: interval times missed heartbeats
 *						(ms), the start-up grace is three of them
 * @param switch_timeout	longest wait of a switchover for the exchanges
 *						in flight (ms), 0 for immediate switchovers
 * @return				cluster
 */
sasync_cluster_t *sasync_cluster_create(sasync_link_t *link,
										sasync_role_t *role,
										sasync_promote_t *promote,
										sasync_switchover_t *switchover,
										sasync_capture_t *capture,
										sasync_counters_t *counters,
										char *name, u_int priority,
										bool election, bool preempt,
										u_int timeout, u_int switch_timeout);

#endif /** SASYNC_CLUSTER_H_ @}*/
