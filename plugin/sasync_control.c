/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_control.h"
#include "sasync_msg.h"
#include "sasync_capture.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(HAVE_MALLINFO2) || defined(HAVE_MALLINFO)
#include <malloc.h>
#endif

#include <daemon.h>
#include <networking/streams/stream_unix.h>
#include <plugins/vici/vici_dispatcher.h>
#include <plugins/vici/vici_builder.h>

typedef struct private_sasync_control_t private_sasync_control_t;

/**
 * Private data of a sasync_control_t object.
 */
struct private_sasync_control_t {

	/**
	 * Public interface
	 */
	sasync_control_t public;

	/**
	 * Partner changes from the cluster, raised as ha-node
	 */
	sasync_cluster_listener_t node_listener;

	/**
	 * strongSwan's vici server on the plugin's socket
	 */
	vici_dispatcher_t *dispatcher;

	/**
	 * Path of the unix socket, to remove on destroy, NULL for other URIs
	 */
	char *path;

	/**
	 * Creation time (monotonic), for the uptime in stats
	 */
	time_t created;

	/**
	 * Role of this node
	 */
	sasync_role_t *role;

	/**
	 * Counters
	 */
	sasync_counters_t *counters;

	/**
	 * Promotion and demotion
	 */
	sasync_promote_t *promote;

	/**
	 * Outbound guard
	 */
	sasync_outbound_t *outbound;

	/**
	 * Standby side
	 */
	sasync_apply_t *apply;

	/**
	 * Sync link, NULL if sync is disabled
	 */
	sasync_link_t *link;

	/**
	 * Election and partner roles, NULL if sync is disabled
	 */
	sasync_cluster_t *cluster;

	/**
	 * Active side, NULL if sync is disabled
	 */
	sasync_capture_t *capture;

	/**
	 * Name of this node
	 */
	char *node_id;

	/**
	 * Priority of this node
	 */
	u_int priority;

	/**
	 * Why sync is disabled, NULL if enabled
	 */
	char *disabled;
};

/**
 * Names of the events
 */
#define EVENT_ROLE "ha-role"
#define EVENT_SYNC_ERROR "ha-sync-error"
#define EVENT_NODE "ha-node"
#define EVENT_RESYNC "ha-resync"
#define EVENT_LIST_SA "ha-list-sa"

/**
 * A reply: "success = yes", or "no" with an errmsg if fmt is given
 */
static vici_message_t *reply(char *fmt, ...)
{
	vici_builder_t *b = vici_builder_create();
	va_list args;

	b->add_kv(b, "success", fmt ? "no" : "yes");
	if (fmt)
	{
		va_start(args, fmt);
		b->vadd_kv(b, "errmsg", fmt, args);
		va_end(args);
	}
	return b->finalize(b);
}

/**
 * Finish a command's reply. strongSwan's server sends none if a command
 * returns NULL, so a builder error (e.g. a value too long) becomes a failure.
 */
static vici_message_t *finish(vici_builder_t *b)
{
	return b->finalize(b) ?: reply("reply too large");
}

/**
 * Count IKE and CHILD SAs: active and passive, and per state
 */
static void add_sa_counts(vici_builder_t *b)
{
	u_int ike_states[IKE_DESTROYING + 1] = {}, child_states[CHILD_DESTROYING + 1] = {};
	u_int ike_passive = 0, ike_active = 0, child_passive = 0, child_active = 0;
	enumerator_t *enumerator, *children;
	ike_sa_state_t state;
	child_sa_state_t child_state;
	child_sa_t *child_sa;
	ike_sa_t *ike_sa;
	bool passive;
	int i;

	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		state = ike_sa->get_state(ike_sa);
		passive = state == IKE_PASSIVE;
		if (state < countof(ike_states))
		{
			ike_states[state]++;
		}
		passive ? ike_passive++ : ike_active++;
		children = ike_sa->create_child_sa_enumerator(ike_sa);
		while (children->enumerate(children, &child_sa))
		{
			child_state = child_sa->get_state(child_sa);
			if (child_state < countof(child_states))
			{
				child_states[child_state]++;
			}
			passive ? child_passive++ : child_active++;
		}
		children->destroy(children);
	}
	enumerator->destroy(enumerator);

	b->add_kv(b, "ike-sas-passive", "%u", ike_passive);
	b->add_kv(b, "ike-sas-active", "%u", ike_active);
	b->add_kv(b, "child-sas-passive", "%u", child_passive);
	b->add_kv(b, "child-sas-active", "%u", child_active);
	b->begin_section(b, "ike-sa-states");
	for (i = 0; i < countof(ike_states); i++)
	{
		if (ike_states[i])
		{
			b->add_kv(b, enum_to_name(ike_sa_state_names, i), "%u",
					  ike_states[i]);
		}
	}
	b->end_section(b);
	b->begin_section(b, "child-sa-states");
	for (i = 0; i < countof(child_states); i++)
	{
		if (child_states[i])
		{
			b->add_kv(b, enum_to_name(child_sa_state_names, i), "%u",
					  child_states[i]);
		}
	}
	b->end_section(b);
}

/**
 * Add what the heartbeats of a partner node tell
 */
static void add_node(private_sasync_control_t *this, vici_builder_t *b,
					 host_t *host)
{
	enumerator_t *enumerator;
	sasync_cluster_node_t *node;

	if (!this->cluster)
	{
		return;
	}
	enumerator = this->cluster->create_node_enumerator(this->cluster);
	while (enumerator->enumerate(enumerator, &node))
	{
		if (node->heard && host->equals(host, node->host))
		{
			b->add_kv(b, "name", "%s", node->name);
			b->add_kv(b, "role", "%N", sasync_role_names, node->role);
			b->add_kv(b, "priority", "%u", node->priority);
			b->add_kv(b, "epoch", "%u", node->epoch);
		}
	}
	enumerator->destroy(enumerator);
}

/**
 * Add the state of the link to each partner node
 */
static void add_peers(private_sasync_control_t *this, vici_builder_t *b)
{
	enumerator_t *enumerator;
	sasync_link_peer_t *peer;
	uint64_t now = sasync_link_time_ms();
	u_int i = 0;

	b->begin_section(b, "peers");
	if (this->link)
	{
		enumerator = this->link->create_peer_enumerator(this->link);
		while (enumerator->enumerate(enumerator, &peer))
		{
			char name[16];

			snprintf(name, sizeof(name), "%u", ++i);
			b->begin_section(b, name);
			b->add_kv(b, "address", "%H", peer->peer);
			b->add_kv(b, "port", "%u", peer->peer->get_port(peer->peer));
			b->add_kv(b, "out", "%s", peer->out_up ? "up" : "down");
			b->add_kv(b, "in", "%s", peer->in_up ? "up" : "down");
			b->add_kv(b, "alive", "%s", peer->alive ? "yes" : "no");
			add_node(this, b, peer->peer);
			b->add_kv(b, "queued", "%u", peer->queued);
			b->add_kv(b, "queue-lag-ms", "%"PRIu64, peer->oldest_queued &&
					  now > peer->oldest_queued ? now - peer->oldest_queued
												: 0);
			if (peer->last_heartbeat)
			{
				b->add_kv(b, "last-heartbeat-ms", "%"PRIu64,
						  now > peer->last_heartbeat ?
								now - peer->last_heartbeat : 0);
				b->add_kv(b, "heartbeat-lag-ms", "%u", peer->heartbeat_lag);
			}
			b->end_section(b);
		}
		enumerator->destroy(enumerator);
	}
	b->end_section(b);
}

/**
 * Add the progress of the latest bulk resync this node sent and received
 */
static void add_resync(private_sasync_control_t *this, vici_builder_t *b)
{
	u_int sent, total;
	bool running;

	if (this->capture)
	{
		this->capture->get_resync_progress(this->capture, &sent, &total);
		b->add_kv(b, "resync-sent", "%u", sent);
		b->add_kv(b, "resync-total", "%u", total);
	}
	running = this->apply->get_resync_progress(this->apply, &sent, &total);
	b->add_kv(b, "resync-receiving", "%s", running ? "yes" : "no");
	b->add_kv(b, "resync-received", "%u", sent);
	b->add_kv(b, "resync-expected", "%u", total);
}

/**
 * "ha-status" command
 */
CALLBACK(cmd_status, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	vici_builder_t *b = vici_builder_create();
	uint32_t lag_last, lag_max;

	b->add_kv(b, "node", "%s", this->node_id);
	b->add_kv(b, "priority", "%u", this->priority);
	b->add_kv(b, "role", "%N", sasync_role_names, this->role->get(this->role));
	if (this->cluster)
	{
		b->add_kv(b, "epoch", "%u", this->cluster->get_epoch(this->cluster));
	}
	b->add_kv(b, "sync", "%s", this->disabled ? "disabled" : "enabled");
	if (this->disabled)
	{
		b->add_kv(b, "sync-disabled", "%s", this->disabled);
	}
	add_sa_counts(b);
	b->add_kv(b, "forced-rekeys-pending", "%u",
			  this->outbound->get_pending(this->outbound));
	b->add_kv(b, "child-sas-waiting", "%u",
			  this->apply->get_waiting(this->apply));
	this->counters->get_lag(this->counters, &lag_last, &lag_max);
	b->add_kv(b, "sync-lag-last-ms", "%u", lag_last);
	b->add_kv(b, "sync-lag-max-ms", "%u", lag_max);
	b->add_kv(b, "queue-depth", "%u",
			  this->counters->get_queue_depth(this->counters));
	add_resync(this, b);
	add_peers(this, b);
	return finish(b);
}

/**
 * Add a CHILD SA to a listing
 */
static void list_child(private_sasync_control_t *this, vici_builder_t *b,
					   child_sa_t *child_sa, bool passive)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;
	char name[BUF_LEN];

	snprintf(name, sizeof(name), "%s-%u", child_sa->get_name(child_sa),
			 child_sa->get_unique_id(child_sa));
	b->begin_section(b, name);
	b->add_kv(b, "name", "%s", child_sa->get_name(child_sa));
	b->add_kv(b, "uniqueid", "%u", child_sa->get_unique_id(child_sa));
	b->add_kv(b, "reqid", "%u", child_sa->get_reqid(child_sa));
	b->add_kv(b, "state", "%N", child_sa_state_names,
			  child_sa->get_state(child_sa));
	b->add_kv(b, "mode", "%s", passive ? "passive" : "active");
	b->add_kv(b, "protocol", "%N", protocol_id_names,
			  child_sa->get_protocol(child_sa));
	b->add_kv(b, "spi-in", "%.8x", ntohl(child_sa->get_spi(child_sa, TRUE)));
	b->add_kv(b, "spi-out", "%.8x", ntohl(child_sa->get_spi(child_sa, FALSE)));
	b->add_kv(b, "rekey-pending", "%s",
			  this->outbound->is_pending(this->outbound,
							child_sa->get_unique_id(child_sa)) ? "yes" : "no");
	b->begin_list(b, "local-ts");
	enumerator = child_sa->create_ts_enumerator(child_sa, TRUE);
	while (enumerator->enumerate(enumerator, &ts))
	{
		b->add_li(b, "%R", ts);
	}
	enumerator->destroy(enumerator);
	b->end_list(b);
	b->begin_list(b, "remote-ts");
	enumerator = child_sa->create_ts_enumerator(child_sa, FALSE);
	while (enumerator->enumerate(enumerator, &ts))
	{
		b->add_li(b, "%R", ts);
	}
	enumerator->destroy(enumerator);
	b->end_list(b);
	b->end_section(b);
}

/**
 * Build the listing of an IKE SA, as a "ha-list-sa" event message
 */
static vici_message_t *list_ike(private_sasync_control_t *this,
								ike_sa_t *ike_sa)
{
	vici_builder_t *b = vici_builder_create();
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	ike_sa_id_t *id;
	host_t *host;
	bool passive;

	passive = ike_sa->get_state(ike_sa) == IKE_PASSIVE;
	id = ike_sa->get_id(ike_sa);
	b->begin_section(b, ike_sa->get_name(ike_sa));
	b->add_kv(b, "uniqueid", "%u", ike_sa->get_unique_id(ike_sa));
	b->add_kv(b, "version", "%u", ike_sa->get_version(ike_sa));
	b->add_kv(b, "state", "%N", ike_sa_state_names, ike_sa->get_state(ike_sa));
	b->add_kv(b, "mode", "%s", passive ? "passive" : "active");
	host = ike_sa->get_my_host(ike_sa);
	b->add_kv(b, "local-host", "%H", host);
	b->add_kv(b, "local-port", "%u", host->get_port(host));
	b->add_kv(b, "local-id", "%Y", ike_sa->get_my_id(ike_sa));
	host = ike_sa->get_other_host(ike_sa);
	b->add_kv(b, "remote-host", "%H", host);
	b->add_kv(b, "remote-port", "%u", host->get_port(host));
	b->add_kv(b, "remote-id", "%Y", ike_sa->get_other_id(ike_sa));
	b->add_kv(b, "initiator", "%s", id->is_initiator(id) ? "yes" : "no");
	b->add_kv(b, "initiator-spi", "%.16"PRIx64,
			  be64toh(id->get_initiator_spi(id)));
	b->add_kv(b, "responder-spi", "%.16"PRIx64,
			  be64toh(id->get_responder_spi(id)));
	b->begin_section(b, "child-sas");
	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		list_child(this, b, child_sa, passive);
	}
	enumerator->destroy(enumerator);
	b->end_section(b);
	b->end_section(b);
	return b->finalize(b);
}

/**
 * Whether anything may be read of a request. strongSwan's vici_message_t
 * (5.9.8) enumerates an explicit end marker without setting the element
 * type, and get_str()/get_int() keep theirs uninitialised: for a message
 * that starts with one they compare a key with a name from an
 * uninitialised pointer (a crash, found by tests/fuzz). Such a message
 * ends before its first element: it has nothing to read.
 */
static bool readable(vici_message_t *request)
{
	chunk_t data = request->get_encoding(request);

	return !data.len || data.ptr[0] != VICI_END;
}

/**
 * "ha-list-sas" command
 */
CALLBACK(cmd_list_sas, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	vici_builder_t *b;
	vici_message_t *event;
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	char *ike;
	int ike_id;
	u_int count = 0;

	ike = readable(request) ? request->get_str(request, NULL, "ike") : NULL;
	ike_id = readable(request) ? request->get_int(request, 0, "ike-id") : 0;
	if (ike_id < 0)
	{
		return reply("invalid ike-id");
	}
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if ((ike && !streq(ike, ike_sa->get_name(ike_sa))) ||
			(ike_id && ike_id != ike_sa->get_unique_id(ike_sa)))
		{
			continue;
		}
		event = list_ike(this, ike_sa);
		if (!event)
		{
			DBG1(DBG_APP, "sasync: listing IKE_SA %s[%u] failed",
				 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
			continue;
		}
		this->dispatcher->raise_event(this->dispatcher, EVENT_LIST_SA, id,
									  event);
		count++;
	}
	enumerator->destroy(enumerator);

	b = vici_builder_create();
	b->add_kv(b, "success", "yes");
	b->add_kv(b, "ike-sas", "%u", count);
	return finish(b);
}

/**
 * Reason of a role change requested by a command
 */
static char *role_reason(vici_message_t *request, char *cmd, char *buf,
						 size_t len)
{
	char *reason = NULL;

	if (readable(request))
	{
		reason = request->get_str(request, NULL, "reason");
	}
	if (reason && *reason)
	{
		snprintf(buf, len, "%s command: %s", cmd, reason);
	}
	else
	{
		snprintf(buf, len, "%s command", cmd);
	}
	return buf;
}

/**
 * Reply to a role change: the number of IKE SAs it switched under KEY
 */
static vici_message_t *role_reply(bool changed, char *errmsg, char *key,
								  u_int count)
{
	vici_builder_t *b;

	if (!changed)
	{
		return reply("%s", errmsg);
	}
	b = vici_builder_create();
	b->add_kv(b, "success", "yes");
	b->add_kv(b, key, "%u", count);
	return finish(b);
}

/**
 * "ha-promote" command
 */
CALLBACK(cmd_promote, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	char reason[256];
	u_int count = 0;

	bool changed;

	role_reason(request, "ha-promote", reason, sizeof(reason));
	if (this->cluster)
	{	/* graceful if a living primary hands over */
		changed = this->cluster->promote(this->cluster, reason, &count);
	}
	else
	{
		changed = this->promote->promote(this->promote, reason, &count);
	}
	return role_reply(changed, "already primary", "activated", count);
}

/**
 * "ha-demote" command
 */
CALLBACK(cmd_demote, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	char reason[256];
	u_int count = 0;

	bool changed;

	role_reason(request, "ha-demote", reason, sizeof(reason));
	if (this->cluster)
	{	/* graceful: the exchanges in flight complete first */
		changed = this->cluster->demote(this->cluster, reason, &count);
	}
	else
	{
		changed = this->promote->demote(this->promote, reason, &count);
	}
	return role_reply(changed, "already standby", "passive", count);
}

/**
 * "ha-resync" command
 */
CALLBACK(cmd_resync, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	vici_builder_t *b;
	char *what;

	if (!this->link || !this->capture)
	{
		return reply("SA sync disabled: %s",
											this->disabled ?: "no link");
	}
	if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
	{
		DBG1(DBG_APP, "sasync: bulk resync to the standby nodes requested "
			 "via vici");
		this->capture->resync(this->capture, NULL);
		what = "sent";
	}
	else
	{
		DBG1(DBG_APP, "sasync: asking the primary for a bulk resync "
			 "(requested via vici)");
		this->capture->request_resync(this->capture);
		what = "requested";
	}
	b = vici_builder_create();
	b->add_kv(b, "success", "yes");
	b->add_kv(b, "resync", "%s", what);
	return finish(b);
}

/**
 * Raise ha-role after a role change (a sasync_role_cb_t)
 */
static void role_changed(private_sasync_control_t *this,
						 sasync_role_state_t role, char *reason)
{
	vici_builder_t *b;

	if (!this->dispatcher->has_event_listeners(this->dispatcher, EVENT_ROLE))
	{
		return;
	}
	b = vici_builder_create();
	b->add_kv(b, "role", "%N", sasync_role_names, role);
	b->add_kv(b, "reason", "%s", reason);
	b->add_kv(b, "node", "%s", this->node_id);
	this->dispatcher->raise_event(this->dispatcher, EVENT_ROLE, 0,
								  b->finalize(b));
}

/**
 * Raise ha-node for a partner that came alive, died or changed its role
 */
static void node_changed(sasync_cluster_listener_t *listener,
						 sasync_cluster_node_t *node)
{
	private_sasync_control_t *this = (void*)((char*)listener -
						offsetof(private_sasync_control_t, node_listener));
	vici_builder_t *b;

	if (!this->dispatcher->has_event_listeners(this->dispatcher, EVENT_NODE))
	{
		return;
	}
	b = vici_builder_create();
	b->add_kv(b, "node", "%s", this->node_id);
	b->add_kv(b, "peer", "%H", node->host);
	b->add_kv(b, "alive", "%s", node->alive ? "yes" : "no");
	if (node->heard)
	{
		b->add_kv(b, "name", "%s", node->name);
		b->add_kv(b, "role", "%N", sasync_role_names, node->role);
		b->add_kv(b, "priority", "%u", node->priority);
		b->add_kv(b, "epoch", "%u", node->epoch);
	}
	this->dispatcher->raise_event(this->dispatcher, EVENT_NODE, 0,
								  b->finalize(b));
}

/**
 * Raise ha-resync when a bulk resync from the primary starts and ends (a
 * sasync_apply_resync_t)
 */
static void resync_changed(private_sasync_control_t *this, host_t *peer,
						   u_int seen, u_int total, bool done)
{
	vici_builder_t *b;

	if (!this->dispatcher->has_event_listeners(this->dispatcher, EVENT_RESYNC))
	{
		return;
	}
	b = vici_builder_create();
	b->add_kv(b, "node", "%s", this->node_id);
	b->add_kv(b, "peer", "%H", peer);
	b->add_kv(b, "state", "%s", done ? "done" : "started");
	b->add_kv(b, "received", "%u", seen);
	b->add_kv(b, "expected", "%u", total);
	this->dispatcher->raise_event(this->dispatcher, EVENT_RESYNC, 0,
								  b->finalize(b));
}

/**
 * Raise ha-sync-error (a sasync_link_error_t and sasync_apply_error_t)
 */
static void sync_error(private_sasync_control_t *this, host_t *peer,
					   sasync_counter_t counter, char *reason)
{
	vici_builder_t *b;

	if (!this->dispatcher->has_event_listeners(this->dispatcher, EVENT_SYNC_ERROR))
	{
		return;
	}
	b = vici_builder_create();
	b->add_kv(b, "node", "%s", this->node_id);
	if (peer)
	{
		b->add_kv(b, "peer", "%H", peer);
	}
	else
	{
		b->add_kv(b, "peer", "unknown");
	}
	b->add_kv(b, "error", "%N", sasync_counter_names, counter);
	b->add_kv(b, "reason", "%s", reason);
	this->dispatcher->raise_event(this->dispatcher, EVENT_SYNC_ERROR, 0,
								  b->finalize(b));
}

/**
 * Add the "ha" section with the plugin's counters and gauges. Plain
 * "swanctl --stats" ignores it (--raw/--pretty show it); it must not get a
 * list at the top level, as swanctl prints the items of every top-level
 * list as loaded plugins.
 */
static void add_ha_stats(private_sasync_control_t *this, vici_builder_t *b)
{
	sasync_counters_t *counters = this->counters;
	uint32_t last, max;
	int i;

	counters->get_lag(counters, &last, &max);

	b->begin_section(b, "ha");
	for (i = 0; i < SASYNC_CTR_MAX; i++)
	{
		b->add_kv(b, enum_to_name(sasync_counter_names, i), "%"PRIu64,
				  counters->get(counters, i));
	}
	b->add_kv(b, "queue-depth", "%u", counters->get_queue_depth(counters));
	b->add_kv(b, "sync-lag-last-ms", "%u", last);
	b->add_kv(b, "sync-lag-max-ms", "%u", max);
	b->end_section(b);
}

/**
 * "stats" command: the daemon statistics as charon's vici plugin answers
 * them (its "stats" is static in vici_query.c, which can't be compiled in
 * without its bus listener and its other commands), so that
 * "swanctl --stats" understands them, plus the "ha" section
 */
CALLBACK(cmd_stats, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	vici_builder_t *b = vici_builder_create();
	enumerator_t *enumerator;
	plugin_t *plugin;
	time_t now, since;
	int i;

	now = time_monotonic(NULL);
	since = time(NULL) - (now - this->created);

	b->begin_section(b, "uptime");
	b->add_kv(b, "running", "%V", &now, &this->created);
	b->add_kv(b, "since", "%T", &since, FALSE);
	b->end_section(b);

	b->begin_section(b, "workers");
	b->add_kv(b, "total", "%u",
			  lib->processor->get_total_threads(lib->processor));
	b->add_kv(b, "idle", "%u",
			  lib->processor->get_idle_threads(lib->processor));
	b->begin_section(b, "active");
	for (i = 0; i < JOB_PRIO_MAX; i++)
	{
		b->add_kv(b, enum_to_name(job_priority_names, i), "%u",
				  lib->processor->get_working_threads(lib->processor, i));
	}
	b->end_section(b);
	b->end_section(b);

	b->begin_section(b, "queues");
	for (i = 0; i < JOB_PRIO_MAX; i++)
	{
		b->add_kv(b, enum_to_name(job_priority_names, i), "%u",
				  lib->processor->get_job_load(lib->processor, i));
	}
	b->end_section(b);

	b->add_kv(b, "scheduled", "%u",
			  lib->scheduler->get_job_load(lib->scheduler));

	/* without the daemon (unit tests) there are no IKE_SAs to count */
	if (charon->ike_sa_manager)
	{
		b->begin_section(b, "ikesas");
		b->add_kv(b, "total", "%u",
				  charon->ike_sa_manager->get_count(charon->ike_sa_manager));
		b->add_kv(b, "half-open", "%u",
				  charon->ike_sa_manager->get_half_open_count(
									charon->ike_sa_manager, NULL, FALSE));
		b->end_section(b);
	}

	b->begin_list(b, "plugins");
	enumerator = lib->plugins->create_plugin_enumerator(lib->plugins);
	while (enumerator->enumerate(enumerator, &plugin, NULL))
	{
		b->add_li(b, "%s", plugin->get_name(plugin));
	}
	enumerator->destroy(enumerator);
	b->end_list(b);

#ifdef HAVE_MALLINFO2
	{
		struct mallinfo2 mi = mallinfo2();

		b->begin_section(b, "mallinfo");
		b->add_kv(b, "sbrk", "%zu", mi.arena);
		b->add_kv(b, "mmap", "%zu", mi.hblkhd);
		b->add_kv(b, "used", "%zu", mi.uordblks);
		b->add_kv(b, "free", "%zu", mi.fordblks);
		b->end_section(b);
	}
#elif defined(HAVE_MALLINFO)
	{
		struct mallinfo mi = mallinfo();

		b->begin_section(b, "mallinfo");
		b->add_kv(b, "sbrk", "%u", (u_int)mi.arena);
		b->add_kv(b, "mmap", "%u", (u_int)mi.hblkhd);
		b->add_kv(b, "used", "%u", (u_int)mi.uordblks);
		b->add_kv(b, "free", "%u", (u_int)mi.fordblks);
		b->end_section(b);
	}
#endif

	add_ha_stats(this, b);
	return finish(b);
}

/**
 * "ha-reset-counters" command
 */
CALLBACK(cmd_reset_counters, vici_message_t*,
	private_sasync_control_t *this, char *name, u_int id,
	vici_message_t *request)
{
	this->counters->reset(this->counters);
	DBG1(DBG_APP, "sasync: counters reset via vici");
	return reply(NULL);
}

/**
 * Register or unregister a command
 */
static void manage_command(private_sasync_control_t *this, char *name,
						   vici_command_cb_t cb, bool reg)
{
	this->dispatcher->manage_command(this->dispatcher, name,
									 reg ? cb : NULL, this);
}

/**
 * Register or unregister every command and event of the plugin, the one
 * place listing them; unregistering waits for running commands
 */
static void manage_commands(private_sasync_control_t *this, bool reg)
{
	this->dispatcher->manage_event(this->dispatcher, EVENT_ROLE, reg);
	this->dispatcher->manage_event(this->dispatcher, EVENT_SYNC_ERROR, reg);
	this->dispatcher->manage_event(this->dispatcher, EVENT_NODE, reg);
	this->dispatcher->manage_event(this->dispatcher, EVENT_RESYNC, reg);
	this->dispatcher->manage_event(this->dispatcher, EVENT_LIST_SA, reg);
	manage_command(this, "stats", cmd_stats, reg);
	manage_command(this, "ha-status", cmd_status, reg);
	manage_command(this, "ha-list-sas", cmd_list_sas, reg);
	manage_command(this, "ha-promote", cmd_promote, reg);
	manage_command(this, "ha-demote", cmd_demote, reg);
	manage_command(this, "ha-resync", cmd_resync, reg);
	manage_command(this, "ha-reset-counters", cmd_reset_counters, reg);
}

/**
 * Hand the unix socket to the configured group, if any
 */
static void set_socket_group(char *path)
{
	struct group grp, *res = NULL;
	char buf[1024], *name;

	name = lib->settings->get_str(lib->settings,
						"%s.plugins.sasync.socket_group", NULL, lib->ns);
	if (!name)
	{
		return;
	}
	if (getgrnam_r(name, &grp, buf, sizeof(buf), &res) != 0 || !res)
	{
		DBG1(DBG_APP, "sasync: vici socket group '%s' not found", name);
		return;
	}
	if (chown(path, -1, res->gr_gid) != 0 ||
		chmod(path, S_IRWXU | S_IRWXG) != 0)
	{
		DBG1(DBG_APP, "sasync: changing group of '%s' failed: %s", path,
			 strerror(errno));
	}
}

METHOD(sasync_control_t, destroy, void,
	private_sasync_control_t *this)
{
	/* no error callback or listener is running after these return */
	if (this->link)
	{
		this->link->set_error_cb(this->link, NULL, NULL);
	}
	if (this->cluster)
	{
		this->cluster->set_listener(this->cluster, NULL);
	}
	this->apply->set_error_cb(this->apply, NULL, NULL);
	this->apply->set_resync_cb(this->apply, NULL, NULL);
	manage_commands(this, FALSE);
	this->dispatcher->destroy(this->dispatcher);
	if (this->path)
	{
		unlink(this->path);
	}
	free(this->path);
	free(this->node_id);
	free(this);
}

/*
 * Described in header
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
										char *disabled)
{
	private_sasync_control_t *this;
	struct sockaddr_un addr;
	vici_dispatcher_t *dispatcher;

	if (!strpfx(uri, "unix://"))
	{	/* whoever reaches a TCP socket could promote or demote the node */
		DBG1(DBG_APP, "sasync: control socket '%s' refused, only unix:// "
			 "URIs are allowed", uri);
		return NULL;
	}
	dispatcher = vici_dispatcher_create(uri);
	if (!dispatcher)
	{
		DBG1(DBG_APP, "sasync: creating vici socket '%s' failed", uri);
		return NULL;
	}
	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.node_listener = {
			.node_changed = node_changed,
		},
		.dispatcher = dispatcher,
		.created = time_monotonic(NULL),
		.role = role,
		.counters = counters,
		.promote = promote,
		.outbound = outbound,
		.apply = apply,
		.link = link,
		.capture = capture,
		.cluster = cluster,
		.node_id = strdup(node_id),
		.priority = priority,
		.disabled = disabled,
	);
	if (strpfx(uri, "unix://") && stream_parse_uri_unix(uri, &addr) > 0)
	{
		this->path = strdup(addr.sun_path);
		set_socket_group(this->path);
	}
	manage_commands(this, TRUE);

	role->add_listener(role, (sasync_role_cb_t)role_changed, this);
	if (link)
	{
		link->set_error_cb(link, (sasync_link_error_t)sync_error, this);
	}
	apply->set_error_cb(apply, (sasync_apply_error_t)sync_error, this);
	apply->set_resync_cb(apply, (sasync_apply_resync_t)resync_changed, this);
	if (cluster)
	{
		cluster->set_listener(cluster, &this->node_listener);
	}
	DBG1(DBG_APP, "sasync: vici listening on '%s'", uri);
	return &this->public;
}
