/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * sasync-inject: sends bad input to the sync port of a node, for the
 * end-to-end tests. It speaks the link protocol with the plugin's own
 * sasync_crypt (see sasync_link.h): HELLO with a fresh nonce, a random
 * instance id and a node name, AUTH frames, then frames on the
 * authenticated connection, as a partner node would.
 *
 * usage: sasync-inject --peer ADDR[:PORT] --secret KEY [--name NAME] MODE
 *
 * KEY is written as in the plugin's settings (0x<hex> or 0s<base64>); NAME
 * is the node name in the HELLO (default "sasync-inject").
 *
 * Modes:
 *   malformed     handshake with SECRET, then an authentic DATA frame whose
 *                 record is malformed (an attribute longer than the record);
 *                 the node must count sync-rx-len-bad and apply nothing
 *   wrong-key     handshake with SECRET, then a DATA frame sealed under a
 *                 key derived from another secret; the node must count
 *                 sync-rx-auth-bad and close the connection
 *   wrong-secret  the handshake itself with another secret; the node must
 *                 count sync-rx-auth-bad and close the connection
 *   replay        handshake with SECRET, then the same heartbeat frame
 *                 twice; the node must count sync-rx-replay and close
 *   unknown-sa    handshake with SECRET, then a well-formed IKE_MID record
 *                 for an IKE SA nobody has; a standby must count
 *                 apply-failed and change nothing
 *   random        handshake with SECRET, then 4 KiB of random bytes; the
 *                 node must count a bad frame and close the connection
 *   truncated     handshake with SECRET, then the first half of an
 *                 authentic frame, and close; the node must apply nothing
 *
 * Exit codes: 0 done, and the node closed the connection where it must;
 * 1 the node did not behave as expected; 2 usage; 3 connecting or the
 * handshake failed.
 */

#include <sasync_link.h>
#include <sasync_crypt.h>
#include <sasync_msg.h>
#include <sasync_secret.h>

#include <library.h>
#include <crypto/rngs/rng.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PLUGINDIR
# define PLUGINDIR "/usr/lib/ipsec/plugins"
#endif

/** plugins sasync_crypt needs */
#define PLUGINS "random nonce sha2 hmac kdf aes gcm chapoly"

/** another secret, for the wrong-key and wrong-secret modes */
#define OTHER_SECRET "sasync-inject: not the secret of the cluster, 32+"

/** how long to wait for the node (ms) */
#define TIMEOUT 10000

enum {
	EXIT_DONE = 0,
	EXIT_UNEXPECTED = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sasync-inject --peer ADDR[:PORT] --secret KEY "
			"[--name NAME] malformed|wrong-key|wrong-secret|replay|"
			"unknown-sa|random|truncated\n");
}

/**
 * Parse ADDR[:PORT] (IPv6 with a port as [ADDR]:PORT)
 */
static host_t *parse_peer(char *str)
{
	char buf[128], *port = NULL, *addr = buf, *pos;

	if (snprintf(buf, sizeof(buf), "%s", str) >= sizeof(buf))
	{
		return NULL;
	}
	if (buf[0] == '[')
	{
		addr++;
		pos = strchr(addr, ']');
		if (!pos)
		{
			return NULL;
		}
		*pos = '\0';
		port = pos[1] == ':' ? pos + 2 : NULL;
	}
	else if ((pos = strchr(buf, ':')) && pos == strrchr(buf, ':'))
	{
		*pos = '\0';
		port = pos + 1;
	}
	return host_create_from_string(addr, port ? atoi(port)
											  : SASYNC_DEFAULT_PORT);
}

/**
 * Wait until fd is readable, FALSE on timeout
 */
static bool wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, TIMEOUT) == 1;
}

static bool read_all(int fd, u_char *buf, size_t len)
{
	ssize_t n;

	while (len)
	{
		if (!wait_readable(fd))
		{
			return FALSE;
		}
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

static bool write_all(int fd, chunk_t data)
{
	ssize_t n;

	while (data.len)
	{
		n = send(fd, data.ptr, data.len, MSG_NOSIGNAL);
		if (n <= 0)
		{
			return FALSE;
		}
		data = chunk_skip(data, n);
	}
	return TRUE;
}

static bool send_frame(int fd, sasync_crypt_t *crypt, uint8_t type,
					   chunk_t payload, chunk_t *copy)
{
	chunk_t frame;
	bool ok;

	if (!crypt->seal(crypt, type, payload, &frame))
	{
		return FALSE;
	}
	ok = write_all(fd, frame);
	if (copy)
	{
		*copy = frame;
	}
	else
	{
		chunk_free(&frame);
	}
	return ok;
}

/**
 * Wait for the node to close the connection
 */
static bool closed(int fd)
{
	u_char buf[256];
	ssize_t n;

	while (wait_readable(fd))
	{
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
		{
			return TRUE;
		}
		if (n < 0)
		{
			return FALSE;
		}
	}
	return FALSE;
}

/**
 * Connect and run the connector's handshake with a secret; the nonces are
 * returned so another key can be derived from them. NULL on failure.
 */
/**
 * The frame protection of a connection, from both HELLOs and a key
 */
static sasync_crypt_t *connection_crypt(chunk_t key,
										u_char hello_i[SASYNC_HELLO_LEN],
										u_char hello_r[SASYNC_HELLO_LEN])
{
	encryption_algorithm_t alg;

	alg = sasync_crypt_choose(hello_i[SASYNC_HELLO_AEADS],
							  hello_r[SASYNC_HELLO_AEADS]);
	return sasync_crypt_create(alg, key,
							   chunk_create(hello_i, SASYNC_HELLO_LEN),
							   chunk_create(hello_r, SASYNC_HELLO_LEN), TRUE);
}

/**
 * Our HELLO: a random nonce and instance id, and our name
 */
static bool make_hello(char *name, u_char hello[SASYNC_HELLO_LEN])
{
	rng_t *rng;
	bool ok;

	memset(hello, 0, SASYNC_HELLO_LEN);
	memcpy(hello, SASYNC_HELLO_MAGIC, 4);
	hello[4] = SASYNC_HELLO_VERSION;
	hello[SASYNC_HELLO_AEADS] = sasync_crypt_supported();
	snprintf((char*)hello + SASYNC_HELLO_NAME, SASYNC_NAME_LEN, "%s", name);
	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ok = rng && rng->get_bytes(rng, SASYNC_NONCE_LEN + SASYNC_INSTANCE_LEN,
							   hello + SASYNC_HELLO_NONCE);
	DESTROY_IF(rng);
	return ok;
}

static sasync_crypt_t *handshake(int fd, chunk_t key, char *name,
								 u_char hello_i[SASYNC_HELLO_LEN],
								 u_char hello_r[SASYNC_HELLO_LEN])
{
	sasync_crypt_t *crypt;
	chunk_t frame, plain;
	u_char len[4];
	uint8_t type;
	bool ok;

	if (!make_hello(name, hello_i) ||
		!write_all(fd, chunk_create(hello_i, SASYNC_HELLO_LEN)) ||
		!read_all(fd, hello_r, SASYNC_HELLO_LEN) ||
		!memeq(hello_r, SASYNC_HELLO_MAGIC, 4))
	{
		fprintf(stderr, "sasync-inject: no valid HELLO from the node\n");
		return NULL;
	}
	crypt = connection_crypt(key, hello_i, hello_r);
	if (!crypt)
	{
		fprintf(stderr, "sasync-inject: no AEAD (crypto plugins?)\n");
		return NULL;
	}
	if (!send_frame(fd, crypt, SASYNC_FRAME_AUTH,
					chunk_from_str(SASYNC_AUTH_I), NULL) ||
		!read_all(fd, len, sizeof(len)) || untoh32(len) > 256)
	{
		crypt->destroy(crypt);
		return NULL;
	}
	frame = chunk_alloc(sizeof(len) + untoh32(len));
	memcpy(frame.ptr, len, sizeof(len));
	ok = read_all(fd, frame.ptr + sizeof(len), frame.len - sizeof(len)) &&
		 crypt->open(crypt, frame, &type, &plain) == SASYNC_OPEN_OK;
	chunk_free(&frame);
	if (!ok)
	{
		crypt->destroy(crypt);
		return NULL;
	}
	ok = type == SASYNC_FRAME_AUTH &&
		 chunk_equals(plain, chunk_from_str(SASYNC_AUTH_R));
	chunk_free(&plain);
	if (!ok)
	{
		crypt->destroy(crypt);
		return NULL;
	}
	return crypt;
}

/**
 * A record the codec must reject: IKE_ADD with one attribute whose length
 * points beyond the record
 */
static chunk_t malformed_record()
{
	static u_char record[] = {
		SASYNC_MSG_VERSION, SASYNC_MSG_IKE_ADD, 0x00, 0x01,
		0x00, SASYNC_ATTR_IKE_SPI_I, 0x00, 0x40,
		0x01, 0x02, 0x03, 0x04,
	};
	return chunk_from_thing(record);
}

/**
 * A well-formed record that can't be applied: message IDs of an IKE SA with
 * SPIs nobody uses
 */
static chunk_t unknown_sa_record()
{
	sasync_msg_t *msg;
	chunk_t record;

	msg = sasync_msg_create(SASYNC_MSG_IKE_MID);
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_I, 0x5a5a5a5a5a5a5a5aULL);
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_R, 0xa5a5a5a5a5a5a5a5ULL);
	msg->add_int(msg, SASYNC_ATTR_IKE_INITIATOR, 0);
	msg->add_int(msg, SASYNC_ATTR_MID_R, 1);
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, time(NULL) * 1000ULL);
	record = chunk_clone(msg->get_encoding(msg));
	msg->destroy(msg);
	return record;
}

/**
 * Send random bytes, or the first half of an authentic frame
 */
static bool send_garbage(int fd, sasync_crypt_t *crypt, bool random)
{
	chunk_t frame, record;
	rng_t *rng;
	bool ok;

	if (random)
	{
		rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
		ok = rng && rng->allocate_bytes(rng, 4096, &frame);
		DESTROY_IF(rng);
	}
	else
	{
		record = unknown_sa_record();
		ok = crypt->seal(crypt, SASYNC_FRAME_DATA, record, &frame);
		chunk_free(&record);
		frame.len /= 2;
	}
	ok = ok && write_all(fd, frame);
	free(frame.ptr);
	return ok;
}

static int run(host_t *peer, chunk_t key, char *name, char *mode)
{
	u_char hello_i[SASYNC_HELLO_LEN], hello_r[SASYNC_HELLO_LEN],
		   ts[SASYNC_HEARTBEAT_LEN] = {};
	sasync_crypt_t *crypt, *other;
	chunk_t frame;
	int fd, ret = EXIT_DONE;

	fd = socket(peer->get_family(peer), SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, peer->get_sockaddr(peer),
						  *peer->get_sockaddr_len(peer)) != 0)
	{
		fprintf(stderr, "sasync-inject: connecting failed: %s\n",
				strerror(errno));
		if (fd >= 0)
		{
			close(fd);
		}
		return EXIT_CONNECT;
	}
	if (streq(mode, "wrong-secret"))
	{
		crypt = handshake(fd, chunk_from_str(OTHER_SECRET), name, hello_i,
						  hello_r);
		if (crypt)
		{
			fprintf(stderr, "sasync-inject: the node accepted a handshake "
					"with another secret\n");
			crypt->destroy(crypt);
			ret = EXIT_UNEXPECTED;
		}
		else if (!closed(fd))
		{
			fprintf(stderr, "sasync-inject: the node did not close the "
					"connection\n");
			ret = EXIT_UNEXPECTED;
		}
		close(fd);
		return ret;
	}
	crypt = handshake(fd, key, name, hello_i, hello_r);
	if (!crypt)
	{
		fprintf(stderr, "sasync-inject: handshake failed\n");
		close(fd);
		return EXIT_CONNECT;
	}
	if (streq(mode, "malformed"))
	{
		if (!send_frame(fd, crypt, SASYNC_FRAME_DATA, malformed_record(),
						NULL))
		{
			ret = EXIT_UNEXPECTED;
		}
	}
	else if (streq(mode, "random") || streq(mode, "truncated"))
	{
		if (!send_garbage(fd, crypt, streq(mode, "random")) ||
			(streq(mode, "random") && !closed(fd)))
		{
			fprintf(stderr, "sasync-inject: the node did not close the "
					"connection\n");
			ret = EXIT_UNEXPECTED;
		}
	}
	else if (streq(mode, "unknown-sa"))
	{
		frame = unknown_sa_record();
		if (!send_frame(fd, crypt, SASYNC_FRAME_DATA, frame, NULL))
		{
			ret = EXIT_UNEXPECTED;
		}
		chunk_free(&frame);
	}
	else if (streq(mode, "wrong-key"))
	{
		other = connection_crypt(chunk_from_str(OTHER_SECRET), hello_i,
								 hello_r);
		/* the AUTH frame used the first sequence number: use the next one,
		 * so only the key is wrong */
		if (!other || !other->seal(other, SASYNC_FRAME_AUTH, chunk_empty,
								   &frame))
		{
			DESTROY_IF(other);
			crypt->destroy(crypt);
			close(fd);
			return EXIT_CONNECT;
		}
		chunk_free(&frame);
		if (!send_frame(fd, other, SASYNC_FRAME_DATA, malformed_record(),
						NULL) || !closed(fd))
		{
			fprintf(stderr, "sasync-inject: the node did not close the "
					"connection\n");
			ret = EXIT_UNEXPECTED;
		}
		other->destroy(other);
	}
	else
	{	/* replay */
		htoun64(ts, time(NULL) * 1000ULL);
		if (!send_frame(fd, crypt, SASYNC_FRAME_HEARTBEAT,
						chunk_from_thing(ts), &frame) ||
			!write_all(fd, frame) || !closed(fd))
		{
			fprintf(stderr, "sasync-inject: the node did not close the "
					"connection\n");
			ret = EXIT_UNEXPECTED;
		}
		chunk_free(&frame);
	}
	crypt->destroy(crypt);
	close(fd);
	return ret;
}

int main(int argc, char *argv[])
{
	struct option opts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "secret", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *secret = NULL, *peer_str = NULL, *name = "sasync-inject", *mode;
	char *error;
	chunk_t key;
	host_t *peer;
	int c, ret;

	while ((c = getopt_long(argc, argv, "p:s:n:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'p':
				peer_str = optarg;
				break;
			case 's':
				secret = optarg;
				break;
			case 'n':
				name = optarg;
				break;
			case 'h':
				usage(stdout);
				return EXIT_DONE;
			default:
				usage(stderr);
				return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !secret || !peer_str)
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	mode = argv[optind];
	if (!streq(mode, "malformed") && !streq(mode, "wrong-key") &&
		!streq(mode, "wrong-secret") && !streq(mode, "replay") &&
		!streq(mode, "unknown-sa") && !streq(mode, "random") &&
		!streq(mode, "truncated"))
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!library_init(NULL, "sasync-inject"))
	{
		library_deinit();
		return EXIT_CONNECT;
	}
	lib->plugins->add_path(lib->plugins, PLUGINDIR);
	if (!lib->plugins->load(lib->plugins, PLUGINS))
	{
		fprintf(stderr, "sasync-inject: loading plugins '%s' failed\n",
				PLUGINS);
		library_deinit();
		return EXIT_CONNECT;
	}
	peer = parse_peer(peer_str);
	if (!peer)
	{
		fprintf(stderr, "sasync-inject: invalid peer '%s'\n", peer_str);
		library_deinit();
		return EXIT_USAGE;
	}
	error = sasync_secret_parse(secret, &key);
	if (error)
	{
		fprintf(stderr, "sasync-inject: the key is %s\n", error);
		peer->destroy(peer);
		library_deinit();
		return EXIT_USAGE;
	}
	ret = run(peer, key, name, mode);
	chunk_clear(&key);
	peer->destroy(peer);
	library_deinit();
	return ret;
}
