/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_apply.h"
#include "sasync_msg.h"
#include "sasync_kex.h"
#include "sasync_keystore.h"
#include "sasync_promote.h"
#include "sasync_resync.h"
#include "sasync_unique.h"
#include "sasync_validate.h"
#include "sasync_wait.h"
#include "sasync_link.h"

#include <inttypes.h>

#include <daemon.h>
#include <threading/mutex.h>
#include <collections/hashtable.h>
#include <processing/jobs/callback_job.h>
#include <sa/ikev2/keymat_v2.h>
#include <sa/ikev1/keymat_v1.h>

typedef struct private_sasync_apply_t private_sasync_apply_t;

typedef struct retry_t retry_t;

struct private_sasync_apply_t {

	/** public interface */
	sasync_apply_t public;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** outbound guard */
	sasync_outbound_t *outbound;

	/** key inputs of restored SAs, so a promoted node can sync them on */
	sasync_keystore_t *keys;

	/** SAs named by the current full resync */
	sasync_resync_t *resync;

	/** CHILD_ADD records waiting for their IKE SA */
	sasync_wait_t *waiting;

	/** IKE_ADD records waiting for their connection, and the records about
	 * their IKE SAs that came after them, in order */
	sasync_wait_t *waiting_ike;

	/** counts and logs rejected records */
	sasync_validate_t *validate;

	/** keeps charon's %unique counters past restored CHILD SAs */
	sasync_unique_t *unique;

	/** initiator SPI of a replaced IKE SA => replaced_t, from records that
	 * named the SA they replace */
	hashtable_t *replaced;

	/** a retry of waiting_ike is scheduled */
	bool retry_scheduled;

	/** what a scheduled retry finds this object through */
	retry_t *retry;

	/** when this node last became primary (ms, monotonic) */
	uint64_t promoted_at;

	/** serializes applying records */
	mutex_t *mutex;

	/** callback for records not applied, and its data */
	sasync_apply_error_t error_cb;
	void *error_data;

	/**
	 * Callback for the start and end of a bulk resync
	 */
	sasync_apply_resync_t resync_cb;
	void *resync_data;

	/** sender of the record being applied, NULL in retries */
	host_t *peer;

	/** type of the record being applied */
	sasync_msg_type_t type;

	/** since when the record being applied waits, 0 if it is new */
	time_t since;
};

/** how long after its promotion a node applies the records of the old
 * primary that did not hear of it yet (ms) */
#define SASYNC_SWITCHOVER_MS 2000

/** how long a record waits for its connection or its IKE SA (s) */
#define CONFIG_WAIT 60

/** how often waiting records are retried (ms) */
#define CONFIG_RETRY_MS 500

/** records waiting in each list at most: what a partner queues for us
 * (a bulk resync included) */
#define WAIT_MAX SASYNC_QUEUE_MAX

/** replaced IKE SAs remembered at most; all are forgotten beyond that (they
 * matter while records of the old SA may still come: a resync, a restart) */
#define REPLACED_MAX 4096

/**
 * An IKE SA a record said its SA replaces
 */
typedef struct {
	/** SPIs of the replaced SA, the initiator one is the key */
	uint64_t spi_i;
	uint64_t spi_r;
	/** the SA that replaces it */
	ike_sa_id_t *by;
} replaced_t;

static void replaced_destroy(replaced_t *entry)
{
	entry->by->destroy(entry->by);
	free(entry);
}

static u_int replaced_hash(uint64_t *spi_i)
{
	return chunk_hash(chunk_from_thing(*spi_i));
}

static bool replaced_equals(uint64_t *a, uint64_t *b)
{
	return *a == *b;
}

static hashtable_t *replaced_create()
{
	return hashtable_create((hashtable_hash_t)replaced_hash,
							(hashtable_equals_t)replaced_equals, 32);
}

/**
 * Result of creating a passive IKE SA
 */
typedef enum {
	IKE_CREATED_OK,
	IKE_NO_CONFIG,
	IKE_FAILED,
	/** rejected, counted and logged already */
	IKE_REJECTED,
} create_result_t;

/**
 * Count, log and report a record not applied, with this->mutex held
 */
static void apply_failed(private_sasync_apply_t *this)
{
	char reason[64];

	if (this->peer)
	{
		DBG1(DBG_APP, "sasync: %N record from %H not applied",
			 sasync_msg_type_names, this->type, this->peer);
	}
	else
	{
		DBG1(DBG_APP, "sasync: %N record not applied", sasync_msg_type_names,
			 this->type);
	}
	this->counters->inc(this->counters, SASYNC_CTR_APPLY_FAILED);
	if (this->error_cb)
	{
		snprintf(reason, sizeof(reason), "%N record not applied",
				 sasync_msg_type_names, this->type);
		this->error_cb(this->error_data, this->peer, SASYNC_CTR_APPLY_FAILED,
					   reason);
	}
}

/**
 * Count, log (rate-limited per cause) and report a rejected record, with
 * this->mutex held
 */
static void rejected(private_sasync_apply_t *this, sasync_reject_t cause,
					 char *detail)
{
	char reason[256];

	if (this->validate->reject(this->validate, cause, this->type, this->peer,
							   detail) && this->error_cb)
	{
		snprintf(reason, sizeof(reason), "%N record rejected (%N): %s",
				 sasync_msg_type_names, this->type, sasync_reject_names,
				 cause, detail);
		this->error_cb(this->error_data, this->peer,
					   sasync_reject_counter(cause), reason);
	}
}

/**
 * IKE SA id of a record, NULL if it has none
 */
static ike_sa_id_t *get_ike_id(sasync_msg_t *msg, sasync_attr_t attr_i,
							   sasync_attr_t attr_r)
{
	uint64_t spi_i, spi_r, initiator = 0, version = IKEV2;

	if (!msg->get_int(msg, attr_i, &spi_i) ||
		!msg->get_int(msg, attr_r, &spi_r))
	{
		return NULL;
	}
	msg->get_int(msg, SASYNC_ATTR_IKE_INITIATOR, &initiator);
	msg->get_int(msg, SASYNC_ATTR_IKE_VERSION, &version);
	return ike_sa_id_create(version == IKEV1 ? IKEV1_MAJOR_VERSION
											 : IKEV2_MAJOR_VERSION,
							spi_i, spi_r, initiator);
}

/**
 * Whether records may act on an IKE SA: only on one this node holds for
 * the primary, never on one it runs itself (sasync_ike_keys_t.restored)
 */
static bool is_restored(private_sasync_apply_t *this, ike_sa_t *ike_sa)
{
	sasync_ike_keys_t *keys;
	bool restored;

	this->keys->lock(this->keys);
	keys = this->keys->get_ike(this->keys, ike_sa->get_unique_id(ike_sa),
							   FALSE);
	restored = keys && keys->restored;
	this->keys->unlock(this->keys);
	return restored;
}

/**
 * Check out an IKE SA by id for a record. One this node runs itself is
 * checked in again, the record rejected and *own set.
 */
static ike_sa_t *checkout_id(private_sasync_apply_t *this, ike_sa_id_t *id,
							 bool *own)
{
	ike_sa_t *ike_sa;
	char detail[128];

	ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
	if (ike_sa && !is_restored(this, ike_sa))
	{
		snprintf(detail, sizeof(detail), "IKE_SA %s[%u] is one this node runs "
				 "itself, not one sync restored", ike_sa->get_name(ike_sa),
				 ike_sa->get_unique_id(ike_sa));
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		rejected(this, SASYNC_REJECT_OWN_SA, detail);
		*own = TRUE;
		return NULL;
	}
	return ike_sa;
}

/**
 * Check out the IKE SA a record names by the SPIs in the given attributes;
 * NULL if there is none, or (*own set, the record rejected) if it is one
 * this node runs itself
 */
static ike_sa_t *checkout(private_sasync_apply_t *this, sasync_msg_t *msg,
						  sasync_attr_t attr_i, sasync_attr_t attr_r,
						  bool *own)
{
	ike_sa_id_t *id;
	ike_sa_t *ike_sa = NULL;

	*own = FALSE;
	id = get_ike_id(msg, attr_i, attr_r);
	if (id)
	{
		ike_sa = checkout_id(this, id, own);
		id->destroy(id);
	}
	return ike_sa;
}

/**
 * IKEv2 keys: from the key exchange secret, the nonces and, for a rekeyed
 * SA, the old SK_d
 */
static bool derive_ikev2_keys(ike_sa_t *ike_sa, sasync_ike_keys_t *keys,
							  proposal_t *proposal, key_exchange_t *kex)
{
	keymat_v2_t *keymat = (keymat_v2_t*)ike_sa->get_keymat(ike_sa);

	return keymat->derive_ike_keys(keymat, proposal, kex, keys->nonce_i,
							keys->nonce_r, ike_sa->get_id(ike_sa),
							keys->old_skd.len ? keys->old_prf : PRF_UNDEFINED,
							keys->old_skd);
}

/**
 * IKEv1 keys: also from the peer's public value and the pre-shared key
 */
static bool derive_ikev1_keys(ike_sa_t *ike_sa, sasync_ike_keys_t *keys,
							  proposal_t *proposal, key_exchange_t *kex)
{
	keymat_v1_t *keymat = (keymat_v1_t*)ike_sa->get_keymat(ike_sa);
	shared_key_t *psk = NULL;
	bool ok;

	if (keys->psk.len)
	{
		psk = shared_key_create(SHARED_IKE, chunk_clone(keys->psk));
	}
	ok = keymat->derive_ike_keys(keymat, proposal, kex, keys->remote_ke,
								 keys->nonce_i, keys->nonce_r,
								 ike_sa->get_id(ike_sa), keys->auth, psk);
	DESTROY_IF(psk);
	return ok;
}

/**
 * Keep the key inputs of a record in the key store and derive the IKE keys
 * from them, through charon's keymat
 */
static bool derive_ike_keys(private_sasync_apply_t *this, ike_sa_t *ike_sa,
							sasync_msg_t *msg, proposal_t *proposal)
{
	sasync_ike_keys_t *keys;
	key_exchange_t *kex;
	uint16_t method = 0;
	bool ok = FALSE;

	this->keys->lock(this->keys);
	keys = this->keys->get_ike(this->keys, ike_sa->get_unique_id(ike_sa),
							   TRUE);
	/* its sender told the other partners already */
	keys->synced = TRUE;
	keys->restored = TRUE;
	if (sasync_ike_keys_decode(keys, msg))
	{
		proposal->get_algorithm(proposal, KEY_EXCHANGE_METHOD, &method, NULL);
		kex = sasync_kex_create(method, keys->secret, keys->local_ke);
		if (ike_sa->get_version(ike_sa) == IKEV1)
		{
			ok = derive_ikev1_keys(ike_sa, keys, proposal, kex);
		}
		else
		{
			ok = derive_ikev2_keys(ike_sa, keys, proposal, kex);
		}
		kex->destroy(kex);
	}
	this->keys->unlock(this->keys);
	return ok;
}

/**
 * IKEv1: continue the phase 1 IV chain where the active node is
 */
static void set_iv(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	keymat_v1_t *keymat;
	chunk_t iv;

	if (ike_sa->get_version(ike_sa) == IKEV1 &&
		msg->get_chunk(msg, SASYNC_ATTR_IV, &iv))
	{
		keymat = (keymat_v1_t*)ike_sa->get_keymat(ike_sa);
		if (!keymat->update_iv(keymat, 0, iv) || !keymat->confirm_iv(keymat, 0))
		{
			DBG1(DBG_APP, "sasync: setting the phase 1 IV of %s[%u] failed",
				 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
		}
	}
}

static void set_bits(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	uint64_t ext = 0, cond = 0;
	int i;

	msg->get_int(msg, SASYNC_ATTR_EXTENSIONS, &ext);
	msg->get_int(msg, SASYNC_ATTR_CONDITIONS, &cond);
	for (i = 0; i < 32; i++)
	{
		if (ext & (1U << i))
		{
			ike_sa->enable_extension(ike_sa, 1U << i);
		}
		ike_sa->set_condition(ike_sa, 1U << i, (cond & (1U << i)) != 0);
	}
}

/**
 * Update what may change during the life of an IKE SA
 */
/**
 * Follow address and port changes (NAT mappings, MOBIKE): charon moves the
 * CHILD SAs along with the IKE SA
 */
static void update_hosts(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	host_t *me, *other;

	me = msg->get_host(msg, SASYNC_ATTR_LOCAL_HOST);
	other = msg->get_host(msg, SASYNC_ATTR_REMOTE_HOST);
	if (me && other && (!me->equals(me, ike_sa->get_my_host(ike_sa)) ||
						!other->equals(other, ike_sa->get_other_host(ike_sa))))
	{
		DBG1(DBG_APP, "sasync: %s[%u] moves to %#H - %#H",
			 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa), me,
			 other);
		ike_sa->update_hosts(ike_sa, me, other,
						UPDATE_HOSTS_FORCE_LOCAL | UPDATE_HOSTS_FORCE_REMOTE);
	}
	DESTROY_IF(me);
	DESTROY_IF(other);
}

static void acquire_leases(ike_sa_t *ike_sa, linked_list_t *known);
static void set_eap_id(ike_sa_t *ike_sa, sasync_msg_t *msg);

/**
 * Take an identity from a record if it differs
 */
static void update_id(ike_sa_t *ike_sa, sasync_msg_t *msg, bool local)
{
	identification_t *id, *current;

	id = msg->get_id(msg, local ? SASYNC_ATTR_LOCAL_ID : SASYNC_ATTR_REMOTE_ID);
	if (!id)
	{
		return;
	}
	current = local ? ike_sa->get_my_id(ike_sa) : ike_sa->get_other_id(ike_sa);
	if (current && id->equals(id, current))
	{
		id->destroy(id);
	}
	else if (local)
	{
		ike_sa->set_my_id(ike_sa, id);
	}
	else
	{
		ike_sa->set_other_id(ike_sa, id);
	}
}

/**
 * Update everything a record of an IKE SA carries that may change during its
 * life: each record is complete, so a standby that missed one catches up
 */
/**
 * Take the message IDs of a record. An SA this node runs (a primary
 * applying what a demoted node handed over) has exchanges of its own: it
 * only takes a later ID the peer used in the exchange the demoted node
 * answered, never one of its own requests
 */
static void set_mids(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	bool active = ike_sa->get_state(ike_sa) != IKE_PASSIVE;
	uint64_t mid;

	if (!active && msg->get_int(msg, SASYNC_ATTR_MID_I, &mid))
	{
		ike_sa->set_message_id(ike_sa, TRUE, mid);
	}
	if (msg->get_int(msg, SASYNC_ATTR_MID_R, &mid) &&
		(!active || mid > ike_sa->get_message_id(ike_sa, FALSE)))
	{
		ike_sa->set_message_id(ike_sa, FALSE, mid);
	}
}

static void update_ike(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	enumerator_t *enumerator;
	linked_list_t *known;
	host_t *host;

	update_hosts(ike_sa, msg);
	update_id(ike_sa, msg, TRUE);
	update_id(ike_sa, msg, FALSE);
	set_eap_id(ike_sa, msg);
	set_bits(ike_sa, msg);
	set_iv(ike_sa, msg);
	set_mids(ike_sa, msg);
	/* remote virtual IPs only: local ones would be installed on an interface */
	known = linked_list_create();
	enumerator = ike_sa->create_virtual_ip_enumerator(ike_sa, FALSE);
	while (enumerator->enumerate(enumerator, &host))
	{
		known->insert_last(known, host->clone(host));
	}
	enumerator->destroy(enumerator);
	ike_sa->clear_virtual_ips(ike_sa, FALSE);
	enumerator = msg->create_host_enumerator(msg, SASYNC_ATTR_REMOTE_VIP);
	while (enumerator->enumerate(enumerator, &host))
	{
		ike_sa->add_virtual_ip(ike_sa, FALSE, host);
	}
	enumerator->destroy(enumerator);
	acquire_leases(ike_sa, known);
	known->destroy_offset(known, offsetof(host_t, destroy));
}

static void set_initial_hosts(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	host_t *host;

	host = msg->get_host(msg, SASYNC_ATTR_LOCAL_HOST);
	if (host)
	{
		ike_sa->set_my_host(ike_sa, host);
	}
	host = msg->get_host(msg, SASYNC_ATTR_REMOTE_HOST);
	if (host)
	{
		ike_sa->set_other_host(ike_sa, host);
	}
}

/**
 * The identity charon keys virtual IP leases on comes from the peer's
 * authentication (EAP/XAuth), which a passive SA never ran
 */
static void set_eap_id(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	identification_t *id;
	auth_cfg_t *auth;

	id = msg->get_id(msg, SASYNC_ATTR_REMOTE_EAP_ID);
	if (!id || id->equals(id, ike_sa->get_other_eap_id(ike_sa)))
	{	/* charon takes the last round's, don't pile up rounds */
		DESTROY_IF(id);
		return;
	}
	auth = auth_cfg_create();
	auth->add(auth, AUTH_RULE_EAP_IDENTITY, id);
	ike_sa->add_auth_cfg(ike_sa, FALSE, auth);
}

/**
 * Mark the peer's virtual IPs that are new since the last record as in use
 * in the connection's pools, so that after promotion the same client keeps
 * them and no other gets them (IKEv1 Mode Config assigns them after the
 * ISAKMP SA was first synced)
 */
static void acquire_leases(ike_sa_t *ike_sa, linked_list_t *known)
{
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);
	enumerator_t *enumerator;
	linked_list_t *pools;
	host_t *vip, *lease;

	pools = linked_list_create_from_enumerator(
								peer_cfg->create_pool_enumerator(peer_cfg));
	enumerator = ike_sa->create_virtual_ip_enumerator(ike_sa, FALSE);
	while (pools->get_count(pools) && enumerator->enumerate(enumerator, &vip))
	{
		if (known->find_first(known, (void*)vip->ip_equals, NULL, vip))
		{
			continue;
		}
		lease = charon->attributes->acquire_address(charon->attributes, pools,
													ike_sa, vip);
		if (!lease || !lease->ip_equals(lease, vip))
		{
			DBG1(DBG_APP, "sasync: virtual IP %H of '%Y' not available in the "
				 "pools here (got %H)", vip, ike_sa->get_other_eap_id(ike_sa),
				 lease);
		}
		else
		{
			DBG1(DBG_APP, "sasync: virtual IP lease %H of '%Y' restored", vip,
				 ike_sa->get_other_eap_id(ike_sa));
		}
		DESTROY_IF(lease);
	}
	enumerator->destroy(enumerator);
	pools->destroy(pools);
}

/**
 * Check out the IKE SA a record says its SA replaces, see checkout()
 */
static ike_sa_t *checkout_old(private_sasync_apply_t *this, sasync_msg_t *msg,
							  bool *own)
{
	ike_sa_id_t *id;
	ike_sa_t *old = NULL;

	*own = FALSE;
	id = get_ike_id(msg, SASYNC_ATTR_OLD_SPI_I, SASYNC_ATTR_OLD_SPI_R);
	if (id)
	{	/* the record has the new SA's role, which an IKE rekey can flip */
		old = checkout_id(this, id, own);
		if (!old && !*own)
		{
			id->switch_initiator(id);
			old = checkout_id(this, id, own);
		}
		id->destroy(id);
	}
	return old;
}

/**
 * Whether a record names an SA this node runs itself as the one its SA
 * replaces (then it is rejected whole, before anything is applied); call
 * without the record's own SA checked out
 */
static bool replaces_own(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_t *old;
	bool own;

	old = checkout_old(this, msg, &own);
	if (old)
	{
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, old);
	}
	return own;
}

/**
 * The CHILD SAs an IKE SA took over from the one it replaces count as named
 * in a running resync: the primary's resync job skips an SA a rekey
 * replaced meanwhile, and the new one came after its start, so only the
 * rekey's IKE_ADD names it, and no record names the CHILD SAs it moved
 */
static void resync_inherited(private_sasync_apply_t *this, ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;

	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		this->resync->seen_child(this->resync,
								 child_sa->get_spi(child_sa, TRUE));
	}
	enumerator->destroy(enumerator);
}

/**
 * An IKE SA that replaces another (IKEv2 rekey, IKEv1 reauthentication)
 * takes over its CHILD SAs, virtual IPs (and so their leases), identities
 * and conditions as charon does, through inherit_post(); the old one goes
 * at once, its delete from the active node finds nothing to do
 */
static void take_over(private_sasync_apply_t *this, ike_sa_t *ike_sa,
					  sasync_msg_t *msg)
{
	ike_sa_t *old;
	bool own;

	old = checkout_old(this, msg, &own);
	if (!old)
	{
		return;
	}
	if (old == ike_sa)
	{
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, old);
		return;
	}
	DBG1(DBG_APP, "sasync: %s[%u] replaces %s[%u], taking over %d CHILD_SAs",
		 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa),
		 old->get_name(old), old->get_unique_id(old),
		 old->get_child_count(old));
	ike_sa->inherit_pre(ike_sa, old);
	ike_sa->inherit_post(ike_sa, old);
	sasync_keystore_sync_destroy(old);
	resync_inherited(this, ike_sa);
}

/**
 * Whether an IKE SA may take the addresses of a record. Those of a new SA
 * must fit its IKE config, as when charon picks one for an IKE_SA_INIT. An
 * SA moves as charon lets it: freely with MOBIKE or behind a NAT (charon
 * follows the peer there without asking its config), else within its
 * config as well.
 */
static bool hosts_allowed(private_sasync_apply_t *this, ike_sa_t *ike_sa,
						  sasync_msg_t *msg, bool created)
{
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);
	uint64_t ext = 0, cond = 0;
	host_t *me, *other;
	char detail[192];
	bool ok;

	me = msg->get_host(msg, SASYNC_ATTR_LOCAL_HOST);
	other = msg->get_host(msg, SASYNC_ATTR_REMOTE_HOST);
	msg->get_int(msg, SASYNC_ATTR_EXTENSIONS, &ext);
	msg->get_int(msg, SASYNC_ATTR_CONDITIONS, &cond);
	if (!created && (!me || !other ||
		(me->equals(me, ike_sa->get_my_host(ike_sa)) &&
		 other->equals(other, ike_sa->get_other_host(ike_sa)))))
	{	/* nothing moves */
		ok = TRUE;
	}
	else if (!created && ((ext & EXT_MOBIKE) || (cond & COND_NAT_ANY) ||
						  ike_sa->supports_extension(ike_sa, EXT_MOBIKE) ||
						  ike_sa->has_condition(ike_sa, COND_NAT_ANY)))
	{
		ok = TRUE;
	}
	else
	{
		ok = peer_cfg && sasync_validate_hosts(peer_cfg->get_ike_cfg(peer_cfg),
											   me, other);
	}
	if (!ok)
	{
		snprintf(detail, sizeof(detail), "addresses %H - %H not allowed by "
				 "the IKE config of '%s'", me, other,
				 peer_cfg ? peer_cfg->get_name(peer_cfg) : "");
		rejected(this, SASYNC_REJECT_HOSTS, detail);
	}
	DESTROY_IF(me);
	DESTROY_IF(other);
	return ok;
}

/**
 * Whether the IKEv1 phase 1 IV of a record fits the SA's keys
 */
static bool iv_allowed(private_sasync_apply_t *this, ike_sa_t *ike_sa,
					   sasync_msg_t *msg)
{
	char detail[128];
	chunk_t iv = chunk_empty;

	if (sasync_validate_iv(ike_sa, msg))
	{
		return TRUE;
	}
	msg->get_chunk(msg, SASYNC_ATTR_IV, &iv);
	snprintf(detail, sizeof(detail), "phase 1 IV of %zu bytes is not one "
			 "block of the IKE encryption algorithm of '%s'", iv.len,
			 ike_sa->get_name(ike_sa));
	rejected(this, SASYNC_REJECT_KEYS, detail);
	return FALSE;
}

/**
 * Restored IKE SAs stay passive on a standby; on a node promoted while the
 * record waited, they are active at once
 */
static void set_restored_state(private_sasync_apply_t *this, ike_sa_t *ike_sa)
{
	if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
	{
		sasync_promote_activate(ike_sa, this->counters, this->keys, TRUE);
	}
}

/**
 * Build a passive IKE SA from an IKE_ADD record, checked in on success
 */
static create_result_t create_ike(private_sasync_apply_t *this,
								  sasync_msg_t *msg, ike_sa_id_t *id)
{
	proposal_t *proposal;
	peer_cfg_t *peer_cfg;
	ike_sa_t *ike_sa;
	char *name;

	name = msg->get_string(msg, SASYNC_ATTR_NAME);
	peer_cfg = name ? charon->backends->get_peer_cfg_by_name(charon->backends,
															 name) : NULL;
	if (!peer_cfg)
	{
		free(name);
		return IKE_NO_CONFIG;
	}
	proposal = msg->get_proposal(msg, SASYNC_ATTR_PROPOSAL);
	if (!proposal)
	{
		DBG1(DBG_APP, "sasync: IKE_SA record for '%s' without proposal, not "
			 "applied", name);
		peer_cfg->destroy(peer_cfg);
		free(name);
		return IKE_FAILED;
	}
	ike_sa = ike_sa_create(id, id->is_initiator(id),
						   id->get_ike_version(id) == IKEV1_MAJOR_VERSION ?
						   IKEV1 : IKEV2);
	charon->bus->set_sa(charon->bus, ike_sa);
	ike_sa->set_peer_cfg(ike_sa, peer_cfg);
	peer_cfg->destroy(peer_cfg);
	ike_sa->set_proposal(ike_sa, proposal);
	if (!derive_ike_keys(this, ike_sa, msg, proposal))
	{
		DBG1(DBG_APP, "sasync: deriving keys of IKE_SA '%s' failed, not "
			 "applied", name);
		proposal->destroy(proposal);
		ike_sa->destroy(ike_sa);
		charon->bus->set_sa(charon->bus, NULL);
		free(name);
		return IKE_FAILED;
	}
	proposal->destroy(proposal);
	if (!hosts_allowed(this, ike_sa, msg, TRUE) ||
		!iv_allowed(this, ike_sa, msg))
	{
		ike_sa->destroy(ike_sa);
		charon->bus->set_sa(charon->bus, NULL);
		free(name);
		return IKE_REJECTED;
	}
	/* registered before inherit_post(), so no job it schedules is lost;
	 * passive already, so it starts none (NAT keepalives) */
	charon->ike_sa_manager->checkout_new(charon->ike_sa_manager, ike_sa);
	ike_sa->set_state(ike_sa, IKE_PASSIVE);
	take_over(this, ike_sa, msg);
	set_initial_hosts(ike_sa, msg);
	update_ike(ike_sa, msg);
	set_restored_state(this, ike_sa);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	DBG1(DBG_APP, "sasync: restored %s IKE_SA '%s' %.16"PRIx64"_i "
		 "%.16"PRIx64"_r", this->role->get(this->role) == SASYNC_ROLE_PRIMARY ?
		 "active" : "passive", name, be64toh(id->get_initiator_spi(id)),
		 be64toh(id->get_responder_spi(id)));
	free(name);
	return IKE_CREATED_OK;
}

/**
 * Keep the key inputs of a record of a known IKE SA current (IKEv1 IV,
 * message IDs), for when this node syncs it on
 */
static void store_keys(private_sasync_apply_t *this, ike_sa_t *ike_sa,
					   sasync_msg_t *msg)
{
	sasync_ike_keys_t *keys;
	uint64_t mid;

	this->keys->lock(this->keys);
	keys = this->keys->get_ike(this->keys, ike_sa->get_unique_id(ike_sa),
							   TRUE);
	keys->synced = TRUE;
	if (msg->get_type(msg) == SASYNC_MSG_IKE_ADD)
	{
		sasync_ike_keys_decode(keys, msg);
	}
	if (msg->get_int(msg, SASYNC_ATTR_MID_I, &mid))
	{
		keys->mid_i = max(keys->mid_i, mid);
	}
	if (msg->get_int(msg, SASYNC_ATTR_MID_R, &mid))
	{
		keys->mid_r = max(keys->mid_r, mid);
	}
	this->keys->unlock(this->keys);
}

static void apply_child_add(private_sasync_apply_t *this, sasync_msg_t *msg);

/**
 * Apply CHILD SAs that waited for this IKE SA
 */
static void release_waiting(private_sasync_apply_t *this)
{
	sasync_wait_t *waiting = this->waiting;
	sasync_msg_t *msg;
	sasync_msg_type_t type = this->type;

	this->waiting = sasync_wait_create(WAIT_MAX);
	this->type = SASYNC_MSG_CHILD_ADD;
	while (waiting->remove_first(waiting, &msg, &this->since))
	{
		apply_child_add(this, msg);
		msg->destroy(msg);
	}
	this->since = 0;
	this->type = type;
	waiting->destroy(waiting);
}

static void schedule_retry(private_sasync_apply_t *this);

/**
 * Keep a record until what it needs is there: its connection (after a
 * restart, records may arrive before swanctl loaded the configuration) or
 * its IKE SA. Bounded: after CONFIG_WAIT it is dropped, logged and counted.
 */
static void wait_for(private_sasync_apply_t *this, sasync_wait_t *list,
					 sasync_msg_t *msg, char *what)
{
	char *name, detail[128];

	name = msg->get_string(msg, msg->get_type(msg) == SASYNC_MSG_CHILD_ADD ?
							SASYNC_ATTR_CHILD_NAME : SASYNC_ATTR_NAME);
	if (this->since && time_monotonic(NULL) - this->since > CONFIG_WAIT)
	{
		DBG1(DBG_APP, "sasync: %N record for '%s' waited %ds for %s, not "
			 "applied", sasync_msg_type_names, msg->get_type(msg), name ?: "",
			 CONFIG_WAIT, what);
		free(name);
		this->counters->inc(this->counters, SASYNC_CTR_WAIT_EXPIRED);
		apply_failed(this);
		return;
	}
	switch (list->add(list, msg, this->since ?: time_monotonic(NULL)))
	{
		case SASYNC_WAIT_ADDED:
			if (!this->since)
			{
				DBG1(DBG_APP, "sasync: %N record for '%s' waits up to %ds "
					 "for %s", sasync_msg_type_names, msg->get_type(msg),
					 name ?: "", CONFIG_WAIT, what);
			}
			schedule_retry(this);
			break;
		case SASYNC_WAIT_FULL:
			snprintf(detail, sizeof(detail), "%u records wait for %s "
					 "already, not one more ('%s')", WAIT_MAX, what,
					 name ?: "");
			rejected(this, SASYNC_REJECT_WAIT_FULL, detail);
			break;
		case SASYNC_WAIT_REPLACED:
			DBG2(DBG_APP, "sasync: %N record for '%s' replaces the same one "
				 "waiting", sasync_msg_type_names, msg->get_type(msg),
				 name ?: "");
			schedule_retry(this);
			break;
	}
	free(name);
}

/**
 * Remember the SA a record of the IKE SA with the given id says it replaces
 */
static void note_replaced(private_sasync_apply_t *this, sasync_msg_t *msg,
						  ike_sa_id_t *id)
{
	replaced_t *entry;

	INIT(entry,
		.by = id->clone(id),
	);
	if (!msg->get_int(msg, SASYNC_ATTR_OLD_SPI_I, &entry->spi_i) ||
		!msg->get_int(msg, SASYNC_ATTR_OLD_SPI_R, &entry->spi_r))
	{
		replaced_destroy(entry);
		return;
	}
	if (this->replaced->get_count(this->replaced) >= REPLACED_MAX)
	{
		this->replaced->destroy_function(this->replaced,
										 (void*)replaced_destroy);
		this->replaced = replaced_create();
	}
	entry = this->replaced->put(this->replaced, &entry->spi_i, entry);
	if (entry)
	{
		replaced_destroy(entry);
	}
}

/**
 * The id of the SA that replaced the IKE SA a record names, NULL if none did
 */
static ike_sa_id_t *replaced_by(private_sasync_apply_t *this,
								sasync_msg_t *msg)
{
	replaced_t *entry;
	uint64_t spi_i, spi_r;

	if (!msg->get_int(msg, SASYNC_ATTR_IKE_SPI_I, &spi_i) ||
		!msg->get_int(msg, SASYNC_ATTR_IKE_SPI_R, &spi_r))
	{
		return NULL;
	}
	entry = this->replaced->get(this->replaced, &spi_i);
	return entry && entry->spi_r == spi_r ? entry->by : NULL;
}

/**
 * Whether the IKE_ADD of the SA a record says its SA replaces waits for its
 * connection (a node that starts gets a rekey behind the resync that has
 * the old SA)
 */
static bool replaced_waits(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	sasync_msg_t *old;
	uint64_t spi_i, spi_r;
	bool waits;

	if (!msg->get_int(msg, SASYNC_ATTR_OLD_SPI_I, &spi_i) ||
		!msg->get_int(msg, SASYNC_ATTR_OLD_SPI_R, &spi_r))
	{
		return FALSE;
	}
	old = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	old->add_int(old, SASYNC_ATTR_IKE_SPI_I, spi_i);
	old->add_int(old, SASYNC_ATTR_IKE_SPI_R, spi_r);
	waits = this->waiting_ike->has(this->waiting_ike, SASYNC_MSG_IKE_ADD, old);
	old->destroy(old);
	return waits;
}

static void apply_ike_add(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_id_t *id;
	ike_sa_t *ike_sa;
	uint64_t version = 0;
	bool own = FALSE;

	msg->get_int(msg, SASYNC_ATTR_IKE_VERSION, &version);
	id = get_ike_id(msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	if (!id || (version != IKEV1 && version != IKEV2))
	{
		DBG1(DBG_APP, "sasync: IKE_SA record without version or SPIs, "
			 "ignored");
		DESTROY_IF(id);
		apply_failed(this);
		return;
	}
	if (replaces_own(this, msg))
	{
		id->destroy(id);
		return;
	}
	if (replaced_by(this, msg))
	{	/* a resync or a record that waited sent it before its rekey: the
		 * SA that replaced it has its CHILD SAs, those waiting for it too */
		DBG1(DBG_APP, "sasync: IKE_ADD of an IKE_SA already replaced, not "
			 "applied");
		id->destroy(id);
		release_waiting(this);
		return;
	}
	if (replaced_waits(this, msg))
	{	/* applied first, it would find nothing to take over, and the old
		 * SA, restored after it, would keep the CHILD SAs and stay */
		wait_for(this, this->waiting_ike, msg, "the IKE_SA it replaces");
		id->destroy(id);
		return;
	}
	ike_sa = checkout_id(this, id, &own);
	if (ike_sa)
	{
		if (hosts_allowed(this, ike_sa, msg, FALSE) &&
			iv_allowed(this, ike_sa, msg))
		{
			note_replaced(this, msg, id);
			take_over(this, ike_sa, msg);
			update_ike(ike_sa, msg);
			store_keys(this, ike_sa, msg);
		}
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	}
	if (ike_sa || own)
	{
		id->destroy(id);
		return;
	}
	switch (create_ike(this, msg, id))
	{
		case IKE_CREATED_OK:
			this->counters->inc(this->counters, SASYNC_CTR_VIKE_SYNC);
			note_replaced(this, msg, id);
			release_waiting(this);
			break;
		case IKE_NO_CONFIG:
			wait_for(this, this->waiting_ike, msg, "its connection");
			break;
		case IKE_FAILED:
			apply_failed(this);
			break;
		case IKE_REJECTED:
			break;
	}
	id->destroy(id);
}

static void apply_record(private_sasync_apply_t *this, sasync_msg_t *msg);

/**
 * What a retry job holds instead of the apply object itself: a job queued or
 * running when the object goes (the plugin unloaded, a unit test's
 * teardown) finds it gone instead of freed memory
 */
struct retry_t {

	/** the object, NULL once destroyed; the mutex guards it and is held
	 * while a retry runs, so destroy() waits for a running one */
	private_sasync_apply_t *apply;

	/** guards apply */
	mutex_t *mutex;

	/** the apply object and each job hold a reference */
	refcount_t ref;
};

static void retry_unref(retry_t *retry)
{
	if (ref_put(&retry->ref))
	{
		retry->mutex->destroy(retry->mutex);
		free(retry);
	}
}

/**
 * Retry waiting records; CHILD SA records only to expire them, an IKE SA
 * record that is applied releases them
 */
static void retry_waiting(private_sasync_apply_t *this)
{
	sasync_wait_t *list;
	sasync_msg_t *msg;

	this->mutex->lock(this->mutex);
	this->retry_scheduled = FALSE;
	list = this->waiting_ike;
	this->waiting_ike = sasync_wait_create(WAIT_MAX);
	while (list->remove_first(list, &msg, &this->since))
	{
		this->type = msg->get_type(msg);
		apply_record(this, msg);
		msg->destroy(msg);
	}
	list->destroy(list);
	release_waiting(this);
	this->type = SASYNC_MSG_IKE_ADD;
	this->mutex->unlock(this->mutex);
}

static job_requeue_t retry_job(retry_t *retry)
{
	retry->mutex->lock(retry->mutex);
	if (retry->apply)
	{
		retry_waiting(retry->apply);
	}
	retry->mutex->unlock(retry->mutex);
	return JOB_REQUEUE_NONE;
}

static void schedule_retry(private_sasync_apply_t *this)
{
	if (!this->retry_scheduled)
	{
		this->retry_scheduled = TRUE;
		ref_get(&this->retry->ref);
		lib->scheduler->schedule_job_ms(lib->scheduler,
			(job_t*)callback_job_create((callback_job_cb_t)retry_job,
							this->retry, (void*)retry_unref, NULL),
			CONFIG_RETRY_MS);
	}
}

/**
 * Apply a delete of an SA that is not here: fine if it waited (then it goes
 * now) or if it was taken over by the SA that replaced it already
 */
static void delete_unknown(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	u_int count;

	count = this->waiting->drop(this->waiting, msg);
	if (msg->get_type(msg) == SASYNC_MSG_IKE_DELETE)
	{
		count += this->waiting_ike->drop(this->waiting_ike, msg);
	}
	if (count)
	{
		DBG1(DBG_APP, "sasync: %N dropped %u waiting records",
			 sasync_msg_type_names, msg->get_type(msg), count);
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
	}
	else if (msg->get_type(msg) == SASYNC_MSG_IKE_DELETE)
	{
		DBG2(DBG_APP, "sasync: IKE_SA to delete is gone already (replaced)");
	}
	else
	{
		apply_failed(this);
	}
}

/**
 * Check out the IKE SA a record names by its IKE SPIs. A record for an SA
 * that is not there failed (or, deleting it, is done: see delete_unknown());
 * one for an SA of this node's own was refused and counted by checkout()
 */
static ike_sa_t *checkout_named(private_sasync_apply_t *this,
								sasync_msg_t *msg, bool deleting)
{
	ike_sa_t *ike_sa;
	bool own;

	ike_sa = checkout(this, msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R,
					  &own);
	if (!ike_sa && !own)
	{
		if (deleting)
		{
			delete_unknown(this, msg);
		}
		else
		{
			apply_failed(this);
		}
	}
	return ike_sa;
}

static void apply_ike_mid(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_t *ike_sa;

	if (replaced_by(this, msg))
	{	/* the last message IDs of a rekeyed SA (its delete), sent after
		 * the SA that replaced it took over here: nothing left to update */
		DBG2(DBG_APP, "sasync: IKE_MID of an IKE_SA already replaced");
		return;
	}

	ike_sa = checkout_named(this, msg, FALSE);
	if (!ike_sa)
	{
		return;
	}
	set_mids(ike_sa, msg);
	store_keys(this, ike_sa, msg);
	this->counters->inc(this->counters, SASYNC_CTR_MID_SYNC);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
}

/**
 * Senders before the IKE_ADD of a rekeyed SA named the SA it replaces sent
 * this record after it
 */
static void apply_ike_rekeyed(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_t *ike_sa;

	if (replaces_own(this, msg))
	{
		return;
	}
	ike_sa = checkout_named(this, msg, FALSE);
	if (!ike_sa)
	{
		return;
	}
	take_over(this, ike_sa, msg);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
}

/**
 * Whether an exchange of the SA waits for its answer
 */
static bool exchange_active(ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	task_t *task;
	bool active;

	enumerator = ike_sa->create_task_enumerator(ike_sa, TASK_QUEUE_ACTIVE);
	active = enumerator->enumerate(enumerator, &task);
	enumerator->destroy(enumerator);
	return active;
}

static void apply_ike_delete(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_t *ike_sa;

	ike_sa = checkout_named(this, msg, TRUE);
	if (!ike_sa)
	{
		return;
	}
	this->waiting->drop(this->waiting, msg);
	this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
	if (ike_sa->get_state(ike_sa) != IKE_PASSIVE)
	{	/* handed over: the node before started the delete and lost the
		 * role; whether its DELETE reached the peer (a response goes to
		 * us now, and our message ID sync made it outdated), we send ours,
		 * so both sides drop the SA */
		DBG1(DBG_APP, "sasync: deleting IKE_SA %s[%u] at the peer: the node "
			 "before started deleting it", ike_sa->get_name(ike_sa),
			 ike_sa->get_unique_id(ike_sa));
		this->counters->inc(this->counters, SASYNC_CTR_HANDOVER_DELETED);
		if (exchange_active(ike_sa))
		{	/* a forced delete would be destroyed before it goes out: it
			 * waits for the exchange, the SA goes with its answer */
			ike_sa->delete(ike_sa, FALSE);
			charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
			return;
		}
		ike_sa->delete(ike_sa, TRUE);
	}
	else
	{
		DBG1(DBG_APP, "sasync: deleting synced IKE_SA %s[%u]",
			 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
	}
	sasync_keystore_sync_destroy(ike_sa);
}

static child_cfg_t *find_child_cfg(ike_sa_t *ike_sa, char *name)
{
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);
	enumerator_t *enumerator;
	child_cfg_t *cfg, *found = NULL;

	if (!peer_cfg || !name)
	{
		return NULL;
	}
	enumerator = peer_cfg->create_child_cfg_enumerator(peer_cfg);
	while (enumerator->enumerate(enumerator, &cfg))
	{
		if (streq(cfg->get_name(cfg), name))
		{
			found = cfg->get_ref(cfg);
			break;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

static linked_list_t *ts_list(sasync_msg_t *msg, sasync_attr_t attr)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;
	linked_list_t *list = linked_list_create();

	enumerator = msg->create_ts_enumerator(msg, attr);
	while (enumerator->enumerate(enumerator, &ts))
	{
		list->insert_last(list, ts->clone(ts));
	}
	enumerator->destroy(enumerator);
	return list;
}

/**
 * charon's CHILD SA installs its outbound policies only once it installed
 * an outbound SA: install one with the real SPI but random keys of the
 * right lengths, and remove it again at once. The real outbound keys never
 * reach the kernel of a standby, so not even for that instant could a
 * packet go out with them (kernel-libipsec finds outbound SAs by reqid).
 */
static status_t install_outbound_placeholder(child_sa_t *child_sa,
									size_t encr_len, size_t integ_len,
									uint32_t spi, uint16_t cpi, bool initiator)
{
	chunk_t encr = chunk_alloca(encr_len), integ = chunk_alloca(integ_len);
	status_t status = FAILED;
	rng_t *rng;

	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	if (rng && rng->get_bytes(rng, encr.len, encr.ptr) &&
		rng->get_bytes(rng, integ.len, integ.ptr))
	{
		status = child_sa->install(child_sa, encr, integ, spi, cpi, initiator,
								   FALSE, FALSE);
	}
	DESTROY_IF(rng);
	return status;
}

/**
 * Install the restored CHILD SA: inbound SA and policies, but no usable
 * outbound SA (see install_outbound_placeholder() and sasync_outbound_t)
 */
static bool install_child(private_sasync_apply_t *this, ike_sa_t *ike_sa,
						  child_sa_t *child_sa, sasync_msg_t *msg,
						  linked_list_t *my_ts, linked_list_t *other_ts)
{
	chunk_t encr_in = chunk_empty, integ_in = chunk_empty;
	chunk_t encr_out = chunk_empty, integ_out = chunk_empty;
	uint64_t spi_in = 0, spi_out = 0, cpi_in = 0, cpi_out = 0, initiator = 0;
	status_t status;

	msg->get_chunk(msg, SASYNC_ATTR_ENCR_IN, &encr_in);
	msg->get_chunk(msg, SASYNC_ATTR_INTEG_IN, &integ_in);
	msg->get_chunk(msg, SASYNC_ATTR_ENCR_OUT, &encr_out);
	msg->get_chunk(msg, SASYNC_ATTR_INTEG_OUT, &integ_out);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi_in);
	msg->get_int(msg, SASYNC_ATTR_SPI_OUT, &spi_out);
	msg->get_int(msg, SASYNC_ATTR_CPI_IN, &cpi_in);
	msg->get_int(msg, SASYNC_ATTR_CPI_OUT, &cpi_out);
	msg->get_int(msg, SASYNC_ATTR_CHILD_INITIATOR, &initiator);

	child_sa->set_policies(child_sa, my_ts, other_ts);

	child_sa->set_state(child_sa, CHILD_INSTALLING);
	status = child_sa->install(child_sa, encr_in, integ_in, spi_in, cpi_in,
							   initiator, TRUE, FALSE);
	if (status == SUCCESS)
	{
		status = install_outbound_placeholder(child_sa, encr_out.len,
									integ_out.len, spi_out, cpi_out, initiator);
	}
	if (status == SUCCESS)
	{
		kernel_ipsec_sa_id_t id = {
			.src = ike_sa->get_my_host(ike_sa),
			.dst = ike_sa->get_other_host(ike_sa),
			.spi = spi_out,
			.proto = child_sa->get_protocol(child_sa) == PROTO_AH ?
												IPPROTO_AH : IPPROTO_ESP,
			.mark = child_sa->get_mark(child_sa, FALSE),
			.if_id = child_sa->get_if_id(child_sa, FALSE),
		};
		kernel_ipsec_del_sa_t sa = { .cpi = cpi_out };

		charon->kernel->del_sa(charon->kernel, &id, &sa);
		status = child_sa->install_policies(child_sa);
	}
	if (status != SUCCESS ||
		!this->outbound->restore(this->outbound, ike_sa, child_sa,
								 encr_out.len, integ_out.len))
	{
		return FALSE;
	}
	child_sa->set_state(child_sa, CHILD_INSTALLED);
	return TRUE;
}

static bool unique_if_ids(ike_sa_t *ike_sa, child_cfg_t *cfg)
{
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);

	return IF_ID_IS_UNIQUE(cfg->get_if_id(cfg, TRUE)) ||
		   IF_ID_IS_UNIQUE(cfg->get_if_id(cfg, FALSE)) ||
		   IF_ID_IS_UNIQUE(peer_cfg->get_if_id(peer_cfg, TRUE)) ||
		   IF_ID_IS_UNIQUE(peer_cfg->get_if_id(peer_cfg, FALSE));
}

/**
 * charon hands out %unique interface ids and marks from counters of its
 * own, which on a standby lag behind the active node: tell the reservation
 * the values a restored CHILD SA holds, so new tunnels never reuse them
 */
static void reserve_unique_ids(private_sasync_apply_t *this, ike_sa_t *ike_sa,
							   child_sa_t *child_sa)
{
	child_cfg_t *cfg = child_sa->get_config(child_sa);
	uint32_t if_id = 0, mark = 0;

	if (unique_if_ids(ike_sa, cfg))
	{
		if_id = max(child_sa->get_if_id(child_sa, TRUE),
					child_sa->get_if_id(child_sa, FALSE));
	}
	if (MARK_IS_UNIQUE(cfg->get_mark(cfg, TRUE).value) ||
		MARK_IS_UNIQUE(cfg->get_mark(cfg, FALSE).value))
	{
		mark = max(child_sa->get_mark(child_sa, TRUE).value,
				   child_sa->get_mark(child_sa, FALSE).value);
	}
	if (if_id || mark)
	{
		this->unique->hold(this->unique, if_id, mark);
	}
}

static child_sa_t *create_child(ike_sa_t *ike_sa, child_cfg_t *cfg,
								sasync_msg_t *msg)
{
	child_sa_create_t data = {};
	proposal_t *proposal;
	child_sa_t *child_sa;
	uint64_t value = 0;
	mark_t mark;

	if (msg->get_mark(msg, SASYNC_ATTR_MARK_IN, &mark))
	{
		data.mark_in = mark.value;
	}
	if (msg->get_mark(msg, SASYNC_ATTR_MARK_OUT, &mark))
	{
		data.mark_out = mark.value;
	}
	if (msg->get_int(msg, SASYNC_ATTR_IF_ID_IN, &value))
	{
		data.if_id_in = value;
	}
	if (msg->get_int(msg, SASYNC_ATTR_IF_ID_OUT, &value))
	{
		data.if_id_out = value;
	}
	value = 0;
	msg->get_int(msg, SASYNC_ATTR_ENCAP, &value);
	data.encap = value;
	child_sa = child_sa_create(ike_sa->get_my_host(ike_sa),
							   ike_sa->get_other_host(ike_sa), cfg, &data);
	if (msg->get_int(msg, SASYNC_ATTR_MODE, &value))
	{
		child_sa->set_mode(child_sa, value);
	}
	if (msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &value))
	{
		child_sa->set_protocol(child_sa, value);
	}
	if (msg->get_int(msg, SASYNC_ATTR_IPCOMP, &value))
	{
		child_sa->set_ipcomp(child_sa, value);
	}
	proposal = msg->get_proposal(msg, SASYNC_ATTR_PROPOSAL);
	if (proposal)
	{
		child_sa->set_proposal(child_sa, proposal);
		proposal->destroy(proposal);
	}
	return child_sa;
}

static bool child_known(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	uint64_t protocol = PROTO_ESP, spi = 0;

	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	return ike_sa->get_child_sa(ike_sa, protocol, spi, TRUE) != NULL;
}

/**
 * Keep or forget the CHILD SA the active node proposes in an exchange it
 * started (it clears with the CHILD_ADD or CHILD_DELETE of that SPI)
 */
static void set_pending(private_sasync_apply_t *this, ike_sa_t *ike_sa,
						sasync_msg_t *msg, bool pending)
{
	uint64_t protocol = PROTO_ESP, spi = 0;
	sasync_ike_keys_t *keys;

	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	this->keys->lock(this->keys);
	keys = this->keys->get_ike(this->keys, ike_sa->get_unique_id(ike_sa),
							   TRUE);
	if (pending)
	{
		keys->pending_spi = spi;
		keys->pending_protocol = protocol;
	}
	else if (keys->pending_spi == spi)
	{
		keys->pending_spi = 0;
	}
	this->keys->unlock(this->keys);
}

static void ts_list_destroy(linked_list_t **list)
{
	if (*list)
	{
		(*list)->destroy_offset(*list, offsetof(traffic_selector_t, destroy));
		*list = NULL;
	}
}

/**
 * Check a CHILD SA record against the child config and its proposal: key
 * lengths those of the proposal, selectors narrowed by the config as charon
 * narrows a peer's (see sasync_validate_ts()); on success the selectors to
 * install
 */
static bool child_allowed(private_sasync_apply_t *this, ike_sa_t *ike_sa,
						  child_cfg_t *cfg, sasync_msg_t *msg,
						  linked_list_t **my_ts, linked_list_t **other_ts)
{
	linked_list_t *mine, *other;
	proposal_t *proposal;
	char detail[256];
	bool keys;

	proposal = msg->get_proposal(msg, SASYNC_ATTR_PROPOSAL);
	keys = sasync_validate_child_keys(proposal, ike_sa->get_version(ike_sa),
									  msg);
	if (!keys)
	{
		snprintf(detail, sizeof(detail), "keys of CHILD_SA '%s' are not of "
				 "the lengths of its proposal %P", cfg->get_name(cfg),
				 proposal);
		DESTROY_IF(proposal);
		rejected(this, SASYNC_REJECT_KEYS, detail);
		return FALSE;
	}
	DESTROY_IF(proposal);
	mine = ts_list(msg, SASYNC_ATTR_LOCAL_TS);
	other = ts_list(msg, SASYNC_ATTR_REMOTE_TS);
	*my_ts = sasync_validate_ts(cfg, ike_sa, TRUE, mine);
	*other_ts = sasync_validate_ts(cfg, ike_sa, FALSE, other);
	if (!*my_ts || !*other_ts)
	{
		snprintf(detail, sizeof(detail), "traffic selectors %#R === %#R are "
				 "not within those child config '%s' allows", mine, other,
				 cfg->get_name(cfg));
		rejected(this, SASYNC_REJECT_TS, detail);
		ts_list_destroy(my_ts);
		ts_list_destroy(other_ts);
	}
	mine->destroy_offset(mine, offsetof(traffic_selector_t, destroy));
	other->destroy_offset(other, offsetof(traffic_selector_t, destroy));
	return *my_ts && *other_ts;
}

/**
 * The primary names a CHILD SA we hold as installed (a resync, or its
 * CHILD_ADD again): so is ours. One left REKEYING or DELETING by an exchange
 * this node started as primary and that its demotion cut off would stay so
 * for good (a passive IKE SA runs no exchange), not live after the next
 * promotion, while the peer uses it.
 */
static void reinstate_child(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	uint64_t protocol = PROTO_ESP, spi = 0;
	child_sa_t *child_sa;

	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	child_sa = ike_sa->get_child_sa(ike_sa, protocol, spi, TRUE);
	if (child_sa && child_sa->get_state(child_sa) != CHILD_INSTALLED)
	{
		DBG1(DBG_APP, "sasync: CHILD_SA %s{%u} %N here, installed on the "
			 "primary: installed", child_sa->get_name(child_sa),
			 child_sa->get_unique_id(child_sa), child_sa_state_names,
			 child_sa->get_state(child_sa));
		child_sa->set_state(child_sa, CHILD_INSTALLED);
	}
}

/**
 * A CHILD SA a record names could not be installed in its IKE SA (checked
 * out): another passive IKE SA may hold it still, one whose IKE rekey this
 * node missed (while its link was down, or while it was primary in a split
 * brain; a full resync names the new IKE SA, not the one it replaced), and
 * its inbound SA blocks the install. The primary holds it in the record's
 * IKE SA: the stale copy is destroyed. Returns the record's IKE SA checked
 * out again if one was, else checks it in and returns NULL.
 */
static ike_sa_t *retake_moved_child(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	uint64_t protocol = PROTO_ESP, spi = 0;
	enumerator_t *enumerator;
	ike_sa_id_t *id;
	ike_sa_t *holder;
	child_sa_t *child_sa;
	bool dropped = FALSE;

	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	id = ike_sa->get_id(ike_sa);
	id = id->clone(id);
	/* the enumerator checks out each IKE SA in turn, ours too */
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	enumerator = charon->ike_sa_manager->create_enumerator(
											charon->ike_sa_manager, TRUE);
	while (!dropped && enumerator->enumerate(enumerator, &holder))
	{
		child_sa = holder->get_child_sa(holder, protocol, spi, TRUE);
		if (child_sa && holder->get_state(holder) == IKE_PASSIVE &&
			!id->equals(id, holder->get_id(holder)))
		{
			DBG1(DBG_APP, "sasync: CHILD_SA %s{%u} moved to another IKE_SA "
				 "on the primary: destroyed here",
				 child_sa->get_name(child_sa),
				 child_sa->get_unique_id(child_sa));
			dropped = holder->destroy_child_sa(holder, protocol,
											   spi) == SUCCESS;
		}
	}
	enumerator->destroy(enumerator);
	ike_sa = NULL;
	if (dropped)
	{
		ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
	}
	id->destroy(id);
	return ike_sa;
}

static void apply_child_add(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	linked_list_t *my_ts, *other_ts;
	bool own;
	child_cfg_t *cfg;
	child_sa_t *child_sa;
	ike_sa_t *ike_sa;
	ike_sa_id_t *by;
	char *name;
	bool installed;

	ike_sa = checkout(this, msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R,
					  &own);
	by = ike_sa || own ? NULL : replaced_by(this, msg);
	if (by)
	{	/* sent before its IKE SA's rekey: the new SA holds it */
		ike_sa = checkout_id(this, by, &own);
	}
	if (own)
	{
		return;
	}
	if (!ike_sa)
	{	/* its IKE SA may still come */
		if (!this->since)
		{
			this->counters->inc(this->counters, SASYNC_CTR_CHILD_WAITING);
		}
		wait_for(this, this->waiting, msg, "its IKE_SA");
		return;
	}
	if (child_known(ike_sa, msg))
	{	/* a resync sends what we have already */
		reinstate_child(ike_sa, msg);
		set_pending(this, ike_sa, msg, FALSE);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		return;
	}
	name = msg->get_string(msg, SASYNC_ATTR_CHILD_NAME);
	cfg = find_child_cfg(ike_sa, name);
	if (!cfg)
	{
		DBG1(DBG_APP, "sasync: CHILD_SA record for unknown child config '%s', "
			 "not applied", name ?: "");
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		apply_failed(this);
		free(name);
		return;
	}
	if (!child_allowed(this, ike_sa, cfg, msg, &my_ts, &other_ts))
	{
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		cfg->destroy(cfg);
		free(name);
		return;
	}
	child_sa = create_child(ike_sa, cfg, msg);
	installed = install_child(this, ike_sa, child_sa, msg, my_ts, other_ts);
	if (!installed)
	{	/* another passive IKE SA may hold it still */
		child_sa->destroy(child_sa);
		child_sa = NULL;
		ike_sa = retake_moved_child(ike_sa, msg);
		if (ike_sa)
		{
			child_sa = create_child(ike_sa, cfg, msg);
			installed = install_child(this, ike_sa, child_sa, msg, my_ts,
									  other_ts);
		}
	}
	cfg->destroy(cfg);
	my_ts->destroy_offset(my_ts, offsetof(traffic_selector_t, destroy));
	other_ts->destroy_offset(other_ts, offsetof(traffic_selector_t, destroy));
	if (installed)
	{
		ike_sa->add_child_sa(ike_sa, child_sa);
		reserve_unique_ids(this, ike_sa, child_sa);
		this->keys->lock(this->keys);
		this->keys->put_child(this->keys, child_sa->get_unique_id(child_sa),
							  sasync_child_keys_decode(msg));
		this->keys->unlock(this->keys);
		set_pending(this, ike_sa, msg, FALSE);
		this->counters->inc(this->counters, SASYNC_CTR_CONN_SYNC);
		DBG1(DBG_APP, "sasync: restored CHILD_SA %s{%u} SPIs %.8x_i %.8x_o",
			 name, child_sa->get_unique_id(child_sa),
			 ntohl(child_sa->get_spi(child_sa, TRUE)),
			 ntohl(child_sa->get_spi(child_sa, FALSE)));
	}
	else
	{
		DBG1(DBG_APP, "sasync: installing CHILD_SA '%s' failed", name);
		DESTROY_IF(child_sa);
		apply_failed(this);
	}
	if (ike_sa)
	{
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	}
	free(name);
}

static void apply_child_delete(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	uint64_t protocol = PROTO_ESP, spi = 0;
	ike_sa_t *ike_sa;

	ike_sa = checkout_named(this, msg, TRUE);
	if (!ike_sa)
	{
		return;
	}
	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	if (ike_sa->get_state(ike_sa) != IKE_PASSIVE &&
		ike_sa->get_child_sa(ike_sa, protocol, spi, TRUE))
	{	/* handed over, as for an IKE SA: we delete it at the peer (one the
		 * peer deleted already gets an empty answer) */
		DBG1(DBG_APP, "sasync: deleting CHILD_SA %.8x_i of %s[%u] at the "
			 "peer: the node before started deleting it", ntohl((uint32_t)spi),
			 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
		if (ike_sa->delete_child_sa(ike_sa, protocol, spi, FALSE) == SUCCESS)
		{
			this->counters->inc(this->counters, SASYNC_CTR_HANDOVER_DELETED);
		}
	}
	else if (ike_sa->destroy_child_sa(ike_sa, protocol, spi) == SUCCESS)
	{
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
	}
	set_pending(this, ike_sa, msg, FALSE);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
}

/**
 * A CHILD SA was rekeyed on the active node. One we do not hold in an IKE SA
 * we hold is no failure: it is on its way out, which is what not holding it
 * means, and the node got its successor or will (a rejoining node gets the
 * records its partner queued while it was away, about SAs it never had,
 * before the bulk resync; a CHILD SA whose CHILD_ADD failed was counted
 * then).
 */
static void apply_child_rekeyed(private_sasync_apply_t *this,
								sasync_msg_t *msg)
{
	uint64_t protocol = PROTO_ESP, spi = 0;
	child_sa_t *child_sa;
	ike_sa_t *ike_sa;

	ike_sa = checkout_named(this, msg, FALSE);
	if (!ike_sa)
	{
		return;
	}
	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	child_sa = ike_sa->get_child_sa(ike_sa, protocol, spi, TRUE);
	if (child_sa)
	{
		child_sa->set_state(child_sa, CHILD_REKEYED);
		if (ike_sa->get_state(ike_sa) != IKE_PASSIVE)
		{	/* handed over: the demoted node won't delete it now */
			sasync_promote_delete_rekeyed(ike_sa, this->counters);
		}
	}
	else
	{
		DBG2(DBG_APP, "sasync: rekeyed CHILD_SA %.8x_i not held, nothing to "
			 "mark", ntohl((uint32_t)spi));
	}
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
}

/**
 * The active node proposed a CHILD SA in an exchange it started. One we hold
 * already is no longer pending: the exchange completed, and its CHILD_ADD
 * was applied first (records that waited for the connection of their IKE
 * SA come after the CHILD_ADDs that waited for the IKE SA itself). Kept
 * pending, a promotion would delete it at the peer, an established SA.
 */
static void apply_child_pending(private_sasync_apply_t *this,
								sasync_msg_t *msg)
{
	ike_sa_t *ike_sa;

	ike_sa = checkout_named(this, msg, FALSE);
	if (!ike_sa)
	{
		return;
	}
	set_pending(this, ike_sa, msg, !child_known(ike_sa, msg));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
}

static void record_lag(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	uint64_t sent, now = sasync_now_ms();

	if (msg->get_int(msg, SASYNC_ATTR_TIMESTAMP, &sent))
	{
		this->counters->record_lag(this->counters,
								   now > sent ? min(now - sent, UINT32_MAX) : 0);
	}
}

/**
 * Tell the resync tracker which SA a record names
 */
static void mark_seen(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	uint64_t spi;

	if (msg->get_type(msg) == SASYNC_MSG_IKE_ADD &&
		msg->get_int(msg, SASYNC_ATTR_IKE_SPI_I, &spi))
	{
		this->resync->seen_ike(this->resync, spi);
	}
	if (msg->get_type(msg) == SASYNC_MSG_CHILD_ADD &&
		msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi))
	{
		this->resync->seen_child(this->resync, spi);
	}
}

/**
 * Whether an IKE_ADD of the IKE SA a record is about waits for its
 * connection (then the IKE SA is not here)
 */
static bool ike_add_waits(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	return this->waiting_ike->has(this->waiting_ike, SASYNC_MSG_IKE_ADD, msg);
}

/**
 * Report the start or end of a bulk resync to the callback
 */
static void report_resync(private_sasync_apply_t *this, bool done)
{
	u_int seen, total;

	this->resync->get_progress(this->resync, &seen, &total);
	if (this->resync_cb)
	{
		this->resync_cb(this->resync_data, this->peer, seen, total, done);
	}
}

/**
 * A bulk resync starts: note the IKE SAs the primary announces
 */
static void start_resync(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	uint64_t total = 0;

	msg->get_int(msg, SASYNC_ATTR_RESYNC_TOTAL, &total);
	DBG1(DBG_APP, "sasync: bulk resync from %H started, %"PRIu64" IKE_SAs",
		 this->peer, total);
	this->resync->start(this->resync, total);
	report_resync(this, FALSE);
}

CALLBACK(named_ike, bool,
	private_sasync_apply_t *this, uint64_t spi_i)
{
	return this->resync->named_ike(this->resync, spi_i);
}

/**
 * A bulk resync is done: remove what it did not name, including records
 * that wait since before it started (for their connection or IKE SA),
 * which would otherwise restore SAs gone on the primary once applied
 */
static void finish_resync(private_sasync_apply_t *this)
{
	u_int seen, total, dropped;

	dropped = this->waiting_ike->drop_unnamed(this->waiting_ike, named_ike,
											  this) +
			  this->waiting->drop_unnamed(this->waiting, named_ike, this);
	if (dropped)
	{
		DBG1(DBG_APP, "sasync: dropped %u waiting records of IKE_SAs the "
			 "resync did not name", dropped);
		while (dropped--)
		{
			this->counters->inc(this->counters, SASYNC_CTR_RESYNC_REMOVED);
		}
	}
	this->resync->finish(this->resync);
	this->resync->get_progress(this->resync, &seen, &total);
	DBG1(DBG_APP, "sasync: bulk resync from %H complete, %u of %u IKE_SAs",
		 this->peer, seen, total);
	this->counters->inc(this->counters, SASYNC_CTR_RESYNC);
	report_resync(this, TRUE);
}

/**
 * Apply one record, new or waiting, with this->mutex held. Message IDs,
 * rekeys and CHILD SA changes of an IKE SA whose IKE_ADD waits for its
 * connection (a node that starts gets records before swanctl loaded its
 * connections) wait behind it, in order. A CHILD_ADD waits for the IKE SA
 * itself; a delete drops what waits.
 */
static void apply_record(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	switch (msg->get_type(msg))
	{
		case SASYNC_MSG_IKE_MID:
		case SASYNC_MSG_IKE_REKEYED:
		case SASYNC_MSG_CHILD_DELETE:
		case SASYNC_MSG_CHILD_PENDING:
		case SASYNC_MSG_CHILD_REKEYED:
			if (ike_add_waits(this, msg))
			{
				wait_for(this, this->waiting_ike, msg,
						 "the connection of its IKE_SA");
				return;
			}
			break;
		default:
			break;
	}
	switch (msg->get_type(msg))
	{
		case SASYNC_MSG_IKE_ADD:
			apply_ike_add(this, msg);
			break;
		case SASYNC_MSG_IKE_MID:
			apply_ike_mid(this, msg);
			break;
		case SASYNC_MSG_IKE_REKEYED:
			apply_ike_rekeyed(this, msg);
			break;
		case SASYNC_MSG_IKE_DELETE:
			apply_ike_delete(this, msg);
			break;
		case SASYNC_MSG_CHILD_ADD:
			apply_child_add(this, msg);
			break;
		case SASYNC_MSG_CHILD_DELETE:
			apply_child_delete(this, msg);
			break;
		case SASYNC_MSG_CHILD_PENDING:
			apply_child_pending(this, msg);
			break;
		case SASYNC_MSG_CHILD_REKEYED:
			apply_child_rekeyed(this, msg);
			break;
		case SASYNC_MSG_RESYNC_START:
			start_resync(this, msg);
			break;
		case SASYNC_MSG_RESYNC_DONE:
			finish_resync(this);
			break;
		default:
			break;
	}
}

/**
 * Whether a primary applies a record: one a demoted node sent about an SA
 * it still acted on (an exchange in flight when it lost the role), so the
 * SA or its change is not lost between the two nodes; or, in the first
 * SASYNC_SWITCHOVER_MS after this node's promotion, one of the old primary
 * that did not hear of it yet (a switchover: it goes on serving until it
 * hears the newer epoch). Only what completed there: no resync, no
 * exchange still pending at the other node
 */
static bool handed_over(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	uint64_t handover = 0;

	if ((!msg->get_int(msg, SASYNC_ATTR_HANDOVER, &handover) || !handover) &&
		sasync_link_time_ms() - this->promoted_at >= SASYNC_SWITCHOVER_MS)
	{
		return FALSE;
	}
	switch (msg->get_type(msg))
	{
		case SASYNC_MSG_IKE_ADD:
		case SASYNC_MSG_IKE_MID:
		case SASYNC_MSG_IKE_REKEYED:
		case SASYNC_MSG_IKE_DELETE:
		case SASYNC_MSG_CHILD_ADD:
		case SASYNC_MSG_CHILD_DELETE:
		case SASYNC_MSG_CHILD_REKEYED:
			DBG1(DBG_APP, "sasync: applying %N record handed over by a "
				 "demoted node", sasync_msg_type_names, msg->get_type(msg));
			this->counters->inc(this->counters, SASYNC_CTR_HANDOVER_APPLIED);
			return TRUE;
		default:
			return FALSE;
	}
}

METHOD(sasync_apply_t, apply, void,
	private_sasync_apply_t *this, host_t *peer, sasync_msg_t *msg)
{
	record_lag(this, msg);
	this->mutex->lock(this->mutex);
	/* checked under the lock promotion takes: nothing is restored passive
	 * once the node is primary */
	if (this->role->get(this->role) != SASYNC_ROLE_STANDBY &&
		!handed_over(this, msg))
	{
		DBG1(DBG_APP, "sasync: %N record from %H ignored, we are primary",
			 sasync_msg_type_names, msg->get_type(msg), peer);
		this->mutex->unlock(this->mutex);
		return;
	}
	this->peer = peer;
	this->type = msg->get_type(msg);
	mark_seen(this, msg);
	apply_record(this, msg);
	this->peer = NULL;
	this->type = SASYNC_MSG_IKE_ADD;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_apply_t, reject, void,
	private_sasync_apply_t *this, host_t *peer, char *reason)
{
	DBG1(DBG_APP, "sasync: %s from %H, not applied", reason, peer);
	this->counters->inc(this->counters, SASYNC_CTR_SYNC_RX_LEN_BAD);
	this->mutex->lock(this->mutex);
	if (this->error_cb)
	{
		this->error_cb(this->error_data, peer, SASYNC_CTR_SYNC_RX_LEN_BAD,
					   reason);
	}
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_apply_t, get_waiting, u_int,
	private_sasync_apply_t *this)
{
	u_int count;

	this->mutex->lock(this->mutex);
	count = this->waiting->get_count(this->waiting);
	this->mutex->unlock(this->mutex);
	return count;
}

METHOD(sasync_apply_t, hold, void,
	private_sasync_apply_t *this)
{
	this->mutex->lock(this->mutex);
}

METHOD(sasync_apply_t, resume, void,
	private_sasync_apply_t *this)
{
	sasync_msg_t *msg;
	time_t since;

	/* a CHILD SA whose IKE SA never came can't be restored by a primary:
	 * nobody sends that IKE SA anymore */
	if (this->role->get(this->role) == SASYNC_ROLE_PRIMARY)
	{
		this->promoted_at = sasync_link_time_ms();
		this->type = SASYNC_MSG_CHILD_ADD;
		while (this->waiting->remove_first(this->waiting, &msg, &since))
		{
			DBG1(DBG_APP, "sasync: promoted with a CHILD_SA record whose "
				 "IKE_SA never came, not applied");
			this->counters->inc(this->counters, SASYNC_CTR_WAIT_EXPIRED);
			apply_failed(this);
			msg->destroy(msg);
		}
		this->type = SASYNC_MSG_IKE_ADD;
		/* before the node makes CHILD SAs of its own */
		this->unique->reserve(this->unique);
	}
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_apply_t, get_resync_progress, bool,
	private_sasync_apply_t *this, u_int *seen, u_int *total)
{
	bool running;

	this->mutex->lock(this->mutex);
	running = this->resync->get_progress(this->resync, seen, total);
	this->mutex->unlock(this->mutex);
	return running;
}

METHOD(sasync_apply_t, set_resync_cb, void,
	private_sasync_apply_t *this, sasync_apply_resync_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->resync_cb = cb;
	this->resync_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_apply_t, set_error_cb, void,
	private_sasync_apply_t *this, sasync_apply_error_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->error_cb = cb;
	this->error_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_apply_t, destroy, void,
	private_sasync_apply_t *this)
{
	/* after a retry that runs now, none will */
	this->retry->mutex->lock(this->retry->mutex);
	this->retry->apply = NULL;
	this->retry->mutex->unlock(this->retry->mutex);
	retry_unref(this->retry);
	this->replaced->destroy_function(this->replaced, (void*)replaced_destroy);
	this->waiting->destroy(this->waiting);
	this->waiting_ike->destroy(this->waiting_ike);
	this->validate->destroy(this->validate);
	this->unique->destroy(this->unique);
	this->resync->destroy(this->resync);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_apply_t *sasync_apply_create(sasync_role_t *role,
									sasync_counters_t *counters,
									sasync_outbound_t *outbound,
									sasync_keystore_t *keys)
{
	private_sasync_apply_t *this;

	INIT(this,
		.public = {
			.apply = _apply,
			.reject = _reject,
			.get_waiting = _get_waiting,
			.hold = _hold,
			.resume = _resume,
			.set_error_cb = _set_error_cb,
			.get_resync_progress = _get_resync_progress,
			.set_resync_cb = _set_resync_cb,
			.destroy = _destroy,
		},
		.role = role,
		.counters = counters,
		.outbound = outbound,
		.keys = keys,
		.waiting = sasync_wait_create(WAIT_MAX),
		.waiting_ike = sasync_wait_create(WAIT_MAX),
		.replaced = replaced_create(),
		.validate = sasync_validate_create(counters),
		.unique = sasync_unique_create(),
		.resync = sasync_resync_create(counters),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
		.type = SASYNC_MSG_IKE_ADD,
	);
	INIT(this->retry,
		.apply = this,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.ref = 1,
	);
	return &this->public;
}
