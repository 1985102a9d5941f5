/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * Helpers shared by the sasync_link test suites: two links on loopback.
 */

#ifndef LINK_TEST_UTIL_H_
#define LINK_TEST_UTIL_H_

#include <check.h>

#include "sasync_link.h"

#include <library.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define SECRET "sasync unit test secret, 0123456789"

/** bounded waits (60 s): generous, as valgrind is slow; they only keep a
 * broken test from hanging, they never assert timing */
#define WAIT_STEP_US 10000
#define WAIT_STEPS 6000

/** poll a condition until it holds, FALSE if it never did */
#define WAIT_FOR(cond) ({ \
	bool _ok = FALSE; \
	int _i; \
	for (_i = 0; _i < WAIT_STEPS; _i++) \
	{ \
		if (cond) { _ok = TRUE; break; } \
		usleep(WAIT_STEP_US); \
	} \
	_ok; })

/** the link runs on charon's watcher and processor jobs: start threads, in
 * the forked test (a checked fixture) */
static inline void link_test_threads(void)
{
	lib->processor->set_threads(lib->processor, 8);
}

/** a port that was free a moment ago */
static inline uint16_t free_port()
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sin);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert(fd >= 0);
	ck_assert(bind(fd, (struct sockaddr*)&sin, len) == 0);
	ck_assert(getsockname(fd, (struct sockaddr*)&sin, &len) == 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/** a link named "node-<port>" on 127.0.0.1:port to 127.0.0.1:peer; if
 * peer is 0, to a port of 127.0.0.1 nobody listens on, so that it accepts
 * connections from 127.0.0.1 (a configured address) but makes none */
static inline sasync_link_t *link_create(uint16_t port, uint16_t peer,
										 char *secret, sasync_counters_t *ctr)
{
	char local[32], peers[32], name[32];

	snprintf(local, sizeof(local), "127.0.0.1:%u", port);
	snprintf(peers, sizeof(peers), "127.0.0.1:%u", peer ?: 1);
	snprintf(name, sizeof(name), "node-%u", port);
	return sasync_link_create(local, peers, name, chunk_from_str(secret), ctr);
}

/** a copy of the state of the first partner, without its address */
static inline sasync_link_peer_t peer_state(sasync_link_t *link)
{
	sasync_link_peer_t *state, copy = {};
	enumerator_t *enumerator;

	enumerator = link->create_peer_enumerator(link);
	if (enumerator->enumerate(enumerator, &state))
	{
		copy = *state;
		copy.peer = NULL;
	}
	enumerator->destroy(enumerator);
	return copy;
}

#endif /** LINK_TEST_UTIL_H_ */
