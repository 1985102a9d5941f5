/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Talks to the plugin's vici server with Debian's libvici, swanctl and raw
 * sockets. Needs libvici (VICI_CFLAGS/VICI_LIBS).
 */

#include <library.h>
#include <daemon.h>
#include <check.h>
#include <libvici.h>

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sasync_counters.h"
#include "sasync_vici.h"
#include "sasync_vici_msg.h"

#define SWANCTL "/usr/sbin/swanctl"

/** how long to wait for the server, in ms */
#define TIMEOUT_MS 10000

static sasync_vici_t *server;
static sasync_counters_t *counters;
static char path[128], uri[160];

static void setup(void)
{
	/* the server writes to clients that may have gone */
	signal(SIGPIPE, SIG_IGN);
	lib->processor->set_threads(lib->processor, 8);
	/* with enough threads running, this does not touch the log level */
	vici_init();

	snprintf(path, sizeof(path), "/tmp/sasync-vici-test-%d.sock", getpid());
	snprintf(uri, sizeof(uri), "unix://%s", path);
	counters = sasync_counters_create();
	server = sasync_vici_create(uri, counters);
	ck_assert(server);
}

static void teardown(void)
{
	DESTROY_IF(server);
	server = NULL;
	counters->destroy(counters);
	/* cancels the processor threads, as the runner wants */
	vici_deinit();
}

/**
 * Connect with libvici.
 */
static vici_conn_t *connect_vici()
{
	vici_conn_t *conn;

	conn = vici_connect(uri);
	ck_assert_msg(conn, "connecting to %s failed: %s", uri, strerror(errno));
	return conn;
}

/**
 * Submit a command without arguments.
 */
static vici_res_t *submit(vici_conn_t *conn, char *cmd)
{
	return vici_submit(vici_begin(cmd), conn);
}

/**
 * Wait until a condition holds (polling), fail after TIMEOUT_MS.
 */
#define wait_for(cond) ({ \
	int _ms = 0; \
	while (!(cond) && _ms < TIMEOUT_MS) { usleep(10000); _ms += 10; } \
	ck_assert_msg((cond), "timeout waiting for " #cond); \
})

/**
 * Collect the items of a top-level list in a response.
 */
CALLBACK(collect_item, int,
	char *buf, vici_res_t *res, char *name, void *value, int len)
{
	if (streq(name, "plugins"))
	{
		snprintf(buf + strlen(buf), 512 - strlen(buf), " %.*s", len,
				 (char*)value);
	}
	return 0;
}

START_TEST(test_stats)
{
	char items[512] = "", expected[32];
	vici_conn_t *conn;
	vici_res_t *res;
	int i;

	for (i = 0; i < 3; i++)
	{
		counters->inc(counters, SASYNC_CTR_VIKE_SYNC);
	}
	counters->inc(counters, SASYNC_CTR_CHILD_WAITING);
	counters->set_queue_depth(counters, 5);
	counters->record_lag(counters, 50);
	counters->record_lag(counters, 20);

	conn = connect_vici();
	res = submit(conn, "stats");
	ck_assert(res);

	/* what swanctl --stats reads */
	ck_assert(vici_find_str(res, NULL, "uptime.running"));
	ck_assert(vici_find_str(res, NULL, "uptime.since"));
	snprintf(expected, sizeof(expected), "%u",
			 lib->processor->get_total_threads(lib->processor));
	ck_assert_str_eq(vici_find_str(res, "", "workers.total"), expected);
	ck_assert(vici_find_str(res, NULL, "workers.idle"));
	ck_assert(vici_find_str(res, NULL, "workers.active.critical"));
	ck_assert(vici_find_str(res, NULL, "workers.active.high"));
	ck_assert(vici_find_str(res, NULL, "workers.active.medium"));
	ck_assert(vici_find_str(res, NULL, "workers.active.low"));
	ck_assert(vici_find_str(res, NULL, "queues.critical"));
	ck_assert(vici_find_str(res, NULL, "queues.high"));
	ck_assert(vici_find_str(res, NULL, "queues.medium"));
	ck_assert(vici_find_str(res, NULL, "queues.low"));
	ck_assert(vici_find_str(res, NULL, "scheduled"));
	ck_assert(vici_find_str(res, NULL, "mallinfo.sbrk"));
	ck_assert(vici_find_str(res, NULL, "mallinfo.mmap"));
	ck_assert(vici_find_str(res, NULL, "mallinfo.used"));
	ck_assert(vici_find_str(res, NULL, "mallinfo.free"));
	if (charon && charon->ike_sa_manager)
	{
		ck_assert_str_eq(vici_find_str(res, "", "ikesas.total"), "0");
		ck_assert_str_eq(vici_find_str(res, "", "ikesas.half-open"), "0");
	}
	else
	{	/* not without the daemon */
		ck_assert(!vici_find_str(res, NULL, "ikesas.total"));
	}

	/* the counters, by name */
	ck_assert_str_eq(vici_find_str(res, "", "ha.vike-sync"), "3");
	ck_assert_str_eq(vici_find_str(res, "", "ha.child-waiting"), "1");
	ck_assert_str_eq(vici_find_str(res, "", "ha.resync"), "0");
	for (i = 0; i < SASYNC_CTR_MAX; i++)
	{
		ck_assert_msg(vici_find_str(res, NULL, "ha.%N", sasync_counter_names,
									i), "counter %d missing", i);
	}
	ck_assert_str_eq(vici_find_str(res, "", "ha.queue-depth"), "5");
	ck_assert_str_eq(vici_find_str(res, "", "ha.sync-lag-last-ms"), "20");
	ck_assert_str_eq(vici_find_str(res, "", "ha.sync-lag-max-ms"), "50");

	/* the plugins list, as swanctl parses it */
	ck_assert_int_eq(vici_parse_cb(res, NULL, NULL, collect_item, items), 0);
	ck_assert_msg(strstr(items, " random"), "plugins:%s", items);
	vici_free_res(res);
	vici_disconnect(conn);
}
END_TEST

START_TEST(test_reset_counters)
{
	vici_conn_t *conn;
	vici_res_t *res;
	uint32_t last, max;

	counters->inc(counters, SASYNC_CTR_SYNC_TX);
	counters->inc(counters, SASYNC_CTR_PROMOTIONS);
	counters->set_queue_depth(counters, 7);
	counters->record_lag(counters, 30);

	conn = connect_vici();
	res = submit(conn, "ha-reset-counters");
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "success"), "yes");
	vici_free_res(res);

	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_SYNC_TX), 0);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_PROMOTIONS), 0);
	/* gauges stay */
	ck_assert_int_eq(counters->get_queue_depth(counters), 7);
	counters->get_lag(counters, &last, &max);
	ck_assert_int_eq(last, 30);
	ck_assert_int_eq(max, 0);

	res = submit(conn, "stats");
	ck_assert_str_eq(vici_find_str(res, "", "ha.sync-tx"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "ha.queue-depth"), "7");
	vici_free_res(res);
	vici_disconnect(conn);
}
END_TEST

/**
 * A command echoing its arguments
 */
static sasync_vici_msg_t *echo_cmd(void *user, sasync_vici_msg_t *request,
								   u_int client)
{
	sasync_vici_builder_t *b;
	enumerator_t *enumerator;
	char *item;

	ck_assert_str_eq(user, "user");
	ck_assert_int_gt(client, 0);

	b = sasync_vici_builder_create();
	b->add_kv(b, "arg", "%s", request->get_str(request, "none", "arg"));
	b->add_kv(b, "nested", "%s",
			  request->get_str(request, "none", "sec.sub.key"));
	b->add_kv(b, "number", "%d", request->get_int(request, -1, "n") + 1);
	b->begin_list(b, "items");
	enumerator = request->create_list_enumerator(request, "sec.list");
	while (enumerator->enumerate(enumerator, &item))
	{
		b->add_li(b, "<%s>", item);
	}
	enumerator->destroy(enumerator);
	b->end_list(b);
	return b->finish(b);
}

START_TEST(test_command)
{
	vici_conn_t *conn;
	vici_req_t *req;
	vici_res_t *res;

	server->add_command(server, "echo", echo_cmd, "user");
	conn = connect_vici();

	req = vici_begin("echo");
	vici_add_key_valuef(req, "arg", "hello %d", 1);
	vici_add_key_valuef(req, "n", "%d", 41);
	vici_begin_section(req, "sec");
	vici_begin_section(req, "sub");
	vici_add_key_valuef(req, "key", "deep");
	vici_end_section(req);
	vici_begin_list(req, "list");
	vici_add_list_itemf(req, "a");
	vici_add_list_itemf(req, "b");
	vici_end_list(req);
	vici_end_section(req);
	res = vici_submit(req, conn);
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "arg"), "hello 1");
	ck_assert_str_eq(vici_find_str(res, "", "nested"), "deep");
	ck_assert_str_eq(vici_find_str(res, "", "number"), "42");
	vici_free_res(res);

	/* without arguments */
	res = submit(conn, "echo");
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "arg"), "none");
	ck_assert_str_eq(vici_find_str(res, "", "number"), "0");
	vici_free_res(res);
	vici_disconnect(conn);
}
END_TEST

static sasync_vici_msg_t *null_cmd(void *user, sasync_vici_msg_t *request,
								   u_int client)
{
	return NULL;
}

START_TEST(test_command_null_reply)
{
	vici_conn_t *conn;
	vici_res_t *res;

	server->add_command(server, "ha-null", null_cmd, NULL);
	conn = connect_vici();
	res = submit(conn, "ha-null");
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "success"), "no");
	ck_assert(vici_find_str(res, NULL, "errmsg"));
	vici_free_res(res);
	vici_disconnect(conn);
}
END_TEST

START_TEST(test_unknown_command)
{
	vici_conn_t *conn;
	vici_res_t *res;

	conn = connect_vici();
	errno = 0;
	res = submit(conn, "no-such-command");
	ck_assert(res == NULL);
	ck_assert_int_eq(errno, ENOENT);
	/* the connection is still usable */
	res = submit(conn, "stats");
	ck_assert(res);
	vici_free_res(res);
	vici_disconnect(conn);
}
END_TEST

/**
 * Events received by a client
 */
typedef struct {
	int count;
	char last[64];
} received_t;

static void event_cb(void *user, char *name, vici_res_t *msg)
{
	received_t *rcv = user;

	snprintf(rcv->last, sizeof(rcv->last), "%s:%s", name,
			 vici_find_str(msg, "", "role"));
	__atomic_add_fetch(&rcv->count, 1, __ATOMIC_SEQ_CST);
}

static int received(received_t *rcv)
{
	return __atomic_load_n(&rcv->count, __ATOMIC_SEQ_CST);
}

/**
 * Create an event message with a role
 */
static sasync_vici_msg_t *role_msg(char *role)
{
	sasync_vici_builder_t *b;

	b = sasync_vici_builder_create();
	b->add_kv(b, "role", "%s", role);
	return b->finish(b);
}

START_TEST(test_events)
{
	received_t rcv = {}, other = {};
	vici_conn_t *conn, *conn2;

	server->add_event(server, "ha-role");
	server->add_event(server, "ha-sync-error");
	conn = connect_vici();
	conn2 = connect_vici();

	ck_assert(!server->has_listeners(server, "ha-role"));
	errno = 0;
	ck_assert(vici_register(conn, "no-such-event", event_cb, &rcv) != 0);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(vici_register(conn, "ha-role", event_cb, &rcv), 0);
	ck_assert_int_eq(vici_register(conn2, "ha-sync-error", event_cb,
								   &other), 0);
	ck_assert(server->has_listeners(server, "ha-role"));
	ck_assert(server->has_listeners(server, "ha-sync-error"));

	server->raise_event(server, "ha-role", role_msg("active"));
	wait_for(received(&rcv) == 1);
	ck_assert_str_eq(rcv.last, "ha-role:active");
	server->raise_event(server, "ha-role", NULL);
	wait_for(received(&rcv) == 2);
	ck_assert_str_eq(rcv.last, "ha-role:");
	/* an event nobody registered for */
	server->raise_event(server, "ha-unknown", role_msg("x"));

	/* commands still work while registered */
	vici_free_res(submit(conn, "stats"));

	ck_assert_int_eq(vici_register(conn, "ha-role", NULL, NULL), 0);
	ck_assert(!server->has_listeners(server, "ha-role"));
	server->raise_event(server, "ha-role", role_msg("standby"));
	server->raise_event(server, "ha-sync-error", role_msg("err"));
	wait_for(received(&other) == 1);
	ck_assert_str_eq(other.last, "ha-sync-error:err");
	ck_assert_int_eq(received(&rcv), 2);

	vici_disconnect(conn);
	vici_disconnect(conn2);
	wait_for(!server->has_listeners(server, "ha-sync-error"));
}
END_TEST

/**
 * A command streaming events to its client before replying
 */
static sasync_vici_msg_t *stream_cmd(void *user, sasync_vici_msg_t *request,
									 u_int client)
{
	char role[16];
	int i;

	for (i = 0; i < 3; i++)
	{
		snprintf(role, sizeof(role), "item%d", i);
		server->send_event(server, client, "ha-item", role_msg(role));
	}
	return sasync_vici_msg_create_reply(TRUE, NULL);
}

START_TEST(test_streaming)
{
	received_t rcv = {}, other = {};
	vici_conn_t *conn, *conn2;
	vici_res_t *res;

	server->add_event(server, "ha-item");
	server->add_command(server, "ha-stream", stream_cmd, NULL);
	conn = connect_vici();
	conn2 = connect_vici();
	ck_assert_int_eq(vici_register(conn, "ha-item", event_cb, &rcv), 0);
	ck_assert_int_eq(vici_register(conn2, "ha-item", event_cb, &other), 0);

	res = submit(conn, "ha-stream");
	ck_assert(res);
	/* events are handled before the response that follows them */
	ck_assert_int_eq(received(&rcv), 3);
	ck_assert_str_eq(rcv.last, "ha-item:item2");
	vici_free_res(res);

	/* only the requesting client gets them */
	res = submit(conn2, "stats");
	vici_free_res(res);
	ck_assert_int_eq(received(&other), 0);

	/* client 0 is nobody */
	server->send_event(server, 0, "ha-item", role_msg("x"));
	vici_disconnect(conn);
	vici_disconnect(conn2);
}
END_TEST

/**
 * Connect a raw socket.
 */
static int connect_raw()
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert(fd >= 0);
	ck_assert(strlen(path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	ck_assert_msg(connect(fd, (struct sockaddr*)&addr, sizeof(addr)) == 0,
				  "connect: %s", strerror(errno));
	return fd;
}

/**
 * Read exactly len bytes with a timeout; FALSE on EOF/timeout.
 */
static bool read_raw(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t got;

	while (len)
	{
		if (poll(&pfd, 1, TIMEOUT_MS) != 1)
		{
			return FALSE;
		}
		got = read(fd, buf, len);
		if (got <= 0)
		{
			return FALSE;
		}
		buf += got;
		len -= got;
	}
	return TRUE;
}

/**
 * Read a packet and return its type, -1 on EOF.
 */
static int read_packet_type(int fd)
{
	uint32_t len;
	chunk_t data;
	int type;

	if (!read_raw(fd, &len, sizeof(len)))
	{
		return -1;
	}
	len = ntohl(len);
	ck_assert(len > 0 && len <= SASYNC_VICI_PACKET_MAX_LEN);
	data = chunk_alloc(len);
	ck_assert(read_raw(fd, data.ptr, data.len));
	type = data.ptr[0];
	chunk_free(&data);
	return type;
}

/**
 * Check the server closes the connection (EOF, not a timeout).
 */
static void assert_closed(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[64];

	while (TRUE)
	{
		ck_assert_msg(poll(&pfd, 1, TIMEOUT_MS) == 1, "not disconnected");
		if (read(fd, buf, sizeof(buf)) <= 0)
		{
			break;
		}
	}
}

static void write_raw(int fd, chunk_t data)
{
	ck_assert_int_eq(write(fd, data.ptr, data.len), data.len);
}

/**
 * Check the server still serves requests.
 */
static void assert_serving()
{
	vici_conn_t *conn;
	vici_res_t *res;

	conn = connect_vici();
	res = submit(conn, "stats");
	ck_assert(res);
	vici_free_res(res);
	vici_disconnect(conn);
}

/**
 * Packets a client must get disconnected for
 */
static struct {
	char *what;
	chunk_t data;
} malformed[] = {
	{ "oversize length", chunk_from_chars(0x00, 0x08, 0x00, 0x01) },
	{ "huge length", chunk_from_chars(0xff, 0xff, 0xff, 0xff, 0, 5) },
	{ "zero length", chunk_from_chars(0, 0, 0, 0) },
	{ "http", chunk_from_chars('G', 'E', 'T', ' ', '/', '\r', '\n') },
	{ "unknown packet type", chunk_from_chars(0, 0, 0, 1, 9) },
	{ "response from client", chunk_from_chars(0, 0, 0, 1, 1) },
	{ "confirm from client", chunk_from_chars(0, 0, 0, 1, 5) },
	{ "event from client", chunk_from_chars(0, 0, 0, 3, 7, 1, 'e') },
	{ "request without name", chunk_from_chars(0, 0, 0, 1, 0) },
	{ "request with empty name", chunk_from_chars(0, 0, 0, 2, 0, 0) },
	{ "request name beyond", chunk_from_chars(0, 0, 0, 3, 0, 9, 's') },
	{ "register name beyond", chunk_from_chars(0, 0, 0, 3, 3, 9, 'e') },
	{ "unclosed section", chunk_from_chars(0, 0, 0, 9, 0, 5,
								's', 't', 'a', 't', 's', 1, 1, 's') },
	{ "value beyond", chunk_from_chars(0, 0, 0, 12, 0, 5,
								's', 't', 'a', 't', 's', 3, 1, 'k', 0, 9) },
	{ "bad element", chunk_from_chars(0, 0, 0, 8, 0, 5,
								's', 't', 'a', 't', 's', 0x42) },
	{ "item outside list", chunk_from_chars(0, 0, 0, 11, 0, 5,
								's', 't', 'a', 't', 's', 5, 0, 1, 'x') },
	{ "truncated then closed", chunk_from_chars(0, 0, 0, 20, 0, 5, 's') },
};

START_TEST(test_malformed)
{
	int fd;

	fd = connect_raw();
	write_raw(fd, malformed[_i].data);
	if (_i == countof(malformed) - 1)
	{	/* just going away mid-packet */
		shutdown(fd, SHUT_WR);
	}
	assert_closed(fd);
	close(fd);
	assert_serving();
}
END_TEST

/**
 * Garbage following valid requests
 */
static chunk_t trailers[] = {
	/* a bad packet type */
	chunk_from_chars(0, 0, 0, 1, 0x63),
	/* a malformed request */
	chunk_from_chars(0, 0, 0, 4, 0, 1, 'x', 0x42),
	/* a bad length */
	chunk_from_chars(0xff, 0, 0, 0),
	/* an empty packet */
	chunk_from_chars(0, 0, 0, 0),
};

START_TEST(test_valid_then_garbage)
{
	chunk_t request;
	int fd, i;

	request = sasync_vici_packet_encode(SASYNC_VICI_CMD_REQUEST, "stats",
										chunk_empty);
	fd = connect_raw();
	for (i = 0; i < 3; i++)
	{
		write_raw(fd, request);
	}
	write_raw(fd, trailers[_i]);
	/* the requests before get answered, then we are out */
	for (i = 0; i < 3; i++)
	{
		ck_assert_int_eq(read_packet_type(fd), SASYNC_VICI_CMD_RESPONSE);
	}
	assert_closed(fd);
	close(fd);
	chunk_free(&request);
	assert_serving();
}
END_TEST

START_TEST(test_half_close)
{
	chunk_t request;
	int fd, i;

	request = sasync_vici_packet_encode(SASYNC_VICI_CMD_REQUEST, "stats",
										chunk_empty);
	fd = connect_raw();
	for (i = 0; i < 20; i++)
	{
		write_raw(fd, request);
	}
	shutdown(fd, SHUT_WR);
	/* everything asked for before the close gets answered */
	for (i = 0; i < 20; i++)
	{
		ck_assert_int_eq(read_packet_type(fd), SASYNC_VICI_CMD_RESPONSE);
	}
	assert_closed(fd);
	close(fd);
	chunk_free(&request);
}
END_TEST

START_TEST(test_random_garbage)
{
	u_char buf[512];
	int fd, i, j;

	srandom(0xabcd);
	for (i = 0; i < 20; i++)
	{
		for (j = 0; j < sizeof(buf); j++)
		{
			buf[j] = random();
		}
		/* a plausible length, so the garbage reaches the parser */
		htoun32(buf, sizeof(buf) - 4);
		buf[4] = random() % 8;
		fd = connect_raw();
		write_raw(fd, chunk_create(buf, sizeof(buf)));
		/* anything but a disconnect must be an answer to a request */
		while (TRUE)
		{
			int type = read_packet_type(fd);

			if (type == -1)
			{
				break;
			}
			ck_assert(type == SASYNC_VICI_CMD_RESPONSE ||
					  type == SASYNC_VICI_CMD_UNKNOWN ||
					  type == SASYNC_VICI_EVENT_UNKNOWN);
			shutdown(fd, SHUT_WR);
		}
		close(fd);
	}
	assert_serving();
}
END_TEST

START_TEST(test_pipelined)
{
	chunk_t request, all = chunk_empty;
	int fd, i;

	request = sasync_vici_packet_encode(SASYNC_VICI_CMD_REQUEST, "stats",
										chunk_empty);
	for (i = 0; i < 50; i++)
	{
		all = chunk_cat("mc", all, request);
	}
	fd = connect_raw();
	write_raw(fd, all);
	for (i = 0; i < 50; i++)
	{
		ck_assert_int_eq(read_packet_type(fd), SASYNC_VICI_CMD_RESPONSE);
	}
	close(fd);
	chunk_free(&request);
	chunk_free(&all);
	assert_serving();
}
END_TEST

START_TEST(test_slow_reader)
{
	sasync_vici_builder_t *b;
	chunk_t reg, big;
	int fd, i;

	server->add_event(server, "ha-role");
	reg = sasync_vici_packet_encode(SASYNC_VICI_EVENT_REGISTER, "ha-role",
									chunk_empty);
	fd = connect_raw();
	write_raw(fd, reg);
	ck_assert_int_eq(read_packet_type(fd), SASYNC_VICI_EVENT_CONFIRM);
	ck_assert(server->has_listeners(server, "ha-role"));

	big = chunk_alloc(60000);
	memset(big.ptr, 'x', big.len);
	for (i = 0; i < 400 && server->has_listeners(server, "ha-role"); i++)
	{
		b = sasync_vici_builder_create();
		b->add_kv_chunk(b, "role", big);
		server->raise_event(server, "ha-role", b->finish(b));
	}
	/* never read: the server gives up on us */
	wait_for(!server->has_listeners(server, "ha-role"));
	close(fd);
	chunk_free(&big);
	chunk_free(&reg);
	assert_serving();
}
END_TEST

START_TEST(test_destroy_with_clients)
{
	vici_conn_t *conn;
	int fd;

	server->add_event(server, "ha-role");
	conn = connect_vici();
	ck_assert_int_eq(vici_register(conn, "ha-role", event_cb, NULL), 0);
	fd = connect_raw();
	/* make sure the connection got accepted: destroying the service while
	 * it accepts a connection may deadlock (see destroy()) */
	write_raw(fd, chunk_from_chars(0, 0, 0, 3, 3, 1, 'x'));
	ck_assert_int_eq(read_packet_type(fd), SASYNC_VICI_EVENT_UNKNOWN);
	/* half a packet pending */
	write_raw(fd, chunk_from_chars(0, 0, 0, 9, 0));
	server->destroy(server);
	server = NULL;
	assert_closed(fd);
	close(fd);
	ck_assert(access(path, F_OK) != 0);
	vici_disconnect(conn);
}
END_TEST

START_TEST(test_socket)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0770);
	ck_assert(!sasync_vici_create("unix:///nonexistent-dir/x.sock", NULL));
}
END_TEST

START_TEST(test_socket_group)
{
	struct group *grp;
	sasync_vici_t *other;
	char other_uri[200];
	struct stat st;

	grp = getgrnam("daemon");
	if (getuid() != 0 || !grp)
	{
		return;
	}
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.socket_group",
						   "daemon", lib->ns);
	snprintf(other_uri, sizeof(other_uri), "%s-grp", uri);
	other = sasync_vici_create(other_uri, NULL);
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.socket_group",
						   NULL, lib->ns);
	ck_assert(other);
	ck_assert_int_eq(stat(other_uri + strlen("unix://"), &st), 0);
	ck_assert_int_eq(st.st_gid, grp->gr_gid);
	ck_assert_int_eq(st.st_mode & 0777, 0770);
	other->destroy(other);
}
END_TEST

/**
 * Run a command, return its output (allocated).
 */
static char *run(char *cmd)
{
	char *out = NULL;
	size_t len = 0;
	FILE *pipe, *mem;
	char buf[1024];
	size_t got;

	pipe = popen(cmd, "r");
	ck_assert(pipe);
	mem = open_memstream(&out, &len);
	while ((got = fread(buf, 1, sizeof(buf), pipe)) > 0)
	{
		fwrite(buf, 1, got, mem);
	}
	fclose(mem);
	ck_assert_int_eq(pclose(pipe), 0);
	return out;
}

START_TEST(test_swanctl)
{
	char cmd[256], *out;

	if (access(SWANCTL, X_OK) != 0)
	{
		return;
	}
	counters->inc(counters, SASYNC_CTR_RESYNC);

	snprintf(cmd, sizeof(cmd), SWANCTL " --stats --uri %s 2>&1", uri);
	out = run(cmd);
	ck_assert_msg(strstr(out, "uptime: "), "%s", out);
	ck_assert_msg(strstr(out, "worker threads: "), "%s", out);
	ck_assert_msg(strstr(out, "job queues: "), "%s", out);
	ck_assert_msg(strstr(out, "mallinfo: sbrk "), "%s", out);
	ck_assert_msg(strstr(out, "loaded plugins: "), "%s", out);
	/* swanctl --stats prints fixed keys only */
	ck_assert_msg(!strstr(out, "resync"), "%s", out);
	free(out);

	snprintf(cmd, sizeof(cmd), SWANCTL " --stats --raw --uri %s 2>&1", uri);
	out = run(cmd);
	ck_assert_msg(strstr(out, "ha {resync=1 vike-sync=0"), "%s", out);
	ck_assert_msg(strstr(out, "sync-lag-max-ms=0}"), "%s", out);
	free(out);

	snprintf(cmd, sizeof(cmd), SWANCTL " --stats --pretty --uri %s 2>&1", uri);
	out = run(cmd);
	ck_assert_msg(strstr(out, "  ha {\n    resync = 1\n"), "%s", out);
	free(out);
}
END_TEST

Suite *vici_server_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("vici_server");

	tc = tcase_create("commands");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_reset_counters);
	tcase_add_test(tc, test_command);
	tcase_add_test(tc, test_command_null_reply);
	tcase_add_test(tc, test_unknown_command);
	tcase_add_test(tc, test_swanctl);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_streaming);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_malformed, 0, countof(malformed));
	tcase_add_loop_test(tc, test_valid_then_garbage, 0, countof(trailers));
	tcase_add_test(tc, test_half_close);
	tcase_add_test(tc, test_random_garbage);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_slow_reader);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_destroy_with_clients);
	tcase_add_test(tc, test_socket);
	tcase_add_test(tc, test_socket_group);
	suite_add_tcase(s, tc);

	return s;
}
