/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_promote.h"
#include "sasync_midsync.h"
#include "sasync_orphan.h"

#include <daemon.h>
#include <processing/jobs/callback_job.h>

typedef struct private_sasync_promote_t private_sasync_promote_t;

/**
 * What the deferred starts of RFC 6311 exchanges use: they may still be
 * scheduled when the plugin goes, so they hold a reference and do nothing
 * once it is stopping
 */
typedef struct {
	refcount_t ref;
	bool stopping;
	sasync_counters_t *counters;
	sasync_keystore_t *keys;
} sync_ctx_t;

static void ctx_put(sync_ctx_t *ctx)
{
	if (ref_put(&ctx->ref))
	{
		free(ctx);
	}
}

struct private_sasync_promote_t {

	/** public interface */
	sasync_promote_t public;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** apply side, held off while the role changes */
	sasync_apply_t *apply;

	/** key store, with the exchanges the failed node left open */
	sasync_keystore_t *keys;

	/** start actions held back on the standby, NULL for none */
	sasync_standby_t *standby;

	/** what the deferred RFC 6311 jobs use, outliving us */
	sync_ctx_t *ctx;
};

/**
 * A CHILD SA the failed node proposed in an exchange it did not see
 * answered may be installed at the peer: delete it there
 */
static void delete_orphan(ike_sa_t *ike_sa, sasync_keystore_t *keys)
{
	sasync_ike_keys_t *entry;
	protocol_id_t protocol = PROTO_NONE;
	uint32_t spi = 0;

	keys->lock(keys);
	entry = keys->get_ike(keys, ike_sa->get_unique_id(ike_sa), FALSE);
	if (entry && entry->pending_spi)
	{
		spi = entry->pending_spi;
		protocol = entry->pending_protocol;
		entry->pending_spi = 0;
	}
	keys->unlock(keys);
	if (spi)
	{
		sasync_orphan_delete(ike_sa, protocol, spi);
	}
}

/*
 * Described in header
 */
u_int sasync_promote_delete_rekeyed(ike_sa_t *ike_sa,
									sasync_counters_t *counters)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	array_t *rekeyed = NULL;
	struct {
		protocol_id_t protocol;
		uint32_t spi;
	} sa;
	u_int count = 0;

	if (ike_sa->get_version(ike_sa) != IKEV2)
	{	/* IKEv1 keeps rekeyed Quick Mode SAs until they expire */
		return 0;
	}
	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		if (child_sa->get_state(child_sa) == CHILD_REKEYED)
		{
			sa.protocol = child_sa->get_protocol(child_sa);
			sa.spi = child_sa->get_spi(child_sa, TRUE);
			array_insert_create_value(&rekeyed, sizeof(sa), ARRAY_TAIL, &sa);
		}
	}
	enumerator->destroy(enumerator);
	/* queueing a delete may act on the list we walked: not while walking */
	while (array_remove(rekeyed, ARRAY_HEAD, &sa))
	{
		DBG1(DBG_APP, "sasync: deleting CHILD_SA %.8x_i of %s[%u]: rekeyed "
			 "by the node before, its delete may never have reached the peer",
			 ntohl(sa.spi), ike_sa->get_name(ike_sa),
			 ike_sa->get_unique_id(ike_sa));
		if (ike_sa->delete_child_sa(ike_sa, sa.protocol, sa.spi,
									FALSE) == SUCCESS)
		{
			counters->inc(counters, SASYNC_CTR_REKEYED_DELETED);
			count++;
		}
	}
	array_destroy(rekeyed);
	return count;
}

/*
 * Described in header
 */
void sasync_promote_sync_due(ike_sa_t *ike_sa, sasync_counters_t *counters,
							 sasync_keystore_t *keys)
{
	sasync_ike_keys_t *entry;
	bool due;

	keys->lock(keys);
	entry = keys->get_ike(keys, ike_sa->get_unique_id(ike_sa), FALSE);
	due = entry && entry->midsync_due;
	if (due)
	{
		entry->midsync_due = FALSE;
	}
	keys->unlock(keys);
	if (!due || ike_sa->get_state(ike_sa) != IKE_ESTABLISHED)
	{
		return;
	}
	if (ike_sa->supports_extension(ike_sa, EXT_IKE_MESSAGE_ID_SYNC))
	{
		sasync_midsync_start(ike_sa, counters);
	}
	delete_orphan(ike_sa, keys);
	sasync_promote_delete_rekeyed(ike_sa, counters);
}

/**
 * A deferred start of the exchanges of a promoted IKE SA
 */
typedef struct {
	ike_sa_id_t *id;
	sync_ctx_t *ctx;
} sync_job_t;

static void sync_job_destroy(sync_job_t *job)
{
	job->id->destroy(job->id);
	ctx_put(job->ctx);
	free(job);
}

static job_requeue_t sync_job(sync_job_t *job)
{
	sync_ctx_t *ctx = job->ctx;
	ike_sa_t *ike_sa;

	if (__atomic_load_n(&ctx->stopping, __ATOMIC_ACQUIRE))
	{
		return JOB_REQUEUE_NONE;
	}
	ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager,
											  job->id);
	if (ike_sa)
	{
		sasync_promote_sync_due(ike_sa, ctx->counters, ctx->keys);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	}
	return JOB_REQUEUE_NONE;
}

/**
 * Start the exchanges of a promoted IKE SA in delay ms
 */
static void schedule_sync(private_sasync_promote_t *this, ike_sa_t *ike_sa,
						  u_int delay)
{
	sync_job_t *job;

	INIT(job,
		.id = ike_sa->get_id(ike_sa)->clone(ike_sa->get_id(ike_sa)),
		.ctx = this->ctx,
	);
	ref_get(&this->ctx->ref);
	lib->scheduler->schedule_job_ms(lib->scheduler,
			(job_t*)callback_job_create((callback_job_cb_t)sync_job, job,
										(void*)sync_job_destroy, NULL), delay);
}

/*
 * Described in header
 */
void sasync_promote_activate(ike_sa_t *ike_sa, sasync_counters_t *counters,
							 sasync_keystore_t *keys, bool now)
{
	sasync_ike_keys_t *entry;

	/* a CHILD SA queued while passive (a standby's acquire or start action
	 * that found this SA by its config) would duplicate what the failed
	 * node held; the start actions run after promotion for what is missing */
	ike_sa->flush_queue(ike_sa, TASK_QUEUE_QUEUED);
	ike_sa->set_state(ike_sa, IKE_ESTABLISHED);
	if (ike_sa->get_version(ike_sa) != IKEV2)
	{
		return;
	}
	keys->lock(keys);
	entry = keys->get_ike(keys, ike_sa->get_unique_id(ike_sa), TRUE);
	entry->midsync_due = TRUE;
	keys->unlock(keys);
	if (now)
	{
		sasync_promote_sync_due(ike_sa, counters, keys);
	}
}

/**
 * Tell the rest of charon (updown plugin, vici's ike-updown/child-updown,
 * accounting) that a restored SA and its CHILD SAs are up here now
 */
static void announce_up(private_sasync_promote_t *this, ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;

	charon->bus->ike_updown(charon->bus, ike_sa, TRUE);
	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		charon->bus->child_updown(charon->bus, child_sa, TRUE);
	}
	enumerator->destroy(enumerator);
	this->counters->inc(this->counters, SASYNC_CTR_UPDOWN);
}

/**
 * charon checks DPD one interval after an SA became established, from its
 * last inbound message: every SA a promotion activates would check at the
 * same moment, a burst of DPDs towards idle peers. Marking the SA as heard
 * from when its RFC 6311 exchange is due spreads the checks as those are
 * (a peer that answers one moves it to its answer, which is spread too)
 */
static void spread_dpd(ike_sa_t *ike_sa, u_int delay)
{
	ike_sa->set_statistic(ike_sa, STAT_INBOUND,
						  time_monotonic(NULL) + delay / 1000);
}

/**
 * RFC 6311 exchanges to start per second after a promotion, 0 for no limit
 */
static u_int promote_rate()
{
	int rate;

	rate = lib->settings->get_int(lib->settings,
						"%s.plugins.sasync.promote_rate", SASYNC_PROMOTE_RATE,
						lib->ns);
	return max(rate, 0);
}

static bool updown_enabled()
{
	return lib->settings->get_bool(lib->settings,
						"%s.plugins.sasync.updown_on_promote", TRUE, lib->ns);
}

METHOD(sasync_promote_t, promote, bool,
	private_sasync_promote_t *this, char *reason, u_int *count)
{
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	u_int activated = 0, rate = promote_rate(), delay;
	bool updown = updown_enabled();

	/* no record is applied while we switch: each one checks the role under
	 * the same lock, so none is restored passive after this walk */
	this->apply->hold(this->apply);
	if (!this->role->set(this->role, SASYNC_ROLE_PRIMARY, reason))
	{
		this->apply->resume(this->apply);
		return FALSE;
	}
	this->counters->inc(this->counters, SASYNC_CTR_PROMOTIONS);
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if (ike_sa->get_state(ike_sa) == IKE_PASSIVE)
		{
			/* RFC 6311 exchanges at the rate set, the first ones at once */
			delay = rate ? (uint64_t)activated * 1000 / rate : 0;
			sasync_promote_activate(ike_sa, this->counters, this->keys,
									!delay);
			if (delay)
			{
				schedule_sync(this, ike_sa, delay);
				spread_dpd(ike_sa, delay);
			}
			if (updown)
			{
				announce_up(this, ike_sa);
			}
			activated++;
		}
	}
	enumerator->destroy(enumerator);
	this->apply->resume(this->apply);
	DBG1(DBG_APP, "sasync: promoted, %u IKE_SAs activated", activated);
	if (this->standby)
	{	/* after the walk: the controller would reuse a passive IKE SA */
		DBG1(DBG_APP, "sasync: promoted, %u start actions run",
			 this->standby->start_actions(this->standby));
	}
	if (count)
	{
		*count = activated;
	}
	return TRUE;
}

/**
 * Make an SA of this node passive again, as a standby's restored SAs are.
 * charon checks IKE_PASSIVE everywhere an SA would act on its own: DPD,
 * IKE and CHILD rekeys, reauthentication, lifetimes, retransmits and NAT
 * keepalives give up, and a passive SA processes no message, so it neither
 * answers nor starts anything. Nothing is deleted and nothing is sent: the
 * peer keeps its view, the new primary carries on with the synced state.
 * An exchange this node started and did not see answered is dropped here
 * (reset() moves it back to the queue, which is flushed), so nothing of it
 * is retransmitted and a later promotion starts clean from the message IDs
 * the new primary syncs back.
 *
 * The SA is handed over to the new primary: its records act on it from now
 * on (as they act on SAs the apply side restored, and on no other SA).
 */
bool sasync_promote_make_passive(ike_sa_t *ike_sa, sasync_keystore_t *keys)
{
	sasync_ike_keys_t *entry;

	switch (ike_sa->get_state(ike_sa))
	{
		case IKE_ESTABLISHED:
		case IKE_REKEYING:
		case IKE_DELETING:
			/* one this node was deleting when it lost the role: unanswered,
			 * the peer may still hold it, and the new primary decides (its
			 * resync names the SA, or removes our copy); a DELETE sent again
			 * from here would break what the new primary serves */
			break;
		default:
			/* half-open or rekeyed SAs are not ours to keep */
			return FALSE;
	}
	ike_sa->set_state(ike_sa, IKE_PASSIVE);
	ike_sa->set_message_id(ike_sa, TRUE, ike_sa->get_message_id(ike_sa, TRUE));
	ike_sa->flush_queue(ike_sa, TASK_QUEUE_QUEUED);
	keys->lock(keys);
	/* one without key inputs was never synced: the new primary can't know
	 * it, and an entry without them would be synced on empty */
	entry = keys->get_ike(keys, ike_sa->get_unique_id(ike_sa), FALSE);
	if (entry)
	{
		entry->restored = TRUE;
	}
	keys->unlock(keys);
	return TRUE;
}

METHOD(sasync_promote_t, demote, bool,
	private_sasync_promote_t *this, char *reason, u_int *count)
{
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	u_int passive = 0;

	/* as for promote(): a record from the new primary is applied either
	 * before the role changes (ignored, we were primary) or after this walk
	 * (restored passive), never in between */
	this->apply->hold(this->apply);
	if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
	{	/* before the role changes: what an SA of ours still does goes to
		 * the new primary until the walk below made it passive */
		this->keys->hand_over(this->keys);
	}
	if (!this->role->set(this->role, SASYNC_ROLE_STANDBY, reason))
	{
		this->apply->resume(this->apply);
		return FALSE;
	}
	this->counters->inc(this->counters, SASYNC_CTR_DEMOTIONS);
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if (sasync_promote_make_passive(ike_sa, this->keys))
		{
			passive++;
		}
	}
	enumerator->destroy(enumerator);
	this->apply->resume(this->apply);
	DBG1(DBG_APP, "sasync: demoted, %u IKE_SAs made passive", passive);
	if (count)
	{
		*count = passive;
	}
	return TRUE;
}

METHOD(sasync_promote_t, destroy, void,
	private_sasync_promote_t *this)
{
	__atomic_store_n(&this->ctx->stopping, TRUE, __ATOMIC_RELEASE);
	ctx_put(this->ctx);
	free(this);
}

/*
 * Described in header
 */
sasync_promote_t *sasync_promote_create(sasync_role_t *role,
										sasync_counters_t *counters,
										sasync_apply_t *apply,
										sasync_keystore_t *keys,
										sasync_standby_t *standby)
{
	private_sasync_promote_t *this;

	INIT(this,
		.public = {
			.promote = _promote,
			.demote = _demote,
			.destroy = _destroy,
		},
		.role = role,
		.counters = counters,
		.apply = apply,
		.keys = keys,
		.standby = standby,
	);
	INIT(this->ctx,
		.ref = 1,
		.counters = counters,
		.keys = keys,
	);
	return &this->public;
}
