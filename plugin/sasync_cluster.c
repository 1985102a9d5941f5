/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_cluster.h"

#include <daemon.h>
#include <collections/array.h>
#include <processing/jobs/callback_job.h>
#include <threading/mutex.h>
#include <threading/condvar.h>
#include <utils/debug.h>

#include <unistd.h>

/** start-up grace before a standby that heard no primary elects, in
 * heartbeat timeouts */
#define GRACE_TIMEOUTS 3

/** length of the fixed part of the heartbeat data: version, role,
 * priority (2), epoch (4), name length; the name and (version 2) a byte of
 * flags follow */
#define BEAT_FIXED 9

/** longest wait of a switchover, beyond the timeouts, for the promotion */
#define SWITCHOVER_GRACE_MS 1000

typedef struct private_sasync_cluster_t private_sasync_cluster_t;

/**
 * Private data of a sasync_cluster_t object.
 */
struct private_sasync_cluster_t {

	/**
	 * Public interface.
	 */
	sasync_cluster_t public;

	/**
	 * Sync link, its heartbeats carry our state
	 */
	sasync_link_t *link;

	/**
	 * Role of this node
	 */
	sasync_role_t *role;

	/**
	 * Promotion and demotion
	 */
	sasync_promote_t *promote;

	/**
	 * Hand-over of the role, the old primary's side
	 */
	sasync_switchover_t *switchover;

	/**
	 * Longest wait of a switchover for the exchanges in flight (ms), 0 for
	 * immediate switchovers; the heartbeat timeout (ms)
	 */
	u_int switch_timeout;
	u_int timeout;

	/**
	 * Our heartbeats ask the primary to hand over
	 */
	bool takeover;

	/**
	 * Signals changes of the partners to a switchover waiting for them
	 */
	condvar_t *condvar;

	/**
	 * Serializes the updates of our heartbeat data
	 */
	mutex_t *beat_mutex;

	/**
	 * Capture side, asks a new primary for a resync
	 */
	sasync_capture_t *capture;

	/**
	 * Counters
	 */
	sasync_counters_t *counters;

	/**
	 * Partner nodes, sasync_cluster_node_t*
	 */
	array_t *nodes;

	/**
	 * Our name, priority and epoch
	 */
	char *name;
	u_int priority;
	uint32_t epoch;

	/**
	 * Highest epoch heard or held
	 */
	uint32_t max_epoch;

	/**
	 * Elect from heartbeats, and promote over lower priorities
	 */
	bool election;
	bool preempt;

	/**
	 * A primary has been alive since we started
	 */
	bool primary_seen;

	/**
	 * We were demoted: our SAs may be stale, a full resync from the next
	 * living primary brings them up to date
	 */
	bool need_resync;

	/**
	 * End of the start-up grace (time_monotonic() ms)
	 */
	uint64_t grace_end;

	/**
	 * Set on destroy, for jobs still queued
	 */
	bool stopped;

	/**
	 * References: the owner and queued jobs
	 */
	refcount_t ref;

	/**
	 * Listener for node changes, called under the lock
	 */
	sasync_cluster_listener_t *listener;

	/**
	 * Protects nodes, epochs, flags and the listener
	 */
	mutex_t *mutex;
};

/**
 * Drop a reference, freeing with the last
 */
static void cluster_put(private_sasync_cluster_t *this)
{
	sasync_cluster_node_t *node;

	if (ref_put(&this->ref))
	{
		while (array_remove(this->nodes, ARRAY_HEAD, &node))
		{
			node->host->destroy(node->host);
			free(node);
		}
		array_destroy(this->nodes);
		this->condvar->destroy(this->condvar);
		this->beat_mutex->destroy(this->beat_mutex);
		this->mutex->destroy(this->mutex);
		free(this->name);
		free(this);
	}
}

/**
 * Make our heartbeats carry our current state. Serialized, so the last
 * state wins; not with our lock held: the link calls on_beat() with its
 * lock held, which takes ours.
 */
static void publish_beat(private_sasync_cluster_t *this)
{
	u_char data[BEAT_FIXED + SASYNC_NODE_ID_MAX + 1];
	size_t len = min(strlen(this->name), SASYNC_NODE_ID_MAX);
	uint32_t epoch;
	uint8_t flags;

	this->beat_mutex->lock(this->beat_mutex);
	this->mutex->lock(this->mutex);
	epoch = this->epoch;
	flags = this->takeover ? SASYNC_BEAT_TAKEOVER : 0;
	this->mutex->unlock(this->mutex);
	/* version 1 without flags: nodes of version 1 accept no other */
	data[0] = flags ? SASYNC_BEAT_VERSION : 1;
	data[1] = this->role->get(this->role);
	htoun16(data + 2, min(this->priority, 0xffff));
	htoun32(data + 4, epoch);
	data[8] = len;
	memcpy(data + BEAT_FIXED, this->name, len);
	data[BEAT_FIXED + len] = flags;
	this->link->set_beat_data(this->link,
							  chunk_create(data, BEAT_FIXED + len + !!flags));
	this->beat_mutex->unlock(this->beat_mutex);
}

/**
 * Decode the data of a heartbeat into a node, FALSE if invalid
 */
static bool parse_beat(chunk_t data, sasync_cluster_node_t *node)
{
	size_t flags;

	if (data.len < BEAT_FIXED || !data.ptr[0] ||
		data.ptr[0] > SASYNC_BEAT_VERSION)
	{
		return FALSE;
	}
	flags = data.ptr[0] > 1 ? 1 : 0;
	if (data.ptr[1] > SASYNC_ROLE_PRIMARY ||
		data.len != BEAT_FIXED + data.ptr[8] + flags ||
		data.ptr[8] > SASYNC_NODE_ID_MAX)
	{
		return FALSE;
	}
	node->takeover = flags && (data.ptr[data.len - 1] & SASYNC_BEAT_TAKEOVER);
	node->role = data.ptr[1];
	node->priority = untoh16(data.ptr + 2);
	node->epoch = untoh32(data.ptr + 4);
	memcpy(node->name, data.ptr + BEAT_FIXED, data.ptr[8]);
	node->name[data.ptr[8]] = '\0';
	return TRUE;
}

/**
 * Find the node of a configured address, with the lock held
 */
static sasync_cluster_node_t *find_node(private_sasync_cluster_t *this,
										host_t *host)
{
	sasync_cluster_node_t *node;
	int i;

	for (i = 0; i < array_count(this->nodes); i++)
	{
		array_get(this->nodes, i, &node);
		if (host->equals(host, node->host))
		{
			return node;
		}
	}
	INIT(node,
		.host = host->clone(host),
	);
	array_insert(this->nodes, ARRAY_TAIL, node);
	return node;
}

static job_requeue_t evaluate(private_sasync_cluster_t *this);

/**
 * Queue an evaluation of the roles, in a job of its own
 */
static void queue_evaluate(private_sasync_cluster_t *this, uint32_t delay)
{
	job_t *job;

	ref_get(&this->ref);
	job = (job_t*)callback_job_create_with_prio((callback_job_cb_t)evaluate,
							this, (void*)cluster_put,
							(callback_job_cancel_t)return_false,
							JOB_PRIO_CRITICAL);
	if (delay)
	{
		lib->scheduler->schedule_job_ms(lib->scheduler, job, delay);
	}
	else
	{
		lib->processor->queue_job(lib->processor, job);
	}
}

/**
 * Heartbeats and dead partners, from the link (its lock held): note them,
 * and evaluate the roles in a job if anything changed
 */
CALLBACK(on_beat, void,
	private_sasync_cluster_t *this, host_t *peer, bool alive, chunk_t beat)
{
	sasync_cluster_node_t *node, heard = {};
	bool changed, wanted;

	this->mutex->lock(this->mutex);
	node = find_node(this, peer);
	if (alive && !beat.len)
	{	/* sent before the partner's cluster set its data */
		this->mutex->unlock(this->mutex);
		return;
	}
	if (alive && !parse_beat(beat, &heard))
	{
		this->mutex->unlock(this->mutex);
		DBG1(DBG_APP, "sasync: heartbeat from %#H without valid node data, "
			 "ignored", peer);
		return;
	}
	changed = node->alive != alive;
	node->alive = alive;
	if (alive)
	{
		changed = changed || !node->heard || node->role != heard.role ||
				  node->epoch != heard.epoch ||
				  node->priority != heard.priority ||
				  node->takeover != heard.takeover;
		node->heard = TRUE;
		node->takeover = heard.takeover;
		node->role = heard.role;
		node->priority = heard.priority;
		node->epoch = heard.epoch;
		memcpy(node->name, heard.name, sizeof(node->name));
		this->max_epoch = max(this->max_epoch, heard.epoch);
		if (heard.role == SASYNC_ROLE_PRIMARY)
		{
			this->primary_seen = TRUE;
		}
	}
	if (changed && this->listener)
	{
		this->listener->node_changed(this->listener, node);
	}
	if (changed)
	{
		this->condvar->broadcast(this->condvar);
	}
	/* a resync to ask for, or a switchover to start, cancel or complete */
	wanted = this->need_resync || this->takeover || heard.takeover ||
			 this->switchover->is_running(this->switchover);
	this->mutex->unlock(this->mutex);
	if (changed && (this->election || wanted))
	{
		queue_evaluate(this, 0);
	}
}

/**
 * Role changes, by promotion, demotion or the election: a new primary
 * takes the next epoch; heartbeats tell the others
 */
static void role_changed(private_sasync_cluster_t *this,
						 sasync_role_state_t role, char *reason)
{
	this->mutex->lock(this->mutex);
	if (role == SASYNC_ROLE_PRIMARY)
	{
		this->epoch = ++this->max_epoch;
		this->takeover = FALSE;
	}
	this->need_resync = role == SASYNC_ROLE_STANDBY;
	this->mutex->unlock(this->mutex);
	publish_beat(this);
	if (role == SASYNC_ROLE_STANDBY)
	{	/* a primary may be alive already, or come later (on_beat()) */
		queue_evaluate(this, 0);
	}
}

/**
 * The living primary among the partners (the last listed, if several),
 * NULL if none; with the lock held
 */
static sasync_cluster_node_t *living_primary(private_sasync_cluster_t *this)
{
	sasync_cluster_node_t *node, *primary = NULL;
	int i;

	for (i = 0; i < array_count(this->nodes); i++)
	{
		array_get(this->nodes, i, &node);
		if (node->alive && node->role == SASYNC_ROLE_PRIMARY)
		{
			primary = node;
		}
	}
	return primary;
}

/**
 * Whether node a is a better primary than b, by priority and then name
 */
static bool better(u_int prio_a, char *name_a, u_int prio_b, char *name_b)
{
	return prio_a != prio_b ? prio_a > prio_b : strcmp(name_a, name_b) < 0;
}

/**
 * As primary: the living primary that wins over us, if any, with the lock
 * held. The more recent epoch wins, then priority, then the name.
 */
static sasync_cluster_node_t *other_primary(private_sasync_cluster_t *this)
{
	sasync_cluster_node_t *node;
	int i;

	for (i = 0; i < array_count(this->nodes); i++)
	{
		array_get(this->nodes, i, &node);
		if (node->alive && node->role == SASYNC_ROLE_PRIMARY &&
			(node->epoch != this->epoch ? node->epoch > this->epoch :
			 better(node->priority, node->name, this->priority, this->name)))
		{
			return node;
		}
	}
	return NULL;
}

/**
 * As standby: why we should promote ourselves, NULL if not; with the lock
 * held
 */
static char *should_promote(private_sasync_cluster_t *this)
{
	sasync_cluster_node_t *node, *primary = living_primary(this);
	int i;

	if (this->takeover)
	{	/* the switchover we wait for promotes us */
		return NULL;
	}
	if (primary)
	{
		return this->preempt && this->priority > primary->priority ?
					"election: preempting a primary of lower priority" : NULL;
	}
	if (!this->primary_seen && sasync_link_time_ms() < this->grace_end)
	{	/* the primary may just not have connected yet */
		return NULL;
	}
	for (i = 0; i < array_count(this->nodes); i++)
	{
		array_get(this->nodes, i, &node);
		if (node->alive && node->heard &&
			(node->takeover ||
			 better(node->priority, node->name, this->priority, this->name)))
		{	/* that one promotes itself (a switchover: in any case) */
			return NULL;
		}
	}
	return this->primary_seen ? "election: primary lost"
							  : "election: no primary in the cluster";
}

/**
 * As primary: the name of a living standby that asks us to hand over, NULL
 * if none; with the lock held
 */
static char *takeover_by(private_sasync_cluster_t *this)
{
	sasync_cluster_node_t *node;
	int i;

	for (i = 0; i < array_count(this->nodes); i++)
	{
		array_get(this->nodes, i, &node);
		if (node->alive && node->takeover &&
			node->role == SASYNC_ROLE_STANDBY)
		{
			return node->name;
		}
	}
	return NULL;
}

/**
 * As primary: start handing over to a standby that asks, or cancel that
 * if it is gone and none took over; with the lock held
 */
static void check_switchover(private_sasync_cluster_t *this)
{
	sasync_switchover_t *switchover = this->switchover;
	char *to = takeover_by(this), why[SASYNC_NODE_ID_MAX + 32];

	if (to && this->switch_timeout)
	{	/* FALSE if running already */
		snprintf(why, sizeof(why), "switchover to %s", to);
		switchover->start(switchover, why, TRUE, this->switch_timeout);
	}
	else if (!to && !living_primary(this))
	{
		switchover->cancel(switchover);
	}
}

/**
 * Promote or demote this node as the heartbeats tell
 */
static job_requeue_t evaluate(private_sasync_cluster_t *this)
{
	sasync_role_state_t role;
	sasync_cluster_node_t *node;
	char reason[128] = "", *why = NULL;
	bool resync = FALSE;

	if (this->stopped)
	{
		return JOB_REQUEUE_NONE;
	}
	/* not with our lock: role changes call us with the role's lock held */
	role = this->role->get(this->role);
	this->mutex->lock(this->mutex);
	if (role == SASYNC_ROLE_PRIMARY)
	{
		node = this->election ? other_primary(this) : NULL;
		if (node)
		{
			snprintf(reason, sizeof(reason), "split brain: %s is primary "
					 "with epoch %u, ours %u", node->name, node->epoch,
					 this->epoch);
		}
		check_switchover(this);
	}
	else
	{
		why = this->election ? should_promote(this) : NULL;
		resync = !why && this->need_resync && living_primary(this);
		if (resync)
		{
			this->need_resync = FALSE;
		}
	}
	this->mutex->unlock(this->mutex);

	if (reason[0] && this->promote->demote(this->promote, reason, NULL))
	{	/* the role change queued the resync towards the winner */
		this->counters->inc(this->counters, SASYNC_CTR_SPLIT_BRAIN);
	}
	if (why && this->promote->promote(this->promote, why, NULL))
	{
		this->counters->inc(this->counters, SASYNC_CTR_ELECTIONS);
	}
	if (resync)
	{
		DBG1(DBG_APP, "sasync: demoted, asking the primary for a full "
			 "resync");
		this->capture->request_resync(this->capture);
	}
	return JOB_REQUEUE_NONE;
}

METHOD(sasync_cluster_t, create_node_enumerator, enumerator_t*,
	private_sasync_cluster_t *this)
{
	this->mutex->lock(this->mutex);
	return enumerator_create_cleaner(array_create_enumerator(this->nodes),
									 (void*)this->mutex->unlock, this->mutex);
}

METHOD(sasync_cluster_t, set_listener, void,
	private_sasync_cluster_t *this, sasync_cluster_listener_t *listener)
{
	this->mutex->lock(this->mutex);
	this->listener = listener;
	this->mutex->unlock(this->mutex);
}

/**
 * Ask the living primary to hand over, and wait until it did (it is no
 * longer a living primary), the switchover timed out or another path
 * promoted us; with the lock held. TRUE if it handed over, or we are
 * primary already.
 */
static bool wait_handover(private_sasync_cluster_t *this,
						  sasync_cluster_node_t *primary)
{
	uint64_t end = sasync_link_time_ms() + this->switch_timeout +
				   this->timeout + SWITCHOVER_GRACE_MS;

	DBG1(DBG_APP, "sasync: switchover: asking %s to hand over, waiting at "
		 "most %u ms", primary->name, this->switch_timeout + this->timeout);
	this->takeover = TRUE;
	this->mutex->unlock(this->mutex);
	publish_beat(this);
	this->mutex->lock(this->mutex);
	while (this->takeover && living_primary(this) &&
		   sasync_link_time_ms() < end)
	{
		this->condvar->timed_wait(this->condvar, this->mutex, 100);
	}
	return !this->takeover || !living_primary(this);
}

/**
 * Wait (until the switchover's end at most) for the records the old
 * primary sent before it handed over: its heartbeat is handled as it is
 * read, its records are applied after it
 */
static void wait_delivered(private_sasync_cluster_t *this, host_t *from)
{
	uint64_t end = sasync_link_time_ms() + this->timeout;

	while (this->link->get_undelivered(this->link, from) &&
		   sasync_link_time_ms() < end)
	{
		usleep(10000);
	}
}

METHOD(sasync_cluster_t, promote, bool,
	private_sasync_cluster_t *this, char *reason, u_int *count)
{
	sasync_cluster_node_t *primary = NULL;
	char name[SASYNC_NODE_ID_MAX + 1], why[512];
	host_t *host;
	bool handed;

	this->mutex->lock(this->mutex);
	if (this->switch_timeout && !this->takeover &&
		this->role->get(this->role) == SASYNC_ROLE_STANDBY)
	{
		primary = living_primary(this);
	}
	if (!primary)
	{
		this->mutex->unlock(this->mutex);
		return this->promote->promote(this->promote, reason, count);
	}
	snprintf(name, sizeof(name), "%s", primary->name);
	host = primary->host->clone(primary->host);
	handed = wait_handover(this, primary);
	this->mutex->unlock(this->mutex);
	if (handed)
	{
		wait_delivered(this, host);
	}
	else
	{
		this->counters->inc(this->counters, SASYNC_CTR_SWITCHOVER_FORCED);
	}
	host->destroy(host);
	snprintf(why, sizeof(why), "%s, switchover: %s %s", reason, name,
			 handed ? "handed over" : "did not hand over in time");
	if (!this->promote->promote(this->promote, why, count))
	{	/* the election promoted us meanwhile (the primary died) */
		return this->role->get(this->role) == SASYNC_ROLE_PRIMARY;
	}
	return TRUE;
}

METHOD(sasync_cluster_t, demote, bool,
	private_sasync_cluster_t *this, char *reason, u_int *count)
{
	sasync_switchover_t *switchover = this->switchover;
	uint64_t end;

	if (!this->switch_timeout ||
		!switchover->start(switchover, reason, FALSE, this->switch_timeout))
	{
		return this->promote->demote(this->promote, reason, count);
	}
	end = sasync_link_time_ms() + this->switch_timeout + SWITCHOVER_GRACE_MS;
	while (switchover->is_running(switchover) && sasync_link_time_ms() < end)
	{
		usleep(10000);
	}
	if (count)
	{
		*count = switchover->get_passive(switchover);
	}
	return this->role->get(this->role) == SASYNC_ROLE_STANDBY;
}

METHOD(sasync_cluster_t, get_epoch, uint32_t,
	private_sasync_cluster_t *this)
{
	uint32_t epoch;

	this->mutex->lock(this->mutex);
	epoch = this->epoch;
	this->mutex->unlock(this->mutex);
	return epoch;
}

METHOD(sasync_cluster_t, destroy, void,
	private_sasync_cluster_t *this)
{
	this->link->set_beat_cb(this->link, NULL, NULL);
	this->stopped = TRUE;
	cluster_put(this);
}

/*
 * Described in header
 */
sasync_cluster_t *sasync_cluster_create(sasync_link_t *link,
										sasync_role_t *role,
										sasync_promote_t *promote,
										sasync_switchover_t *switchover,
										sasync_capture_t *capture,
										sasync_counters_t *counters,
										char *name, u_int priority,
										bool election, bool preempt,
										u_int timeout, u_int switch_timeout)
{
	private_sasync_cluster_t *this;

	INIT(this,
		.public = {
			.create_node_enumerator = _create_node_enumerator,
			.set_listener = _set_listener,
			.promote = _promote,
			.demote = _demote,
			.get_epoch = _get_epoch,
			.destroy = _destroy,
		},
		.link = link,
		.role = role,
		.promote = promote,
		.switchover = switchover,
		.switch_timeout = switch_timeout,
		.timeout = timeout,
		.capture = capture,
		.counters = counters,
		.nodes = array_create(0, 0),
		.name = strdup(name),
		.priority = priority,
		.election = election,
		.preempt = preempt,
		.ref = 1,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.condvar = condvar_create(CONDVAR_TYPE_DEFAULT),
		.beat_mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	this->grace_end = sasync_link_time_ms() + GRACE_TIMEOUTS * timeout;
	publish_beat(this);
	role->add_listener(role, (void*)role_changed, this);
	link->set_beat_cb(link, on_beat, this);
	if (election)
	{	/* a cluster without primary elects after the grace */
		queue_evaluate(this, GRACE_TIMEOUTS * timeout + 10);
	}
	return &this->public;
}
