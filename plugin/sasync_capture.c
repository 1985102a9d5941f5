/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_capture.h"
#include "sasync_msg.h"

#include <sys/time.h>

#include <daemon.h>
#include <collections/array.h>
#include <collections/hashtable.h>
#include <threading/mutex.h>
#include <sa/ikev1/keymat_v1.h>
#include <encoding/payloads/notify_payload.h>
#include <processing/jobs/callback_job.h>

typedef struct private_sasync_capture_t private_sasync_capture_t;

/**
 * What we know of an IKE SA that the bus does not keep for us.
 */
typedef struct {
	/** key exchange shared secret */
	chunk_t secret;
	/** nonces */
	chunk_t nonce_i;
	chunk_t nonce_r;
	/** SK_d and PRF of the SA this one rekeyed, if any */
	chunk_t old_skd;
	uint16_t old_prf;
	/** our own SK_d, for SAs that rekey this one */
	chunk_t skd;
	/** IKEv1: public values, pre-shared key, auth method, phase 1 IV */
	chunk_t local_ke;
	chunk_t remote_ke;
	chunk_t psk;
	auth_method_t auth;
	chunk_t iv;
	/** next message IDs (IKEv2) or DPD sequence numbers (IKEv1) */
	uint32_t mid_i;
	uint32_t mid_r;
	/** conditions and extensions when last sent */
	uint32_t conditions;
	uint32_t extensions;
	/** IKE_ADD sent */
	bool synced;
	/** CHILD_ADD records (sasync_msg_t*) waiting for the IKE_ADD */
	array_t *held;
} ike_entry_t;

/**
 * Keys of a CHILD SA, from our point of view.
 */
typedef struct {
	chunk_t encr_in;
	chunk_t integ_in;
	chunk_t encr_out;
	chunk_t integ_out;
	bool initiator;
	/** CHILD_ADD sent (or held) */
	bool synced;
} child_entry_t;

struct private_sasync_capture_t {

	/** public interface */
	sasync_capture_t public;

	/** sync link */
	sasync_link_t *link;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** unique id => ike_entry_t */
	hashtable_t *ikes;

	/** unique id => child_entry_t */
	hashtable_t *children;

	/** protects the tables */
	mutex_t *mutex;
};

/*
 * Described in header
 */
uint64_t sasync_now_ms()
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void ike_entry_destroy(ike_entry_t *entry)
{
	chunk_clear(&entry->secret);
	chunk_free(&entry->nonce_i);
	chunk_free(&entry->nonce_r);
	chunk_clear(&entry->old_skd);
	chunk_clear(&entry->skd);
	chunk_free(&entry->local_ke);
	chunk_free(&entry->remote_ke);
	chunk_clear(&entry->psk);
	chunk_free(&entry->iv);
	array_destroy_offset(entry->held, offsetof(sasync_msg_t, destroy));
	free(entry);
}

static void child_entry_destroy(child_entry_t *entry)
{
	chunk_clear(&entry->encr_in);
	chunk_clear(&entry->integ_in);
	chunk_clear(&entry->encr_out);
	chunk_clear(&entry->integ_out);
	free(entry);
}

static void *key_of(u_int unique)
{
	return (void*)(uintptr_t)unique;
}

/**
 * Our state of an IKE SA, NULL if we have none
 */
static ike_entry_t *find_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	return this->ikes->get(this->ikes, key_of(ike_sa->get_unique_id(ike_sa)));
}

/**
 * Our state of an IKE SA, created if we have none
 */
static ike_entry_t *get_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	ike_entry_t *entry = find_ike(this, ike_sa);

	if (!entry)
	{
		INIT(entry,
			.held = array_create(0, 0),
		);
		this->ikes->put(this->ikes, key_of(ike_sa->get_unique_id(ike_sa)),
						entry);
	}
	return entry;
}

static child_entry_t *find_child(private_sasync_capture_t *this,
								 child_sa_t *child_sa)
{
	return this->children->get(this->children,
							   key_of(child_sa->get_unique_id(child_sa)));
}

/**
 * Keep the keys of a CHILD SA, replacing what we had
 */
static void put_child(private_sasync_capture_t *this, child_sa_t *child_sa,
					  child_entry_t *entry)
{
	this->mutex->lock(this->mutex);
	entry = this->children->put(this->children,
						key_of(child_sa->get_unique_id(child_sa)), entry);
	this->mutex->unlock(this->mutex);
	if (entry)
	{
		child_entry_destroy(entry);
	}
}

static bool is_primary(private_sasync_capture_t *this)
{
	return this->role->get(this->role) == SASYNC_ROLE_PRIMARY;
}

static void send_msg(private_sasync_capture_t *this, sasync_msg_t *msg)
{
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, sasync_now_ms());
	this->link->send(this->link, msg->get_encoding(msg));
	msg->destroy(msg);
}

/**
 * Add the IKE SA id to a record
 */
static void add_ike_id(sasync_msg_t *msg, ike_sa_t *ike_sa)
{
	ike_sa_id_t *id = ike_sa->get_id(ike_sa);

	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_I, id->get_initiator_spi(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_R, id->get_responder_spi(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_INITIATOR, id->is_initiator(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_VERSION, ike_sa->get_version(ike_sa));
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
 * IKEv1 derives its keys and IVs from more inputs; its message IDs are
 * random, only the DPD sequence numbers count
 */
static void add_ikev1(sasync_msg_t *msg, ike_entry_t *entry)
{
	msg->add_chunk(msg, SASYNC_ATTR_LOCAL_KE, entry->local_ke);
	msg->add_chunk(msg, SASYNC_ATTR_REMOTE_KE, entry->remote_ke);
	msg->add_int(msg, SASYNC_ATTR_AUTH_METHOD, entry->auth);
	if (entry->psk.len)
	{
		msg->add_chunk(msg, SASYNC_ATTR_PSK, entry->psk);
	}
	if (entry->iv.len)
	{
		msg->add_chunk(msg, SASYNC_ATTR_IV, entry->iv);
	}
	/* zero: no DPD yet, the peer accepts any first sequence number */
	if (entry->mid_i)
	{
		msg->add_int(msg, SASYNC_ATTR_MID_I, entry->mid_i);
	}
	if (entry->mid_r)
	{
		msg->add_int(msg, SASYNC_ATTR_MID_R, entry->mid_r);
	}
}

/**
 * Build an IKE_ADD record with everything a standby needs
 */
static sasync_msg_t *build_ike_add(ike_sa_t *ike_sa, ike_entry_t *entry,
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
	msg->add_chunk(msg, SASYNC_ATTR_SECRET, entry->secret);
	msg->add_chunk(msg, SASYNC_ATTR_NONCE_I, entry->nonce_i);
	msg->add_chunk(msg, SASYNC_ATTR_NONCE_R, entry->nonce_r);
	if (entry->old_skd.len)
	{
		msg->add_chunk(msg, SASYNC_ATTR_OLD_SKD, entry->old_skd);
		msg->add_int(msg, SASYNC_ATTR_OLD_PRF, entry->old_prf);
	}
	msg->add_int(msg, SASYNC_ATTR_EXTENSIONS, extension_bits(ike_sa));
	msg->add_int(msg, SASYNC_ATTR_CONDITIONS, condition_bits(ike_sa));
	add_vips(msg, ike_sa, TRUE);
	add_vips(msg, ike_sa, FALSE);
	if (ike_sa->get_version(ike_sa) == IKEV1)
	{
		add_ikev1(msg, entry);
	}
	else
	{
		msg->add_int(msg, SASYNC_ATTR_MID_I,
					 max(entry->mid_i, ike_sa->get_message_id(ike_sa, TRUE)));
		msg->add_int(msg, SASYNC_ATTR_MID_R,
					 max(entry->mid_r, ike_sa->get_message_id(ike_sa, FALSE)));
	}
	return msg;
}

/**
 * Send the IKE SA (first time or update) and release held CHILD SAs
 */
static void sync_ike_hosts(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						   ike_entry_t *entry, host_t *me, host_t *other)
{
	sasync_msg_t *child;

	if (!entry->secret.len)
	{
		DBG2(DBG_APP, "sasync: no key material captured for IKE_SA %s[%u], "
			 "not synced", ike_sa->get_name(ike_sa),
			 ike_sa->get_unique_id(ike_sa));
		return;
	}
	if (!entry->synced)
	{
		this->counters->inc(this->counters, SASYNC_CTR_VIKE_SYNC);
	}
	entry->conditions = condition_bits(ike_sa);
	entry->extensions = extension_bits(ike_sa);
	send_msg(this, build_ike_add(ike_sa, entry, me, other));
	entry->synced = TRUE;
	while (array_remove(entry->held, ARRAY_HEAD, &child))
	{
		this->counters->inc(this->counters, SASYNC_CTR_CONN_SYNC);
		send_msg(this, child);
	}
}

static void sync_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					 ike_entry_t *entry)
{
	sync_ike_hosts(this, ike_sa, entry, NULL, NULL);
}

/**
 * Send the IKE SA again if its conditions or extensions changed since: some
 * are only set after it was established (NAT detection in IKEv1 Aggressive
 * Mode, for one)
 */
static void refresh_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa,
						ike_entry_t *entry)
{
	if (entry->synced && is_primary(this) &&
		(entry->conditions != condition_bits(ike_sa) ||
		 entry->extensions != extension_bits(ike_sa)))
	{
		sync_ike(this, ike_sa, entry);
	}
}

static void keep_ikev1_inputs(ike_entry_t *entry, key_exchange_t *dh,
							  chunk_t dh_other, shared_key_t *shared,
							  auth_method_t method)
{
	chunk_free(&entry->local_ke);
	chunk_free(&entry->remote_ke);
	chunk_clear(&entry->psk);
	if (!dh->get_public_key(dh, &entry->local_ke))
	{
		entry->local_ke = chunk_empty;
	}
	entry->remote_ke = chunk_clone(dh_other);
	if (shared)
	{
		entry->psk = chunk_clone(shared->get_key(shared));
	}
	entry->auth = method;
}

METHOD(listener_t, ike_keys, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, key_exchange_t *dh,
	chunk_t dh_other, chunk_t nonce_i, chunk_t nonce_r, ike_sa_t *rekey,
	shared_key_t *shared, auth_method_t method)
{
	ike_entry_t *entry, *old;
	proposal_t *proposal;
	chunk_t secret;
	uint16_t alg;

	if (!dh->get_shared_secret(dh, &secret))
	{
		return TRUE;
	}
	this->mutex->lock(this->mutex);
	entry = get_ike(this, ike_sa);
	if (ike_sa->get_version(ike_sa) == IKEV1)
	{
		keep_ikev1_inputs(entry, dh, dh_other, shared, method);
	}
	chunk_clear(&entry->secret);
	chunk_free(&entry->nonce_i);
	chunk_free(&entry->nonce_r);
	entry->secret = secret;
	entry->nonce_i = chunk_clone(nonce_i);
	entry->nonce_r = chunk_clone(nonce_r);
	if (rekey)
	{
		old = find_ike(this, rekey);
		proposal = rekey->get_proposal(rekey);
		if (old && old->skd.len && proposal &&
			proposal->get_algorithm(proposal, PSEUDO_RANDOM_FUNCTION, &alg,
									NULL))
		{
			chunk_clear(&entry->old_skd);
			entry->old_skd = chunk_clone(old->skd);
			entry->old_prf = alg;
		}
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(listener_t, ike_derived_keys, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, chunk_t sk_d,
	chunk_t sk_ai, chunk_t sk_ar, chunk_t sk_ei, chunk_t sk_er, chunk_t sk_pi,
	chunk_t sk_pr)
{
	ike_entry_t *entry;

	this->mutex->lock(this->mutex);
	entry = get_ike(this, ike_sa);
	chunk_clear(&entry->skd);
	entry->skd = chunk_clone(sk_d);
	this->mutex->unlock(this->mutex);
	return TRUE;
}

/**
 * Remove our state of an IKE SA and tell the standbys if they knew it
 */
static void ike_gone(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	ike_entry_t *entry;
	sasync_msg_t *msg;

	this->mutex->lock(this->mutex);
	entry = this->ikes->remove(this->ikes,
							   key_of(ike_sa->get_unique_id(ike_sa)));
	if (entry && entry->synced && is_primary(this))
	{
		msg = sasync_msg_create(SASYNC_MSG_IKE_DELETE);
		add_ike_id(msg, ike_sa);
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
		send_msg(this, msg);
	}
	this->mutex->unlock(this->mutex);
	if (entry)
	{
		ike_entry_destroy(entry);
	}
}

METHOD(listener_t, ike_state_change, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, ike_sa_state_t state)
{
	ike_entry_t *entry;

	switch (state)
	{
		case IKE_ESTABLISHED:
			this->mutex->lock(this->mutex);
			entry = find_ike(this, ike_sa);
			if (entry && is_primary(this))
			{
				sync_ike(this, ike_sa, entry);
			}
			this->mutex->unlock(this->mutex);
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
	ike_entry_t *entry;

	this->mutex->lock(this->mutex);
	entry = find_ike(this, ike_sa);
	if (entry && entry->synced && is_primary(this))
	{	/* called before the IKE SA takes the new addresses */
		sync_ike_hosts(this, ike_sa, entry, local, remote);
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(listener_t, ike_rekey, bool,
	private_sasync_capture_t *this, ike_sa_t *old, ike_sa_t *new)
{
	ike_entry_t *entry;
	sasync_msg_t *msg;
	ike_sa_id_t *id;

	this->mutex->lock(this->mutex);
	entry = find_ike(this, new);
	if (entry && is_primary(this))
	{
		if (!entry->synced)
		{
			sync_ike(this, new, entry);
		}
		msg = sasync_msg_create(SASYNC_MSG_IKE_REKEYED);
		add_ike_id(msg, new);
		id = old->get_id(old);
		msg->add_int(msg, SASYNC_ATTR_OLD_SPI_I, id->get_initiator_spi(id));
		msg->add_int(msg, SASYNC_ATTR_OLD_SPI_R, id->get_responder_spi(id));
		send_msg(this, msg);
	}
	this->mutex->unlock(this->mutex);
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
 * Track the next message ID (IKEv2) or DPD sequence number (IKEv1) of one
 * direction and tell the standbys
 */
static void track_mid(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					  bool incoming, uint32_t next)
{
	ike_entry_t *entry;
	sasync_msg_t *msg;

	this->mutex->lock(this->mutex);
	entry = get_ike(this, ike_sa);
	if (incoming)
	{
		entry->mid_r = max(entry->mid_r, next);
	}
	else
	{
		entry->mid_i = max(entry->mid_i, next);
	}
	if (entry->synced && is_primary(this))
	{
		msg = sasync_msg_create(SASYNC_MSG_IKE_MID);
		add_ike_id(msg, ike_sa);
		msg->add_int(msg, incoming ? SASYNC_ATTR_MID_R : SASYNC_ATTR_MID_I,
					 next);
		this->counters->inc(this->counters, SASYNC_CTR_MID_SYNC);
		send_msg(this, msg);
	}
	this->mutex->unlock(this->mutex);
}

/**
 * IKEv1 phase 1 IV: the last block after a phase 1 message was en- or
 * decrypted; phase 2 IVs derive from it
 */
static void track_iv(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	keymat_v1_t *keymat = (keymat_v1_t*)ike_sa->get_keymat(ike_sa);
	ike_entry_t *entry;
	chunk_t iv;

	if (!keymat->get_iv(keymat, 0, &iv))
	{
		return;
	}
	this->mutex->lock(this->mutex);
	entry = get_ike(this, ike_sa);
	if (!chunk_equals(iv, entry->iv))
	{
		chunk_free(&entry->iv);
		entry->iv = chunk_clone(iv);
		if (entry->synced && is_primary(this))
		{
			sync_ike(this, ike_sa, entry);
		}
	}
	this->mutex->unlock(this->mutex);
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

METHOD(listener_t, message_hook, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, message_t *message,
	bool incoming, bool plain)
{
	ike_entry_t *entry;

	if (plain)
	{
		this->mutex->lock(this->mutex);
		entry = find_ike(this, ike_sa);
		if (entry)
		{
			refresh_ike(this, ike_sa, entry);
		}
		this->mutex->unlock(this->mutex);
	}
	if (ike_sa->get_version(ike_sa) == IKEV1)
	{
		message_v1(this, ike_sa, message, incoming, plain);
		return TRUE;
	}
	if (!plain)
	{
		return TRUE;
	}
	negotiate_midsync(ike_sa, message, incoming);
	if (!incoming)
	{
		strip_additional_addresses(message);
	}
	if (message->get_request(message) &&
		message->get_exchange_type(message) != IKE_SA_INIT)
	{
		track_mid(this, ike_sa, incoming, message->get_message_id(message) + 1);
	}
	return TRUE;
}

METHOD(listener_t, assign_vips, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, bool assign)
{
	ike_entry_t *entry;

	/* IKEv1 Mode Config assigns them after phase 1 completed */
	this->mutex->lock(this->mutex);
	entry = find_ike(this, ike_sa);
	if (assign && entry && entry->synced && is_primary(this))
	{
		sync_ike(this, ike_sa, entry);
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(listener_t, child_derived_keys, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	bool initiator, chunk_t encr_i, chunk_t encr_r, chunk_t integ_i,
	chunk_t integ_r)
{
	child_entry_t *entry;

	INIT(entry,
		.initiator = initiator,
		.encr_in = chunk_clone(initiator ? encr_r : encr_i),
		.integ_in = chunk_clone(initiator ? integ_r : integ_i),
		.encr_out = chunk_clone(initiator ? encr_i : encr_r),
		.integ_out = chunk_clone(initiator ? integ_i : integ_r),
	);
	put_child(this, child_sa, entry);
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
static sasync_msg_t *build_child_add(ike_sa_t *ike_sa, child_sa_t *child_sa,
									 child_entry_t *keys)
{
	sasync_msg_t *msg = sasync_msg_create(SASYNC_MSG_CHILD_ADD);

	add_ike_id(msg, ike_sa);
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
	msg->add_int(msg, SASYNC_ATTR_CHILD_INITIATOR, keys->initiator);
	msg->add_chunk(msg, SASYNC_ATTR_ENCR_IN, keys->encr_in);
	msg->add_chunk(msg, SASYNC_ATTR_INTEG_IN, keys->integ_in);
	msg->add_chunk(msg, SASYNC_ATTR_ENCR_OUT, keys->encr_out);
	msg->add_chunk(msg, SASYNC_ATTR_INTEG_OUT, keys->integ_out);
	add_ts_list(msg, child_sa, TRUE);
	add_ts_list(msg, child_sa, FALSE);
	return msg;
}

static void child_installed(private_sasync_capture_t *this, ike_sa_t *ike_sa,
							child_sa_t *child_sa)
{
	child_entry_t *keys;
	ike_entry_t *entry;
	sasync_msg_t *msg;

	keys = find_child(this, child_sa);
	if (!keys || keys->synced)
	{
		return;
	}
	keys->synced = TRUE;
	msg = build_child_add(ike_sa, child_sa, keys);
	entry = get_ike(this, ike_sa);
	refresh_ike(this, ike_sa, entry);
	if (entry->synced)
	{
		this->counters->inc(this->counters, SASYNC_CTR_CONN_SYNC);
		send_msg(this, msg);
	}
	else
	{	/* a CHILD SA never reaches a standby before its IKE SA */
		array_insert(entry->held, ARRAY_TAIL, msg);
	}
}

static void child_gone(private_sasync_capture_t *this, ike_sa_t *ike_sa,
					   child_sa_t *child_sa)
{
	child_entry_t *keys;
	sasync_msg_t *msg;

	keys = this->children->remove(this->children,
								  key_of(child_sa->get_unique_id(child_sa)));
	if (!keys)
	{
		return;
	}
	if (keys->synced && is_primary(this))
	{
		msg = sasync_msg_create(SASYNC_MSG_CHILD_DELETE);
		add_ike_id(msg, ike_sa);
		msg->add_int(msg, SASYNC_ATTR_PROTOCOL,
					 child_sa->get_protocol(child_sa));
		msg->add_int(msg, SASYNC_ATTR_SPI_IN, child_sa->get_spi(child_sa, TRUE));
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
		send_msg(this, msg);
	}
	child_entry_destroy(keys);
}

METHOD(listener_t, child_state_change, bool,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	child_sa_state_t state)
{
	this->mutex->lock(this->mutex);
	switch (state)
	{
		case CHILD_INSTALLED:
			if (is_primary(this))
			{
				child_installed(this, ike_sa, child_sa);
			}
			break;
		case CHILD_DELETING:
		case CHILD_DELETED:
		case CHILD_DESTROYING:
			child_gone(this, ike_sa, child_sa);
			break;
		default:
			break;
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

/**
 * Send an IKE SA and its CHILD SAs again
 */
static u_int resync_ike(private_sasync_capture_t *this, ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	child_entry_t *keys;
	ike_entry_t *entry;
	u_int sent = 0;

	entry = find_ike(this, ike_sa);
	if (!entry || !entry->synced || ike_sa->get_state(ike_sa) != IKE_ESTABLISHED)
	{
		return 0;
	}
	send_msg(this, build_ike_add(ike_sa, entry, NULL, NULL));
	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		keys = find_child(this, child_sa);
		if (keys && keys->synced &&
			child_sa->get_state(child_sa) == CHILD_INSTALLED)
		{
			send_msg(this, build_child_add(ike_sa, child_sa, keys));
		}
	}
	enumerator->destroy(enumerator);
	return ++sent;
}

static job_requeue_t resync_job(private_sasync_capture_t *this)
{
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	u_int count = 0;

	if (!is_primary(this))
	{
		return JOB_REQUEUE_NONE;
	}
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		this->mutex->lock(this->mutex);
		count += resync_ike(this, ike_sa);
		this->mutex->unlock(this->mutex);
	}
	enumerator->destroy(enumerator);
	send_msg(this, sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	this->counters->inc(this->counters, SASYNC_CTR_RESYNC);
	DBG1(DBG_APP, "sasync: bulk resync sent, %u IKE_SAs", count);
	return JOB_REQUEUE_NONE;
}

METHOD(sasync_capture_t, resync, void,
	private_sasync_capture_t *this)
{
	/* not on the caller's thread: that may be the link's sending thread */
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create((callback_job_cb_t)resync_job, this,
										NULL, NULL));
}

static void adopt_chunk(sasync_msg_t *msg, sasync_attr_t attr, chunk_t *dst)
{
	chunk_t value;

	chunk_clear(dst);
	if (msg->get_chunk(msg, attr, &value))
	{
		*dst = chunk_clone(value);
	}
}

METHOD(sasync_capture_t, adopt_ike, void,
	private_sasync_capture_t *this, ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	ike_entry_t *entry;
	uint64_t value;

	this->mutex->lock(this->mutex);
	entry = get_ike(this, ike_sa);
	adopt_chunk(msg, SASYNC_ATTR_SECRET, &entry->secret);
	adopt_chunk(msg, SASYNC_ATTR_NONCE_I, &entry->nonce_i);
	adopt_chunk(msg, SASYNC_ATTR_NONCE_R, &entry->nonce_r);
	adopt_chunk(msg, SASYNC_ATTR_OLD_SKD, &entry->old_skd);
	adopt_chunk(msg, SASYNC_ATTR_LOCAL_KE, &entry->local_ke);
	adopt_chunk(msg, SASYNC_ATTR_REMOTE_KE, &entry->remote_ke);
	adopt_chunk(msg, SASYNC_ATTR_PSK, &entry->psk);
	adopt_chunk(msg, SASYNC_ATTR_IV, &entry->iv);
	entry->old_prf = msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &value) ? value : 0;
	entry->auth = msg->get_int(msg, SASYNC_ATTR_AUTH_METHOD, &value) ? value : 0;
	/* its partners have it already */
	entry->synced = TRUE;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_capture_t, adopt_child, void,
	private_sasync_capture_t *this, child_sa_t *child_sa, sasync_msg_t *msg)
{
	child_entry_t *entry;
	uint64_t initiator = 0;

	msg->get_int(msg, SASYNC_ATTR_CHILD_INITIATOR, &initiator);
	INIT(entry,
		.initiator = initiator,
		.synced = TRUE,
	);
	adopt_chunk(msg, SASYNC_ATTR_ENCR_IN, &entry->encr_in);
	adopt_chunk(msg, SASYNC_ATTR_INTEG_IN, &entry->integ_in);
	adopt_chunk(msg, SASYNC_ATTR_ENCR_OUT, &entry->encr_out);
	adopt_chunk(msg, SASYNC_ATTR_INTEG_OUT, &entry->integ_out);
	put_child(this, child_sa, entry);
}

METHOD(sasync_capture_t, destroy, void,
	private_sasync_capture_t *this)
{
	this->ikes->destroy_function(this->ikes, (void*)ike_entry_destroy);
	this->children->destroy_function(this->children,
									 (void*)child_entry_destroy);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_capture_t *sasync_capture_create(sasync_link_t *link, sasync_role_t *role,
										sasync_counters_t *counters)
{
	private_sasync_capture_t *this;

	INIT(this,
		.public = {
			.listener = {
				.ike_keys = _ike_keys,
				.ike_derived_keys = _ike_derived_keys,
				.ike_state_change = _ike_state_change,
				.ike_update = _ike_update,
				.ike_rekey = _ike_rekey,
				.message = _message_hook,
				.assign_vips = _assign_vips,
				.child_derived_keys = _child_derived_keys,
				.child_state_change = _child_state_change,
			},
			.resync = _resync,
			.adopt_ike = _adopt_ike,
			.adopt_child = _adopt_child,
			.destroy = _destroy,
		},
		.link = link,
		.role = role,
		.counters = counters,
		.ikes = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 32),
		.children = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr,
									 32),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
	);
	return &this->public;
}
