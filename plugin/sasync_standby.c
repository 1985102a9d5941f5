/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_standby.h"
#include "sasync_resync.h"

#include <daemon.h>

typedef struct private_sasync_standby_t private_sasync_standby_t;

struct private_sasync_standby_t {

	/** public interface */
	sasync_standby_t public;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;
};

/**
 * Whether a message is one of an IKE SA this node initiates itself, before
 * it is established (IKE_SA_INIT, IKE_AUTH, Main or Aggressive Mode)
 */
static bool own_initiation(ike_sa_t *ike_sa)
{
	return ike_sa && ike_sa->get_state(ike_sa) == IKE_CONNECTING &&
		   ike_sa->has_condition(ike_sa, COND_ORIGINAL_INITIATOR);
}

/*
 * Every way charon initiates an IKE SA (controller, trap acquires,
 * reestablish() for DPD and close actions, retry and redirect jobs) ends in
 * its task manager generating the first message through
 * ike_sa_t.generate_message(), which calls this hook just before encoding.
 * Listeners can't fail a task, and ike_state_change(IKE_CONNECTING) comes
 * before anything could be undone; but a message without an exchange type
 * can't be encoded: the task manager then gives up the IKE SA (DESTROY_ME,
 * no updown event since it never got past IKE_CONNECTING) and its caller
 * destroys it. Nothing is sent, the peer never hears of it. Wrapping
 * charon->controller or charon->traps instead would miss reestablish() and
 * the jobs, which create and initiate IKE SAs on their own.
 */
METHOD(listener_t, message_hook, bool,
	private_sasync_standby_t *this, ike_sa_t *ike_sa, message_t *message,
	bool incoming, bool plain)
{
	if (incoming || !plain || !own_initiation(ike_sa) ||
		this->role->get(this->role) != SASYNC_ROLE_STANDBY)
	{
		return TRUE;
	}
	DBG1(DBG_APP, "sasync: standby, not initiating IKE_SA %s[%u] (%N), "
		 "only the primary does", ike_sa->get_name(ike_sa),
		 ike_sa->get_unique_id(ike_sa), exchange_type_names,
		 message->get_exchange_type(message));
	message->set_exchange_type(message, EXCHANGE_TYPE_UNDEFINED);
	this->counters->inc(this->counters, SASYNC_CTR_INITIATE_REFUSED);
	return TRUE;
}

/**
 * Whether an IKE SA of the connection holds a CHILD SA of the config:
 * restored from sync, or brought up since
 */
static bool held(peer_cfg_t *peer_cfg, child_cfg_t *child_cfg)
{
	enumerator_t *enumerator, *children;
	child_sa_t *child_sa;
	ike_sa_t *ike_sa;
	bool found = FALSE;

	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (!found && enumerator->enumerate(enumerator, &ike_sa))
	{
		if (!streq(ike_sa->get_name(ike_sa), peer_cfg->get_name(peer_cfg)))
		{
			continue;
		}
		children = ike_sa->create_child_sa_enumerator(ike_sa);
		while (!found && children->enumerate(children, &child_sa))
		{
			found = sasync_resync_names_child(child_sa) &&
					streq(child_sa->get_name(child_sa),
						  child_cfg->get_name(child_cfg));
		}
		children->destroy(children);
	}
	enumerator->destroy(enumerator);
	return found;
}

/**
 * Whether a trap of the CHILD config is installed
 */
static bool trapped(peer_cfg_t *peer_cfg, child_cfg_t *child_cfg)
{
	enumerator_t *enumerator;
	peer_cfg_t *trap_peer;
	child_sa_t *child_sa;
	bool found = FALSE;

	enumerator = charon->traps->create_enumerator(charon->traps);
	while (!found && enumerator->enumerate(enumerator, &trap_peer, &child_sa))
	{
		found = streq(trap_peer->get_name(trap_peer),
					  peer_cfg->get_name(peer_cfg)) &&
				streq(child_sa->get_name(child_sa),
					  child_cfg->get_name(child_cfg));
	}
	enumerator->destroy(enumerator);
	return found;
}

/**
 * Do the start action of one CHILD config as vici does when it loads one,
 * unless the node holds it already; TRUE if something was done
 */
static bool start_action(peer_cfg_t *peer_cfg, child_cfg_t *child_cfg)
{
	action_t action = child_cfg->get_start_action(child_cfg);
	char *name = child_cfg->get_name(child_cfg);

	if (action & ACTION_TRAP)
	{	/* vici installed it when the standby loaded it; its acquires were
		 * refused until now, the next one initiates */
		if (child_cfg->get_mode(child_cfg) == MODE_PASS ||
			child_cfg->get_mode(child_cfg) == MODE_DROP ||
			trapped(peer_cfg, child_cfg))
		{
			return FALSE;
		}
		DBG1(DBG_APP, "sasync: promoted, installing '%s'", name);
		return charon->traps->install(charon->traps, peer_cfg, child_cfg);
	}
	if (!(action & ACTION_START) || held(peer_cfg, child_cfg))
	{
		return FALSE;
	}
	DBG1(DBG_APP, "sasync: promoted, initiating '%s', not held", name);
	charon->controller->initiate(charon->controller,
					peer_cfg->get_ref(peer_cfg), child_cfg->get_ref(child_cfg),
					NULL, NULL, 0, FALSE);
	return TRUE;
}

METHOD(sasync_standby_t, start_actions, u_int,
	private_sasync_standby_t *this)
{
	enumerator_t *enumerator, *children;
	peer_cfg_t *peer_cfg;
	child_cfg_t *child_cfg;
	u_int started = 0;

	enumerator = charon->backends->create_peer_cfg_enumerator(charon->backends,
											NULL, NULL, NULL, NULL, IKE_ANY);
	while (enumerator->enumerate(enumerator, &peer_cfg))
	{
		children = peer_cfg->create_child_cfg_enumerator(peer_cfg);
		while (children->enumerate(children, &child_cfg))
		{
			if (start_action(peer_cfg, child_cfg))
			{
				this->counters->inc(this->counters, SASYNC_CTR_START_ACTIONS);
				started++;
			}
		}
		children->destroy(children);
	}
	enumerator->destroy(enumerator);
	return started;
}

METHOD(sasync_standby_t, destroy, void,
	private_sasync_standby_t *this)
{
	free(this);
}

/*
 * Described in header
 */
sasync_standby_t *sasync_standby_create(sasync_role_t *role,
										sasync_counters_t *counters)
{
	private_sasync_standby_t *this;

	INIT(this,
		.public = {
			.listener = {
				.message = _message_hook,
			},
			.start_actions = _start_actions,
			.destroy = _destroy,
		},
		.role = role,
		.counters = counters,
	);
	return &this->public;
}
