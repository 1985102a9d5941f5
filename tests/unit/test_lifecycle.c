/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * Capture and apply on charon's real in-process bus and IKE_SA manager.
 *
 * The runner only calls libcharon_init(), which creates the bus, the kernel
 * interface and the config backends but no IKE_SA or CHILD_SA manager:
 * charon->initialize() creates those from a plugin feature that also wants
 * a socket and a kernel backend (strongSwan's own exchange tests call it
 * and put mocks in afterwards). Here the fixture creates both managers
 * itself, registers a recording kernel IPsec backend and a config backend,
 * and removes all of it again.
 *
 * The "active node" is a capture listener (primary role, its own key store)
 * on charon's bus whose link keeps each record. Its IKE SAs are real
 * ike_sa_t objects outside the manager, with keys from a real key exchange
 * derived by charon's keymat, driven through the bus as charon's tasks do.
 * For each of them the test keeps the peer's keymat of the same SA. The
 * "standby node" is an apply object (standby role, another key store) fed
 * with the captured records; it restores its SAs in charon's manager, so
 * restored keys can be checked against the original and against the peer.
 */

#include <check.h>

#include "sasync_capture.h"
#include "sasync_apply.h"
#include "sasync_promote.h"
#include "sasync_switchover.h"
#include "sasync_outbound.h"
#include "sasync_keystore.h"
#include "sasync_counters.h"
#include "sasync_msg.h"
#include "sasync_wait.h"

#include <unistd.h>
#include <inttypes.h>

#include <daemon.h>
#include <collections/array.h>
#include <threading/mutex.h>
#include <threading/thread.h>
#include <bio/bio_reader.h>
#include <bio/bio_writer.h>
#include <sa/ike_sa_manager.h>
#include <sa/child_sa_manager.h>
#include <sa/ikev1/keymat_v1.h>
#include <sa/ikev2/keymat_v2.h>
#include <sa/authenticator.h>
#include <config/backend.h>
#include <kernel/kernel_ipsec.h>

#define IKE_PROPOSAL_AEAD "aes256gcm16-prfsha256-curve25519"
#define IKE_PROPOSAL_CBC "aes128-sha256-modp2048"
#define IKEV1_PROPOSAL "aes128-sha256-modp2048"
#define ESP_PROPOSAL "aes128gcm16"

/*
 * Recording link of the active node
 */
typedef struct {
	sasync_link_t public;
	mutex_t *mutex;
	/** chunk_t*, each record sent */
	array_t *records;
} rec_link_t;

static void rec_send(sasync_link_t *this, chunk_t payload)
{
	rec_link_t *rlink = (rec_link_t*)this;
	chunk_t *copy;

	INIT(copy);
	*copy = chunk_clone(payload);
	rlink->mutex->lock(rlink->mutex);
	array_insert(rlink->records, ARRAY_TAIL, copy);
	rlink->mutex->unlock(rlink->mutex);
}

/* the capture side sends everything here through send_to(), to all (NULL)
 * or, in a bulk resync, to one partner: recorded the same */
static void rec_send_to(sasync_link_t *this, host_t *to, chunk_t payload)
{
	rec_send(this, payload);
}

static void rec_no_cb(sasync_link_t *this, void *cb, void *data)
{
}

/* nothing waits in a queue: a bulk resync never pauses */
static u_int rec_queued(sasync_link_t *this, host_t *to)
{
	return 0;
}

static enumerator_t *rec_peers(sasync_link_t *this)
{
	return enumerator_create_empty();
}

static void rec_free(chunk_t *chunk)
{
	chunk_clear(chunk);
	free(chunk);
}

/* records are recorded as they come: nothing waits for a flush */
static void rec_flush(sasync_link_t *this)
{
}

static void rec_destroy(sasync_link_t *this)
{
	rec_link_t *rlink = (rec_link_t*)this;

	array_destroy_function(rlink->records, (void*)rec_free, NULL);
	rlink->mutex->destroy(rlink->mutex);
	free(rlink);
}

static rec_link_t *rec_link_create()
{
	rec_link_t *this;

	INIT(this,
		.public = {
			.send = rec_send,
			.send_to = rec_send_to,
			.send_more = rec_send_to,
			.flush = rec_flush,
			.get_queued = rec_queued,
			.set_receiver = (void*)rec_no_cb,
			.set_up_cb = (void*)rec_no_cb,
			.set_error_cb = (void*)rec_no_cb,
			.create_peer_enumerator = rec_peers,
			.destroy = rec_destroy,
		},
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.records = array_create(0, 0),
	);
	return this;
}

/*
 * Kernel IPsec backend that accepts everything but a third inbound SA of an
 * SPI and counts SAs. Both nodes of the tests share it: the active node's
 * and the standby's copy are two, a second copy on the standby is refused,
 * as the kernel and libipsec refuse it there.
 */
typedef struct {
	kernel_ipsec_t public;
	refcount_t spi;
	u_int sas_in;
	u_int sas_out;
	u_int deleted;
	/** inbound SPIs installed, uint32_t, one entry per SA */
	array_t *spis_in;
} test_ipsec_t;

static test_ipsec_t *ipsec;

static kernel_feature_t ipsec_get_features(kernel_ipsec_t *this)
{
	/* outbound SPIs pinned in policies, as kernel-netlink: no sentinel SA */
	return KERNEL_POLICY_SPI;
}

static status_t ipsec_get_spi(kernel_ipsec_t *this, host_t *src, host_t *dst,
							  uint8_t protocol, uint32_t *spi)
{
	*spi = htonl(0xc1000000 + ref_get(&ipsec->spi));
	return SUCCESS;
}

static status_t ipsec_add_sa(kernel_ipsec_t *this, kernel_ipsec_sa_id_t *id,
							 kernel_ipsec_add_sa_t *data)
{
	uint32_t spi;
	int i, copies = 0;

	if (data->inbound)
	{
		for (i = 0; i < array_count(ipsec->spis_in); i++)
		{
			array_get(ipsec->spis_in, i, &spi);
			if (spi == id->spi && ++copies == 2)
			{
				return FAILED;
			}
		}
		array_insert(ipsec->spis_in, ARRAY_TAIL, &id->spi);
		ipsec->sas_in++;
	}
	else
	{
		ipsec->sas_out++;
	}
	return SUCCESS;
}

static status_t ipsec_del_sa(kernel_ipsec_t *this, kernel_ipsec_sa_id_t *id,
							 kernel_ipsec_del_sa_t *data)
{
	uint32_t spi;
	int i;

	for (i = 0; i < array_count(ipsec->spis_in); i++)
	{
		array_get(ipsec->spis_in, i, &spi);
		if (spi == id->spi)
		{
			array_remove(ipsec->spis_in, i, NULL);
			break;
		}
	}
	ipsec->deleted++;
	return SUCCESS;
}

static status_t ipsec_query_sa(kernel_ipsec_t *this, kernel_ipsec_sa_id_t *id,
							   kernel_ipsec_query_sa_t *data, uint64_t *bytes,
							   uint64_t *packets, time_t *time)
{
	return NOT_SUPPORTED;
}

static status_t ipsec_query_policy(kernel_ipsec_t *this,
								   kernel_ipsec_policy_id_t *id,
								   kernel_ipsec_query_policy_t *data,
								   time_t *use_time)
{
	return NOT_SUPPORTED;
}

static void ipsec_destroy(kernel_ipsec_t *this)
{
	array_destroy(ipsec->spis_in);
	free(this);
	ipsec = NULL;
}

static kernel_ipsec_t *test_ipsec_create()
{
	INIT(ipsec,
		.public = {
			.get_features = ipsec_get_features,
			.get_spi = ipsec_get_spi,
			.get_cpi = (void*)return_failed,
			.add_sa = ipsec_add_sa,
			.update_sa = (void*)return_success,
			.query_sa = ipsec_query_sa,
			.del_sa = ipsec_del_sa,
			.flush_sas = (void*)return_success,
			.add_policy = (void*)return_success,
			.query_policy = ipsec_query_policy,
			.del_policy = (void*)return_success,
			.flush_policies = (void*)return_success,
			.bypass_socket = (void*)return_true,
			.enable_udp_decap = (void*)return_true,
			.destroy = ipsec_destroy,
		},
		.spis_in = array_create(sizeof(uint32_t), 0),
	);
	return &ipsec->public;
}

/*
 * Config backend: the connections by name, as swanctl loads them on both
 * nodes
 */
static peer_cfg_t *cfg_v2, *cfg_v1;
static child_cfg_t *child_cfg;
/** the connections are not loaded yet (a node that just started) */
static bool cfg_hidden;

static peer_cfg_t *backend_get_peer_cfg_by_name(backend_t *this, char *name)
{
	peer_cfg_t *cfg = NULL;

	if (cfg_hidden)
	{
		return NULL;
	}
	if (streq(name, cfg_v2->get_name(cfg_v2)))
	{
		cfg = cfg_v2;
	}
	else if (streq(name, cfg_v1->get_name(cfg_v1)))
	{
		cfg = cfg_v1;
	}
	return cfg ? cfg->get_ref(cfg) : NULL;
}

static enumerator_t *backend_empty(backend_t *this)
{
	return enumerator_create_empty();
}

static backend_t backend = {
	.create_peer_cfg_enumerator = (void*)backend_empty,
	.create_ike_cfg_enumerator = (void*)backend_empty,
	.get_peer_cfg_by_name = backend_get_peer_cfg_by_name,
};

static peer_cfg_t *create_peer_cfg(char *name, ike_version_t version)
{
	ike_cfg_create_t ike = {
		.version = version,
		.local = "192.0.2.1",
		.local_port = 500,
		.remote = "%any",
		.remote_port = 500,
	};
	peer_cfg_create_t peer = {
		.unique = UNIQUE_NO,
		.keyingtries = 1,
		/* no rekeying, reauthentication or DPD jobs */
	};
	ike_cfg_t *ike_cfg;
	peer_cfg_t *cfg;

	ike_cfg = ike_cfg_create(&ike);
	ike_cfg->add_proposal(ike_cfg, proposal_create_default(PROTO_IKE));
	cfg = peer_cfg_create(name, ike_cfg, &peer);
	cfg->add_child_cfg(cfg, child_cfg->get_ref(child_cfg));
	return cfg;
}

/*
 * The two nodes
 */
static rec_link_t *rlink;
static sasync_role_t *active_role, *standby_role;
static sasync_counters_t *active_ctr, *standby_ctr;
static sasync_keystore_t *active_keys, *standby_keys;
static sasync_capture_t *capture;
static sasync_outbound_t *outbound;
static sasync_apply_t *apply;
static host_t *active_node;

/**
 * An IKE SA of the active node, outside the manager, and the peer's keymat
 * of the same SA
 */
typedef struct {
	ike_sa_t *sa;
	keymat_t *peer;
} pair_t;

/** pair_t*, all pairs created, destroyed in teardown */
static array_t *pairs;

static void setup()
{
	child_cfg_create_t child = {
		.mode = MODE_TUNNEL,
	};

	ck_assert(!charon->ike_sa_manager);
	cfg_hidden = FALSE;
	charon->ike_sa_manager = ike_sa_manager_create();
	ck_assert(charon->ike_sa_manager);
	charon->child_sa_manager = child_sa_manager_create();
	ck_assert(charon->kernel->add_ipsec_interface(charon->kernel,
												  test_ipsec_create));

	child_cfg = child_cfg_create("net", &child);
	child_cfg->add_proposal(child_cfg,
						proposal_create_from_string(PROTO_ESP, ESP_PROPOSAL));
	/* what child_install() negotiates, the standby narrows records to */
	child_cfg->add_traffic_selector(child_cfg, TRUE,
			traffic_selector_create_from_cidr("10.1.0.0/16", 0, 0, 65535));
	child_cfg->add_traffic_selector(child_cfg, FALSE,
			traffic_selector_create_from_cidr("10.2.0.0/16", 0, 0, 65535));
	cfg_v2 = create_peer_cfg("site", IKEV2);
	cfg_v1 = create_peer_cfg("site-v1", IKEV1);
	charon->backends->add_backend(charon->backends, &backend);

	rlink = rec_link_create();
	active_role = sasync_role_create(SASYNC_ROLE_PRIMARY);
	standby_role = sasync_role_create(SASYNC_ROLE_STANDBY);
	active_ctr = sasync_counters_create();
	standby_ctr = sasync_counters_create();
	active_keys = sasync_keystore_create();
	standby_keys = sasync_keystore_create();
	capture = sasync_capture_create(&rlink->public, active_role, active_ctr,
									active_keys);
	charon->bus->add_listener(charon->bus, &capture->listener);
	outbound = sasync_outbound_create(standby_role, standby_ctr,
									  standby_keys);
	charon->bus->add_listener(charon->bus, &outbound->bus);
	apply = sasync_apply_create(standby_role, standby_ctr, outbound,
								standby_keys);
	active_node = host_create_from_string("198.51.100.1", 4510);
	pairs = array_create(0, 0);
}

static void pair_destroy(pair_t *pair)
{
	if (pair->sa)
	{
		pair->sa->destroy(pair->sa);
	}
	pair->peer->destroy(pair->peer);
	free(pair);
}

/**
 * Destroy every SA in the manager without a delete exchange
 */
static void destroy_restored()
{
	enumerator_t *enumerator;
	linked_list_t *ids;
	ike_sa_id_t *id;
	ike_sa_t *ike_sa;

	ids = linked_list_create();
	enumerator = charon->ike_sa_manager->create_enumerator(
											charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		id = ike_sa->get_id(ike_sa);
		ids->insert_last(ids, id->clone(id));
	}
	enumerator->destroy(enumerator);
	while (ids->remove_first(ids, (void**)&id) == SUCCESS)
	{
		ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
		if (ike_sa)
		{
			charon->ike_sa_manager->checkin_and_destroy(
											charon->ike_sa_manager, ike_sa);
		}
		id->destroy(id);
	}
	ids->destroy(ids);
}

/**
 * Wait (a bounded time) until the processor ran what was queued: it runs
 * and queues no job but the scheduler's own (critical, it always runs while
 * there are threads, so no thread is ever idle then)
 */
static void processor_idle()
{
	job_priority_t prio;
	u_int busy, i;

	for (i = 0; i < 500; i++)
	{
		busy = 0;
		for (prio = JOB_PRIO_HIGH; prio < JOB_PRIO_MAX; prio++)
		{
			busy += lib->processor->get_working_threads(lib->processor, prio) +
					lib->processor->get_job_load(lib->processor, prio);
		}
		if (!busy)
		{
			return;
		}
		usleep(10000);
	}
}

static void teardown()
{
	charon->bus->set_sa(charon->bus, NULL);
	charon->bus->remove_listener(charon->bus, &capture->listener);
	array_destroy_function(pairs, (void*)pair_destroy, NULL);
	charon->bus->set_sa(charon->bus, NULL);

	/* retries of waiting records and jobs of established SAs; those a test
	 * started processor threads for may run now, and use the manager */
	lib->scheduler->flush(lib->scheduler);
	processor_idle();
	/* waits for a retry that runs, none runs after it */
	apply->destroy(apply);

	/* flush() would send a delete for established SAs, there is no sender */
	destroy_restored();
	charon->ike_sa_manager->flush(charon->ike_sa_manager);
	charon->ike_sa_manager->destroy(charon->ike_sa_manager);
	charon->ike_sa_manager = NULL;
	charon->child_sa_manager->destroy(charon->child_sa_manager);
	charon->child_sa_manager = NULL;
	lib->scheduler->flush(lib->scheduler);

	charon->bus->remove_listener(charon->bus, &outbound->bus);
	outbound->destroy(outbound);
	capture->destroy(capture);
	active_keys->destroy(active_keys);
	standby_keys->destroy(standby_keys);
	active_ctr->destroy(active_ctr);
	standby_ctr->destroy(standby_ctr);
	active_role->destroy(active_role);
	standby_role->destroy(standby_role);
	rlink->public.destroy(&rlink->public);
	active_node->destroy(active_node);

	charon->backends->remove_backend(charon->backends, &backend);
	cfg_v2->destroy(cfg_v2);
	cfg_v1->destroy(cfg_v1);
	child_cfg->destroy(child_cfg);
	charon->kernel->remove_ipsec_interface(charon->kernel, test_ipsec_create);
}

/*
 * Records
 */
static u_int rec_count()
{
	u_int count;

	rlink->mutex->lock(rlink->mutex);
	count = array_count(rlink->records);
	rlink->mutex->unlock(rlink->mutex);
	return count;
}

/**
 * Parse the record sent at the given index
 */
static sasync_msg_t *rec_get(u_int index)
{
	sasync_msg_t *msg;
	chunk_t *data;

	rlink->mutex->lock(rlink->mutex);
	ck_assert(array_get(rlink->records, index, &data));
	msg = sasync_msg_parse(*data);
	rlink->mutex->unlock(rlink->mutex);
	ck_assert(msg);
	return msg;
}

/**
 * Check that a record is about the given SA, by SPIs and role
 */
static bool rec_is_for(sasync_msg_t *msg, ike_sa_t *ike_sa)
{
	ike_sa_id_t *id = ike_sa->get_id(ike_sa);
	uint64_t spi_i, spi_r, initiator;

	return msg->get_int(msg, SASYNC_ATTR_IKE_SPI_I, &spi_i) &&
		   msg->get_int(msg, SASYNC_ATTR_IKE_SPI_R, &spi_r) &&
		   msg->get_int(msg, SASYNC_ATTR_IKE_INITIATOR, &initiator) &&
		   spi_i == id->get_initiator_spi(id) &&
		   spi_r == id->get_responder_spi(id) &&
		   initiator == id->is_initiator(id);
}

/**
 * Check the type and SA of a record and return it parsed
 */
static sasync_msg_t *rec_expect(u_int index, sasync_msg_type_t type,
								ike_sa_t *ike_sa)
{
	sasync_msg_t *msg = rec_get(index);

	ck_assert_msg(msg->get_type(msg) == type, "record %u is %N, not %N",
				  index, sasync_msg_type_names, msg->get_type(msg),
				  sasync_msg_type_names, type);
	ck_assert(rec_is_for(msg, ike_sa));
	return msg;
}

/**
 * Feed the records [from, to) to the standby, in that order
 */
static void apply_range(u_int from, u_int to)
{
	sasync_msg_t *msg;
	u_int i;

	for (i = from; i < to; i++)
	{
		msg = rec_get(i);
		apply->apply(apply, active_node, msg);
		msg->destroy(msg);
	}
}

static void apply_one(u_int index)
{
	apply_range(index, index + 1);
}

/*
 * IKE SAs of the active node
 */
static uint64_t random_spi(rng_t *rng)
{
	uint64_t spi = 0;

	while (!spi)
	{
		ck_assert(rng->get_bytes(rng, sizeof(spi), (void*)&spi));
	}
	return spi;
}

/**
 * A new IKE SA of the active node; as a rekeying SA it inherits what charon
 * gives it at creation (inherit_pre)
 */
static pair_t *pair_create(ike_version_t version, bool initiator,
						   pair_t *rekeyed)
{
	identification_t *me, *other;
	ike_sa_id_t *id;
	pair_t *pair;
	rng_t *rng;

	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ck_assert(rng);
	id = ike_sa_id_create(version == IKEV1 ? IKEV1_MAJOR_VERSION
										   : IKEV2_MAJOR_VERSION,
						  random_spi(rng), random_spi(rng), initiator);
	rng->destroy(rng);
	INIT(pair,
		.sa = ike_sa_create(id, initiator, version),
		.peer = keymat_create(version, !initiator),
	);
	id->destroy(id);
	ck_assert(pair->sa && pair->peer);
	array_insert(pairs, ARRAY_TAIL, pair);
	if (rekeyed)
	{
		pair->sa->inherit_pre(pair->sa, rekeyed->sa);
	}
	else
	{
		pair->sa->set_peer_cfg(pair->sa, version == IKEV1 ? cfg_v1 : cfg_v2);
		pair->sa->set_my_host(pair->sa,
							  host_create_from_string("192.0.2.1", 500));
		pair->sa->set_other_host(pair->sa,
							  host_create_from_string("203.0.113.5", 500));
		me = identification_create_from_string("gw.example.org");
		other = identification_create_from_string("client@example.org");
		pair->sa->set_my_id(pair->sa, me);
		pair->sa->set_other_id(pair->sa, other);
	}
	return pair;
}

/**
 * Derive the keys of a pair from a real key exchange, as ike_init (IKEv2)
 * or the IKEv1 phase 1 tasks do, with the given SA as the thread's SA: the
 * cluster's keymat fires ike_derived_keys, then the bus gets ike_keys.
 * A rekeying SA derives with the old SA's SK_d and PRF (IKEv2).
 */
static void pair_derive(pair_t *pair, char *proposal_str, pair_t *rekeyed,
						ike_sa_t *thread_sa)
{
	ike_sa_t *sa = pair->sa;
	ike_sa_id_t *id = sa->get_id(sa);
	key_exchange_t *ke, *peer_ke;
	chunk_t pub, peer_pub, ni, nr, skd = chunk_empty, peer_skd = chunk_empty;
	pseudo_random_function_t prf = PRF_UNDEFINED, peer_prf = PRF_UNDEFINED;
	shared_key_t *psk = NULL;
	proposal_t *proposal;
	uint16_t method;
	rng_t *rng;

	proposal = proposal_create_from_string(PROTO_IKE, proposal_str);
	ck_assert(proposal);
	ck_assert(proposal->get_algorithm(proposal, KEY_EXCHANGE_METHOD, &method,
									  NULL));
	sa->set_proposal(sa, proposal);
	ke = lib->crypto->create_ke(lib->crypto, method);
	peer_ke = lib->crypto->create_ke(lib->crypto, method);
	ck_assert_msg(ke && peer_ke, "no %N", key_exchange_method_names, method);
	ck_assert(ke->get_public_key(ke, &pub));
	ck_assert(peer_ke->get_public_key(peer_ke, &peer_pub));
	ck_assert(ke->set_public_key(ke, peer_pub));
	ck_assert(peer_ke->set_public_key(peer_ke, pub));
	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ck_assert(rng->allocate_bytes(rng, 32, &ni));
	ck_assert(rng->allocate_bytes(rng, 32, &nr));
	rng->destroy(rng);

	charon->bus->set_sa(charon->bus, thread_sa);
	if (sa->get_version(sa) == IKEV2)
	{
		if (rekeyed)
		{
			keymat_v2_t *old = (keymat_v2_t*)rekeyed->sa->get_keymat(rekeyed->sa);
			keymat_v2_t *old_peer = (keymat_v2_t*)rekeyed->peer;

			prf = old->get_skd(old, &skd);
			peer_prf = old_peer->get_skd(old_peer, &peer_skd);
			ck_assert(prf != PRF_UNDEFINED && skd.len);
			ck_assert(chunk_equals(skd, peer_skd));
		}
		ck_assert(((keymat_v2_t*)sa->get_keymat(sa))->derive_ike_keys(
					(keymat_v2_t*)sa->get_keymat(sa), proposal, ke, ni, nr, id,
					prf, skd));
		charon->bus->ike_keys(charon->bus, sa, ke, chunk_empty, ni, nr,
							  rekeyed ? rekeyed->sa : NULL, NULL, AUTH_NONE);
		/* the peer's own derivation, not an event of the cluster */
		charon->bus->set_sa(charon->bus, NULL);
		ck_assert(((keymat_v2_t*)pair->peer)->derive_ike_keys(
					(keymat_v2_t*)pair->peer, proposal, peer_ke, ni, nr, id,
					peer_prf, peer_skd));
	}
	else
	{
		psk = shared_key_create(SHARED_IKE,
							chunk_clone(chunk_from_str("ikev1 test psk")));
		ck_assert(((keymat_v1_t*)sa->get_keymat(sa))->derive_ike_keys(
					(keymat_v1_t*)sa->get_keymat(sa), proposal, ke, peer_pub,
					ni, nr, id, AUTH_PSK, psk));
		charon->bus->ike_keys(charon->bus, sa, ke, peer_pub, ni, nr, NULL,
							  psk, AUTH_PSK);
		charon->bus->set_sa(charon->bus, NULL);
		ck_assert(((keymat_v1_t*)pair->peer)->derive_ike_keys(
					(keymat_v1_t*)pair->peer, proposal, peer_ke, pub,
					ni, nr, id, AUTH_PSK, psk));
		psk->destroy(psk);
	}
	charon->bus->set_sa(charon->bus, NULL);
	proposal->destroy(proposal);
	ke->destroy(ke);
	peer_ke->destroy(peer_ke);
	chunk_free(&pub);
	chunk_free(&peer_pub);
	chunk_free(&ni);
	chunk_free(&nr);
}

/**
 * Install a CHILD SA on an IKE SA of the active node as child_create does:
 * inbound and outbound SA, policies, child_derived_keys, CHILD_INSTALLED,
 * with the IKE SA as the thread's SA
 */
/**
 * How a CHILD SA of the active node differs from what child_install()
 * makes: a record a standby must refuse, or a %unique config
 */
typedef struct {
	/** child config, NULL for child_cfg */
	child_cfg_t *cfg;
	/** selectors, NULL for 10.1.0.0/16 === 10.2.0.0/16 */
	char *local_ts;
	char *remote_ts;
	/** length of its keys, 0 for the 20 bytes of aes128gcm16 */
	size_t key_len;
	/** interface ids, 0 for %unique (if the config says so) or none */
	uint32_t if_id;
} child_opts_t;

static child_sa_t *child_install_opts(ike_sa_t *ike_sa, uint32_t spi_in,
									  uint32_t spi_out, child_opts_t *opts)
{
	child_sa_create_t data = {
		.if_id_in = opts->if_id,
		.if_id_out = opts->if_id,
	};
	linked_list_t *my_ts, *other_ts;
	chunk_t encr_i, encr_r, none = chunk_empty;
	child_sa_t *child_sa;
	proposal_t *proposal;
	rng_t *rng;
	bool initiator = TRUE;

	charon->bus->set_sa(charon->bus, ike_sa);
	child_sa = child_sa_create(ike_sa->get_my_host(ike_sa),
							   ike_sa->get_other_host(ike_sa),
							   opts->cfg ?: child_cfg, &data);
	proposal = proposal_create_from_string(PROTO_ESP, ESP_PROPOSAL);
	child_sa->set_proposal(child_sa, proposal);
	proposal->destroy(proposal);
	child_sa->set_protocol(child_sa, PROTO_ESP);
	child_sa->set_mode(child_sa, MODE_TUNNEL);
	my_ts = linked_list_create_with_items(
			traffic_selector_create_from_cidr(opts->local_ts ?: "10.1.0.0/16",
											  0, 0, 65535), NULL);
	other_ts = linked_list_create_with_items(
			traffic_selector_create_from_cidr(opts->remote_ts ?: "10.2.0.0/16",
											  0, 0, 65535), NULL);
	child_sa->set_policies(child_sa, my_ts, other_ts);
	my_ts->destroy_offset(my_ts, offsetof(traffic_selector_t, destroy));
	other_ts->destroy_offset(other_ts, offsetof(traffic_selector_t, destroy));
	child_sa->set_state(child_sa, CHILD_INSTALLING);

	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ck_assert(rng->allocate_bytes(rng, opts->key_len ?: 20, &encr_i));
	ck_assert(rng->allocate_bytes(rng, opts->key_len ?: 20, &encr_r));
	rng->destroy(rng);
	ck_assert(child_sa->install(child_sa, encr_r, none, htonl(spi_in), 0,
								initiator, TRUE, FALSE) == SUCCESS);
	ck_assert(child_sa->install(child_sa, encr_i, none, htonl(spi_out), 0,
								initiator, FALSE, FALSE) == SUCCESS);
	ck_assert(child_sa->install_policies(child_sa) == SUCCESS);
	charon->bus->child_derived_keys(charon->bus, child_sa, initiator, encr_i,
									encr_r, none, none);
	chunk_clear(&encr_i);
	chunk_clear(&encr_r);
	ike_sa->add_child_sa(ike_sa, child_sa);
	child_sa->set_state(child_sa, CHILD_INSTALLED);
	charon->bus->set_sa(charon->bus, NULL);
	return child_sa;
}

static child_sa_t *child_install(ike_sa_t *ike_sa, uint32_t spi_in,
								 uint32_t spi_out)
{
	return child_install_opts(ike_sa, spi_in, spi_out, &(child_opts_t){});
}

/**
 * The active node's SA is established: IKE_AUTH (IKEv2) or Main Mode
 * (IKEv1) completed
 */
static void establish(pair_t *pair)
{
	charon->bus->set_sa(charon->bus, pair->sa);
	pair->sa->set_state(pair->sa, IKE_ESTABLISHED);
	charon->bus->set_sa(charon->bus, NULL);
}

/**
 * An IKEv2 SA of the active node, established with one CHILD SA
 */
static pair_t *pair_established(uint32_t spi_in, uint32_t spi_out)
{
	pair_t *pair;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_install(pair->sa, spi_in, spi_out);
	establish(pair);
	return pair;
}

/**
 * The active node completes an IKEv2 rekey of old by new, in the order of
 * charon's ike_rekey establish_new(): new established, inherit_post(), then
 * the ike_rekey event, with old as the thread's SA
 */
static void establish_rekeyed(pair_t *old, pair_t *new)
{
	charon->bus->set_sa(charon->bus, old->sa);
	new->sa->set_state(new->sa, IKE_ESTABLISHED);
	new->sa->inherit_post(new->sa, old->sa);
	charon->bus->ike_rekey(charon->bus, old->sa, new->sa);
	charon->bus->set_sa(charon->bus, NULL);
}

/**
 * The active node's SA goes (delete exchange, then destroyed)
 */
static void pair_delete(pair_t *pair)
{
	charon->bus->set_sa(charon->bus, pair->sa);
	pair->sa->set_state(pair->sa, IKE_DELETING);
	pair->sa->destroy(pair->sa);
	pair->sa = NULL;
	charon->bus->set_sa(charon->bus, NULL);
}

/*
 * Checks on the standby
 */

/**
 * Check out the restored SA with the id of an SA of the active node
 */
static ike_sa_t *restored(ike_sa_t *orig)
{
	return charon->ike_sa_manager->checkout(charon->ike_sa_manager,
											orig->get_id(orig));
}

/**
 * State of the restored copy of an SA, IKE_DESTROYING if there is none
 */
static ike_sa_state_t restored_state(pair_t *pair)
{
	ike_sa_state_t state = IKE_DESTROYING;
	ike_sa_t *copy;

	copy = restored(pair->sa);
	if (copy)
	{
		state = copy->get_state(copy);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	}
	return state;
}

/**
 * Whether the manager holds an SA with these SPIs, whatever the role flag
 */
static bool manager_has(ike_sa_id_t *id)
{
	ike_sa_id_t *lookup = id->clone(id);
	ike_sa_t *ike_sa;
	bool found = FALSE;
	int i;

	for (i = 0; i < 2; i++)
	{
		ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager,
												  lookup);
		if (ike_sa)
		{
			charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
			found = TRUE;
		}
		lookup->switch_initiator(lookup);
	}
	lookup->destroy(lookup);
	return found;
}

/**
 * Encrypt with one AEAD, decrypt with the other; a modified ciphertext
 * fails (if the AEAD has an ICV)
 */
static void check_aead(aead_t *enc, aead_t *dec)
{
	chunk_t plain, assoc, iv, encrypted, ciphertext, decrypted;

	ck_assert(enc && dec);
	ck_assert_int_eq(enc->get_iv_size(enc), dec->get_iv_size(dec));
	plain = chunk_alloca(64);
	memset(plain.ptr, 0x5a, plain.len);
	assoc = chunk_from_chars(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08);
	/* IKEv1's encrypt-only AEAD reports no IV size, it wants a block */
	iv = chunk_alloca(enc->get_iv_size(enc) ?: enc->get_block_size(enc));
	memset(iv.ptr, 0x11, iv.len);
	ck_assert(enc->encrypt(enc, plain, assoc, iv, &encrypted));
	ciphertext = encrypted;
	if (encrypted.len == iv.len + plain.len + enc->get_icv_size(enc))
	{	/* charon's generic AEAD (CBC and HMAC) puts the IV in front */
		ck_assert(chunk_equals(chunk_create(encrypted.ptr, iv.len), iv));
		ciphertext = chunk_skip(encrypted, iv.len);
	}
	ck_assert_int_eq(ciphertext.len, plain.len + enc->get_icv_size(enc));
	ck_assert(!chunk_equals(chunk_create(ciphertext.ptr, plain.len), plain));
	ck_assert(dec->decrypt(dec, ciphertext, assoc, iv, &decrypted));
	ck_assert(chunk_equals(decrypted, plain));
	chunk_free(&decrypted);
	if (dec->get_icv_size(dec))
	{
		ciphertext.ptr[0] ^= 0x80;
		ck_assert(!dec->decrypt(dec, ciphertext, assoc, iv, &decrypted));
	}
	chunk_free(&encrypted);
}

/**
 * The restored SA's IKE keys are those of the original and match the peer's
 */
static void check_keys(ike_sa_t *copy, pair_t *orig)
{
	keymat_t *mine = copy->get_keymat(copy);
	keymat_t *theirs = orig->sa->get_keymat(orig->sa);

	if (copy->get_version(copy) == IKEV2)
	{
		chunk_t skd_copy, skd_orig;
		pseudo_random_function_t prf_copy, prf_orig;

		prf_copy = ((keymat_v2_t*)mine)->get_skd((keymat_v2_t*)mine,
												 &skd_copy);
		prf_orig = ((keymat_v2_t*)theirs)->get_skd((keymat_v2_t*)theirs,
												   &skd_orig);
		ck_assert_int_eq(prf_copy, prf_orig);
		ck_assert(skd_copy.len);
		ck_assert_msg(chunk_equals(skd_copy, skd_orig),
					  "restored SK_d differs from the original");
	}
	else
	{	/* phase 1 IV: derived from both public values */
		chunk_t iv_copy, iv_orig;

		ck_assert(((keymat_v1_t*)mine)->get_iv((keymat_v1_t*)mine, 0,
											   &iv_copy));
		ck_assert(((keymat_v1_t*)theirs)->get_iv((keymat_v1_t*)theirs, 0,
												 &iv_orig));
		ck_assert(iv_orig.len);
		ck_assert_msg(chunk_equals(iv_copy, iv_orig),
					  "restored phase 1 IV differs from the original");
	}
	/* the original's outbound messages decrypt on the copy... */
	check_aead(theirs->get_aead(theirs, FALSE), mine->get_aead(mine, FALSE));
	/* ...the copy's reach the peer, the peer's reach the copy */
	check_aead(mine->get_aead(mine, FALSE),
			   orig->peer->get_aead(orig->peer, TRUE));
	check_aead(orig->peer->get_aead(orig->peer, FALSE),
			   mine->get_aead(mine, TRUE));
}

static void check_no_apply_failure()
{
	sasync_counter_t rejects[] = {
		SASYNC_CTR_REJECT_OWN_SA, SASYNC_CTR_REJECT_TS,
		SASYNC_CTR_REJECT_HOSTS, SASYNC_CTR_REJECT_KEYS,
		SASYNC_CTR_WAIT_DROPPED,
	};
	int i;

	for (i = 0; i < countof(rejects); i++)
	{
		ck_assert_msg(standby_ctr->get(standby_ctr, rejects[i]) == 0,
					  "%N: %"PRIu64, sasync_counter_names, rejects[i],
					  standby_ctr->get(standby_ctr, rejects[i]));
	}
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_APPLY_FAILED), 0);
	ck_assert_int_eq(standby_ctr->get(standby_ctr,
									  SASYNC_CTR_SYNC_RX_LEN_BAD), 0);
}

/*
 * Tests
 */

/**
 * An IKE SA with a CHILD SA, established, restored on the standby, then
 * deleted there
 */
START_TEST(test_establish_restore_delete)
{
	pair_t *pair;
	child_sa_t *child_sa;
	sasync_msg_t *msg;
	ike_sa_t *copy;
	uint64_t value;

	pair = pair_create(IKEV2, _i, NULL);
	pair_derive(pair, _i ? IKE_PROPOSAL_CBC : IKE_PROPOSAL_AEAD, NULL,
				pair->sa);
	/* a CHILD SA installed before the IKE SA is established waits */
	child_sa = child_install(pair->sa, 0xc2000001, 0xc3000001);
	ck_assert_int_eq(rec_count(), 0);
	establish(pair);
	ck_assert_int_eq(rec_count(), 2);
	msg = rec_expect(0, SASYNC_MSG_IKE_ADD, pair->sa);
	ck_assert(!msg->get_int(msg, SASYNC_ATTR_OLD_SPI_I, &value));
	msg->destroy(msg);
	msg = rec_expect(1, SASYNC_MSG_CHILD_ADD, pair->sa);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_SPI_IN, &value));
	ck_assert_int_eq(value, child_sa->get_spi(child_sa, TRUE));
	msg->destroy(msg);

	apply_range(0, 2);
	check_no_apply_failure();
	ck_assert_int_eq(apply->get_waiting(apply), 0);
	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_state(copy), IKE_PASSIVE);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP,
								 child_sa->get_spi(child_sa, TRUE), TRUE));
	ck_assert(copy->get_my_id(copy)->equals(copy->get_my_id(copy),
											pair->sa->get_my_id(pair->sa)));
	ck_assert(copy->get_other_host(copy)->equals(copy->get_other_host(copy),
								pair->sa->get_other_host(pair->sa)));
	check_keys(copy, pair);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	ck_assert_int_eq(standby_keys->get_count(standby_keys, FALSE), 1);
	ck_assert_int_eq(standby_keys->get_count(standby_keys, TRUE), 1);

	/* the active node deletes it: so does the standby */
	pair_delete(pair);
	ck_assert_int_eq(rec_count(), 3);
	msg = rec_get(2);
	ck_assert_int_eq(msg->get_type(msg), SASYNC_MSG_IKE_DELETE);
	msg->destroy(msg);
	apply_one(2);
	check_no_apply_failure();
	ck_assert_int_eq(charon->ike_sa_manager->get_count(charon->ike_sa_manager),
					 0);
	ck_assert_int_eq(active_keys->get_count(active_keys, FALSE), 0);
}
END_TEST

/**
 * IKEv2 rekey of an SA with a CHILD SA. _i selects:
 *   bit 0: the active node was the original SA's initiator
 *   bit 1: the cluster initiates the rekey (else the peer does)
 *   bit 2: the thread's SA while the new SA derives its keys is the new SA
 *          (else the old one: as ike_rekey's process_i when the cluster
 *          initiated, and as for any task running on the old SA)
 *   bit 3: AES-CBC/HMAC and MODP instead of AES-GCM and Curve25519
 */
START_TEST(test_rekey)
{
	bool old_initiator = _i & 1, cluster_rekeys = _i & 2;
	bool thread_new = _i & 4;
	char *proposal = (_i & 8) ? IKE_PROPOSAL_CBC : IKE_PROPOSAL_AEAD;
	pair_t *old, *new;
	child_sa_t *child_sa;
	sasync_msg_t *msg;
	chunk_t skd_old, skd_new, attr;
	uint64_t value;
	ike_sa_id_t *old_id, *new_id;
	ike_sa_t *copy;
	u_int count, spi_in;

	old = pair_create(IKEV2, old_initiator, NULL);
	pair_derive(old, proposal, NULL, old->sa);
	child_sa = child_install(old->sa, 0xc2000002, 0xc3000002);
	spi_in = child_sa->get_spi(child_sa, TRUE);
	establish(old);
	ck_assert_int_eq(rec_count(), 2);

	/* the new SA: the rekey's initiator is its initiator */
	new = pair_create(IKEV2, cluster_rekeys, old);
	pair_derive(new, proposal, old, thread_new ? new->sa : old->sa);
	charon->bus->set_sa(charon->bus, old->sa);
	new->sa->set_state(new->sa, IKE_ESTABLISHED);
	/* not sent before charon moved everything over */
	ck_assert_int_eq(rec_count(), 2);
	new->sa->inherit_post(new->sa, old->sa);
	charon->bus->ike_rekey(charon->bus, old->sa, new->sa);
	charon->bus->set_sa(charon->bus, NULL);
	ck_assert_int_eq(rec_count(), 3);

	msg = rec_expect(2, SASYNC_MSG_IKE_ADD, new->sa);
	old_id = old->sa->get_id(old->sa);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_OLD_SPI_I, &value));
	ck_assert(value == old_id->get_initiator_spi(old_id));
	ck_assert(msg->get_int(msg, SASYNC_ATTR_OLD_SPI_R, &value));
	ck_assert(value == old_id->get_responder_spi(old_id));
	ck_assert(msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &value));
	ck_assert_int_eq(value, PRF_HMAC_SHA2_256);
	((keymat_v2_t*)old->sa->get_keymat(old->sa))->get_skd(
						(keymat_v2_t*)old->sa->get_keymat(old->sa), &skd_old);
	((keymat_v2_t*)new->sa->get_keymat(new->sa))->get_skd(
						(keymat_v2_t*)new->sa->get_keymat(new->sa), &skd_new);
	ck_assert(!chunk_equals(skd_old, skd_new));
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_OLD_SKD, &attr));
	ck_assert_msg(!chunk_equals(attr, skd_new),
				  "IKE_ADD of the rekeyed SA carries its own SK_d as old SK_d");
	ck_assert_msg(chunk_equals(attr, skd_old),
				  "IKE_ADD of the rekeyed SA lacks the old SA's SK_d");
	msg->destroy(msg);

	/* the old SA goes; the standby dropped it already */
	charon->bus->set_sa(charon->bus, old->sa);
	old->sa->set_state(old->sa, IKE_REKEYED);
	charon->bus->set_sa(charon->bus, NULL);
	old_id = old_id->clone(old_id);
	pair_delete(old);
	count = rec_count();
	for (; count > 3; count--)
	{
		msg = rec_get(count - 1);
		ck_assert_msg(msg->get_type(msg) != SASYNC_MSG_IKE_DELETE &&
					  msg->get_type(msg) != SASYNC_MSG_CHILD_DELETE,
					  "%N sent for the replaced SA", sasync_msg_type_names,
					  msg->get_type(msg));
		msg->destroy(msg);
	}

	/* the standby restores the old SA, then the new one in its place */
	apply_range(0, rec_count());
	check_no_apply_failure();
	ck_assert(!manager_has(old_id));
	old_id->destroy(old_id);
	ck_assert_int_eq(charon->ike_sa_manager->get_count(charon->ike_sa_manager),
					 1);
	copy = restored(new->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_state(copy), IKE_PASSIVE);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP, spi_in, TRUE));
	check_keys(copy, new);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);

	/* the new SA is the one the active node keeps talking about */
	new_id = new->sa->get_id(new->sa);
	ck_assert(manager_has(new_id));
	pair_delete(new);
	apply_range(rec_count() - 1, rec_count());
	check_no_apply_failure();
	ck_assert_int_eq(charon->ike_sa_manager->get_count(charon->ike_sa_manager),
					 0);
}
END_TEST

/**
 * Two rekeys in a row: the second derives from the first new SA's SK_d
 */
START_TEST(test_rekey_twice)
{
	pair_t *sa1, *sa2, *sa3;
	ike_sa_t *copy;

	sa1 = pair_create(IKEV2, FALSE, NULL);
	pair_derive(sa1, IKE_PROPOSAL_AEAD, NULL, sa1->sa);
	child_install(sa1->sa, 0xc2000003, 0xc3000003);
	establish(sa1);

	sa2 = pair_create(IKEV2, TRUE, sa1);
	pair_derive(sa2, IKE_PROPOSAL_AEAD, sa1, sa1->sa);
	establish_rekeyed(sa1, sa2);
	pair_delete(sa1);

	sa3 = pair_create(IKEV2, TRUE, sa2);
	pair_derive(sa3, IKE_PROPOSAL_AEAD, sa2, sa2->sa);
	establish_rekeyed(sa2, sa3);
	pair_delete(sa2);

	apply_range(0, rec_count());
	check_no_apply_failure();
	ck_assert_int_eq(charon->ike_sa_manager->get_count(charon->ike_sa_manager),
					 1);
	copy = restored(sa3->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	check_keys(copy, sa3);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}
END_TEST

/**
 * A dialup client's SA with a virtual IP and an EAP identity keeps both
 * across an IKE rekey, on the active node's records and on the standby
 */
START_TEST(test_rekey_dialup)
{
	identification_t *eap;
	host_t *vip, *found;
	enumerator_t *enumerator;
	auth_cfg_t *auth;
	pair_t *old, *new;
	sasync_msg_t *msg;
	ike_sa_t *copy;
	int count;

	vip = host_create_from_string("10.3.0.7", 0);
	eap = identification_create_from_string("carol@eap.example.org");
	old = pair_create(IKEV2, FALSE, NULL);
	pair_derive(old, IKE_PROPOSAL_AEAD, NULL, old->sa);
	auth = auth_cfg_create();
	auth->add(auth, AUTH_RULE_EAP_IDENTITY, eap->clone(eap));
	old->sa->add_auth_cfg(old->sa, FALSE, auth);
	old->sa->add_virtual_ip(old->sa, FALSE, vip);
	child_install(old->sa, 0xc2000004, 0xc3000004);
	establish(old);

	new = pair_create(IKEV2, FALSE, old);
	pair_derive(new, IKE_PROPOSAL_AEAD, old, new->sa);
	establish_rekeyed(old, new);
	pair_delete(old);

	msg = rec_expect(2, SASYNC_MSG_IKE_ADD, new->sa);
	found = msg->get_host(msg, SASYNC_ATTR_REMOTE_VIP);
	ck_assert(found && found->ip_equals(found, vip));
	found->destroy(found);
	found = (host_t*)msg->get_id(msg, SASYNC_ATTR_REMOTE_EAP_ID);
	ck_assert(found);
	ck_assert(((identification_t*)found)->equals((identification_t*)found,
												 eap));
	((identification_t*)found)->destroy((identification_t*)found);
	msg->destroy(msg);

	apply_range(0, rec_count());
	check_no_apply_failure();
	copy = restored(new->sa);
	ck_assert(copy);
	ck_assert(copy->get_other_eap_id(copy)->equals(
									copy->get_other_eap_id(copy), eap));
	count = 0;
	enumerator = copy->create_virtual_ip_enumerator(copy, FALSE);
	while (enumerator->enumerate(enumerator, &found))
	{
		ck_assert(found->ip_equals(found, vip));
		count++;
	}
	enumerator->destroy(enumerator);
	ck_assert_int_eq(count, 1);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	check_keys(copy, new);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	vip->destroy(vip);
	eap->destroy(eap);
}
END_TEST

/**
 * IKEv1 reauthentication: a new ISAKMP SA, established on its own, takes
 * over the Quick Mode SAs of the old one (children_migrate, as charon's
 * adopt_children_job does as responder)
 */
START_TEST(test_ikev1_reauth)
{
	pair_t *old, *new;
	child_sa_t *child_sa;
	enumerator_t *enumerator;
	sasync_msg_t *msg;
	ike_sa_id_t *old_id;
	ike_sa_t *copy;
	uint64_t value;
	u_int spi_in, first;

	old = pair_create(IKEV1, FALSE, NULL);
	pair_derive(old, IKEV1_PROPOSAL, NULL, old->sa);
	establish(old);
	child_sa = child_install(old->sa, 0xc2000005, 0xc3000005);
	spi_in = child_sa->get_spi(child_sa, TRUE);
	ck_assert_int_eq(rec_count(), 2);

	new = pair_create(IKEV1, FALSE, NULL);
	pair_derive(new, IKEV1_PROPOSAL, NULL, new->sa);
	establish(new);
	ck_assert_int_eq(rec_count(), 3);
	first = rec_count();

	/* adopt_children_job: first for the old SA with the new one's id... */
	charon->bus->set_sa(charon->bus, old->sa);
	charon->bus->children_migrate(charon->bus, new->sa->get_id(new->sa),
								  new->sa->get_unique_id(new->sa));
	enumerator = old->sa->create_child_sa_enumerator(old->sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		old->sa->remove_child_sa(old->sa, enumerator);
		new->sa->add_child_sa(new->sa, child_sa);
	}
	enumerator->destroy(enumerator);
	/* ...then for the new one */
	charon->bus->set_sa(charon->bus, new->sa);
	charon->bus->children_migrate(charon->bus, NULL, 0);
	charon->bus->set_sa(charon->bus, NULL);
	ck_assert_int_eq(rec_count(), first + 1);
	msg = rec_expect(first, SASYNC_MSG_IKE_ADD, new->sa);
	old_id = old->sa->get_id(old->sa);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_OLD_SPI_I, &value));
	ck_assert(value == old_id->get_initiator_spi(old_id));
	msg->destroy(msg);
	old_id = old_id->clone(old_id);
	pair_delete(old);

	apply_range(0, rec_count());
	check_no_apply_failure();
	ck_assert(!manager_has(old_id));
	old_id->destroy(old_id);
	copy = restored(new->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_state(copy), IKE_PASSIVE);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP, spi_in, TRUE));
	check_keys(copy, new);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	ck_assert_int_eq(charon->ike_sa_manager->get_count(charon->ike_sa_manager),
					 1);
}
END_TEST

/**
 * A CHILD SA record that arrives before its IKE SA waits for it; a delete
 * meanwhile drops it. _i: 0 no delete (it is restored with its IKE SA),
 * 1 CHILD_DELETE, 2 IKE_DELETE, 3 both
 */
START_TEST(test_waiting_child_deleted)
{
	pair_t *pair;
	child_sa_t *child_sa;
	ike_sa_t *copy;
	sasync_msg_t *msg;
	u_int child_delete = 0, ike_delete = 0, i;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_sa = child_install(pair->sa, 0xc2000006, 0xc3000006);
	establish(pair);
	ck_assert_int_eq(rec_count(), 2);
	charon->bus->set_sa(charon->bus, pair->sa);
	child_sa->set_state(child_sa, CHILD_DELETING);
	charon->bus->set_sa(charon->bus, NULL);
	/* keep the IKE SA for the check below */
	for (i = 2; i < rec_count(); i++)
	{
		msg = rec_get(i);
		if (msg->get_type(msg) == SASYNC_MSG_CHILD_DELETE)
		{
			child_delete = i;
		}
		msg->destroy(msg);
	}
	ck_assert_msg(child_delete, "no CHILD_DELETE sent");
	charon->bus->set_sa(charon->bus, pair->sa);
	pair->sa->set_state(pair->sa, IKE_DELETING);
	charon->bus->set_sa(charon->bus, NULL);
	for (i = child_delete + 1; i < rec_count(); i++)
	{
		msg = rec_get(i);
		if (msg->get_type(msg) == SASYNC_MSG_IKE_DELETE)
		{
			ike_delete = i;
		}
		msg->destroy(msg);
	}
	ck_assert_msg(ike_delete, "no IKE_DELETE sent");

	apply_one(1);
	ck_assert_int_eq(apply->get_waiting(apply), 1);
	ck_assert(!restored(pair->sa));
	if (_i & 1)
	{
		apply_one(child_delete);
	}
	if (_i & 2)
	{
		apply_one(ike_delete);
	}
	ck_assert_int_eq(apply->get_waiting(apply), _i ? 0 : 1);
	apply_one(0);
	check_no_apply_failure();
	ck_assert_int_eq(apply->get_waiting(apply), 0);
	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_child_count(copy), _i ? 0 : 1);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}
END_TEST

/**
 * An IKEv2 SA of the active node with a CHILD SA (inbound SPI spi, outbound
 * spi + 0x01000000), established (records 0 IKE_ADD, 1 CHILD_ADD), then the
 * CHILD SA rekeyed; returns the index of its CHILD_REKEYED record
 */
static u_int rekeyed_child(uint32_t spi, pair_t **pair, child_sa_t **child_sa)
{
	sasync_msg_t *msg;
	u_int rekeyed;

	*pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(*pair, IKE_PROPOSAL_AEAD, NULL, (*pair)->sa);
	*child_sa = child_install((*pair)->sa, spi, spi + 0x01000000);
	establish(*pair);
	ck_assert_int_eq(rec_count(), 2);
	charon->bus->set_sa(charon->bus, (*pair)->sa);
	(*child_sa)->set_state(*child_sa, CHILD_REKEYED);
	charon->bus->set_sa(charon->bus, NULL);
	rekeyed = rec_count() - 1;
	msg = rec_expect(rekeyed, SASYNC_MSG_CHILD_REKEYED, (*pair)->sa);
	msg->destroy(msg);
	return rekeyed;
}

/**
 * State of the standby's copy of a CHILD SA of the active node, CHILD_CREATED
 * if it has none; fails if it has not the IKE SA
 */
static child_sa_state_t restored_child_state(pair_t *pair, child_sa_t *child_sa)
{
	child_sa_state_t state = CHILD_CREATED;
	child_sa_t *copy_child;
	ike_sa_t *copy;

	copy = restored(pair->sa);
	ck_assert(copy);
	copy_child = copy->get_child_sa(copy, PROTO_ESP,
									child_sa->get_spi(child_sa, TRUE), TRUE);
	if (copy_child)
	{
		state = copy_child->get_state(copy_child);
	}
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	return state;
}

/**
 * A node that rejoins gets the records its partner queued while it was
 * away before the bulk resync, e.g. CHILD_REKEYED for a CHILD SA it never
 * had: not a failure, and nothing changes. One it holds is marked rekeyed.
 */
START_TEST(test_rekeyed_unknown_child)
{
	pair_t *pair;
	child_sa_t *child_sa;
	u_int rekeyed;

	rekeyed = rekeyed_child(0xc2000007, &pair, &child_sa);
	/* the IKE SA only, then the CHILD SA's rekey */
	apply_one(0);
	apply_one(rekeyed);
	check_no_apply_failure();
	ck_assert_int_eq(restored_child_state(pair, child_sa), CHILD_CREATED);

	/* with the CHILD SA it is marked */
	apply_one(1);
	apply_one(rekeyed);
	check_no_apply_failure();
	ck_assert_int_eq(restored_child_state(pair, child_sa), CHILD_REKEYED);
}
END_TEST

/**
 * Records about an IKE SA whose IKE_ADD waits for its connection (a node
 * that starts may get records before swanctl loaded its connections) wait
 * behind it, and are applied in order once the connection is there
 */
START_TEST(test_waiting_for_connection)
{
	pair_t *pair;
	child_sa_t *child_sa;
	child_sa_state_t state = CHILD_CREATED;
	ike_sa_t *copy;
	u_int rekeyed, i;

	rekeyed = rekeyed_child(0xc2000008, &pair, &child_sa);
	cfg_hidden = TRUE;
	apply_one(0);
	apply_one(1);
	apply_one(rekeyed);
	check_no_apply_failure();
	ck_assert(!restored(pair->sa));
	ck_assert_int_eq(apply->get_waiting(apply), 1);

	/* the retry job runs on the processor's threads */
	if (!lib->processor->get_total_threads(lib->processor))
	{
		lib->processor->set_threads(lib->processor, 2);
	}
	cfg_hidden = FALSE;
	for (i = 0; i < 100 && state != CHILD_REKEYED; i++)
	{
		usleep(50000);
		copy = restored(pair->sa);
		if (copy)
		{
			charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
			state = restored_child_state(pair, child_sa);
		}
	}
	ck_assert_int_eq(state, CHILD_REKEYED);
	check_no_apply_failure();
	ck_assert_int_eq(apply->get_waiting(apply), 0);
}
END_TEST

/**
 * A record of the active node about pair's IKE SA, of the given type,
 * naming a CHILD SA by its inbound SPI (0: none)
 */
static sasync_msg_t *msg_for(pair_t *pair, sasync_msg_type_t type,
							 uint32_t spi)
{
	ike_sa_id_t *id = pair->sa->get_id(pair->sa);
	sasync_msg_t *msg;

	msg = sasync_msg_create(type);
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_I, id->get_initiator_spi(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_R, id->get_responder_spi(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_INITIATOR, id->is_initiator(id));
	msg->add_int(msg, SASYNC_ATTR_IKE_VERSION, IKEV2);
	if (spi)
	{
		msg->add_int(msg, SASYNC_ATTR_PROTOCOL, PROTO_ESP);
		msg->add_int(msg, SASYNC_ATTR_SPI_IN, spi);
	}
	return msg;
}

static void apply_msg(sasync_msg_t *msg)
{
	apply->apply(apply, active_node, msg);
	msg->destroy(msg);
}

/**
 * The CHILD SA the standby holds as pending for the copy of pair's IKE SA
 * (0: none)
 */
static uint32_t pending_spi(pair_t *pair)
{
	sasync_ike_keys_t *keys;
	uint32_t spi = 0;
	ike_sa_t *copy;

	copy = restored(pair->sa);
	ck_assert(copy);
	standby_keys->lock(standby_keys);
	keys = standby_keys->get_ike(standby_keys, copy->get_unique_id(copy),
								 FALSE);
	if (keys)
	{
		spi = keys->pending_spi;
	}
	standby_keys->unlock(standby_keys);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	return spi;
}

/**
 * Whether the standby holds pair's IKE SA and in it the CHILD SA of spi
 */
static bool child_held(pair_t *pair, uint32_t spi)
{
	ike_sa_t *copy;
	bool held;

	copy = restored(pair->sa);
	if (!copy)
	{
		return FALSE;
	}
	held = copy->get_child_sa(copy, PROTO_ESP, spi, TRUE) != NULL;
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	return held;
}

/**
 * A CHILD SA the active node proposed (CHILD_PENDING) and then established
 * (CHILD_ADD) is not pending on the standby, whatever order the records are
 * applied in: a node that starts gets them before its connections are
 * loaded, the CHILD_ADD waits for the IKE SA and the CHILD_PENDING behind
 * the IKE_ADD, and the IKE_ADD releases the CHILD_ADD first. Left pending,
 * a promotion deleted the established CHILD SA at the peer (churn soak).
 * _i: 0 in order and the connection there, 1 the node starts without it
 */
START_TEST(test_pending_then_added)
{
	pair_t *pair;
	child_sa_t *child_sa;
	uint32_t spi;
	u_int i;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_sa = child_install(pair->sa, 0xc2000009, 0xc3000009);
	spi = child_sa->get_spi(child_sa, TRUE);
	establish(pair);
	ck_assert_int_eq(rec_count(), 2);

	cfg_hidden = _i;
	apply_one(0);
	apply_msg(msg_for(pair, SASYNC_MSG_CHILD_PENDING, spi));
	apply_one(1);
	check_no_apply_failure();
	if (_i)
	{
		ck_assert(!restored(pair->sa));
		if (!lib->processor->get_total_threads(lib->processor))
		{
			lib->processor->set_threads(lib->processor, 2);
		}
		cfg_hidden = FALSE;
		for (i = 0; i < 100 && !child_held(pair, spi); i++)
		{
			usleep(50000);
		}
		/* the retry applies what waited behind the IKE_ADD after it */
		usleep(100000);
		check_no_apply_failure();
	}
	ck_assert_int_eq(restored_child_state(pair, child_sa), CHILD_INSTALLED);
	ck_assert_int_eq(pending_spi(pair), 0);
	/* a CHILD SA proposed and not (yet) held stays pending */
	apply_msg(msg_for(pair, SASYNC_MSG_CHILD_PENDING, htonl(0xc200000a)));
	ck_assert_int_eq(pending_spi(pair), htonl(0xc200000a));
}
END_TEST

/**
 * A full resync destroys the CHILD SAs it does not name, whatever their
 * state: a CHILD SA a rekey left DELETED just before the node was demoted
 * waits for a delayed delete that charon refuses on the now passive IKE SA,
 * and stayed forever (churn soak: a stale CHILD SA after the next
 * promotion); the ones it names stay
 */
START_TEST(test_resync_sweeps_deleted)
{
	pair_t *pair;
	child_sa_t *kept, *gone, *copy_child;
	ike_sa_t *copy;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	kept = child_install(pair->sa, 0xc200000b, 0xc300000b);
	gone = child_install(pair->sa, 0xc200000c, 0xc300000c);
	establish(pair);
	ck_assert_int_eq(rec_count(), 3);
	apply_range(0, 3);
	check_no_apply_failure();

	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_child_count(copy), 2);
	copy_child = copy->get_child_sa(copy, PROTO_ESP,
									gone->get_spi(gone, TRUE), TRUE);
	ck_assert(copy_child);
	copy_child->set_state(copy_child, CHILD_DELETED);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);

	/* the resync names the IKE SA and the CHILD SA kept */
	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_START));
	apply_one(0);
	apply_one(1);
	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	check_no_apply_failure();
	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP,
								 kept->get_spi(kept, TRUE), TRUE));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_RESYNC_REMOVED),
					 1);
}
END_TEST

/**
 * Records of a type a recording link got, for one IKE SA or, with NULL,
 * for any
 */
static u_int rec_count_of(rec_link_t *link, sasync_msg_type_t type,
						  ike_sa_t *ike_sa)
{
	sasync_msg_t *msg;
	chunk_t *data;
	u_int i, count = 0;

	link->mutex->lock(link->mutex);
	for (i = 0; array_get(link->records, i, &data); i++)
	{
		msg = sasync_msg_parse(*data);
		ck_assert(msg);
		if (msg->get_type(msg) == type && (!ike_sa || rec_is_for(msg, ike_sa)))
		{
			count++;
		}
		msg->destroy(msg);
	}
	link->mutex->unlock(link->mutex);
	return count;
}

/**
 * A capture of the standby's copies as the node that holds them becomes
 * primary, before its promotion's walk activates them; it records into a
 * link of its own
 */
static sasync_capture_t *capture_as_primary(rec_link_t **link)
{
	*link = rec_link_create();
	ck_assert(standby_role->set(standby_role, SASYNC_ROLE_PRIMARY, "test"));
	return sasync_capture_create(&(*link)->public, standby_role, standby_ctr,
								 standby_keys);
}

/**
 * A bulk resync of a capture to all partners, run to its end
 */
static void resync_all(sasync_capture_t *capture)
{
	if (!lib->processor->get_total_threads(lib->processor))
	{
		lib->processor->set_threads(lib->processor, 2);
	}
	capture->resync(capture, NULL);
	processor_idle();
}

/**
 * A bulk resync names every IKE SA the primary holds, with its live CHILD
 * SAs: one still passive (the resync asked for by the demoted node runs
 * while the promotion's walk has not activated it yet, or a switchover
 * drained it) and one with an IKE and a CHILD rekey in flight, as well as
 * an established one. Before, it named established SAs only, and the partner's sweep
 * destroyed its copies of the others with all their CHILD SAs (churn soak
 * finding 11: after a switchover the demoted node held every IKE SA but
 * none of the CHILD SAs made before it). A CHILD SA a rekey replaced is
 * not named: it would be installed again as live.
 */
START_TEST(test_resync_names_held)
{
	sasync_capture_t *promoted;
	rec_link_t *link;
	pair_t *passive, *rekeying, *established;
	child_sa_t *rekeyed, *child_sa;
	enumerator_t *children;
	ike_sa_t *copy;

	passive = pair_established(0xc2f00001, 0xc3f00001);
	rekeying = pair_established(0xc2f00002, 0xc3f00002);
	established = pair_established(0xc2f00003, 0xc3f00003);
	rekeyed = child_install(established->sa, 0xc2f00004, 0xc3f00004);
	apply_range(0, rec_count());
	check_no_apply_failure();

	promoted = capture_as_primary(&link);
	copy = restored(rekeying->sa);
	copy->set_state(copy, IKE_REKEYING);
	/* and its CHILD SA with a rekey in flight too */
	children = copy->create_child_sa_enumerator(copy);
	ck_assert(children->enumerate(children, &child_sa));
	child_sa->set_state(child_sa, CHILD_REKEYING);
	children->destroy(children);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	copy = restored(established->sa);
	copy->set_state(copy, IKE_ESTABLISHED);
	child_sa = copy->get_child_sa(copy, PROTO_ESP,
								  rekeyed->get_spi(rekeyed, TRUE), TRUE);
	ck_assert(child_sa);
	child_sa->set_state(child_sa, CHILD_REKEYED);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	ck_assert_int_eq(restored_state(passive), IKE_PASSIVE);

	resync_all(promoted);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_RESYNC_DONE, NULL), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_IKE_ADD, passive->sa), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_CHILD_ADD, passive->sa), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_IKE_ADD, rekeying->sa), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_CHILD_ADD, rekeying->sa),
					 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_IKE_ADD, established->sa),
					 1);
	/* the one rekeyed is not named, its successor is */
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_CHILD_ADD,
								  established->sa), 1);
	promoted->destroy(promoted);
	link->public.destroy(&link->public);
}
END_TEST

/**
 * A record rewritten as a bulk resync sends it: no IKE SA it replaces (the
 * OLD_* attributes of an incremental IKE_ADD dropped) and, with ike, about
 * that IKE SA (a CHILD_ADD the active node would send for it now)
 */
static sasync_msg_t *as_resync(sasync_msg_t *msg, pair_t *ike)
{
	ike_sa_id_t *id = ike ? ike->sa->get_id(ike->sa) : NULL;
	bio_reader_t *reader;
	bio_writer_t *writer, *attrs;
	uint8_t version, type;
	uint16_t count, attr, kept = 0;
	uint64_t number;
	chunk_t value;
	sasync_msg_t *copy;
	int i;

	reader = bio_reader_create(msg->get_encoding(msg));
	attrs = bio_writer_create(256);
	ck_assert(reader->read_uint8(reader, &version) &&
			  reader->read_uint8(reader, &type) &&
			  reader->read_uint16(reader, &count));
	while (count--)
	{
		ck_assert(reader->read_uint16(reader, &attr) &&
				  reader->read_data16(reader, &value));
		if (attr == SASYNC_ATTR_OLD_SPI_I || attr == SASYNC_ATTR_OLD_SPI_R ||
			attr == SASYNC_ATTR_OLD_PRF || attr == SASYNC_ATTR_OLD_SKD)
		{
			continue;
		}
		attrs->write_uint16(attrs, attr);
		if (id && (attr == SASYNC_ATTR_IKE_SPI_I ||
				   attr == SASYNC_ATTR_IKE_SPI_R ||
				   attr == SASYNC_ATTR_IKE_INITIATOR))
		{
			number = attr == SASYNC_ATTR_IKE_SPI_I ? id->get_initiator_spi(id) :
					 attr == SASYNC_ATTR_IKE_SPI_R ? id->get_responder_spi(id) :
					 id->is_initiator(id);
			attrs->write_uint16(attrs, value.len);
			for (i = value.len - 1; i >= 0; i--)
			{	/* big-endian, in the attribute's own size */
				attrs->write_uint8(attrs, (number >> (8 * i)) & 0xff);
			}
		}
		else
		{
			attrs->write_data16(attrs, value);
		}
		kept++;
	}
	reader->destroy(reader);
	writer = bio_writer_create(256);
	writer->write_uint8(writer, version);
	writer->write_uint8(writer, type);
	writer->write_uint16(writer, kept);
	writer->write_data(writer, attrs->get_buf(attrs));
	copy = sasync_msg_parse(writer->get_buf(writer));
	writer->destroy(writer);
	attrs->destroy(attrs);
	msg->destroy(msg);
	ck_assert(copy);
	return copy;
}

/**
 * A node that missed an IKE rekey (its link was down, or it was primary in
 * a split brain and ignored the records) holds the CHILD SAs in the old IKE
 * SA when a full resync names them in the new one, whose IKE_ADD does not
 * name the old: the old one's inbound SAs blocked the install, the resync
 * then destroyed the old IKE SA with them, and the node held none of them
 * (churn soak, switchover). The CHILD SAs are moved: held in the new IKE SA,
 * the old one goes with the resync, nothing failed.
 */
START_TEST(test_resync_after_missed_rekey)
{
	pair_t *old, *new;
	child_sa_t *child_sa;
	sasync_msg_t *msg;
	ike_sa_t *copy;
	u_int i, from;

	old = pair_create(IKEV2, TRUE, NULL);
	pair_derive(old, IKE_PROPOSAL_AEAD, NULL, old->sa);
	child_sa = child_install(old->sa, 0xc200000d, 0xc300000d);
	establish(old);
	ck_assert_int_eq(rec_count(), 2);
	apply_range(0, 2);
	check_no_apply_failure();

	/* the IKE rekey the standby never gets */
	new = pair_create(IKEV2, TRUE, old);
	pair_derive(new, IKE_PROPOSAL_AEAD, old, old->sa);
	establish_rekeyed(old, new);
	ck_assert_int_eq(new->sa->get_child_count(new->sa), 1);
	from = rec_count();
	for (i = 2; i < from; i++)
	{
		msg = rec_get(i);
		if (msg->get_type(msg) == SASYNC_MSG_IKE_ADD)
		{
			from = i;
		}
		msg->destroy(msg);
	}
	ck_assert(from < rec_count());

	/* the resync: the new IKE SA, its CHILD SA (the active node would send
	 * its CHILD_ADD as build_child_add() does; the CHILD_ADD of the original
	 * install names the old IKE SA, so it is rewritten) */
	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_START));
	apply_msg(as_resync(rec_get(from), NULL));
	apply_msg(as_resync(rec_get(1), new));
	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	check_no_apply_failure();

	ck_assert(!manager_has(old->sa->get_id(old->sa)));
	copy = restored(new->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP,
								 child_sa->get_spi(child_sa, TRUE), TRUE));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}
END_TEST

/**
 * A CHILD SA the node held as primary and started to rekey when it was
 * demoted stays REKEYING (a passive IKE SA runs no exchange): the primary
 * names it installed in the resync, so it is installed again (churn soak:
 * not live after the next promotion, the peer's traffic on it lost)
 */
START_TEST(test_resync_reinstates_child)
{
	pair_t *pair;
	child_sa_t *child_sa, *copy_child;
	ike_sa_t *copy;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_sa = child_install(pair->sa, 0xc200000e, 0xc300000e);
	establish(pair);
	apply_range(0, 2);
	copy = restored(pair->sa);
	ck_assert(copy);
	copy_child = copy->get_child_sa(copy, PROTO_ESP,
									child_sa->get_spi(child_sa, TRUE), TRUE);
	ck_assert(copy_child);
	copy_child->set_state(copy_child, CHILD_REKEYING);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	ck_assert_int_eq(restored_child_state(pair, child_sa), CHILD_REKEYING);

	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_START));
	apply_range(0, 2);
	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	check_no_apply_failure();
	ck_assert_int_eq(restored_child_state(pair, child_sa), CHILD_INSTALLED);
}
END_TEST

/*
 * Promotion while records are applied from another thread
 */
#define PROMOTE_SAS 40

typedef struct {
	u_int from;
	u_int to;
	u_int done;
} feeder_t;

static void *feed(feeder_t *feeder)
{
	u_int i;

	for (i = feeder->from; i < feeder->to; i++)
	{
		apply_one(i);
		__atomic_add_fetch(&feeder->done, 1, __ATOMIC_SEQ_CST);
		usleep(2000);
	}
	return NULL;
}

START_TEST(test_promote_while_applying)
{
	sasync_promote_t *promote;
	enumerator_t *enumerator;
	feeder_t feeder = {};
	thread_t *thread;
	ike_sa_t *ike_sa;
	pair_t *pair;
	u_int activated = 0, count = 0, i, passive = 0;

	for (i = 0; i < PROMOTE_SAS; i++)
	{
		pair = pair_create(IKEV2, i % 2, NULL);
		pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
		child_install(pair->sa, 0xc2100000 + i, 0xc3100000 + i);
		establish(pair);
	}
	ck_assert_int_eq(rec_count(), 2 * PROMOTE_SAS);

	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	promote = sasync_promote_create(standby_role, standby_ctr, apply, standby_keys,
									NULL);
	feeder.to = rec_count();
	thread = thread_create((void*)feed, &feeder);
	ck_assert(thread);
	/* promote part way through */
	while (__atomic_load_n(&feeder.done, __ATOMIC_SEQ_CST) < PROMOTE_SAS / 2)
	{
		usleep(1000);
	}
	ck_assert(promote->promote(promote, "test", &activated));
	thread->join(thread);

	enumerator = charon->ike_sa_manager->create_enumerator(
											charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if (ike_sa->get_state(ike_sa) == IKE_PASSIVE)
		{
			passive++;
		}
		ck_assert_int_eq(ike_sa->get_state(ike_sa) == IKE_PASSIVE ?
						 IKE_ESTABLISHED : ike_sa->get_state(ike_sa),
						 IKE_ESTABLISHED);
		count++;
	}
	enumerator->destroy(enumerator);
	ck_assert_msg(passive == 0, "%u SAs left passive after promotion",
				  passive);
	ck_assert(count >= PROMOTE_SAS / 4);
	/* records applied after the walk, right after the promotion, are the
	 * old primary's: restored active */
	ck_assert(activated <= count);
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_PROMOTIONS), 1);
	/* no CHILD SA record is left waiting for an IKE SA no one sends */
	ck_assert_int_eq(apply->get_waiting(apply), 0);
	promote->destroy(promote);
}
END_TEST

/**
 * A CHILD SA record still waiting for its IKE SA when the node is promoted
 * is dropped (no one sends that IKE SA anymore), counted, and its IKE SA
 * record, if it comes after all, is ignored: nothing is restored passive
 */
START_TEST(test_promote_drops_waiting)
{
	sasync_promote_t *promote;
	pair_t *pair;
	ike_sa_t *copy;
	u_int activated = 1;

	pair = pair_create(IKEV2, FALSE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_install(pair->sa, 0xc2000007, 0xc3000007);
	establish(pair);
	ck_assert_int_eq(rec_count(), 2);
	apply_one(1);
	ck_assert_int_eq(apply->get_waiting(apply), 1);

	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	promote = sasync_promote_create(standby_role, standby_ctr, apply, standby_keys,
									NULL);
	ck_assert(promote->promote(promote, "test", &activated));
	ck_assert_int_eq(activated, 0);
	ck_assert_int_eq(apply->get_waiting(apply), 0);
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_WAIT_EXPIRED), 1);
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_APPLY_FAILED), 1);
	/* a second promotion is refused */
	ck_assert(!promote->promote(promote, "again", NULL));

	/* the IKE SA comes after the promotion: restored active (right after
	 * it, from the old primary) or ignored, never passive */
	apply_one(0);
	copy = restored(pair->sa);
	if (copy)
	{
		ck_assert_int_eq(copy->get_state(copy), IKE_ESTABLISHED);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	}
	promote->destroy(promote);
}
END_TEST

/**
 * Demotion makes the SAs passive again, as a standby's restored SAs are,
 * without touching the kernel or the peer: restored, promoted, then
 * demoted, every IKE SA is PASSIVE with its CHILD SA still installed, and
 * refuses rekeys and deletes; a record of the new primary applied after it
 * is restored passive
 */
START_TEST(test_resync_drops_waiting)
{
	sasync_msg_t *msg;
	u_int i;

	pair_established(0xc2a00001, 0xc3a00001);
	/* the CHILD_ADD arrives, its IKE_ADD not: it waits for the IKE SA */
	for (i = 0; i < rec_count(); i++)
	{
		msg = rec_get(i);
		if (msg->get_type(msg) == SASYNC_MSG_CHILD_ADD)
		{
			apply->apply(apply, active_node, msg);
		}
		msg->destroy(msg);
	}
	ck_assert_int_eq(apply->get_waiting(apply), 1);
	/* a full resync that does not name that IKE SA: it is gone on the
	 * primary, so what waited for it goes too, instead of being restored
	 * stale once its IKE SA came */
	msg = sasync_msg_create(SASYNC_MSG_RESYNC_START);
	msg->add_int(msg, SASYNC_ATTR_RESYNC_TOTAL, 0);
	apply->apply(apply, active_node, msg);
	msg->destroy(msg);
	msg = sasync_msg_create(SASYNC_MSG_RESYNC_DONE);
	apply->apply(apply, active_node, msg);
	msg->destroy(msg);
	ck_assert_int_eq(apply->get_waiting(apply), 0);
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_RESYNC_REMOVED),
					 1);
}
END_TEST

START_TEST(test_demote)
{
	sasync_promote_t *promote;
	enumerator_t *enumerator, *children;
	ike_sa_t *ike_sa;
	child_sa_t *child_sa;
	pair_t *pair;
	u_int activated = 0, passive = 0, deleted, from, i, count = 0;

	for (i = 0; i < 3; i++)
	{
		pair = pair_create(IKEV2, i % 2, NULL);
		pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
		child_install(pair->sa, 0xc2200000 + i, 0xc3200000 + i);
		establish(pair);
	}
	apply_range(0, rec_count());
	check_no_apply_failure();
	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	promote = sasync_promote_create(standby_role, standby_ctr, apply,
									standby_keys, NULL);
	ck_assert(!promote->demote(promote, "standby already", NULL));
	ck_assert(promote->promote(promote, "test", &activated));
	ck_assert_int_eq(activated, 3);
	/* one the node was deleting as primary is handed over as well */
	enumerator = charon->ike_sa_manager->create_enumerator(
											charon->ike_sa_manager, TRUE);
	ck_assert(enumerator->enumerate(enumerator, &ike_sa));
	ike_sa->set_state(ike_sa, IKE_DELETING);
	enumerator->destroy(enumerator);

	deleted = ipsec->deleted;
	ck_assert(promote->demote(promote, "test", &passive));
	ck_assert_int_eq(passive, 3);
	ck_assert(!promote->demote(promote, "again", NULL));
	ck_assert_int_eq(standby_ctr->get(standby_ctr, SASYNC_CTR_DEMOTIONS), 1);
	ck_assert_int_eq(ipsec->deleted, deleted);

	enumerator = charon->ike_sa_manager->create_enumerator(
											charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		ck_assert_int_eq(ike_sa->get_state(ike_sa), IKE_PASSIVE);
		ck_assert_int_eq(ike_sa->get_child_count(ike_sa), 1);
		ck_assert(ike_sa->rekey(ike_sa) == INVALID_STATE);
		ck_assert(ike_sa->reauth(ike_sa) == INVALID_STATE);
		ck_assert(ike_sa->send_dpd(ike_sa) == INVALID_STATE);
		children = ike_sa->create_child_sa_enumerator(ike_sa);
		ck_assert(children->enumerate(children, &child_sa));
		ck_assert_int_eq(child_sa->get_state(child_sa), CHILD_INSTALLED);
		ck_assert(ike_sa->rekey_child_sa(ike_sa, PROTO_ESP,
						child_sa->get_spi(child_sa, TRUE)) == INVALID_STATE);
		ck_assert(ike_sa->delete_child_sa(ike_sa, PROTO_ESP,
				child_sa->get_spi(child_sa, TRUE), FALSE) == INVALID_STATE);
		children->destroy(children);
		count++;
	}
	enumerator->destroy(enumerator);
	ck_assert_int_eq(count, 3);

	/* the new primary's records are applied again, restored passive */
	from = rec_count();
	pair = pair_create(IKEV2, FALSE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_install(pair->sa, 0xc2200010, 0xc3200010);
	establish(pair);
	apply_range(from, rec_count());
	check_no_apply_failure();
	ike_sa = restored(pair->sa);
	ck_assert(ike_sa);
	ck_assert_int_eq(ike_sa->get_state(ike_sa), IKE_PASSIVE);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	promote->destroy(promote);
}
END_TEST

/*
 * Validation: a standby trusts nothing beyond its config
 */

static uint64_t ctr(sasync_counter_t counter)
{
	return standby_ctr->get(standby_ctr, counter);
}

/**
 * An IKE SA of the standby's own with the id of an SA of the active node
 * (a peer that connected to the standby itself, or one it negotiated as
 * primary), in the given state, with the entry its capture would keep
 */
static void own_sa(ike_sa_t *orig, ike_sa_state_t state)
{
	ike_sa_id_t *id = orig->get_id(orig);
	ike_sa_t *ike_sa;

	ike_sa = ike_sa_create(id, id->is_initiator(id), orig->get_version(orig));
	ike_sa->set_peer_cfg(ike_sa, orig->get_peer_cfg(orig));
	charon->ike_sa_manager->checkout_new(charon->ike_sa_manager, ike_sa);
	ike_sa->set_state(ike_sa, state);
	standby_keys->lock(standby_keys);
	standby_keys->get_ike(standby_keys, ike_sa->get_unique_id(ike_sa), TRUE);
	standby_keys->unlock(standby_keys);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	charon->bus->set_sa(charon->bus, NULL);
}

/**
 * State and CHILD SA count of the standby's SA with an id of the active
 * node, IKE_CREATED if it has none
 */
static ike_sa_state_t held_state(ike_sa_t *orig, u_int *children)
{
	ike_sa_state_t state = IKE_CREATED;
	ike_sa_t *copy;

	*children = 0;
	copy = restored(orig);
	if (copy)
	{
		state = copy->get_state(copy);
		*children = copy->get_child_count(copy);
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	}
	return state;
}

/**
 * Records about an SA the standby runs itself (same SPIs) are rejected and
 * leave it alone: IKE_ADD, CHILD_ADD, IKE_DELETE, and an IKE_ADD that says
 * it replaces it
 */
START_TEST(test_reject_own_sa)
{
	pair_t *pair, *old, *new;
	ike_sa_id_t *id;
	u_int children, first;

	pair = pair_established(0xc2300001, 0xc3300001);
	own_sa(pair->sa, IKE_ESTABLISHED);
	apply_range(0, 2);
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_OWN_SA), 2);
	ck_assert_int_eq(ctr(SASYNC_CTR_APPLY_FAILED), 2);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_ESTABLISHED);
	ck_assert_int_eq(children, 0);
	ck_assert_int_eq(ipsec->sas_in, 1);

	id = pair->sa->get_id(pair->sa)->clone(pair->sa->get_id(pair->sa));
	pair_delete(pair);
	apply_one(rec_count() - 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_OWN_SA), 3);
	ck_assert(manager_has(id));
	id->destroy(id);

	/* a rekeyed SA that would take over the standby's own */
	first = rec_count();
	old = pair_create(IKEV2, FALSE, NULL);
	pair_derive(old, IKE_PROPOSAL_AEAD, NULL, old->sa);
	establish(old);
	own_sa(old->sa, IKE_ESTABLISHED);
	new = pair_create(IKEV2, TRUE, old);
	pair_derive(new, IKE_PROPOSAL_AEAD, old, old->sa);
	establish_rekeyed(old, new);
	apply_range(first + 1, rec_count());
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_OWN_SA), 4);
	ck_assert(!manager_has(new->sa->get_id(new->sa)));
	ck_assert_int_eq(held_state(old->sa, &children), IKE_ESTABLISHED);
	ck_assert_int_eq(ctr(SASYNC_CTR_VIKE_SYNC), 0);
}
END_TEST

/**
 * A demotion hands the node's established SAs over to the new primary:
 * its records update them as they update restored ones (here: an IKE SA
 * the node negotiated itself as primary gets a CHILD SA, a restored one is
 * deleted). An SA that was not handed over (half-open at the demotion)
 * stays the node's own: records about it are rejected.
 */
START_TEST(test_demote_hands_over)
{
	sasync_promote_t *promote;
	pair_t *restored_pair, *own, *half_open;
	ike_sa_id_t *id;
	u_int children, passive = 0, from;

	restored_pair = pair_create(IKEV2, FALSE, NULL);
	pair_derive(restored_pair, IKE_PROPOSAL_AEAD, NULL, restored_pair->sa);
	child_install(restored_pair->sa, 0xc2400001, 0xc3400001);
	establish(restored_pair);
	apply_range(0, rec_count());
	check_no_apply_failure();

	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	promote = sasync_promote_create(standby_role, standby_ctr, apply,
									standby_keys, NULL);
	ck_assert(promote->promote(promote, "test", NULL));

	/* as primary, the node has an SA of its own, and one half-open */
	own = pair_create(IKEV2, TRUE, NULL);
	pair_derive(own, IKE_PROPOSAL_AEAD, NULL, own->sa);
	own_sa(own->sa, IKE_ESTABLISHED);
	half_open = pair_create(IKEV2, TRUE, NULL);
	pair_derive(half_open, IKE_PROPOSAL_AEAD, NULL, half_open->sa);
	own_sa(half_open->sa, IKE_CONNECTING);

	ck_assert(promote->demote(promote, "test", &passive));
	ck_assert_int_eq(passive, 2);

	/* the new primary holds the SA the node had negotiated, with a CHILD SA */
	from = rec_count();
	child_install(own->sa, 0xc2400002, 0xc3400002);
	establish(own);
	apply_range(from, rec_count());
	check_no_apply_failure();
	ck_assert_int_eq(held_state(own->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 1);

	/* deletes the restored one */
	id = restored_pair->sa->get_id(restored_pair->sa);
	id = id->clone(id);
	pair_delete(restored_pair);
	apply_one(rec_count() - 1);
	check_no_apply_failure();
	ck_assert(!manager_has(id));
	id->destroy(id);

	/* and the half-open one is not the new primary's to touch */
	from = rec_count();
	establish(half_open);
	apply_range(from, rec_count());
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_OWN_SA), 1);
	ck_assert_int_eq(held_state(half_open->sa, &children), IKE_CONNECTING);
	promote->destroy(promote);
}
END_TEST

/**
 * A promotion spreads the first DPD checks of the SAs it activates as it
 * spreads their RFC 6311 exchanges (promote_rate), instead of charon
 * checking all of them one DPD interval after the promotion at once
 */
START_TEST(test_promote_spreads_dpd)
{
	sasync_promote_t *promote;
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	pair_t *pair;
	uint32_t now, first = UINT32_MAX, last = 0, inbound;
	u_int i;

	for (i = 0; i < 3; i++)
	{
		pair = pair_create(IKEV2, i % 2, NULL);
		pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
		establish(pair);
	}
	apply_range(0, rec_count());
	check_no_apply_failure();
	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	lib->settings->set_int(lib->settings,
				"%s.plugins.sasync.promote_rate", 1, lib->ns);
	promote = sasync_promote_create(standby_role, standby_ctr, apply,
									standby_keys, NULL);
	now = time_monotonic(NULL);
	ck_assert(promote->promote(promote, "test", NULL));
	enumerator = charon->ike_sa_manager->create_enumerator(
											charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		inbound = ike_sa->get_statistic(ike_sa, STAT_INBOUND);
		first = min(first, inbound);
		last = max(last, inbound);
	}
	enumerator->destroy(enumerator);
	/* 0, 1 and 2 s after the promotion, at one per second */
	ck_assert_int_le(first, now + 1);
	ck_assert_int_ge(last, now + 2);
	ck_assert_int_le(last - first, 3);
	promote->destroy(promote);
}
END_TEST

/**
 * A standby whose copy of an IKE SA goes without sync saying so (an
 * operator's terminate there: charon destroys a passive SA silently) counts
 * it and asks the primary for a resync; copies sync deletes are no loss
 */
START_TEST(test_passive_lost)
{
	sasync_capture_t *standby_capture;
	pair_t *kept, *deleted;
	sasync_msg_t *msg;
	ike_sa_t *copy;
	u_int from;

	kept = pair_create(IKEV2, TRUE, NULL);
	pair_derive(kept, IKE_PROPOSAL_AEAD, NULL, kept->sa);
	establish(kept);
	deleted = pair_create(IKEV2, FALSE, NULL);
	pair_derive(deleted, IKE_PROPOSAL_AEAD, NULL, deleted->sa);
	establish(deleted);
	apply_range(0, rec_count());
	check_no_apply_failure();
	/* the standby's own capture, on the key store its apply side fills */
	standby_capture = sasync_capture_create(&rlink->public, standby_role,
											standby_ctr, standby_keys);
	charon->bus->add_listener(charon->bus, &standby_capture->listener);

	from = rec_count();
	pair_delete(deleted);
	apply_one(rec_count() - 1);
	check_no_apply_failure();
	ck_assert_int_eq(ctr(SASYNC_CTR_PASSIVE_LOST), 0);

	from = rec_count();
	copy = restored(kept->sa);
	ck_assert(copy);
	ck_assert(copy->delete(copy, FALSE) == DESTROY_ME);
	charon->ike_sa_manager->checkin_and_destroy(charon->ike_sa_manager, copy);
	ck_assert_int_eq(ctr(SASYNC_CTR_PASSIVE_LOST), 1);
	ck_assert_int_eq(rec_count(), from + 1);
	msg = rec_get(from);
	ck_assert_int_eq(msg->get_type(msg), SASYNC_MSG_RESYNC_REQUEST);
	msg->destroy(msg);

	charon->bus->remove_listener(charon->bus, &standby_capture->listener);
	standby_capture->destroy(standby_capture);
}
END_TEST

/**
 * The active node passes through charon's bus a request of its own
 * (INFORMATIONAL, IKEv2), optionally an RFC 6311 sync announcing IDs
 */
static void own_request(pair_t *pair, uint32_t mid, uint32_t send,
						uint32_t recv)
{
	bio_writer_t *writer;
	message_t *message;

	message = message_create(IKEV2_MAJOR_VERSION, IKEV2_MINOR_VERSION);
	message->set_exchange_type(message, INFORMATIONAL);
	message->set_request(message, TRUE);
	message->set_message_id(message, mid);
	if (send)
	{
		writer = bio_writer_create(12);
		writer->write_uint32(writer, 0x12345678);
		writer->write_uint32(writer, send);
		writer->write_uint32(writer, recv);
		message->add_notify(message, FALSE, IKEV2_MESSAGE_ID_SYNC,
							writer->get_buf(writer));
		writer->destroy(writer);
	}
	charon->bus->set_sa(charon->bus, pair->sa);
	charon->bus->message(charon->bus, message, FALSE, TRUE);
	charon->bus->set_sa(charon->bus, NULL);
	message->destroy(message);
}

/**
 * Message ID records carry the highest IDs seen, both directions: the RFC
 * 6311 sync of a promoted node is message 0, and its record once moved the
 * standby back to ID 1 (churn soak: the standby, promoted after the next
 * kill -9, rekeyed with ID 1 and the peer dropped it; the tunnel was lost).
 * The IDs a sync announces are the ones the standby takes.
 */
START_TEST(test_mid_records_never_go_back)
{
	sasync_msg_t *msg;
	pair_t *pair;
	ike_sa_t *copy;
	uint64_t mid;
	u_int from;

	pair = pair_create(IKEV2, FALSE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	establish(pair);
	own_request(pair, 7, 0, 0);
	from = rec_count();
	own_request(pair, 0, 456, 3);
	ck_assert_int_eq(rec_count(), from + 1);
	msg = rec_expect(from, SASYNC_MSG_IKE_MID, pair->sa);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_MID_I, &mid));
	ck_assert_int_eq(mid, 456);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_MID_R, &mid));
	ck_assert_int_eq(mid, 3);
	msg->destroy(msg);
	/* a later request of a lower ID (the task manager was not reset yet)
	 * moves nothing back */
	own_request(pair, 8, 0, 0);
	apply_range(0, rec_count());
	check_no_apply_failure();
	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_message_id(copy, TRUE), 456);
	ck_assert_int_eq(copy->get_message_id(copy, FALSE), 3);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}
END_TEST

/**
 * A node that starts gets the resync with an IKE SA before its connection
 * is loaded, then the IKE SA's rekey: the rekeyed SA waits behind the old
 * one, so it takes over the CHILD SAs once both can be applied. Applied
 * first, it took over nothing and the old SA stayed beside it with the
 * CHILD SAs (churn soak: a stale IKE SA on a restarted standby).
 */
START_TEST(test_rekey_waits_for_old)
{
	pair_t *old, *new;
	child_sa_t *child_sa;
	ike_sa_id_t *old_id;
	ike_sa_t *copy = NULL;
	u_int children = 0, i;

	old = pair_create(IKEV2, FALSE, NULL);
	pair_derive(old, IKE_PROPOSAL_AEAD, NULL, old->sa);
	child_sa = child_install(old->sa, 0xc2c00001, 0xc3c00001);
	establish(old);
	new = pair_create(IKEV2, TRUE, old);
	pair_derive(new, IKE_PROPOSAL_AEAD, old, old->sa);
	establish_rekeyed(old, new);
	ck_assert_int_eq(rec_count(), 3);

	cfg_hidden = TRUE;
	apply_range(0, 2);
	/* the connection is loaded before the retry ran, then the rekey comes */
	cfg_hidden = FALSE;
	apply_one(2);
	check_no_apply_failure();
	ck_assert(!restored(new->sa));
	ck_assert(!restored(old->sa));
	/* the retry job runs on the processor's threads */
	if (!lib->processor->get_total_threads(lib->processor))
	{
		lib->processor->set_threads(lib->processor, 2);
	}
	for (i = 0; i < 100 && !children; i++)
	{
		usleep(50000);
		copy = restored(new->sa);
		if (copy)
		{
			children = copy->get_child_count(copy);
			charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
		}
	}
	check_no_apply_failure();
	ck_assert_int_eq(children, 1);
	copy = restored(new->sa);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP,
								 child_sa->get_spi(child_sa, TRUE), TRUE));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	old_id = old->sa->get_id(old->sa);
	ck_assert(!manager_has(old_id));
}
END_TEST

/**
 * The rekeyed SA's IKE_ADD applied before the old SA's records (a resync
 * that had the old SA, its rekey sent in between; a record that waited):
 * the old SA is not restored after its replacement, and its CHILD SAs go
 * to the SA that replaced it. Before, the old SA came back beside it with
 * the CHILD SAs, and the primary never deletes it (churn soak).
 */
START_TEST(test_rekey_before_old)
{
	pair_t *old, *new;
	child_sa_t *child_sa;
	ike_sa_t *copy;

	old = pair_create(IKEV2, FALSE, NULL);
	pair_derive(old, IKE_PROPOSAL_AEAD, NULL, old->sa);
	child_sa = child_install(old->sa, 0xc2c00002, 0xc3c00002);
	establish(old);
	new = pair_create(IKEV2, TRUE, old);
	pair_derive(new, IKE_PROPOSAL_AEAD, old, old->sa);
	establish_rekeyed(old, new);
	ck_assert_int_eq(rec_count(), 3);

	apply_one(2);
	apply_range(0, 2);
	check_no_apply_failure();
	ck_assert(!manager_has(old->sa->get_id(old->sa)));
	copy = restored(new->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_child_count(copy), 1);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP,
								 child_sa->get_spi(child_sa, TRUE), TRUE));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}
END_TEST

/*
 * Hand-over between a demoted and a promoted node
 */

/**
 * An IKE SA the primary was negotiating when it was demoted completes
 * afterwards: its records go out marked as a hand-over, and the new
 * primary applies them (the IKE SA active, with its CHILD SA), where it
 * ignores records without the mark. Before, neither node kept the SA (the
 * churn soak lost it in a switchover).
 */
START_TEST(test_handover_after_demotion)
{
	sasync_promote_t *demoted, *promoted;
	pair_t *half_open, *unmarked;
	sasync_msg_t *msg;
	uint64_t flag;
	u_int children, from, i;

	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	/* IKE_SA_INIT answered: charon derives the keys of a responder only
	 * when IKE_AUTH arrives */
	half_open = pair_create(IKEV2, FALSE, NULL);
	charon->bus->set_sa(charon->bus, half_open->sa);
	half_open->sa->set_state(half_open->sa, IKE_CONNECTING);
	charon->bus->set_sa(charon->bus, NULL);
	/* one the old primary still established as primary, not applied yet */
	unmarked = pair_create(IKEV2, FALSE, NULL);
	pair_derive(unmarked, IKE_PROPOSAL_AEAD, NULL, unmarked->sa);
	establish(unmarked);
	ck_assert_int_eq(rec_count(), 1);

	promoted = sasync_promote_create(standby_role, standby_ctr, apply,
									 standby_keys, NULL);
	ck_assert(promoted->promote(promoted, "test", NULL));
	demoted = sasync_promote_create(active_role, active_ctr, apply,
									active_keys, NULL);
	ck_assert(demoted->demote(demoted, "test", NULL));

	from = rec_count();
	pair_derive(half_open, IKE_PROPOSAL_AEAD, NULL, half_open->sa);
	child_install(half_open->sa, 0xc2a00001, 0xc3a00001);
	establish(half_open);
	ck_assert_int_eq(rec_count() - from, 2);
	ck_assert_int_eq(active_ctr->get(active_ctr, SASYNC_CTR_HANDOVER_SENT), 2);
	for (i = from; i < rec_count(); i++)
	{
		msg = rec_get(i);
		ck_assert(msg->get_int(msg, SASYNC_ATTR_HANDOVER, &flag));
		ck_assert_int_eq(flag, 1);
		msg->destroy(msg);
	}
	msg = rec_get(0);
	ck_assert(!msg->get_int(msg, SASYNC_ATTR_HANDOVER, &flag));
	msg->destroy(msg);
	/* its job would make the new primary's copy passive in this process */
	processor_idle();

	apply_range(0, rec_count());
	check_no_apply_failure();
	/* right after its promotion (2 s, not under valgrind), the new primary
	 * takes what the old one sent before it heard of the promotion too;
	 * never passive */
	ck_assert(held_state(unmarked->sa, &children) != IKE_PASSIVE);
	ck_assert_int_eq(held_state(half_open->sa, &children), IKE_ESTABLISHED);
	ck_assert_int_eq(children, 1);
	ck_assert_int_ge(ctr(SASYNC_CTR_HANDOVER_APPLIED), 2);

	/* once its copy is passive the demoted node sends nothing of it */
	from = rec_count();
	half_open->sa->set_state(half_open->sa, IKE_PASSIVE);
	child_install(half_open->sa, 0xc2a00002, 0xc3a00002);
	ck_assert_int_eq(rec_count(), from);
	demoted->destroy(demoted);
	promoted->destroy(promoted);
}
END_TEST

/**
 * On an SA a primary runs, the message IDs of a hand-over (or of the old
 * primary right after a switchover) only move the peer's (responder) ID
 * forward, never its own
 */
START_TEST(test_handover_mids)
{
	sasync_promote_t *promoted;
	sasync_msg_t *msg;
	pair_t *pair;
	ike_sa_t *copy;

	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	pair = pair_create(IKEV2, FALSE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	establish(pair);
	apply_range(0, rec_count());
	check_no_apply_failure();
	promoted = sasync_promote_create(standby_role, standby_ctr, apply,
									 standby_keys, NULL);
	ck_assert(promoted->promote(promoted, "test", NULL));
	copy = restored(pair->sa);
	copy->set_message_id(copy, TRUE, 10);
	copy->set_message_id(copy, FALSE, 5);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);

	msg = msg_for(pair, SASYNC_MSG_IKE_MID, 0);
	msg->add_int(msg, SASYNC_ATTR_MID_I, 3);
	msg->add_int(msg, SASYNC_ATTR_MID_R, 7);
	msg->add_int(msg, SASYNC_ATTR_HANDOVER, 1);
	apply_msg(msg);
	copy = restored(pair->sa);
	ck_assert_int_eq(copy->get_message_id(copy, TRUE), 10);
	ck_assert_int_eq(copy->get_message_id(copy, FALSE), 7);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	msg = msg_for(pair, SASYNC_MSG_IKE_MID, 0);
	msg->add_int(msg, SASYNC_ATTR_MID_I, 3);
	msg->add_int(msg, SASYNC_ATTR_MID_R, 8);
	msg->add_int(msg, SASYNC_ATTR_HANDOVER, 1);
	apply_msg(msg);
	copy = restored(pair->sa);
	ck_assert_int_eq(copy->get_message_id(copy, TRUE), 10);
	ck_assert_int_eq(copy->get_message_id(copy, FALSE), 8);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	msg = msg_for(pair, SASYNC_MSG_IKE_MID, 0);
	msg->add_int(msg, SASYNC_ATTR_MID_R, 4);
	msg->add_int(msg, SASYNC_ATTR_HANDOVER, 1);
	apply_msg(msg);
	copy = restored(pair->sa);
	ck_assert_int_eq(copy->get_message_id(copy, FALSE), 8);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	ck_assert_int_eq(ctr(SASYNC_CTR_HANDOVER_APPLIED), 3);
	promoted->destroy(promoted);
}
END_TEST

/**
 * A promotion raises no up events and starts every RFC 6311 exchange at
 * once
 */
static void promote_quietly()
{
	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	lib->settings->set_int(lib->settings,
				"%s.plugins.sasync.promote_rate", 0, lib->ns);
}

/**
 * A sender that counts what charon would send
 */
typedef struct {
	sender_t public;
	u_int sent;
} count_sender_t;

static void count_send(sender_t *this, packet_t *packet)
{
	((count_sender_t*)this)->sent++;
	packet->destroy(packet);
}

static void count_flush(sender_t *this)
{
}

/** initial value of a count_sender_t */
#define COUNT_SENDER { .public = { .send = count_send, \
	.send_no_marker = count_send, .flush = count_flush, }, }

/**
 * A CHILD SA the failed node rekeyed is deleted at the peer by the
 * promoted node: the failed node's delete may never have gone out (churn
 * soak: after a kill -9 the new primary kept such a CHILD SA beside its
 * successor, one the peer no longer had). Its successor stays. IKEv1
 * keeps rekeyed Quick Mode SAs, as charon does.
 */
START_TEST(test_promote_deletes_rekeyed)
{
	count_sender_t sender = COUNT_SENDER;
	sasync_promote_t *promoted;
	child_sa_t *old, *new, *copy_old, *copy_new;
	pair_t *pair;
	ike_sa_t *copy;

	promote_quietly();
	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	old = child_install(pair->sa, 0xc2b00001, 0xc3b00001);
	new = child_install(pair->sa, 0xc2b00002, 0xc3b00002);
	establish(pair);
	charon->bus->set_sa(charon->bus, pair->sa);
	old->set_state(old, CHILD_REKEYED);
	charon->bus->set_sa(charon->bus, NULL);
	apply_range(0, rec_count());
	check_no_apply_failure();

	charon->sender = &sender.public;
	promoted = sasync_promote_create(standby_role, standby_ctr, apply,
									 standby_keys, NULL);
	ck_assert(promoted->promote(promoted, "test", NULL));
	charon->sender = NULL;
	ck_assert_int_eq(ctr(SASYNC_CTR_REKEYED_DELETED), 1);
	ck_assert_int_eq(sender.sent, 1);
	copy = restored(pair->sa);
	copy_old = copy->get_child_sa(copy, PROTO_ESP, old->get_spi(old, TRUE),
								  TRUE);
	copy_new = copy->get_child_sa(copy, PROTO_ESP, new->get_spi(new, TRUE),
								  TRUE);
	ck_assert(copy_old && copy_new);
	ck_assert_int_eq(copy_old->get_state(copy_old), CHILD_DELETING);
	ck_assert_int_eq(copy_new->get_state(copy_new), CHILD_INSTALLED);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	promoted->destroy(promoted);
}
END_TEST

/**
 * A switchover: the standby is promoted while the old primary, not aware
 * of it yet, starts deleting a CHILD SA and then the IKE SA. The new
 * primary applies those records within its switchover window by deleting
 * at the peer itself: the old node's DELETE may never have reached the
 * peer (its answer goes to the new primary, whose RFC 6311 sync made the
 * old node's message ID outdated), and an SA dropped here silently stays
 * on the peer (found by the churn soak)
 */
/**
 * Whether a task of the type waits in the queue of an SA
 */
static bool queued(ike_sa_t *ike_sa, task_type_t type)
{
	enumerator_t *enumerator;
	task_t *task;
	bool found = FALSE;

	enumerator = ike_sa->create_task_enumerator(ike_sa, TASK_QUEUE_QUEUED);
	while (enumerator->enumerate(enumerator, &task))
	{
		found = found || task->get_type(task) == type;
	}
	enumerator->destroy(enumerator);
	return found;
}

START_TEST(test_switchover_deletes_at_peer)
{
	count_sender_t sender = COUNT_SENDER;
	sasync_promote_t *promoted;
	child_sa_t *gone, *kept, *copy_gone;
	pair_t *pair, *other;
	ike_sa_id_t *id;
	ike_sa_t *copy;
	u_int sent, first;

	promote_quietly();
	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	gone = child_install(pair->sa, 0xc2d00001, 0xc3d00001);
	kept = child_install(pair->sa, 0xc2d00002, 0xc3d00002);
	establish(pair);
	apply_range(0, rec_count());
	check_no_apply_failure();

	charon->sender = &sender.public;
	promoted = sasync_promote_create(standby_role, standby_ctr, apply,
									 standby_keys, NULL);
	ck_assert(promoted->promote(promoted, "test", NULL));
	sent = sender.sent;

	/* the old primary deletes a CHILD SA: the new one deletes it at the
	 * peer, the other CHILD SA stays */
	first = rec_count();
	charon->bus->set_sa(charon->bus, pair->sa);
	gone->set_state(gone, CHILD_DELETING);
	charon->bus->set_sa(charon->bus, NULL);
	apply_range(first, rec_count());
	ck_assert_int_eq(ctr(SASYNC_CTR_HANDOVER_DELETED), 1);
	ck_assert_int_eq(sender.sent, sent + 1);
	copy = restored(pair->sa);
	ck_assert(copy);
	copy_gone = copy->get_child_sa(copy, PROTO_ESP, gone->get_spi(gone, TRUE),
								   TRUE);
	ck_assert(copy_gone);
	ck_assert_int_eq(copy_gone->get_state(copy_gone), CHILD_DELETING);
	ck_assert(copy->get_child_sa(copy, PROTO_ESP, kept->get_spi(kept, TRUE),
								 TRUE));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);

	/* an IKE delete waits for the CHILD delete in flight */
	first = rec_count();
	charon->bus->set_sa(charon->bus, pair->sa);
	pair->sa->set_state(pair->sa, IKE_DELETING);
	charon->bus->set_sa(charon->bus, NULL);
	apply_range(first, rec_count());
	ck_assert_int_eq(ctr(SASYNC_CTR_HANDOVER_DELETED), 2);
	ck_assert_int_eq(sender.sent, sent + 1);
	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert(queued(copy, TASK_IKE_DELETE));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);

	/* one without an exchange in flight: deleted at the peer, gone here */
	first = rec_count();
	other = pair_create(IKEV2, TRUE, NULL);
	pair_derive(other, IKE_PROPOSAL_AEAD, NULL, other->sa);
	establish(other);
	apply_range(first, rec_count());
	copy = restored(other->sa);
	ck_assert(copy);
	ck_assert_int_eq(copy->get_state(copy), IKE_ESTABLISHED);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	id = other->sa->get_id(other->sa)->clone(other->sa->get_id(other->sa));
	first = rec_count();
	pair_delete(other);
	apply_range(first, rec_count());
	charon->sender = NULL;
	ck_assert_int_eq(ctr(SASYNC_CTR_HANDOVER_DELETED), 3);
	ck_assert_int_eq(sender.sent, sent + 2);
	ck_assert(!manager_has(id));
	id->destroy(id);
	promoted->destroy(promoted);
}
END_TEST

/**
 * Wait (bounded) until the restored copy of an SA is in a state
 */
static bool wait_restored_state(pair_t *pair, ike_sa_state_t state)
{
	u_int i;

	for (i = 0; i < 200 && restored_state(pair) != state; i++)
	{
		usleep(10000);
	}
	return restored_state(pair) == state;
}

/**
 * The restored copy of an SA starts an IKE rekey, unanswered
 */
static void restored_rekey(pair_t *pair)
{
	ike_sa_t *copy;

	copy = restored(pair->sa);
	ck_assert(copy->rekey(copy) == SUCCESS);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}

/**
 * The exchange in flight of the restored copy of an SA was answered: its
 * tasks are done
 */
static void restored_answered(pair_t *pair)
{
	ike_sa_t *copy;

	copy = restored(pair->sa);
	copy->flush_queue(copy, TASK_QUEUE_ACTIVE);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
}

/**
 * A graceful switchover: the old primary makes an SA without an exchange
 * in flight passive at once but stays primary while another one's IKE
 * rekey is in flight; once that is answered (here: its tasks are done) it
 * makes that one passive too and demotes. Without the answer, the rekey is
 * cut at the timeout. Cancelled, the SAs are active again; a demotion asked
 * for on the node itself is not cancelled.
 */
START_TEST(test_switchover_waits)
{
	count_sender_t sender = COUNT_SENDER;
	sasync_switchover_t *switchover;
	sasync_promote_t *promoted;
	pair_t *busy, *idle;
	ike_sa_t *copy;
	u_int sent;

	promote_quietly();
	busy = pair_established(0xc2e00001, 0xc3e00001);
	idle = pair_established(0xc2e00002, 0xc3e00002);
	apply_range(0, rec_count());
	check_no_apply_failure();
	charon->sender = &sender.public;
	promoted = sasync_promote_create(standby_role, standby_ctr, apply,
									 standby_keys, NULL);
	ck_assert(promoted->promote(promoted, "test", NULL));
	switchover = sasync_switchover_create(standby_role, promoted,
										  standby_keys, standby_ctr, NULL);

	/* an IKE rekey of the new primary, unanswered */
	copy = restored(busy->sa);
	ck_assert(!sasync_switchover_busy(copy));
	sent = sender.sent;
	ck_assert(copy->rekey(copy) == SUCCESS);
	ck_assert_int_eq(sender.sent, sent + 1);
	ck_assert(sasync_switchover_busy(copy));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	if (!lib->processor->get_total_threads(lib->processor))
	{
		lib->processor->set_threads(lib->processor, 2);
	}

	ck_assert(switchover->start(switchover, "switchover to b", TRUE, 10000));
	ck_assert(!switchover->start(switchover, "switchover to c", TRUE, 10000));
	ck_assert(wait_restored_state(idle, IKE_PASSIVE));
	usleep(100000);
	ck_assert(switchover->is_running(switchover));
	ck_assert_int_eq(standby_role->get(standby_role), SASYNC_ROLE_PRIMARY);
	ck_assert_int_eq(restored_state(busy), IKE_REKEYING);

	/* the answer arrived: the exchange is done */
	restored_answered(busy);
	ck_assert(wait_restored_state(busy, IKE_PASSIVE));
	processor_idle();
	ck_assert(!switchover->is_running(switchover));
	ck_assert_int_eq(standby_role->get(standby_role), SASYNC_ROLE_STANDBY);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVERS), 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVER_WAITED), 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVER_CUT), 0);
	ck_assert(!switchover->start(switchover, "switchover to b", TRUE, 10000));

	/* again, nothing answers: cut at the timeout */
	ck_assert(promoted->promote(promoted, "test again", NULL));
	restored_rekey(idle);
	ck_assert(switchover->start(switchover, "switchover to b", TRUE, 100));
	ck_assert(wait_restored_state(idle, IKE_PASSIVE));
	processor_idle();
	ck_assert_int_eq(standby_role->get(standby_role), SASYNC_ROLE_STANDBY);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVERS), 2);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVER_WAITED), 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVER_CUT), 1);

	/* cancelled (the node taking over is gone): active again, the
	 * exchange in flight goes on */
	ck_assert(promoted->promote(promoted, "test cancel", NULL));
	restored_rekey(busy);
	ck_assert(switchover->start(switchover, "switchover to b", TRUE, 10000));
	ck_assert(wait_restored_state(idle, IKE_PASSIVE));
	switchover->cancel(switchover);
	ck_assert(wait_restored_state(idle, IKE_ESTABLISHED));
	processor_idle();
	ck_assert(!switchover->is_running(switchover));
	ck_assert_int_eq(restored_state(busy), IKE_REKEYING);
	ck_assert_int_eq(standby_role->get(standby_role), SASYNC_ROLE_PRIMARY);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVERS), 2);

	/* a demotion asked for here is no switchover to cancel: it waits for
	 * the exchange still in flight and demotes */
	ck_assert(switchover->start(switchover, "ha-demote command", FALSE,
								10000));
	switchover->cancel(switchover);
	ck_assert(wait_restored_state(idle, IKE_PASSIVE));
	ck_assert_int_eq(restored_state(busy), IKE_REKEYING);
	restored_answered(busy);
	ck_assert(wait_restored_state(busy, IKE_PASSIVE));
	processor_idle();
	ck_assert(!switchover->is_running(switchover));
	ck_assert_int_eq(switchover->get_passive(switchover), 2);
	ck_assert_int_eq(standby_role->get(standby_role), SASYNC_ROLE_STANDBY);
	ck_assert_int_eq(ctr(SASYNC_CTR_SWITCHOVERS), 3);
	charon->sender = NULL;
	switchover->destroy(switchover);
	promoted->destroy(promoted);
}
END_TEST

/**
 * CHILD SA records whose selectors the child config does not allow (all
 * traffic, another tunnel's subnet) are rejected, nothing reaches the
 * kernel; selectors within the config are accepted
 */
START_TEST(test_reject_ts)
{
	pair_t *pair;
	u_int children, sas_in;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	establish(pair);
	apply_one(0);
	check_no_apply_failure();

	/* the kernel interface is the active node's as well */
	child_install_opts(pair->sa, 0xc2500001, 0xc3500001, &(child_opts_t){
						.remote_ts = "0.0.0.0/0" });
	child_install_opts(pair->sa, 0xc2500002, 0xc3500002, &(child_opts_t){
						.local_ts = "10.1.0.0/16", .remote_ts = "10.3.0.0/16" });
	sas_in = ipsec->sas_in;
	apply_range(1, rec_count());
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_TS), 2);
	ck_assert_int_eq(ctr(SASYNC_CTR_APPLY_FAILED), 2);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 0);
	ck_assert_int_eq(ipsec->sas_in, sas_in);

	/* narrower than the config: what charon would have negotiated too */
	child_install_opts(pair->sa, 0xc2500003, 0xc3500003, &(child_opts_t){
						.local_ts = "10.1.4.0/24", .remote_ts = "10.2.5.7/32" });
	sas_in = ipsec->sas_in;
	apply_one(rec_count() - 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_TS), 2);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 1);
	ck_assert_int_eq(ipsec->sas_in, sas_in + 1);
}
END_TEST

/**
 * Keys of the wrong length for the proposal, and an IKEv1 phase 1 IV that
 * is not one cipher block, are rejected; the right IV is accepted
 */
START_TEST(test_reject_keys)
{
	sasync_ike_keys_t *entry;
	keymat_v1_t *keymat;
	pair_t *pair, *v1;
	chunk_t iv;
	u_int children, from;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	establish(pair);
	child_install_opts(pair->sa, 0xc2600001, 0xc3600001, &(child_opts_t){
						.key_len = 16 });
	apply_range(0, rec_count());
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_KEYS), 1);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 0);

	/* IKEv1 with an IV of 5 bytes, then with the SA's own (16, AES) */
	for (from = 0; from < 2; from++)
	{
		v1 = pair_create(IKEV1, FALSE, NULL);
		pair_derive(v1, IKEV1_PROPOSAL, NULL, v1->sa);
		keymat = (keymat_v1_t*)v1->sa->get_keymat(v1->sa);
		ck_assert(keymat->get_iv(keymat, 0, &iv));
		ck_assert_int_eq(iv.len, 16);
		active_keys->lock(active_keys);
		entry = active_keys->get_ike(active_keys,
									 v1->sa->get_unique_id(v1->sa), FALSE);
		ck_assert(entry);
		chunk_free(&entry->iv);
		entry->iv = chunk_clone(from ? iv : chunk_create(iv.ptr, 5));
		active_keys->unlock(active_keys);
		establish(v1);
		apply_one(rec_count() - 1);
		ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_KEYS), 2);
		ck_assert_int_eq(held_state(v1->sa, &children),
						 from ? IKE_PASSIVE : IKE_CREATED);
	}
}
END_TEST

/**
 * An IKE SA whose local address is not among those of its IKE config is
 * not restored; a restored one does not move to such an address (no
 * MOBIKE, no NAT)
 */
START_TEST(test_reject_hosts)
{
	pair_t *pair;
	host_t *local, *remote;
	u_int children;
	ike_sa_t *copy;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair->sa->set_my_host(pair->sa, host_create_from_string("192.0.2.99",
															500));
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_install(pair->sa, 0xc2700001, 0xc3700001);
	establish(pair);
	apply_range(0, 2);
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_HOSTS), 1);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_CREATED);
	/* its CHILD SA waits for an IKE SA that won't come (and expires) */
	ck_assert_int_eq(apply->get_waiting(apply), 1);

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	establish(pair);
	apply_one(rec_count() - 1);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_PASSIVE);
	local = host_create_from_string("192.0.2.99", 500);
	remote = host_create_from_string("203.0.113.5", 500);
	charon->bus->set_sa(charon->bus, pair->sa);
	charon->bus->ike_update(charon->bus, pair->sa, local, remote);
	charon->bus->set_sa(charon->bus, NULL);
	apply_one(rec_count() - 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_HOSTS), 2);
	copy = restored(pair->sa);
	ck_assert(copy);
	ck_assert(!copy->get_my_host(copy)->ip_equals(copy->get_my_host(copy),
												 local));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);

	/* a remote move is fine: the config allows any peer address */
	remote->destroy(remote);
	remote = host_create_from_string("203.0.113.77", 4500);
	local->destroy(local);
	local = host_create_from_string("192.0.2.1", 500);
	charon->bus->set_sa(charon->bus, pair->sa);
	charon->bus->ike_update(charon->bus, pair->sa, local, remote);
	charon->bus->set_sa(charon->bus, NULL);
	apply_one(rec_count() - 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_REJECT_HOSTS), 2);
	copy = restored(pair->sa);
	ck_assert(copy->get_other_host(copy)->equals(copy->get_other_host(copy),
												 remote));
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	local->destroy(local);
	remote->destroy(remote);
}
END_TEST

/**
 * The same CHILD SA record waiting again and again (a resync each time its
 * IKE SA is not there) waits once
 */
START_TEST(test_waiting_deduplicated)
{
	pair_t *pair;
	u_int children, i;

	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	child_install(pair->sa, 0xc2800001, 0xc3800001);
	child_install(pair->sa, 0xc2800002, 0xc3800002);
	establish(pair);
	ck_assert_int_eq(rec_count(), 3);
	for (i = 0; i < 5; i++)
	{
		apply_range(1, 3);
	}
	ck_assert_int_eq(apply->get_waiting(apply), 2);
	apply_one(0);
	check_no_apply_failure();
	ck_assert_int_eq(apply->get_waiting(apply), 0);
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 2);
}
END_TEST

static sasync_msg_t *wait_record(sasync_msg_type_t type, uint64_t spi_i,
								 uint32_t spi_in, uint64_t mid)
{
	sasync_msg_t *msg = sasync_msg_create(type);

	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_I, spi_i);
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_R, 7);
	if (spi_in)
	{
		msg->add_int(msg, SASYNC_ATTR_SPI_IN, spi_in);
	}
	msg->add_int(msg, SASYNC_ATTR_MID_I, mid);
	return msg;
}

static sasync_wait_status_t wait_add(sasync_wait_t *wait, sasync_msg_t *msg)
{
	sasync_wait_status_t status;

	status = wait->add(wait, msg, 1);
	msg->destroy(msg);
	return status;
}

/**
 * The queue itself: replaced in place, capped, a newer IKE_ADD drops the
 * IKE_MID behind the older, deletes drop what they make pointless
 */
START_TEST(test_wait_queue)
{
	sasync_wait_t *wait;
	sasync_msg_t *msg, *del;
	uint64_t value;
	time_t since;

	wait = sasync_wait_create(3);
	ck_assert_int_eq(wait_add(wait, wait_record(SASYNC_MSG_IKE_ADD, 1, 0, 1)),
					 SASYNC_WAIT_ADDED);
	ck_assert_int_eq(wait_add(wait, wait_record(SASYNC_MSG_IKE_MID, 1, 0, 2)),
					 SASYNC_WAIT_ADDED);
	ck_assert_int_eq(wait_add(wait, wait_record(SASYNC_MSG_CHILD_ADD, 2, 9, 0)),
					 SASYNC_WAIT_ADDED);
	ck_assert_int_eq(wait_add(wait, wait_record(SASYNC_MSG_CHILD_ADD, 2, 8, 0)),
					 SASYNC_WAIT_FULL);
	ck_assert_int_eq(wait->get_count(wait), 3);
	msg = wait_record(SASYNC_MSG_IKE_ADD, 1, 0, 0);
	ck_assert(wait->has(wait, SASYNC_MSG_IKE_ADD, msg));
	msg->destroy(msg);
	/* a newer IKE_ADD replaces the older in its place, and the IKE_MID */
	ck_assert_int_eq(wait_add(wait, wait_record(SASYNC_MSG_IKE_ADD, 1, 0, 3)),
					 SASYNC_WAIT_REPLACED);
	ck_assert_int_eq(wait->get_count(wait), 2);
	ck_assert_int_eq(wait_add(wait, wait_record(SASYNC_MSG_CHILD_ADD, 2, 8, 0)),
					 SASYNC_WAIT_ADDED);
	/* a CHILD_DELETE drops its CHILD SA's record only */
	del = wait_record(SASYNC_MSG_CHILD_DELETE, 2, 9, 0);
	ck_assert_int_eq(wait->drop(wait, del), 1);
	del->destroy(del);

	ck_assert(wait->remove_first(wait, &msg, &since));
	ck_assert_int_eq(msg->get_type(msg), SASYNC_MSG_IKE_ADD);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_MID_I, &value));
	ck_assert_int_eq(value, 3);
	msg->destroy(msg);
	ck_assert(wait->remove_first(wait, &msg, &since));
	ck_assert_int_eq(msg->get_type(msg), SASYNC_MSG_CHILD_ADD);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_SPI_IN, &value));
	ck_assert_int_eq(value, 8);
	msg->destroy(msg);
	ck_assert(!wait->remove_first(wait, &msg, &since));

	/* an IKE_DELETE drops every record of its IKE SA */
	wait_add(wait, wait_record(SASYNC_MSG_IKE_ADD, 4, 0, 1));
	wait_add(wait, wait_record(SASYNC_MSG_CHILD_REKEYED, 4, 5, 0));
	wait_add(wait, wait_record(SASYNC_MSG_IKE_ADD, 6, 0, 1));
	del = wait_record(SASYNC_MSG_IKE_DELETE, 4, 0, 0);
	ck_assert_int_eq(wait->drop(wait, del), 2);
	del->destroy(del);
	ck_assert_int_eq(wait->get_count(wait), 1);
	wait->destroy(wait);
}
END_TEST

/**
 * A restored CHILD SA's %unique interface ids are reserved off the record
 * path, at the latest at promotion: a new CHILD SA there never gets them
 */
START_TEST(test_unique_reserved)
{
	child_cfg_create_t data = {
		.mode = MODE_TUNNEL,
		.if_id_in = IF_ID_UNIQUE,
		.if_id_out = IF_ID_UNIQUE,
	};
	sasync_promote_t *promote;
	child_cfg_t *uniq;
	uint32_t in = IF_ID_UNIQUE, out = IF_ID_UNIQUE, held;
	pair_t *pair;
	u_int children;

	uniq = child_cfg_create("uniq", &data);
	uniq->add_proposal(uniq, proposal_create_from_string(PROTO_ESP,
														 ESP_PROPOSAL));
	uniq->add_traffic_selector(uniq, TRUE,
			traffic_selector_create_from_cidr("10.1.0.0/16", 0, 0, 65535));
	uniq->add_traffic_selector(uniq, FALSE,
			traffic_selector_create_from_cidr("10.2.0.0/16", 0, 0, 65535));
	cfg_v2->add_child_cfg(cfg_v2, uniq);

	/* far ahead of this process' counter, as an active node's can be */
	allocate_unique_if_ids(&in, &out);
	held = in + 100000;
	pair = pair_create(IKEV2, TRUE, NULL);
	pair_derive(pair, IKE_PROPOSAL_AEAD, NULL, pair->sa);
	establish(pair);
	child_install_opts(pair->sa, 0xc2900001, 0xc3900001, &(child_opts_t){
						.cfg = uniq, .if_id = held });
	apply_range(0, rec_count());
	check_no_apply_failure();
	ck_assert_int_eq(held_state(pair->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 1);
	/* not on the record path: its job has no thread to run on here, unless
	 * an earlier test started some (CK_FORK=no, under valgrind) */
	in = out = IF_ID_UNIQUE;
	allocate_unique_if_ids(&in, &out);
	ck_assert(in < held ||
			  lib->processor->get_total_threads(lib->processor) > 0);

	lib->settings->set_bool(lib->settings,
				"%s.plugins.sasync.updown_on_promote", FALSE, lib->ns);
	promote = sasync_promote_create(standby_role, standby_ctr, apply,
									standby_keys, NULL);
	ck_assert(promote->promote(promote, "test", NULL));
	in = out = IF_ID_UNIQUE;
	allocate_unique_if_ids(&in, &out);
	ck_assert_msg(in > held, "new interface id %u, restored one %u", in, held);
	promote->destroy(promote);
}
END_TEST

/**
 * An IKE rekey that completes while a resync runs: the primary's resync
 * job skips the old SA (replaced by the time it gets there) and the new
 * one came after the resync started, so only the rekey's IKE_ADD names the
 * new SA and no record names the CHILD SAs it took over. They are kept:
 * the sweep at the end destroyed them before (found by review)
 */
START_TEST(test_resync_during_rekey)
{
	pair_t *old, *new;
	u_int from, children;

	old = pair_established(0xc2f10001, 0xc3f10001);
	apply_range(0, rec_count());
	check_no_apply_failure();

	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_START));
	from = rec_count();
	new = pair_create(IKEV2, TRUE, old);
	pair_derive(new, IKE_PROPOSAL_AEAD, old, old->sa);
	establish_rekeyed(old, new);
	apply_range(from, rec_count());
	apply_msg(sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	check_no_apply_failure();
	ck_assert_int_eq(held_state(new->sa, &children), IKE_PASSIVE);
	ck_assert_int_eq(children, 1);
	ck_assert_int_eq(ctr(SASYNC_CTR_RESYNC_REMOVED), 0);
}
END_TEST

/**
 * An IKEv1 reauthentication in flight on the primary: charon moved the
 * CHILD SAs to the new SA at its start (queue_ike_reauth()), the new SA is
 * not synced yet and the old one is REKEYING. A resync names the old SA
 * and, under it, the CHILD SAs the new one holds now: the partner keeps
 * them until the new SA's IKE_ADD takes them over (found by review; the
 * partner's sweep destroyed them before)
 */
START_TEST(test_resync_names_moved)
{
	sasync_capture_t *promoted;
	rec_link_t *link;
	pair_t *old;
	child_sa_t *child_sa;
	enumerator_t *enumerator;
	ike_sa_t *copy, *new;

	old = pair_create(IKEV1, FALSE, NULL);
	pair_derive(old, IKEV1_PROPOSAL, NULL, old->sa);
	establish(old);
	child_install(old->sa, 0xc2f20001, 0xc3f20001);
	apply_range(0, rec_count());
	check_no_apply_failure();

	promoted = capture_as_primary(&link);
	/* what queue_ike_reauth() does to the copy, as the node's own SA */
	copy = restored(old->sa);
	new = charon->ike_sa_manager->create_new(charon->ike_sa_manager, IKEV1,
											 TRUE);
	new->set_peer_cfg(new, copy->get_peer_cfg(copy));
	promoted->listener.children_migrate(&promoted->listener, copy,
							new->get_id(new), new->get_unique_id(new));
	enumerator = copy->create_child_sa_enumerator(copy);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		copy->remove_child_sa(copy, enumerator);
		new->add_child_sa(new, child_sa);
	}
	enumerator->destroy(enumerator);
	promoted->listener.children_migrate(&promoted->listener, new, NULL, 0);
	new->set_state(new, IKE_CONNECTING);
	copy->set_state(copy, IKE_REKEYING);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, new);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, copy);
	charon->bus->set_sa(charon->bus, NULL);

	resync_all(promoted);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_RESYNC_DONE, NULL), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_IKE_ADD, old->sa), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_CHILD_ADD, old->sa), 1);
	ck_assert_int_eq(rec_count_of(link, SASYNC_MSG_CHILD_ADD, NULL), 1);
	promoted->destroy(promoted);
	link->public.destroy(&link->public);
}
END_TEST

Suite *lifecycle_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("lifecycle");

	tc = tcase_create("establish");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_establish_restore_delete, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("IKEv2 rekey");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_rekey, 0, 16);
	tcase_add_test(tc, test_rekey_twice);
	tcase_add_test(tc, test_rekey_dialup);
	suite_add_tcase(s, tc);

	tc = tcase_create("IKEv1 reauth");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ikev1_reauth);
	suite_add_tcase(s, tc);

	tc = tcase_create("waiting");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_waiting_child_deleted, 0, 4);
	tcase_add_test(tc, test_rekeyed_unknown_child);
	tcase_add_test(tc, test_waiting_for_connection);
	tcase_add_loop_test(tc, test_pending_then_added, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("resync");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_resync_sweeps_deleted);
	tcase_add_test(tc, test_resync_after_missed_rekey);
	tcase_add_test(tc, test_resync_reinstates_child);
	tcase_add_test(tc, test_resync_names_held);
	tcase_add_test(tc, test_resync_during_rekey);
	tcase_add_test(tc, test_resync_names_moved);
	suite_add_tcase(s, tc);

	tc = tcase_create("promotion");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_promote_while_applying);
	tcase_add_test(tc, test_promote_drops_waiting);
	tcase_add_test(tc, test_demote);
	tcase_add_test(tc, test_resync_drops_waiting);
	tcase_add_test(tc, test_handover_after_demotion);
	tcase_add_test(tc, test_handover_mids);
	tcase_add_test(tc, test_promote_deletes_rekeyed);
	tcase_add_test(tc, test_switchover_deletes_at_peer);
	tcase_add_test(tc, test_switchover_waits);
	tcase_add_test(tc, test_promote_spreads_dpd);
	tcase_add_test(tc, test_passive_lost);
	tcase_add_test(tc, test_mid_records_never_go_back);
	tcase_add_test(tc, test_rekey_waits_for_old);
	tcase_add_test(tc, test_rekey_before_old);
	suite_add_tcase(s, tc);

	tc = tcase_create("validation");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reject_own_sa);
	tcase_add_test(tc, test_demote_hands_over);
	tcase_add_test(tc, test_reject_ts);
	tcase_add_test(tc, test_reject_keys);
	tcase_add_test(tc, test_reject_hosts);
	tcase_add_test(tc, test_waiting_deduplicated);
	tcase_add_test(tc, test_wait_queue);
	tcase_add_test(tc, test_unique_reserved);
	suite_add_tcase(s, tc);
	return s;
}
