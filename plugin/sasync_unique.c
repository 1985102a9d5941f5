/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_unique.h"

#include <daemon.h>
#include <threading/mutex.h>
#include <processing/jobs/callback_job.h>

typedef struct private_sasync_unique_t private_sasync_unique_t;

struct private_sasync_unique_t {

	/** public interface */
	sasync_unique_t public;

	/** highest interface id and mark restored CHILD SAs hold */
	uint32_t if_id;
	uint32_t mark;

	/** values up to these were allocated by us: the counters are past them */
	uint32_t if_id_reserved;
	uint32_t mark_reserved;

	/** a reservation job is queued or running */
	bool queued;

	/** protects the above */
	mutex_t *mutex;

	/** references: the owner and a queued job */
	refcount_t ref;
};

/**
 * Move the interface id counter to target or past it, return where it got
 */
static uint32_t advance_if_ids(uint32_t target)
{
	uint32_t in = 0, out = 0;
	int i;

	/* two values per call: a value for each direction */
	for (i = 0; i < SASYNC_UNIQUE_RESERVE_MAX / 2 && out < target; i++)
	{
		in = out = IF_ID_UNIQUE_DIR;
		allocate_unique_if_ids(&in, &out);
	}
	return out;
}

/**
 * Move the mark counter to target or past it, return where it got; the
 * counter is only reachable through child_sa_create()
 */
static uint32_t advance_marks(uint32_t target)
{
	child_cfg_create_t data = {
		.mark_in = { .value = MARK_UNIQUE_DIR, .mask = 0xffffffff },
		.mark_out = { .value = MARK_UNIQUE_DIR, .mask = 0xffffffff },
	};
	child_cfg_t *cfg;
	child_sa_t *dummy;
	uint32_t out = 0;
	host_t *any;
	int i;

	cfg = child_cfg_create("sasync-reserve", &data);
	any = host_create_any(AF_INET);
	for (i = 0; i < SASYNC_UNIQUE_RESERVE_MAX / 2 && out < target; i++)
	{
		dummy = child_sa_create(any, any, cfg, &(child_sa_create_t){});
		out = dummy->get_mark(dummy, FALSE).value;
		dummy->destroy(dummy);
	}
	any->destroy(any);
	cfg->destroy(cfg);
	return out;
}

/**
 * Reserve up to the values held when called
 */
static void do_reserve(private_sasync_unique_t *this)
{
	uint32_t if_id, mark, if_id_got = 0, mark_got = 0;

	this->mutex->lock(this->mutex);
	if_id = this->if_id > this->if_id_reserved ? this->if_id : 0;
	mark = this->mark > this->mark_reserved ? this->mark : 0;
	this->mutex->unlock(this->mutex);

	if (if_id)
	{
		if_id_got = advance_if_ids(if_id);
	}
	if (mark)
	{
		mark_got = advance_marks(mark);
	}
	if (if_id_got < if_id || mark_got < mark)
	{
		DBG1(DBG_APP, "sasync: %%unique interface id %u / mark %u of a "
			 "restored CHILD_SA lie far ahead, counters moved to %u / %u "
			 "only: new tunnels may reuse them", if_id, mark, if_id_got,
			 mark_got);
	}
	this->mutex->lock(this->mutex);
	this->if_id_reserved = max(this->if_id_reserved, if_id_got);
	this->mark_reserved = max(this->mark_reserved, mark_got);
	/* a value out of reach counts as reserved: not tried again and again */
	this->if_id_reserved = max(this->if_id_reserved, if_id);
	this->mark_reserved = max(this->mark_reserved, mark);
	this->mutex->unlock(this->mutex);
}

static void unref(private_sasync_unique_t *this)
{
	if (ref_put(&this->ref))
	{
		this->mutex->destroy(this->mutex);
		free(this);
	}
}

static job_requeue_t reserve_job(private_sasync_unique_t *this)
{
	bool again;

	do_reserve(this);
	this->mutex->lock(this->mutex);
	again = this->if_id > this->if_id_reserved ||
			this->mark > this->mark_reserved;
	this->queued = again;
	this->mutex->unlock(this->mutex);
	return again ? JOB_REQUEUE_DIRECT : JOB_REQUEUE_NONE;
}

METHOD(sasync_unique_t, hold, void,
	private_sasync_unique_t *this, uint32_t if_id, uint32_t mark)
{
	bool queue = FALSE;

	if (IF_ID_IS_UNIQUE(if_id))
	{	/* a marker, not a value */
		if_id = 0;
	}
	if (MARK_IS_UNIQUE(mark))
	{
		mark = 0;
	}
	this->mutex->lock(this->mutex);
	this->if_id = max(this->if_id, if_id);
	this->mark = max(this->mark, mark);
	if (!this->queued && (this->if_id > this->if_id_reserved ||
						  this->mark > this->mark_reserved))
	{
		this->queued = queue = TRUE;
	}
	this->mutex->unlock(this->mutex);
	if (queue)
	{
		ref_get(&this->ref);
		lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create((callback_job_cb_t)reserve_job, this,
										(void*)unref, NULL));
	}
}

METHOD(sasync_unique_t, reserve, void,
	private_sasync_unique_t *this)
{
	do_reserve(this);
}

METHOD(sasync_unique_t, destroy, void,
	private_sasync_unique_t *this)
{
	unref(this);
}

/*
 * Described in header
 */
sasync_unique_t *sasync_unique_create()
{
	private_sasync_unique_t *this;

	INIT(this,
		.public = {
			.hold = _hold,
			.reserve = _reserve,
			.destroy = _destroy,
		},
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.ref = 1,
	);
	return &this->public;
}
