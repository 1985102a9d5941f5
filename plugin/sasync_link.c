/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_link.h"
#include "sasync_msg.h"
#include "sasync_secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <collections/array.h>
#include <collections/linked_list.h>
#include <networking/streams/stream.h>
#include <processing/jobs/callback_job.h>
#include <threading/condvar.h>
#include <threading/mutex.h>
#include <utils/debug.h>

/** reconnect backoff, in ms */
#define BACKOFF_MIN 200
#define BACKOFF_MAX 2000

/** how long a connection may take to get authenticated, in ms */
#define HANDSHAKE_TIMEOUT 10000

/** how long a connection may make no progress while it has something to
 * write (no byte written, no record acknowledged by the partner's
 * heartbeats), or receive nothing while heartbeats are due, in ms */
#define STALL_TIMEOUT 30000

/** largest AUTH frame we accept during the handshake */
#define AUTH_FRAME_MAX 256

/** bytes read at once, at least */
#define RX_CHUNK 65536

/** records (and bytes of them) received and not delivered yet, most, per
 * connection: reading stops there (TCP holds the rest back) until they
 * drop to the half */
#define INBOX_MAX 256
#define INBOX_MAX_BYTES (1024 * 1024)

/** queued records are sealed into one buffer until it holds this many
 * bytes, and that is written at once: a backlog costs one write, not one per
 * record */
#define TX_BATCH 65536

/** connections accepted from one configured peer at most; a partner makes
 * one at a time, the rest are its dead ones or someone spoofing it */
#define PEER_SLOTS 4

/** listen() backlog */
#define BACKLOG 32

/** refused connections are logged (and raised) once per interval, in ms */
#define REJECT_LOG_INTERVAL 10000

/** keepalive probing, to notice dead peers of idle connections (s) */
#define KEEPALIVE_IDLE 10
#define KEEPALIVE_INTVL 3
#define KEEPALIVE_CNT 3

typedef struct private_sasync_link_t private_sasync_link_t;
typedef struct peer_t peer_t;
typedef struct chan_t chan_t;
typedef struct record_t record_t;

/**
 * A queued record, allocated together with its data
 */
struct record_t {
	/** the record, pointing behind this struct */
	chunk_t data;
	/** when it was queued (sasync_link_time_ms()) */
	uint64_t queued;
	/** once sealed into a connection's buffer: where its frame ends */
	size_t tx_end;
};

/**
 * Why a connection ended, so each reason is logged once per peer
 */
typedef enum {
	FAIL_NONE,
	FAIL_UNREACHABLE,
	FAIL_CLOSED,
	FAIL_HELLO,
	FAIL_AUTH,
	FAIL_IDENTITY,
	FAIL_IO,
	FAIL_TIMEOUT,
	FAIL_NO_KEY,
} fail_t;

/**
 * State of a connection, in the order of the handshake
 */
typedef enum {
	/** outgoing: connect() in progress */
	CHAN_CONNECTING,
	/** waiting for the other side's HELLO */
	CHAN_HELLO,
	/** waiting for the other side's AUTH frame */
	CHAN_AUTH,
	/** authenticated: records (and heartbeats) flow */
	CHAN_UP,
	/** closed, waiting for its last reference to go */
	CHAN_CLOSED,
} chan_state_t;

/**
 * A configured partner node
 */
struct peer_t {

	/**
	 * Public state, first so the enumerator can return it
	 */
	sasync_link_peer_t public;

	/**
	 * Configured node name ("name@address"), NULL to accept any other
	 */
	char *name;

	/**
	 * Our outgoing connection to it, if any
	 */
	chan_t *out;

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
	 * Records were dropped: the partner needs a resync once the queue
	 * drained (or the connection comes up again, which resyncs anyway)
	 */
	bool dirty;

	/**
	 * Authenticated incoming connections from this peer
	 */
	u_int in_conns;

	/**
	 * A heartbeat is to be sent before the next record
	 */
	bool heartbeat_due;

	/**
	 * Next connection attempt (sasync_link_time_ms())
	 */
	uint64_t retry_at;

	/**
	 * Current reconnect backoff, in ms
	 */
	u_int backoff;

	/**
	 * Last authentic frame from it (sasync_link_time_ms())
	 */
	uint64_t last_seen;

	/**
	 * Records received from it, plus one for each tick a delivery of its
	 * records ran: our heartbeats carry it, a change tells it that we take
	 * its records (slowly, maybe: a record may take long to apply while a
	 * listing of 10,000 SAs holds charon's IKE SA manager)
	 */
	uint64_t taken;

	/**
	 * Records it acknowledged in its last heartbeat
	 */
	uint64_t acked;

	/**
	 * Read callbacks of its connections running: while we are busy with
	 * its records, its heartbeats wait in the socket, it is not dead
	 */
	u_int reading;

	/**
	 * Last failure of outgoing connections, logged once
	 */
	fail_t failure;

	/**
	 * An authentication failure of incoming connections has been logged
	 */
	bool in_auth_logged;
};

/**
 * A TCP connection, either direction
 */
struct chan_t {

	/**
	 * Link we belong to
	 */
	private_sasync_link_t *link;

	/**
	 * The stream, destroyed with the last reference
	 */
	stream_t *stream;

	/**
	 * Its socket, for connect() results
	 */
	int fd;

	/**
	 * The other end's address
	 */
	host_t *remote;

	/**
	 * Configured peer the connection belongs to, NULL for unknown sources
	 */
	peer_t *peer;

	/**
	 * We connected (records go out), else we accepted (records come in)
	 */
	bool outgoing;

	/**
	 * Handshake state
	 */
	chan_state_t state;

	/**
	 * Our HELLO, and the other side's once received
	 */
	u_char hello[SASYNC_HELLO_LEN];
	u_char theirs[SASYNC_HELLO_LEN];

	/**
	 * AEAD chosen from both HELLOs
	 */
	encryption_algorithm_t alg;

	/**
	 * Frame protection, once both HELLOs are known
	 */
	sasync_crypt_t *crypt;

	/**
	 * Receive buffer (len is its size) and the bytes in it
	 */
	chunk_t rx;
	size_t rx_have;

	/**
	 * Frames being written (tx.len is the buffer's size), the bytes in it
	 * and those of them written
	 */
	chunk_t tx;
	size_t tx_len;
	size_t tx_done;

	/**
	 * Records sealed into tx and not yet written completely, in order
	 * (record_t*)
	 */
	array_t *tx_records;

	/**
	 * A job registers, or the watcher runs, our write callback
	 */
	bool writing;

	/**
	 * Records received, decrypted, not yet delivered, in order (chunk_t*):
	 * a job delivers them, so the read callback stays short. charon's
	 * watcher (5.9.8) serves no other socket while one callback runs and
	 * another socket has data, and spins meanwhile: a bulk resync applied
	 * inside the callback starved every other socket of the daemon.
	 */
	array_t *inbox;

	/**
	 * Bytes of the records in the inbox
	 */
	size_t inbox_bytes;

	/**
	 * A job delivers the inbox
	 */
	bool delivering;

	/**
	 * Reading stopped, the inbox is full: the delivery job goes on
	 */
	bool paused;

	/**
	 * Last progress: state change, bytes written or a frame received
	 * (sasync_link_time_ms())
	 */
	uint64_t progress;

	/**
	 * References: the link's list and queued jobs
	 */
	refcount_t ref;
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
	 * Open connections, chan_t*
	 */
	linked_list_t *chans;

	/**
	 * Shared secrets: the first to connect, any to accept
	 */
	chunk_t keys[SASYNC_KEYS_MAX];

	/**
	 * Source of the keys, asked before each handshake, if any
	 */
	sasync_link_keys_t keys_cb;
	void *keys_data;

	/**
	 * Our node name, NUL padded as in a HELLO
	 */
	char name[SASYNC_NAME_LEN];

	/**
	 * Random id of this link, in our HELLOs
	 */
	u_char instance[SASYNC_INSTANCE_LEN];

	/**
	 * AEADs we offer (SASYNC_AEAD_* bits)
	 */
	uint8_t aeads;

	/**
	 * Last refused connection logged (sasync_link_time_ms()), and those
	 * refused since without a log line
	 */
	uint64_t reject_logged;
	u_int rejects_quiet;

	/**
	 * Counters to update
	 */
	sasync_counters_t *counters;

	/**
	 * Listening socket, watched by lib->watcher
	 */
	int listen_fd;

	/**
	 * Set on destroy
	 */
	bool stopping;

	/**
	 * Jobs delivering a record right now, without the lock; destroy()
	 * waits for them (signalled on done)
	 */
	u_int delivering;
	condvar_t *done;

	/**
	 * References: the owner and queued jobs
	 */
	refcount_t ref;

	/**
	 * Protects peers, connections and callbacks
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

	/**
	 * Callback for heartbeats and dead partners
	 */
	sasync_link_beat_t beat_cb;
	void *beat_cb_data;

	/**
	 * Data our heartbeats carry
	 */
	chunk_t beat_data;

	/**
	 * Heartbeat interval (ms) and heartbeats missed before a partner is dead
	 */
	u_int interval;
	u_int lost;
};

/*
 * Described in header
 */
/** ms sasync_link_time_skip() added */
static uint64_t time_skipped;

uint64_t sasync_link_time_ms()
{
	timeval_t tv;

	time_monotonic(&tv);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 +
		   __atomic_load_n(&time_skipped, __ATOMIC_RELAXED);
}

void sasync_link_time_skip(uint64_t ms)
{
	__atomic_add_fetch(&time_skipped, ms, __ATOMIC_RELAXED);
}

/**
 * Check if the link is being destroyed
 */
static bool stopping(private_sasync_link_t *this)
{
	return __atomic_load_n(&this->stopping, __ATOMIC_ACQUIRE);
}

/**
 * Free a queued record, wiping it: it holds key material
 */
static void record_free(record_t *record)
{
	memwipe(record->data.ptr, record->data.len);
	free(record);
}

/**
 * Destroy a configured peer
 */
static void peer_destroy(peer_t *peer)
{
	free(peer->name);
	peer->queue->destroy_function(peer->queue, (void*)record_free);
	peer->public.peer->destroy(peer->public.peer);
	free(peer);
}

/**
 * Drop a reference to the link, freeing it with the last
 */
static void link_put(private_sasync_link_t *this)
{
	if (ref_put(&this->ref))
	{
		array_destroy_function(this->peers, (void*)peer_destroy, NULL);
		this->chans->destroy(this->chans);
		DESTROY_IF(this->local);
		sasync_secret_clear(this->keys);
		chunk_free(&this->beat_data);
		this->mutex->destroy(this->mutex);
		this->done->destroy(this->done);
		free(this);
	}
}

/**
 * Wipe and free a record of an inbox
 */
static void inbox_free(chunk_t *record)
{
	chunk_clear(record);
	free(record);
}

/**
 * Drop a reference to a connection, closing its stream with the last; never
 * from one of the stream's own callbacks, as that waits for them
 */
static void chan_put(chan_t *chan)
{
	if (ref_put(&chan->ref))
	{
		if (chan->stream)
		{
			chan->stream->destroy(chan->stream);
		}
		DESTROY_IF(chan->crypt);
		DESTROY_IF(chan->remote);
		free(chan->rx.ptr);
		free(chan->tx.ptr);
		array_destroy_function(chan->tx_records, (void*)record_free, NULL);
		array_destroy_function(chan->inbox, (void*)inbox_free, NULL);
		free(chan);
	}
}


/**
 * Cleanup of a job that holds a reference to a connection and the link
 */
static void job_done(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;

	chan_put(chan);
	link_put(this);
}

/**
 * Queue a job for a connection; it holds a reference to both, so it may
 * outlive the connection's closing and the link's destroy()
 */
static void queue_chan_job(chan_t *chan, callback_job_cb_t cb)
{
	ref_get(&chan->ref);
	ref_get(&chan->link->ref);
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create_with_prio(cb, chan, (void*)job_done,
								(callback_job_cancel_t)return_false,
								JOB_PRIO_CRITICAL));
}

/**
 * Job dropping the link's reference to a closed connection
 */
static job_requeue_t release_chan(chan_t *chan)
{
	chan_put(chan);
	return JOB_REQUEUE_NONE;
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
 * Get random bytes from a nonce generator, FALSE if there is none (logged)
 */
static bool get_random(size_t len, u_char *buf)
{
	nonce_gen_t *gen;
	bool ok;

	gen = lib->crypto->create_nonce_gen(lib->crypto);
	if (!gen)
	{
		DBG1(DBG_APP, "sasync: no nonce generator, load the nonce plugin");
		return FALSE;
	}
	ok = gen->get_nonce(gen, len, buf);
	gen->destroy(gen);
	return ok;
}

/**
 * Build our HELLO with a fresh nonce
 */
static bool make_hello(private_sasync_link_t *this,
					   u_char hello[SASYNC_HELLO_LEN])
{
	memcpy(hello, SASYNC_HELLO_MAGIC, 4);
	hello[4] = SASYNC_HELLO_VERSION;
	memcpy(hello + SASYNC_HELLO_INSTANCE, this->instance,
		   SASYNC_INSTANCE_LEN);
	hello[SASYNC_HELLO_AEADS] = this->aeads;
	memcpy(hello + SASYNC_HELLO_NAME, this->name, SASYNC_NAME_LEN);
	return get_random(SASYNC_NONCE_LEN, hello + SASYNC_HELLO_NONCE);
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
 * Check a node name: printable, no spaces, shorter than SASYNC_NAME_LEN, so
 * it is safe in log lines and events
 */
static bool valid_name(char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len && name[i]; i++)
	{
		if (!isgraph((u_char)name[i]))
		{
			return FALSE;
		}
	}
	return i > 0 && i < len;
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
 * Drop the oldest queued records of a peer until the limits hold; each drop
 * is counted and makes the partner dirty: it gets a resync, never a gap
 */
static void enforce_limits(private_sasync_link_t *this, peer_t *peer)
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
				 "records, a resync follows", peer->public.peer);
		}
		peer->dirty = TRUE;
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_DROPPED);
		peer->public.queued--;
		peer->queue_bytes -= record->data.len;
		record_free(record);
	}
}

/**
 * Find the first configured peer with the address of remote (that of an
 * incoming connection), and with its port too if port is set
 */
static peer_t *match_peer(private_sasync_link_t *this, host_t *remote,
						  bool port)
{
	enumerator_t *enumerator;
	peer_t *peer, *found = NULL;

	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (port ? remote->equals(remote, peer->public.peer)
				 : remote->ip_equals(remote, peer->public.peer))
		{
			found = peer;
			break;
		}
	}
	enumerator->destroy(enumerator);
	return found;
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
 * Get the keys from their source, if any, for a handshake about to start;
 * with the lock held. FALSE if we have no key.
 */
static bool refresh_keys(private_sasync_link_t *this)
{
	chunk_t keys[SASYNC_KEYS_MAX] = {};
	int count, i;

	if (this->keys_cb)
	{
		count = this->keys_cb(this->keys_data, keys);
		sasync_secret_clear(this->keys);
		for (i = 0; i < count && i < SASYNC_KEYS_MAX; i++)
		{
			this->keys[i] = keys[i];
		}
	}
	return this->keys[0].len > 0;
}

/**
 * Log why an outgoing connection failed, once per reason until one comes up
 */
static void report_failure(peer_t *peer, fail_t failure)
{
	static char *reasons[] = {
		[FAIL_NONE] = "failed",
		[FAIL_UNREACHABLE] = "unreachable",
		[FAIL_CLOSED] = ("closed the connection during the handshake "
						 "(different secret?)"),
		[FAIL_HELLO] = "sent an invalid handshake",
		[FAIL_AUTH] = "failed authentication (different secret?)",
		[FAIL_IDENTITY] = "is not the node it should be (see ha-sync-error)",
		[FAIL_IO] = "failed the handshake",
		[FAIL_TIMEOUT] = "did not complete the handshake in time",
		[FAIL_NO_KEY] = "not connected: we have no valid key (see above)",
	};

	if (peer->failure != failure)
	{
		DBG1(DBG_APP, "sasync: sync peer %#H %s, retrying",
			 peer->public.peer, reasons[failure]);
	}
	else
	{	/* repeated on every retry */
		DBG2(DBG_APP, "sasync: sync peer %#H %s, retrying",
			 peer->public.peer, reasons[failure]);
	}
	peer->failure = failure;
}

/**
 * Log a failed authentication of an incoming connection, once per peer
 * until one succeeds (unknown sources are always logged)
 */
static void report_auth_failure(chan_t *chan)
{
	if (chan->peer && chan->peer->in_auth_logged)
	{
		DBG2(DBG_APP, "sasync: sync peer %H failed authentication "
			 "(different secret?)", chan->remote);
		return;
	}
	if (chan->peer)
	{
		chan->peer->in_auth_logged = TRUE;
	}
	DBG1(DBG_APP, "sasync: sync peer %H failed authentication "
		 "(different secret?)", chan->remote);
}

/**
 * The configured address of the peer of a connection, else its address
 */
static host_t *chan_host(chan_t *chan)
{
	return chan->peer ? chan->peer->public.peer : chan->remote;
}

/**
 * Close a connection, with the lock held: it leaves the link's list at once
 * and its stream goes in a job, never in one of its own callbacks
 */
static void chan_close(chan_t *chan, fail_t failure)
{
	private_sasync_link_t *this = chan->link;
	peer_t *peer = chan->peer;
	chan_state_t state = chan->state;
	record_t *record;

	if (state == CHAN_CLOSED)
	{
		return;
	}
	chan->state = CHAN_CLOSED;
	this->chans->remove(this->chans, chan, NULL);
	if (array_count(chan->tx_records))
	{	/* not completely written: first again on the next connection, in
		 * their order */
		while (array_remove(chan->tx_records, ARRAY_TAIL, &record))
		{
			peer->queue->insert_first(peer->queue, record);
			peer->public.queued++;
			peer->queue_bytes += record->data.len;
		}
		enforce_limits(this, peer);
		update_oldest(peer);
		update_depth(this);
	}
	chan->tx_len = chan->tx_done = 0;
	if (chan->outgoing)
	{
		peer->out = NULL;
		peer->retry_at = sasync_link_time_ms() + peer->backoff;
		peer->backoff = min(peer->backoff * 2, BACKOFF_MAX);
		if (state == CHAN_UP)
		{
			peer->public.out_up = FALSE;
			if (!stopping(this))
			{
				DBG1(DBG_APP, "sasync: sync link to %#H down, reconnecting",
					 peer->public.peer);
			}
		}
		else if (failure != FAIL_NONE && !stopping(this))
		{
			report_failure(peer, failure);
		}
	}
	else if (state == CHAN_UP && peer)
	{
		peer->public.in_up = --peer->in_conns > 0;
		if (!peer->in_conns && !stopping(this))
		{
			DBG1(DBG_APP, "sasync: sync link from %H down", chan->remote);
		}
	}
	if (!stopping(this))
	{	/* destroy() releases the connections itself */
		queue_chan_job(chan, (callback_job_cb_t)release_chan);
	}
}

/**
 * Read what is available until the buffer holds want bytes; reads up to
 * RX_CHUNK ahead, so a stream of small frames takes few system calls
 */
static status_t rx_need(chan_t *chan, size_t want)
{
	ssize_t n;

	if (chan->rx.len < max(want, RX_CHUNK))
	{
		chan->rx.len = max(want, RX_CHUNK);
		chan->rx.ptr = realloc(chan->rx.ptr, chan->rx.len);
	}
	while (chan->rx_have < want)
	{
		n = chan->stream->read(chan->stream, chan->rx.ptr + chan->rx_have,
							   chan->rx.len - chan->rx_have, FALSE);
		if (n > 0)
		{
			chan->rx_have += n;
			continue;
		}
		return n < 0 && errno == EWOULDBLOCK ? NEED_MORE : FAILED;
	}
	return SUCCESS;
}

/**
 * Consume the first len bytes of the buffer
 */
static void rx_consume(chan_t *chan, size_t len)
{
	chan->rx_have -= len;
	memmove(chan->rx.ptr, chan->rx.ptr + len, chan->rx_have);
}

/**
 * Read a complete frame of at most max bytes, at the front of the buffer
 * until rx_consume(). INVALID_ARG for an announced length beyond max.
 */
static status_t rx_frame(chan_t *chan, size_t max, chunk_t *frame)
{
	status_t status;
	size_t len;

	status = rx_need(chan, 4);
	if (status != SUCCESS)
	{
		return status;
	}
	len = 4 + (size_t)untoh32(chan->rx.ptr);
	if (len > max)
	{
		return INVALID_ARG;
	}
	status = rx_need(chan, len);
	if (status == SUCCESS)
	{
		*frame = chunk_create(chan->rx.ptr, len);
	}
	return status;
}

/**
 * Seal a frame and write it whole; only for the few bytes of the handshake,
 * which the empty send buffer of a new connection takes at once
 */
static bool write_frame(chan_t *chan, uint8_t type, chunk_t payload)
{
	chunk_t frame;
	bool ok;

	if (!chan->crypt->seal(chan->crypt, type, payload, &frame))
	{
		return FALSE;
	}
	ok = chan->stream->write_all(chan->stream, frame.ptr, frame.len);
	chunk_free(&frame);
	return ok;
}

/**
 * Refuse a connection before its authentication, with the lock held:
 * counted always, logged and raised once per REJECT_LOG_INTERVAL, so a flood
 * floods nothing else
 */
static void reject(private_sasync_link_t *this, host_t *remote, char *why)
{
	uint64_t now = sasync_link_time_ms();
	char reason[160];

	if (this->reject_logged &&
		now - this->reject_logged < REJECT_LOG_INTERVAL)
	{
		this->rejects_quiet++;
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_REJECTED);
		DBG2(DBG_APP, "sasync: refused sync connection from %H: %s", remote,
			 why);
		return;
	}
	DBG1(DBG_APP, "sasync: refused sync connection from %H: %s (%u more "
		 "refused without a log line before)", remote, why,
		 this->rejects_quiet);
	this->reject_logged = now;
	this->rejects_quiet = 0;
	snprintf(reason, sizeof(reason), "refused connection: %s", why);
	sync_error(this, remote, SASYNC_CTR_SYNC_REJECTED, reason);
}

/**
 * The configured peer an incoming connection from remote belongs to, given
 * the node name it claims: the one of that name at that address, else the
 * first at that address without a configured name; with the lock held
 */
static peer_t *named_peer(private_sasync_link_t *this, host_t *remote,
						  char *name)
{
	enumerator_t *enumerator;
	peer_t *peer, *found = NULL, *unnamed = NULL;

	enumerator = array_create_enumerator(this->peers);
	while (!found && enumerator->enumerate(enumerator, &peer))
	{
		if (remote->ip_equals(remote, peer->public.peer))
		{
			if (peer->name && streq(peer->name, name))
			{
				found = peer;
			}
			else if (!peer->name && !unnamed)
			{
				unnamed = peer;
			}
		}
	}
	enumerator->destroy(enumerator);
	return found ?: unnamed;
}

/**
 * Check the identity a received HELLO claims and choose the AEAD, with the
 * lock held; NULL if fine, else why the connection is refused. The claims
 * are authenticated by the AUTH frames, whose keys depend on both HELLOs.
 */
static char *check_identity(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	u_char *theirs = chan->theirs;
	char *name = (char*)theirs + SASYNC_HELLO_NAME;

	if (memeq(theirs + SASYNC_HELLO_INSTANCE, this->instance,
			  SASYNC_INSTANCE_LEN))
	{
		return "it is this node itself (a reflected connection)";
	}
	if (!valid_name(name, SASYNC_NAME_LEN))
	{
		return "invalid node name";
	}
	if (streq(name, this->name))
	{
		return "it claims this node's own name (give each node its own "
			   "node_id)";
	}
	if (!chan->outgoing)
	{	/* several partners may share an address, their names tell */
		chan->peer = named_peer(this, chan->remote, name);
	}
	if (!chan->peer || (chan->peer->name && !streq(name, chan->peer->name)))
	{
		return "not a node configured for that address";
	}
	chan->alg = sasync_crypt_choose(this->aeads, theirs[SASYNC_HELLO_AEADS]);
	if (chan->alg == ENCR_UNDEFINED)
	{
		return "no AEAD in common";
	}
	return NULL;
}

/**
 * Refuse a connection whose HELLO claims the wrong identity, with the lock
 * held; an outgoing one is reported once per peer until it succeeds
 */
static void refuse_identity(chan_t *chan, char *why)
{
	private_sasync_link_t *this = chan->link;

	if (!chan->outgoing)
	{
		reject(this, chan->remote, why);
	}
	else if (chan->peer->failure != FAIL_IDENTITY)
	{
		sync_error(this, chan_host(chan), SASYNC_CTR_SYNC_REJECTED, why);
	}
	else
	{
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_REJECTED);
	}
	chan_close(chan, FAIL_IDENTITY);
}

/**
 * Handle the other side's HELLO: answer it (accepting) or send our AUTH
 * (connecting)
 */
static bool got_hello(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	char *why;

	memcpy(chan->theirs, chan->rx.ptr, SASYNC_HELLO_LEN);
	rx_consume(chan, SASYNC_HELLO_LEN);
	if (!check_hello(chan->theirs))
	{
		if (!chan->outgoing)
		{
			DBG1(DBG_APP, "sasync: invalid handshake from %#H, closing",
				 chan->remote);
		}
		sync_error(this, chan_host(chan), SASYNC_CTR_SYNC_RX_LEN_BAD,
				   "invalid handshake");
		chan_close(chan, FAIL_HELLO);
		return FALSE;
	}
	why = check_identity(chan);
	if (why)
	{
		refuse_identity(chan, why);
		return FALSE;
	}
	if (!chan->outgoing)
	{	/* the keys wait for the AUTH frame: it tells which key it uses */
		if (!chan->stream->write_all(chan->stream, chan->hello,
									 SASYNC_HELLO_LEN))
		{
			chan_close(chan, FAIL_IO);
			return FALSE;
		}
		chan->state = CHAN_AUTH;
		return TRUE;
	}
	if (!this->keys[0].len)
	{	/* the source had none for a handshake since we connected */
		chan_close(chan, FAIL_NO_KEY);
		return FALSE;
	}
	chan->crypt = sasync_crypt_create(chan->alg, this->keys[0],
						chunk_create(chan->hello, SASYNC_HELLO_LEN),
						chunk_create(chan->theirs, SASYNC_HELLO_LEN), TRUE);
	if (!chan->crypt ||
		!write_frame(chan, SASYNC_FRAME_AUTH, chunk_from_str(SASYNC_AUTH_I)))
	{
		chan_close(chan, FAIL_IO);
		return FALSE;
	}
	chan->state = CHAN_AUTH;
	return TRUE;
}

/**
 * Open the connector's AUTH frame with each of our keys in turn, keeping the
 * frame protection of the one that verifies, with the lock held
 */
static sasync_open_t accept_auth(chan_t *chan, chunk_t frame)
{
	private_sasync_link_t *this = chan->link;
	sasync_open_t result = SASYNC_OPEN_AUTH_FAILED;
	int i;

	for (i = 0; i < SASYNC_KEYS_MAX && this->keys[i].len &&
				result == SASYNC_OPEN_AUTH_FAILED; i++)
	{
		chan->crypt = sasync_crypt_create(chan->alg, this->keys[i],
						chunk_create(chan->theirs, SASYNC_HELLO_LEN),
						chunk_create(chan->hello, SASYNC_HELLO_LEN), FALSE);
		if (!chan->crypt)
		{
			return SASYNC_OPEN_BAD_VERSION;
		}
		result = open_auth(chan->crypt, frame, SASYNC_AUTH_I);
		if (result != SASYNC_OPEN_OK)
		{
			chan->crypt->destroy(chan->crypt);
			chan->crypt = NULL;
		}
	}
	return result;
}

/**
 * Mark a connection authenticated, with the lock held
 */
static void chan_up(chan_t *chan)
{
	peer_t *peer = chan->peer;

	chan->state = CHAN_UP;
	chan->progress = sasync_link_time_ms();
	if (chan->outgoing)
	{	/* the up callback resyncs it anyway */
		peer->dirty = FALSE;
		peer->failure = FAIL_NONE;
		peer->backoff = BACKOFF_MIN;
		peer->public.out_up = TRUE;
		peer->heartbeat_due = TRUE;
		DBG1(DBG_APP, "sasync: sync link to %#H up", peer->public.peer);
		return;
	}
	if (peer && !peer->out && peer->retry_at > chan->progress)
	{	/* the partner is back (e.g. it restarted): our connection to it,
		 * which carries our records, need not wait for the backoff */
		peer->retry_at = chan->progress;
		peer->backoff = BACKOFF_MIN;
		DBG1(DBG_APP, "sasync: %H connected to us, connecting back now",
			 chan->remote);
	}
	if (!peer || peer->in_conns++ == 0)
	{
		if (peer)
		{
			peer->in_auth_logged = FALSE;
			peer->public.in_up = TRUE;
		}
		DBG1(DBG_APP, "sasync: sync link from %H up", chan->remote);
	}
}

/**
 * Handle the other side's AUTH frame
 */
static bool got_auth(chan_t *chan, chunk_t frame)
{
	sasync_open_t result;

	result = chan->outgoing ? open_auth(chan->crypt, frame, SASYNC_AUTH_R)
							: accept_auth(chan, frame);
	if (result != SASYNC_OPEN_OK)
	{
		count_rejected(chan->link, chan_host(chan), result, TRUE);
		if (!chan->outgoing && result == SASYNC_OPEN_AUTH_FAILED)
		{
			report_auth_failure(chan);
		}
		else if (!chan->outgoing)
		{
			DBG1(DBG_APP, "sasync: invalid handshake from %#H, closing",
				 chan->remote);
		}
		chan_close(chan, result == SASYNC_OPEN_AUTH_FAILED ? FAIL_AUTH
														   : FAIL_HELLO);
		return FALSE;
	}
	if (!chan->outgoing &&
		!write_frame(chan, SASYNC_FRAME_AUTH, chunk_from_str(SASYNC_AUTH_R)))
	{
		chan_close(chan, FAIL_IO);
		return FALSE;
	}
	chan_up(chan);
	return TRUE;
}

/**
 * Make room for len more bytes in tx
 */
static u_char *tx_reserve(chan_t *chan, size_t len)
{
	if (chan->tx.len < chan->tx_len + len)
	{
		chan->tx.len = max(chan->tx_len + len, TX_BATCH);
		chan->tx.ptr = realloc(chan->tx.ptr, chan->tx.len);
	}
	return chan->tx.ptr + chan->tx_len;
}

/**
 * Seal a due heartbeat into the empty tx
 */
static bool seal_heartbeat(chan_t *chan)
{
	u_char beat[SASYNC_HEARTBEAT_LEN + SASYNC_BEAT_DATA_MAX];
	chunk_t payload, data = chan->link->beat_data;
	u_char *out;

	chan->peer->heartbeat_due = FALSE;
	htoun64(beat, sasync_now_ms());
	htoun64(beat + SASYNC_HEARTBEAT_ACKED, chan->peer->taken);
	memcpy(beat + SASYNC_HEARTBEAT_LEN, data.ptr, data.len);
	payload = chunk_create(beat, SASYNC_HEARTBEAT_LEN + data.len);
	out = tx_reserve(chan, chan->crypt->get_overhead(chan->crypt) +
					 payload.len);
	if (!chan->crypt->seal_into(chan->crypt, SASYNC_FRAME_HEARTBEAT, payload,
								out))
	{
		return FALSE;
	}
	chan->tx_len += chan->crypt->get_overhead(chan->crypt) + payload.len;
	return TRUE;
}

/**
 * Fill the empty tx with what to write next: a due heartbeat, then the
 * oldest queued records, as many as fit into TX_BATCH bytes (one at least).
 * FALSE if there is nothing to write or the first frame could not be sealed.
 */
static bool fill_tx(chan_t *chan)
{
	peer_t *peer = chan->peer;
	size_t overhead = chan->crypt->get_overhead(chan->crypt);
	record_t *record;
	u_char *out;

	chan->tx_len = chan->tx_done = 0;
	if (peer->heartbeat_due && !seal_heartbeat(chan))
	{
		return FALSE;
	}
	while (chan->tx_len < TX_BATCH &&
		   peer->queue->remove_first(peer->queue, (void**)&record) == SUCCESS)
	{
		peer->public.queued--;
		peer->queue_bytes -= record->data.len;
		out = tx_reserve(chan, overhead + record->data.len);
		if (!chan->crypt->seal_into(chan->crypt, SASYNC_FRAME_DATA,
									record->data, out))
		{	/* goes back with the connection */
			array_insert(chan->tx_records, ARRAY_TAIL, record);
			chan->tx_len = chan->tx_done = 0;
			break;
		}
		chan->tx_len += overhead + record->data.len;
		record->tx_end = chan->tx_len;
		array_insert(chan->tx_records, ARRAY_TAIL, record);
	}
	update_depth(chan->link);
	return chan->tx_len > 0;
}

/**
 * A partner to resync, in a job
 */
typedef struct {
	private_sasync_link_t *link;
	host_t *host;
} resync_job_t;

static void resync_job_destroy(resync_job_t *job)
{
	job->host->destroy(job->host);
	link_put(job->link);
	free(job);
}

/**
 * Job running the up callback for a partner that needs a resync, without
 * the lock, as the callback sends records
 */
static job_requeue_t resync_peer(resync_job_t *job)
{
	private_sasync_link_t *this = job->link;
	sasync_link_up_t cb;
	void *data;

	this->mutex->lock(this->mutex);
	cb = stopping(this) ? NULL : this->up_cb;
	data = this->up_data;
	this->mutex->unlock(this->mutex);
	if (cb)
	{
		cb(data, job->host);
	}
	return JOB_REQUEUE_NONE;
}

/**
 * Have a partner resynced, with the lock held
 */
static void queue_resync(private_sasync_link_t *this, peer_t *peer)
{
	resync_job_t *job;

	INIT(job,
		.link = this,
		.host = peer->public.peer->clone(peer->public.peer),
	);
	ref_get(&this->ref);
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create((callback_job_cb_t)resync_peer, job,
								(void*)resync_job_destroy, NULL));
}

/**
 * Bytes of tx were written: the records whose frames are complete are sent
 */
static void tx_progress(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	peer_t *peer = chan->peer;
	record_t *record;
	bool sent = FALSE;

	while (array_get(chan->tx_records, ARRAY_HEAD, &record) &&
		   record->tx_end <= chan->tx_done)
	{
		array_remove(chan->tx_records, ARRAY_HEAD, NULL);
		record_free(record);
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_TX);
		sent = TRUE;
	}
	if (!sent)
	{
		return;
	}
	update_oldest(peer);
	/* report drops once the queue has room again */
	if (peer->dropped && peer->public.queued < SASYNC_QUEUE_MAX)
	{
		DBG1(DBG_APP, "sasync: %u records for %#H were dropped from the "
			 "full send queue", peer->dropped, peer->public.peer);
		peer->dropped = 0;
	}
	if (peer->dirty && !peer->public.queued &&
		!array_count(chan->tx_records))
	{	/* drained: what was dropped comes again, in a resync */
		peer->dirty = FALSE;
		DBG1(DBG_APP, "sasync: send queue to %#H drained after drops, "
			 "resyncing it", peer->public.peer);
		queue_resync(this, peer);
	}
}

/**
 * Write what an outgoing connection has to send without blocking, with the
 * lock held. TRUE if the socket is full and the rest waits for it.
 */
static bool pump(chan_t *chan)
{
	ssize_t n;

	while (chan->state == CHAN_UP && !stopping(chan->link))
	{
		if (chan->tx_done == chan->tx_len && !fill_tx(chan))
		{
			if (array_count(chan->tx_records))
			{	/* a record could not be sealed */
				chan_close(chan, FAIL_IO);
			}
			return FALSE;
		}
		n = chan->stream->write(chan->stream, chan->tx.ptr + chan->tx_done,
								chan->tx_len - chan->tx_done, FALSE);
		if (n < 0)
		{
			if (errno == EWOULDBLOCK)
			{
				return TRUE;
			}
			chan_close(chan, FAIL_IO);
			return FALSE;
		}
		chan->tx_done += n;
		chan->progress = sasync_link_time_ms();
		tx_progress(chan);
	}
	return FALSE;
}

/**
 * Write callback of a full socket: go on writing, until it is full again
 */
CALLBACK(on_writable, bool,
	chan_t *chan, stream_t *stream)
{
	private_sasync_link_t *this = chan->link;
	bool keep;

	this->mutex->lock(this->mutex);
	keep = pump(chan);
	chan->writing = keep;
	this->mutex->unlock(this->mutex);
	return keep;
}

/**
 * Job registering the write callback: registering waits for the stream's
 * running callbacks, so it is never done in one of them nor with the lock
 */
static job_requeue_t enable_writer(chan_t *chan)
{
	if (chan->state != CHAN_CLOSED)
	{
		chan->stream->on_write(chan->stream, on_writable, chan);
	}
	return JOB_REQUEUE_NONE;
}

/**
 * Write what an outgoing connection has to send, with the lock held, and
 * wait for the socket if it is full
 */
static void flush(chan_t *chan)
{
	if (!chan->writing && pump(chan))
	{
		chan->writing = TRUE;
		queue_chan_job(chan, (callback_job_cb_t)enable_writer);
	}
}

static job_requeue_t resume_reading(chan_t *chan);

/**
 * Hand one record to the receiver, without the lock; FALSE if the link
 * stops. The partner is busy with us, not dead, while it runs.
 */
static bool deliver(private_sasync_link_t *this, chan_t *chan,
					chunk_t payload)
{
	sasync_link_recv_t cb;
	void *data;

	this->mutex->lock(this->mutex);
	if (stopping(this))
	{
		this->mutex->unlock(this->mutex);
		return FALSE;
	}
	if (chan->peer)
	{
		chan->peer->public.last_rx = time_monotonic(NULL);
		chan->peer->taken++;
		chan->peer->reading++;
	}
	chan->progress = sasync_link_time_ms();
	cb = this->recv_cb;
	data = this->recv_data;
	this->delivering++;
	this->mutex->unlock(this->mutex);

	this->counters->inc(this->counters, SASYNC_CTR_SYNC_RX);
	if (cb)
	{
		cb(data, chan_host(chan), payload);
	}

	this->mutex->lock(this->mutex);
	if (chan->peer)
	{
		chan->peer->reading--;
	}
	this->delivering--;
	this->done->broadcast(this->done);
	this->mutex->unlock(this->mutex);
	return TRUE;
}

/**
 * Job delivering a connection's records in their order, one at a time;
 * it restarts reading once half of a full inbox is delivered
 */
static job_requeue_t deliver_inbox(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	chunk_t *record;

	/* also once the connection closed: the partner wrote them, so they
	 * count as sent there (one that sends a last record and goes, too) */
	this->mutex->lock(this->mutex);
	while (array_remove(chan->inbox, ARRAY_HEAD, &record))
	{
		chan->inbox_bytes -= record->len;
		if (chan->paused && chan->state == CHAN_UP &&
			array_count(chan->inbox) <= INBOX_MAX / 2 &&
			chan->inbox_bytes <= INBOX_MAX_BYTES / 2)
		{
			chan->paused = FALSE;
			queue_chan_job(chan, (callback_job_cb_t)resume_reading);
		}
		this->mutex->unlock(this->mutex);
		if (!deliver(this, chan, *record))
		{
			inbox_free(record);
			this->mutex->lock(this->mutex);
			break;
		}
		inbox_free(record);
		this->mutex->lock(this->mutex);
	}
	chan->delivering = FALSE;
	this->mutex->unlock(this->mutex);
	return JOB_REQUEUE_NONE;
}

/**
 * Queue a received record for delivery, taking it over; with the lock held
 */
static void inbox_add(chan_t *chan, chunk_t plain)
{
	chunk_t *record;

	record = malloc_thing(chunk_t);
	*record = plain;
	array_insert_create(&chan->inbox, ARRAY_TAIL, record);
	chan->inbox_bytes += plain.len;
	if (!chan->delivering)
	{
		chan->delivering = TRUE;
		queue_chan_job(chan, (callback_job_cb_t)deliver_inbox);
	}
}

/**
 * The partner acknowledged records in a heartbeat: new ones are progress of
 * our connection to it, even if we could write nothing for long. A standby
 * applying a bulk resync slowly reads slowly, and TCP lets us write again
 * only once it consumed a good part of its buffers: minutes at 10,000 SAs.
 * With the lock held.
 */
static void acked(peer_t *peer, uint64_t count)
{
	if (count != peer->acked)
	{
		peer->acked = count;
		if (peer->out)
		{
			peer->out->progress = peer->last_seen;
		}
	}
}

/**
 * Note an authentic frame from a partner, with the lock held: it is alive.
 * Heartbeats also go to the beat callback.
 */
static void seen(chan_t *chan, bool beat, chunk_t payload)
{
	private_sasync_link_t *this = chan->link;
	peer_t *peer = chan->peer;
	uint64_t sent, now = sasync_now_ms();

	if (!peer)
	{	/* an unconfigured source has no state to update */
		return;
	}
	peer->last_seen = sasync_link_time_ms();
	if (!beat)
	{
		return;
	}
	sent = untoh64(payload.ptr);
	acked(peer, untoh64(payload.ptr + SASYNC_HEARTBEAT_ACKED));
	peer->public.last_heartbeat = peer->last_seen;
	peer->public.heartbeat_lag = now > sent ? min(now - sent, UINT32_MAX) : 0;
	if (!peer->public.alive)
	{
		DBG1(DBG_APP, "sasync: heartbeats from %#H", peer->public.peer);
	}
	peer->public.alive = TRUE;
	if (this->beat_cb)
	{
		this->beat_cb(this->beat_cb_data, peer->public.peer, TRUE,
					  chunk_skip(payload, SASYNC_HEARTBEAT_LEN));
	}
}

/**
 * Declare partners dead that sent nothing for too long, with the lock held
 */
static void check_alive(private_sasync_link_t *this, uint64_t now)
{
	enumerator_t *enumerator;
	peer_t *peer;

	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (peer->reading)
		{
			peer->last_seen = now;
		}
		if (peer->public.alive &&
			now - peer->last_seen > (uint64_t)this->interval * this->lost)
		{
			peer->public.alive = FALSE;
			this->counters->inc(this->counters, SASYNC_CTR_HEARTBEAT_LOST);
			DBG1(DBG_APP, "sasync: no heartbeat from %#H for %u ms, "
				 "declared dead", peer->public.peer, now - peer->last_seen);
			if (this->beat_cb)
			{
				this->beat_cb(this->beat_cb_data, peer->public.peer, FALSE,
							  chunk_empty);
			}
		}
	}
	enumerator->destroy(enumerator);
}

/**
 * Handle a frame on an authenticated incoming connection, with the lock
 * held; the lock is released to deliver a record
 */
static bool got_frame(chan_t *chan, chunk_t frame)
{
	private_sasync_link_t *this = chan->link;
	sasync_open_t result;
	chunk_t plain;
	uint8_t type;

	result = chan->crypt->open(chan->crypt, frame, &type, &plain);
	if (result == SASYNC_OPEN_OK && type == SASYNC_FRAME_HEARTBEAT &&
		plain.len >= SASYNC_HEARTBEAT_LEN &&
		plain.len <= SASYNC_HEARTBEAT_LEN + SASYNC_BEAT_DATA_MAX)
	{
		seen(chan, TRUE, plain);
		chunk_clear(&plain);
		return TRUE;
	}
	if (result == SASYNC_OPEN_OK && type != SASYNC_FRAME_DATA)
	{
		chunk_clear(&plain);
		result = SASYNC_OPEN_BAD_LEN;
	}
	if (result != SASYNC_OPEN_OK)
	{
		DBG1(DBG_APP, "sasync: sync peer %H sent a %s frame, closing",
			 chan->remote,
			 result == SASYNC_OPEN_AUTH_FAILED ? "forged or corrupt" :
			 result == SASYNC_OPEN_REPLAY ? "replayed or reordered" :
			 "malformed");
		count_rejected(this, chan_host(chan), result, FALSE);
		chan_close(chan, FAIL_NONE);
		return FALSE;
	}
	seen(chan, FALSE, plain);
	inbox_add(chan, plain);
	return TRUE;
}

/**
 * Take one step on readable data, with the lock held: FALSE to stop
 * reading, as nothing more is available or the connection is closed
 */
static bool read_step(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	status_t status;
	chunk_t frame;
	bool ok;

	switch (chan->state)
	{
		case CHAN_CONNECTING:
		case CHAN_HELLO:
			status = rx_need(chan, SASYNC_HELLO_LEN);
			if (status == SUCCESS)
			{
				return got_hello(chan);
			}
			break;
		case CHAN_AUTH:
			status = rx_frame(chan, AUTH_FRAME_MAX, &frame);
			if (status == SUCCESS)
			{
				ok = got_auth(chan, frame);
				rx_consume(chan, frame.len);
				return ok;
			}
			break;
		case CHAN_UP:
			if (chan->outgoing)
			{	/* the acceptor sends nothing after its AUTH */
				status = rx_need(chan, 1);
				if (status == SUCCESS)
				{
					DBG1(DBG_APP, "sasync: sync peer %#H sent unexpected "
						 "data, reconnecting", chan->peer->public.peer);
					status = FAILED;
				}
				break;
			}
			status = rx_frame(chan, SASYNC_MAX_FRAME, &frame);
			if (status == SUCCESS)
			{	/* only this callback touches the buffer, also while
				 * got_frame() delivers without the lock */
				chan->progress = sasync_link_time_ms();
				ok = got_frame(chan, frame);
				rx_consume(chan, frame.len);
				return ok;
			}
			if (status == INVALID_ARG)
			{
				DBG1(DBG_APP, "sasync: sync peer %H announced a frame longer "
					 "than %d bytes, closing", chan->remote, SASYNC_MAX_FRAME);
				sync_error(this, chan_host(chan), SASYNC_CTR_SYNC_RX_LEN_BAD,
						   "frame too long");
			}
			break;
		case CHAN_CLOSED:
		default:
			return FALSE;
	}
	if (status == INVALID_ARG && chan->state == CHAN_AUTH)
	{
		if (!chan->outgoing)
		{
			DBG1(DBG_APP, "sasync: invalid handshake from %#H, closing",
				 chan->remote);
		}
		sync_error(this, chan_host(chan), SASYNC_CTR_SYNC_RX_LEN_BAD,
				   "invalid handshake");
		chan_close(chan, FAIL_HELLO);
	}
	else if (status != NEED_MORE)
	{
		if (!chan->outgoing && chan->state == CHAN_HELLO)
		{	/* port scanners and such, nothing to worry about */
			DBG2(DBG_APP, "sasync: connection from %#H closed before "
				 "handshake", chan->remote);
		}
		chan_close(chan, chan->state == CHAN_CONNECTING ? FAIL_UNREACHABLE :
						 chan->state == CHAN_AUTH ? FAIL_CLOSED : FAIL_IO);
	}
	return FALSE;
}

/**
 * Run the up callback of a connection that just got authenticated, then
 * send its queue: records the callback sends come after those queued
 */
static void announce_up(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	sasync_link_up_t cb;
	void *data;

	cb = this->up_cb;
	data = this->up_data;
	this->mutex->unlock(this->mutex);
	if (cb)
	{
		cb(data, chan->peer->public.peer);
	}
	this->mutex->lock(this->mutex);
	flush(chan);
}

/**
 * Read and handle what a connection received, until the socket is empty or
 * the inbox is full; with the lock held. FALSE if reading stops: closed, or
 * paused until the delivery job made room.
 */
static bool read_all(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	chan_state_t before;
	bool more = TRUE;

	if (chan->peer)
	{
		chan->peer->reading++;
	}
	while (more && !stopping(this))
	{
		if (array_count(chan->inbox) >= INBOX_MAX ||
			chan->inbox_bytes >= INBOX_MAX_BYTES)
		{	/* TCP holds the rest back meanwhile */
			chan->paused = TRUE;
			break;
		}
		before = chan->state;
		more = read_step(chan);
		if (chan->outgoing && before == CHAN_AUTH && chan->state == CHAN_UP)
		{
			announce_up(chan);
		}
	}
	if (chan->peer)
	{
		chan->peer->reading--;
	}
	return chan->state != CHAN_CLOSED && !stopping(this) && !chan->paused;
}

/**
 * Read callback of every connection: handshake, records, heartbeats
 */
CALLBACK(on_readable, bool,
	chan_t *chan, stream_t *stream)
{
	private_sasync_link_t *this = chan->link;
	bool more;

	this->mutex->lock(this->mutex);
	more = read_all(chan);
	this->mutex->unlock(this->mutex);
	return more;
}

/**
 * Job reading again once a full inbox drained to the half: first what the
 * buffer still holds (no poll() reports it), then the socket is watched
 * again. Registering waits for the read callback that paused, if it did not
 * return yet.
 */
static job_requeue_t resume_reading(chan_t *chan)
{
	private_sasync_link_t *this = chan->link;
	bool more;

	this->mutex->lock(this->mutex);
	more = read_all(chan);
	this->mutex->unlock(this->mutex);
	if (more)
	{
		chan->stream->on_read(chan->stream, on_readable, chan);
	}
	return JOB_REQUEUE_NONE;
}

/**
 * Write callback of a connect() in progress: send our HELLO
 */
CALLBACK(on_connected, bool,
	chan_t *chan, stream_t *stream)
{
	private_sasync_link_t *this = chan->link;
	socklen_t len = sizeof(int);
	int err = 0;

	this->mutex->lock(this->mutex);
	if (chan->state == CHAN_CONNECTING)
	{
		if (getsockopt(chan->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		{
			chan_close(chan, FAIL_UNREACHABLE);
		}
		else if (fcntl(chan->fd, F_SETFL,
					   fcntl(chan->fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
				 !stream->write_all(stream, chan->hello, sizeof(chan->hello)))
		{	/* blocking from now on: the stream does non-blocking I/O per
			 * call, and write_all() of the handshake needs blocking */
			chan_close(chan, FAIL_IO);
		}
		else
		{
			chan->state = CHAN_HELLO;
			chan->progress = sasync_link_time_ms();
		}
	}
	this->mutex->unlock(this->mutex);
	return FALSE;
}

/**
 * Create a connection around a socket, listed, with a second reference for
 * the caller to register the stream's callbacks (without the lock) and drop
 */
static chan_t *chan_create(private_sasync_link_t *this, int fd, host_t *remote,
						   peer_t *peer, bool outgoing)
{
	chan_t *chan;

	INIT(chan,
		.link = this,
		.fd = fd,
		.remote = remote,
		.peer = peer,
		.outgoing = outgoing,
		.state = outgoing ? CHAN_CONNECTING : CHAN_HELLO,
		.progress = sasync_link_time_ms(),
		.tx_records = array_create(0, 0),
		.ref = 2,
	);
	chan->stream = stream_create_from_fd(fd);
	if (!chan->stream || !make_hello(this, chan->hello))
	{
		if (!chan->stream)
		{
			close(fd);
		}
		chan->ref = 1;
		chan_put(chan);
		return NULL;
	}
	this->chans->insert_last(this->chans, chan);
	return chan;
}

/**
 * Start connecting to a peer, with the lock held
 */
static chan_t *connect_peer(private_sasync_link_t *this, peer_t *peer)
{
	fail_t failure = FAIL_NO_KEY;
	host_t *host = peer->public.peer;
	int fd = -1;

	if (refresh_keys(this))
	{
		failure = FAIL_UNREACHABLE;
		fd = socket(host->get_family(host),
					SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd >= 0)
	{
		set_sockopts(fd);
		if (connect(fd, host->get_sockaddr(host),
					*host->get_sockaddr_len(host)) == 0 || errno == EINPROGRESS)
		{
			peer->out = chan_create(this, fd, host->clone(host), peer, TRUE);
			if (peer->out)
			{
				return peer->out;
			}
		}
		else
		{
			close(fd);
		}
	}
	peer->retry_at = sasync_link_time_ms() + peer->backoff;
	peer->backoff = min(peer->backoff * 2, BACKOFF_MAX);
	report_failure(peer, failure);
	return NULL;
}

/**
 * Close connections whose handshake or writes stall, or which received
 * nothing, not even a heartbeat, for too long; with the lock held
 */
static void check_stalls(private_sasync_link_t *this, uint64_t now)
{
	enumerator_t *enumerator;
	array_t *stalled = NULL;
	chan_t *chan;
	fail_t failure;

	enumerator = this->chans->create_enumerator(this->chans);
	while (enumerator->enumerate(enumerator, &chan))
	{
		if (chan->delivering)
		{	/* we are busy with its records: no stall, on either side */
			chan->progress = now;
			if (chan->peer)
			{
				chan->peer->taken++;
			}
		}
		if (now - chan->progress > (chan->state < CHAN_UP ? HANDSHAKE_TIMEOUT
														  : STALL_TIMEOUT) &&
			(chan->state < CHAN_UP || !chan->outgoing ||
			 chan->tx_done < chan->tx_len))
		{
			array_insert_create(&stalled, ARRAY_TAIL, chan);
		}
	}
	enumerator->destroy(enumerator);
	while (array_remove(stalled, ARRAY_HEAD, &chan))
	{
		DBG1(DBG_APP, "sasync: sync connection with %#H stalled, closing",
			 chan->remote);
		if (chan->state == CHAN_UP)
		{	/* a handshake timeout is counted and logged as a failure */
			this->counters->inc(this->counters, SASYNC_CTR_SYNC_STALLED);
		}
		failure = chan->state < CHAN_UP ? FAIL_TIMEOUT : FAIL_IO;
		chan_close(chan, failure);
	}
	array_destroy(stalled);
}

/**
 * Register the callbacks of a new outgoing connection, without the lock
 */
static void watch_connect(chan_t *chan)
{
	chan->stream->on_write(chan->stream, on_connected, chan);
	chan->stream->on_read(chan->stream, on_readable, chan);
	chan_put(chan);
}

static void schedule_tick(private_sasync_link_t *this, uint32_t ms);

/**
 * Send a heartbeat to a partner now, ahead of its queued records, if our
 * connection to it is up; with the lock held. FALSE if it is not.
 */
static bool beat_now(peer_t *peer)
{
	if (!peer->out || peer->out->state != CHAN_UP)
	{
		return FALSE;
	}
	peer->heartbeat_due = TRUE;
	flush(peer->out);
	return TRUE;
}

/**
 * Job run every heartbeat interval: heartbeats, reconnects, stalls
 */
static job_requeue_t tick(private_sasync_link_t *this)
{
	enumerator_t *enumerator;
	array_t *started = NULL;
	uint64_t now;
	peer_t *peer;
	chan_t *chan;

	this->mutex->lock(this->mutex);
	if (stopping(this))
	{	/* checked with the lock, so no connection starts after destroy() */
		this->mutex->unlock(this->mutex);
		return JOB_REQUEUE_NONE;
	}
	/* taken with the lock: connections may have made progress meanwhile */
	now = sasync_link_time_ms();
	check_stalls(this, now);
	check_alive(this, now);
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (beat_now(peer))
		{
			continue;
		}
		if (!peer->out && now >= peer->retry_at)
		{
			chan = connect_peer(this, peer);
			if (chan)
			{
				array_insert_create(&started, ARRAY_TAIL, chan);
			}
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	array_destroy_function(started, (void*)watch_connect, NULL);
	schedule_tick(this, this->interval);
	return JOB_REQUEUE_NONE;
}

/**
 * Run the tick after ms (now if 0); the job holds a reference to the link
 */
static void schedule_tick(private_sasync_link_t *this, uint32_t ms)
{
	job_t *job;

	ref_get(&this->ref);
	job = (job_t*)callback_job_create_with_prio((callback_job_cb_t)tick,
							this, (void*)link_put,
							(callback_job_cancel_t)return_false,
							JOB_PRIO_CRITICAL);
	if (ms)
	{
		lib->scheduler->schedule_job_ms(lib->scheduler, job, ms);
	}
	else
	{
		lib->processor->queue_job(lib->processor, job);
	}
}

/**
 * Make room for another connection from the address of a configured peer,
 * with the lock held: if its slots are taken, the oldest connection of that
 * address still in its handshake goes. NULL if there is room, else why not.
 */
static char *make_room(private_sasync_link_t *this, host_t *remote)
{
	enumerator_t *enumerator;
	chan_t *chan, *oldest = NULL;
	u_int count = 0;

	enumerator = this->chans->create_enumerator(this->chans);
	while (enumerator->enumerate(enumerator, &chan))
	{
		if (!chan->outgoing && remote->ip_equals(remote, chan->remote))
		{
			count++;
			if (!oldest && chan->state != CHAN_UP)
			{	/* the list is in the order of creation */
				oldest = chan;
			}
		}
	}
	enumerator->destroy(enumerator);
	if (count < PEER_SLOTS)
	{
		return NULL;
	}
	if (!oldest)
	{
		return "all its slots are taken by authenticated connections";
	}
	reject(this, oldest->remote, "its slots are full, the oldest connection "
		   "still in its handshake closed");
	chan_close(oldest, FAIL_TIMEOUT);
	return NULL;
}

/**
 * Watcher callback of the listening socket. We accept() ourselves rather
 * than using a stream_service_t, as that does not tell the address of a
 * connection, by which we know the node it comes from.
 */
CALLBACK(on_accept, bool,
	private_sasync_link_t *this, int fd, watcher_event_t event)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	chan_t *chan = NULL;
	peer_t *peer;
	host_t *remote;
	char *why;
	int conn;

	conn = accept(fd, (struct sockaddr*)&sa, &len);
	if (conn >= 0 && fcntl(conn, F_SETFD, FD_CLOEXEC) < 0)
	{
		close(conn);
		conn = -1;
	}
	if (conn < 0)
	{
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		{	/* e.g. out of fds */
			DBG1(DBG_APP, "sasync: accepting sync connection failed: %s",
				 strerror(errno));
		}
		return TRUE;
	}
	remote = accepted_host(&sa);
	this->mutex->lock(this->mutex);
	if (remote && !stopping(this))
	{	/* sources we do not know take no slot and see no HELLO */
		peer = match_peer(this, remote, FALSE);
		why = !peer ? "not a configured peer"
					: !refresh_keys(this) ? "we have no valid key"
										  : make_room(this, remote);
		if (why)
		{
			reject(this, remote, why);
		}
		else
		{
			set_sockopts(conn);
			chan = chan_create(this, conn, remote, peer, FALSE);
		}
	}
	this->mutex->unlock(this->mutex);
	if (chan)
	{
		chan->stream->on_read(chan->stream, on_readable, chan);
		chan_put(chan);
	}
	else
	{
		DESTROY_IF(remote);
		close(conn);
	}
	return TRUE;
}

/**
 * The configured peer a host names: the one with the same address and
 * port, else the first with the same address; with the lock held
 */
static peer_t *target_peer(private_sasync_link_t *this, host_t *host)
{
	return match_peer(this, host, TRUE) ?: match_peer(this, host, FALSE);
}

/**
 * Queue a record for one or all partners, and write what their connections
 * have queued if write is set
 */
static void queue_record(private_sasync_link_t *this, host_t *to,
						 chunk_t payload, bool write)
{
	enumerator_t *enumerator;
	record_t *record;
	peer_t *peer, *target = NULL;
	uint64_t now;

	if (payload.len > SASYNC_MAX_RECORD)
	{
		DBG1(DBG_APP, "sasync: dropping sync record of %zu bytes, larger "
			 "than %d", payload.len, SASYNC_MAX_RECORD);
		return;
	}
	now = sasync_link_time_ms();
	this->mutex->lock(this->mutex);
	if (to)
	{
		target = target_peer(this, to);
		if (!target)
		{
			this->mutex->unlock(this->mutex);
			DBG1(DBG_APP, "sasync: dropping sync record for %H, not a "
				 "partner node", to);
			return;
		}
	}
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (target && peer != target)
		{
			continue;
		}
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
		enforce_limits(this, peer);
		update_oldest(peer);
		if (write && peer->out && peer->out->state == CHAN_UP)
		{
			flush(peer->out);
		}
	}
	enumerator->destroy(enumerator);
	update_depth(this);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, send_to, void,
	private_sasync_link_t *this, host_t *to, chunk_t payload)
{
	queue_record(this, to, payload, TRUE);
}

METHOD(sasync_link_t, send_more, void,
	private_sasync_link_t *this, host_t *to, chunk_t payload)
{
	queue_record(this, to, payload, FALSE);
}

METHOD(sasync_link_t, flush_, void,
	private_sasync_link_t *this)
{
	enumerator_t *enumerator;
	peer_t *peer;

	this->mutex->lock(this->mutex);
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (peer->public.queued && peer->out && peer->out->state == CHAN_UP)
		{
			flush(peer->out);
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, send_, void,
	private_sasync_link_t *this, chunk_t payload)
{
	send_to(this, NULL, payload);
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

METHOD(sasync_link_t, set_heartbeat, bool,
	private_sasync_link_t *this, u_int interval, u_int lost)
{
	if (interval < SASYNC_HEARTBEAT_INTERVAL_MIN || lost < 2)
	{
		return FALSE;
	}
	this->mutex->lock(this->mutex);
	this->interval = interval;
	this->lost = lost;
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(sasync_link_t, set_beat_data, void,
	private_sasync_link_t *this, chunk_t data)
{
	enumerator_t *enumerator;
	peer_t *peer;

	this->mutex->lock(this->mutex);
	chunk_free(&this->beat_data);
	this->beat_data = chunk_clone(chunk_create(data.ptr,
									min(data.len, SASYNC_BEAT_DATA_MAX)));
	/* partners learn of a role change or a switchover request at once,
	 * not a heartbeat interval later */
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		beat_now(peer);
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, set_beat_cb, void,
	private_sasync_link_t *this, sasync_link_beat_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->beat_cb = cb;
	this->beat_cb_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, create_peer_enumerator, enumerator_t*,
	private_sasync_link_t *this)
{
	this->mutex->lock(this->mutex);
	return enumerator_create_cleaner(array_create_enumerator(this->peers),
									 (void*)this->mutex->unlock, this->mutex);
}

METHOD(sasync_link_t, destroy, void,
	private_sasync_link_t *this)
{
	linked_list_t *closed;
	chan_t *chan;

	this->mutex->lock(this->mutex);
	__atomic_store_n(&this->stopping, TRUE, __ATOMIC_RELEASE);
	this->recv_cb = NULL;
	this->up_cb = NULL;
	this->error_cb = NULL;
	this->beat_cb = NULL;
	while (this->delivering)
	{	/* a receiver must not see a record after destroy() */
		this->done->wait(this->done, this->mutex);
	}
	closed = linked_list_create();
	while (this->chans->get_first(this->chans, (void**)&chan) == SUCCESS)
	{
		chan_close(chan, FAIL_NONE);
		closed->insert_last(closed, chan);
	}
	this->mutex->unlock(this->mutex);
	if (this->listen_fd >= 0)
	{	/* shut down first: the watcher's poll() may still hold the socket,
		 * which would keep the port taken for a moment after close() */
		lib->watcher->remove(lib->watcher, this->listen_fd);
		shutdown(this->listen_fd, SHUT_RDWR);
		close(this->listen_fd);
	}
	/* waits for the callbacks running on each */
	closed->destroy_function(closed, (void*)chan_put);
	if (this->counters)
	{
		this->counters->set_queue_depth(this->counters, 0);
	}
	link_put(this);
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
	char *at, *name = NULL;
	bool ok = TRUE;

	at = strchr(str, '@');
	if (at)
	{
		name = str;
		*at = '\0';
		str = at + 1;
		if (!valid_name(name, SASYNC_NAME_LEN) || streq(name, this->name))
		{
			DBG1(DBG_APP, "sasync: invalid sync peer name '%s' (printable, "
				 "up to %d characters, not our own)", name,
				 SASYNC_NAME_LEN - 1);
			return FALSE;
		}
	}
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
		.name = strdupnull(name),
		.queue = linked_list_create(),
		.backoff = BACKOFF_MIN,
	);
	array_insert(this->peers, ARRAY_TAIL, peer);
	return TRUE;
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

METHOD(sasync_link_t, get_queued, u_int,
	private_sasync_link_t *this, host_t *to)
{
	enumerator_t *enumerator;
	peer_t *peer;
	u_int queued = 0;

	this->mutex->lock(this->mutex);
	enumerator = array_create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (!to || to->equals(to, peer->public.peer))
		{
			queued = max(queued, peer->public.queued);
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	return queued;
}

METHOD(sasync_link_t, get_undelivered, u_int,
	private_sasync_link_t *this, host_t *from)
{
	enumerator_t *enumerator;
	chan_t *chan;
	u_int count = 0;

	this->mutex->lock(this->mutex);
	enumerator = this->chans->create_enumerator(this->chans);
	while (enumerator->enumerate(enumerator, &chan))
	{
		if (chan->peer && from->equals(from, chan->peer->public.peer))
		{	/* one being delivered has left the inbox */
			count += array_count(chan->inbox) + chan->delivering;
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	return count;
}

METHOD(sasync_link_t, set_key_source, void,
	private_sasync_link_t *this, sasync_link_keys_t cb, void *data)
{
	this->mutex->lock(this->mutex);
	this->keys_cb = cb;
	this->keys_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_link_t, set_keys, bool,
	private_sasync_link_t *this, chunk_t *keys, int count)
{
	int i;

	if (count < 1 || count > SASYNC_KEYS_MAX)
	{
		return FALSE;
	}
	for (i = 0; i < count; i++)
	{
		if (keys[i].len < SASYNC_SECRET_MIN)
		{
			return FALSE;
		}
	}
	this->mutex->lock(this->mutex);
	sasync_secret_clear(this->keys);
	for (i = 0; i < count; i++)
	{
		this->keys[i] = chunk_clone(keys[i]);
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

/**
 * Set our node name and instance id, FALSE if invalid (logged)
 */
static bool set_identity(private_sasync_link_t *this, char *name)
{
	if (!name || !valid_name(name, SASYNC_NAME_LEN))
	{
		DBG1(DBG_APP, "sasync: invalid node name '%s' (printable, up to %d "
			 "characters)", name, SASYNC_NAME_LEN - 1);
		return FALSE;
	}
	/* the rest stays zero from INIT: NUL padded as in a HELLO */
	snprintf(this->name, SASYNC_NAME_LEN, "%s", name);
	this->aeads = sasync_crypt_supported();
	if (!this->aeads)
	{
		DBG1(DBG_APP, "sasync: neither ChaCha20/Poly1305 nor AES-GCM "
			 "available, load the chapoly, aes/gcm or openssl plugin");
		return FALSE;
	}
	return get_random(SASYNC_INSTANCE_LEN, this->instance);
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
		listen(this->listen_fd, BACKLOG) < 0)
	{
		DBG1(DBG_APP, "sasync: unable to listen on %#H: %s", this->local,
			 strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/*
 * Described in header
 */
sasync_link_t *sasync_link_create(char *local, char *peers, char *name,
								  chunk_t secret, sasync_counters_t *counters)
{
	private_sasync_link_t *this;

	INIT(this,
		.public = {
			.send = _send_,
			.send_to = _send_to,
			.send_more = _send_more,
			.flush = _flush_,
			.set_receiver = _set_receiver,
			.set_up_cb = _set_up_cb,
			.set_error_cb = _set_error_cb,
			.set_heartbeat = _set_heartbeat,
			.set_beat_data = _set_beat_data,
			.set_beat_cb = _set_beat_cb,
			.set_keys = _set_keys,
			.set_key_source = _set_key_source,
			.get_queued = _get_queued,
			.get_undelivered = _get_undelivered,
			.create_peer_enumerator = _create_peer_enumerator,
			.destroy = _destroy,
		},
		.local = parse_host(local),
		.peers = array_create(0, 0),
		.counters = counters,
		.chans = linked_list_create(),
		.listen_fd = -1,
		.ref = 1,
		.interval = SASYNC_HEARTBEAT_INTERVAL,
		.lost = SASYNC_HEARTBEAT_LOST,
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
		.done = condvar_create(CONDVAR_TYPE_DEFAULT),
	);

	if (!this->local)
	{
		DBG1(DBG_APP, "sasync: invalid sync listening address '%s'", local);
		destroy(this);
		return NULL;
	}
	if (secret.len && !set_keys(this, &secret, 1))
	{
		DBG1(DBG_APP, "sasync: sync secret too short, %d bytes at least "
			 "required", SASYNC_SECRET_MIN);
		destroy(this);
		return NULL;
	}
	if (!counters || !set_identity(this, name) || !add_peers(this, peers))
	{
		destroy(this);
		return NULL;
	}
	if (!open_listener(this))
	{
		destroy(this);
		return NULL;
	}
	lib->watcher->add(lib->watcher, this->listen_fd, WATCHER_READ, on_accept,
					  this);
	schedule_tick(this, 0);
	return &this->public;
}
