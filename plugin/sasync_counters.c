/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_counters.h"

ENUM(sasync_counter_names, SASYNC_CTR_RESYNC, SASYNC_CTR_SWITCHOVER_FORCED,
	"resync",
	"vike-sync",
	"conn-sync",
	"sync-tx",
	"sync-rx",
	"sync-rx-len-bad",
	"sync-rx-auth-bad",
	"sync-rx-replay",
	"mid-sync",
	"mid-sync-rfc6311",
	"delete-sync",
	"promotions",
	"demotions",
	"forced-rekeys",
	"apply-failed",
	"child-waiting",
	"wait-expired",
	"forced-rekey-retries",
	"updown",
	"initiate-refused",
	"start-actions",
	"heartbeat-lost",
	"elections",
	"split-brain",
	"address-repairs",
	"resync-removed",
	"sync-rejected",
	"sync-dropped",
	"reject-own-sa",
	"reject-ts",
	"reject-hosts",
	"reject-keys",
	"wait-dropped",
	"resync-deferred",
	"mid-sync-coalesced",
	"sync-no-key",
	"handover-sent",
	"handover-applied",
	"rekeyed-deleted",
	"passive-lost",
	"sync-stalled",
	"handover-deleted",
	"switchovers",
	"switchover-waited",
	"switchover-cut",
	"switchover-forced",
);

typedef struct private_sasync_counters_t private_sasync_counters_t;

/**
 * Private data of a sasync_counters_t object.
 *
 * Counters are bumped from the hot path of many threads (bus hooks, the sync
 * receiver), so plain atomics are used instead of a mutex; a reader may see
 * counters of a reset in progress partially cleared, which is fine for stats.
 */
struct private_sasync_counters_t {

	/**
	 * Public interface
	 */
	sasync_counters_t public;

	/**
	 * Counter values
	 */
	uint64_t values[SASYNC_CTR_MAX];

	/**
	 * Depth of the send queue (gauge)
	 */
	u_int queue_depth;

	/**
	 * Lag of the last received record in ms (gauge)
	 */
	uint32_t lag_last;

	/**
	 * Maximum lag seen since creation or the last reset, in ms
	 */
	uint32_t lag_max;
};

METHOD(sasync_counters_t, add, void,
	private_sasync_counters_t *this, sasync_counter_t counter, u_int n)
{
	if (counter < SASYNC_CTR_MAX)
	{
		__atomic_add_fetch(&this->values[counter], n, __ATOMIC_RELAXED);
	}
}

METHOD(sasync_counters_t, inc, void,
	private_sasync_counters_t *this, sasync_counter_t counter)
{
	add(this, counter, 1);
}

METHOD(sasync_counters_t, get, uint64_t,
	private_sasync_counters_t *this, sasync_counter_t counter)
{
	if (counter < SASYNC_CTR_MAX)
	{
		return __atomic_load_n(&this->values[counter], __ATOMIC_RELAXED);
	}
	return 0;
}

METHOD(sasync_counters_t, set_queue_depth, void,
	private_sasync_counters_t *this, u_int depth)
{
	__atomic_store_n(&this->queue_depth, depth, __ATOMIC_RELAXED);
}

METHOD(sasync_counters_t, get_queue_depth, u_int,
	private_sasync_counters_t *this)
{
	return __atomic_load_n(&this->queue_depth, __ATOMIC_RELAXED);
}

METHOD(sasync_counters_t, record_lag, void,
	private_sasync_counters_t *this, uint32_t ms)
{
	uint32_t max;

	__atomic_store_n(&this->lag_last, ms, __ATOMIC_RELAXED);

	/* a compare-and-swap loop, as two receivers may race for a new maximum */
	max = __atomic_load_n(&this->lag_max, __ATOMIC_RELAXED);
	while (ms > max &&
		   !__atomic_compare_exchange_n(&this->lag_max, &max, ms, FALSE,
										__ATOMIC_RELAXED, __ATOMIC_RELAXED))
	{
		/* max got reloaded by the failed exchange, retry */
	}
}

METHOD(sasync_counters_t, get_lag, void,
	private_sasync_counters_t *this, uint32_t *last, uint32_t *max)
{
	if (last)
	{
		*last = __atomic_load_n(&this->lag_last, __ATOMIC_RELAXED);
	}
	if (max)
	{
		*max = __atomic_load_n(&this->lag_max, __ATOMIC_RELAXED);
	}
}

METHOD(sasync_counters_t, reset, void,
	private_sasync_counters_t *this)
{
	int i;

	for (i = 0; i < SASYNC_CTR_MAX; i++)
	{
		__atomic_store_n(&this->values[i], 0, __ATOMIC_RELAXED);
	}
	/* the maximum lag is statistics, not a gauge: start measuring anew */
	__atomic_store_n(&this->lag_max, 0, __ATOMIC_RELAXED);
}

METHOD(sasync_counters_t, destroy, void,
	private_sasync_counters_t *this)
{
	free(this);
}

/*
 * Described in header
 */
sasync_counters_t *sasync_counters_create()
{
	private_sasync_counters_t *this;

	INIT(this,
		.public = {
			.inc = _inc,
			.add = _add,
			.get = _get,
			.set_queue_depth = _set_queue_depth,
			.get_queue_depth = _get_queue_depth,
			.record_lag = _record_lag,
			.get_lag = _get_lag,
			.reset = _reset,
			.destroy = _destroy,
		},
	);

	return &this->public;
}
