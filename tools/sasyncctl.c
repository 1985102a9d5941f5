/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * sasyncctl: status and control of the sasync plugin over its vici socket.
 */

#include <libvici.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_URI "unix:///var/run/charon-sasync.vici"

/** exit codes: 0 ok, 1 command failed, 2 usage, 3 cannot connect */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
};

/** counters of the FGCP-style line, in its order */
static char *fgcp[][2] = {
	{ "resync", "ha.resync" },
	{ "vike-sync", "ha.vike.sync" },
	{ "conn-sync", "ha.conn.sync" },
	{ "sync-tx", "ha.sync.tx" },
	{ "sync-rx", "ha.sync.rx" },
	{ "sync-rx-len-bad", "ha.sync.rx.len.bad" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sasyncctl [--uri URI] [--raw] COMMAND\n"
		"commands:\n"
		"  status    role, peers and SA counts\n"
		"  stats     ha counters (FGCP style line plus the others)\n"
		"  promote   make this node the active one\n"
		"  demote    make this node a standby\n"
		"  monitor   print ha-role and ha-sync-error events\n");
}

static vici_res_t *call(vici_conn_t *conn, char *cmd)
{
	vici_res_t *res = vici_submit(vici_begin(cmd), conn);

	if (!res)
	{
		fprintf(stderr, "sasyncctl: %s failed: %s\n", cmd, strerror(errno));
	}
	return res;
}

/**
 * Print a reply; for commands with a success key, its value is the result
 */
static int print_reply(vici_res_t *res, char *cmd, int raw)
{
	char *success = vici_find_str(res, NULL, "success");
	char *errmsg = vici_find_str(res, NULL, "errmsg");
	int ret = EXIT_OK;

	if (success && strcmp(success, "yes") != 0)
	{
		fprintf(stderr, "sasyncctl: %s failed: %s\n", cmd,
				errmsg ? errmsg : "unknown error");
		ret = EXIT_FAILED;
	}
	vici_dump(res, cmd, !raw, stdout);
	return ret;
}

static int print_stats(vici_res_t *res, int raw)
{
	int i;

	if (raw)
	{
		return vici_dump(res, "stats", 0, stdout) == 0 ? EXIT_OK : EXIT_FAILED;
	}
	for (i = 0; i < sizeof(fgcp) / sizeof(fgcp[0]); i++)
	{
		printf("%s%s: %s", i ? " " : "", fgcp[i][1],
			   vici_find_str(res, "0", "ha.%s", fgcp[i][0]));
	}
	printf("\n");
	return vici_dump(res, "stats", 1, stdout) == 0 ? EXIT_OK : EXIT_FAILED;
}

static void on_event(void *user, char *name, vici_res_t *res)
{
	vici_dump(res, name, !*(int*)user, stdout);
	fflush(stdout);
}

static int monitor(vici_conn_t *conn, int raw)
{
	if (vici_register(conn, "ha-role", on_event, &raw) != 0 ||
		vici_register(conn, "ha-sync-error", on_event, &raw) != 0)
	{
		fprintf(stderr, "sasyncctl: registering for events failed: %s\n",
				strerror(errno));
		return EXIT_FAILED;
	}
	printf("monitoring ha-role and ha-sync-error events\n");
	fflush(stdout);
	for (;;)
	{
		pause();
	}
	return EXIT_OK;
}

static int run(vici_conn_t *conn, char *cmd, int raw)
{
	vici_res_t *res;
	int ret;

	if (strcmp(cmd, "monitor") == 0)
	{
		return monitor(conn, raw);
	}
	if (strcmp(cmd, "stats") == 0)
	{
		res = call(conn, "stats");
		ret = res ? print_stats(res, raw) : EXIT_FAILED;
	}
	else
	{
		char name[64];

		snprintf(name, sizeof(name), "ha-%s", cmd);
		res = call(conn, name);
		ret = res ? print_reply(res, name, raw) : EXIT_FAILED;
	}
	if (res)
	{
		vici_free_res(res);
	}
	return ret;
}

int main(int argc, char *argv[])
{
	char *uri = DEFAULT_URI, *cmds[] = { "status", "stats", "promote",
		"demote", "resync", "reset-counters", "list-sas", "monitor" };
	struct option opts[] = {
		{ "uri", required_argument, NULL, 'u' },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	vici_conn_t *conn;
	int c, raw = 0, ret, i, known = 0;

	while ((c = getopt_long(argc, argv, "u:rh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'u':
				uri = optarg;
				break;
			case 'r':
				raw = 1;
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
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
	{
		known |= strcmp(argv[optind], cmds[i]) == 0;
	}
	if (!known)
	{
		fprintf(stderr, "sasyncctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	vici_init();
	conn = vici_connect(uri);
	if (!conn)
	{
		fprintf(stderr, "sasyncctl: connecting to %s failed: %s\n", uri,
				strerror(errno));
		vici_deinit();
		return EXIT_CONNECT;
	}
	ret = run(conn, argv[optind], raw);
	vici_disconnect(conn);
	vici_deinit();
	return ret;
}
