/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_plugin.h"
#include "sasync_counters.h"
#include "sasync_role.h"
#include "sasync_link.h"
#include "sasync_crypt.h"
#include "sasync_cluster.h"
#include "sasync_address.h"
#include "sasync_keystore.h"
#include "sasync_capture.h"
#include "sasync_dispatch.h"
#include "sasync_apply.h"
#include "sasync_outbound.h"
#include "sasync_promote.h"
#include "sasync_switchover.h"
#include "sasync_standby.h"
#include "sasync_control.h"
#include "sasync_msg.h"
#include "sasync_secret.h"

#include <unistd.h>

#include <daemon.h>

typedef struct private_sasync_plugin_t private_sasync_plugin_t;

struct private_sasync_plugin_t {

	/** public interface */
	sasync_plugin_t public;

	/** counters */
	sasync_counters_t *counters;

	/** node role */
	sasync_role_t *role;

	/** sync channel, NULL if sync is disabled */
	sasync_link_t *link;

	/** keys from charon's credentials (secret_id), NULL if from the
	 * settings */
	sasync_secret_creds_t *creds;

	/** why sync is disabled, NULL if it is enabled */
	char *disabled;

	/** key inputs of every SA, below both sides */
	sasync_keystore_t *keys;

	/** active side */
	sasync_capture_t *capture;

	/** routes what the link receives */
	sasync_dispatch_t *dispatch;

	/** standby side */
	sasync_apply_t *apply;

	/** outbound guard of restored CHILD SAs */
	sasync_outbound_t *outbound;

	/** what a standby must not initiate, run at promotion */
	sasync_standby_t *standby;

	/** promotion */
	sasync_promote_t *promote;

	/** graceful hand-over of the role to a standby taking over */
	sasync_switchover_t *switchover;

	/** commands and events on the plugin's vici socket */
	sasync_control_t *control;

	/** roles from heartbeats */
	sasync_cluster_t *cluster;

	/** cluster addresses on the primary (built-in address mode) */
	sasync_address_t *addresses;
};

METHOD(plugin_t, get_name, char*,
	private_sasync_plugin_t *this)
{
	return "sasync";
}

static char *setting(char *key, char *def)
{
	return lib->settings->get_str(lib->settings, "%s.plugins.sasync.%s", def,
								  lib->ns, key);
}

/**
 * Parse the initial role, FALSE if the setting is invalid (logged)
 */
static bool parse_role(sasync_role_state_t *role)
{
	char *value = setting("role", "standby");

	if (strcaseeq(value, "primary"))
	{
		*role = SASYNC_ROLE_PRIMARY;
		return TRUE;
	}
	if (strcaseeq(value, "standby"))
	{
		*role = SASYNC_ROLE_STANDBY;
		return TRUE;
	}
	DBG1(DBG_APP, "sasync: invalid role '%s' (expected primary or standby), "
		 "SA sync disabled", value);
	return FALSE;
}

/**
 * Name of this node: the node_id setting, else the hostname, else the sync
 * listening address
 */
static char *node_id(char *buf, size_t len)
{
	char *id = setting("node_id", NULL), *local = setting("local", NULL);

	if (id && *id)
	{
		return id;
	}
	if (gethostname(buf, len) == 0 && buf[0])
	{
		buf[len - 1] = '\0';
		return buf;
	}
	return local ?: "unknown";
}

/**
 * Take the keys of the link from charon's credentials from now on, looked
 * up by identity for each handshake: swanctl loads them after charon starts
 * and --load-creds changes them at any time
 */
static void use_creds(private_sasync_plugin_t *this, sasync_link_t *link,
					  identification_t *id)
{
	sasync_secret_creds_t *old = this->creds;

	this->creds = sasync_secret_creds_create(id, this->counters);
	link->set_key_source(link, (void*)this->creds->get_keys, this->creds);
	/* no longer called once set_key_source() returned */
	DESTROY_IF(old);
}

/**
 * Create the sync link from the settings, NULL and a reason if they are bad
 */
static sasync_link_t *create_link(private_sasync_plugin_t *this)
{
	chunk_t keys[SASYNC_KEYS_MAX] = {};
	char *peers = setting("peers", NULL), *local = setting("local", "0.0.0.0");
	char host[256];
	identification_t *id;
	sasync_link_t *link;
	int count = 0;

	if (!peers || !strlen(peers))
	{
		DBG1(DBG_APP, "sasync: charon.plugins.sasync.peers missing, SA sync "
			 "disabled");
		this->disabled = "no peers";
		return NULL;
	}
	id = sasync_secret_id();
	if (!id)
	{
		count = sasync_secret_load(keys);
		if (!count)
		{
			DBG1(DBG_APP, "sasync: no valid secret, SA sync disabled");
			this->disabled = "no valid secret";
			return NULL;
		}
	}
	link = sasync_link_create(local, peers, node_id(host, sizeof(host)),
							  keys[0], this->counters);
	if (link && count > 1)
	{
		link->set_keys(link, keys, count);
	}
	sasync_secret_clear(keys);
	if (link && id)
	{
		use_creds(this, link, id);
	}
	else
	{
		DESTROY_IF(id);
	}
	return link;
}

/**
 * Priority of this node, the default if the setting is invalid (logged)
 */
static u_int node_priority()
{
	int priority;

	priority = lib->settings->get_int(lib->settings,
						"%s.plugins.sasync.priority", SASYNC_DEFAULT_PRIORITY,
						lib->ns);
	if (priority < 0)
	{
		DBG1(DBG_APP, "sasync: invalid priority %d, using %d", priority,
			 SASYNC_DEFAULT_PRIORITY);
		priority = SASYNC_DEFAULT_PRIORITY;
	}
	return priority;
}

/**
 * A positive integer setting, the default if invalid (logged)
 */
static u_int positive_setting(char *key, u_int def, u_int min)
{
	int value;

	value = lib->settings->get_int(lib->settings, "%s.plugins.sasync.%s", def,
								   lib->ns, key);
	if (value < (int)min)
	{
		DBG1(DBG_APP, "sasync: invalid %s %d (at least %u), using %u", key,
			 value, min, def);
		value = def;
	}
	return value;
}

/**
 * Start the heartbeats and the election on the link
 */
static void create_cluster(private_sasync_plugin_t *this)
{
	char host[256];
	u_int interval, lost, switch_timeout;

	interval = positive_setting("heartbeat_interval",
				SASYNC_HEARTBEAT_INTERVAL, SASYNC_HEARTBEAT_INTERVAL_MIN);
	lost = positive_setting("heartbeat_lost", SASYNC_HEARTBEAT_LOST, 2);
	/* graceful only if we move the addresses: with keepalived they moved
	 * already when its notify script promotes us */
	switch_timeout = this->addresses ? positive_setting("switchover_timeout",
									SASYNC_SWITCHOVER_TIMEOUT, 0) : 0;
	this->link->set_heartbeat(this->link, interval, lost);
	this->switchover = sasync_switchover_create(this->role, this->promote,
								this->keys, this->counters, this->link);
	this->cluster = sasync_cluster_create(this->link, this->role,
		this->promote, this->switchover, this->capture, this->counters,
		node_id(host, sizeof(host)), node_priority(),
		lib->settings->get_bool(lib->settings, "%s.plugins.sasync.election",
								TRUE, lib->ns),
		lib->settings->get_bool(lib->settings, "%s.plugins.sasync.preempt",
								FALSE, lib->ns),
		interval * lost, switch_timeout);
}

/**
 * Serve the plugin's vici socket
 */
static void create_control(private_sasync_plugin_t *this)
{
	char host[256];

	this->control = sasync_control_create(
							setting("socket", SASYNC_CONTROL_DEFAULT_URI),
							this->role, this->counters, this->promote,
							this->outbound, this->apply, this->link,
							this->capture, this->cluster,
							node_id(host, sizeof(host)),
							node_priority(), this->disabled);
}

static bool start(private_sasync_plugin_t *this)
{
	sasync_role_state_t initial = SASYNC_ROLE_STANDBY;

	if (!parse_role(&initial))
	{
		this->disabled = "invalid role";
	}
	this->role = sasync_role_create(initial);
	if (setting("addresses", NULL))
	{
		this->addresses = sasync_address_create(setting("addresses", NULL),
												this->role, this->counters);
		if (!this->addresses)
		{
			this->disabled = "invalid addresses";
		}
	}
	this->keys = sasync_keystore_create();
	this->outbound = sasync_outbound_create(this->role, this->counters,
											this->keys);
	this->apply = sasync_apply_create(this->role, this->counters,
									  this->outbound, this->keys);
	this->standby = sasync_standby_create(this->role, this->counters);
	this->promote = sasync_promote_create(this->role, this->counters,
										  this->apply, this->keys,
										  this->standby);
	charon->kernel->add_listener(charon->kernel, &this->outbound->kernel);
	charon->bus->add_listener(charon->bus, &this->outbound->bus);
	/* a standby initiates nothing, with or without sync */
	charon->bus->add_listener(charon->bus, &this->standby->listener);
	if (!this->disabled)
	{
		this->link = create_link(this);
		if (!this->link && !this->disabled)
		{
			this->disabled = "invalid local or peers";
		}
	}
	if (this->link)
	{
		this->capture = sasync_capture_create(this->link, this->role,
											  this->counters, this->keys);
		charon->bus->add_listener(charon->bus, &this->capture->listener);
		this->dispatch = sasync_dispatch_create(this->link, this->role,
												this->counters, this->capture,
												this->apply);
		create_cluster(this);
	}
	create_control(this);
	DBG1(DBG_APP, "sasync: started as %N, SA sync %s%s", sasync_role_names,
		 initial, this->disabled ? "disabled: " : "enabled",
		 this->disabled ?: "");
	return TRUE;
}

static void stop(private_sasync_plugin_t *this)
{
	DESTROY_IF(this->control);
	this->control = NULL;
	DESTROY_IF(this->cluster);
	this->cluster = NULL;
	DESTROY_IF(this->switchover);
	this->switchover = NULL;
	if (this->capture)
	{
		charon->bus->remove_listener(charon->bus, &this->capture->listener);
	}
	DESTROY_IF(this->link);
	this->link = NULL;
	DESTROY_IF(this->creds);
	this->creds = NULL;
	DESTROY_IF(this->dispatch);
	this->dispatch = NULL;
	DESTROY_IF(this->capture);
	this->capture = NULL;
	if (this->outbound)
	{
		charon->bus->remove_listener(charon->bus, &this->outbound->bus);
		charon->kernel->remove_listener(charon->kernel,
										&this->outbound->kernel);
	}
	if (this->standby)
	{
		charon->bus->remove_listener(charon->bus, &this->standby->listener);
	}
	DESTROY_IF(this->addresses);
	this->addresses = NULL;
	DESTROY_IF(this->promote);
	DESTROY_IF(this->standby);
	DESTROY_IF(this->apply);
	DESTROY_IF(this->outbound);
	DESTROY_IF(this->keys);
	DESTROY_IF(this->role);
	this->keys = NULL;
	this->promote = NULL;
	this->standby = NULL;
	this->apply = NULL;
	this->outbound = NULL;
	this->role = NULL;
}

static bool plugin_cb(private_sasync_plugin_t *this,
					  plugin_feature_t *feature, bool reg, void *cb_data)
{
	if (reg)
	{
		return start(this);
	}
	stop(this);
	return TRUE;
}

METHOD(plugin_t, get_features, int,
	private_sasync_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK((plugin_feature_callback_t)plugin_cb, NULL),
			PLUGIN_PROVIDE(CUSTOM, "sasync"),
				PLUGIN_SDEPEND(CUSTOM, "kernel-ipsec"),
				PLUGIN_SDEPEND(CUSTOM, "kernel-net"),
				/* the sync channel's crypto, known when the link starts */
				PLUGIN_SDEPEND(AEAD, ENCR_CHACHA20_POLY1305, 32),
				PLUGIN_SDEPEND(AEAD, ENCR_AES_GCM_ICV16, 32),
				PLUGIN_SDEPEND(KDF, KDF_PRF_PLUS),
				PLUGIN_SDEPEND(PRF, PRF_HMAC_SHA2_256),
				PLUGIN_SDEPEND(NONCE_GEN),
	};
	*features = f;
	return countof(f);
}

/**
 * Reload the keys of the sync channel (swanctl --reload-settings), so they
 * can be changed without a restart; the connections up keep theirs. Keys
 * from charon's credentials are looked up for each handshake anyway: this
 * only takes a new secret_id, or another key source.
 */
METHOD(plugin_t, reload, bool,
	private_sasync_plugin_t *this)
{
	chunk_t keys[SASYNC_KEYS_MAX];
	identification_t *id;
	int count;

	if (!this->link)
	{
		return FALSE;
	}
	id = sasync_secret_id();
	if (id)
	{
		DBG1(DBG_APP, "sasync: sync keys of '%Y' from charon's credentials", id);
		use_creds(this, this->link, id);
		return TRUE;
	}
	count = sasync_secret_load(keys);
	if (!count)
	{
		DBG1(DBG_APP, "sasync: keeping the sync keys in use");
		return FALSE;
	}
	this->link->set_key_source(this->link, NULL, NULL);
	DESTROY_IF(this->creds);
	this->creds = NULL;
	this->link->set_keys(this->link, keys, count);
	sasync_secret_clear(keys);
	DBG1(DBG_APP, "sasync: reloaded %d sync key%s", count, count > 1 ? "s" : "");
	return TRUE;
}

METHOD(plugin_t, destroy, void,
	private_sasync_plugin_t *this)
{
	stop(this);
	this->counters->destroy(this->counters);
	free(this);
}

/*
 * See header
 */
plugin_t *sasync_plugin_create()
{
	private_sasync_plugin_t *this;

	if (!lib->caps->keep(lib->caps, CAP_NET_ADMIN))
	{
		DBG1(DBG_APP, "sasync: plugin requires CAP_NET_ADMIN capability");
		return NULL;
	}
	if (!lib->caps->keep(lib->caps, CAP_NET_RAW))
	{	/* only needed for gratuitous ARP of the cluster addresses */
		DBG1(DBG_APP, "sasync: no CAP_NET_RAW capability, cluster addresses "
			 "are not announced by gratuitous ARP");
	}
	INIT(this,
		.public = {
			.plugin = {
				.get_name = _get_name,
				.get_features = _get_features,
				.reload = _reload,
				.destroy = _destroy,
			},
		},
		.counters = sasync_counters_create(),
	);
	return &this->public.plugin;
}
