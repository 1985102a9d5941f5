/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_apply.h"
#include "sasync_msg.h"
#include "sasync_kex.h"
#include "sasync_capture.h"

#include <inttypes.h>

#include <daemon.h>
#include <collections/array.h>
#include <threading/mutex.h>
#include <processing/jobs/callback_job.h>
#include <sa/ikev2/keymat_v2.h>
#include <sa/ikev1/keymat_v1.h>

typedef struct private_sasync_apply_t private_sasync_apply_t;

struct private_sasync_apply_t {

	/** public interface */
	sasync_apply_t public;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;

	/** outbound guard */
	sasync_outbound_t *outbound;

	/** capture side, keeps restored SAs for after a promotion (optional) */
	sasync_capture_t *capture;

	/** CHILD_ADD records (sasync_msg_t*) waiting for their IKE SA */
	array_t *waiting;

	/** IKE_ADD records (ike_waiting_t) waiting for their connection */
	array_t *waiting_ike;

	/** a retry of waiting_ike is scheduled */
	bool retry_scheduled;

	/** serializes applying records */
	mutex_t *mutex;

	/** callback for records not applied, and its data */
	sasync_apply_error_t error_cb;
	void *error_data;

	/** sender of the record being applied, NULL in retries */
	host_t *peer;

	/** type of the record being applied */
	sasync_msg_type_t type;
};

/** how long an IKE SA record waits for its connection to be loaded (s) */
#define CONFIG_WAIT 60

/** how often waiting IKE SA records are retried (ms) */
#define CONFIG_RETRY_MS 500

/**
 * An IKE SA record whose connection is not loaded (yet)
 */
typedef struct {
	sasync_msg_t *msg;
	time_t since;
} ike_waiting_t;

/**
 * Result of creating a passive IKE SA
 */
typedef enum {
	IKE_CREATED_OK,
	IKE_NO_CONFIG,
	IKE_FAILED,
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

static ike_sa_t *checkout(sasync_msg_t *msg, sasync_attr_t attr_i,
						  sasync_attr_t attr_r)
{
	ike_sa_id_t *id;
	ike_sa_t *ike_sa = NULL;

	id = get_ike_id(msg, attr_i, attr_r);
	if (id)
	{
		ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
		id->destroy(id);
	}
	return ike_sa;
}

/**
 * IKEv2 keys: from the key exchange secret, the nonces and, for a rekeyed
 * SA, the old SK_d
 */
static bool derive_ikev2_keys(ike_sa_t *ike_sa, sasync_msg_t *msg,
							  proposal_t *proposal, key_exchange_t *kex,
							  chunk_t nonce_i, chunk_t nonce_r)
{
	keymat_v2_t *keymat = (keymat_v2_t*)ike_sa->get_keymat(ike_sa);
	chunk_t old_skd = chunk_empty;
	uint64_t old_prf = PRF_UNDEFINED;

	if (msg->get_chunk(msg, SASYNC_ATTR_OLD_SKD, &old_skd))
	{
		msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &old_prf);
	}
	return keymat->derive_ike_keys(keymat, proposal, kex, nonce_i, nonce_r,
								   ike_sa->get_id(ike_sa), old_prf, old_skd);
}

/**
 * IKEv1 keys: also from the peer's public value and the pre-shared key
 */
static bool derive_ikev1_keys(ike_sa_t *ike_sa, sasync_msg_t *msg,
							  proposal_t *proposal, key_exchange_t *kex,
							  chunk_t nonce_i, chunk_t nonce_r)
{
	keymat_v1_t *keymat = (keymat_v1_t*)ike_sa->get_keymat(ike_sa);
	shared_key_t *psk = NULL;
	chunk_t remote_ke = chunk_empty, key;
	uint64_t auth = AUTH_NONE;
	bool ok;

	msg->get_chunk(msg, SASYNC_ATTR_REMOTE_KE, &remote_ke);
	msg->get_int(msg, SASYNC_ATTR_AUTH_METHOD, &auth);
	if (msg->get_chunk(msg, SASYNC_ATTR_PSK, &key))
	{
		psk = shared_key_create(SHARED_IKE, chunk_clone(key));
	}
	ok = keymat->derive_ike_keys(keymat, proposal, kex, remote_ke, nonce_i,
								 nonce_r, ike_sa->get_id(ike_sa), auth, psk);
	DESTROY_IF(psk);
	return ok;
}

/**
 * Derive the IKE keys from the synced key exchange secret and nonces
 */
static bool derive_ike_keys(ike_sa_t *ike_sa, sasync_msg_t *msg,
							proposal_t *proposal)
{
	chunk_t secret, nonce_i, nonce_r, local_ke = chunk_empty;
	uint16_t method = 0;
	key_exchange_t *kex;
	bool ok;

	if (!msg->get_chunk(msg, SASYNC_ATTR_SECRET, &secret) ||
		!msg->get_chunk(msg, SASYNC_ATTR_NONCE_I, &nonce_i) ||
		!msg->get_chunk(msg, SASYNC_ATTR_NONCE_R, &nonce_r))
	{
		return FALSE;
	}
	msg->get_chunk(msg, SASYNC_ATTR_LOCAL_KE, &local_ke);
	proposal->get_algorithm(proposal, KEY_EXCHANGE_METHOD, &method, NULL);
	kex = sasync_kex_create(method, secret, local_ke);
	if (ike_sa->get_version(ike_sa) == IKEV1)
	{
		ok = derive_ikev1_keys(ike_sa, msg, proposal, kex, nonce_i, nonce_r);
	}
	else
	{
		ok = derive_ikev2_keys(ike_sa, msg, proposal, kex, nonce_i, nonce_r);
	}
	kex->destroy(kex);
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

static void update_ike(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	enumerator_t *enumerator;
	linked_list_t *known;
	uint64_t mid;
	host_t *host;

	update_hosts(ike_sa, msg);
	set_bits(ike_sa, msg);
	set_iv(ike_sa, msg);
	if (msg->get_int(msg, SASYNC_ATTR_MID_I, &mid))
	{
		ike_sa->set_message_id(ike_sa, TRUE, mid);
	}
	if (msg->get_int(msg, SASYNC_ATTR_MID_R, &mid))
	{
		ike_sa->set_message_id(ike_sa, FALSE, mid);
	}
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
	if (!id)
	{
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
 * Build a passive IKE SA from an IKE_ADD record, checked in on success
 */
static create_result_t create_ike(private_sasync_apply_t *this,
								  sasync_msg_t *msg, ike_sa_id_t *id)
{
	identification_t *me, *other;
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
	if (!derive_ike_keys(ike_sa, msg, proposal))
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
	me = msg->get_id(msg, SASYNC_ATTR_LOCAL_ID);
	other = msg->get_id(msg, SASYNC_ATTR_REMOTE_ID);
	if (me)
	{
		ike_sa->set_my_id(ike_sa, me);
	}
	if (other)
	{
		ike_sa->set_other_id(ike_sa, other);
	}
	set_initial_hosts(ike_sa, msg);
	set_eap_id(ike_sa, msg);
	update_ike(ike_sa, msg);
	if (this->capture)
	{
		this->capture->adopt_ike(this->capture, ike_sa, msg);
	}
	ike_sa->set_state(ike_sa, IKE_PASSIVE);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	DBG1(DBG_APP, "sasync: restored passive IKE_SA '%s' %.16"PRIx64"_i "
		 "%.16"PRIx64"_r", name, be64toh(id->get_initiator_spi(id)),
		 be64toh(id->get_responder_spi(id)));
	free(name);
	return IKE_CREATED_OK;
}

static void apply_child_add(private_sasync_apply_t *this, sasync_msg_t *msg);

/**
 * Apply CHILD SAs that waited for this IKE SA
 */
static void release_waiting(private_sasync_apply_t *this)
{
	array_t *waiting = this->waiting;
	sasync_msg_t *msg;

	this->waiting = array_create(0, 0);
	while (array_remove(waiting, ARRAY_HEAD, &msg))
	{
		apply_child_add(this, msg);
		msg->destroy(msg);
	}
	array_destroy(waiting);
}

static void schedule_retry(private_sasync_apply_t *this);

/**
 * Keep an IKE SA record until its connection is loaded: after a restart,
 * records may arrive before swanctl loaded the configuration
 */
static void wait_for_config(private_sasync_apply_t *this, sasync_msg_t *msg,
							time_t since)
{
	ike_waiting_t *waiting;
	char *name;

	if (since && time_monotonic(NULL) - since > CONFIG_WAIT)
	{
		name = msg->get_string(msg, SASYNC_ATTR_NAME);
		DBG1(DBG_APP, "sasync: connection '%s' still not loaded after %ds, "
			 "IKE_SA record not applied", name ?: "", CONFIG_WAIT);
		free(name);
		apply_failed(this);
		return;
	}
	if (!since)
	{
		name = msg->get_string(msg, SASYNC_ATTR_NAME);
		DBG1(DBG_APP, "sasync: IKE_SA record for connection '%s' that is not "
			 "loaded, waiting up to %ds", name ?: "", CONFIG_WAIT);
		free(name);
	}
	INIT(waiting,
		.msg = sasync_msg_parse(msg->get_encoding(msg)),
		.since = since ?: time_monotonic(NULL),
	);
	array_insert(this->waiting_ike, ARRAY_TAIL, waiting);
	schedule_retry(this);
}

static void apply_ike_add_since(private_sasync_apply_t *this,
								sasync_msg_t *msg, time_t since)
{
	ike_sa_id_t *id;
	ike_sa_t *ike_sa;
	uint64_t version = 0;

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
	ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
	if (ike_sa)
	{
		update_ike(ike_sa, msg);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
		id->destroy(id);
		return;
	}
	switch (create_ike(this, msg, id))
	{
		case IKE_CREATED_OK:
			this->counters->inc(this->counters, SASYNC_CTR_VIKE_SYNC);
			release_waiting(this);
			break;
		case IKE_NO_CONFIG:
			wait_for_config(this, msg, since);
			break;
		case IKE_FAILED:
			apply_failed(this);
			break;
	}
	id->destroy(id);
}

static void apply_ike_add(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	apply_ike_add_since(this, msg, 0);
}

static job_requeue_t retry_waiting_ike(private_sasync_apply_t *this)
{
	ike_waiting_t *waiting;
	array_t *list;

	this->mutex->lock(this->mutex);
	this->retry_scheduled = FALSE;
	list = this->waiting_ike;
	this->waiting_ike = array_create(0, 0);
	while (array_remove(list, ARRAY_HEAD, &waiting))
	{
		apply_ike_add_since(this, waiting->msg, waiting->since);
		waiting->msg->destroy(waiting->msg);
		free(waiting);
	}
	array_destroy(list);
	this->mutex->unlock(this->mutex);
	return JOB_REQUEUE_NONE;
}

static void schedule_retry(private_sasync_apply_t *this)
{
	if (!this->retry_scheduled)
	{
		this->retry_scheduled = TRUE;
		lib->scheduler->schedule_job_ms(lib->scheduler,
			(job_t*)callback_job_create((callback_job_cb_t)retry_waiting_ike,
										this, NULL, NULL), CONFIG_RETRY_MS);
	}
}

static void apply_ike_mid(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_t *ike_sa;
	uint64_t mid;

	ike_sa = checkout(msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	if (!ike_sa)
	{
		apply_failed(this);
		return;
	}
	if (msg->get_int(msg, SASYNC_ATTR_MID_I, &mid))
	{
		ike_sa->set_message_id(ike_sa, TRUE, mid);
	}
	if (msg->get_int(msg, SASYNC_ATTR_MID_R, &mid))
	{
		ike_sa->set_message_id(ike_sa, FALSE, mid);
	}
	this->counters->inc(this->counters, SASYNC_CTR_MID_SYNC);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
}

static void apply_ike_rekeyed(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	enumerator_t *enumerator;
	array_t *children;
	child_sa_t *child_sa;
	ike_sa_t *old, *new;

	old = checkout(msg, SASYNC_ATTR_OLD_SPI_I, SASYNC_ATTR_OLD_SPI_R);
	if (!old)
	{
		apply_failed(this);
		return;
	}
	children = array_create(0, 0);
	enumerator = old->create_child_sa_enumerator(old);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		old->remove_child_sa(old, enumerator);
		array_insert(children, ARRAY_TAIL, child_sa);
	}
	enumerator->destroy(enumerator);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, old);

	new = checkout(msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	if (!new)
	{
		DBG1(DBG_APP, "sasync: rekeyed IKE_SA unknown, dropping %u CHILD_SAs",
			 array_count(children));
		array_destroy_offset(children, offsetof(child_sa_t, destroy));
		apply_failed(this);
		return;
	}
	while (array_remove(children, ARRAY_HEAD, &child_sa))
	{
		new->add_child_sa(new, child_sa);
	}
	array_destroy(children);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, new);
}

static void apply_ike_delete(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	ike_sa_t *ike_sa;

	ike_sa = checkout(msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	if (!ike_sa)
	{
		apply_failed(this);
		return;
	}
	DBG1(DBG_APP, "sasync: deleting synced IKE_SA %s[%u]",
		 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
	this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
	charon->ike_sa_manager->checkin_and_destroy(charon->ike_sa_manager, ike_sa);
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
 * Install the restored CHILD SA: inbound SA and policies, but the outbound
 * SA only long enough for the CHILD SA to know it (see sasync_outbound_t)
 */
static bool install_child(private_sasync_apply_t *this, ike_sa_t *ike_sa,
						  child_sa_t *child_sa, sasync_msg_t *msg)
{
	chunk_t encr_in = chunk_empty, integ_in = chunk_empty;
	chunk_t encr_out = chunk_empty, integ_out = chunk_empty;
	uint64_t spi_in = 0, spi_out = 0, cpi_in = 0, cpi_out = 0, initiator = 0;
	linked_list_t *my_ts, *other_ts;
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

	my_ts = ts_list(msg, SASYNC_ATTR_LOCAL_TS);
	other_ts = ts_list(msg, SASYNC_ATTR_REMOTE_TS);
	child_sa->set_policies(child_sa, my_ts, other_ts);
	my_ts->destroy_offset(my_ts, offsetof(traffic_selector_t, destroy));
	other_ts->destroy_offset(other_ts, offsetof(traffic_selector_t, destroy));

	child_sa->set_state(child_sa, CHILD_INSTALLING);
	status = child_sa->install(child_sa, encr_in, integ_in, spi_in, cpi_in,
							   initiator, TRUE, FALSE);
	if (status == SUCCESS)
	{
		/* no policy refers to it yet, so it never carries a packet */
		status = child_sa->install(child_sa, encr_out, integ_out, spi_out,
								   cpi_out, initiator, FALSE, FALSE);
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

/** bound of the loops that move charon's unique id counters forward */
#define UNIQUE_RESERVE_MAX 1000000

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
 * own, which on a standby lag behind the active node: move them past the
 * values a restored CHILD SA holds, so new tunnels never reuse them
 */
static void reserve_unique_ids(ike_sa_t *ike_sa, child_sa_t *child_sa)
{
	child_cfg_t *cfg = child_sa->get_config(child_sa), *dummy_cfg;
	uint32_t if_id, mark, in, out;
	child_sa_t *dummy;
	host_t *any;
	int i;

	if_id = max(child_sa->get_if_id(child_sa, TRUE),
				child_sa->get_if_id(child_sa, FALSE));
	for (i = 0; if_id && unique_if_ids(ike_sa, cfg) &&
		 i < UNIQUE_RESERVE_MAX; i++)
	{
		in = IF_ID_UNIQUE;
		out = 0;
		allocate_unique_if_ids(&in, &out);
		if (in >= if_id)
		{
			break;
		}
	}
	mark = max(child_sa->get_mark(child_sa, TRUE).value,
			   child_sa->get_mark(child_sa, FALSE).value);
	if (!mark || (!MARK_IS_UNIQUE(cfg->get_mark(cfg, TRUE).value) &&
				  !MARK_IS_UNIQUE(cfg->get_mark(cfg, FALSE).value)))
	{
		return;
	}
	/* the mark counter is only reachable through child_sa_create() */
	child_cfg_create_t data = {
		.mark_in = { .value = MARK_UNIQUE, .mask = 0xffffffff },
	};
	dummy_cfg = child_cfg_create("sasync-reserve", &data);
	any = host_create_any(AF_INET);
	for (i = 0; i < UNIQUE_RESERVE_MAX; i++)
	{
		dummy = child_sa_create(any, any, dummy_cfg, &(child_sa_create_t){});
		in = dummy->get_mark(dummy, TRUE).value;
		dummy->destroy(dummy);
		if (in >= mark)
		{
			break;
		}
	}
	any->destroy(any);
	dummy_cfg->destroy(dummy_cfg);
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

static void apply_child_add(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	child_cfg_t *cfg;
	child_sa_t *child_sa;
	ike_sa_t *ike_sa;
	char *name;

	ike_sa = checkout(msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	if (!ike_sa)
	{	/* its IKE SA may still come; never drop it */
		DBG1(DBG_APP, "sasync: CHILD_SA record before its IKE_SA, waiting");
		array_insert(this->waiting, ARRAY_TAIL,
					 sasync_msg_parse(msg->get_encoding(msg)));
		this->counters->inc(this->counters, SASYNC_CTR_CHILD_WAITING);
		return;
	}
	if (child_known(ike_sa, msg))
	{	/* a resync sends what we have already */
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
	child_sa = create_child(ike_sa, cfg, msg);
	cfg->destroy(cfg);
	if (install_child(this, ike_sa, child_sa, msg))
	{
		ike_sa->add_child_sa(ike_sa, child_sa);
		reserve_unique_ids(ike_sa, child_sa);
		if (this->capture)
		{
			this->capture->adopt_child(this->capture, child_sa, msg);
		}
		this->counters->inc(this->counters, SASYNC_CTR_CONN_SYNC);
		DBG1(DBG_APP, "sasync: restored CHILD_SA %s{%u} SPIs %.8x_i %.8x_o",
			 name, child_sa->get_unique_id(child_sa),
			 ntohl(child_sa->get_spi(child_sa, TRUE)),
			 ntohl(child_sa->get_spi(child_sa, FALSE)));
	}
	else
	{
		DBG1(DBG_APP, "sasync: installing CHILD_SA '%s' failed", name);
		child_sa->destroy(child_sa);
		apply_failed(this);
	}
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	free(name);
}

static void apply_child_delete(private_sasync_apply_t *this, sasync_msg_t *msg)
{
	uint64_t protocol = PROTO_ESP, spi = 0;
	ike_sa_t *ike_sa;

	ike_sa = checkout(msg, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_IKE_SPI_R);
	if (!ike_sa)
	{
		apply_failed(this);
		return;
	}
	msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &protocol);
	msg->get_int(msg, SASYNC_ATTR_SPI_IN, &spi);
	if (ike_sa->destroy_child_sa(ike_sa, protocol, spi) == SUCCESS)
	{
		this->counters->inc(this->counters, SASYNC_CTR_DELETE_SYNC);
	}
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

METHOD(sasync_apply_t, receive, void,
	private_sasync_apply_t *this, host_t *peer, chunk_t data)
{
	sasync_msg_t *msg;

	msg = sasync_msg_parse(data);
	if (!msg)
	{
		DBG1(DBG_APP, "sasync: malformed record from %H, not applied", peer);
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_RX_LEN_BAD);
		this->mutex->lock(this->mutex);
		if (this->error_cb)
		{
			this->error_cb(this->error_data, peer, SASYNC_CTR_SYNC_RX_LEN_BAD,
						   "malformed record");
		}
		this->mutex->unlock(this->mutex);
		return;
	}
	if (this->role->get(this->role) != SASYNC_ROLE_STANDBY)
	{
		DBG1(DBG_APP, "sasync: %N record from %H ignored, we are primary",
			 sasync_msg_type_names, msg->get_type(msg), peer);
		msg->destroy(msg);
		return;
	}
	record_lag(this, msg);
	this->mutex->lock(this->mutex);
	this->peer = peer;
	this->type = msg->get_type(msg);
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
		case SASYNC_MSG_RESYNC_DONE:
			DBG1(DBG_APP, "sasync: bulk resync from %H complete", peer);
			this->counters->inc(this->counters, SASYNC_CTR_RESYNC);
			break;
		default:
			break;
	}
	this->peer = NULL;
	this->type = SASYNC_MSG_IKE_ADD;
	this->mutex->unlock(this->mutex);
	msg->destroy(msg);
}

METHOD(sasync_apply_t, get_waiting, u_int,
	private_sasync_apply_t *this)
{
	u_int count;

	this->mutex->lock(this->mutex);
	count = array_count(this->waiting);
	this->mutex->unlock(this->mutex);
	return count;
}

METHOD(sasync_apply_t, set_capture, void,
	private_sasync_apply_t *this, sasync_capture_t *capture)
{
	this->capture = capture;
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
	ike_waiting_t *waiting;

	array_destroy_offset(this->waiting, offsetof(sasync_msg_t, destroy));
	while (array_remove(this->waiting_ike, ARRAY_HEAD, &waiting))
	{
		waiting->msg->destroy(waiting->msg);
		free(waiting);
	}
	array_destroy(this->waiting_ike);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_apply_t *sasync_apply_create(sasync_role_t *role,
									sasync_counters_t *counters,
									sasync_outbound_t *outbound)
{
	private_sasync_apply_t *this;

	INIT(this,
		.public = {
			.receive = _receive,
			.get_waiting = _get_waiting,
			.set_error_cb = _set_error_cb,
			.set_capture = _set_capture,
			.destroy = _destroy,
		},
		.role = role,
		.counters = counters,
		.outbound = outbound,
		.waiting = array_create(0, 0),
		.waiting_ike = array_create(0, 0),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
		.type = SASYNC_MSG_IKE_ADD,
	);
	return &this->public;
}
