/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_control sasync_control
 * @{ @ingroup sasync
 */

#ifndef SASYNC_CONTROL_H_
#define SASYNC_CONTROL_H_

#include "sasync_role.h"
#include "sasync_counters.h"
#include "sasync_promote.h"
#include "sasync_outbound.h"
#include "sasync_apply.h"
#include "sasync_link.h"
#include "sasync_capture.h"
#include "sasync_cluster.h"

typedef struct sasync_control_t sasync_control_t;

/**
 * Default URI of the plugin's vici socket.
 */
#define SASYNC_CONTROL_DEFAULT_URI "unix:///var/run/charon-sasync.vici"

/**
 * Default priority of a node.
 */
#define SASYNC_DEFAULT_PRIORITY 100

/**
 * The plugin's vici socket: strongSwan's own vici server (vici_dispatcher_t,
 * compiled into the plugin from the strongSwan source), on a socket of its
 * own, since plugins can't extend charon's vici dispatcher. Stock
 * swanctl/libvici talk to it with --uri.
 *
 * Commands:
 *  - "stats": charon's stats (the keys of charon's vici "stats", so that
 *    "swanctl --stats" understands them) plus a section "ha" with the
 *    counters and gauges.
 *  - "ha-reset-counters": counters (not gauges) to zero.
 *  - "ha-status": node id, priority, role, whether sync is enabled (else
 *    "sync-disabled" says why), the SA counts (ike-sas-active/-passive,
 *    child-sas-active/-passive, a count per IKE and CHILD SA state in the
 *    sections ike-sa-states and child-sa-states), forced-rekeys-pending,
 *    child-sas-waiting, sync-lag-last-ms, sync-lag-max-ms, queue-depth, and
 *    a section "peers" with one section per partner node, named 1, 2, ...:
 *    address, out and in (up/down), queued, queue-lag-ms (age of the oldest
 *    record queued for it), last-heartbeat-ms (ms since its last heartbeat,
 *    missing if none came yet) and heartbeat-lag-ms.
 *  - "ha-list-sas": streams one "ha-list-sa" event per IKE SA to the
 *    requesting client (if it registered for it), then replies with
 *    "ike-sas", the number listed. Optional filters "ike" (connection name)
 *    and "ike-id" (unique id). An event holds one section named after the
 *    connection: uniqueid, version, state, mode (active or passive),
 *    hosts, identities, initiator, initiator-spi, responder-spi and
 *    a section child-sas with a section per CHILD SA (named
 *    <name>-<uniqueid>): name, uniqueid, reqid, state, mode, protocol,
 *    spi-in, spi-out, rekey-pending (yes while a restored CHILD SA waits for
 *    its forced rekey), lists local-ts and remote-ts.
 *  - "ha-promote", "ha-demote": change the role; the optional "reason" is
 *    logged and sent in the ha-role event. "success = no" if the node
 *    already has the role. ha-promote replies "activated", the number of
 *    passive IKE SAs made active.
 *  - "ha-resync": as primary, send every SA to the partners again; as
 *    standby, ask the primary for that (a RESYNC_REQUEST record). Replies
 *    "resync = sent|requested"; "success = no" if sync is disabled.
 *
 * Events:
 *  - "ha-role": role, reason, node; after every role change.
 *  - "ha-sync-error": node, peer, error (the counter that was incremented,
 *    e.g. sync-rx-auth-bad), reason; for every sync error of the link
 *    (handshake and frame rejections) and every record that is malformed or
 *    can't be applied.
 *
 * Role changes and sync errors are logged where they happen (group app).
 */
struct sasync_control_t {

	/**
	 * Stop serving: unhook the error callbacks, unregister the commands and
	 * events (waiting for running commands), close the socket and remove
	 * its file.
	 *
	 * The role listener can't be removed: the role must not change
	 * afterwards (the commands are what changes it).
	 */
	void (*destroy)(sasync_control_t *this);
};

/**
 * Serve the socket, register the commands and events and hook into the
 * components.
 *
 * For unix:// URIs the socket gets mode 0770, owned by charon's user and
 * group; the group is changed to <ns>.plugins.sasync.socket_group if set.
 *
 * @param uri			URI to listen on, e.g. SASYNC_CONTROL_DEFAULT_URI
 * @param role			role of this node
 * @param counters		counters (sync lag, queue depth)
 * @param promote		promotion and demotion
 * @param outbound		outbound guard (forced rekeys pending)
 * @param apply			standby side (waiting CHILD SAs, errors)
 * @param link			sync link, NULL if sync is disabled
 * @param capture		active side, NULL if sync is disabled
 * @param cluster		election, the roles of the partners; NULL if sync is
 *						disabled
 * @param node_id		name of this node (copied)
 * @param priority		priority of this node
 * @param disabled		why sync is disabled, NULL if enabled (a static string)
 * @return				control, NULL if the socket can't be created
 */
sasync_control_t *sasync_control_create(char *uri,
										sasync_role_t *role,
										sasync_counters_t *counters,
										sasync_promote_t *promote,
										sasync_outbound_t *outbound,
										sasync_apply_t *apply,
										sasync_link_t *link,
										sasync_capture_t *capture,
										sasync_cluster_t *cluster,
										char *node_id, u_int priority,
										char *disabled);

#endif /** SASYNC_CONTROL_H_ @}*/
