/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_switchover.h"
#include "sasync_link.h"

#include <daemon.h>
#include <collections/array.h>
#include <processing/jobs/callback_job.h>
#include <threading/mutex.h>
#include <threading/condvar.h>

/** ms between two looks at the exchanges still in flight */
#define POLL_MS 20

typedef struct private_sasync_switchover_t private_sasync_switchover_t;

/**
 * Private data of a sasync_switchover_t object.
 */
struct private_sasync_switchover_t {

	/**
	 * Public interface
	 */
	sasync_switchover_t public;

	/**
	 * Role of this node
	 */
	sasync_role_t *role;

	/**
	 * Promotion and demotion
	 */
	sasync_promote_t *promote;

	/**
	 * Key store
	 */
	sasync_keystore_t *keys;

	/**
	 * Counters
	 */
	sasync_counters_t *counters;

	/**
	 * Sync link, NULL for none
	 */
	sasync_link_t *link;

	/**
	 * Unique IDs of the IKE SAs with an exchange in flight (u_int)
	 */
	array_t *busy;

	/**
	 * Unique IDs of the IKE SAs made passive, active again if the
	 * switchover is cancelled (u_int)
	 */
	array_t *drained;

	/**
	 * Exchanges seen in flight at the start or later
	 */
	u_int waited;

	/**
	 * What hands the role over ("switchover to b", a demotion's reason)
	 */
	char *why;

	/**
	 * The node taking over may go, cancelling the switchover (not a
	 * demotion asked for on this node)
	 */
	bool cancellable;

	/**
	 * IKE SAs made passive, by the looks and by the demotion
	 */
	u_int passive;

	/**
	 * When the exchanges still in flight are cut (sasync_link_time_ms())
	 */
	uint64_t deadline;

	/**
	 * A switchover is running, was cancelled, demotes (too late to cancel),
	 * the job works now, the object was destroyed
	 */
	bool running;
	bool cancelled;
	bool demoting;
	bool working;
	bool stopped;

	/**
	 * Signals the end of the job's work, for destroy()
	 */
	condvar_t *condvar;

	/**
	 * References: the owner and the running job
	 */
	refcount_t ref;

	/**
	 * Protects the flags
	 */
	mutex_t *mutex;
};

/*
 * Described in header
 */
bool sasync_switchover_busy(ike_sa_t *ike_sa)
{
	task_queue_t queues[] = { TASK_QUEUE_ACTIVE, TASK_QUEUE_PASSIVE };
	enumerator_t *enumerator;
	task_t *task;
	bool busy = FALSE;
	int i;

	for (i = 0; i < countof(queues) && !busy; i++)
	{
		enumerator = ike_sa->create_task_enumerator(ike_sa, queues[i]);
		busy = enumerator->enumerate(enumerator, &task);
		enumerator->destroy(enumerator);
	}
	return busy;
}

static void switchover_put(private_sasync_switchover_t *this)
{
	if (ref_put(&this->ref))
	{
		array_destroy(this->busy);
		array_destroy(this->drained);
		this->condvar->destroy(this->condvar);
		this->mutex->destroy(this->mutex);
		free(this->why);
		free(this);
	}
}

/**
 * Look at one IKE SA, checked out: one still busy is noted in the busy
 * list, one done becomes passive. Tasks queued behind an exchange run as
 * charon would (an IKEv1 Quick Mode after Main Mode, an operator's delete):
 * the SA stays busy until its queue is done, or the switchover times out.
 */
static void look_at(private_sasync_switchover_t *this, ike_sa_t *ike_sa)
{
	u_int id = ike_sa->get_unique_id(ike_sa);

	if (sasync_switchover_busy(ike_sa))
	{
		array_insert(this->busy, ARRAY_TAIL, &id);
	}
	else if (sasync_promote_make_passive(ike_sa, this->keys))
	{
		array_insert(this->drained, ARRAY_TAIL, &id);
	}
}

/**
 * Look at every IKE SA, as a demotion walks them
 */
static void look_at_all(private_sasync_switchover_t *this)
{
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;

	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if (ike_sa->get_state(ike_sa) != IKE_PASSIVE)
		{
			look_at(this, ike_sa);
		}
	}
	enumerator->destroy(enumerator);
	this->waited += array_count(this->busy);
}

/**
 * Look again at the IKE SAs that were busy; gone ones are done
 */
static void look_at_busy(private_sasync_switchover_t *this)
{
	array_t *busy = this->busy;
	ike_sa_t *ike_sa;
	u_int id;

	this->busy = array_create(sizeof(u_int), 0);
	while (array_remove(busy, ARRAY_HEAD, &id))
	{
		ike_sa = charon->ike_sa_manager->checkout_by_id(
												charon->ike_sa_manager, id);
		if (ike_sa)
		{
			look_at(this, ike_sa);
			charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		}
	}
	array_destroy(busy);
}

/**
 * The switchover was cancelled: make the SAs it made passive active again
 * (established, so charon schedules their rekeying and DPD anew)
 */
static void reactivate(private_sasync_switchover_t *this)
{
	ike_sa_t *ike_sa;
	u_int id, count = 0;

	while (array_remove(this->drained, ARRAY_HEAD, &id))
	{
		ike_sa = charon->ike_sa_manager->checkout_by_id(
												charon->ike_sa_manager, id);
		if (ike_sa)
		{
			if (ike_sa->get_state(ike_sa) == IKE_PASSIVE)
			{
				ike_sa->set_state(ike_sa, IKE_ESTABLISHED);
				count++;
			}
			charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		}
	}
	DBG1(DBG_APP, "sasync: %s cancelled, the node is gone: %u IKE_SAs "
		 "active again", this->why, count);
}

/**
 * Hand the role over: demote, cutting what is still in flight
 */
static void demote(private_sasync_switchover_t *this)
{
	char reason[384];
	u_int cut = array_count(this->busy), done = this->waited - cut, count = 0;

	if (cut)
	{
		this->counters->add(this->counters, SASYNC_CTR_SWITCHOVER_CUT, cut);
		DBG1(DBG_APP, "sasync: %s: %u IKE_SAs still have an exchange in "
			 "flight, cut by the demotion", this->why, cut);
	}
	this->counters->add(this->counters, SASYNC_CTR_SWITCHOVER_WAITED, done);
	snprintf(reason, sizeof(reason), "%s, %u exchanges completed first",
			 this->why, done);
	if (this->promote->demote(this->promote, reason, &count))
	{
		this->counters->inc(this->counters, SASYNC_CTR_SWITCHOVERS);
	}
	this->passive = array_count(this->drained) + count;
}

/**
 * Records still queued for the partners: the heartbeat that says we are a
 * standby would overtake them (it goes before queued records), and the
 * new primary would promote before it applied them
 */
static bool records_queued(private_sasync_switchover_t *this)
{
	return this->link && this->link->get_queued(this->link, NULL);
}

/**
 * Whether to look again in POLL_MS: exchanges or records are left, and
 * the deadline did not pass
 */
static bool look_again(private_sasync_switchover_t *this)
{
	return (array_count(this->busy) || records_queued(this)) &&
		   sasync_link_time_ms() < this->deadline;
}

/**
 * One look at the exchanges in flight, every POLL_MS until none is left,
 * the deadline passed or the switchover was cancelled
 */
static job_requeue_t drain(private_sasync_switchover_t *this)
{
	bool cancelled;

	this->mutex->lock(this->mutex);
	if (this->stopped)
	{
		this->mutex->unlock(this->mutex);
		return JOB_REQUEUE_NONE;
	}
	this->working = TRUE;
	cancelled = this->cancelled;
	this->mutex->unlock(this->mutex);

	if (!cancelled)
	{
		look_at_busy(this);
		if (!array_count(this->busy))
		{	/* a completed IKE rekey left a new SA, established and not
			 * listed */
			look_at_all(this);
		}
	}
	this->mutex->lock(this->mutex);
	cancelled = this->cancelled;
	if (!cancelled && look_again(this))
	{
		this->working = FALSE;
		this->condvar->signal(this->condvar);
		this->mutex->unlock(this->mutex);
		return JOB_RESCHEDULE_MS(POLL_MS);
	}
	/* from here on a cancel comes too late: we demote */
	this->demoting = !cancelled;
	this->mutex->unlock(this->mutex);

	if (cancelled)
	{
		reactivate(this);
	}
	else
	{
		demote(this);
	}
	this->mutex->lock(this->mutex);
	this->running = this->working = this->demoting = FALSE;
	this->condvar->signal(this->condvar);
	this->mutex->unlock(this->mutex);
	return JOB_REQUEUE_NONE;
}

METHOD(sasync_switchover_t, start, bool,
	private_sasync_switchover_t *this, char *why, bool cancellable,
	u_int timeout)
{
	this->mutex->lock(this->mutex);
	if (this->running || this->stopped ||
		this->role->get(this->role) != SASYNC_ROLE_PRIMARY)
	{
		this->mutex->unlock(this->mutex);
		return FALSE;
	}
	this->running = TRUE;
	this->cancelled = FALSE;
	this->cancellable = cancellable;
	free(this->why);
	this->why = strdup(why);
	this->mutex->unlock(this->mutex);

	this->deadline = sasync_link_time_ms() + timeout;
	this->waited = this->passive = 0;
	array_destroy(this->busy);
	array_destroy(this->drained);
	this->busy = array_create(sizeof(u_int), 0);
	this->drained = array_create(sizeof(u_int), 0);
	DBG1(DBG_APP, "sasync: %s: finishing the exchanges in flight first, at "
		 "most %u ms", why, timeout);
	ref_get(&this->ref);
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create_with_prio((callback_job_cb_t)drain,
							this, (void*)switchover_put,
							(callback_job_cancel_t)return_false,
							JOB_PRIO_HIGH));
	return TRUE;
}

METHOD(sasync_switchover_t, cancel, void,
	private_sasync_switchover_t *this)
{
	this->mutex->lock(this->mutex);
	if (this->running && this->cancellable && !this->cancelled &&
		!this->demoting)
	{
		this->cancelled = TRUE;
	}
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_switchover_t, get_passive, u_int,
	private_sasync_switchover_t *this)
{
	u_int passive;

	this->mutex->lock(this->mutex);
	passive = this->passive;
	this->mutex->unlock(this->mutex);
	return passive;
}

METHOD(sasync_switchover_t, is_running, bool,
	private_sasync_switchover_t *this)
{
	bool running;

	this->mutex->lock(this->mutex);
	running = this->running;
	this->mutex->unlock(this->mutex);
	return running;
}

METHOD(sasync_switchover_t, destroy, void,
	private_sasync_switchover_t *this)
{
	this->mutex->lock(this->mutex);
	this->stopped = TRUE;
	while (this->working)
	{	/* it uses promotion and the key store, destroyed after us */
		this->condvar->wait(this->condvar, this->mutex);
	}
	this->mutex->unlock(this->mutex);
	switchover_put(this);
}

/*
 * Described in header
 */
sasync_switchover_t *sasync_switchover_create(sasync_role_t *role,
											  sasync_promote_t *promote,
											  sasync_keystore_t *keys,
											  sasync_counters_t *counters,
											  sasync_link_t *link)
{
	private_sasync_switchover_t *this;

	INIT(this,
		.public = {
			.start = _start,
			.cancel = _cancel,
			.is_running = _is_running,
			.get_passive = _get_passive,
			.destroy = _destroy,
		},
		.role = role,
		.promote = promote,
		.keys = keys,
		.counters = counters,
		.link = link,
		.busy = array_create(sizeof(u_int), 0),
		.drained = array_create(sizeof(u_int), 0),
		.ref = 1,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.condvar = condvar_create(CONDVAR_TYPE_DEFAULT),
	);
	return &this->public;
}
