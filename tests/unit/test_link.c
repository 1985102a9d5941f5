/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_link.h"
#include "link_test_util.h"

#include <library.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <threading/mutex.h>
#include <utils/debug.h>

/*
 * Counters test double, the real sasync_counters.c is not needed here
 */
typedef struct {
	sasync_counters_t public;
	uint64_t ctr[SASYNC_CTR_MAX];
	u_int depth;
} test_counters_t;

static void ctr_inc(sasync_counters_t *this, sasync_counter_t counter)
{
	__atomic_add_fetch(&((test_counters_t*)this)->ctr[counter], 1,
					   __ATOMIC_SEQ_CST);
}

static uint64_t ctr_get(sasync_counters_t *this, sasync_counter_t counter)
{
	return __atomic_load_n(&((test_counters_t*)this)->ctr[counter],
						   __ATOMIC_SEQ_CST);
}

static void ctr_set_depth(sasync_counters_t *this, u_int depth)
{
	__atomic_store_n(&((test_counters_t*)this)->depth, depth,
					 __ATOMIC_SEQ_CST);
}

static u_int ctr_get_depth(sasync_counters_t *this)
{
	return __atomic_load_n(&((test_counters_t*)this)->depth,
						   __ATOMIC_SEQ_CST);
}

static void ctr_destroy(sasync_counters_t *this)
{
	free(this);
}

static sasync_counters_t *test_counters_create()
{
	test_counters_t *this;

	INIT(this,
		.public = {
			.inc = ctr_inc,
			.get = ctr_get,
			.set_queue_depth = ctr_set_depth,
			.get_queue_depth = ctr_get_depth,
			.destroy = ctr_destroy,
		},
	);
	return &this->public;
}

/*
 * Log capture: counts matching lines per level, passes everything on
 */
static void (*dbg_orig)(debug_t group, level_t level, char *fmt, ...);
static mutex_t *log_mutex;
static char *log_match;
static u_int log_hits[5];

static void dbg_capture(debug_t group, level_t level, char *fmt, ...)
{
	char buf[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);

	log_mutex->lock(log_mutex);
	if (log_match && strstr(buf, log_match) && level >= 0 &&
		level < countof(log_hits))
	{
		log_hits[level]++;
	}
	log_mutex->unlock(log_mutex);
	dbg_orig(group, level, "%s", buf);
}

static void log_expect(char *match)
{
	log_mutex->lock(log_mutex);
	log_match = match;
	memset(log_hits, 0, sizeof(log_hits));
	log_mutex->unlock(log_mutex);
}

static u_int log_count(level_t level)
{
	u_int count;

	log_mutex->lock(log_mutex);
	count = log_hits[level];
	log_mutex->unlock(log_mutex);
	return count;
}

/*
 * Receiver: records carry u32 index | u32 seed, then a pattern
 */
typedef struct {
	mutex_t *mutex;
	/** records received in order and intact */
	u_int count;
	/** index of the next record expected */
	u_int next;
	/** out of order or corrupt records */
	u_int bad;
	/** port of the sender passed to the callback */
	uint16_t peer_port;
	/** link to echo records to, from within the callback */
	sasync_link_t *echo;
	/** sleep in the callback, in us */
	u_int delay;
	/** the callback waits while this is set */
	bool hold;
} receiver_t;

static chunk_t make_record(u_int index, size_t len)
{
	chunk_t record;
	size_t i;

	record = chunk_alloc(max(len, 8));
	htoun32(record.ptr, index);
	htoun32(record.ptr + 4, record.len);
	for (i = 8; i < record.len; i++)
	{
		record.ptr[i] = index * 7 + i;
	}
	return record;
}

static bool check_record(chunk_t record, u_int index)
{
	size_t i;

	if (record.len < 8 || untoh32(record.ptr) != index ||
		untoh32(record.ptr + 4) != record.len)
	{
		return FALSE;
	}
	for (i = 8; i < record.len; i++)
	{
		if (record.ptr[i] != (u_char)(index * 7 + i))
		{
			return FALSE;
		}
	}
	return TRUE;
}

static void receive(receiver_t *r, host_t *peer, chunk_t payload)
{
	enumerator_t *enumerator;
	sasync_link_peer_t *state;
	bool ok;

	if (r->delay)
	{
		usleep(r->delay);
	}
	while (__atomic_load_n(&r->hold, __ATOMIC_SEQ_CST))
	{
		usleep(1000);
	}
	if (r->echo)
	{	/* must not deadlock: no lock of the link is held here */
		r->echo->send(r->echo, payload);
		enumerator = r->echo->create_peer_enumerator(r->echo);
		while (enumerator->enumerate(enumerator, &state))
		{
			/* just take and release the lock */
		}
		enumerator->destroy(enumerator);
	}
	r->mutex->lock(r->mutex);
	ok = check_record(payload, r->next);
	if (ok)
	{
		r->count++;
	}
	else
	{
		r->bad++;
	}
	r->next = (payload.len >= 4 ? untoh32(payload.ptr) : r->next) + 1;
	r->peer_port = peer->get_port(peer);
	r->mutex->unlock(r->mutex);
}

static receiver_t *receiver_create(u_int first)
{
	receiver_t *r;

	INIT(r,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.next = first,
	);
	return r;
}

static u_int received(receiver_t *r)
{
	u_int count;

	r->mutex->lock(r->mutex);
	count = r->count + r->bad;
	r->mutex->unlock(r->mutex);
	return count;
}

static void receiver_destroy(receiver_t *r)
{
	r->mutex->destroy(r->mutex);
	free(r);
}

/*
 * Helpers
 */
static double now()
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static bool out_up(sasync_link_t *link)
{
	return peer_state(link).out_up;
}

static bool in_up(sasync_link_t *link)
{
	return peer_state(link).in_up;
}

static u_int queued(sasync_link_t *link)
{
	return peer_state(link).queued;
}

static void send_records(sasync_link_t *link, u_int first, u_int count)
{
	chunk_t record;
	u_int i;

	for (i = first; i < first + count; i++)
	{
		record = make_record(i, (i * 379) % 4000);
		link->send(link, record);
		chunk_free(&record);
	}
}

static void setup(void)
{
	link_test_threads();
	if (!log_mutex)
	{	/* kept for the process: see teardown() */
		log_mutex = mutex_create(MUTEX_TYPE_DEFAULT);
	}
	log_expect(NULL);
	dbg_orig = dbg;
	dbg = dbg_capture;
}

static void teardown(void)
{
	/* a job of the link may still be in dbg_capture() (it read dbg before
	 * this): the mutex stays, destroyed it sent that thread through freed
	 * memory (ASan, test_unknown_source, now and then) */
	dbg = dbg_orig;
}

START_TEST(test_invalid_settings)
{
	sasync_counters_t *ctr = test_counters_create();
	sasync_link_t *link;
	sasync_link_peer_t *state;
	enumerator_t *enumerator;
	chunk_t secret = chunk_from_str(SECRET);
	char *bad_local[] = {
		NULL, "", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
		"127.0.0.1:", "127.0.0.1: 5", "1.2.3", "[::1", "[::1]x", "[]:5",
		"host.example.com", "127.0.0.1:-1",
	};
	char *bad_peers[] = {
		"127.0.0.1,bogus", "%any", "0.0.0.0:4510", "127.0.0.2,127.0.0.2",
		"127.0.0.2,", ",127.0.0.2", "127.0.0.2:99999", "@127.0.0.2",
		"n@127.0.0.2", "a b@127.0.0.2", "a@b@127.0.0.2",
		"x123456789x123456789x123456789x123456789x123456789x123456789xyzw"
		"@127.0.0.2",
	};
	char local[32], peers[64];
	uint16_t port = free_port();
	int i;

	for (i = 0; i < countof(bad_local); i++)
	{
		link = sasync_link_create(bad_local[i], "127.0.0.2", "n", secret, ctr);
		ck_assert_msg(link == NULL, "local '%s' accepted", bad_local[i]);
	}
	snprintf(local, sizeof(local), "127.0.0.1:%u", port);
	for (i = 0; i < countof(bad_peers); i++)
	{
		link = sasync_link_create(local, bad_peers[i], "n", secret, ctr);
		ck_assert_msg(link == NULL, "peers '%s' accepted", bad_peers[i]);
	}
	/* our own address as peer */
	link = sasync_link_create(local, local, "n", secret, ctr);
	ck_assert(link == NULL);
	/* invalid names of our own */
	ck_assert(!sasync_link_create(local, "127.0.0.2", "", secret, ctr));
	ck_assert(!sasync_link_create(local, "127.0.0.2", "a b", secret, ctr));
	/* secret too short */
	link = sasync_link_create(local, "127.0.0.2", "n",
							  chunk_from_str("0123456789abcdef0123456789abcde"),
							  ctr);
	ck_assert(link == NULL);

	/* valid forms, with default ports; unroutable peers are just retried */
	snprintf(peers, sizeof(peers), " 127.0.0.2 , b@[::2]:4511,::3 ");
	link = sasync_link_create(local, peers, "n", secret, ctr);
	ck_assert(link);
	enumerator = link->create_peer_enumerator(link);
	ck_assert(enumerator->enumerate(enumerator, &state));
	ck_assert_uint_eq(state->peer->get_port(state->peer), SASYNC_DEFAULT_PORT);
	ck_assert(enumerator->enumerate(enumerator, &state));
	ck_assert_uint_eq(state->peer->get_port(state->peer), 4511);
	ck_assert_int_eq(state->peer->get_family(state->peer), AF_INET6);
	ck_assert(enumerator->enumerate(enumerator, &state));
	ck_assert_uint_eq(state->peer->get_port(state->peer), SASYNC_DEFAULT_PORT);
	ck_assert_int_eq(state->peer->get_family(state->peer), AF_INET6);
	ck_assert(!enumerator->enumerate(enumerator, &state));
	enumerator->destroy(enumerator);
	link->destroy(link);

	/* a receive-only link */
	link = sasync_link_create(local, NULL, "n", secret, ctr);
	ck_assert(link);
	link->destroy(link);

	/* the port is in use */
	link = sasync_link_create(local, "", "n", secret, ctr);
	ck_assert(link);
	ck_assert(sasync_link_create(local, "", "n", secret, ctr) == NULL);
	link->destroy(link);
	ctr->destroy(ctr);
}
END_TEST

START_TEST(test_records_in_order)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_a = receiver_create(0), *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	double start, secs;
	u_int count = 1000;

	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, port_a, SECRET, ctr_b);
	ck_assert(a && b);
	a->set_receiver(a, (void*)receive, r_a);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(out_up(a) && out_up(b) && in_up(a) && in_up(b)));

	start = now();
	send_records(a, 0, count);
	ck_assert(WAIT_FOR(received(r_b) == count));
	secs = now() - start;
	fprintf(stderr, "  %u records of 8..4000 bytes in %.3f s: %.0f "
			"records/s\n", count, secs, count / secs);

	ck_assert_uint_eq(r_b->count, count);
	ck_assert_uint_eq(r_b->bad, 0);
	ck_assert_uint_eq(r_b->peer_port, port_a);
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_TX) == count));
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX), count);
	ck_assert(WAIT_FOR(ctr_a->get_queue_depth(ctr_a) == 0));
	ck_assert(WAIT_FOR(queued(a) == 0));
	ck_assert(peer_state(b).last_rx > 0);
	ck_assert_uint_eq(peer_state(a).last_rx, 0);

	/* and the other way round */
	send_records(b, 0, 10);
	ck_assert(WAIT_FOR(received(r_a) == 10));
	ck_assert_uint_eq(r_a->count, 10);
	ck_assert_uint_eq(r_a->peer_port, port_b);

	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_LEN_BAD) +
					  ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD) +
					  ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_REPLAY) +
					  ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX_LEN_BAD) +
					  ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX_AUTH_BAD) +
					  ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX_REPLAY), 0);

	/* too large records are dropped, the link carries on */
	{
		chunk_t big = chunk_alloc(SASYNC_MAX_RECORD + 1);

		memset(big.ptr, 0, big.len);
		b->send(b, big);
		chunk_free(&big);
		big = make_record(10, SASYNC_MAX_RECORD);
		b->send(b, big);
		chunk_free(&big);
		ck_assert(WAIT_FOR(received(r_a) == 11));
		ck_assert_uint_eq(r_a->count, 11);
	}

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_a);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

/* send_more() leaves a record queued for the next send_to(), send() or
 * flush(), which write it before their own; one left alone goes with the
 * next heartbeat */
START_TEST(test_send_more)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	chunk_t record;
	u_int i;

	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, port_a, SECRET, ctr_b);
	ck_assert(a && b);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(out_up(a) && in_up(b)));

	/* 0..2 left, 3 sent: all four in order */
	for (i = 0; i < 3; i++)
	{
		record = make_record(i, 100 + i * 700);
		a->send_more(a, NULL, record);
		chunk_free(&record);
	}
	send_records(a, 3, 1);
	ck_assert(WAIT_FOR(received(r_b) == 4));
	/* 4 and 5 left, then flushed */
	for (i = 4; i < 6; i++)
	{
		record = make_record(i, 300);
		a->send_more(a, NULL, record);
		chunk_free(&record);
	}
	a->flush(a);
	ck_assert(WAIT_FOR(received(r_b) == 6));
	/* 6 left alone: the heartbeat interval takes it */
	record = make_record(6, 50);
	a->send_more(a, NULL, record);
	chunk_free(&record);
	ck_assert(WAIT_FOR(received(r_b) == 7));

	ck_assert_uint_eq(r_b->count, 7);
	ck_assert_uint_eq(r_b->bad, 0);
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_TX) == 7));
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX), 7);
	ck_assert(WAIT_FOR(queued(a) == 0));

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

/* send_to() queues for one partner only, send() for all of them: a bulk
 * resync goes to the node that (re)joined, not to the current ones */
START_TEST(test_send_to)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	sasync_counters_t *ctr_c = test_counters_create();
	receiver_t *r_b = receiver_create(0), *r_c = receiver_create(1);
	uint16_t port_a = free_port(), port_b = free_port(), port_c = free_port();
	sasync_link_t *a, *b, *c;
	char local[32], peers[64];
	host_t *to_b, *stranger;
	chunk_t record;

	snprintf(local, sizeof(local), "127.0.0.1:%u", port_a);
	snprintf(peers, sizeof(peers), "127.0.0.1:%u,127.0.0.1:%u", port_b,
			 port_c);
	a = sasync_link_create(local, peers, "a", chunk_from_str(SECRET), ctr_a);
	b = link_create(port_b, 0, SECRET, ctr_b);
	c = link_create(port_c, 0, SECRET, ctr_c);
	ck_assert(a && b && c);
	b->set_receiver(b, (void*)receive, r_b);
	c->set_receiver(c, (void*)receive, r_c);
	to_b = host_create_from_string("127.0.0.1", port_b);
	stranger = host_create_from_string("127.0.0.9", port_b);

	log_expect("not a partner");
	record = make_record(0, 100);
	a->send_to(a, to_b, record);
	a->send_to(a, stranger, record);
	chunk_free(&record);
	ck_assert_uint_eq(log_count(1), 1);
	/* records 1 and 2 to both */
	record = make_record(1, 100);
	a->send_to(a, NULL, record);
	chunk_free(&record);
	send_records(a, 2, 1);

	ck_assert(WAIT_FOR(received(r_b) == 3 && received(r_c) == 2));
	ck_assert(WAIT_FOR(ctr_a->get_queue_depth(ctr_a) == 0));
	ck_assert_uint_eq(received(r_b), 3);
	ck_assert_uint_eq(received(r_c), 2);
	ck_assert_uint_eq(r_b->count + r_c->count, 5);

	to_b->destroy(to_b);
	stranger->destroy(stranger);
	a->destroy(a);
	b->destroy(b);
	c->destroy(c);
	receiver_destroy(r_b);
	receiver_destroy(r_c);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
	ctr_c->destroy(ctr_c);
}
END_TEST

START_TEST(test_wrong_secret)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_c = test_counters_create();
	receiver_t *r_a = receiver_create(0);
	uint16_t port_a = free_port(), port_c = free_port();
	sasync_link_t *a, *c;

	log_expect("failed authentication");
	/* a connects to c as well, and fails there */
	a = link_create(port_a, port_c, SECRET, ctr_a);
	c = link_create(port_c, port_a, "another secret of sufficient length",
					ctr_c);
	ck_assert(a && c);
	a->set_receiver(a, (void*)receive, r_a);
	send_records(c, 0, 10);

	/* c retries, every attempt fails */
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD) >= 3));
	ck_assert(WAIT_FOR(ctr_c->get(ctr_c, SASYNC_CTR_SYNC_RX_AUTH_BAD) >= 3));
	ck_assert(!out_up(a));
	ck_assert_uint_eq(received(r_a), 0);
	ck_assert_uint_eq(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX), 0);
	ck_assert(!out_up(c));
	ck_assert_uint_eq(queued(c), 10);
	ck_assert_uint_eq(ctr_c->get(ctr_c, SASYNC_CTR_SYNC_TX), 0);
	/* logged once by each side at level 1, retries at level 2 */
	ck_assert_uint_eq(log_count(1), 2);
	ck_assert(log_count(2) >= 4);

	c->destroy(c);
	a->destroy(a);
	receiver_destroy(r_a);
	ctr_a->destroy(ctr_a);
	ctr_c->destroy(ctr_c);
}
END_TEST

/**
 * A partner that starts late gets what was queued for it. _i = 1: it
 * connects to us too, which makes us connect back at once, without waiting
 * for the reconnect backoff (our own connection carries our records)
 */
START_TEST(test_late_peer)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;

	log_expect("unreachable");
	a = link_create(port_a, port_b, SECRET, ctr_a);
	ck_assert(a);
	send_records(a, 0, 100);
	ck_assert_uint_eq(queued(a), 100);
	ck_assert_uint_eq(ctr_a->get_queue_depth(ctr_a), 100);

	/* a few retries, logged once; every 2 s after five */
	ck_assert(WAIT_FOR(log_count(2) >= 4));
	ck_assert_uint_eq(log_count(1), 1);
	ck_assert(!out_up(a));
	send_records(a, 100, 100);

	log_expect(_i ? "connected to us, connecting back now" : "sync link to");
	b = link_create(port_b, _i ? port_a : 0, SECRET, ctr_b);
	ck_assert(b);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(received(r_b) == 200));
	ck_assert_uint_eq(r_b->count, 200);
	ck_assert(WAIT_FOR(ctr_a->get_queue_depth(ctr_a) == 0));
	ck_assert_uint_eq(log_count(1), 1);

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_queue_overflow)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(100);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	chunk_t record;
	u_int i;

	log_expect("dropping oldest");
	a = link_create(port_a, port_b, SECRET, ctr_a);
	ck_assert(a);
	for (i = 0; i < SASYNC_QUEUE_MAX + 100; i++)
	{
		record = make_record(i, 8);
		a->send(a, record);
		chunk_free(&record);
	}
	ck_assert_uint_eq(queued(a), SASYNC_QUEUE_MAX);
	ck_assert_uint_eq(ctr_a->get_queue_depth(ctr_a), SASYNC_QUEUE_MAX);
	ck_assert_uint_eq(log_count(1), 1);

	log_expect("were dropped");
	b = link_create(port_b, 0, SECRET, ctr_b);
	ck_assert(b);
	b->set_receiver(b, (void*)receive, r_b);
	/* the oldest 100 were dropped, the rest arrives in order */
	ck_assert(WAIT_FOR(received(r_b) == SASYNC_QUEUE_MAX));
	ck_assert_uint_eq(r_b->count, SASYNC_QUEUE_MAX);
	ck_assert_uint_eq(r_b->next, SASYNC_QUEUE_MAX + 100);
	ck_assert(WAIT_FOR(ctr_a->get_queue_depth(ctr_a) == 0));
	ck_assert_uint_eq(log_count(1), 1);

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

/*
 * Raw TCP clients
 */
static int raw_connect(uint16_t port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(port),
	};
	struct timeval tv = { .tv_sec = 60 };
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert(fd >= 0);
	/* bounds the test if the link never answers or closes */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert(connect(fd, (struct sockaddr*)&sin, sizeof(sin)) == 0);
	return fd;
}

static void raw_write(int fd, chunk_t data)
{
	ck_assert(send(fd, data.ptr, data.len, MSG_NOSIGNAL) == data.len);
}

static bool raw_read(int fd, u_char *buf, size_t len)
{
	ssize_t n;

	while (len)
	{
		n = recv(fd, buf, len, 0);
		if (n <= 0)
		{
			return FALSE;
		}
		buf += n;
		len -= n;
	}
	return TRUE;
}

/** wait until the link closes the connection */
static bool raw_closed(int fd)
{
	u_char buf[64];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
	{
		/* discard */
	}
	close(fd);
	return n == 0 || errno == ECONNRESET;
}

/** a HELLO of a raw client: random nonce and instance id, a name */
static void raw_hello(u_char hello[SASYNC_HELLO_LEN], char *name)
{
	rng_t *rng;

	memset(hello, 0, SASYNC_HELLO_LEN);
	memcpy(hello, SASYNC_HELLO_MAGIC, 4);
	hello[4] = SASYNC_HELLO_VERSION;
	hello[SASYNC_HELLO_AEADS] = sasync_crypt_supported();
	snprintf((char*)hello + SASYNC_HELLO_NAME, SASYNC_NAME_LEN, "%s", name);
	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ck_assert(rng->get_bytes(rng, SASYNC_NONCE_LEN + SASYNC_INSTANCE_LEN,
							 hello + SASYNC_HELLO_NONCE));
	rng->destroy(rng);
}

/** do a connector's handshake with a given HELLO, NULL if the link did not
 * accept it */
static sasync_crypt_t *raw_handshake_hello(int fd, char *secret,
										   u_char hello_i[SASYNC_HELLO_LEN])
{
	u_char hello_r[SASYNC_HELLO_LEN], len[4];
	sasync_crypt_t *crypt;
	chunk_t frame, plain;
	uint8_t type;

	raw_write(fd, chunk_create(hello_i, SASYNC_HELLO_LEN));
	if (!raw_read(fd, hello_r, sizeof(hello_r)))
	{
		return NULL;
	}
	ck_assert(memeq(hello_r, SASYNC_HELLO_MAGIC, 4));
	crypt = sasync_crypt_create(
				sasync_crypt_choose(hello_i[SASYNC_HELLO_AEADS],
									hello_r[SASYNC_HELLO_AEADS]),
				chunk_from_str(secret), chunk_create(hello_i, SASYNC_HELLO_LEN),
				chunk_from_thing(hello_r), TRUE);
	ck_assert(crypt);
	ck_assert(crypt->seal(crypt, SASYNC_FRAME_AUTH,
						  chunk_from_str(SASYNC_AUTH_I), &frame));
	raw_write(fd, frame);
	chunk_free(&frame);
	if (!raw_read(fd, len, sizeof(len)))
	{
		crypt->destroy(crypt);
		return NULL;
	}
	ck_assert(untoh32(len) < 256);
	frame = chunk_alloc(4 + untoh32(len));
	memcpy(frame.ptr, len, 4);
	ck_assert(raw_read(fd, frame.ptr + 4, frame.len - 4));
	ck_assert_int_eq(crypt->open(crypt, frame, &type, &plain), SASYNC_OPEN_OK);
	ck_assert_uint_eq(type, SASYNC_FRAME_AUTH);
	ck_assert(chunk_equals(plain, chunk_from_str(SASYNC_AUTH_R)));
	chunk_free(&plain);
	chunk_free(&frame);
	return crypt;
}

/** do a connector's handshake, NULL if the link did not accept it */
static sasync_crypt_t *raw_handshake(int fd, char *secret)
{
	u_char hello_i[SASYNC_HELLO_LEN];

	raw_hello(hello_i, "raw-client");
	return raw_handshake_hello(fd, secret, hello_i);
}

static void raw_send_frame(int fd, sasync_crypt_t *crypt, uint8_t type,
						   chunk_t payload, chunk_t *copy)
{
	chunk_t frame;

	ck_assert(crypt->seal(crypt, type, payload, &frame));
	raw_write(fd, frame);
	if (copy)
	{
		*copy = frame;
	}
	else
	{
		chunk_free(&frame);
	}
}

START_TEST(test_raw_clients)
{
	sasync_counters_t *ctr = test_counters_create();
	receiver_t *r = receiver_create(0);
	uint16_t port = free_port(), peer = free_port();
	sasync_crypt_t *crypt;
	sasync_link_t *link;
	chunk_t record, frame;
	u_char len[4];
	int fd;

	/* the link also connects to a peer on the same address: counters are
	 * only touched by the raw clients, as that peer never answers */
	link = link_create(port, peer, SECRET, ctr);
	ck_assert(link);
	link->set_receiver(link, (void*)receive, r);

	/* connect and close, nothing counted */
	fd = raw_connect(port);
	close(fd);

	/* garbage instead of HELLO */
	fd = raw_connect(port);
	raw_write(fd, chunk_from_str("GET / HTTP/1.0\r\nHost: x\r\n\r\n0123456789"
		"0123456789012345678901234567890123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789"));
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_LEN_BAD) == 1));

	/* right magic, wrong version */
	fd = raw_connect(port);
	{
		u_char hello[SASYNC_HELLO_LEN] = { 'S', 'A', 'S', 'Y', 1 };

		raw_write(fd, chunk_from_thing(hello));
	}
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_LEN_BAD) == 2));

	/* wrong secret */
	fd = raw_connect(port);
	ck_assert(raw_handshake(fd, "not the secret of the link at all") == NULL);
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_AUTH_BAD) == 1));

	/* valid handshake, one record, then an over-long length */
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	ck_assert(crypt);
	record = make_record(0, 100);
	raw_send_frame(fd, crypt, SASYNC_FRAME_DATA, record, NULL);
	chunk_free(&record);
	ck_assert(WAIT_FOR(received(r) == 1));
	ck_assert_uint_eq(r->count, 1);
	htoun32(len, SASYNC_MAX_FRAME);
	raw_write(fd, chunk_from_thing(len));
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_LEN_BAD) == 3));
	crypt->destroy(crypt);

	/* the largest allowed frame passes */
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	record = make_record(1, SASYNC_MAX_RECORD);
	raw_send_frame(fd, crypt, SASYNC_FRAME_DATA, record, NULL);
	chunk_free(&record);
	ck_assert(WAIT_FOR(received(r) == 2));
	ck_assert_uint_eq(r->count, 2);
	/* then a garbage frame with a plausible length */
	frame = chunk_alloc(200);
	memset(frame.ptr, 0x55, frame.len);
	htoun32(frame.ptr, frame.len - 4);
	frame.ptr[4] = 1;
	raw_write(fd, frame);
	chunk_free(&frame);
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_AUTH_BAD) == 2));
	crypt->destroy(crypt);

	/* a replayed frame */
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	record = make_record(2, 10);
	raw_send_frame(fd, crypt, SASYNC_FRAME_DATA, record, &frame);
	chunk_free(&record);
	raw_write(fd, frame);
	chunk_free(&frame);
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_REPLAY) == 1));
	ck_assert_uint_eq(received(r), 3);
	crypt->destroy(crypt);

	/* an authentic frame of the wrong type, and of a wrong version */
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	raw_send_frame(fd, crypt, SASYNC_FRAME_AUTH, chunk_from_str("x"), NULL);
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_LEN_BAD) == 4));
	crypt->destroy(crypt);
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	ck_assert(crypt->seal(crypt, SASYNC_FRAME_DATA, chunk_from_str("x"),
						  &frame));
	frame.ptr[4] = 9;
	raw_write(fd, frame);
	chunk_free(&frame);
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_LEN_BAD) == 5));
	crypt->destroy(crypt);

	/* a length too short for any frame */
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	htoun32(len, 3);
	raw_write(fd, chunk_from_thing(len));
	raw_write(fd, chunk_from_str("abc"));
	ck_assert(raw_closed(fd));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_RX_LEN_BAD) == 6));
	crypt->destroy(crypt);

	ck_assert_uint_eq(ctr->get(ctr, SASYNC_CTR_SYNC_RX), 3);
	ck_assert_uint_eq(ctr->get(ctr, SASYNC_CTR_SYNC_RX_AUTH_BAD), 2);
	ck_assert_uint_eq(r->bad, 0);

	/* clients still connected or mid-handshake do not block destroy */
	fd = raw_connect(port);
	raw_write(fd, chunk_from_str("SAS"));
	link->destroy(link);
	close(fd);
	receiver_destroy(r);
	ctr->destroy(ctr);
}
END_TEST

static void count_up(u_int *ups, host_t *peer)
{
	__atomic_add_fetch(ups, 1, __ATOMIC_SEQ_CST);
}

START_TEST(test_reconnect)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	u_int ups = 0;

	log_expect("sync link to");
	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, 0, SECRET, ctr_b);
	ck_assert(a && b);
	a->set_up_cb(a, (void*)count_up, &ups);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(__atomic_load_n(&ups, __ATOMIC_SEQ_CST) == 1));
	send_records(a, 0, 50);
	ck_assert(WAIT_FOR(received(r_b) == 50));

	/* the peer restarts: down once, up again, new keys, sequence restarts */
	b->destroy(b);
	ck_assert(WAIT_FOR(!out_up(a)));
	b = link_create(port_b, 0, SECRET, ctr_b);
	ck_assert(b);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(__atomic_load_n(&ups, __ATOMIC_SEQ_CST) == 2));
	send_records(a, 50, 50);
	ck_assert(WAIT_FOR(received(r_b) == 100));
	ck_assert_uint_eq(r_b->count, 100);
	/* up, down, up */
	ck_assert_uint_eq(log_count(1), 3);

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_slow_reentrant_receiver)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_a = receiver_create(0), *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;

	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, port_a, SECRET, ctr_b);
	ck_assert(a && b);
	/* b echoes every record back from within its slow callback */
	r_b->echo = b;
	r_b->delay = 2000;
	a->set_receiver(a, (void*)receive, r_a);
	b->set_receiver(b, (void*)receive, r_b);
	send_records(a, 0, 200);
	ck_assert(WAIT_FOR(received(r_a) == 200));
	ck_assert(WAIT_FOR(received(r_b) == 200));
	ck_assert_uint_eq(r_a->count, 200);
	ck_assert_uint_eq(r_b->count, 200);

	/* destroy while records are in flight to a slow receiver */
	r_b->echo = NULL;
	r_b->delay = 20000;
	send_records(a, 200, 500);
	ck_assert(WAIT_FOR(received(r_b) > 200));
	a->destroy(a);
	b->destroy(b);
	ck_assert_uint_eq(r_b->bad, 0);
	receiver_destroy(r_a);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_backpressure)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	chunk_t record;
	u_int i, count = 300;

	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, 0, SECRET, ctr_b);
	ck_assert(a && b);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(out_up(a)));
	/* b stops reading at the first record: 19 MB fill both socket buffers,
	 * so a must wait for the socket to take more */
	r_b->hold = TRUE;
	for (i = 0; i < count; i++)
	{
		record = make_record(i, 65536);
		a->send(a, record);
		chunk_free(&record);
	}
	sleep(1);
	ck_assert(queued(a) > 0);
	ck_assert(out_up(a));
	/* b goes on: everything arrives, in order */
	__atomic_store_n(&r_b->hold, FALSE, __ATOMIC_SEQ_CST);
	ck_assert(WAIT_FOR(received(r_b) == count));
	ck_assert_uint_eq(r_b->count, count);
	ck_assert(WAIT_FOR(queued(a) == 0));
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_TX) == count));

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_overflow_resync)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	chunk_t record;
	u_int i, ups = 0, count = 40000;

	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, 0, SECRET, ctr_b);
	ck_assert(a && b);
	a->set_up_cb(a, (void*)count_up, &ups);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(out_up(a) && __atomic_load_n(&ups, __ATOMIC_SEQ_CST)));
	/* b stops reading while a's queue overflows (80 MB of records) */
	r_b->hold = TRUE;
	for (i = 0; i < count; i++)
	{
		record = make_record(i, 2000);
		a->send(a, record);
		chunk_free(&record);
	}
	ck_assert(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_DROPPED) > 0);
	ck_assert(a->get_queued(a, NULL) > SASYNC_QUEUE_HIGH);
	ck_assert_uint_eq(__atomic_load_n(&ups, __ATOMIC_SEQ_CST), 1);
	/* once the queue drained, the up callback runs again: a resync of b */
	log_expect("drained after drops");
	__atomic_store_n(&r_b->hold, FALSE, __ATOMIC_SEQ_CST);
	ck_assert(WAIT_FOR(__atomic_load_n(&ups, __ATOMIC_SEQ_CST) == 2));
	ck_assert_uint_eq(a->get_queued(a, NULL), 0);
	ck_assert_uint_eq(log_count(1), 1);
	/* every record either arrived (the last ones still in flight) or was
	 * dropped and counted */
	ck_assert(WAIT_FOR(received(r_b) +
					   ctr_a->get(ctr_a, SASYNC_CTR_SYNC_DROPPED) == count));
	ck_assert(out_up(a));

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_dual_stack)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	char local[32], peers[32];
	sasync_link_t *a, *b;
	int fd;

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
	{
		fprintf(stderr, "  no IPv6, skipped\n");
		receiver_destroy(r_b);
		ctr_a->destroy(ctr_a);
		ctr_b->destroy(ctr_b);
		return;
	}
	close(fd);
	/* b listens dual-stack, a connects over IPv4 */
	snprintf(local, sizeof(local), "[::]:%u", port_b);
	snprintf(peers, sizeof(peers), "127.0.0.1:%u", port_a);
	b = sasync_link_create(local, peers, "b", chunk_from_str(SECRET), ctr_b);
	a = link_create(port_a, port_b, SECRET, ctr_a);
	ck_assert(a && b);
	b->set_receiver(b, (void*)receive, r_b);
	send_records(a, 0, 10);
	ck_assert(WAIT_FOR(received(r_b) == 10));
	ck_assert_uint_eq(r_b->count, 10);
	/* the IPv4-mapped source matched the configured IPv4 peer */
	ck_assert_uint_eq(r_b->peer_port, port_a);
	ck_assert(in_up(b));

	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

/** a link "name" on 127.0.0.1:port (or local) to peers, with a secret */
static sasync_link_t *named_link(char *local, uint16_t port, char *peers,
								 char *name, char *secret,
								 sasync_counters_t *ctr)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%s:%u", local ?: "127.0.0.1", port);
	return sasync_link_create(buf, peers, name, chunk_from_str(secret), ctr);
}

START_TEST(test_unknown_source)
{
	sasync_counters_t *ctr = test_counters_create();
	u_char hello[SASYNC_HELLO_LEN];
	sasync_link_t *link;
	uint16_t port = free_port();
	int fd;

	/* 127.0.0.1 is not a configured peer of this link */
	link = named_link(NULL, port, "127.0.0.2:1", "a", SECRET, ctr);
	ck_assert(link);
	log_expect("not a configured peer");
	fd = raw_connect(port);
	raw_hello(hello, "raw-client");
	send(fd, hello, sizeof(hello), MSG_NOSIGNAL);
	/* closed before any HELLO of the link: it took no slot */
	ck_assert(!raw_read(fd, hello, sizeof(hello)));
	close(fd);
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_REJECTED) == 1));
	ck_assert_uint_eq(log_count(1), 1);
	/* a flood is counted, but logged once per interval */
	for (fd = 0; fd < 5; fd++)
	{
		ck_assert(raw_closed(raw_connect(port)));
	}
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_REJECTED) == 6));
	ck_assert_uint_eq(log_count(1), 1);
	link->destroy(link);
	ctr->destroy(ctr);
}
END_TEST

START_TEST(test_reflection)
{
	sasync_counters_t *ctr = test_counters_create();
	u_char hello[SASYNC_HELLO_LEN], theirs[SASYNC_HELLO_LEN];
	receiver_t *r = receiver_create(0);
	sasync_crypt_t *crypt;
	sasync_link_t *link;
	uint16_t port = free_port();
	char peer[32];
	int fd;

	/* listening on any address, its partner is its own port on loopback:
	 * every connection it makes comes back to itself */
	snprintf(peer, sizeof(peer), "127.0.0.1:%u", port);
	link = named_link("0.0.0.0", port, peer, "a", SECRET, ctr);
	ck_assert(link);
	link->set_receiver(link, (void*)receive, r);
	send_records(link, 0, 3);
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_REJECTED) >= 2));
	ck_assert(!peer_state(link).out_up && !peer_state(link).in_up);
	ck_assert_uint_eq(received(r), 0);
	ck_assert_uint_eq(ctr->get(ctr, SASYNC_CTR_SYNC_RX), 0);

	/* a client replaying the link's own instance id, or its name */
	fd = raw_connect(port);
	raw_hello(hello, "raw-client");
	raw_write(fd, chunk_from_thing(hello));
	ck_assert(raw_read(fd, theirs, sizeof(theirs)));
	close(fd);
	ck_assert_str_eq((char*)theirs + SASYNC_HELLO_NAME, "a");
	fd = raw_connect(port);
	memcpy(hello + SASYNC_HELLO_INSTANCE, theirs + SASYNC_HELLO_INSTANCE,
		   SASYNC_INSTANCE_LEN);
	ck_assert(raw_handshake_hello(fd, SECRET, hello) == NULL);
	close(fd);
	fd = raw_connect(port);
	raw_hello(hello, "a");
	ck_assert(raw_handshake_hello(fd, SECRET, hello) == NULL);
	close(fd);
	/* the same, with a fresh id and another name, is a partner */
	fd = raw_connect(port);
	crypt = raw_handshake(fd, SECRET);
	ck_assert(crypt);
	crypt->destroy(crypt);
	close(fd);
	link->destroy(link);
	receiver_destroy(r);
	ctr->destroy(ctr);
}
END_TEST

START_TEST(test_named_peer)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	sasync_link_t *a, *b;
	char peers[48];

	snprintf(peers, sizeof(peers), "nodeb@127.0.0.1:%u", port_b);
	a = named_link(NULL, port_a, peers, "a", SECRET, ctr_a);
	snprintf(peers, sizeof(peers), "127.0.0.1:%u", port_a);
	/* the right key, the wrong name: refused both ways */
	b = named_link(NULL, port_b, peers, "impostor", SECRET, ctr_b);
	ck_assert(a && b);
	b->set_receiver(b, (void*)receive, r_b);
	send_records(a, 0, 5);
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_REJECTED) >= 2));
	ck_assert(!peer_state(a).out_up && !peer_state(a).in_up);
	ck_assert_uint_eq(received(r_b), 0);
	b->destroy(b);

	/* the node of that name gets what waited */
	b = named_link(NULL, port_b, peers, "nodeb", SECRET, ctr_b);
	ck_assert(b);
	b->set_receiver(b, (void*)receive, r_b);
	ck_assert(WAIT_FOR(received(r_b) == 5));
	ck_assert(WAIT_FOR(peer_state(a).in_up && peer_state(b).in_up));
	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

START_TEST(test_slots)
{
	sasync_counters_t *ctr = test_counters_create();
	sasync_crypt_t *crypts[4];
	sasync_link_t *link;
	uint16_t port = free_port();
	int fds[6], i;

	link = link_create(port, 0, SECRET, ctr);
	ck_assert(link);
	/* four idle connections from the peer's address take its slots */
	for (i = 0; i < 5; i++)
	{
		fds[i] = raw_connect(port);
	}
	/* the fifth closed the oldest one still in its handshake */
	ck_assert(raw_closed(fds[0]));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_REJECTED) == 1));
	/* the newest can complete its handshake, so a real partner gets in */
	for (i = 1; i < 5; i++)
	{
		crypts[i - 1] = raw_handshake(fds[i], SECRET);
		ck_assert(crypts[i - 1]);
	}
	/* with all slots authenticated, another connection is refused */
	fds[5] = raw_connect(port);
	ck_assert(raw_closed(fds[5]));
	ck_assert(WAIT_FOR(ctr->get(ctr, SASYNC_CTR_SYNC_REJECTED) == 2));
	for (i = 1; i < 5; i++)
	{
		crypts[i - 1]->destroy(crypts[i - 1]);
		close(fds[i]);
	}
	link->destroy(link);
	ctr->destroy(ctr);
}
END_TEST

START_TEST(test_key_rotation)
{
	sasync_counters_t *ctr_a = test_counters_create();
	sasync_counters_t *ctr_b = test_counters_create();
	receiver_t *r_b = receiver_create(0);
	uint16_t port_a = free_port(), port_b = free_port();
	chunk_t keys[3] = {
		chunk_from_str(SECRET "-new"),
		chunk_from_str(SECRET),
		chunk_from_str("short"),
	};
	sasync_link_t *a, *b;

	/* b accepts the new key and the old one, a still connects with the old */
	a = link_create(port_a, port_b, SECRET, ctr_a);
	b = link_create(port_b, 0, SECRET "-new", ctr_b);
	ck_assert(a && b);
	ck_assert(!b->set_keys(b, keys, 3));
	ck_assert(!b->set_keys(b, &keys[1], 2));
	ck_assert(b->set_keys(b, keys, 2));
	b->set_receiver(b, (void*)receive, r_b);
	send_records(a, 0, 2);
	ck_assert(WAIT_FOR(received(r_b) == 2));
	/* a changes to the new key: its connection up keeps its keys */
	ck_assert(a->set_keys(a, keys, 1));
	send_records(a, 2, 1);
	ck_assert(WAIT_FOR(received(r_b) == 3));
	/* b forgets the old key: a reconnects with the new one */
	ck_assert(b->set_keys(b, keys, 1));
	a->destroy(a);
	a = link_create(port_a, port_b, SECRET "-new", ctr_a);
	send_records(a, 3, 1);
	ck_assert(WAIT_FOR(received(r_b) == 4));
	ck_assert_uint_eq(ctr_b->get(ctr_b, SASYNC_CTR_SYNC_RX_AUTH_BAD), 0);
	a->destroy(a);
	b->destroy(b);
	receiver_destroy(r_b);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
}
END_TEST

Suite *link_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("link");
	tc = tcase_create("link");
	tcase_add_checked_fixture(tc, setup, teardown);
	/* bounded by the waits above, not by the default of 30 s */
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_invalid_settings);
	tcase_add_test(tc, test_records_in_order);
	tcase_add_test(tc, test_send_more);
	tcase_add_test(tc, test_send_to);
	tcase_add_test(tc, test_wrong_secret);
	tcase_add_loop_test(tc, test_late_peer, 0, 2);
	tcase_add_test(tc, test_queue_overflow);
	tcase_add_test(tc, test_raw_clients);
	tcase_add_test(tc, test_reconnect);
	tcase_add_test(tc, test_slow_reentrant_receiver);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_overflow_resync);
	tcase_add_test(tc, test_dual_stack);
	tcase_add_test(tc, test_unknown_source);
	tcase_add_test(tc, test_reflection);
	tcase_add_test(tc, test_named_peer);
	tcase_add_test(tc, test_slots);
	tcase_add_test(tc, test_key_rotation);
	suite_add_tcase(s, tc);
	return s;
}
