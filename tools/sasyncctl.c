/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * sasyncctl: status and control of the sasync plugin over its vici socket.
 */

#include <libvici.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_URI "unix:///var/run/charon-sasync.vici"

/** exit codes, see usage() */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
	EXIT_UNKNOWN = 4,
};

/** how often monitor checks that the daemon is still there (s) */
#define MONITOR_PROBE 2

/** counters of the FGCP-style line, in its order */
static char *fgcp[] = {
	"resync", "vike-sync", "conn-sync", "sync-tx", "sync-rx",
	"sync-rx-len-bad",
};

/** command line */
typedef struct {
	char *uri;
	char *cmd;
	int raw;
	char *ike;
	char *ike_id;
	char *reason;
} options_t;

static void usage(FILE *out)
{
	fprintf(out,
"usage: sasyncctl [--uri URI] [--raw] COMMAND [OPTIONS]\n"
"\n"
"commands:\n"
"  status             node, priority, role, SA counts, and per peer the\n"
"                     link state, last heartbeat and lag, and its role,\n"
"                     priority and epoch from its heartbeats\n"
"  stats              counters: the FGCP-style line, then the others\n"
"  list [--ike NAME] [--ike-id ID]\n"
"                     IKE and CHILD SAs with SPIs, passive or active, and\n"
"                     whether a forced rekey is pending\n"
"  promote [--reason TEXT]\n"
"                     make this node the active one\n"
"  demote [--reason TEXT]\n"
"                     make this node a standby\n"
"  resync             full resync: the primary sends every SA again, a\n"
"                     standby asks the primary for it\n"
"  reset              reset the counters\n"
"  monitor            print ha-role, ha-sync-error, ha-node and ha-resync\n"
"                     events as they come, until the daemon goes away\n"
"\n"
"options:\n"
"  --uri URI          the plugin's vici socket (default %s)\n"
"  --raw              machine-readable output: the vici messages, one per\n"
"                     line, as swanctl --raw prints them\n"
"  --help             this text\n"
"\n"
"exit codes:\n"
"  0  success\n"
"  1  the command failed (e.g. promote on the primary, resync with sync\n"
"     disabled); the reason is on stderr\n"
"  2  usage error\n"
"  3  cannot connect to the socket, or the connection was lost\n"
"  4  the daemon does not know the command (not the sasync socket?)\n",
		DEFAULT_URI);
}

/**
 * Exit code for a failed vici_submit()/vici_register()
 */
static int submit_error(char *what)
{
	if (errno == ENOENT)
	{
		fprintf(stderr, "sasyncctl: %s: unknown to the daemon (is this the "
				"sasync socket?)\n", what);
		return EXIT_UNKNOWN;
	}
	fprintf(stderr, "sasyncctl: %s failed: %s\n", what, strerror(errno));
	return EXIT_CONNECT;
}

/**
 * Check the success key of a reply, if it has one
 */
static int check_success(vici_res_t *res, char *cmd)
{
	char *success = vici_find_str(res, NULL, "success");
	char *errmsg = vici_find_str(res, NULL, "errmsg");

	if (success && strcmp(success, "yes") != 0)
	{
		fprintf(stderr, "sasyncctl: %s failed: %s\n", cmd,
				errmsg ? errmsg : "unknown error");
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/**
 * Submit a request; *ret gets the exit code
 */
static vici_res_t *submit(vici_conn_t *conn, vici_req_t *req, char *cmd,
						  int *ret)
{
	vici_res_t *res;

	res = vici_submit(req, conn);
	if (!res)
	{
		*ret = submit_error(cmd);
		return NULL;
	}
	*ret = check_success(res, cmd);
	return res;
}

/**
 * "ha.sync.rx.len.bad" for "sync-rx-len-bad"
 */
static void print_counter(char *name, char *value, int first)
{
	char *c;

	printf("%sha.", first ? "" : " ");
	for (c = name; *c; c++)
	{
		putchar(*c == '-' ? '.' : *c);
	}
	printf(": %s", value);
}

/**
 * Whether a counter is part of the FGCP line
 */
static int is_fgcp(char *name)
{
	int i;

	for (i = 0; i < sizeof(fgcp) / sizeof(fgcp[0]); i++)
	{
		if (strcmp(fgcp[i], name) == 0)
		{
			return 1;
		}
	}
	return 0;
}

static int cmd_stats(vici_conn_t *conn, options_t *o)
{
	vici_res_t *res;
	char *name;
	int ret, i, depth = 0, in_ha = 0, first = 1;

	res = submit(conn, vici_begin("stats"), "stats", &ret);
	if (!res)
	{
		return ret;
	}
	if (o->raw)
	{
		vici_dump(res, "stats", 0, stdout);
		vici_free_res(res);
		return ret;
	}
	if (!vici_find_str(res, NULL, "ha.sync-tx"))
	{
		fprintf(stderr, "sasyncctl: the stats have no ha section (is this "
				"the sasync socket?)\n");
		vici_free_res(res);
		return EXIT_UNKNOWN;
	}
	for (i = 0; i < sizeof(fgcp) / sizeof(fgcp[0]); i++)
	{
		print_counter(fgcp[i], vici_find_str(res, "0", "ha.%s", fgcp[i]),
					  i == 0);
	}
	printf("\n");
	/* the other counters and gauges of the ha section, in their order */
	while (1)
	{
		switch (vici_parse(res))
		{
			case VICI_PARSE_BEGIN_SECTION:
				depth++;
				in_ha = depth == 1 && strcmp(vici_parse_name(res), "ha") == 0;
				continue;
			case VICI_PARSE_END_SECTION:
				depth--;
				in_ha = 0;
				continue;
			case VICI_PARSE_KEY_VALUE:
				name = vici_parse_name(res);
				if (in_ha && name && !is_fgcp(name))
				{
					print_counter(name, vici_parse_value_str(res) ?: "?",
								  first);
					first = 0;
				}
				continue;
			case VICI_PARSE_BEGIN_LIST:
			case VICI_PARSE_LIST_ITEM:
			case VICI_PARSE_END_LIST:
				continue;
			case VICI_PARSE_END:
			case VICI_PARSE_ERROR:
			default:
				break;
		}
		break;
	}
	if (!first)
	{
		printf("\n");
	}
	vici_free_res(res);
	return ret;
}

static int cmd_status(vici_conn_t *conn, options_t *o)
{
	vici_res_t *res;
	char *hb;
	int ret, i;

	res = submit(conn, vici_begin("ha-status"), "ha-status", &ret);
	if (!res)
	{
		return ret;
	}
	if (o->raw || ret != EXIT_OK)
	{
		vici_dump(res, "ha-status", 0, stdout);
		vici_free_res(res);
		return ret;
	}
	printf("node %s, priority %s, role %s (epoch %s), sync %s%s%s\n",
		   vici_find_str(res, "?", "node"),
		   vici_find_str(res, "?", "priority"),
		   vici_find_str(res, "?", "role"),
		   vici_find_str(res, "-", "epoch"),
		   vici_find_str(res, "?", "sync"),
		   vici_find_str(res, NULL, "sync-disabled") ? ": " : "",
		   vici_find_str(res, "", "sync-disabled"));
	printf("IKE SAs: %s active, %s passive; CHILD SAs: %s active, %s "
		   "passive\n",
		   vici_find_str(res, "?", "ike-sas-active"),
		   vici_find_str(res, "?", "ike-sas-passive"),
		   vici_find_str(res, "?", "child-sas-active"),
		   vici_find_str(res, "?", "child-sas-passive"));
	printf("forced rekeys pending: %s, CHILD SAs waiting for their IKE SA: "
		   "%s\n",
		   vici_find_str(res, "?", "forced-rekeys-pending"),
		   vici_find_str(res, "?", "child-sas-waiting"));
	printf("sync lag: last %s ms, max %s ms; queue depth %s\n",
		   vici_find_str(res, "?", "sync-lag-last-ms"),
		   vici_find_str(res, "?", "sync-lag-max-ms"),
		   vici_find_str(res, "?", "queue-depth"));
	if (vici_find_str(res, NULL, "resync-total"))
	{
		printf("last bulk resync sent: %s of %s IKE SAs\n",
			   vici_find_str(res, "?", "resync-sent"),
			   vici_find_str(res, "?", "resync-total"));
	}
	printf("last bulk resync received: %s of %s IKE SAs%s\n",
		   vici_find_str(res, "?", "resync-received"),
		   vici_find_str(res, "?", "resync-expected"),
		   strcmp(vici_find_str(res, "", "resync-receiving"), "yes") == 0 ?
				" (receiving)" : "");
	for (i = 1; vici_find_str(res, NULL, "peers.%d.address", i); i++)
	{
		printf("peer %s: out %s, in %s, %s queued (lag %s ms), ",
			   vici_find_str(res, "?", "peers.%d.address", i),
			   vici_find_str(res, "?", "peers.%d.out", i),
			   vici_find_str(res, "?", "peers.%d.in", i),
			   vici_find_str(res, "?", "peers.%d.queued", i),
			   vici_find_str(res, "?", "peers.%d.queue-lag-ms", i));
		hb = vici_find_str(res, NULL, "peers.%d.last-heartbeat-ms", i);
		if (hb)
		{
			printf("last heartbeat %s ms ago (delay %s ms)\n", hb,
				   vici_find_str(res, "?", "peers.%d.heartbeat-lag-ms", i));
		}
		else
		{
			printf("no heartbeat yet\n");
		}
		if (vici_find_str(res, NULL, "peers.%d.name", i))
		{
			printf("  node %s: role %s, priority %s, epoch %s, %s\n",
				   vici_find_str(res, "?", "peers.%d.name", i),
				   vici_find_str(res, "?", "peers.%d.role", i),
				   vici_find_str(res, "?", "peers.%d.priority", i),
				   vici_find_str(res, "?", "peers.%d.epoch", i),
				   !strcmp(vici_find_str(res, "", "peers.%d.alive", i), "yes") ?
						"alive" : "dead");
		}
	}
	vici_free_res(res);
	return ret;
}

/** state of printing an ha-list-sa event */
typedef struct {
	int raw;
	int count;
} list_t;

#define MAX_CHILDREN 64

/**
 * Print one IKE SA of an ha-list-sa event, swanctl style
 */
static void print_ike(vici_res_t *res)
{
	char ike[256] = "", *children[MAX_CHILDREN], *name, *c;
	int depth = 0, in_children = 0, count = 0, i, done = 0;

	while (!done)
	{
		switch (vici_parse(res))
		{
			case VICI_PARSE_BEGIN_SECTION:
				depth++;
				name = vici_parse_name(res);
				if (depth == 1 && name)
				{
					snprintf(ike, sizeof(ike), "%s", name);
				}
				else if (depth == 2 && name && !strcmp(name, "child-sas"))
				{
					in_children = 1;
				}
				else if (depth == 3 && in_children && name &&
						 count < MAX_CHILDREN)
				{
					children[count++] = strdup(name);
				}
				break;
			case VICI_PARSE_END_SECTION:
				if (--depth == 1)
				{
					in_children = 0;
				}
				break;
			case VICI_PARSE_END:
			case VICI_PARSE_ERROR:
				done = 1;
				break;
			default:
				break;
		}
	}
	printf("%s: #%s, IKEv%s, %s, %s\n", ike,
		   vici_find_str(res, "?", "%s.uniqueid", ike),
		   vici_find_str(res, "?", "%s.version", ike),
		   vici_find_str(res, "?", "%s.state", ike),
		   vici_find_str(res, "?", "%s.mode", ike));
	printf("  local  '%s' @ %s[%s]\n",
		   vici_find_str(res, "?", "%s.local-id", ike),
		   vici_find_str(res, "?", "%s.local-host", ike),
		   vici_find_str(res, "?", "%s.local-port", ike));
	printf("  remote '%s' @ %s[%s]\n",
		   vici_find_str(res, "?", "%s.remote-id", ike),
		   vici_find_str(res, "?", "%s.remote-host", ike),
		   vici_find_str(res, "?", "%s.remote-port", ike));
	c = vici_find_str(res, "no", "%s.initiator", ike);
	printf("  SPIs: %s_i%s %s_r%s\n",
		   vici_find_str(res, "?", "%s.initiator-spi", ike),
		   strcmp(c, "yes") == 0 ? "*" : "",
		   vici_find_str(res, "?", "%s.responder-spi", ike),
		   strcmp(c, "yes") == 0 ? "" : "*");
	for (i = 0; i < count; i++)
	{
		c = children[i];
		printf("  %s: #%s, reqid %s, %s, %s, %s, SPIs %s_i %s_o%s\n",
			   vici_find_str(res, "?", "%s.child-sas.%s.name", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.uniqueid", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.reqid", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.state", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.protocol", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.mode", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.spi-in", ike, c),
			   vici_find_str(res, "?", "%s.child-sas.%s.spi-out", ike, c),
			   strcmp(vici_find_str(res, "no", "%s.child-sas.%s.rekey-pending",
									ike, c), "yes") == 0 ?
								", forced rekey pending" : "");
		free(c);
	}
}

static void on_list_sa(void *user, char *name, vici_res_t *res)
{
	list_t *list = user;

	list->count++;
	if (list->raw)
	{
		vici_dump(res, "ha-list-sa event", 0, stdout);
	}
	else
	{
		print_ike(res);
	}
}

static int cmd_list(vici_conn_t *conn, options_t *o)
{
	list_t list = { .raw = o->raw };
	vici_req_t *req;
	vici_res_t *res;
	int ret;

	if (vici_register(conn, "ha-list-sa", on_list_sa, &list) != 0)
	{
		return submit_error("registering for ha-list-sa");
	}
	req = vici_begin("ha-list-sas");
	if (o->ike)
	{
		vici_add_key_valuef(req, "ike", "%s", o->ike);
	}
	if (o->ike_id)
	{
		vici_add_key_valuef(req, "ike-id", "%s", o->ike_id);
	}
	res = submit(conn, req, "ha-list-sas", &ret);
	if (!res)
	{
		return ret;
	}
	if (o->raw)
	{
		vici_dump(res, "ha-list-sas reply", 0, stdout);
	}
	else if (ret == EXIT_OK && !list.count)
	{
		printf("no IKE SAs\n");
	}
	vici_free_res(res);
	return ret;
}

/**
 * promote, demote, resync, reset
 */
static int cmd_simple(vici_conn_t *conn, options_t *o, char *cmd)
{
	vici_req_t *req;
	vici_res_t *res;
	int ret;

	req = vici_begin(cmd);
	if (o->reason)
	{
		vici_add_key_valuef(req, "reason", "%s", o->reason);
	}
	res = submit(conn, req, cmd, &ret);
	if (!res)
	{
		return ret;
	}
	if (o->raw)
	{
		vici_dump(res, cmd, 0, stdout);
	}
	else if (ret == EXIT_OK)
	{
		if (strcmp(cmd, "ha-promote") == 0)
		{
			printf("promoted, %s IKE SAs activated\n",
				   vici_find_str(res, "?", "activated"));
		}
		else if (strcmp(cmd, "ha-demote") == 0)
		{
			printf("demoted, %s IKE SAs made passive\n",
				   vici_find_str(res, "?", "passive"));
		}
		else if (strcmp(cmd, "ha-resync") == 0)
		{
			printf("resync %s\n", vici_find_str(res, "started", "resync"));
		}
		else
		{
			printf("counters reset\n");
		}
	}
	vici_free_res(res);
	return ret;
}

/**
 * Print an event: raw as swanctl does, else a timestamped line with the
 * event's keys
 */
static void on_event(void *user, char *name, vici_res_t *res)
{
	char stamp[32], *key;
	struct tm tm;
	time_t now;
	int depth = 0, done = 0;

	if (*(int*)user)
	{
		snprintf(stamp, sizeof(stamp), "%s event", name);
		vici_dump(res, stamp, 0, stdout);
		fflush(stdout);
		return;
	}
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	printf("%s %s:", stamp, name);
	while (!done)
	{
		switch (vici_parse(res))
		{
			case VICI_PARSE_BEGIN_SECTION:
				depth++;
				break;
			case VICI_PARSE_END_SECTION:
				depth--;
				break;
			case VICI_PARSE_KEY_VALUE:
				key = vici_parse_name(res);
				if (!depth && key)
				{
					printf(" %s='%s'", key, vici_parse_value_str(res) ?: "");
				}
				break;
			case VICI_PARSE_END:
			case VICI_PARSE_ERROR:
				done = 1;
				break;
			default:
				break;
		}
	}
	printf("\n");
	fflush(stdout);
}

static int cmd_monitor(vici_conn_t *conn, options_t *o)
{
	char *events[] = { "ha-role", "ha-sync-error", "ha-node", "ha-resync" };
	vici_res_t *res;
	int i;

	for (i = 0; i < sizeof(events) / sizeof(events[0]); i++)
	{
		if (vici_register(conn, events[i], on_event, &o->raw) != 0)
		{
			return submit_error(events[i]);
		}
	}
	/* on stderr, so --raw output holds events only */
	fprintf(stderr, "monitoring ha-role, ha-sync-error, ha-node and ha-resync "
			"events\n");
	/* libvici does not report a lost connection to event listeners */
	while (1)
	{
		sleep(MONITOR_PROBE);
		res = vici_submit(vici_begin("stats"), conn);
		if (!res)
		{
			fprintf(stderr, "sasyncctl: connection to the daemon lost\n");
			return EXIT_CONNECT;
		}
		vici_free_res(res);
	}
	return EXIT_OK;
}

static int run(vici_conn_t *conn, options_t *o)
{
	char *cmd = o->cmd;

	if (strcmp(cmd, "monitor") == 0)
	{
		return cmd_monitor(conn, o);
	}
	if (strcmp(cmd, "stats") == 0)
	{
		return cmd_stats(conn, o);
	}
	if (strcmp(cmd, "status") == 0)
	{
		return cmd_status(conn, o);
	}
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "list-sas") == 0)
	{
		return cmd_list(conn, o);
	}
	if (strcmp(cmd, "reset") == 0 || strcmp(cmd, "reset-counters") == 0)
	{
		return cmd_simple(conn, o, "ha-reset-counters");
	}
	if (strcmp(cmd, "promote") == 0)
	{
		return cmd_simple(conn, o, "ha-promote");
	}
	if (strcmp(cmd, "demote") == 0)
	{
		return cmd_simple(conn, o, "ha-demote");
	}
	return cmd_simple(conn, o, "ha-resync");
}

/**
 * Check that the options given fit the command
 */
static int check_options(options_t *o)
{
	char *cmds[] = { "status", "stats", "list", "list-sas", "promote",
		"demote", "resync", "reset", "reset-counters", "monitor" };
	int i, known = 0, list, role;
	char *end;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
	{
		known |= strcmp(o->cmd, cmds[i]) == 0;
	}
	if (!known)
	{
		fprintf(stderr, "sasyncctl: unknown command '%s'\n", o->cmd);
		return 0;
	}
	list = strcmp(o->cmd, "list") == 0 || strcmp(o->cmd, "list-sas") == 0;
	role = strcmp(o->cmd, "promote") == 0 || strcmp(o->cmd, "demote") == 0;
	if ((o->ike || o->ike_id) && !list)
	{
		fprintf(stderr, "sasyncctl: --ike and --ike-id are for list\n");
		return 0;
	}
	if (o->ike_id && (strtoul(o->ike_id, &end, 10) == 0 || *end))
	{
		fprintf(stderr, "sasyncctl: invalid --ike-id '%s'\n", o->ike_id);
		return 0;
	}
	if (o->reason && !role)
	{
		fprintf(stderr, "sasyncctl: --reason is for promote and demote\n");
		return 0;
	}
	return 1;
}

int main(int argc, char *argv[])
{
	options_t o = { .uri = DEFAULT_URI };
	struct option opts[] = {
		{ "uri", required_argument, NULL, 'u' },
		{ "raw", no_argument, NULL, 'r' },
		{ "ike", required_argument, NULL, 'i' },
		{ "ike-id", required_argument, NULL, 'I' },
		{ "reason", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	vici_conn_t *conn;
	int c, ret;

	while ((c = getopt_long(argc, argv, "u:rh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'u':
				o.uri = optarg;
				break;
			case 'r':
				o.raw = 1;
				break;
			case 'i':
				o.ike = optarg;
				break;
			case 'I':
				o.ike_id = optarg;
				break;
			case 'R':
				o.reason = optarg;
				break;
			case 'h':
				usage(stdout);
				return EXIT_OK;
			default:
				usage(stderr);
				return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	o.cmd = argv[optind];
	if (!check_options(&o))
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	/* a daemon going away must not kill us with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	vici_init();
	conn = vici_connect(o.uri);
	if (!conn)
	{
		fprintf(stderr, "sasyncctl: connecting to %s failed: %s\n", o.uri,
				strerror(errno));
		vici_deinit();
		return EXIT_CONNECT;
	}
	ret = run(conn, &o);
	vici_disconnect(conn);
	vici_deinit();
	return ret;
}
