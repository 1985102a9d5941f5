/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What the link reports about its partners for ha-status and ha-sync-error:
 * heartbeats (not counted as sync frames) and the liveness of partners,
 * the age of the oldest queued record, and the error callback.
 */

#include <check.h>

#include "sasync_link.h"
#include "link_test_util.h"
#include "sasync_counters.h"

#include <library.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <threading/mutex.h>

#define OTHER_SECRET "not the secret of the other link at all"

/** records received */
static u_int records;

static void receive(void *data, host_t *peer, chunk_t payload)
{
	__atomic_add_fetch(&records, 1, __ATOMIC_SEQ_CST);
}

START_TEST(test_heartbeats)
{
	sasync_counters_t *ctr_a, *ctr_b;
	sasync_link_t *a, *b;
	sasync_link_peer_t state;
	uint16_t port_a = free_port(), port_b = free_port();
	uint64_t first;

	records = 0;
	ctr_a = sasync_counters_create();
	ctr_b = sasync_counters_create();
	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, port_a, SECRET, ctr_b);
	ck_assert(a && b);
	b->set_receiver(b, receive, NULL);

	/* each side hears the other's heartbeats */
	ck_assert(WAIT_FOR(peer_state(a).last_heartbeat &&
					   peer_state(b).last_heartbeat));
	state = peer_state(b);
	ck_assert(state.out_up && state.in_up);
	ck_assert(state.last_heartbeat <= sasync_link_time_ms());
	/* and the next one, a second later */
	first = state.last_heartbeat;
	ck_assert(WAIT_FOR(peer_state(b).last_heartbeat > first));

	/* heartbeats are no records: nothing counted, nothing delivered */
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_TX), 0);
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX), 0);
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX), 0);
	ck_assert_uint_eq(records, 0);
	ck_assert_uint_eq(peer_state(b).last_rx, 0);

	a->send(a, chunk_from_str("a record"));
	ck_assert(WAIT_FOR(__atomic_load_n(&records, __ATOMIC_SEQ_CST) == 1));
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX), 1);
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_TX) == 1));
	ck_assert(peer_state(b).last_rx > 0);
	state = peer_state(a);
	ck_assert_uint_eq(state.queued, 0);
	ck_assert_uint_eq(state.oldest_queued, 0);

	a->destroy(a);
	b->destroy(b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_queue_lag)
{
	sasync_counters_t *ctr;
	sasync_link_t *link;
	sasync_link_peer_t state;
	uint64_t before, after;

	ctr = sasync_counters_create();
	/* nobody listens on the peer's port */
	link = link_create(free_port(), free_port(), SECRET, ctr);
	ck_assert(link);
	ck_assert_uint_eq(peer_state(link).oldest_queued, 0);

	before = sasync_link_time_ms();
	link->send(link, chunk_from_str("first"));
	after = sasync_link_time_ms();
	link->send(link, chunk_from_str("second"));
	state = peer_state(link);
	ck_assert_uint_eq(state.queued, 2);
	/* the age is that of the oldest record */
	ck_assert(state.oldest_queued >= before && state.oldest_queued <= after);
	ck_assert_uint_eq(state.last_heartbeat, 0);
	ck_assert(!state.out_up && !state.in_up);

	link->destroy(link);
	ctr->destroy(ctr);
}
END_TEST

/** errors reported to the callback */
typedef struct {
	mutex_t *mutex;
	u_int count;
	sasync_counter_t counter;
	char reason[128];
	char peer[64];
} errors_t;

static void on_error(errors_t *e, host_t *peer, sasync_counter_t counter,
					 char *reason)
{
	e->mutex->lock(e->mutex);
	e->count++;
	e->counter = counter;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	snprintf(e->peer, sizeof(e->peer), "%H", peer);
	e->mutex->unlock(e->mutex);
}

static u_int error_count(errors_t *e)
{
	u_int count;

	e->mutex->lock(e->mutex);
	count = e->count;
	e->mutex->unlock(e->mutex);
	return count;
}

START_TEST(test_error_cb)
{
	errors_t errors = { .mutex = mutex_create(MUTEX_TYPE_DEFAULT) };
	sasync_counters_t *ctr_a, *ctr_c;
	sasync_link_t *a, *c;
	uint16_t port_a = free_port();
	uint64_t base;

	ctr_a = sasync_counters_create();
	ctr_c = sasync_counters_create();
	a = link_create(port_a, 0, SECRET, ctr_a);
	ck_assert(a);
	a->set_error_cb(a, (sasync_link_error_t)on_error, &errors);

	/* a partner with another secret fails the handshake, again and again */
	c = link_create(free_port(), port_a, OTHER_SECRET, ctr_c);
	ck_assert(c);
	ck_assert(WAIT_FOR(error_count(&errors) >= 2));
	c->destroy(c);

	/* one callback per counted error (the last attempt of c may still be
	 * handled by a) */
	ck_assert(WAIT_FOR(error_count(&errors) ==
					   ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD)));
	errors.mutex->lock(errors.mutex);
	ck_assert_int_eq(errors.counter, SASYNC_CTR_SYNC_RX_AUTH_BAD);
	ck_assert_str_eq(errors.peer, "127.0.0.1");
	ck_assert(strstr(errors.reason, "authentication failed"));
	errors.mutex->unlock(errors.mutex);

	/* unset: no more calls, even while it still happens */
	a->set_error_cb(a, NULL, NULL);
	base = ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD);
	errors.count = 0;
	c = link_create(free_port(), port_a, OTHER_SECRET, ctr_c);
	ck_assert(c);
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD) >=
					   base + 2));
	ck_assert_uint_eq(error_count(&errors), 0);

	c->destroy(c);
	a->destroy(a);
	ctr_a->destroy(ctr_a);
	ctr_c->destroy(ctr_c);
	errors.mutex->destroy(errors.mutex);
}
END_TEST

/** heartbeats and deaths seen by the beat callback */
static u_int beats, deaths, bad_beats;

static void on_beat(void *data, host_t *peer, bool alive, chunk_t beat)
{
	if (!alive)
	{
		__atomic_add_fetch(&deaths, 1, __ATOMIC_SEQ_CST);
	}
	else if (chunk_equals(beat, chunk_from_str("node a")))
	{
		__atomic_add_fetch(&beats, 1, __ATOMIC_SEQ_CST);
	}
	else if (beat.len)
	{	/* the first heartbeat may go before set_beat_data(), empty */
		__atomic_add_fetch(&bad_beats, 1, __ATOMIC_SEQ_CST);
	}
}

/** a receiver slower than the heartbeat timeout, for each record */
static void slow_receive(void *data, host_t *peer, chunk_t payload)
{
	usleep(400000);
	receive(data, peer, payload);
}

static u_int count(u_int *counter)
{
	return __atomic_load_n(counter, __ATOMIC_SEQ_CST);
}

static sasync_link_t *beating_link(uint16_t port, uint16_t peer,
								   sasync_counters_t *ctr)
{
	sasync_link_t *link;

	link = link_create(port, peer, SECRET, ctr);
	ck_assert(link);
	/* dead after 3 x 50 ms */
	ck_assert(link->set_heartbeat(link, 50, 3));
	link->set_beat_data(link, chunk_from_str("node a"));
	return link;
}

START_TEST(test_liveness)
{
	sasync_counters_t *ctr_a, *ctr_b;
	sasync_link_t *a, *b;
	uint16_t port_a = free_port(), port_b = free_port();
	u_int i;

	records = beats = deaths = bad_beats = 0;
	ctr_a = sasync_counters_create();
	ctr_b = sasync_counters_create();
	a = beating_link(port_a, port_b, ctr_a);
	ck_assert(!a->set_heartbeat(a, SASYNC_HEARTBEAT_INTERVAL_MIN - 1, 3));
	ck_assert(!a->set_heartbeat(a, 50, 1));
	b = beating_link(port_b, port_a, ctr_b);
	b->set_beat_cb(b, on_beat, NULL);
	b->set_receiver(b, slow_receive, NULL);

	/* heartbeats carry the data set on a */
	ck_assert(WAIT_FOR(count(&beats) >= 3));
	ck_assert(peer_state(b).alive);

	/* b takes 400 ms for each record: a's heartbeats wait behind them in
	 * the socket, yet a is not dead, b is busy with it */
	for (i = 0; i < 3; i++)
	{
		a->send(a, chunk_from_str("a record"));
	}
	ck_assert(WAIT_FOR(count(&records) == 3));
	usleep(300000);
	ck_assert_uint_eq(count(&deaths), 0);

	/* a goes: dead once, counted */
	a->destroy(a);
	ck_assert(WAIT_FOR(count(&deaths) == 1));
	ck_assert(!peer_state(b).alive);
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_HEARTBEAT_LOST), 1);
	usleep(300000);
	ck_assert_uint_eq(count(&deaths), 1);

	/* and back */
	a = beating_link(port_a, port_b, ctr_a);
	ck_assert(WAIT_FOR(peer_state(b).alive));
	ck_assert_uint_eq(count(&bad_beats), 0);

	a->destroy(a);
	b->destroy(b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

/** records of the stall tests, and how many */
#define BIG_RECORD 32768
#define BIG_RECORDS 600

/** the stall tests' reader holds every record while held is set, then
 * takes one every delay_us */
static bool held;
static u_int delay_us;

static void stalling_receive(void *data, host_t *peer, chunk_t payload)
{
	while (__atomic_load_n(&held, __ATOMIC_SEQ_CST))
	{
		usleep(1000);
	}
	usleep(__atomic_load_n(&delay_us, __ATOMIC_SEQ_CST));
	__atomic_add_fetch(&records, 1, __ATOMIC_SEQ_CST);
}

/**
 * Two links, b holding the first record a sends it; a sends more than the
 * sockets hold, so it can write nothing more until b takes records
 */
static void fill_held(sasync_link_t **a, sasync_link_t **b,
					  sasync_counters_t *ctr_a, sasync_counters_t *ctr_b)
{
	static u_char big[BIG_RECORD];
	uint16_t port_a = free_port(), port_b = free_port();
	uint64_t last;
	u_int i;

	records = 0;
	__atomic_store_n(&held, TRUE, __ATOMIC_SEQ_CST);
	__atomic_store_n(&delay_us, 0, __ATOMIC_SEQ_CST);
	*a = link_create(port_a, port_b, SECRET, ctr_a);
	*b = link_create(port_b, port_a, SECRET, ctr_b);
	ck_assert(*a && *b);
	(*b)->set_receiver(*b, stalling_receive, NULL);
	/* b's heartbeats reach a over b's own connection */
	ck_assert(WAIT_FOR(peer_state(*a).out_up && peer_state(*a).alive));
	for (i = 0; i < BIG_RECORDS; i++)
	{
		(*a)->send(*a, chunk_from_thing(big));
	}
	/* a wrote what the sockets take, and waits */
	ck_assert(WAIT_FOR(peer_state(*a).queued < BIG_RECORDS));
	usleep(500000);
	ck_assert(peer_state(*a).queued > 0);
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_STALLED), 0);
	/* a record held by the receiver holds no socket: b's heartbeats still
	 * reach a (charon's watcher serves no other socket while a callback
	 * runs and another has data) */
	last = peer_state(*a).last_heartbeat;
	ck_assert(WAIT_FOR(peer_state(*a).last_heartbeat > last));
}

/**
 * Wait until a heard a heartbeat of its partner sent after the link time
 * given: whatever it acknowledges is progress from then on. The stall tests
 * move the clock only after such a heartbeat, so they hold however slow the
 * machine is (valgrind, sanitizers)
 */
static void heard_after(sasync_link_t *a, uint64_t time)
{
	ck_assert(WAIT_FOR(peer_state(a).last_heartbeat > time));
}

START_TEST(test_busy_reader)
{
	sasync_counters_t *ctr_a, *ctr_b;
	sasync_link_t *a, *b;
	u_int i;

	ctr_a = sasync_counters_create();
	ctr_b = sasync_counters_create();
	fill_held(&a, &b, ctr_a, ctr_b);

	/* b is busy with one record for over 30 s (a listing of 10,000 SAs
	 * holds charon's IKE SA manager that long under kernel-libipsec): b's
	 * heartbeats say it works on a's records, so neither side takes the
	 * connection for stalled */
	for (i = 0; i < 4; i++)
	{
		heard_after(a, sasync_link_time_ms());
		sasync_link_time_skip(10000);
	}
	heard_after(a, sasync_link_time_ms());
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_STALLED), 0);
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_STALLED), 0);

	/* every record arrives once, over the one connection */
	__atomic_store_n(&held, FALSE, __ATOMIC_SEQ_CST);
	ck_assert(WAIT_FOR(count(&records) == BIG_RECORDS &&
					   !peer_state(a).queued));
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX), BIG_RECORDS);
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_STALLED), 0);

	a->destroy(a);
	b->destroy(b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_slow_reader)
{
	sasync_counters_t *ctr_a, *ctr_b;
	sasync_link_t *a, *b;
	u_int i, taken;

	ctr_a = sasync_counters_create();
	ctr_b = sasync_counters_create();
	fill_held(&a, &b, ctr_a, ctr_b);

	/* b takes a record every 400 ms, slower than a standby applying a bulk
	 * resync of 10,000 SAs under kernel-libipsec: a's socket stays full
	 * for 80 s of a's clock, but b's heartbeats acknowledge what it takes,
	 * so a keeps the connection */
	__atomic_store_n(&delay_us, 400000, __ATOMIC_SEQ_CST);
	__atomic_store_n(&held, FALSE, __ATOMIC_SEQ_CST);
	for (i = 0; i < 4; i++)
	{	/* b took a record, and a heard of it, then 10 s pass */
		taken = count(&records);
		ck_assert(WAIT_FOR(count(&records) > taken));
		heard_after(a, sasync_link_time_ms());
		sasync_link_time_skip(10000);
	}
	heard_after(a, sasync_link_time_ms());
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_STALLED), 0);

	/* every record arrives once, over the one connection */
	__atomic_store_n(&delay_us, 0, __ATOMIC_SEQ_CST);
	ck_assert(WAIT_FOR(count(&records) == BIG_RECORDS &&
					   !peer_state(a).queued));
	usleep(300000);
	ck_assert_uint_eq(count(&records), BIG_RECORDS);
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX), BIG_RECORDS);
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_STALLED), 0);

	a->destroy(a);
	b->destroy(b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

Suite *link_state_suite_create()
{
	Suite *s;
	TCase *tc;

	s = suite_create("link_state");

	tc = tcase_create("heartbeats");
	tcase_add_checked_fixture(tc, link_test_threads, NULL);
	tcase_add_test(tc, test_heartbeats);
	suite_add_tcase(s, tc);

	tc = tcase_create("liveness");
	tcase_add_checked_fixture(tc, link_test_threads, NULL);
	tcase_add_test(tc, test_liveness);
	suite_add_tcase(s, tc);

	tc = tcase_create("queue lag");
	tcase_add_checked_fixture(tc, link_test_threads, NULL);
	tcase_add_test(tc, test_queue_lag);
	suite_add_tcase(s, tc);

	tc = tcase_create("error callback");
	tcase_add_checked_fixture(tc, link_test_threads, NULL);
	tcase_add_test(tc, test_error_cb);
	suite_add_tcase(s, tc);

	tc = tcase_create("stalls");
	tcase_add_checked_fixture(tc, link_test_threads, NULL);
	tcase_add_test(tc, test_busy_reader);
	tcase_add_test(tc, test_slow_reader);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	return s;
}
