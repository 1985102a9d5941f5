/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * B1: SA pairs (IKE + CHILD) applied per second on a standby, in-process.
 *
 *   b1 N [CSV]
 *
 * One process holds both nodes, on charon's real in-process bus and IKE_SA
 * manager, set up as tests/unit/test_lifecycle.c does it (the runner's
 * libcharon_init() makes no managers; this makes them, a stand-in kernel
 * IPsec backend that accepts and counts SAs, and a config backend with the
 * connection "site"):
 *
 *  1. capture (not timed into the rate): N IKEv2 SAs of the "active" node,
 *     real ike_sa_t objects outside the manager, keys derived by charon's
 *     keymat from one key exchange (its shared secret reused: the per-SA
 *     inputs are the SPIs and fresh nonces), one CHILD SA each installed as
 *     child_create does, driven through the bus; the real capture listener
 *     encodes their records (IKE_ADD, CHILD_ADD) into a recording link;
 *  2. apply (timed): the records sent in order through a real
 *     sasync_link_t to a second one over loopback TCP (handshake, AEAD
 *     frames), whose real dispatcher hands them to the real apply of a
 *     standby, which restores the SAs in charon's manager and installs the
 *     CHILD SAs through the stand-in kernel. From the first send to the
 *     N-th IKE SA in the manager and the N-th inbound CHILD SA installed;
 *  3. limit (timed): the same records through a fresh pair of links whose
 *     receiver only counts them.
 *
 * Records are sent at the pace the sender's queue drains (never above
 * SASYNC_QUEUE_HIGH queued, as a bulk resync does): the queue drops its
 * oldest records when full. Prints one line per phase and, with CSV, appends
 * "phase,n,records,bytes,seconds,pairs_per_s,us_per_pair,
 * cpu_us_per_pair" (CPU: the whole process, all threads, user + system,
 * over the phase: both links, the TCP stack and the apply).
 */

#include "sasync_capture.h"
#include "sasync_apply.h"
#include "sasync_dispatch.h"
#include "sasync_outbound.h"
#include "sasync_keystore.h"
#include "sasync_counters.h"
#include "sasync_link.h"
#include "sasync_role.h"

#include <stdio.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <daemon.h>
#include <collections/array.h>
#include <sa/ike_sa_manager.h>
#include <sa/child_sa_manager.h>
#include <sa/ikev2/keymat_v2.h>
#include <config/backend.h>
#include <kernel/kernel_ipsec.h>

#define PLUGINS "random nonce sha1 sha2 hmac aes gcm chapoly openssl kdf"
#define IKE_PROPOSAL "aes256gcm16-prfsha256-curve25519"
#define ESP_PROPOSAL "aes128gcm16"
#define SECRET "sasync bench b1 secret, 0123456789"

/** give up waiting after this long (s): a lost record would hang forever */
#define WAIT_MAX_S 600

#define die(...) ({ fprintf(stderr, "b1: " __VA_ARGS__); \
					fprintf(stderr, "\n"); exit(1); })

static double now()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/** CPU time of the process (all threads, user + system), in s */
static double cpu()
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		   ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/** CPU time of the last timed phase */
static double phase_cpu;

/*
 * Recording link of the active node: the capture's output
 */
static array_t *records;
static size_t record_bytes;

static void rec_send(sasync_link_t *this, chunk_t payload)
{
	chunk_t *copy;

	INIT(copy);
	*copy = chunk_clone(payload);
	/* the bus calls the capture on this one thread */
	array_insert(records, ARRAY_TAIL, copy);
	record_bytes += payload.len;
}

static void rec_send_to(sasync_link_t *this, host_t *to, chunk_t payload)
{
	rec_send(this, payload);
}

static void rec_nop(sasync_link_t *this, void *cb, void *data)
{
}

static enumerator_t *rec_peers(sasync_link_t *this)
{
	return enumerator_create_empty();
}

/* records are recorded as they come: nothing waits for a flush */
static void rec_flush(sasync_link_t *this)
{
}

static void rec_destroy(sasync_link_t *this)
{
}

static sasync_link_t rlink = {
	.send = rec_send,
	.send_to = rec_send_to,
	.send_more = rec_send_to,
	.flush = rec_flush,
	.set_receiver = (void*)rec_nop,
	.set_up_cb = (void*)rec_nop,
	.set_error_cb = (void*)rec_nop,
	.create_peer_enumerator = rec_peers,
	.destroy = rec_destroy,
};

/*
 * Stand-in kernel IPsec backend: accepts everything, counts SAs
 */
static kernel_ipsec_t ipsec;
static u_int sas_in, sas_out;

static kernel_feature_t ipsec_get_features(kernel_ipsec_t *this)
{
	return KERNEL_POLICY_SPI;
}

static status_t ipsec_add_sa(kernel_ipsec_t *this, kernel_ipsec_sa_id_t *id,
							 kernel_ipsec_add_sa_t *data)
{
	__atomic_add_fetch(data->inbound ? &sas_in : &sas_out, 1,
					   __ATOMIC_SEQ_CST);
	return SUCCESS;
}

static status_t ipsec_not_supported()
{
	return NOT_SUPPORTED;
}

static void ipsec_destroy(kernel_ipsec_t *this)
{
}

static kernel_ipsec_t *ipsec_create()
{
	ipsec = (kernel_ipsec_t){
		.get_features = ipsec_get_features,
		.get_spi = (void*)return_failed,
		.get_cpi = (void*)return_failed,
		.add_sa = ipsec_add_sa,
		.update_sa = (void*)return_success,
		.query_sa = (void*)ipsec_not_supported,
		.del_sa = (void*)return_success,
		.flush_sas = (void*)return_success,
		.add_policy = (void*)return_success,
		.query_policy = (void*)ipsec_not_supported,
		.del_policy = (void*)return_success,
		.flush_policies = (void*)return_success,
		.bypass_socket = (void*)return_true,
		.enable_udp_decap = (void*)return_true,
		.destroy = ipsec_destroy,
	};
	return &ipsec;
}

static u_int get_sas_in()
{
	return __atomic_load_n(&sas_in, __ATOMIC_SEQ_CST);
}

/*
 * Config backend: connection "site" with CHILD "net", on both nodes
 */
static peer_cfg_t *peer_cfg;
static child_cfg_t *child_cfg;

static peer_cfg_t *get_peer_cfg_by_name(backend_t *this, char *name)
{
	return streq(name, "site") ? peer_cfg->get_ref(peer_cfg) : NULL;
}

static enumerator_t *backend_empty(backend_t *this)
{
	return enumerator_create_empty();
}

static backend_t backend = {
	.create_peer_cfg_enumerator = (void*)backend_empty,
	.create_ike_cfg_enumerator = (void*)backend_empty,
	.get_peer_cfg_by_name = get_peer_cfg_by_name,
};

static void config_create()
{
	child_cfg_create_t child = {
		.mode = MODE_TUNNEL,
	};
	ike_cfg_create_t ike = {
		.version = IKEV2,
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

	child_cfg = child_cfg_create("net", &child);
	child_cfg->add_proposal(child_cfg,
						proposal_create_from_string(PROTO_ESP, ESP_PROPOSAL));
	child_cfg->add_traffic_selector(child_cfg, TRUE,
			traffic_selector_create_from_cidr("10.1.0.0/16", 0, 0, 65535));
	/* the road warriors' virtual IPs */
	child_cfg->add_traffic_selector(child_cfg, FALSE,
			traffic_selector_create_from_cidr("100.64.0.0/10", 0, 0, 65535));
	ike_cfg = ike_cfg_create(&ike);
	ike_cfg->add_proposal(ike_cfg, proposal_create_default(PROTO_IKE));
	peer_cfg = peer_cfg_create("site", ike_cfg, &peer);
	peer_cfg->add_child_cfg(peer_cfg, child_cfg->get_ref(child_cfg));
	charon->backends->add_backend(charon->backends, &backend);
}

/*
 * Phase 1: the active node's SAs through the real capture
 */
static key_exchange_t *ke;
static proposal_t *proposal;

/** keys of IKE SA i, derived by its keymat as ike_init does, then the
 * bus's ike_keys event with it as the thread's SA */
static void derive(ike_sa_t *sa, rng_t *rng)
{
	ike_sa_id_t *id = sa->get_id(sa);
	keymat_v2_t *keymat = (keymat_v2_t*)sa->get_keymat(sa);
	chunk_t ni, nr;

	sa->set_proposal(sa, proposal);
	if (!rng->allocate_bytes(rng, 32, &ni) ||
		!rng->allocate_bytes(rng, 32, &nr))
	{
		die("no nonce");
	}
	charon->bus->set_sa(charon->bus, sa);
	if (!keymat->derive_ike_keys(keymat, proposal, ke, ni, nr, id,
								 PRF_UNDEFINED, chunk_empty))
	{
		die("deriving IKE keys failed");
	}
	charon->bus->ike_keys(charon->bus, sa, ke, chunk_empty, ni, nr, NULL,
						  NULL, AUTH_NONE);
	charon->bus->set_sa(charon->bus, NULL);
	chunk_free(&ni);
	chunk_free(&nr);
}

/** a CHILD SA installed as child_create does */
static void child_install(ike_sa_t *ike_sa, u_int i, rng_t *rng)
{
	uint32_t spi_in = 0xc2000000 + i, spi_out = 0xc3000000 + i;
	char vip[32];
	child_sa_create_t data = {};
	linked_list_t *my_ts, *other_ts;
	chunk_t encr_i, encr_r, none = chunk_empty;
	child_sa_t *child_sa;
	proposal_t *esp;

	charon->bus->set_sa(charon->bus, ike_sa);
	child_sa = child_sa_create(ike_sa->get_my_host(ike_sa),
							   ike_sa->get_other_host(ike_sa), child_cfg, &data);
	esp = proposal_create_from_string(PROTO_ESP, ESP_PROPOSAL);
	child_sa->set_proposal(child_sa, esp);
	esp->destroy(esp);
	child_sa->set_protocol(child_sa, PROTO_ESP);
	child_sa->set_mode(child_sa, MODE_TUNNEL);
	my_ts = linked_list_create_with_items(
			traffic_selector_create_from_cidr("10.1.0.0/16", 0, 0, 65535),
			NULL);
	/* to the peer's virtual IP: a reqid each, as charon allocates them by
	 * selectors (SAs sharing one reqid share a list in the outbound guard) */
	snprintf(vip, sizeof(vip), "100.%u.%u.%u/32", 64 + (i >> 16),
			 (i >> 8) & 0xff, i & 0xff);
	other_ts = linked_list_create_with_items(
			traffic_selector_create_from_cidr(vip, 0, 0, 65535), NULL);
	child_sa->set_policies(child_sa, my_ts, other_ts);
	my_ts->destroy_offset(my_ts, offsetof(traffic_selector_t, destroy));
	other_ts->destroy_offset(other_ts, offsetof(traffic_selector_t, destroy));
	child_sa->set_state(child_sa, CHILD_INSTALLING);
	if (!rng->allocate_bytes(rng, 20, &encr_i) ||
		!rng->allocate_bytes(rng, 20, &encr_r))
	{
		die("no CHILD keys");
	}
	if (child_sa->install(child_sa, encr_r, none, htonl(spi_in), 0, TRUE,
						  TRUE, FALSE) != SUCCESS ||
		child_sa->install(child_sa, encr_i, none, htonl(spi_out), 0, TRUE,
						  FALSE, FALSE) != SUCCESS ||
		child_sa->install_policies(child_sa) != SUCCESS)
	{
		die("installing the CHILD SA failed");
	}
	charon->bus->child_derived_keys(charon->bus, child_sa, TRUE, encr_i,
									encr_r, none, none);
	chunk_clear(&encr_i);
	chunk_clear(&encr_r);
	ike_sa->add_child_sa(ike_sa, child_sa);
	child_sa->set_state(child_sa, CHILD_INSTALLED);
	charon->bus->set_sa(charon->bus, NULL);
}

/** IKE SA i of the active node, with its CHILD SA, established */
static ike_sa_t *active_sa(u_int i, rng_t *rng)
{
	ike_sa_id_t *id;
	ike_sa_t *sa;
	char buf[64];

	/* distinct, nonzero SPIs */
	id = ike_sa_id_create(IKEV2_MAJOR_VERSION, 0x1000000000000000ULL + i,
						  0x2000000000000000ULL + i, FALSE);
	sa = ike_sa_create(id, FALSE, IKEV2);
	id->destroy(id);
	sa->set_peer_cfg(sa, peer_cfg);
	sa->set_my_host(sa, host_create_from_string("192.0.2.1", 500));
	/* road warriors: an identity and address each (charon's table of
	 * connected peers keeps one list per pair of identities, one shared
	 * by all would be walked in full on every checkin) */
	snprintf(buf, sizeof(buf), "172.%u.%u.%u", 16 + (i >> 16),
			 (i >> 8) & 0xff, i & 0xff);
	sa->set_other_host(sa, host_create_from_string(buf, 500));
	sa->set_my_id(sa, identification_create_from_string("gw.example.org"));
	snprintf(buf, sizeof(buf), "client-%u@example.org", i);
	sa->set_other_id(sa, identification_create_from_string(buf));
	derive(sa, rng);
	/* installed before the SA is established, as in IKE_AUTH: the capture
	 * holds it back until the IKE SA was sent */
	child_install(sa, i, rng);
	charon->bus->set_sa(charon->bus, sa);
	sa->set_state(sa, IKE_ESTABLISHED);
	charon->bus->set_sa(charon->bus, NULL);
	return sa;
}

static double capture_run(u_int n)
{
	sasync_role_t *role;
	sasync_counters_t *ctr;
	sasync_keystore_t *keys;
	sasync_capture_t *capture;
	array_t *sas;
	ike_sa_t *sa;
	rng_t *rng;
	chunk_t pub;
	double t0, t;
	u_int i;

	proposal = proposal_create_from_string(PROTO_IKE, IKE_PROPOSAL);
	ke = lib->crypto->create_ke(lib->crypto, CURVE_25519);
	if (!proposal || !ke || !ke->get_public_key(ke, &pub) ||
		!ke->set_public_key(ke, pub))
	{
		die("no curve25519 key exchange");
	}
	chunk_free(&pub);
	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	role = sasync_role_create(SASYNC_ROLE_PRIMARY);
	ctr = sasync_counters_create();
	keys = sasync_keystore_create();
	capture = sasync_capture_create(&rlink, role, ctr, keys);
	charon->bus->add_listener(charon->bus, &capture->listener);
	sas = array_create(0, 0);

	phase_cpu = cpu();
	t0 = now();
	for (i = 0; i < n; i++)
	{
		array_insert(sas, ARRAY_TAIL, active_sa(i, rng));
	}
	t = now() - t0;
	phase_cpu = cpu() - phase_cpu;

	/* the active node is done: no delete records for its SAs */
	charon->bus->remove_listener(charon->bus, &capture->listener);
	while (array_remove(sas, ARRAY_HEAD, &sa))
	{
		charon->bus->set_sa(charon->bus, sa);
		sa->destroy(sa);
		charon->bus->set_sa(charon->bus, NULL);
	}
	array_destroy(sas);
	/* count the standby's installs only */
	__atomic_store_n(&sas_in, 0, __ATOMIC_SEQ_CST);
	capture->destroy(capture);
	keys->destroy(keys);
	ctr->destroy(ctr);
	role->destroy(role);
	rng->destroy(rng);
	ke->destroy(ke);
	proposal->destroy(proposal);
	if (array_count(records) != 2 * n)
	{
		die("capture sent %u records for %u SAs, not %u",
			array_count(records), n, 2 * n);
	}
	return t;
}

/*
 * Phases 2 and 3: the records through two real links
 */

/** a port that was free a moment ago */
static uint16_t free_port()
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sin);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr*)&sin, len) ||
		getsockname(fd, (struct sockaddr*)&sin, &len))
	{
		die("no free port");
	}
	close(fd);
	return ntohs(sin.sin_port);
}

/** link on 127.0.0.1:port to 127.0.0.1:peer; peer 0 for one that only
 * accepts (it connects to port 1, where nobody listens) */
static sasync_link_t *link_create(uint16_t port, uint16_t peer,
								  sasync_counters_t *ctr)
{
	char local[32], peers[32], name[32];
	sasync_link_t *link;

	snprintf(local, sizeof(local), "127.0.0.1:%u", port);
	snprintf(peers, sizeof(peers), "127.0.0.1:%u", peer ?: 1);
	snprintf(name, sizeof(name), "node-%u", port);
	link = sasync_link_create(local, peers, name, chunk_from_str(SECRET), ctr);
	if (!link)
	{
		die("no link on %s", local);
	}
	return link;
}

/** state of the sender's only partner */
static sasync_link_peer_t peer_state(sasync_link_t *link)
{
	sasync_link_peer_t *state, copy = {};
	enumerator_t *enumerator;

	enumerator = link->create_peer_enumerator(link);
	if (enumerator->enumerate(enumerator, &state))
	{
		copy = *state;
	}
	enumerator->destroy(enumerator);
	return copy;
}

/** wait until cond() holds, polling every ms */
static void wait_for(bool (*cond)(void*), void *data, char *what)
{
	double t0 = now();

	while (!cond(data))
	{
		if (now() - t0 > WAIT_MAX_S)
		{
			die("no %s after %d s", what, WAIT_MAX_S);
		}
		usleep(1000);
	}
}

static bool is_up(sasync_link_t *link)
{
	return peer_state(link).out_up;
}

static bool is_drained(sasync_link_t *link)
{
	return peer_state(link).queued < SASYNC_QUEUE_HIGH;
}

/** send all records in order, at the pace the queue drains */
static void send_all(sasync_link_t *link)
{
	chunk_t *record;
	u_int i;

	for (i = 0; i < array_count(records); i++)
	{
		if (i % 1024 == 0)
		{
			wait_for((void*)is_drained, link, "queue drain");
		}
		array_get(records, i, &record);
		link->send(link, *record);
	}
}

/** the standby holds all n SA pairs */
static u_int target;

static bool all_applied(void *data)
{
	return get_sas_in() >= target &&
		   charon->ike_sa_manager->get_count(charon->ike_sa_manager) >= target;
}

static double apply_run(u_int n)
{
	sasync_role_t *role;
	sasync_counters_t *ctr, *tx_ctr;
	sasync_keystore_t *keys;
	sasync_outbound_t *outbound;
	sasync_apply_t *apply;
	sasync_capture_t *capture;
	sasync_dispatch_t *dispatch;
	sasync_link_t *tx, *rx;
	uint16_t port;
	double t0, t;

	role = sasync_role_create(SASYNC_ROLE_STANDBY);
	ctr = sasync_counters_create();
	tx_ctr = sasync_counters_create();
	keys = sasync_keystore_create();
	outbound = sasync_outbound_create(role, ctr, keys);
	charon->bus->add_listener(charon->bus, &outbound->bus);
	apply = sasync_apply_create(role, ctr, outbound, keys);

	port = free_port();
	rx = link_create(port, 0, ctr);
	/* the standby's own capture only answers resync requests, off the bus */
	capture = sasync_capture_create(rx, role, ctr, keys);
	dispatch = sasync_dispatch_create(rx, role, ctr, capture, apply);
	tx = link_create(free_port(), port, tx_ctr);
	wait_for((void*)is_up, tx, "connection");

	target = n;
	phase_cpu = cpu();
	t0 = now();
	send_all(tx);
	wait_for(all_applied, NULL, "SAs applied");
	t = now() - t0;
	phase_cpu = cpu() - phase_cpu;

	if (ctr->get(ctr, SASYNC_CTR_APPLY_FAILED) ||
		tx_ctr->get(tx_ctr, SASYNC_CTR_SYNC_DROPPED) ||
		apply->get_waiting(apply))
	{
		die("apply failed %"PRIu64", dropped %"PRIu64", waiting %u",
			ctr->get(ctr, SASYNC_CTR_APPLY_FAILED),
			tx_ctr->get(tx_ctr, SASYNC_CTR_SYNC_DROPPED),
			apply->get_waiting(apply));
	}
	if (get_sas_in() != n ||
		charon->ike_sa_manager->get_count(charon->ike_sa_manager) != n)
	{
		die("standby holds %u IKE SAs, %u inbound CHILD SAs, not %u",
			charon->ike_sa_manager->get_count(charon->ike_sa_manager),
			get_sas_in(), n);
	}
	tx->destroy(tx);
	rx->destroy(rx);
	dispatch->destroy(dispatch);
	capture->destroy(capture);
	/* the restored SAs stay until the process ends: no delete exchange */
	return t;
}

/** records the limit's receiver got */
static u_int received;

static void count_record(void *data, host_t *peer, chunk_t payload)
{
	__atomic_add_fetch(&received, 1, __ATOMIC_SEQ_CST);
}

static bool all_received(void *data)
{
	return __atomic_load_n(&received, __ATOMIC_SEQ_CST) >= target;
}

static double limit_run(u_int n)
{
	sasync_counters_t *ctr, *tx_ctr;
	sasync_link_t *tx, *rx;
	uint16_t port;
	double t0, t;

	ctr = sasync_counters_create();
	tx_ctr = sasync_counters_create();
	port = free_port();
	rx = link_create(port, 0, ctr);
	rx->set_receiver(rx, count_record, NULL);
	tx = link_create(free_port(), port, tx_ctr);
	wait_for((void*)is_up, tx, "connection");

	target = array_count(records);
	phase_cpu = cpu();
	t0 = now();
	send_all(tx);
	wait_for(all_received, NULL, "records received");
	t = now() - t0;
	phase_cpu = cpu() - phase_cpu;

	if (received != array_count(records) ||
		tx_ctr->get(tx_ctr, SASYNC_CTR_SYNC_DROPPED))
	{
		die("limit: %u records of %u received", received,
			array_count(records));
	}
	tx->destroy(tx);
	rx->destroy(rx);
	ctr->destroy(ctr);
	tx_ctr->destroy(tx_ctr);
	return t;
}

/*
 * Output
 */
static FILE *csv;

static void report(char *phase, u_int n, double t)
{
	printf("B1 %-8s N=%-7u %7u records %9zu bytes %8.3f s %9.0f pairs/s "
		   "%7.2f us/pair (CPU %7.2f us/pair)\n", phase, n,
		   array_count(records), record_bytes, t, n / t, t * 1e6 / n,
		   phase_cpu * 1e6 / n);
	if (csv)
	{
		fprintf(csv, "%s,%u,%u,%zu,%.6f,%.1f,%.3f,%.3f\n", phase, n,
				array_count(records), record_bytes, t, n / t, t * 1e6 / n,
				phase_cpu * 1e6 / n);
	}
}

static void init()
{
	/* an empty configuration, as the unit tests: don't depend on /etc */
	if (!library_init("", "b1") || !libcharon_init())
	{
		die("library_init()/libcharon_init() failed");
	}
	dbg_default_set_level(getenv("B1_VERBOSITY") ?
						  atoi(getenv("B1_VERBOSITY")) : LEVEL_SILENT);
	lib->settings->set_int(lib->settings, "%s.filelog.stderr.default",
						   getenv("B1_VERBOSITY") ?
						   atoi(getenv("B1_VERBOSITY")) : LEVEL_SILENT,
						   lib->ns);
	charon->load_loggers(charon);
	lib->plugins->add_path(lib->plugins, PLUGINDIR);
	if (!lib->plugins->load(lib->plugins, PLUGINS))
	{
		die("loading plugins '%s' from %s failed", PLUGINS, PLUGINDIR);
	}
	/* the link runs on the watcher and processor jobs */
	lib->processor->set_threads(lib->processor, 4);

	/* sized for the largest N, as a gateway of that many SAs would: the
	 * default of one bucket makes every checkout walk all N SAs, and the 4096
	 * of bench/scale.sh chains 24 per bucket at 100,000, which costs a
	 * quarter more per pair (B1_IKESA_TABLE_SIZE shows either) */
	lib->settings->set_int(lib->settings, "%s.ikesa_table_size",
						   getenv("B1_IKESA_TABLE_SIZE") ?
						   atoi(getenv("B1_IKESA_TABLE_SIZE")) : 65536,
						   lib->ns);
	lib->settings->set_int(lib->settings, "%s.ikesa_table_segments", 16,
						   lib->ns);
	charon->ike_sa_manager = ike_sa_manager_create();
	charon->child_sa_manager = child_sa_manager_create();
	if (!charon->ike_sa_manager || !charon->child_sa_manager ||
		!charon->kernel->add_ipsec_interface(charon->kernel, ipsec_create))
	{
		die("no IKE_SA manager or kernel interface");
	}
	config_create();
}

int main(int argc, char *argv[])
{
	double capture, applied, limit;
	u_int n;

	if (argc < 2 || !(n = strtoul(argv[1], NULL, 10)) || n > 0x000fffff)
	{
		fprintf(stderr, "usage: b1 N [CSV]  (1 <= N < 2^20)\n");
		return 2;
	}
	if (argc > 2)
	{
		csv = fopen(argv[2], "a");
		if (!csv)
		{
			die("can't open %s", argv[2]);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	init();
	records = array_create(0, 0);

	capture = capture_run(n);
	report("capture", n, capture);
	applied = apply_run(n);
	report("apply", n, applied);
	limit = limit_run(n);
	report("limit", n, limit);
	printf("B1 N=%u: %.0f pairs/s applied, %.2f us per pair, %.0f%% of the "
		   "link's limit (%.0f pairs/s)\n", n, n / applied,
		   applied * 1e6 / n, 100 * limit / applied, n / limit);
	if (csv)
	{
		fclose(csv);
	}
	fflush(stdout);
	/* no teardown: the standby's SAs and charon go with the process, a
	 * flush would try delete exchanges nobody can send */
	_exit(0);
}
