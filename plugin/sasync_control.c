/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_control.h"
#include "sasync_msg.h"
#include "sasync_capture.h"

#include <inttypes.h>

#include <daemon.h>

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
	 * vici server (owned)
	 */
	sasync_vici_t *vici;

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
#define EVENT_LIST_SA "ha-list-sa"

/**
 * Count IKE and CHILD SAs: active and passive, and per state
 */
static void add_sa_counts(sasync_vici_builder_t *b)
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
 * Add the state of the link to each partner node
 */
static void add_peers(private_sasync_control_t *this, sasync_vici_builder_t *b)
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
 * "ha-status" command
 */
static sasync_vici_msg_t *cmd_status(private_sasync_control_t *this,
									 sasync_vici_msg_t *request, u_int client)
{
	sasync_vici_builder_t *b = sasync_vici_builder_create();
	uint32_t lag_last, lag_max;

	b->add_kv(b, "node", "%s", this->node_id);
	b->add_kv(b, "priority", "%u", this->priority);
	b->add_kv(b, "role", "%N", sasync_role_names, this->role->get(this->role));
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
	add_peers(this, b);
	return b->finish(b);
}

/**
 * Add a CHILD SA to a listing
 */
static void list_child(private_sasync_control_t *this, sasync_vici_builder_t *b,
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
static sasync_vici_msg_t *list_ike(private_sasync_control_t *this,
								   ike_sa_t *ike_sa)
{
	sasync_vici_builder_t *b = sasync_vici_builder_create();
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
	return b->finish(b);
}

/**
 * "ha-list-sas" command
 */
static sasync_vici_msg_t *cmd_list_sas(private_sasync_control_t *this,
									   sasync_vici_msg_t *request, u_int client)
{
	sasync_vici_builder_t *b;
	sasync_vici_msg_t *event;
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	char *name;
	int id;
	u_int count = 0;

	name = request->get_str(request, NULL, "ike");
	id = request->get_int(request, 0, "ike-id");
	if (id < 0)
	{
		return sasync_vici_msg_create_reply(FALSE, "invalid ike-id");
	}
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if ((name && !streq(name, ike_sa->get_name(ike_sa))) ||
			(id && id != ike_sa->get_unique_id(ike_sa)))
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
		this->vici->send_event(this->vici, client, EVENT_LIST_SA, event);
		count++;
	}
	enumerator->destroy(enumerator);

	b = sasync_vici_builder_create();
	b->add_kv(b, "success", "yes");
	b->add_kv(b, "ike-sas", "%u", count);
	return b->finish(b);
}

/**
 * Reason of a role change requested by a command
 */
static char *role_reason(sasync_vici_msg_t *request, char *cmd, char *buf,
						 size_t len)
{
	char *reason = request->get_str(request, NULL, "reason");

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
 * "ha-promote" command
 */
static sasync_vici_msg_t *cmd_promote(private_sasync_control_t *this,
									  sasync_vici_msg_t *request, u_int client)
{
	sasync_vici_builder_t *b;
	char reason[256];
	u_int count = 0;

	role_reason(request, "ha-promote", reason, sizeof(reason));
	if (!this->promote->promote(this->promote, reason, &count))
	{
		return sasync_vici_msg_create_reply(FALSE, "already primary");
	}
	b = sasync_vici_builder_create();
	b->add_kv(b, "success", "yes");
	b->add_kv(b, "activated", "%u", count);
	return b->finish(b);
}

/**
 * "ha-demote" command
 */
static sasync_vici_msg_t *cmd_demote(private_sasync_control_t *this,
									 sasync_vici_msg_t *request, u_int client)
{
	char reason[256];

	role_reason(request, "ha-demote", reason, sizeof(reason));
	if (!this->promote->demote(this->promote, reason))
	{
		return sasync_vici_msg_create_reply(FALSE, "already standby");
	}
	return sasync_vici_msg_create_reply(TRUE, NULL);
}

/**
 * "ha-resync" command
 */
static sasync_vici_msg_t *cmd_resync(private_sasync_control_t *this,
									 sasync_vici_msg_t *request, u_int client)
{
	sasync_vici_builder_t *b;
	sasync_msg_t *msg;
	char *what;

	if (!this->link || !this->capture)
	{
		return sasync_vici_msg_create_reply(FALSE, "SA sync disabled: %s",
											this->disabled ?: "no link");
	}
	if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
	{
		DBG1(DBG_APP, "sasync: bulk resync to the standby nodes requested "
			 "via vici");
		this->capture->resync(this->capture);
		what = "sent";
	}
	else
	{
		DBG1(DBG_APP, "sasync: asking the primary for a bulk resync "
			 "(requested via vici)");
		msg = sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST);
		msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, sasync_now_ms());
		this->link->send(this->link, msg->get_encoding(msg));
		msg->destroy(msg);
		what = "requested";
	}
	b = sasync_vici_builder_create();
	b->add_kv(b, "success", "yes");
	b->add_kv(b, "resync", "%s", what);
	return b->finish(b);
}

/**
 * Raise ha-role after a role change (a sasync_role_cb_t)
 */
static void role_changed(private_sasync_control_t *this,
						 sasync_role_state_t role, char *reason)
{
	sasync_vici_builder_t *b;

	if (!this->vici->has_listeners(this->vici, EVENT_ROLE))
	{
		return;
	}
	b = sasync_vici_builder_create();
	b->add_kv(b, "role", "%N", sasync_role_names, role);
	b->add_kv(b, "reason", "%s", reason);
	b->add_kv(b, "node", "%s", this->node_id);
	this->vici->raise_event(this->vici, EVENT_ROLE, b->finish(b));
}

/**
 * Raise ha-sync-error (a sasync_link_error_t and sasync_apply_error_t)
 */
static void sync_error(private_sasync_control_t *this, host_t *peer,
					   sasync_counter_t counter, char *reason)
{
	sasync_vici_builder_t *b;

	if (!this->vici->has_listeners(this->vici, EVENT_SYNC_ERROR))
	{
		return;
	}
	b = sasync_vici_builder_create();
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
	this->vici->raise_event(this->vici, EVENT_SYNC_ERROR, b->finish(b));
}

METHOD(sasync_control_t, destroy, void,
	private_sasync_control_t *this)
{
	/* no error callback is running after these return */
	if (this->link)
	{
		this->link->set_error_cb(this->link, NULL, NULL);
	}
	this->apply->set_error_cb(this->apply, NULL, NULL);
	this->vici->destroy(this->vici);
	free(this->node_id);
	free(this);
}

/*
 * Described in header
 */
sasync_control_t *sasync_control_create(sasync_vici_t *vici,
										sasync_role_t *role,
										sasync_counters_t *counters,
										sasync_promote_t *promote,
										sasync_outbound_t *outbound,
										sasync_apply_t *apply,
										sasync_link_t *link,
										sasync_capture_t *capture,
										char *node_id, u_int priority,
										char *disabled)
{
	private_sasync_control_t *this;

	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.vici = vici,
		.role = role,
		.counters = counters,
		.promote = promote,
		.outbound = outbound,
		.apply = apply,
		.link = link,
		.capture = capture,
		.node_id = strdup(node_id),
		.priority = priority,
		.disabled = disabled,
	);

	vici->add_event(vici, EVENT_ROLE);
	vici->add_event(vici, EVENT_SYNC_ERROR);
	vici->add_event(vici, EVENT_LIST_SA);
	vici->add_command(vici, "ha-status", (sasync_vici_cmd_t)cmd_status, this);
	vici->add_command(vici, "ha-list-sas", (sasync_vici_cmd_t)cmd_list_sas,
					  this);
	vici->add_command(vici, "ha-promote", (sasync_vici_cmd_t)cmd_promote,
					  this);
	vici->add_command(vici, "ha-demote", (sasync_vici_cmd_t)cmd_demote, this);
	vici->add_command(vici, "ha-resync", (sasync_vici_cmd_t)cmd_resync, this);

	role->add_listener(role, (sasync_role_cb_t)role_changed, this);
	if (link)
	{
		link->set_error_cb(link, (sasync_link_error_t)sync_error, this);
	}
	apply->set_error_cb(apply, (sasync_apply_error_t)sync_error, this);
	return &this->public;
}
