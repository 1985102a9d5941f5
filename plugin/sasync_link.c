/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_link.h"
#include "sasync_msg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <collections/array.h>
#include <collections/linked_list.h>
#include <threading/mutex.h>
#include <threading/thread.h>
#include <utils/debug.h>

/** reconnect backoff, in ms */
#define BACKOFF_MIN 200
#define BACKOFF_MAX 2000

/** how long a connect() may take, in ms */
#define CONNECT_TIMEOUT 5000

/** how long each handshake step may take, in ms */
#define HANDSHAKE_TIMEOUT 10000

/** how long a started frame or a write may stall, in ms */
#define STALL_TIMEOUT 30000

/** largest AUTH frame we read during the handshake */
#define AUTH_FRAME_MAX 256

/** accepted connections at most, each has a thread */
#define MAX_CONNS 32

/** keepalive probing, to notice dead peers of idle connections (s) */
#define KEEPALIVE_IDLE 10
#define KEEPALIVE_INTVL 3
#define KEEPALIVE_CNT 3

/** log at level 1 or 2, for messages repeated on every retry */
#define DBG12(level, fmt, ...) \
	do { \
		if ((level) == 1) { DBG1(DBG_APP, fmt, ##__VA_ARGS__); } \
		else { DBG2(DBG_APP, fmt, ##__VA_ARGS__); } \
	} while (0)

typedef struct private_sasync_link_t private_sasync_link_t;
typedef struct peer_t peer_t;
typedef struct conn_t conn_t;
typedef struct record_t record_t;

/**
 * A queued record, allocated together with its data
 */
struct record_t {
	/** the record, pointing behind this struct */
	chunk_t data;
	/** when it was queued (sasync_link_time_ms()) */
	uint64_t queued;
};

/**
 * Result of I/O on a socket
 */
typedef enum {
	IO_OK,
	/** closed by the other end */
	IO_CLOSED,
	IO_TIMEOUT,
	IO_ERROR,
	/** the link is being destroyed */
	IO_STOP,
	/** announced frame length beyond the allowed maximum */
	IO_TOO_LONG,
} io_t;

/**
 * Why connecting to a peer failed, so each reason is logged once
 */
typedef enum {
	FAIL_NONE,
	FAIL_UNREACHABLE,
	FAIL_CLOSED,
	FAIL_HELLO,
	FAIL_AUTH,
	FAIL_IO,
} fail_t;

/**
 * A configured partner node and our outgoing connection to it
 */
struct peer_t {

	/**
	 * Public state, first so the enumerator can return it
	 */
	sasync_link_peer_t public;

	/**
	 * Link we belong to
	 */
	private_sasync_link_t *link;

	/**
	 * Thread connecting and sending
	 */
	thread_t *thread;

	/**
	 * Pipe waking the thread when records are queued
	 */
	int kick[2];

	/**
	 * Queued records (record_t*)
	 */
	linked_list_t *queue;

	/**
	 * Bytes in the queue
	 */
	size_t queue_bytes;

	/**
	 * Records dropped from the full queue since that was last reported
	 */
	u_int dropped;

	/**
	 * Authenticated incoming connections from this peer
	 */
	u_int in_conns;

	/**
	 * Last connection failure logged by the peer thread
	 */
	fail_t failure;

	/**
	 * An authentication failure of incoming connections has been logged
	 */
	bool in_auth_logged;
};

/**
 * An accepted connection
 */
struct conn_t {

	/**
	 * Link we belong to
	 */
	private_sasync_link_t *link;

	/**
	 * Socket
	 */
	int fd;

	/**
	 * Source address
	 */
	host_t *remote;

	/**
	 * Thread reading from the connection
	 */
	thread_t *thread;

	/**
	 * Thread has finished and can be joined
	 */
	bool done;
};

/**
 * Private data of a sasync_link_t object.
 */
struct private_sasync_link_t {

	/**
	 * Public interface.
	 */
	sasync_link_t public;

	/**
	 * Address we listen on
	 */
	host_t *local;

	/**
	 * Configured peers, peer_t*
	 */
	array_t *peers;

	/**
	 * Shared secret
	 */
	chunk_t secret;

	/**
	 * Counters to update
	 */
	sasync_counters_t *counters;

	/**
	 * Listening socket
	 */
	int listen_fd;

	/**
	 * Pipe written once on destroy, wakes every thread for good
	 */
	int stop[2];

	/**
	 * Set on destroy
	 */
	bool stopping;

	/**
	 * Thread accepting connections
	 */
	thread_t *listener;

	/**
	 * Accepted connections, conn_t*
	 */
	linked_list_t *conns;

	/**
	 * Protects queues, peer state, conns and callbacks
	 */
	mutex_t *mutex;

	/**
	 * Receiver of records
	 */
	sasync_link_recv_t recv_cb;
	void *recv_data;

	/**
	 * Callback for outgoing connections coming up
	 */
	sasync_link_up_t up_cb;
	void *up_data;

	/**
	 * Callback for sync errors
	 */
	sasync_link_error_t error_cb;
	void *error_data;
};

/*
 * Described in header
 */
uint64_t sasync_link_time_ms()
{
	timeval_t tv;

	time_monotonic(&tv);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/**
 * Check if the link is being destroyed
 */
static bool stopping(private_sasync_link_t *this)
{
	return __atomic_load_n(&this->stopping, __ATOMIC_ACQUIRE);
}

/**
 * Wait until fd is ready, the link stops or timeout ms passed (-1 forever)
 */
static io_t wait_fd(private_sasync_link_t *this, int fd, short events,
					int timeout)
{
	struct pollfd pfd[] = {
		{ .fd = this->stop[0], .events = POLLIN, },
		{ .fd = fd, .events = events, },
	};
	int n;

	while (TRUE)
	{
		/* fd -1 is ignored by poll(), which makes this a plain sleep */
		n = poll(pfd, countof(pfd), timeout);
		if (n < 0)
		{
			if (errno == EINTR)
			{
				continue;
			}
			return IO_ERROR;
		}
		if (pfd[0].revents)
		{
			return IO_STOP;
		}
		/* errors and hangups are reported by the following read/write */
		return n ? IO_OK : IO_TIMEOUT;
	}
}

/**
 * Read exactly len bytes from a non-blocking socket
 */
static io_t read_all(private_sasync_link_t *this, int fd, u_char *buf,
					 size_t len, int timeout)
{
	ssize_t n;
	io_t status;

	while (len)
	{
		n = recv(fd, buf, len, 0);
		if (n > 0)
		{
			buf += n;
			len -= n;
			continue;
		}
		if (n == 0)
		{
			return IO_CLOSED;
		}
		if (errno == EINTR)
		{
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
		{
			return errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
		}
		status = wait_fd(this, fd, POLLIN, timeout);
		if (status != IO_OK)
		{
			return status;
		}
	}
	return IO_OK;
}

/**
 * Write a buffer completely to a non-blocking socket
 */
static io_t write_all(private_sasync_link_t *this, int fd, chunk_t data)
{
	ssize_t n;
	io_t status;

	while (data.len)
	{
		n = send(fd, data.ptr, data.len, MSG_NOSIGNAL);
		if (n >= 0)
		{
			data = chunk_skip(data, n);
			continue;
		}
		if (errno == EINTR)
		{
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
		{
			return errno == EPIPE || errno == ECONNRESET ? IO_CLOSED
														 : IO_ERROR;
		}
		status = wait_fd(this, fd, POLLOUT, STALL_TIMEOUT);
		if (status != IO_OK)
		{
			return status;
		}
	}
	return IO_OK;
}

/**
 * Read a complete frame of at most max bytes, waiting timeout ms for it to
 * start
 */
static io_t read_frame(private_sasync_link_t *this, int fd, size_t max,
					   int timeout, chunk_t *frame)
{
	u_char len[4];
	uint32_t flen;
	io_t status;

	status = read_all(this, fd, len, sizeof(len), timeout);
	if (status != IO_OK)
	{
		return status;
	}
	flen = untoh32(len);
	if (flen > max - sizeof(len))
	{
		return IO_TOO_LONG;
	}
	*frame = chunk_alloc(sizeof(len) + flen);
	memcpy(frame->ptr, len, sizeof(len));
	status = read_all(this, fd, frame->ptr + sizeof(len), flen, STALL_TIMEOUT);
	if (status != IO_OK)
	{
		chunk_free(frame);
	}
	return status;
}

/**
 * Seal a frame and write it
 */
static io_t write_frame(private_sasync_link_t *this, int fd,
						sasync_crypt_t *crypt, uint8_t type, chunk_t payload)
{
	chunk_t frame;
	io_t status;

	if (!crypt->seal(crypt, type, payload, &frame))
	{
		return IO_ERROR;
	}
	status = write_all(this, fd, frame);
	chunk_free(&frame);
	return status;
}

/**
 * Make a descriptor non-blocking and close-on-exec
 */
static bool set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 &&
		   fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

/**
 * Create a non-blocking pipe
 */
static bool create_pipe(int fds[2])
{
	if (pipe(fds) == 0)
	{
		if (set_nonblock(fds[0]) && set_nonblock(fds[1]))
		{
			return TRUE;
		}
		close(fds[0]);
		close(fds[1]);
	}
	fds[0] = fds[1] = -1;
	DBG1(DBG_APP, "sasync: creating pipe failed: %s", strerror(errno));
	return FALSE;
}

/**
 * Options of every connection: low latency and noticing dead peers
 */
static void set_sockopts(int fd)
{
	int on = 1, idle = KEEPALIVE_IDLE, intvl = KEEPALIVE_INTVL;
	int cnt = KEEPALIVE_CNT;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/**
 * Build our HELLO with a fresh nonce
 */
static bool make_hello(u_char hello[SASYNC_HELLO_LEN])
{
	nonce_gen_t *gen;
	bool ok;

	gen = lib->crypto->create_nonce_gen(lib->crypto);
	if (!gen)
	{
		DBG1(DBG_APP, "sasync: no nonce generator, load the nonce plugin");
		return FALSE;
	}
	memcpy(hello, SASYNC_HELLO_MAGIC, 4);
	hello[4] = SASYNC_HELLO_VERSION;
	ok = gen->get_nonce(gen, SASYNC_NONCE_LEN, hello + 5);
	gen->destroy(gen);
	return ok;
}

/**
 * Check a received HELLO
 */
static bool check_hello(u_char hello[SASYNC_HELLO_LEN])
{
	return memeq(hello, SASYNC_HELLO_MAGIC, 4) &&
		   hello[4] == SASYNC_HELLO_VERSION;
}

/**
 * Open a frame expected to be an AUTH with the given payload
 */
static sasync_open_t open_auth(sasync_crypt_t *crypt, chunk_t frame,
							   char *expected)
{
	sasync_open_t result;
	chunk_t plain;
	uint8_t type;

	result = crypt->open(crypt, frame, &type, &plain);
	if (result == SASYNC_OPEN_OK)
	{
		if (type != SASYNC_FRAME_AUTH ||
			!chunk_equals_const(plain, chunk_from_str(expected)))
		{	/* authentic, but not what the protocol allows here */
			result = SASYNC_OPEN_BAD_LEN;
		}
		chunk_clear(&plain);
	}
	return result;
}

/**
 * Count a sync error and report it to the error callback
 */
static void sync_error(private_sasync_link_t *this, host_t *peer,
					   sasync_counter_t counter, char *reason)
{
	this->counters->inc(this->counters, counter);
	this->mutex->lock(this->mutex);
	if (this->error_cb)
	{
		this->error_cb(this->error_data, peer, counter, reason);
	}
	this->mutex->unlock(this->mutex);
}

/**
 * Count and report a rejected frame
 */
static void count_rejected(private_sasync_link_t *this, host_t *peer,
						   sasync_open_t result, bool handshake)
{
	switch (result)
	{
		case SASYNC_OPEN_AUTH_FAILED:
			sync_error(this, peer, SASYNC_CTR_SYNC_RX_AUTH_BAD, handshake ?
					   "handshake authentication failed (different secret?)" :
					   "forged or corrupt frame");
			break;
		case SASYNC_OPEN_REPLAY:
			sync_error(this, peer, SASYNC_CTR_SYNC_RX_REPLAY,
					   "replayed or reordered frame");
			break;
		case SASYNC_OPEN_BAD_LEN:
		case SASYNC_OPEN_BAD_VERSION:
		default:
			sync_error(this, peer, SASYNC_CTR_SYNC_RX_LEN_BAD, handshake ?
					   "invalid handshake" : "malformed frame");
			break;
	}
}

/**
 * Set the oldest_queued state of a peer after its queue changed, with the
 * lock held
 */
static void update_oldest(peer_t *peer)
{
	record_t *record;

	peer->public.oldest_queued = 0;
	if (peer->queue->get_first(peer->queue, (void**)&record) == SUCCESS)
	{
		peer->public.oldest_queued = record->queued;
	}
}

/**
 * Update the queue depth gauge, with the lock held
 */
static void update_depth(private_sasync_link_t *this)
{
	enumerator_t *enumerator;
	peer_t *peer;
	u_int depth = 0;

	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		depth = max(depth, peer->public.queued);
	}
	enumerator->destroy(enumerator);
	this->counters->set_queue_depth(this->counters, depth);
}

/**
 * Drop the oldest queued records of a peer until the limits hold
 */
static void enforce_limits(peer_t *peer)
{
	record_t *record;

	while (peer->public.queued > SASYNC_QUEUE_MAX ||
		   peer->queue_bytes > SASYNC_QUEUE_MAX_BYTES)
	{
		if (peer->queue->remove_first(peer->queue,
									  (void**)&record) != SUCCESS)
		{
			break;
		}
		if (!peer->dropped++)
		{
			DBG1(DBG_APP, "sasync: send queue to %#H full, dropping oldest "
				 "records", peer->public.peer);
		}
		peer->public.queued--;
		peer->queue_bytes -= record->data.len;
		free(record);
	}
}

/**
 * Take the oldest queued record of a peer, NULL if none
 */
static record_t *dequeue(peer_t *peer)
{
	private_sasync_link_t *this = peer->link;
	record_t *record = NULL;

	this->mutex->lock(this->mutex);
	if (peer->queue->remove_first(peer->queue, (void**)&record) == SUCCESS)
	{
		peer->public.queued--;
		peer->queue_bytes -= record->data.len;
		update_depth(this);
	}
	this->mutex->unlock(this->mutex);
	return record;
}

/**
 * Put a record that could not be written back to the head of the queue
 */
static void requeue(peer_t *peer, record_t *record)
{
	private_sasync_link_t *this = peer->link;

	this->mutex->lock(this->mutex);
	peer->queue->insert_first(peer->queue, record);
	peer->public.queued++;
	peer->queue_bytes += record->data.len;
	/* if full meanwhile, this very record is the oldest and goes first */
	enforce_limits(peer);
	update_oldest(peer);
	update_depth(this);
	this->mutex->unlock(this->mutex);
}

/**
 * Log a connection failure, once per reason until the link comes up
 */
static void report_failure(peer_t *peer, fail_t failure)
{
	host_t *host = peer->public.peer;
	level_t level = peer->failure == failure ? 2 : 1;

	peer->failure = failure;
	switch (failure)
	{
		case FAIL_UNREACHABLE:
			DBG12(level, "sasync: sync peer %#H unreachable, retrying",
				host);
			break;
		case FAIL_CLOSED:
			DBG12(level, "sasync: sync peer %#H closed the connection "
				"during the handshake (different secret?), retrying", host);
			break;
		case FAIL_HELLO:
			DBG12(level, "sasync: sync peer %#H sent an invalid "
				"handshake, retrying", host);
			break;
		case FAIL_AUTH:
			DBG12(level, "sasync: sync peer %#H failed authentication "
				"(different secret?), retrying", host);
			break;
		case FAIL_IO:
		default:
			DBG12(level, "sasync: handshake with sync peer %#H failed, "
				"retrying", host);
			break;
	}
}

/**
 * Connect to a peer, -1 on failure
 */
static int connect_peer(private_sasync_link_t *this, host_t *host)
{
	int fd, err = 0;
	socklen_t len = sizeof(err);

	fd = socket(host->get_family(host),
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		return -1;
	}
	if (connect(fd, host->get_sockaddr(host),
				*host->get_sockaddr_len(host)) < 0)
	{
		if (errno != EINPROGRESS ||
			wait_fd(this, fd, POLLOUT, CONNECT_TIMEOUT) != IO_OK ||
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		{
			close(fd);
			return -1;
		}
	}
	set_sockopts(fd);
	return fd;
}

/**
 * Run the connecting side of the handshake
 */
static fail_t handshake_i(private_sasync_link_t *this, host_t *host, int fd,
						  sasync_crypt_t **out)
{
	u_char hello_i[SASYNC_HELLO_LEN], hello_r[SASYNC_HELLO_LEN];
	sasync_crypt_t *crypt;
	sasync_open_t result;
	chunk_t frame;
	io_t status;

	if (!make_hello(hello_i) ||
		write_all(this, fd, chunk_from_thing(hello_i)) != IO_OK)
	{
		return FAIL_IO;
	}
	status = read_all(this, fd, hello_r, sizeof(hello_r), HANDSHAKE_TIMEOUT);
	if (status != IO_OK)
	{	/* not about the secret yet, e.g. the peer has too many connections */
		return FAIL_IO;
	}
	if (!check_hello(hello_r))
	{
		sync_error(this, host, SASYNC_CTR_SYNC_RX_LEN_BAD, "invalid handshake");
		return FAIL_HELLO;
	}
	crypt = sasync_crypt_create(this->secret,
						chunk_create(hello_i + 5, SASYNC_NONCE_LEN),
						chunk_create(hello_r + 5, SASYNC_NONCE_LEN), TRUE);
	if (!crypt)
	{
		return FAIL_IO;
	}
	if (write_frame(this, fd, crypt, SASYNC_FRAME_AUTH,
					chunk_from_str(SASYNC_AUTH_I)) != IO_OK)
	{
		crypt->destroy(crypt);
		return FAIL_IO;
	}
	/* a peer with another secret closes here */
	status = read_frame(this, fd, AUTH_FRAME_MAX, HANDSHAKE_TIMEOUT, &frame);
	if (status != IO_OK)
	{
		crypt->destroy(crypt);
		if (status == IO_TOO_LONG)
		{
			sync_error(this, host, SASYNC_CTR_SYNC_RX_LEN_BAD,
					   "invalid handshake");
			return FAIL_HELLO;
		}
		return status == IO_CLOSED ? FAIL_CLOSED : FAIL_IO;
	}
	result = open_auth(crypt, frame, SASYNC_AUTH_R);
	chunk_free(&frame);
	if (result != SASYNC_OPEN_OK)
	{
		count_rejected(this, host, result, TRUE);
		crypt->destroy(crypt);
		return result == SASYNC_OPEN_AUTH_FAILED ? FAIL_AUTH : FAIL_HELLO;
	}
	*out = crypt;
	return FAIL_NONE;
}

/**
 * Check an idle outgoing connection that became readable, which is only
 * expected when it closes: the acceptor sends nothing after its AUTH
 */
static bool check_idle(peer_t *peer, int fd)
{
	u_char byte;
	ssize_t n;

	n = recv(fd, &byte, 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	{
		return TRUE;
	}
	if (n > 0)
	{
		DBG1(DBG_APP, "sasync: sync peer %#H sent unexpected data, "
			 "reconnecting", peer->public.peer);
	}
	return FALSE;
}

/**
 * Drain the kick pipe of a peer
 */
static void drain_kick(peer_t *peer)
{
	u_char buf[64];

	while (read(peer->kick[0], buf, sizeof(buf)) > 0)
	{
		/* nothing, just empty it */
	}
}

/**
 * Send a heartbeat frame
 */
static io_t write_heartbeat(private_sasync_link_t *this, int fd,
							sasync_crypt_t *crypt)
{
	u_char payload[SASYNC_HEARTBEAT_LEN];

	htoun64(payload, sasync_now_ms());
	return write_frame(this, fd, crypt, SASYNC_FRAME_HEARTBEAT,
					   chunk_from_thing(payload));
}

/**
 * Send queued records on an authenticated connection until it fails, and
 * heartbeats in between
 */
static void run_out(peer_t *peer, int fd, sasync_crypt_t *crypt)
{
	private_sasync_link_t *this = peer->link;
	uint64_t now, next_heartbeat = 0;
	struct pollfd pfd[3];
	record_t *record;
	u_int dropped;
	io_t status;

	while (!stopping(this))
	{
		now = sasync_link_time_ms();
		if (now >= next_heartbeat)
		{
			if (write_heartbeat(this, fd, crypt) != IO_OK)
			{
				return;
			}
			next_heartbeat = now + SASYNC_HEARTBEAT_INTERVAL;
		}
		record = dequeue(peer);
		if (!record)
		{
			pfd[0] = (struct pollfd){ .fd = this->stop[0], .events = POLLIN };
			pfd[1] = (struct pollfd){ .fd = peer->kick[0], .events = POLLIN };
			pfd[2] = (struct pollfd){ .fd = fd, .events = POLLIN };
			if (poll(pfd, countof(pfd), next_heartbeat - now) < 0 &&
				errno != EINTR)
			{
				return;
			}
			if (pfd[0].revents || (pfd[2].revents && !check_idle(peer, fd)))
			{
				return;
			}
			if (pfd[1].revents)
			{	/* drained before dequeuing, so no kick gets lost */
				drain_kick(peer);
			}
			continue;
		}
		status = write_frame(this, fd, crypt, SASYNC_FRAME_DATA, record->data);
		if (status != IO_OK)
		{
			requeue(peer, record);
			return;
		}
		free(record);
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_TX);

		/* report drops once the queue has room again; the record counts as
		 * queued until it is written */
		this->mutex->lock(this->mutex);
		update_oldest(peer);
		dropped = 0;
		if (peer->public.queued < SASYNC_QUEUE_MAX)
		{
			dropped = peer->dropped;
			peer->dropped = 0;
		}
		this->mutex->unlock(this->mutex);
		if (dropped)
		{
			DBG1(DBG_APP, "sasync: %u records for %#H were dropped from the "
				 "full send queue", dropped, peer->public.peer);
		}
	}
}

/**
 * Change the state of the outgoing connection, logging the transition
 */
static void set_out_up(peer_t *peer, bool up)
{
	private_sasync_link_t *this = peer->link;

	this->mutex->lock(this->mutex);
	peer->public.out_up = up;
	this->mutex->unlock(this->mutex);
	if (up)
	{
		DBG1(DBG_APP, "sasync: sync link to %#H up", peer->public.peer);
	}
	else if (!stopping(this))
	{
		DBG1(DBG_APP, "sasync: sync link to %#H down, reconnecting",
			 peer->public.peer);
	}
}

/**
 * Use an authenticated outgoing connection until it fails
 */
static void run_connected(peer_t *peer, int fd, sasync_crypt_t *crypt)
{
	private_sasync_link_t *this = peer->link;
	sasync_link_up_t up_cb;
	void *up_data;

	peer->failure = FAIL_NONE;
	set_out_up(peer, TRUE);

	this->mutex->lock(this->mutex);
	up_cb = this->up_cb;
	up_data = this->up_data;
	this->mutex->unlock(this->mutex);
	if (up_cb)
	{
		up_cb(up_data, peer->public.peer);
	}
	run_out(peer, fd, crypt);
	set_out_up(peer, FALSE);
}

/**
 * Thread connecting to a peer and sending its queue, reconnecting forever
 */
static void *peer_thread(peer_t *peer)
{
	private_sasync_link_t *this = peer->link;
	sasync_crypt_t *crypt = NULL;
	int fd, delay = BACKOFF_MIN;
	fail_t failure;

	while (!stopping(this))
	{
		fd = connect_peer(this, peer->public.peer);
		failure = fd < 0 ? FAIL_UNREACHABLE
						 : handshake_i(this, peer->public.peer, fd, &crypt);
		if (failure == FAIL_NONE)
		{
			if (!stopping(this))
			{
				run_connected(peer, fd, crypt);
				delay = BACKOFF_MIN;
			}
			crypt->destroy(crypt);
		}
		else if (!stopping(this))
		{
			report_failure(peer, failure);
		}
		if (fd >= 0)
		{
			close(fd);
		}
		if (wait_fd(this, -1, 0, delay) == IO_STOP)
		{
			break;
		}
		delay = min(delay * 2, BACKOFF_MAX);
	}
	return NULL;
}

/**
 * Find the configured peer an incoming connection comes from
 */
static peer_t *find_peer(private_sasync_link_t *this, host_t *remote)
{
	enumerator_t *enumerator;
	peer_t *peer, *found = NULL;

	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (remote->ip_equals(remote, peer->public.peer))
		{
			found = peer;
			break;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

/**
 * The configured address of the peer an incoming connection comes from,
 * else its source address
 */
static host_t *conn_peer(private_sasync_link_t *this, conn_t *conn)
{
	peer_t *peer;

	/* configured peers don't change while the link lives */
	peer = find_peer(this, conn->remote);
	return peer ? peer->public.peer : conn->remote;
}

/**
 * Log a failed authentication of an incoming connection, once per peer
 * until one succeeds (unknown sources are always logged)
 */
static void report_auth_failure(private_sasync_link_t *this, conn_t *conn)
{
	peer_t *peer;
	level_t level = 1;

	this->mutex->lock(this->mutex);
	peer = find_peer(this, conn->remote);
	if (peer)
	{
		level = peer->in_auth_logged ? 2 : 1;
		peer->in_auth_logged = TRUE;
	}
	this->mutex->unlock(this->mutex);
	DBG12(level, "sasync: sync peer %H failed authentication "
		"(different secret?)", conn->remote);
}

/**
 * Run the accepting side of the handshake, NULL if it failed (logged)
 */
static sasync_crypt_t *handshake_r(private_sasync_link_t *this, conn_t *conn)
{
	u_char hello_i[SASYNC_HELLO_LEN], hello_r[SASYNC_HELLO_LEN];
	sasync_crypt_t *crypt;
	sasync_open_t result;
	chunk_t frame;
	io_t status;

	status = read_all(this, conn->fd, hello_i, sizeof(hello_i),
					  HANDSHAKE_TIMEOUT);
	if (status != IO_OK)
	{	/* port scanners and such, nothing to worry about */
		DBG2(DBG_APP, "sasync: connection from %#H closed before handshake",
			 conn->remote);
		return NULL;
	}
	if (!check_hello(hello_i))
	{
		DBG1(DBG_APP, "sasync: invalid handshake from %#H, closing",
			 conn->remote);
		sync_error(this, conn_peer(this, conn), SASYNC_CTR_SYNC_RX_LEN_BAD,
				   "invalid handshake");
		return NULL;
	}
	if (!make_hello(hello_r) ||
		write_all(this, conn->fd, chunk_from_thing(hello_r)) != IO_OK)
	{
		return NULL;
	}
	crypt = sasync_crypt_create(this->secret,
						chunk_create(hello_i + 5, SASYNC_NONCE_LEN),
						chunk_create(hello_r + 5, SASYNC_NONCE_LEN), FALSE);
	if (!crypt)
	{
		return NULL;
	}
	status = read_frame(this, conn->fd, AUTH_FRAME_MAX, HANDSHAKE_TIMEOUT,
						&frame);
	if (status != IO_OK)
	{
		if (status == IO_TOO_LONG)
		{
			DBG1(DBG_APP, "sasync: invalid handshake from %#H, closing",
				 conn->remote);
			sync_error(this, conn_peer(this, conn),
					   SASYNC_CTR_SYNC_RX_LEN_BAD, "invalid handshake");
		}
		crypt->destroy(crypt);
		return NULL;
	}
	result = open_auth(crypt, frame, SASYNC_AUTH_I);
	chunk_free(&frame);
	if (result != SASYNC_OPEN_OK)
	{
		count_rejected(this, conn_peer(this, conn), result, TRUE);
		if (result == SASYNC_OPEN_AUTH_FAILED)
		{
			report_auth_failure(this, conn);
		}
		else
		{
			DBG1(DBG_APP, "sasync: invalid handshake from %#H, closing",
				 conn->remote);
		}
		crypt->destroy(crypt);
		return NULL;
	}
	if (write_frame(this, conn->fd, crypt, SASYNC_FRAME_AUTH,
					chunk_from_str(SASYNC_AUTH_R)) != IO_OK)
	{
		crypt->destroy(crypt);
		return NULL;
	}
	return crypt;
}

/**
 * Change the count of authenticated incoming connections from a peer,
 * logging the transitions
 */
static peer_t *set_in_up(private_sasync_link_t *this, conn_t *conn, bool up)
{
	peer_t *peer;
	bool log = TRUE;

	this->mutex->lock(this->mutex);
	peer = find_peer(this, conn->remote);
	if (peer)
	{
		if (up)
		{
			peer->in_auth_logged = FALSE;
			log = peer->in_conns++ == 0;
		}
		else
		{
			log = --peer->in_conns == 0;
		}
		peer->public.in_up = peer->in_conns > 0;
	}
	this->mutex->unlock(this->mutex);

	if (log && (up || !stopping(this)))
	{
		DBG1(DBG_APP, "sasync: sync link from %H %s", conn->remote,
			 up ? "up" : "down");
	}
	return peer;
}

/**
 * Hand an accepted record to the receiver, without holding any lock
 */
static void deliver(private_sasync_link_t *this, peer_t *peer, host_t *from,
					chunk_t payload)
{
	sasync_link_recv_t cb;
	void *data;

	this->counters->inc(this->counters, SASYNC_CTR_SYNC_RX);
	this->mutex->lock(this->mutex);
	if (peer)
	{
		peer->public.last_rx = time_monotonic(NULL);
	}
	cb = this->recv_cb;
	data = this->recv_data;
	this->mutex->unlock(this->mutex);
	if (cb)
	{
		cb(data, from, payload);
	}
}

/**
 * Note a heartbeat from a peer
 */
static void heartbeat(private_sasync_link_t *this, peer_t *peer,
					  chunk_t payload)
{
	uint64_t sent = untoh64(payload.ptr), now = sasync_now_ms();

	if (!peer)
	{	/* an unconfigured source has no state to update */
		return;
	}
	this->mutex->lock(this->mutex);
	peer->public.last_heartbeat = sasync_link_time_ms();
	peer->public.heartbeat_lag = now > sent ? min(now - sent, UINT32_MAX) : 0;
	this->mutex->unlock(this->mutex);
}

/**
 * Receive records on an authenticated incoming connection until it fails
 */
static void run_in(private_sasync_link_t *this, conn_t *conn, peer_t *peer,
				   sasync_crypt_t *crypt)
{
	host_t *from = peer ? peer->public.peer : conn->remote;
	sasync_open_t result;
	chunk_t frame, plain;
	uint8_t type;
	io_t status;

	while (!stopping(this))
	{
		status = read_frame(this, conn->fd, SASYNC_MAX_FRAME, -1, &frame);
		if (status == IO_TOO_LONG)
		{
			DBG1(DBG_APP, "sasync: sync peer %H announced a frame longer "
				 "than %d bytes, closing", conn->remote, SASYNC_MAX_FRAME);
			sync_error(this, from, SASYNC_CTR_SYNC_RX_LEN_BAD,
					   "frame too long");
			return;
		}
		if (status != IO_OK)
		{
			return;
		}
		result = crypt->open(crypt, frame, &type, &plain);
		chunk_free(&frame);
		if (result == SASYNC_OPEN_OK && type == SASYNC_FRAME_HEARTBEAT &&
			plain.len == SASYNC_HEARTBEAT_LEN)
		{
			heartbeat(this, peer, plain);
			chunk_clear(&plain);
			continue;
		}
		if (result == SASYNC_OPEN_OK && type != SASYNC_FRAME_DATA)
		{
			chunk_clear(&plain);
			result = SASYNC_OPEN_BAD_LEN;
		}
		if (result != SASYNC_OPEN_OK)
		{
			DBG1(DBG_APP, "sasync: sync peer %H sent a %s frame, closing",
				 conn->remote,
				 result == SASYNC_OPEN_AUTH_FAILED ? "forged or corrupt" :
				 result == SASYNC_OPEN_REPLAY ? "replayed or reordered" :
				 "malformed");
			count_rejected(this, from, result, FALSE);
			return;
		}
		deliver(this, peer, from, plain);
		chunk_clear(&plain);
	}
}

/**
 * Thread serving an accepted connection
 */
static void *conn_thread(conn_t *conn)
{
	private_sasync_link_t *this = conn->link;
	sasync_crypt_t *crypt;
	peer_t *peer;

	crypt = handshake_r(this, conn);
	if (crypt)
	{
		peer = set_in_up(this, conn, TRUE);
		run_in(this, conn, peer, crypt);
		set_in_up(this, conn, FALSE);
		crypt->destroy(crypt);
	}
	close(conn->fd);
	conn->fd = -1;

	this->mutex->lock(this->mutex);
	conn->done = TRUE;
	this->mutex->unlock(this->mutex);
	return NULL;
}

/**
 * Join a connection thread and free it
 */
static void conn_destroy(conn_t *conn)
{
	conn->thread->join(conn->thread);
	conn->remote->destroy(conn->remote);
	free(conn);
}

/**
 * Join the threads of closed connections
 */
static void reap_conns(private_sasync_link_t *this)
{
	enumerator_t *enumerator;
	linked_list_t *done;
	conn_t *conn;

	done = linked_list_create();
	this->mutex->lock(this->mutex);
	enumerator = this->conns->create_enumerator(this->conns);
	while (enumerator->enumerate(enumerator, &conn))
	{
		if (conn->done)
		{
			this->conns->remove_at(this->conns, enumerator);
			done->insert_last(done, conn);
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	done->destroy_function(done, (void*)conn_destroy);
}

/**
 * Start a thread for an accepted connection
 */
static void start_conn(private_sasync_link_t *this, int fd, host_t *remote)
{
	conn_t *conn;

	INIT(conn,
		.link = this,
		.fd = fd,
		.remote = remote,
	);
	/* listed first, so the thread's "done" finds it; only this (listener)
	 * thread and destroy() after joining it reap, so conn->thread is set */
	this->mutex->lock(this->mutex);
	this->conns->insert_last(this->conns, conn);
	this->mutex->unlock(this->mutex);
	conn->thread = thread_create((void*)conn_thread, conn);
	if (!conn->thread)
	{
		this->mutex->lock(this->mutex);
		this->conns->remove(this->conns, conn, NULL);
		this->mutex->unlock(this->mutex);
		close(fd);
		remote->destroy(remote);
		free(conn);
	}
}

/**
 * Host of an accepted connection, IPv4-mapped addresses of a dual-stack
 * listener as IPv4 so they match configured IPv4 peers
 */
static host_t *accepted_host(struct sockaddr_storage *sa)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6*)sa;
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
	};

	if (sa->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
	{
		sin.sin_port = sin6->sin6_port;
		memcpy(&sin.sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
		return host_create_from_sockaddr((sockaddr_t*)&sin);
	}
	return host_create_from_sockaddr((sockaddr_t*)sa);
}

/**
 * Thread accepting connections
 */
static void *listen_thread(private_sasync_link_t *this)
{
	struct sockaddr_storage sa;
	socklen_t len;
	host_t *remote;
	int fd;

	while (wait_fd(this, this->listen_fd, POLLIN, -1) == IO_OK)
	{
		len = sizeof(sa);
		fd = accept(this->listen_fd, (struct sockaddr*)&sa, &len);
		if (fd < 0)
		{
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			{	/* e.g. out of fds, don't spin */
				DBG1(DBG_APP, "sasync: accepting sync connection failed: %s",
					 strerror(errno));
				if (wait_fd(this, -1, 0, BACKOFF_MAX) == IO_STOP)
				{
					break;
				}
			}
			continue;
		}
		reap_conns(this);
		remote = accepted_host(&sa);
		if (!remote || !set_nonblock(fd))
		{
			DESTROY_IF(remote);
			close(fd);
			continue;
		}
		if (this->conns->get_count(this->conns) >= MAX_CONNS)
		{
			DBG1(DBG_APP, "sasync: rejecting sync connection from %H, too "
				 "many connections", remote);
			remote->destroy(remote);
			close(fd);
			continue;
		}
		set_sockopts(fd);
		start_conn(this, fd, remote);
	}
	return NULL;
}

METHOD(sasync_link_t, send_, void,
	private_sasync_link_t *this, chunk_t payload)
{
	enumerator_t *enumerator;
	record_t *record;
	peer_t *peer;
	uint64_t now;

	if (payload.len > SASYNC_MAX_RECORD)
	{
		DBG1(DBG_APP, "sasync: dropping sync record of %zu bytes, larger "
			 "than %d", payload.len, SASYNC_MAX_RECORD);
		return;
	}
	now = sasync_link_time_ms();
	this->mutex->lock(this->mutex);
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		/* one allocation for the record and its data */
		record = malloc(sizeof(record_t) + payload.len);
		record->data = chunk_create((u_char*)(record + 1), payload.len);
		record->queued = now;
		if (payload.len)
		{
			memcpy(record->data.ptr, payload.ptr, payload.len);
		}
		peer->queue->insert_last(peer->queue, record);
		peer->public.queued++;
		peer->queue_bytes += payload.len;
		enforce_limits(peer);
		update_oldest(peer);
		/* non-blocking: a full pipe means the thread is woken anyway */
		ignore_result(write(peer->kick[1], "", 1));
	}
	enumerator->destroy(enumerator);
	update_depth(this);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, set_receiver, void,
	private_sasync_link_t *this, sasync_link_recv_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->recv_cb = cb;
	this->recv_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, set_up_cb, void,
	private_sasync_link_t *this, sasync_link_up_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->up_cb = cb;
	this->up_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, set_error_cb, void,
	private_sasync_link_t *this, sasync_link_error_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->error_cb = cb;
	this->error_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, create_peer_enumerator, enumerator_t*,
	private_sasync_link_t *this)
{
	this->mutex->lock(this->mutex);
	return enumerator_create_cleaner(array_create_enumerator(this->peers),
									 (void*)this->mutex->unlock, this->mutex);
}

/**
 * Destroy a peer whose thread has been joined
 */
static void peer_destroy(peer_t *peer)
{
	peer->queue->destroy_function(peer->queue, free);
	if (peer->kick[0] >= 0)
	{
		close(peer->kick[0]);
		close(peer->kick[1]);
	}
	peer->public.peer->destroy(peer->public.peer);
	free(peer);
}

METHOD(sasync_link_t, destroy, void,
	private_sasync_link_t *this)
{
	enumerator_t *enumerator;
	peer_t *peer;
	conn_t *conn;

	__atomic_store_n(&this->stopping, TRUE, __ATOMIC_RELEASE);
	if (this->stop[1] >= 0)
	{	/* never read, so it wakes every poll() from now on */
		ignore_result(write(this->stop[1], "", 1));
	}
	if (this->listener)
	{
		this->listener->join(this->listener);
	}
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (peer->thread)
		{
			peer->thread->join(peer->thread);
		}
	}
	enumerator->destroy(enumerator);
	/* no thread adds connections anymore, the lock is not needed */
	while (this->conns->remove_first(this->conns, (void**)&conn) == SUCCESS)
	{
		conn_destroy(conn);
	}
	this->conns->destroy(this->conns);
	array_destroy_function(this->peers, (void*)peer_destroy, NULL);
	if (this->listen_fd >= 0)
	{
		close(this->listen_fd);
	}
	if (this->stop[0] >= 0)
	{
		close(this->stop[0]);
		close(this->stop[1]);
	}
	if (this->counters)
	{
		this->counters->set_queue_depth(this->counters, 0);
	}
	DESTROY_IF(this->local);
	chunk_clear(&this->secret);
	this->mutex->destroy(this->mutex);
	free(this);
}

/**
 * Parse "address[:port]" or "[address]:port", NULL if invalid
 */
static host_t *parse_host(char *str)
{
	char buf[INET6_ADDRSTRLEN + 16], *addr = buf, *port = NULL, *pos, *end;
	u_long num = SASYNC_DEFAULT_PORT;

	if (!str || !*str || strlen(str) >= sizeof(buf))
	{
		return NULL;
	}
	strcpy(buf, str);
	if (buf[0] == '[')
	{
		addr = buf + 1;
		pos = strchr(addr, ']');
		if (!pos || (pos[1] && pos[1] != ':'))
		{
			return NULL;
		}
		*pos = '\0';
		port = pos[1] ? pos + 2 : NULL;
	}
	else
	{	/* a single colon separates a port, more make an IPv6 address */
		pos = strchr(buf, ':');
		if (pos && pos == strrchr(buf, ':'))
		{
			*pos = '\0';
			port = pos + 1;
		}
	}
	if (port)
	{
		errno = 0;
		num = strtoul(port, &end, 10);
		if (!*port || *end || errno || num == 0 || num > 65535 ||
			!isdigit(*port))
		{
			return NULL;
		}
	}
	if (!*addr)
	{
		return NULL;
	}
	return host_create_from_string(addr, num);
}

/**
 * Parse and add one configured peer, FALSE if invalid (logged)
 */
static bool add_peer(private_sasync_link_t *this, char *str)
{
	enumerator_t *enumerator;
	peer_t *peer, *other;
	host_t *host;
	bool ok = TRUE;

	host = parse_host(str);
	if (!host || host->is_anyaddr(host))
	{
		DBG1(DBG_APP, "sasync: invalid sync peer address '%s'", str);
		DESTROY_IF(host);
		return FALSE;
	}
	if (host->equals(host, this->local))
	{
		DBG1(DBG_APP, "sasync: sync peer %#H is our own listening address",
			 host);
		host->destroy(host);
		return FALSE;
	}
	enumerator = array_create_enumerator(this->peers);
	while (ok && enumerator->enumerate(enumerator, &other))
	{
		ok = !host->equals(host, other->public.peer);
	}
	enumerator->destroy(enumerator);
	if (!ok)
	{
		DBG1(DBG_APP, "sasync: sync peer %#H configured twice", host);
		host->destroy(host);
		return FALSE;
	}
	INIT(peer,
		.public = {
			.peer = host,
		},
		.link = this,
		.queue = linked_list_create(),
		.kick = { -1, -1 },
	);
	array_insert(this->peers, ARRAY_TAIL, peer);
	return create_pipe(peer->kick);
}

/**
 * Parse and add the comma separated peers, FALSE if invalid (logged)
 */
static bool add_peers(private_sasync_link_t *this, char *peers)
{
	char *list, *pos, *token, *end;
	bool ok = TRUE;

	if (!peers || !*peers)
	{
		return TRUE;
	}
	/* split by hand: unlike the token enumerator, we reject empty items */
	list = pos = strdup(peers);
	while (ok && pos)
	{
		token = pos;
		pos = strchr(pos, ',');
		if (pos)
		{
			*pos++ = '\0';
		}
		while (isspace(*token))
		{
			token++;
		}
		for (end = token + strlen(token); end > token && isspace(end[-1]);)
		{
			*--end = '\0';
		}
		ok = add_peer(this, token);
	}
	free(list);
	return ok;
}

/**
 * Open the listening socket, FALSE if failed (logged)
 */
static bool open_listener(private_sasync_link_t *this)
{
	int on = 1;

	this->listen_fd = socket(this->local->get_family(this->local),
							 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (this->listen_fd < 0 ||
		setsockopt(this->listen_fd, SOL_SOCKET, SO_REUSEADDR, &on,
				   sizeof(on)) < 0 ||
		bind(this->listen_fd, this->local->get_sockaddr(this->local),
			 *this->local->get_sockaddr_len(this->local)) < 0 ||
		listen(this->listen_fd, MAX_CONNS) < 0)
	{
		DBG1(DBG_APP, "sasync: unable to listen on %#H: %s", this->local,
			 strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/**
 * Start the listener and one thread per peer
 */
static bool start_threads(private_sasync_link_t *this)
{
	enumerator_t *enumerator;
	peer_t *peer;
	bool ok = TRUE;

	this->listener = thread_create((void*)listen_thread, this);
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		peer->thread = thread_create((void*)peer_thread, peer);
		ok = ok && peer->thread;
	}
	enumerator->destroy(enumerator);
	if (!ok || !this->listener)
	{
		DBG1(DBG_APP, "sasync: unable to start sync link threads");
		return FALSE;
	}
	return TRUE;
}

/*
 * Described in header
 */
sasync_link_t *sasync_link_create(char *local, char *peers, chunk_t secret,
								  sasync_counters_t *counters)
{
	private_sasync_link_t *this;

	INIT(this,
		.public = {
			.send = _send_,
			.set_receiver = _set_receiver,
			.set_up_cb = _set_up_cb,
			.set_error_cb = _set_error_cb,
			.create_peer_enumerator = _create_peer_enumerator,
			.destroy = _destroy,
		},
		.local = parse_host(local),
		.peers = array_create(0, 0),
		.secret = chunk_clone(secret),
		.counters = counters,
		.listen_fd = -1,
		.stop = { -1, -1 },
		.conns = linked_list_create(),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
	);

	if (!this->local)
	{
		DBG1(DBG_APP, "sasync: invalid sync listening address '%s'", local);
		destroy(this);
		return NULL;
	}
	if (secret.len < SASYNC_SECRET_MIN)
	{
		DBG1(DBG_APP, "sasync: sync secret too short, %d bytes at least "
			 "required", SASYNC_SECRET_MIN);
		destroy(this);
		return NULL;
	}
	if (!counters || !add_peers(this, peers))
	{
		destroy(this);
		return NULL;
	}
	if (!create_pipe(this->stop))
	{
		destroy(this);
		return NULL;
	}
	if (!open_listener(this) || !start_threads(this))
	{
		destroy(this);
		return NULL;
	}
	return &this->public;
}
