/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_dispatch.h"
#include "sasync_msg.h"
#include "test_runner.h"

#include <unistd.h>

#include <library.h>

/*
 * Stand-in link: keeps the callbacks so the test can call them
 */
typedef struct {
	sasync_link_t public;
	sasync_link_recv_t recv;
	void *recv_data;
	sasync_link_up_t up;
	void *up_data;
	int set_receiver_calls;
	int set_up_calls;
	int sent;
} test_link_t;

static void link_send(sasync_link_t *this, chunk_t payload)
{
	((test_link_t*)this)->sent++;
}

static void link_set_receiver(sasync_link_t *this, sasync_link_recv_t cb,
							  void *data)
{
	test_link_t *tlink = (test_link_t*)this;

	tlink->recv = cb;
	tlink->recv_data = data;
	tlink->set_receiver_calls++;
}

static void link_set_up_cb(sasync_link_t *this, sasync_link_up_t cb,
						   void *data)
{
	test_link_t *tlink = (test_link_t*)this;

	tlink->up = cb;
	tlink->up_data = data;
	tlink->set_up_calls++;
}

static void link_set_error_cb(sasync_link_t *this, sasync_link_error_t cb,
							  void *data)
{
	ck_assert_msg(FALSE, "the dispatcher has no business with link errors");
}

static enumerator_t *link_create_peer_enumerator(sasync_link_t *this)
{
	return enumerator_create_empty();
}

static void link_destroy(sasync_link_t *this)
{
	free(this);
}

static test_link_t *test_link_create()
{
	test_link_t *this;

	INIT(this,
		.public = {
			.send = link_send,
			.set_receiver = link_set_receiver,
			.set_up_cb = link_set_up_cb,
			.set_error_cb = link_set_error_cb,
			.create_peer_enumerator = link_create_peer_enumerator,
			.destroy = link_destroy,
		},
	);
	return this;
}

/*
 * Stand-in capture: counts resyncs
 */
typedef struct {
	sasync_capture_t public;
	int resyncs;
	/** target of the last resync, NULL for all partners */
	host_t *last_to;
	/** address the resyncs should go to, and whether the last one did */
	host_t *last_addr;
	bool same_peer;
} test_capture_t;

/* called from the scheduler's thread for a deferred resync */
static void capture_resync(sasync_capture_t *this, host_t *to)
{
	test_capture_t *capture = (test_capture_t*)this;

	capture->last_to = to;
	if (to && capture->last_addr)
	{
		capture->same_peer = to->equals(to, capture->last_addr);
	}
	__atomic_add_fetch(&capture->resyncs, 1, __ATOMIC_SEQ_CST);
}

static void capture_destroy(sasync_capture_t *this)
{
	free(this);
}

static test_capture_t *test_capture_create()
{
	test_capture_t *this;

	INIT(this,
		.public = {
			.resync = capture_resync,
			.destroy = capture_destroy,
		},
	);
	return this;
}

/*
 * Stand-in apply: records what it gets
 */
typedef struct {
	sasync_apply_t public;
	int applied;
	int rejected;
	sasync_msg_type_t last_type;
	/** SASYNC_ATTR_UNIQUE of the last record applied */
	uint64_t last_unique;
	host_t *last_peer;
	char *last_reason;
} test_apply_t;

static void apply_apply(sasync_apply_t *this, host_t *peer, sasync_msg_t *msg)
{
	test_apply_t *apply = (test_apply_t*)this;

	apply->applied++;
	apply->last_type = msg->get_type(msg);
	apply->last_unique = 0;
	msg->get_int(msg, SASYNC_ATTR_UNIQUE, &apply->last_unique);
	apply->last_peer = peer;
}

static void apply_reject(sasync_apply_t *this, host_t *peer, char *reason)
{
	test_apply_t *apply = (test_apply_t*)this;

	apply->rejected++;
	apply->last_peer = peer;
	free(apply->last_reason);
	apply->last_reason = strdup(reason);
}

static void apply_not_expected(sasync_apply_t *this)
{
	ck_assert_msg(FALSE, "the dispatcher only applies and rejects");
}

static void apply_destroy(sasync_apply_t *this)
{
	free(((test_apply_t*)this)->last_reason);
	free(this);
}

static test_apply_t *test_apply_create()
{
	test_apply_t *this;

	INIT(this,
		.public = {
			.apply = apply_apply,
			.reject = apply_reject,
			.get_waiting = (void*)apply_not_expected,
			.hold = apply_not_expected,
			.resume = apply_not_expected,
			.set_error_cb = (void*)apply_not_expected,
			.destroy = apply_destroy,
		},
	);
	return this;
}

/*
 * Fixture
 */
static test_link_t *tlink;
static test_capture_t *capture;
static test_apply_t *apply;
static sasync_role_t *role;
static sasync_counters_t *counters;
static sasync_dispatch_t *dispatch;
static host_t *peer;

static void create(sasync_role_state_t initial)
{
	tlink = test_link_create();
	capture = test_capture_create();
	apply = test_apply_create();
	role = sasync_role_create(initial);
	counters = sasync_counters_create();
	dispatch = sasync_dispatch_create(&tlink->public, role, counters,
									  &capture->public, &apply->public);
	peer = host_create_from_string("192.0.2.7", 4510);
	ck_assert(tlink->recv && tlink->up);
	ck_assert_int_eq(tlink->set_receiver_calls, 1);
	ck_assert_int_eq(tlink->set_up_calls, 1);
}

static void teardown()
{
	DESTROY_IF(dispatch);
	if (tlink)
	{
		tlink->public.destroy(&tlink->public);
	}
	if (capture)
	{
		capture->public.destroy(&capture->public);
	}
	if (apply)
	{
		apply->public.destroy(&apply->public);
	}
	DESTROY_IF(role);
	DESTROY_IF(counters);
	DESTROY_IF(peer);
	dispatch = NULL;
	tlink = NULL;
	capture = NULL;
	apply = NULL;
	role = NULL;
	counters = NULL;
	peer = NULL;
}

/** deliver a record as the link does: a payload it owns during the call */
static void deliver(sasync_msg_t *msg)
{
	chunk_t copy = chunk_clone(msg->get_encoding(msg));

	tlink->recv(tlink->recv_data, peer, copy);
	memwipe(copy.ptr, copy.len);
	chunk_free(&copy);
	msg->destroy(msg);
}

static sasync_msg_t *record(sasync_msg_type_t type, uint64_t unique)
{
	sasync_msg_t *msg = sasync_msg_create(type);

	msg->add_int(msg, SASYNC_ATTR_UNIQUE, unique);
	return msg;
}

START_TEST(test_malformed)
{
	sasync_msg_t *msg;
	chunk_t data;
	int i;

	create(_i ? SASYNC_ROLE_PRIMARY : SASYNC_ROLE_STANDBY);

	/* garbage, a truncated record, an unknown record type */
	tlink->recv(tlink->recv_data, peer, chunk_from_chars(0xde, 0xad, 0xbe));
	ck_assert_int_eq(apply->rejected, 1);
	ck_assert(apply->last_peer == peer);
	ck_assert(apply->last_reason && strlen(apply->last_reason));

	msg = record(SASYNC_MSG_IKE_ADD, 1);
	data = msg->get_encoding(msg);
	tlink->recv(tlink->recv_data, peer, chunk_create(data.ptr, data.len - 1));
	ck_assert_int_eq(apply->rejected, 2);
	data = chunk_clone(data);
	data.ptr[1] = SASYNC_MSG_TYPE_MAX;
	tlink->recv(tlink->recv_data, peer, data);
	ck_assert_int_eq(apply->rejected, 3);
	/* even the type of a request is only believed in a valid record */
	data.ptr[1] = SASYNC_MSG_RESYNC_REQUEST;
	data.len--;
	tlink->recv(tlink->recv_data, peer, data);
	ck_assert_int_eq(apply->rejected, 4);
	chunk_free(&data);
	msg->destroy(msg);

	for (i = 0; i < 3; i++)
	{
		tlink->recv(tlink->recv_data, peer, chunk_empty);
	}
	ck_assert_int_eq(apply->rejected, 7);
	ck_assert_int_eq(apply->applied, 0);
	ck_assert_int_eq(capture->resyncs, 0);
	ck_assert_int_eq(tlink->sent, 0);
}
END_TEST

/**
 * Every SA record type goes to apply, parsed, whatever the role (apply
 * checks it under its own lock)
 */
START_TEST(test_sa_records)
{
	sasync_msg_type_t types[] = {
		SASYNC_MSG_IKE_ADD, SASYNC_MSG_IKE_MID, SASYNC_MSG_IKE_REKEYED,
		SASYNC_MSG_IKE_DELETE, SASYNC_MSG_CHILD_ADD, SASYNC_MSG_CHILD_DELETE,
		SASYNC_MSG_RESYNC_DONE,
	};
	int i;

	create(_i ? SASYNC_ROLE_PRIMARY : SASYNC_ROLE_STANDBY);
	for (i = 0; i < countof(types); i++)
	{
		deliver(record(types[i], 100 + i));
		ck_assert_int_eq(apply->applied, i + 1);
		ck_assert_int_eq(apply->last_type, types[i]);
		ck_assert_int_eq(apply->last_unique, 100 + i);
		ck_assert(apply->last_peer == peer);
	}
	ck_assert_int_eq(apply->rejected, 0);
	ck_assert_int_eq(capture->resyncs, 0);
	ck_assert_int_eq(tlink->sent, 0);
}
END_TEST

START_TEST(test_resync_request)
{
	create(SASYNC_ROLE_STANDBY);
	/* a standby sends nothing, so it resends nothing */
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(capture->resyncs, 0);
	ck_assert_int_eq(apply->applied, 0);
	ck_assert_int_eq(apply->rejected, 0);

	/* the role is read for each record */
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "test"));
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(capture->resyncs, 1);
	/* only the node that asked: the other standbys are current */
	ck_assert(capture->last_to == peer);
	/* the next one within the interval is deferred (see test_throttle) */
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(capture->resyncs, 1);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_RESYNC_DEFERRED), 1);
	ck_assert_int_eq(apply->applied, 0);
	ck_assert_int_eq(apply->rejected, 0);

	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "test"));
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(capture->resyncs, 1);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_RESYNC_DEFERRED), 1);
}
END_TEST

static int resyncs()
{
	return __atomic_load_n(&capture->resyncs, __ATOMIC_SEQ_CST);
}

/**
 * Wait until the capture saw the given number of resyncs, up to 10 s
 */
static void wait_resyncs(int count)
{
	int i;

	for (i = 0; i < 200 && resyncs() < count; i++)
	{
		usleep(50000);
	}
	ck_assert_int_eq(resyncs(), count);
}

static void setup_threads()
{
	lib->processor->set_threads(lib->processor, 2);
}

static void teardown_threads()
{
	teardown();
	sasync_test_reinit(NULL);
}

/**
 * A flood of requests (and links up) from one partner starts one bulk
 * resync at once and one more at the end of the interval, none dropped;
 * another partner is not held back by it
 */
START_TEST(test_throttle)
{
	host_t *other;
	int i;

	create(SASYNC_ROLE_PRIMARY);
	capture->last_addr = peer;
	other = host_create_from_string("192.0.2.8", 4510);
	for (i = 0; i < 50; i++)
	{
		deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
		tlink->up(tlink->up_data, peer);
	}
	ck_assert_int_eq(resyncs(), 1);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_RESYNC_DEFERRED), 99);
	/* another partner */
	tlink->up(tlink->up_data, other);
	ck_assert_int_eq(resyncs(), 2);
	ck_assert(capture->last_to == other);

	/* the deferred one, to the partner that asked */
	wait_resyncs(3);
	ck_assert(capture->same_peer);
	/* nothing more is pending: another request waits out a new interval */
	usleep(SASYNC_RESYNC_INTERVAL_MS * 1000 / 2);
	ck_assert_int_eq(resyncs(), 3);
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(resyncs(), 3);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_RESYNC_DEFERRED),
					 100);
	wait_resyncs(4);
	other->destroy(other);
}
END_TEST

/**
 * A deferred resync whose node became standby meanwhile is not sent; one
 * whose dispatcher is gone does nothing
 */
START_TEST(test_throttle_role_and_destroy)
{
	int i;

	create(SASYNC_ROLE_PRIMARY);
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(resyncs(), 1);
	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "test"));
	usleep(SASYNC_RESYNC_INTERVAL_MS * 1000 + 500000);
	ck_assert_int_eq(resyncs(), 1);

	/* deferred again, then the dispatcher goes: the job finds it dead */
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "test"));
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	deliver(sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	ck_assert_int_eq(resyncs(), 2);
	dispatch->destroy(dispatch);
	dispatch = NULL;
	for (i = 0; i < 3; i++)
	{
		usleep(SASYNC_RESYNC_INTERVAL_MS * 1000 / 2);
	}
	ck_assert_int_eq(resyncs(), 2);
}
END_TEST

START_TEST(test_link_up)
{
	create(SASYNC_ROLE_STANDBY);
	tlink->up(tlink->up_data, peer);
	ck_assert_int_eq(capture->resyncs, 0);

	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "test"));
	tlink->up(tlink->up_data, peer);
	ck_assert_int_eq(capture->resyncs, 1);
	/* only the node whose link came up */
	ck_assert(capture->last_to == peer);
	/* deferred as a request is */
	tlink->up(tlink->up_data, peer);
	ck_assert_int_eq(capture->resyncs, 1);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_RESYNC_DEFERRED), 1);

	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "test"));
	tlink->up(tlink->up_data, peer);
	ck_assert_int_eq(capture->resyncs, 1);
	ck_assert_int_eq(apply->applied, 0);
	ck_assert_int_eq(apply->rejected, 0);
	ck_assert_int_eq(tlink->sent, 0);
}
END_TEST

/* destroyed after the link (whose threads call it until they are joined),
 * so destroy must not call the link anymore */
START_TEST(test_destroy_leaves_link)
{
	create(SASYNC_ROLE_PRIMARY);
	dispatch->destroy(dispatch);
	dispatch = NULL;
	ck_assert_int_eq(tlink->set_receiver_calls, 1);
	ck_assert_int_eq(tlink->set_up_calls, 1);
	ck_assert_int_eq(capture->resyncs, 0);
	ck_assert_int_eq(apply->applied + apply->rejected, 0);
}
END_TEST

Suite *dispatch_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("dispatch");

	tc = tcase_create("routing");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_loop_test(tc, test_malformed, 0, 2);
	tcase_add_loop_test(tc, test_sa_records, 0, 2);
	tcase_add_test(tc, test_resync_request);
	tcase_add_test(tc, test_link_up);
	tcase_add_test(tc, test_destroy_leaves_link);
	suite_add_tcase(s, tc);

	tc = tcase_create("throttle");
	tcase_add_checked_fixture(tc, setup_threads, teardown_threads);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_throttle);
	tcase_add_test(tc, test_throttle_role_and_destroy);
	suite_add_tcase(s, tc);
	return s;
}
