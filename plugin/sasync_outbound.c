/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_outbound.h"
#include "sasync_promote.h"

#include <daemon.h>
#include <collections/array.h>
#include <collections/hashtable.h>
#include <processing/jobs/callback_job.h>
#include <threading/mutex.h>

typedef struct private_sasync_outbound_t private_sasync_outbound_t;

/**
 * A restored CHILD SA whose outbound direction is guarded.
 */
typedef struct {
	/** CHILD SA unique id on this node */
	uint32_t unique;
	/** protocol and inbound SPI, to find it for the rekey */
	protocol_id_t protocol;
	uint32_t spi_in;
	/** reqid of its policies, for acquires */
	uint32_t reqid;
	/** sentinel SA, if one is installed (SPI 0 if not) */
	uint32_t sentinel;
	host_t *src;
	host_t *dst;
	mark_t mark;
	uint32_t if_id;
	/** the first outbound packet was seen */
	bool triggered;
} guard_t;

struct private_sasync_outbound_t {

	/** public interface */
	sasync_outbound_t public;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** key store, with the RFC 6311 syncs still due after promotion */
	sasync_keystore_t *keys;

	/** guard_t by CHILD SA unique id, the owner of the guards */
	hashtable_t *guards;

	/** guard_t by sentinel SPI (those with a sentinel SA) */
	hashtable_t *by_sentinel;

	/** array_t of guard_t by reqid: acquires name the reqid, which a
	 * CHILD SA rekeyed before the failover shares with its successor */
	hashtable_t *by_reqid;

	/** protects the tables */
	mutex_t *mutex;
};

static kernel_ipsec_sa_id_t sentinel_id(guard_t *guard)
{
	return (kernel_ipsec_sa_id_t){
		.src = guard->src,
		.dst = guard->dst,
		.spi = guard->sentinel,
		.proto = IPPROTO_ESP,
		.mark = guard->mark,
		.if_id = guard->if_id,
	};
}

static void remove_sentinel(guard_t *guard)
{
	kernel_ipsec_sa_id_t id = sentinel_id(guard);
	kernel_ipsec_del_sa_t sa = {};

	if (guard->sentinel)
	{
		charon->kernel->del_sa(charon->kernel, &id, &sa);
		guard->sentinel = 0;
	}
}

static void guard_destroy(guard_t *guard)
{
	remove_sentinel(guard);
	guard->src->destroy(guard->src);
	guard->dst->destroy(guard->dst);
	free(guard);
}

/** an integer as a hashtable key */
#define KEY(value) ((void*)(uintptr_t)(value))

/**
 * Add a guard to the tables, with the lock held
 */
static void index_guard(private_sasync_outbound_t *this, guard_t *guard)
{
	array_t *same;

	this->guards->put(this->guards, KEY(guard->unique), guard);
	if (guard->sentinel)
	{
		this->by_sentinel->put(this->by_sentinel, KEY(guard->sentinel), guard);
	}
	same = this->by_reqid->get(this->by_reqid, KEY(guard->reqid));
	if (!same)
	{
		same = array_create(0, 0);
		this->by_reqid->put(this->by_reqid, KEY(guard->reqid), same);
	}
	array_insert(same, ARRAY_TAIL, guard);
}

/**
 * Remove the guard of a CHILD SA from the tables, with the lock held
 */
static guard_t *unindex_guard(private_sasync_outbound_t *this,
							  uint32_t unique)
{
	guard_t *guard;
	array_t *same;
	int i;

	guard = this->guards->remove(this->guards, KEY(unique));
	if (!guard)
	{
		return NULL;
	}
	if (guard->sentinel)
	{
		this->by_sentinel->remove(this->by_sentinel, KEY(guard->sentinel));
	}
	same = this->by_reqid->get(this->by_reqid, KEY(guard->reqid));
	for (i = 0; same && i < array_count(same); i++)
	{
		guard_t *other;

		array_get(same, i, &other);
		if (other == guard)
		{
			array_remove(same, i, NULL);
			break;
		}
	}
	if (same && !array_count(same))
	{
		this->by_reqid->remove(this->by_reqid, KEY(guard->reqid));
		array_destroy(same);
	}
	return guard;
}

/**
 * Data of a queued forced rekey
 */
typedef struct {
	/** CHILD SA unique id: found through charon's CHILD SA manager, so the
	 * rekey follows it to the IKE SA it belongs to now (IKE rekeys and
	 * reauthentications move it) */
	uint32_t unique;
	uint32_t spi_in;
	/** counters */
	sasync_counters_t *counters;
	/** key store */
	sasync_keystore_t *keys;
	/** polls while its IKE SA is still passive */
	u_int tries;
	/** rekeys started */
	u_int attempts;
	/** seconds until the next check */
	u_int backoff;
} rekey_data_t;

/** how often a rekey waits for promotion to activate its IKE SA (20 ms) */
#define REKEY_WAIT_TRIES 250

/** first and longest interval between checks that a forced rekey
 * completed (s) */
#define REKEY_CHECK_FIRST 4
#define REKEY_CHECK_MAX 64

/**
 * Whether the IKE SA has exchanges active or queued (a rekey waits behind
 * the RFC 6311 resync, for one)
 */
static bool has_tasks(ike_sa_t *ike_sa)
{
	task_queue_t queues[] = { TASK_QUEUE_ACTIVE, TASK_QUEUE_QUEUED };
	enumerator_t *enumerator;
	task_t *task;
	bool found = FALSE;
	int i;

	for (i = 0; i < countof(queues) && !found; i++)
	{
		enumerator = ike_sa->create_task_enumerator(ike_sa, queues[i]);
		found = enumerator->enumerate(enumerator, &task);
		enumerator->destroy(enumerator);
	}
	return found;
}

/**
 * What a forced rekey has to do next
 */
typedef enum {
	/** the CHILD SA was rekeyed, or goes */
	REKEY_DONE,
	/** an exchange is under way (this rekey, or others first) */
	REKEY_WAIT,
	/** start it (again) */
	REKEY_START,
} rekey_step_t;

static rekey_step_t next_step(ike_sa_t *ike_sa, child_sa_t *child_sa,
							  u_int attempts)
{
	switch (child_sa->get_state(child_sa))
	{
		case CHILD_INSTALLED:
			/* a rekey started before may still be queued behind others
			 * (the RFC 6311 resync, for one) */
			return attempts && has_tasks(ike_sa) ? REKEY_WAIT : REKEY_START;
		case CHILD_REKEYING:
		case CHILD_CREATED:
		case CHILD_ROUTED:
		case CHILD_INSTALLING:
		case CHILD_UPDATING:
			return REKEY_WAIT;
		default:
			return REKEY_DONE;
	}
}

/**
 * Start the rekey of a restored CHILD SA and check later that it completed,
 * retrying with backoff: a rekey the peer did not answer (or lost to a
 * collision it did not resolve) would leave the SA without an outbound SA
 */
static job_requeue_t rekey_now(rekey_data_t *data)
{
	child_sa_t *child_sa;
	ike_sa_t *ike_sa;
	rekey_step_t step;

	ike_sa = charon->child_sa_manager->checkout_by_id(charon->child_sa_manager,
													  data->unique, &child_sa);
	if (!ike_sa)
	{
		if (!data->attempts)
		{
			DBG1(DBG_APP, "sasync: restored CHILD_SA 0x%08x gone, no rekey",
				 ntohl(data->spi_in));
		}
		return JOB_REQUEUE_NONE;
	}
	if (ike_sa->get_state(ike_sa) == IKE_PASSIVE &&
		data->tries++ < REKEY_WAIT_TRIES)
	{	/* the trigger may come before promotion reached this IKE SA */
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		return JOB_RESCHEDULE_MS(20);
	}
	step = next_step(ike_sa, child_sa, data->attempts);
	if (step != REKEY_START)
	{
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		return step == REKEY_WAIT ? JOB_RESCHEDULE(data->backoff ?: 1)
								  : JOB_REQUEUE_NONE;
	}
	if (data->attempts++)
	{
		DBG1(DBG_APP, "sasync: forced rekey of restored CHILD_SA 0x%08x did "
			 "not complete, retry %u", ntohl(data->spi_in),
			 data->attempts - 1);
		data->counters->inc(data->counters, SASYNC_CTR_FORCED_REKEY_RETRIES);
	}
	else
	{
		DBG1(DBG_APP, "sasync: first outbound packet on restored CHILD_SA "
			 "0x%08x, forcing a rekey", ntohl(data->spi_in));
		/* the rekey queues behind the message ID sync, if that still waits
		 * for its turn after the promotion */
		sasync_promote_sync_due(ike_sa, data->counters, data->keys);
	}
	if (ike_sa->rekey_child_sa(ike_sa, child_sa->get_protocol(child_sa),
							   data->spi_in) == DESTROY_ME)
	{
		charon->ike_sa_manager->checkin_and_destroy(charon->ike_sa_manager,
													ike_sa);
		return JOB_REQUEUE_NONE;
	}
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	data->backoff = data->backoff ? min(data->backoff * 2, REKEY_CHECK_MAX)
								  : REKEY_CHECK_FIRST;
	return JOB_RESCHEDULE(data->backoff);
}

static void queue_rekey(private_sasync_outbound_t *this, guard_t *guard)
{
	rekey_data_t *data;

	INIT(data,
		.unique = guard->unique,
		.spi_in = guard->spi_in,
		.counters = this->counters,
		.keys = this->keys,
	);
	this->counters->inc(this->counters, SASYNC_CTR_FORCED_REKEYS);
	/* never from the kernel's event thread, which may be libipsec's */
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create((callback_job_cb_t)rekey_now, data,
										free, NULL));
}

/**
 * Handle the first outbound use of a guarded CHILD SA
 */
static void trigger(private_sasync_outbound_t *this, guard_t *guard)
{
	if (guard->triggered)
	{
		return;
	}
	guard->triggered = TRUE;
	if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
	{
		queue_rekey(this, guard);
	}
}

METHOD(kernel_listener_t, acquire, bool,
	private_sasync_outbound_t *this, uint32_t reqid,
	kernel_acquire_data_t *data)
{
	enumerator_t *enumerator;
	guard_t *guard;
	array_t *same;

	this->mutex->lock(this->mutex);
	same = this->by_reqid->get(this->by_reqid, KEY(reqid));
	if (same)
	{
		enumerator = array_create_enumerator(same);
		while (enumerator->enumerate(enumerator, &guard))
		{
			trigger(this, guard);
		}
		enumerator->destroy(enumerator);
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(kernel_listener_t, expire, bool,
	private_sasync_outbound_t *this, uint8_t protocol, uint32_t spi,
	host_t *dst, bool hard)
{
	guard_t *guard;

	this->mutex->lock(this->mutex);
	guard = spi ? this->by_sentinel->get(this->by_sentinel, KEY(spi)) : NULL;
	if (guard)
	{
		trigger(this, guard);
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

/**
 * Install a sentinel SA in place of the real outbound SA
 */
static bool add_sentinel(guard_t *guard, child_sa_t *child_sa,
						 size_t encr_len, size_t integ_len)
{
	proposal_t *proposal = child_sa->get_proposal(child_sa);
	uint16_t enc_alg = ENCR_UNDEFINED, int_alg = AUTH_UNDEFINED;
	linked_list_t *src_ts, *dst_ts;
	chunk_t enc_key, int_key;
	rng_t *rng;
	status_t status = FAILED;
	lifetime_cfg_t lifetime = {
		.packets = { .life = 1, .rekey = 1 },
	};

	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	if (!rng)
	{
		return FALSE;
	}
	proposal->get_algorithm(proposal, ENCRYPTION_ALGORITHM, &enc_alg, NULL);
	proposal->get_algorithm(proposal, INTEGRITY_ALGORITHM, &int_alg, NULL);
	enc_key = chunk_alloca(encr_len);
	int_key = chunk_alloca(integ_len);
	if (rng->get_bytes(rng, sizeof(guard->sentinel), (void*)&guard->sentinel) &&
		rng->get_bytes(rng, enc_key.len, enc_key.ptr) &&
		rng->get_bytes(rng, int_key.len, int_key.ptr))
	{
		/* SPIs below 256 are reserved */
		guard->sentinel |= htonl(0x100);
		src_ts = linked_list_create_from_enumerator(
							child_sa->create_ts_enumerator(child_sa, TRUE));
		dst_ts = linked_list_create_from_enumerator(
							child_sa->create_ts_enumerator(child_sa, FALSE));
		kernel_ipsec_sa_id_t id = sentinel_id(guard);
		kernel_ipsec_add_sa_t sa = {
			.reqid = guard->reqid,
			.mode = child_sa->get_mode(child_sa),
			.src_ts = src_ts,
			.dst_ts = dst_ts,
			.lifetime = &lifetime,
			.enc_alg = enc_alg,
			.enc_key = enc_key,
			.int_alg = int_alg,
			.int_key = int_key,
			.encap = child_sa->has_encap(child_sa),
			.mark = guard->mark,
			.inbound = FALSE,
		};
		status = charon->kernel->add_sa(charon->kernel, &id, &sa);
		src_ts->destroy(src_ts);
		dst_ts->destroy(dst_ts);
	}
	memwipe(enc_key.ptr, enc_key.len);
	memwipe(int_key.ptr, int_key.len);
	rng->destroy(rng);
	if (status != SUCCESS)
	{
		guard->sentinel = 0;
		return FALSE;
	}
	return TRUE;
}

METHOD(sasync_outbound_t, restore, bool,
	private_sasync_outbound_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	size_t encr_len, size_t integ_len)
{
	guard_t *guard, *old;
	bool needs_sentinel;

	INIT(guard,
		.unique = child_sa->get_unique_id(child_sa),
		.protocol = child_sa->get_protocol(child_sa),
		.spi_in = child_sa->get_spi(child_sa, TRUE),
		.reqid = child_sa->get_reqid(child_sa),
		.src = ike_sa->get_my_host(ike_sa)->clone(ike_sa->get_my_host(ike_sa)),
		.dst = ike_sa->get_other_host(ike_sa)->clone(
											ike_sa->get_other_host(ike_sa)),
		.mark = child_sa->get_mark(child_sa, FALSE),
		.if_id = child_sa->get_if_id(child_sa, FALSE),
	);
	needs_sentinel = !(charon->kernel->get_features(charon->kernel) &
					   KERNEL_POLICY_SPI);
	if (needs_sentinel && !add_sentinel(guard, child_sa, encr_len, integ_len))
	{
		DBG1(DBG_APP, "sasync: installing sentinel SA for CHILD_SA %s "
			 "0x%08x failed", child_sa->get_name(child_sa),
			 ntohl(guard->spi_in));
		guard_destroy(guard);
		return FALSE;
	}
	this->mutex->lock(this->mutex);
	/* a CHILD SA restored again (a resync) replaces its guard */
	old = unindex_guard(this, guard->unique);
	index_guard(this, guard);
	this->mutex->unlock(this->mutex);
	if (old)
	{
		guard_destroy(old);
	}
	return TRUE;
}

METHOD(listener_t, child_state_change, bool,
	listener_t *listener, ike_sa_t *ike_sa, child_sa_t *child_sa,
	child_sa_state_t state)
{
	/* the bus listener is not the first member */
	private_sasync_outbound_t *this = (void*)((char*)listener -
							offsetof(private_sasync_outbound_t, public.bus));
	guard_t *gone;

	if (state != CHILD_DESTROYING && state != CHILD_DELETED)
	{
		return TRUE;
	}
	this->mutex->lock(this->mutex);
	gone = unindex_guard(this, child_sa->get_unique_id(child_sa));
	this->mutex->unlock(this->mutex);
	/* outside the lock: libipsec may be in expire() with the SA checked out */
	if (gone)
	{
		guard_destroy(gone);
	}
	return TRUE;
}

/**
 * Act on triggers that came while we were a standby
 */
static void role_changed(private_sasync_outbound_t *this,
						 sasync_role_state_t role, char *reason)
{
	enumerator_t *enumerator;
	guard_t *guard;

	if (role != SASYNC_ROLE_PRIMARY)
	{
		return;
	}
	this->mutex->lock(this->mutex);
	enumerator = this->guards->create_enumerator(this->guards);
	while (enumerator->enumerate(enumerator, NULL, &guard))
	{
		if (guard->triggered)
		{
			queue_rekey(this, guard);
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_outbound_t, get_pending, u_int,
	private_sasync_outbound_t *this)
{
	u_int count;

	this->mutex->lock(this->mutex);
	count = this->guards->get_count(this->guards);
	this->mutex->unlock(this->mutex);
	return count;
}

METHOD(sasync_outbound_t, is_pending, bool,
	private_sasync_outbound_t *this, uint32_t unique)
{
	bool found;

	this->mutex->lock(this->mutex);
	found = this->guards->get(this->guards, KEY(unique)) != NULL;
	this->mutex->unlock(this->mutex);
	return found;
}

METHOD(sasync_outbound_t, destroy, void,
	private_sasync_outbound_t *this)
{
	this->by_reqid->destroy_function(this->by_reqid, (void*)array_destroy);
	this->by_sentinel->destroy(this->by_sentinel);
	this->guards->destroy_function(this->guards, (void*)guard_destroy);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_outbound_t *sasync_outbound_create(sasync_role_t *role,
										  sasync_counters_t *counters,
										  sasync_keystore_t *keys)
{
	private_sasync_outbound_t *this;

	INIT(this,
		.public = {
			.kernel = {
				.acquire = _acquire,
				.expire = _expire,
			},
			.bus = {
				.child_state_change = _child_state_change,
			},
			.restore = _restore,
			.get_pending = _get_pending,
			.is_pending = _is_pending,
			.destroy = _destroy,
		},
		.role = role,
		.counters = counters,
		.keys = keys,
		.guards = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 32),
		.by_sentinel = hashtable_create(hashtable_hash_ptr,
										hashtable_equals_ptr, 32),
		.by_reqid = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr,
									 32),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
	);
	role->add_listener(role, (void*)role_changed, this);
	return &this->public;
}
