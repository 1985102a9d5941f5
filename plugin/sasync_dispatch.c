/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_dispatch.h"
#include "sasync_msg.h"

#include <inttypes.h>

#include <daemon.h>
#include <collections/array.h>
#include <threading/mutex.h>
#include <processing/jobs/callback_job.h>

typedef struct private_sasync_dispatch_t private_sasync_dispatch_t;
typedef struct throttle_t throttle_t;

/**
 * Bulk resyncs per partner, shared with the jobs of deferred ones (which
 * may run after the dispatcher is gone: then they do nothing)
 */
struct throttle_t {

	/** resync_peer_t*, partners a resync was started for */
	array_t *peers;

	/** the dispatcher is destroyed */
	bool dead;

	/** node role, only a primary resyncs */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** sends bulk resyncs */
	sasync_capture_t *capture;

	/** protects the above; capture is only called with it held */
	mutex_t *mutex;

	/** the dispatcher and each job */
	refcount_t ref;
};

/**
 * Bulk resyncs of one partner
 */
typedef struct {
	host_t *peer;
	/** when the last one started (sasync_link_time_ms()) */
	uint64_t last;
	/** one is deferred to the end of the interval */
	bool pending;
} resync_peer_t;

struct private_sasync_dispatch_t {

	/** public interface */
	sasync_dispatch_t public;

	/** link we receive from */
	sasync_link_t *link;

	/** node role */
	sasync_role_t *role;

	/** standby side */
	sasync_apply_t *apply;

	/** bulk resyncs, at most one per partner and interval */
	throttle_t *throttle;
};

/** partners kept before those without a recent resync are forgotten */
#define PEERS_KEPT 16

static bool is_primary(private_sasync_dispatch_t *this)
{
	return this->role->get(this->role) == SASYNC_ROLE_PRIMARY;
}

static void peer_destroy(resync_peer_t *entry)
{
	entry->peer->destroy(entry->peer);
	free(entry);
}

static void throttle_unref(throttle_t *this)
{
	if (ref_put(&this->ref))
	{
		array_destroy_function(this->peers, (void*)peer_destroy, NULL);
		this->mutex->destroy(this->mutex);
		free(this);
	}
}

/**
 * Entry of a partner, created if there is none (mutex held). Entries of
 * partners without a resync in the interval go once there are many of them
 * (sources that are no configured partner)
 */
static resync_peer_t *get_peer(throttle_t *this, host_t *peer, uint64_t now)
{
	enumerator_t *enumerator;
	resync_peer_t *entry, *found = NULL;

	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &entry))
	{
		if (entry->peer->equals(entry->peer, peer))
		{
			found = entry;
		}
		else if (array_count(this->peers) > PEERS_KEPT && !entry->pending &&
				 now - entry->last >= SASYNC_RESYNC_INTERVAL_MS)
		{
			array_remove_at(this->peers, enumerator);
			peer_destroy(entry);
		}
	}
	enumerator->destroy(enumerator);
	if (!found)
	{
		INIT(found,
			.peer = peer->clone(peer),
		);
		array_insert(this->peers, ARRAY_TAIL, found);
	}
	return found;
}

/**
 * A deferred resync
 */
typedef struct {
	throttle_t *throttle;
	host_t *peer;
} deferred_t;

static void deferred_destroy(deferred_t *deferred)
{
	throttle_unref(deferred->throttle);
	deferred->peer->destroy(deferred->peer);
	free(deferred);
}

static job_requeue_t deferred_resync(deferred_t *deferred)
{
	throttle_t *this = deferred->throttle;
	resync_peer_t *entry;

	this->mutex->lock(this->mutex);
	if (!this->dead)
	{
		entry = get_peer(this, deferred->peer, sasync_link_time_ms());
		entry->pending = FALSE;
		if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
		{
			entry->last = sasync_link_time_ms();
			DBG1(DBG_APP, "sasync: starting the deferred bulk resync to %H",
				 deferred->peer);
			this->capture->resync(this->capture, deferred->peer);
		}
	}
	this->mutex->unlock(this->mutex);
	return JOB_REQUEUE_NONE;
}

/**
 * Start a bulk resync to a partner now, or at the end of the interval since
 * the last one (with every request that comes until then)
 */
static void start_resync(private_sasync_dispatch_t *this, host_t *peer)
{
	throttle_t *throttle = this->throttle;
	resync_peer_t *entry;
	deferred_t *deferred;
	uint64_t now = sasync_link_time_ms(), wait;

	throttle->mutex->lock(throttle->mutex);
	entry = get_peer(throttle, peer, now);
	if (entry->pending)
	{
		throttle->counters->inc(throttle->counters,
								SASYNC_CTR_RESYNC_DEFERRED);
	}
	else if (!entry->last || now - entry->last >= SASYNC_RESYNC_INTERVAL_MS)
	{
		entry->last = now;
		throttle->capture->resync(throttle->capture, peer);
	}
	else
	{
		entry->pending = TRUE;
		throttle->counters->inc(throttle->counters,
								SASYNC_CTR_RESYNC_DEFERRED);
		wait = entry->last + SASYNC_RESYNC_INTERVAL_MS - now;
		DBG1(DBG_APP, "sasync: the last bulk resync to %H started %"PRIu64
			 "ms ago, the next one starts in %"PRIu64"ms", peer,
			 now - entry->last, wait);
		INIT(deferred,
			.throttle = throttle,
			.peer = peer->clone(peer),
		);
		ref_get(&throttle->ref);
		lib->scheduler->schedule_job_ms(lib->scheduler,
			(job_t*)callback_job_create((callback_job_cb_t)deferred_resync,
										deferred, (void*)deferred_destroy,
										NULL), wait);
	}
	throttle->mutex->unlock(throttle->mutex);
}

CALLBACK(receive, void,
	private_sasync_dispatch_t *this, host_t *peer, chunk_t data)
{
	sasync_msg_t *msg;

	msg = sasync_msg_parse(data);
	if (!msg)
	{
		this->apply->reject(this->apply, peer, "malformed record");
		return;
	}
	switch (msg->get_type(msg))
	{
		case SASYNC_MSG_RESYNC_REQUEST:
			if (is_primary(this))
			{
				DBG1(DBG_APP, "sasync: %H asks for a bulk resync", peer);
				start_resync(this, peer);
			}
			else
			{
				DBG1(DBG_APP, "sasync: resync request from %H ignored, we are "
					 "standby", peer);
			}
			break;
		default:
			this->apply->apply(this->apply, peer, msg);
			break;
	}
	msg->destroy(msg);
}

CALLBACK(link_up, void,
	private_sasync_dispatch_t *this, host_t *peer)
{
	if (is_primary(this))
	{
		DBG1(DBG_APP, "sasync: sync link to %H up, starting bulk resync", peer);
		start_resync(this, peer);
	}
}

METHOD(sasync_dispatch_t, destroy, void,
	private_sasync_dispatch_t *this)
{
	this->throttle->mutex->lock(this->throttle->mutex);
	this->throttle->dead = TRUE;
	this->throttle->mutex->unlock(this->throttle->mutex);
	throttle_unref(this->throttle);
	free(this);
}

/*
 * Described in header
 */
sasync_dispatch_t *sasync_dispatch_create(sasync_link_t *link,
										  sasync_role_t *role,
										  sasync_counters_t *counters,
										  sasync_capture_t *capture,
										  sasync_apply_t *apply)
{
	private_sasync_dispatch_t *this;
	throttle_t *throttle;

	INIT(throttle,
		.peers = array_create(0, 0),
		.role = role,
		.counters = counters,
		.capture = capture,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.ref = 1,
	);
	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.link = link,
		.role = role,
		.apply = apply,
		.throttle = throttle,
	);
	link->set_receiver(link, receive, this);
	link->set_up_cb(link, link_up, this);
	return &this->public;
}
