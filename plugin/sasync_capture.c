/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_capture.h"
#include "sasync_msg.h"
#include "sasync_keystore.h"
#include "sasync_promote.h"
#include "sasync_midsync.h"
#include "sasync_resync.h"

#include <daemon.h>
#include <collections/array.h>
#include <sa/ikev1/keymat_v1.h>
#include <sa/ikev2/keymat_v2.h>
#include <encoding/payloads/notify_payload.h>
#include <encoding/payloads/sa_payload.h>
#include <processing/jobs/callback_job.h>

typedef struct private_sasync_capture_t private_sasync_capture_t;

struct private_sasync_capture_t {

	/** public interface */
	sasync_capture_t public;

	/** sync link */
	sasync_link_t *link;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** key inputs of every SA, shared with the apply side */
	sasync_keystore_t *keys;

	/** when a passive SA was last lost (passive_lost()) */
	time_t lost_at;

	/** progress of the latest bulk resync: IKE SAs gone through, of */
	u_int resync_sent;
	u_int resync_total;

	/** mid_sync = coalesced: message IDs of IKEv2 SAs whose peer supports
	 * RFC 6311 are sent at most every SASYNC_MID_COALESCE seconds */
	bool coalesce;
};

/**
 * Our state of an IKE SA, NULL if we have none (keystore locked)
 */
static sasync_ike_keys_t *find_ike(private_sasync_capture_t *this,
								   ike_sa_t *ike_sa)
{
	return this->keys->get_ike(this->keys, ike_sa->get_unique_id(ike_sa),
							   FALSE);
}

/**
 * Our state of an IKE SA, created if we have none (keystore locked)
 */
static sasync_ike_keys_t *get_ike(private_sasync_capture_t *this,
								  ike_sa_t *ike_sa)
{
	return this->keys->get_ike(this->keys, ike_sa->get_unique_id(ike_sa),
							   TRUE);
}

static sasync_child_keys_t *find_child(private_sasync_capture_t *this,
									   child_sa_t *child_sa)
{
	return this->keys->get_child(this->keys,
								 child_sa->get_unique_id(child_sa));
}

static bool is_primary(private_sasync_capture_t *this)
{
	return this->role->get(this->role) == SASYNC_ROLE_PRIMARY;
}

/**
 * Whether what happens to an IKE SA goes to the partners: always on the
 * primary. On a demoted node, for an SA it held as primary that is not
 * passive yet: the demotion waits for an exchange in flight on it (or
 * left it half-open), and what that exchange completes is handed over to
 * the new primary, else neither node would have it. Listeners run before
 * charon changes the state, so an SA about to become passive or
 * established is still seen as it was.
 */
static bool sending(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					sasync_ike_keys_t *keys)
{
	return is_primary(this) || (keys && keys->handover &&
								ike_sa->get_state(ike_sa) != IKE_PASSIVE);
}

/**
 * This thread left records queued with send_more(): its next outgoing
 * message writes them, if no other record did
 */
static __thread bool corked;

/**
 * Mark a record sent while not primary as a hand-over (see sending())
 */
static void mark_handover(private_sasync_capture_t *this, sasync_msg_t *msg)
{
	if (!is_primary(this))
	{
		msg->add_int(msg, SASYNC_ATTR_HANDOVER, 1);
		this->counters->inc(this->counters, SASYNC_CTR_HANDOVER_SENT);
	}
}

/**
 * Send a record to one partner node, NULL for all of them
 */
static void send_msg_to(private_sasync_capture_t *this, host_t *to,
						sasync_msg_t *msg)
{
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, sasync_now_ms());
	mark_handover(this, msg);
	this->link->send_to(this->link, to, msg->get_encoding(msg));
	msg->destroy(msg);
	/* it wrote what send_msg_more() left, too */
	corked = FALSE;
}

static void send_msg(private_sasync_capture_t *this, sasync_msg_t *msg)
{
	send_msg_to(this, NULL, msg);
}

/**
 * Send a record to all partner nodes, with another to follow from this
 * thread right after: both go out in one write
 */
static void send_msg_more(private_sasync_capture_t *this, sasync_msg_t *msg)
{
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, sasync_now_ms());
	mark_handover(this, msg);
	this->link->send_more(this->link, NULL, msg->get_encoding(msg));
	msg->destroy(msg);
	corked = TRUE;
}

/**
 * Write what this thread left queued
 */
static void uncork(private_sasync_capture_t *this)
{
	if (corked)
	{
		corked = FALSE;
		this->link->flush(this->link);
	}
}

/**
 * Whether a CHILD SA is being negotiated with the IKE SA, in the exchange
 * that established it: its record follows from the same thread
 */
static bool child_follows(ike_sa_t *ike_sa)
{
	task_queue_t queues[] = { TASK_QUEUE_ACTIVE, TASK_QUEUE_PASSIVE };
	enumerator_t *enumerator;
	task_t *task;
	bool found = FALSE;
	int i;

	for (i = 0; i < countof(queues) && !found; i++)
	{
		enumerator = ike_sa->create_task_enumerator(ike_sa, queues[i]);
		while (enumerator->enumerate(enumerator, &task))
		{
			if (task->get_type(task) == TASK_CHILD_CREATE)
			{
				found = TRUE;
				break;
			}
		}
		enumerator->destroy(enumerator);
	}
	return found;
}

/**
 * Add the id of an IKE SA to a record, as the given attributes
 */
static void add_id_as(sasync_msg_t *msg, ike_sa_id_t *id, sasync_attr_t spi_i,
					  sasync_attr_t spi_r)
{
	msg->add_int(msg, spi_i, id->get_initiator_spi(id));
	msg->add_int(msg, spi_r, id->get_responder_spi(id));
}

/**
 * Add an IKE SA id to a record, as that of an SA of the given version
 */
static void add_ike_id_of(sasync_msg_t *msg, ike_sa_id_t *id,
						  ike_version_t version)
{
	add_id_as(msg, id, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	msg->add_int(msg, SASYNC_ATTR_IKE_INITIATOR, id->is_initiator(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_VERSION, version);
}

/**
 * Add the IKE SA id to a record
 */
static void add_ike_id(sasync_msg_t *msg, ike_sa_t *ike_sa)
{
	add_ike_id_of(msg, ike_sa->get_id(ike_sa), ike_sa->get_version(ike_sa));
}

/**
 * Both are bit sets charon only answers bit by bit
 */
static uint32_t collect_bits(ike_sa_t *ike_sa, bool conditions)
{
	uint32_t bits = 0, bit;
	int i;

	for (i = 0; i < 32; i++)
	{
		bit = 1U << i;
		if (conditions ? ike_sa->has_condition(ike_sa, bit)
					   : ike_sa->supports_extension(ike_sa, bit))
		{
			bits |= bit;
		}
	}
	return bits;
}

static uint32_t extension_bits(ike_sa_t *ike_sa)
{
	return collect_bits(ike_sa, FALSE);
}

static uint32_t condition_bits(ike_sa_t *ike_sa)
{
	return collect_bits(ike_sa, TRUE);
}

static void add_vips(sasync_msg_t *msg, ike_sa_t *ike_sa, bool local)
{
	enumerator_t *enumerator;
	host_t *vip;

	enumerator = ike_sa->create_virtual_ip_enumerator(ike_sa, local);
	while (enumerator->enumerate(enumerator, &vip))
	{
		msg->add_host(msg, local ? SASYNC_ATTR_LOCAL_VIP
								 : SASYNC_ATTR_REMOTE_VIP, vip);
	}
	enumerator->destroy(enumerator);
}

/**
 * Message IDs (IKEv2) or DPD sequence numbers (IKEv1, zero: no DPD yet, the
 * peer accepts any first one)
 */
static void add_mids(sasync_msg_t *msg, ike_sa_t *ike_sa,
					 sasync_ike_keys_t *keys)
{
	uint32_t mid_i = keys->mid_i, mid_r = keys->mid_r;

	if (ike_sa->get_version(ike_sa) == IKEV2)
	{
		mid_i = max(mid_i, ike_sa->get_message_id(ike_sa, TRUE));
		mid_r = max(mid_r, ike_sa->get_message_id(ike_sa, FALSE));
	}
	if (mid_i || ike_sa->get_version(ike_sa) == IKEV2)
	{
		msg->add_int(msg, SASYNC_ATTR_MID_I, mid_i);
	}
	if (mid_r || ike_sa->get_version(ike_sa) == IKEV2)
	{
		msg->add_int(msg, SASYNC_ATTR_MID_R, mid_r);
	}
}

/**
 * Build an IKE_ADD record with everything a standby needs; addresses, if
 * given, replace the SA's own (they are about to change)
 */
static sasync_msg_t *build_ike_add(ike_sa_t *ike_sa, sasync_ike_keys_t *keys,
								   host_t *me, host_t *other)
{
	sasync_msg_t *msg = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);

	add_ike_id(msg, ike_sa);
	msg->add_int(msg, SASYNC_ATTR_UNIQUE, ike_sa->get_unique_id(ike_sa));
	msg->add_chunk(msg, SASYNC_ATTR_NAME,
				   chunk_from_str(peer_cfg->get_name(peer_cfg)));
	msg->add_host(msg, SASYNC_ATTR_LOCAL_HOST, me ?: ike_sa->get_my_host(ike_sa));
	msg->add_host(msg, SASYNC_ATTR_REMOTE_HOST,
				  other ?: ike_sa->get_other_host(ike_sa));
	msg->add_id(msg, SASYNC_ATTR_LOCAL_ID, ike_sa->get_my_id(ike_sa));
	msg->add_id(msg, SASYNC_ATTR_REMOTE_ID, ike_sa->get_other_id(ike_sa));
	msg->add_id(msg, SASYNC_ATTR_REMOTE_EAP_ID,
				ike_sa->get_other_eap_id(ike_sa));
	msg->add_proposal(msg, SASYNC_ATTR_PROPOSAL, ike_sa->get_proposal(ike_sa));
	sasync_ike_keys_encode(keys, ike_sa->get_version(ike_sa), msg);
	msg->add_int(msg, SASYNC_ATTR_EXTENSIONS, extension_bits(ike_sa));
	msg->add_int(msg, SASYNC_ATTR_CONDITIONS, condition_bits(ike_sa));
	add_vips(msg, ike_sa, TRUE);
	add_vips(msg, ike_sa, FALSE);
	add_mids(msg, ike_sa, keys);
	return msg;
}

/**
 * The standbys were told that an SA replaces another: they hand that one's
 * CHILD SAs over and drop it, so nothing more is sent of it (its delete
 * exchange, its delete)
 */
static void forget_replaced(private_sasync_capture_t *this,
							sasync_ike_keys_t *keys)
{
	sasync_ike_keys_t *old;

	old = this->keys->get_ike(this->keys, keys->replaces_unique, FALSE);
	if (old)
	{
		old->synced = FALSE;
	}
	keys->replaces->destroy(keys->replaces);
	keys->replaces = NULL;
}

/**
 * Send the IKE SA (first time or update) and release held CHILD SAs; a
 * record of an SA that replaces another (rekey, reauthentication) says so
 * once, the standby moves the CHILD SAs and virtual IPs over
 */
static void sync_ike_hosts(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						   sasync_ike_keys_t *keys, host_t *me, host_t *other)
{
	sasync_msg_t *msg, *child;

	if (!keys->secret.len)
	{
		DBG2(DBG_APP, "sasync: no key material captured for IKE_SA %s[%u], "
			 "not synced", ike_sa->get_name(ike_sa),
			 ike_sa->get_unique_id(ike_sa));
		return;
	}
	if (!keys->synced)
	{
		this->counters->inc(this->counters, SASYNC_CTR_VIKE_SYNC);
	}
	keys->conditions = condition_bits(ike_sa);
	keys->extensions = extension_bits(ike_sa);
	msg = build_ike_add(ike_sa, keys, me, other);
	if (keys->replaces)
	{
		add_id_as(msg, keys->replaces, SASYNC_ATTR_OLD_SPI_I,
				  SASYNC_ATTR_OLD_SPI_R);
		forget_replaced(this, keys);
	}
	/* the CHILD SAs held back, or the one being set up, follow at once:
	 * one write for all */
	if (array_count(keys->held) || child_follows(ike_sa))
	{
		send_msg_more(this, msg);
	}
	else
	{
		send_msg(this, msg);
	}
	keys->synced = TRUE;
	while (array_remove(keys->held, ARRAY_HEAD, &child))
	{
		this->counters->inc(this->counters, SASYNC_CTR_CONN_SYNC);
		if (array_count(keys->held))
		{
			send_msg_more(this, child);
		}
		else
		{
			send_msg(this, child);
		}
	}
}

static void sync_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					 sasync_ike_keys_t *keys)
{
	sync_ike_hosts(this, ike_sa, keys, NULL, NULL);
}

/**
 * Send the IKE SA again if its conditions or extensions changed since: some
 * are only set after it was established (NAT detection in IKEv1 Aggressive
 * Mode, for one)
 */
static void refresh_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						sasync_ike_keys_t *keys)
{
	if (keys->synced && sending(this, ike_sa, keys) &&
		(keys->conditions != condition_bits(ike_sa) ||
		 keys->extensions != extension_bits(ike_sa)))
	{
		sync_ike(this, ike_sa, keys);
	}
}

static void keep_ikev1_inputs(sasync_ike_keys_t *keys, key_exchange_t *dh,
							  chunk_t dh_other, shared_key_t *shared,
							  auth_method_t method)
{
	chunk_free(&keys->local_ke);
	chunk_free(&keys->remote_ke);
	chunk_clear(&keys->psk);
	if (!dh->get_public_key(dh, &keys->local_ke))
	{
		keys->local_ke = chunk_empty;
	}
	keys->remote_ke = chunk_clone(dh_other);
	if (shared)
	{
		keys->psk = chunk_clone(shared->get_key(shared));
	}
	keys->auth = method;
}

/**
 * Remember the SA an IKE SA replaces
 */
static void set_replaces(sasync_ike_keys_t *keys, ike_sa_t *old)
{
	DESTROY_IF(keys->replaces);
	keys->replaces = old->get_id(old);
	keys->replaces = keys->replaces->clone(keys->replaces);
	keys->replaces_unique = old->get_unique_id(old);
}

/**
 * An IKEv2 rekey derives the new keys from the SK_d of the SA it rekeys:
 * read it from that SA's keymat, as charon's ike_init does (no event
 * carries it with the right SA: the rekeyed SA is the thread's one while
 * either SA derives its keys)
 */
static void keep_old_skd(sasync_ike_keys_t *keys, ike_sa_t *rekey)
{
	keymat_v2_t *keymat = (keymat_v2_t*)rekey->get_keymat(rekey);
	chunk_t skd = chunk_empty;

	chunk_clear(&keys->old_skd);
	keys->old_prf = keymat->get_skd(keymat, &skd);
	keys->old_skd = chunk_clone(skd);
	set_replaces(keys, rekey);
}

METHOD(listener_t, ike_keys, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, key_exchange_t *dh,
	chunk_t dh_other, chunk_t nonce_i, chunk_t nonce_r, ike_sa_t *rekey,
	shared_key_t *shared, auth_method_t method)
{
	sasync_ike_keys_t *keys;
	chunk_t secret;

	if (!dh->get_shared_secret(dh, &secret))
	{
		return TRUE;
	}
	this->keys->lock(this->keys);
	keys = get_ike(this, ike_sa);
	if (ike_sa->get_version(ike_sa) == IKEV1)
	{
		keep_ikev1_inputs(keys, dh, dh_other, shared, method);
	}
	else if (rekey)
	{
		keep_old_skd(keys, rekey);
	}
	chunk_clear(&keys->secret);
	chunk_free(&keys->nonce_i);
	chunk_free(&keys->nonce_r);
	keys->secret = secret;
	keys->nonce_i = chunk_clone(nonce_i);
	keys->nonce_r = chunk_clone(nonce_r);
	this->keys->unlock(this->keys);
	return TRUE;
}

/**
 * An IKE SA a demoted node handed over, to make passive
 */
typedef struct {
	private_sasync_capture_t *this;
	ike_sa_id_t *id;
} passive_t;

static void passive_destroy(passive_t *job)
{
	job->id->destroy(job->id);
	free(job);
}

/**
 * Make an IKE SA a demoted node handed over passive, as the demotion made
 * the others
 */
static job_requeue_t passive_job(passive_t *job)
{
	ike_sa_t *ike_sa;

	ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, job->id);
	if (ike_sa)
	{
		if (!is_primary(job->this) &&
			ike_sa->get_state(ike_sa) == IKE_ESTABLISHED &&
			sasync_promote_make_passive(ike_sa, job->this->keys))
		{
			DBG1(DBG_APP, "sasync: IKE_SA %s[%u] handed over to the new "
				 "primary, passive here", ike_sa->get_name(ike_sa),
				 ike_sa->get_unique_id(ike_sa));
		}
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	}
	return JOB_REQUEUE_NONE;
}

/**
 * A demoted node sent an IKE SA it completed after the demotion walk (half-
 * open then, or a rekey's new SA): it becomes passive once charon is done
 * with it (it changes the state after the listeners ran)
 */
static void passive_later(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	passive_t *job;

	if (is_primary(this))
	{
		return;
	}
	INIT(job,
		.this = this,
		.id = ike_sa->get_id(ike_sa)->clone(ike_sa->get_id(ike_sa)),
	);
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create((callback_job_cb_t)passive_job, job,
										(void*)passive_destroy, NULL));
}

/**
 * A standby's copy of an IKE SA went without sync saying so: an operator's
 * terminate on the standby (charon destroys a passive SA without a word to
 * the peer), or charon shutting down. The primary still serves it; a
 * resync brings the copy back (requests and logs at most every 2 s, the
 * primary coalesces them too)
 */
static void passive_lost(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	time_t now = time_monotonic(NULL);

	this->counters->inc(this->counters, SASYNC_CTR_PASSIVE_LOST);
	if (now - this->lost_at < 2)
	{
		return;
	}
	this->lost_at = now;
	DBG1(DBG_APP, "sasync: passive IKE_SA %s[%u] destroyed, not by sync (a "
		 "terminate on the standby?): asking the primary for a resync",
		 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
	this->public.request_resync(&this->public);
}

/**
 * Remove our state of an IKE SA and tell the standbys if they knew it
 */
static void ike_gone(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	sasync_ike_keys_t *keys;
	sasync_msg_t *msg;

	this->keys->lock(this->keys);
	keys = this->keys->remove_ike(this->keys, ike_sa->get_unique_id(ike_sa));
	if (keys && keys->restored && !is_primary(this) &&
		ike_sa->get_state(ike_sa) == IKE_PASSIVE &&
		!sasync_keystore_sync_destroying())
	{
		passive_lost(this, ike_sa);
	}
	if (keys && keys->synced && sending(this, ike_sa, keys))
	{
		msg = sasync_msg_create(SASYNC_MSG_IKE_DELETE);
		add_ike_id(msg, ike_sa);
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
		send_msg(this, msg);
	}
	this->keys->unlock(this->keys);
	if (keys)
	{
		sasync_ike_keys_destroy(keys);
	}
}

METHOD(listener_t, ike_state_change, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, ike_sa_state_t state)
{
	sasync_ike_keys_t *keys;

	switch (state)
	{
		case IKE_ESTABLISHED:
			this->keys->lock(this->keys);
			keys = find_ike(this, ike_sa);
			/* an IKEv2 rekey is sent once charon moved identities, virtual
			 * IPs and CHILD SAs to the new SA (ike_rekey); a restored SA
			 * that becomes established at promotion goes to the others */
			if (keys && sending(this, ike_sa, keys) &&
				!(keys->old_skd.len && !keys->synced))
			{
				sync_ike(this, ike_sa, keys);
				passive_later(this, ike_sa);
			}
			this->keys->unlock(this->keys);
			break;
		case IKE_CONNECTING:
			if (is_primary(this))
			{	/* charon derives a responder's keys only once IKE_AUTH
				 * arrives, maybe after a demotion: the SA is ours to hand
				 * over if that comes before it is established */
				this->keys->lock(this->keys);
				get_ike(this, ike_sa)->handover = TRUE;
				this->keys->unlock(this->keys);
			}
			break;
		case IKE_DELETING:
		case IKE_DESTROYING:
			ike_gone(this, ike_sa);
			break;
		default:
			break;
	}
	return TRUE;
}

METHOD(listener_t, ike_update, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, host_t *local,
	host_t *remote)
{
	sasync_ike_keys_t *keys;

	this->keys->lock(this->keys);
	keys = find_ike(this, ike_sa);
	if (keys && keys->synced && sending(this, ike_sa, keys))
	{	/* called before the IKE SA takes the new addresses */
		sync_ike_hosts(this, ike_sa, keys, local, remote);
	}
	this->keys->unlock(this->keys);
	return TRUE;
}

METHOD(listener_t, ike_rekey, bool,
	private_sasync_capture_t *this, ike_sa_t *old, ike_sa_t *new)
{
	sasync_ike_keys_t *keys, *old_keys;

	/* called after inherit_post(): new has the identities, virtual IPs,
	 * conditions and CHILD SAs of old */
	this->keys->lock(this->keys);
	keys = find_ike(this, new);
	old_keys = find_ike(this, old);
	if (keys && old_keys && old_keys->handover)
	{	/* a rekey in flight at the demotion: the new SA goes over too */
		keys->handover = TRUE;
	}
	if (keys && sending(this, old, keys))
	{
		sync_ike(this, new, keys);
		passive_later(this, new);
	}
	this->keys->unlock(this->keys);
	return TRUE;
}

METHOD(listener_t, children_migrate, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, ike_sa_id_t *new,
	uint32_t unique)
{
	sasync_ike_keys_t *keys;

	/* IKEv1 reauthentication and uniqueness replace: charon moves the CHILD
	 * SAs (and virtual IPs) of ike_sa to a new IKE SA, first called for the
	 * old SA with the new one's id, then for the new SA with none */
	this->keys->lock(this->keys);
	if (new)
	{
		keys = this->keys->get_ike(this->keys, unique, TRUE);
		set_replaces(keys, ike_sa);
	}
	else
	{
		keys = find_ike(this, ike_sa);
		if (keys && keys->synced && keys->replaces &&
			sending(this, ike_sa, keys))
		{	/* else it says so when it is established */
			sync_ike(this, ike_sa, keys);
		}
	}
	this->keys->unlock(this->keys);
	return TRUE;
}

/**
 * charon announces and learns RFC 6311 support only as IKE_AUTH initiator;
 * a cluster is mostly the responder, so do both here: a promoted standby
 * can then resync message IDs with the peer
 */
static void negotiate_midsync(ike_sa_t *ike_sa, message_t *message,
							  bool incoming)
{
	if (message->get_exchange_type(message) != IKE_AUTH ||
		message->get_request(message) != incoming)
	{
		return;
	}
	if (incoming)
	{
		if (message->get_notify(message, IKEV2_MESSAGE_ID_SYNC_SUPPORTED))
		{
			ike_sa->enable_extension(ike_sa, EXT_IKE_MESSAGE_ID_SYNC);
		}
	}
	else if (!message->get_notify(message, IKEV2_MESSAGE_ID_SYNC_SUPPORTED) &&
			 message->get_payload(message, PLV2_AUTH))
	{
		message->add_notify(message, FALSE, IKEV2_MESSAGE_ID_SYNC_SUPPORTED,
							chunk_empty);
	}
}

/**
 * Whether the message IDs of an IKE SA need not go to the standbys now: a
 * new primary resyncs them with the peer (RFC 6311), and an update at most
 * every SASYNC_MID_COALESCE seconds keeps them close for the peers that
 * fail to answer that; with the keys locked
 */
static bool coalesce_mid(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						 sasync_ike_keys_t *keys)
{
	time_t now;

	if (!this->coalesce || ike_sa->get_version(ike_sa) != IKEV2 ||
		!ike_sa->supports_extension(ike_sa, EXT_IKE_MESSAGE_ID_SYNC))
	{
		return FALSE;
	}
	now = time_monotonic(NULL);
	if (keys->mid_sent && now - keys->mid_sent < SASYNC_MID_COALESCE)
	{
		this->counters->inc(this->counters, SASYNC_CTR_MID_SYNC_COALESCED);
		return TRUE;
	}
	keys->mid_sent = now;
	return FALSE;
}

/**
 * Track the next message IDs (IKEv2) or DPD sequence numbers (IKEv1) of an
 * IKE SA, 0 for a direction that did not move, and tell the standbys. The
 * records carry the highest IDs seen in both directions, never the ID of
 * one message: an RFC 6311 sync is message 0, and a standby given that
 * would go back to ID 1 and fail after its own promotion.
 */
static void track_mids(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					   uint32_t next_i, uint32_t next_r)
{
	sasync_ike_keys_t *keys;
	sasync_msg_t *msg;

	this->keys->lock(this->keys);
	keys = get_ike(this, ike_sa);
	keys->mid_i = max(keys->mid_i, next_i);
	keys->mid_r = max(keys->mid_r, next_r);
	if (keys->synced && sending(this, ike_sa, keys) &&
		!(is_primary(this) && coalesce_mid(this, ike_sa, keys)))
	{
		msg = sasync_msg_create(SASYNC_MSG_IKE_MID);
		add_ike_id(msg, ike_sa);
		add_mids(msg, ike_sa, keys);
		this->counters->inc(this->counters, SASYNC_CTR_MID_SYNC);
		send_msg(this, msg);
	}
	this->keys->unlock(this->keys);
}

static void track_mid(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					  bool incoming, uint32_t next)
{
	track_mids(this, ike_sa, incoming ? 0 : next, incoming ? next : 0);
}

/**
 * The IDs an RFC 6311 sync request announces: the sender's next request ID
 * and the one it expects next
 */
static bool midsync_ids(message_t *message, uint32_t *send, uint32_t *recv)
{
	uint32_t nonce;

	return message->get_exchange_type(message) == INFORMATIONAL &&
		   message->get_message_id(message) == 0 &&
		   sasync_midsync_parse(message, &nonce, send, recv);
}

/**
 * IKEv1 phase 1 IV: the last block after a phase 1 message was en- or
 * decrypted; phase 2 IVs derive from it
 */
static void track_iv(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	keymat_v1_t *keymat = (keymat_v1_t*)ike_sa->get_keymat(ike_sa);
	sasync_ike_keys_t *keys;
	chunk_t iv;

	if (!keymat->get_iv(keymat, 0, &iv))
	{
		return;
	}
	this->keys->lock(this->keys);
	keys = get_ike(this, ike_sa);
	if (!chunk_equals(iv, keys->iv))
	{
		chunk_free(&keys->iv);
		keys->iv = chunk_clone(iv);
		if (keys->synced && sending(this, ike_sa, keys))
		{
			sync_ike(this, ike_sa, keys);
		}
	}
	this->keys->unlock(this->keys);
}

static void message_v1(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					   message_t *message, bool incoming, bool plain)
{
	notify_payload_t *notify;
	chunk_t data;

	/* decrypted incoming, or encrypted outgoing: the IV moved on */
	if (incoming == plain && message->get_message_id(message) == 0)
	{
		track_iv(this, ike_sa);
	}
	if (plain && message->get_exchange_type(message) == INFORMATIONAL_V1)
	{
		notify = message->get_notify(message, DPD_R_U_THERE);
		data = notify ? notify->get_notification_data(notify) : chunk_empty;
		if (data.len == 4)
		{
			track_mid(this, ike_sa, incoming, untoh32(data.ptr) + 1);
		}
	}
}

/**
 * The cluster's only endpoint is its virtual IP: never let MOBIKE announce
 * a node's own addresses to the peer
 */
static void strip_additional_addresses(message_t *message)
{
	enumerator_t *enumerator;
	notify_payload_t *notify;
	payload_t *payload;
	bool stripped = FALSE;

	enumerator = message->create_payload_enumerator(message);
	while (enumerator->enumerate(enumerator, &payload))
	{
		if (payload->get_type(payload) != PLV2_NOTIFY)
		{
			continue;
		}
		notify = (notify_payload_t*)payload;
		switch (notify->get_notify_type(notify))
		{
			case ADDITIONAL_IP4_ADDRESS:
			case ADDITIONAL_IP6_ADDRESS:
				message->remove_payload_at(message, enumerator);
				payload->destroy(payload);
				stripped = TRUE;
				break;
			default:
				break;
		}
	}
	enumerator->destroy(enumerator);
	if (stripped && !message->get_notify(message, NO_ADDITIONAL_ADDRESSES))
	{
		message->add_notify(message, FALSE, NO_ADDITIONAL_ADDRESSES,
							chunk_empty);
	}
}

/**
 * The CHILD SA we propose in a CREATE_CHILD_SA request: our inbound SPI
 */
static bool proposed_child(message_t *message, protocol_id_t *protocol,
						   uint32_t *spi)
{
	sa_payload_t *sa;
	linked_list_t *proposals;
	proposal_t *proposal;
	bool found = FALSE;

	sa = (sa_payload_t*)message->get_payload(message, PLV2_SECURITY_ASSOCIATION);
	if (!sa)
	{
		return FALSE;
	}
	proposals = sa->get_proposals(sa);
	if (proposals->get_first(proposals, (void**)&proposal) == SUCCESS &&
		(proposal->get_protocol(proposal) == PROTO_ESP ||
		 proposal->get_protocol(proposal) == PROTO_AH))
	{
		*protocol = proposal->get_protocol(proposal);
		*spi = proposal->get_spi(proposal);
		found = TRUE;
	}
	proposals->destroy_offset(proposals, offsetof(proposal_t, destroy));
	return found;
}

/**
 * A CHILD SA we propose (create or rekey) exists at the peer as soon as it
 * answers; if we fail before the answer, a promoted standby must delete it
 * there, so tell it now. A failed exchange (no SA in the answer) ends it.
 */
static void track_child_exchange(private_sasync_capture_t *this,
								 ike_sa_t *ike_sa, message_t *message,
								 bool incoming)
{
	sasync_ike_keys_t *keys;
	sasync_msg_t *msg = NULL;
	protocol_id_t protocol;
	uint32_t spi;

	if (message->get_exchange_type(message) != CREATE_CHILD_SA ||
		message->get_request(message) == incoming || !is_primary(this))
	{
		return;
	}
	this->keys->lock(this->keys);
	keys = find_ike(this, ike_sa);
	if (keys && keys->synced)
	{
		if (!incoming && proposed_child(message, &protocol, &spi))
		{
			keys->pending_spi = spi;
			keys->pending_protocol = protocol;
			msg = sasync_msg_create(SASYNC_MSG_CHILD_PENDING);
		}
		else if (incoming && keys->pending_spi &&
				 !message->get_payload(message, PLV2_SECURITY_ASSOCIATION))
		{
			msg = sasync_msg_create(SASYNC_MSG_CHILD_DELETE);
		}
		else if (incoming)
		{	/* the CHILD_ADD follows */
			keys->pending_spi = 0;
		}
	}
	if (msg)
	{
		add_ike_id(msg, ike_sa);
		msg->add_int(msg, SASYNC_ATTR_PROTOCOL, keys->pending_protocol);
		msg->add_int(msg, SASYNC_ATTR_SPI_IN, keys->pending_spi);
		send_msg(this, msg);
		if (incoming)
		{
			keys->pending_spi = 0;
		}
	}
	this->keys->unlock(this->keys);
}

METHOD(listener_t, message_hook, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, message_t *message,
	bool incoming, bool plain)
{
	sasync_ike_keys_t *keys;
	uint32_t send, recv;

	if (plain)
	{
		this->keys->lock(this->keys);
		keys = find_ike(this, ike_sa);
		if (keys)
		{
			refresh_ike(this, ike_sa, keys);
		}
		this->keys->unlock(this->keys);
	}
	if (ike_sa->get_version(ike_sa) == IKEV1)
	{
		message_v1(this, ike_sa, message, incoming, plain);
		return TRUE;
	}
	if (!plain)
	{
		if (!incoming)
		{	/* records of the exchange were left queued for a CHILD SA
			 * that did not come: they go no later than its message */
			uncork(this);
		}
		return TRUE;
	}
	negotiate_midsync(ike_sa, message, incoming);
	track_child_exchange(this, ike_sa, message, incoming);
	if (!incoming)
	{
		strip_additional_addresses(message);
	}
	if (!message->get_request(message) ||
		message->get_exchange_type(message) == IKE_SA_INIT)
	{
		return TRUE;
	}
	if (midsync_ids(message, &send, &recv))
	{	/* the IDs both sides take if it succeeds; a standby that takes
		 * them although it failed syncs higher ones after its promotion,
		 * and the peer takes the higher ones */
		track_mids(this, ike_sa, incoming ? recv : send,
				   incoming ? send : recv);
	}
	else
	{
		track_mid(this, ike_sa, incoming,
				  message->get_message_id(message) + 1);
	}
	return TRUE;
}

METHOD(listener_t, assign_vips, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, bool assign)
{
	sasync_ike_keys_t *keys;

	/* IKEv1 Mode Config assigns them after phase 1 completed */
	this->keys->lock(this->keys);
	keys = find_ike(this, ike_sa);
	if (assign && keys && keys->synced && sending(this, ike_sa, keys))
	{
		sync_ike(this, ike_sa, keys);
	}
	this->keys->unlock(this->keys);
	return TRUE;
}

METHOD(listener_t, child_derived_keys, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	bool initiator, chunk_t encr_i, chunk_t encr_r, chunk_t integ_i,
	chunk_t integ_r)
{
	sasync_child_keys_t *keys;

	INIT(keys,
		.initiator = initiator,
		.encr_in = chunk_clone(initiator ? encr_r : encr_i),
		.integ_in = chunk_clone(initiator ? integ_r : integ_i),
		.encr_out = chunk_clone(initiator ? encr_i : encr_r),
		.integ_out = chunk_clone(initiator ? integ_i : integ_r),
	);
	this->keys->lock(this->keys);
	this->keys->put_child(this->keys, child_sa->get_unique_id(child_sa), keys);
	this->keys->unlock(this->keys);
	return TRUE;
}

static void add_ts_list(sasync_msg_t *msg, child_sa_t *child_sa, bool local)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;

	enumerator = child_sa->create_ts_enumerator(child_sa, local);
	while (enumerator->enumerate(enumerator, &ts))
	{
		msg->add_ts(msg, local ? SASYNC_ATTR_LOCAL_TS : SASYNC_ATTR_REMOTE_TS,
					ts);
	}
	enumerator->destroy(enumerator);
}

/**
 * Build a CHILD_ADD record
 */
static sasync_msg_t *build_child_add_as(ike_sa_id_t *id,
										ike_version_t version,
										child_sa_t *child_sa,
										sasync_child_keys_t *keys)
{
	sasync_msg_t *msg = sasync_msg_create(SASYNC_MSG_CHILD_ADD);

	add_ike_id_of(msg, id, version);
	msg->add_chunk(msg, SASYNC_ATTR_CHILD_NAME,
				   chunk_from_str(child_sa->get_name(child_sa)));
	msg->add_int(msg, SASYNC_ATTR_UNIQUE, child_sa->get_unique_id(child_sa));
	msg->add_int(msg, SASYNC_ATTR_PROTOCOL, child_sa->get_protocol(child_sa));
	msg->add_int(msg, SASYNC_ATTR_MODE, child_sa->get_mode(child_sa));
	msg->add_int(msg, SASYNC_ATTR_ENCAP, child_sa->has_encap(child_sa));
	msg->add_int(msg, SASYNC_ATTR_IPCOMP, child_sa->get_ipcomp(child_sa));
	msg->add_int(msg, SASYNC_ATTR_CPI_IN, child_sa->get_cpi(child_sa, TRUE));
	msg->add_int(msg, SASYNC_ATTR_CPI_OUT, child_sa->get_cpi(child_sa, FALSE));
	msg->add_int(msg, SASYNC_ATTR_SPI_IN, child_sa->get_spi(child_sa, TRUE));
	msg->add_int(msg, SASYNC_ATTR_SPI_OUT, child_sa->get_spi(child_sa, FALSE));
	msg->add_int(msg, SASYNC_ATTR_REQID, child_sa->get_reqid(child_sa));
	msg->add_mark(msg, SASYNC_ATTR_MARK_IN, child_sa->get_mark(child_sa, TRUE));
	msg->add_mark(msg, SASYNC_ATTR_MARK_OUT,
				  child_sa->get_mark(child_sa, FALSE));
	msg->add_int(msg, SASYNC_ATTR_IF_ID_IN, child_sa->get_if_id(child_sa, TRUE));
	msg->add_int(msg, SASYNC_ATTR_IF_ID_OUT,
				 child_sa->get_if_id(child_sa, FALSE));
	msg->add_proposal(msg, SASYNC_ATTR_PROPOSAL,
					  child_sa->get_proposal(child_sa));
	sasync_child_keys_encode(keys, msg);
	add_ts_list(msg, child_sa, TRUE);
	add_ts_list(msg, child_sa, FALSE);
	return msg;
}

static sasync_msg_t *build_child_add(ike_sa_t *ike_sa, child_sa_t *child_sa,
									 sasync_child_keys_t *keys)
{
	return build_child_add_as(ike_sa->get_id(ike_sa),
							  ike_sa->get_version(ike_sa), child_sa, keys);
}

static void child_installed(private_sasync_capture_t *this, ike_sa_t *ike_sa,
							child_sa_t *child_sa)
{
	sasync_child_keys_t *keys;
	sasync_ike_keys_t *ike;
	sasync_msg_t *msg;

	keys = find_child(this, child_sa);
	if (!keys || keys->synced)
	{
		return;
	}
	keys->synced = TRUE;
	msg = build_child_add(ike_sa, child_sa, keys);
	ike = get_ike(this, ike_sa);
	refresh_ike(this, ike_sa, ike);
	if (ike->synced)
	{
		this->counters->inc(this->counters, SASYNC_CTR_CONN_SYNC);
		send_msg(this, msg);
	}
	else
	{	/* a CHILD SA never reaches a standby before its IKE SA */
		array_insert(ike->held, ARRAY_TAIL, msg);
	}
}

/**
 * A CHILD SA of a synced IKE SA changes: tell the standbys
 */
static void child_changed(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						  child_sa_t *child_sa, sasync_msg_type_t type)
{
	sasync_ike_keys_t *ike;
	sasync_msg_t *msg;

	ike = find_ike(this, ike_sa);
	if (!ike || !ike->synced || !sending(this, ike_sa, ike))
	{
		return;
	}
	msg = sasync_msg_create(type);
	add_ike_id(msg, ike_sa);
	msg->add_int(msg, SASYNC_ATTR_PROTOCOL, child_sa->get_protocol(child_sa));
	msg->add_int(msg, SASYNC_ATTR_SPI_IN, child_sa->get_spi(child_sa, TRUE));
	if (type == SASYNC_MSG_CHILD_DELETE)
	{
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
	}
	send_msg(this, msg);
}

/**
 * A CHILD SA goes: tell the standbys, unless its IKE SA goes with it (the
 * IKE_DELETE says it all)
 */
static void child_gone(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					   child_sa_t *child_sa)
{
	if (this->keys->remove_child(this->keys,
								 child_sa->get_unique_id(child_sa)))
	{
		child_changed(this, ike_sa, child_sa, SASYNC_MSG_CHILD_DELETE);
	}
}

/**
 * A CHILD SA was rekeyed: its successor carries the traffic from now on,
 * the standbys keep it as rekeyed too (no forced rekey of it after a
 * promotion, not listed as installed)
 */
static void child_rekeyed(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						  child_sa_t *child_sa)
{
	sasync_child_keys_t *keys;

	keys = find_child(this, child_sa);
	if (keys && keys->synced)
	{
		child_changed(this, ike_sa, child_sa, SASYNC_MSG_CHILD_REKEYED);
	}
}

METHOD(listener_t, child_state_change, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	child_sa_state_t state)
{
	this->keys->lock(this->keys);
	switch (state)
	{
		case CHILD_INSTALLED:
			if (sending(this, ike_sa, find_ike(this, ike_sa)))
			{
				child_installed(this, ike_sa, child_sa);
			}
			break;
		case CHILD_REKEYED:
			child_rekeyed(this, ike_sa, child_sa);
			break;
		case CHILD_DELETING:
		case CHILD_DELETED:
		case CHILD_DESTROYING:
			child_gone(this, ike_sa, child_sa);
			break;
		default:
			break;
	}
	this->keys->unlock(this->keys);
	return TRUE;
}

/**
 * The CHILD SAs of an IKE SA not synced yet that charon moved there from
 * the SA it replaces: an IKEv1 reauthentication moves them when it starts
 * (queue_ike_reauth()), and the partner still holds them under the old SA,
 * which a resync names without them. Named under the old SA, they stay;
 * the new SA's IKE_ADD takes them over once it is established.
 */
static void resync_moved(private_sasync_capture_t *this, host_t *to,
						 ike_sa_t *ike_sa, sasync_ike_keys_t *ike)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	sasync_child_keys_t *keys;

	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		keys = find_child(this, child_sa);
		if (keys && keys->synced && sasync_resync_names_child(child_sa))
		{
			send_msg_to(this, to, build_child_add_as(ike->replaces,
								ike_sa->get_version(ike_sa), child_sa, keys));
		}
	}
	enumerator->destroy(enumerator);
}

/**
 * Send an IKE SA and its CHILD SAs again, to one partner node or all
 */
static u_int resync_ike(private_sasync_capture_t *this, host_t *to,
						ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	sasync_child_keys_t *keys;
	sasync_ike_keys_t *ike;

	ike = find_ike(this, ike_sa);
	if (ike && !ike->synced && ike->replaces)
	{
		resync_moved(this, to, ike_sa, ike);
		return 0;
	}
	if (!ike || !ike->synced || !sasync_resync_names_ike(ike_sa))
	{
		return 0;
	}
	send_msg_to(this, to, build_ike_add(ike_sa, ike, NULL, NULL));
	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		keys = find_child(this, child_sa);
		if (keys && keys->synced && sasync_resync_names_child(child_sa))
		{
			send_msg_to(this, to, build_child_add(ike_sa, child_sa, keys));
		}
	}
	enumerator->destroy(enumerator);
	return 1;
}

/** IKE SAs a resync job sends before it lets other jobs run */
#define RESYNC_BATCH 256

/** how long a resync waits for a full queue to drain, in ms */
#define RESYNC_WAIT 10

/**
 * A bulk resync in a job: its target (NULL for every partner node), and a
 * cursor over the ids of the IKE SAs it found at its start. It goes on as
 * the queues drain, so it never fills one and its memory is that of the
 * ids, whatever the number of SAs.
 */
typedef struct {
	private_sasync_capture_t *capture;
	host_t *to;
	/** ike_sa_id_t*, NULL until the job first runs */
	array_t *ids;
	/** next index into ids */
	u_int next;
	/** IKE SAs sent */
	u_int sent;
} resync_t;

static void resync_destroy(resync_t *resync)
{
	array_destroy_offset(resync->ids, offsetof(ike_sa_id_t, destroy));
	DESTROY_IF(resync->to);
	free(resync);
}

/**
 * Start a resync: announce it and note the ids of the IKE SAs to send
 */
static void resync_start(resync_t *resync)
{
	private_sasync_capture_t *this = resync->capture;
	enumerator_t *enumerator;
	sasync_msg_t *msg;
	ike_sa_t *ike_sa;
	ike_sa_id_t *id;

	resync->ids = array_create(0, 0);
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		id = ike_sa->get_id(ike_sa);
		array_insert(resync->ids, ARRAY_TAIL, id->clone(id));
	}
	enumerator->destroy(enumerator);
	this->resync_total = array_count(resync->ids);
	this->resync_sent = 0;
	/* the partner learns how many there are, to tell how far it got */
	msg = sasync_msg_create(SASYNC_MSG_RESYNC_START);
	msg->add_int(msg, SASYNC_ATTR_RESYNC_TOTAL, this->resync_total);
	send_msg_to(this, resync->to, msg);
}

/**
 * Send the IKE SA with the given id again, if it still exists; FALSE once
 * the node is no longer primary. Checked for each SA, not once per batch:
 * resync records sent after a demotion go out marked as hand-overs, and
 * the new primary would apply a batch of them over its own SAs.
 */
static bool resync_one(resync_t *resync, ike_sa_id_t *id)
{
	private_sasync_capture_t *this = resync->capture;
	ike_sa_t *ike_sa;
	bool primary = TRUE;

	ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
	if (ike_sa)
	{
		this->keys->lock(this->keys);
		primary = is_primary(this);
		if (primary)
		{
			resync->sent += resync_ike(this, resync->to, ike_sa);
		}
		this->keys->unlock(this->keys);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	}
	return primary;
}

/**
 * Finish a resync: the partner may now remove what it did not name
 */
static void resync_done(resync_t *resync)
{
	private_sasync_capture_t *this = resync->capture;

	send_msg_to(this, resync->to, sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	this->counters->inc(this->counters, SASYNC_CTR_RESYNC);
	if (resync->to)
	{
		DBG1(DBG_APP, "sasync: bulk resync sent to %H, %u IKE_SAs",
			 resync->to, resync->sent);
	}
	else
	{
		DBG1(DBG_APP, "sasync: bulk resync sent, %u IKE_SAs", resync->sent);
	}
}

static job_requeue_t resync_job(resync_t *resync)
{
	private_sasync_capture_t *this = resync->capture;
	ike_sa_id_t *id;
	u_int batch;

	if (!is_primary(this))
	{	/* demoted meanwhile: the new primary resyncs */
		return JOB_REQUEUE_NONE;
	}
	if (!resync->ids)
	{
		resync_start(resync);
	}
	for (batch = 0; batch < RESYNC_BATCH &&
		 array_get(resync->ids, resync->next, &id); batch++)
	{
		if (this->link->get_queued(this->link, resync->to) > SASYNC_QUEUE_HIGH)
		{
			return JOB_RESCHEDULE_MS(RESYNC_WAIT);
		}
		if (!resync_one(resync, id))
		{	/* demoted meanwhile: the new primary resyncs */
			return JOB_REQUEUE_NONE;
		}
		this->resync_sent = ++resync->next;
	}
	if (resync->next < array_count(resync->ids))
	{
		return JOB_REQUEUE_FAIR;
	}
	resync_done(resync);
	return JOB_REQUEUE_NONE;
}

METHOD(sasync_capture_t, resync, void,
	private_sasync_capture_t *this, host_t *to)
{
	resync_t *resync;

	INIT(resync,
		.capture = this,
		.to = to ? to->clone(to) : NULL,
	);
	/* not on the caller's thread: that may be the link's receiving thread */
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create((callback_job_cb_t)resync_job, resync,
										(void*)resync_destroy, NULL));
}

METHOD(sasync_capture_t, get_resync_progress, void,
	private_sasync_capture_t *this, u_int *sent, u_int *total)
{
	*sent = this->resync_sent;
	*total = this->resync_total;
}

METHOD(sasync_capture_t, request_resync, void,
	private_sasync_capture_t *this)
{
	sasync_msg_t *msg;

	msg = sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST);
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, sasync_now_ms());
	this->link->send(this->link, msg->get_encoding(msg));
	msg->destroy(msg);
}

METHOD(sasync_capture_t, destroy, void,
	private_sasync_capture_t *this)
{
	free(this);
}

/**
 * The mid_sync setting: TRUE for coalesced, FALSE for every-exchange (the
 * default; an invalid value is logged)
 */
static bool mid_sync_coalesced()
{
	char *mode;

	mode = lib->settings->get_str(lib->settings, "%s.plugins.sasync.mid_sync",
								  "every-exchange", lib->ns);
	if (streq(mode, "coalesced"))
	{
		return TRUE;
	}
	if (!streq(mode, "every-exchange"))
	{
		DBG1(DBG_APP, "sasync: invalid mid_sync '%s' (every-exchange or "
			 "coalesced), using every-exchange", mode);
	}
	return FALSE;
}

/*
 * Described in header
 */
sasync_capture_t *sasync_capture_create(sasync_link_t *link, sasync_role_t *role,
										sasync_counters_t *counters,
										sasync_keystore_t *keys)
{
	private_sasync_capture_t *this;

	INIT(this,
		.public = {
			.listener = {
				.ike_keys = _ike_keys,
				.ike_state_change = _ike_state_change,
				.ike_update = _ike_update,
				.ike_rekey = _ike_rekey,
				.children_migrate = _children_migrate,
				.message = _message_hook,
				.assign_vips = _assign_vips,
				.child_derived_keys = _child_derived_keys,
				.child_state_change = _child_state_change,
			},
			.resync = _resync,
			.get_resync_progress = _get_resync_progress,
			.request_resync = _request_resync,
			.destroy = _destroy,
		},
		.link = link,
		.role = role,
		.counters = counters,
		.keys = keys,
		.coalesce = mid_sync_coalesced(),
	);
	return &this->public;
}
