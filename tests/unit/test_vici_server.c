/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * The plugin's vici socket (sasync_control_t on strongSwan's vici server,
 * compiled into the plugin), talked to with Debian's libvici, swanctl and
 * raw sockets: every command and event, the server's answers to errors, the
 * socket's permissions. Needs libvici (VICI_CFLAGS/VICI_LIBS).
 *
 * The fixture builds what the plugin hands the control (role, counters,
 * key store, outbound guard, apply, promote; no link: sync disabled) and
 * an IKE_SA manager, which the runner's libcharon_init() does not create.
 * Like charon, it stops the processor threads before destroying the
 * control: strongSwan's vici socket expects no job of it to run then.
 */

#include <library.h>
#include <daemon.h>
#include <check.h>
#include <libvici.h>
#include <sa/ike_sa_manager.h>
#include <sa/child_sa_manager.h>

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

#include "sasync_control.h"
#include "sasync_keystore.h"

#define SWANCTL "/usr/sbin/swanctl"

/** how long to wait for the server, in ms */
#define TIMEOUT_MS 10000

/** vici packet types (vici_dispatcher.h) */
enum {
	CMD_REQUEST = 0,
	CMD_RESPONSE = 1,
	CMD_UNKNOWN = 2,
	EVENT_REGISTER = 3,
	EVENT_UNREGISTER = 4,
	EVENT_CONFIRM = 5,
	EVENT_UNKNOWN = 6,
	EVENT = 7,
};

static sasync_control_t *control;
static sasync_counters_t *counters;
static sasync_role_t *role;
static sasync_keystore_t *keys;
static sasync_outbound_t *outbound;
static sasync_apply_t *apply;
static sasync_promote_t *promote;
static char path[128], uri[160];

/**
 * Create a control on uri with the fixture's components
 */
static sasync_control_t *create_control(char *on)
{
	return sasync_control_create(on, role, counters, promote, outbound, apply,
								 NULL, NULL, NULL, "node-a", 42, "testing");
}

static void setup(void)
{
	/* the server writes to clients that may have gone */
	signal(SIGPIPE, SIG_IGN);
	lib->processor->set_threads(lib->processor, 8);
	/* with enough threads running, this does not touch the log level */
	vici_init();

	ck_assert(!charon->ike_sa_manager);
	charon->ike_sa_manager = ike_sa_manager_create();
	charon->child_sa_manager = child_sa_manager_create();

	snprintf(path, sizeof(path), "/tmp/sasync-vici-test-%d.sock", getpid());
	snprintf(uri, sizeof(uri), "unix://%s", path);
	counters = sasync_counters_create();
	role = sasync_role_create(SASYNC_ROLE_STANDBY);
	keys = sasync_keystore_create();
	outbound = sasync_outbound_create(role, counters, keys);
	apply = sasync_apply_create(role, counters, outbound, keys);
	promote = sasync_promote_create(role, counters, apply, keys, NULL);
	control = create_control(uri);
	ck_assert(control);
}

/**
 * Destroy the control as charon does: with the processor's threads gone
 */
static void destroy_control()
{
	lib->processor->cancel(lib->processor);
	DESTROY_IF(control);
	control = NULL;
}

static void teardown(void)
{
	destroy_control();
	promote->destroy(promote);
	apply->destroy(apply);
	outbound->destroy(outbound);
	keys->destroy(keys);
	role->destroy(role);
	counters->destroy(counters);
	charon->ike_sa_manager->flush(charon->ike_sa_manager);
	charon->ike_sa_manager->destroy(charon->ike_sa_manager);
	charon->ike_sa_manager = NULL;
	charon->child_sa_manager->destroy(charon->child_sa_manager);
	charon->child_sa_manager = NULL;
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
 * Submit a command with a "reason", check its success, and free the reply.
 */
static void submit_check(vici_conn_t *conn, char *cmd, char *reason,
						 char *success, char *errmsg)
{
	vici_req_t *req;
	vici_res_t *res;

	req = vici_begin(cmd);
	if (reason)
	{
		vici_add_key_valuef(req, "reason", "%s", reason);
	}
	res = vici_submit(req, conn);
	ck_assert_msg(res, "%s: %s", cmd, strerror(errno));
	ck_assert_str_eq(vici_find_str(res, "", "success"), success);
	if (errmsg)
	{
		ck_assert_str_eq(vici_find_str(res, "", "errmsg"), errmsg);
	}
	vici_free_res(res);
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
	ck_assert_str_eq(vici_find_str(res, "", "ikesas.total"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "ikesas.half-open"), "0");

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
	submit_check(conn, "ha-reset-counters", NULL, "yes", NULL);

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

START_TEST(test_status)
{
	vici_conn_t *conn;
	vici_res_t *res;

	counters->set_queue_depth(counters, 3);
	counters->record_lag(counters, 11);
	conn = connect_vici();
	res = submit(conn, "ha-status");
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "node"), "node-a");
	ck_assert_str_eq(vici_find_str(res, "", "priority"), "42");
	ck_assert_str_eq(vici_find_str(res, "", "role"), "standby");
	ck_assert_str_eq(vici_find_str(res, "", "sync"), "disabled");
	ck_assert_str_eq(vici_find_str(res, "", "sync-disabled"), "testing");
	ck_assert_str_eq(vici_find_str(res, "", "ike-sas-active"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "ike-sas-passive"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "child-sas-active"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "child-sas-passive"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "forced-rekeys-pending"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "child-sas-waiting"), "0");
	ck_assert_str_eq(vici_find_str(res, "", "sync-lag-last-ms"), "11");
	ck_assert_str_eq(vici_find_str(res, "", "sync-lag-max-ms"), "11");
	ck_assert_str_eq(vici_find_str(res, "", "queue-depth"), "3");
	/* no link, no partners */
	ck_assert(!vici_find_str(res, NULL, "peers.1.address"));
	vici_free_res(res);
	vici_disconnect(conn);
}
END_TEST

START_TEST(test_role_commands)
{
	vici_conn_t *conn;
	vici_res_t *res;

	conn = connect_vici();
	submit_check(conn, "ha-demote", NULL, "no", "already standby");
	ck_assert_int_eq(role->get(role), SASYNC_ROLE_STANDBY);

	res = vici_submit(vici_begin("ha-promote"), conn);
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "success"), "yes");
	ck_assert_str_eq(vici_find_str(res, "", "activated"), "0");
	vici_free_res(res);
	ck_assert_int_eq(role->get(role), SASYNC_ROLE_PRIMARY);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_PROMOTIONS), 1);
	submit_check(conn, "ha-promote", "again", "no", "already primary");

	submit_check(conn, "ha-demote", "maintenance", "yes", NULL);
	ck_assert_int_eq(role->get(role), SASYNC_ROLE_STANDBY);
	ck_assert_int_eq(counters->get(counters, SASYNC_CTR_DEMOTIONS), 1);
	vici_disconnect(conn);
}
END_TEST

START_TEST(test_resync_disabled)
{
	vici_conn_t *conn;

	conn = connect_vici();
	submit_check(conn, "ha-resync", NULL, "no", "SA sync disabled: testing");
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
	/* charon's own commands are not on this socket */
	errno = 0;
	res = submit(conn, "list-sas");
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
	char last[128];
} received_t;

/**
 * A value of a message, "" if missing
 */
static char *value(vici_res_t *msg, char *key)
{
	return vici_find_str(msg, "", "%s", key);
}

/**
 * Remember an event: its name, node, role, error, peer and reason
 */
static void event_cb(void *user, char *name, vici_res_t *msg)
{
	received_t *rcv = user;

	snprintf(rcv->last, sizeof(rcv->last), "%s:%s:%s:%s:%s:%s", name,
			 value(msg, "node"), value(msg, "role"), value(msg, "error"),
			 value(msg, "peer"), value(msg, "reason"));
	__atomic_add_fetch(&rcv->count, 1, __ATOMIC_SEQ_CST);
}

static int received(received_t *rcv)
{
	return __atomic_load_n(&rcv->count, __ATOMIC_SEQ_CST);
}

START_TEST(test_events)
{
	received_t rcv = {}, other = {};
	vici_conn_t *conn, *conn2;
	host_t *peer;

	conn = connect_vici();
	conn2 = connect_vici();

	errno = 0;
	ck_assert(vici_register(conn, "no-such-event", event_cb, &rcv) != 0);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(vici_register(conn, "ha-role", event_cb, &rcv), 0);
	ck_assert_int_eq(vici_register(conn2, "ha-sync-error", event_cb,
								   &other), 0);

	/* a role change by command, seen by the client registered for it */
	submit_check(conn2, "ha-promote", "test", "yes", NULL);
	wait_for(received(&rcv) == 1);
	ck_assert_str_eq(rcv.last,
					 "ha-role:node-a:primary:::ha-promote command: test");
	/* and by the plugin itself, e.g. keepalived's notify */
	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "fault"));
	wait_for(received(&rcv) == 2);
	ck_assert_str_eq(rcv.last, "ha-role:node-a:standby:::fault");

	/* a sync error */
	peer = host_create_from_string("192.0.2.7", 0);
	apply->reject(apply, peer, "bad record");
	peer->destroy(peer);
	wait_for(received(&other) == 1);
	ck_assert_str_eq(other.last,
				"ha-sync-error:node-a::sync-rx-len-bad:192.0.2.7:bad record");

	/* commands still work while registered */
	vici_free_res(submit(conn, "stats"));

	/* unregistered: nothing more */
	ck_assert_int_eq(vici_register(conn, "ha-role", NULL, NULL), 0);
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "again"));
	apply->reject(apply, NULL, "another");
	wait_for(received(&other) == 2);
	ck_assert_str_eq(other.last,
					 "ha-sync-error:node-a::sync-rx-len-bad:unknown:another");
	vici_free_res(submit(conn, "stats"));
	ck_assert_int_eq(received(&rcv), 2);

	vici_disconnect(conn);
	vici_disconnect(conn2);
}
END_TEST

/**
 * Put an IKE_SA into the manager, return its unique id
 */
static u_int add_ike_sa()
{
	ike_sa_t *ike_sa;
	u_int id;

	ike_sa = charon->ike_sa_manager->create_new(charon->ike_sa_manager,
												IKEV2, TRUE);
	ck_assert(ike_sa);
	id = ike_sa->get_unique_id(ike_sa);
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	return id;
}

/**
 * Listed IKE_SAs
 */
typedef struct {
	int count;
	char ids[64];
} listed_t;

/**
 * Remember a ha-list-sa event: the unique ids and modes listed
 */
CALLBACK(list_cb, void,
	listed_t *listed, char *name, vici_res_t *msg)
{
	ck_assert_str_eq(name, "ha-list-sa");
	snprintf(listed->ids + strlen(listed->ids),
			 sizeof(listed->ids) - strlen(listed->ids), " %s/%s/%s",
			 vici_find_str(msg, "?", "(unnamed).uniqueid"),
			 vici_find_str(msg, "?", "(unnamed).mode"),
			 vici_find_str(msg, "?", "(unnamed).state"));
	listed->count++;
}

START_TEST(test_list_sas)
{
	listed_t listed = {}, other = {};
	vici_conn_t *conn, *conn2;
	vici_req_t *req;
	vici_res_t *res;
	char expected[64];
	u_int a, b;

	a = add_ike_sa();
	b = add_ike_sa();
	conn = connect_vici();
	conn2 = connect_vici();
	ck_assert_int_eq(vici_register(conn, "ha-list-sa", list_cb, &listed), 0);
	ck_assert_int_eq(vici_register(conn2, "ha-list-sa", list_cb, &other), 0);

	/* the events come before the reply, to the requesting client only */
	res = submit(conn, "ha-list-sas");
	ck_assert(res);
	ck_assert_str_eq(vici_find_str(res, "", "success"), "yes");
	ck_assert_str_eq(vici_find_str(res, "", "ike-sas"), "2");
	vici_free_res(res);
	ck_assert_int_eq(listed.count, 2);
	snprintf(expected, sizeof(expected), " %u/active/CREATED", a);
	ck_assert_msg(strstr(listed.ids, expected), "%s", listed.ids);
	snprintf(expected, sizeof(expected), " %u/active/CREATED", b);
	ck_assert_msg(strstr(listed.ids, expected), "%s", listed.ids);

	/* by unique id */
	listed = (listed_t){};
	req = vici_begin("ha-list-sas");
	vici_add_key_valuef(req, "ike-id", "%u", b);
	res = vici_submit(req, conn);
	ck_assert_str_eq(vici_find_str(res, "", "ike-sas"), "1");
	vici_free_res(res);
	snprintf(expected, sizeof(expected), " %u/active/CREATED", b);
	ck_assert_str_eq(listed.ids, expected);

	/* by name */
	listed = (listed_t){};
	req = vici_begin("ha-list-sas");
	vici_add_key_valuef(req, "ike", "no-such-conn");
	res = vici_submit(req, conn);
	ck_assert_str_eq(vici_find_str(res, "", "ike-sas"), "0");
	vici_free_res(res);
	ck_assert_int_eq(listed.count, 0);

	req = vici_begin("ha-list-sas");
	vici_add_key_valuef(req, "ike-id", "-1");
	res = vici_submit(req, conn);
	ck_assert_str_eq(vici_find_str(res, "", "success"), "no");
	ck_assert_str_eq(vici_find_str(res, "", "errmsg"), "invalid ike-id");
	vici_free_res(res);

	/* conn2 got none of them */
	vici_free_res(submit(conn2, "stats"));
	ck_assert_int_eq(other.count, 0);
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
 * Read a packet (its type, then the rest), chunk_empty on EOF.
 */
static chunk_t read_packet(int fd)
{
	uint32_t len;
	chunk_t data;

	if (!read_raw(fd, &len, sizeof(len)))
	{
		return chunk_empty;
	}
	len = ntohl(len);
	ck_assert(len > 0 && len <= 512 * 1024);
	data = chunk_alloc(len);
	ck_assert(read_raw(fd, data.ptr, data.len));
	return data;
}

/**
 * Read a packet and return its type, -1 on EOF.
 */
static int read_packet_type(int fd)
{
	chunk_t data;
	int type;

	data = read_packet(fd);
	if (!data.len)
	{
		return -1;
	}
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
 * A named packet without a message, allocated
 */
static chunk_t packet(int type, char *name)
{
	chunk_t data;

	data = chunk_alloc(4 + 2 + strlen(name));
	htoun32(data.ptr, data.len - 4);
	data.ptr[4] = type;
	data.ptr[5] = strlen(name);
	memcpy(data.ptr + 6, name, strlen(name));
	return data;
}

/**
 * Check a connection is still served: a request gets its response
 */
static void assert_serving_fd(int fd)
{
	chunk_t request = packet(CMD_REQUEST, "ha-status");

	write_raw(fd, request);
	ck_assert_int_eq(read_packet_type(fd), CMD_RESPONSE);
	chunk_free(&request);
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
 * Packets a client gets disconnected for: lengths beyond the server's limit
 * of 512 KiB, a close within a packet
 */
static struct {
	char *what;
	chunk_t data;
} fatal[] = {
	{ "oversize length", chunk_from_chars(0x00, 0x08, 0x00, 0x01) },
	{ "huge length", chunk_from_chars(0xff, 0xff, 0xff, 0xff, 0, 5) },
	{ "http", chunk_from_chars('G', 'E', 'T', ' ', '/', '\r', '\n') },
	{ "truncated then closed", chunk_from_chars(0, 0, 0, 20, 0, 5, 's') },
};

START_TEST(test_fatal)
{
	int fd;

	fd = connect_raw();
	write_raw(fd, fatal[_i].data);
	if (_i == countof(fatal) - 1)
	{	/* just going away mid-packet */
		shutdown(fd, SHUT_WR);
	}
	assert_closed(fd);
	close(fd);
	assert_serving();
}
END_TEST

/**
 * Packets the server ignores (it logs them), the connection stays
 */
static struct {
	char *what;
	chunk_t data;
} ignored[] = {
	{ "zero length", chunk_from_chars(0, 0, 0, 0) },
	{ "unknown packet type", chunk_from_chars(0, 0, 0, 1, 9) },
	{ "response from client", chunk_from_chars(0, 0, 0, 1, 1) },
	{ "confirm from client", chunk_from_chars(0, 0, 0, 1, 5) },
	{ "event from client", chunk_from_chars(0, 0, 0, 3, 7, 1, 'e') },
	{ "request without name", chunk_from_chars(0, 0, 0, 1, 0) },
	{ "request name beyond", chunk_from_chars(0, 0, 0, 3, 0, 9, 's') },
	{ "register name beyond", chunk_from_chars(0, 0, 0, 3, 3, 9, 'e') },
};

START_TEST(test_ignored)
{
	int fd;

	fd = connect_raw();
	write_raw(fd, ignored[_i].data);
	assert_serving_fd(fd);
	close(fd);
	assert_serving();
}
END_TEST

/**
 * Requests with a malformed message (the payload, the length is added): each
 * command answers, reading what it can (nothing past the error)
 */
static struct {
	char *what;
	chunk_t data;
} bad_message[] = {
	{ "unclosed section", chunk_from_chars(0, 9,
			'h', 'a', '-', 's', 't', 'a', 't', 'u', 's', 1, 1, 's') },
	{ "value beyond", chunk_from_chars(0, 9,
			'h', 'a', '-', 's', 't', 'a', 't', 'u', 's', 3, 1, 'k', 0, 9) },
	{ "bad element", chunk_from_chars(0, 9,
			'h', 'a', '-', 's', 't', 'a', 't', 'u', 's', 0x42) },
	{ "item outside list", chunk_from_chars(0, 9,
			'h', 'a', '-', 's', 't', 'a', 't', 'u', 's', 5, 0, 1, 'x') },
	{ "list-sas, ike-id beyond", chunk_from_chars(0, 11,
			'h', 'a', '-', 'l', 'i', 's', 't', '-', 's', 'a', 's',
			3, 6, 'i', 'k', 'e', '-', 'i', 'd', 0, 9, '1') },
	{ "promote, reason beyond", chunk_from_chars(0, 10,
			'h', 'a', '-', 'p', 'r', 'o', 'm', 'o', 't', 'e',
			3, 6, 'r', 'e', 'a', 's', 'o', 'n', 0, 200, 'x') },
};

START_TEST(test_bad_message)
{
	uint32_t len = htonl(bad_message[_i].data.len);
	int fd;

	fd = connect_raw();
	write_raw(fd, chunk_from_thing(len));
	write_raw(fd, bad_message[_i].data);
	ck_assert_int_eq(read_packet_type(fd), CMD_RESPONSE);
	assert_serving_fd(fd);
	close(fd);
}
END_TEST

static bool contains(chunk_t haystack, chunk_t needle)
{
	size_t i;

	for (i = 0; i + needle.len <= haystack.len; i++)
	{
		if (memeq(haystack.ptr + i, needle.ptr, needle.len))
		{
			return TRUE;
		}
	}
	return FALSE;
}

/**
 * A request whose message starts with an end marker (VICI_END, 7) ends
 * there: strongSwan's vici_message_t would read its elements with an
 * uninitialised type and name (found by tests/fuzz). The plugin reads
 * nothing of it, so "ha-list-sas" lists every IKE_SA, not none of the
 * "ike" that follows the marker.
 */
START_TEST(test_end_first)
{
	chunk_t message = chunk_from_chars(7, 3, 3, 'i', 'k', 'e', 0, 4,
									   'n', 'o', 'n', 'e');
	chunk_t name, request, response;
	int fd;

	add_ike_sa();
	/* chunk_cat() evaluates its arguments twice */
	name = packet(CMD_REQUEST, "ha-list-sas");
	request = chunk_cat("mc", name, message);
	htoun32(request.ptr, request.len - 4);
	fd = connect_raw();
	write_raw(fd, request);
	response = read_packet(fd);
	ck_assert(response.len && response.ptr[0] == CMD_RESPONSE);
	ck_assert_msg(contains(response, chunk_create("\x03\x07ike-sas\x00\x01"
												  "1", 12)), "%B", &response);
	chunk_free(&response);
	chunk_free(&request);
	assert_serving_fd(fd);
	close(fd);
}
END_TEST

START_TEST(test_random_garbage)
{
	u_char buf[512];
	int fd, i, j, type;

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
		if (i % 2)
		{	/* a printable name */
			for (j = 0; j < buf[5]; j++)
			{
				buf[6 + j] = 'a' + buf[6 + j] % 26;
			}
		}
		else
		{	/* one that isn't: the server ignores the packet */
			buf[5] = max(buf[5], 1);
			buf[6] = 0x01;
		}
		fd = connect_raw();
		write_raw(fd, chunk_create(buf, sizeof(buf)));
		/* answered if a request or registration, then still served */
		if (i % 2 && buf[4] == CMD_REQUEST)
		{
			type = read_packet_type(fd);
			ck_assert(type == CMD_RESPONSE || type == CMD_UNKNOWN);
		}
		else if (i % 2 && (buf[4] == EVENT_REGISTER ||
						   buf[4] == EVENT_UNREGISTER))
		{
			ck_assert_int_eq(read_packet_type(fd), EVENT_UNKNOWN);
		}
		assert_serving_fd(fd);
		close(fd);
	}
	assert_serving();
}
END_TEST

START_TEST(test_pipelined)
{
	chunk_t request, all = chunk_empty;
	int fd, i;

	request = packet(CMD_REQUEST, "stats");
	for (i = 0; i < 50; i++)
	{
		all = chunk_cat("mc", all, request);
	}
	fd = connect_raw();
	write_raw(fd, all);
	for (i = 0; i < 50; i++)
	{
		ck_assert_int_eq(read_packet_type(fd), CMD_RESPONSE);
	}
	close(fd);
	chunk_free(&request);
	chunk_free(&all);
	assert_serving();
}
END_TEST

START_TEST(test_raw_events)
{
	chunk_t reg, unreg;
	int fd;

	reg = packet(EVENT_REGISTER, "ha-role");
	unreg = packet(EVENT_UNREGISTER, "ha-role");
	fd = connect_raw();
	write_raw(fd, reg);
	ck_assert_int_eq(read_packet_type(fd), EVENT_CONFIRM);
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "raw"));
	ck_assert_int_eq(read_packet_type(fd), EVENT);
	write_raw(fd, unreg);
	ck_assert_int_eq(read_packet_type(fd), EVENT_CONFIRM);
	/* not registered anymore */
	write_raw(fd, unreg);
	ck_assert_int_eq(read_packet_type(fd), EVENT_UNKNOWN);
	assert_serving_fd(fd);
	close(fd);
	chunk_free(&reg);
	chunk_free(&unreg);
}
END_TEST

START_TEST(test_destroy_with_clients)
{
	received_t rcv = {};
	vici_conn_t *conn;
	int fd;

	conn = connect_vici();
	ck_assert_int_eq(vici_register(conn, "ha-role", event_cb, &rcv), 0);
	fd = connect_raw();
	/* make sure the connection got accepted: destroying the service while
	 * it accepts a connection may deadlock in 5.9.8 */
	write_raw(fd, chunk_from_chars(0, 0, 0, 3, 3, 1, 'x'));
	ck_assert_int_eq(read_packet_type(fd), EVENT_UNKNOWN);
	/* half a packet pending */
	write_raw(fd, chunk_from_chars(0, 0, 0, 9, 0));
	destroy_control();
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
	ck_assert(!create_control("unix:///nonexistent-dir/x.sock"));
	/* no remote promotions */
	ck_assert(!create_control("tcp://127.0.0.1:4502"));
}
END_TEST

START_TEST(test_socket_group)
{
	sasync_control_t *other;
	struct group *grp;
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
	other = create_control(other_uri);
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.socket_group",
						   NULL, lib->ns);
	ck_assert(other);
	ck_assert_int_eq(stat(other_uri + strlen("unix://"), &st), 0);
	ck_assert_int_eq(st.st_gid, grp->gr_gid);
	ck_assert_int_eq(st.st_mode & 0777, 0770);
	lib->processor->cancel(lib->processor);
	other->destroy(other);
	ck_assert(access(other_uri + strlen("unix://"), F_OK) != 0);
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
	ck_assert_msg(strstr(out, "IKE_SAs: 0 total, 0 half-open"), "%s", out);
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
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_role_commands);
	tcase_add_test(tc, test_resync_disabled);
	tcase_add_test(tc, test_unknown_command);
	tcase_add_test(tc, test_swanctl);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_list_sas);
	tcase_add_test(tc, test_raw_events);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_fatal, 0, countof(fatal));
	tcase_add_loop_test(tc, test_ignored, 0, countof(ignored));
	tcase_add_loop_test(tc, test_bad_message, 0, countof(bad_message));
	tcase_add_test(tc, test_end_first);
	tcase_add_test(tc, test_random_garbage);
	tcase_add_test(tc, test_pipelined);
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
