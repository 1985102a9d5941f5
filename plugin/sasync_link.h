/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_link sasync_link
 * @{ @ingroup sasync
 */

#ifndef SASYNC_LINK_H_
#define SASYNC_LINK_H_

#include "sasync_counters.h"
#include "sasync_crypt.h"

#include <library.h>

typedef struct sasync_link_t sasync_link_t;

/** default TCP port of the sync channel */
#define SASYNC_DEFAULT_PORT 4510

/*
 * Wire protocol, per TCP connection (all fixed-size parts strictly parsed):
 *   connector -> acceptor: HELLO_i
 *   acceptor -> connector: HELLO_r
 *   connector -> acceptor: AUTH frame with payload SASYNC_AUTH_I
 *   acceptor -> connector: AUTH frame with payload SASYNC_AUTH_R
 *   connector -> acceptor: DATA frames, one per record, and a HEARTBEAT
 *                          frame right away and every
 *                          SASYNC_HEARTBEAT_INTERVAL ms; a heartbeat also
 *                          acknowledges the records the connector got from
 *                          the acceptor's node (on its own connection)
 * HELLO = "SASY" | u8 version 2 | nonce (32) | instance id (16) |
 *         u8 AEADs offered (SASYNC_AEAD_* bits) | node name (64, NUL padded)
 * The instance id is random per link: a node refuses its own (a connection
 * reflected back to it), its own name, and a name other than the one
 * configured for the peer ("name@address"). Frames are sasync_crypt_t
 * frames of the AEAD both offer (ChaCha20/Poly1305 first), keyed with the
 * secret and both HELLOs whole, so the AUTH frames verify only if both
 * sides saw the same HELLOs: names, ids and the AEAD choice are
 * authenticated. "Up" is the connector receiving a valid AUTH_R, the
 * partner's answer. The acceptor sends nothing after its AUTH frame.
 */

/** magic at the start of a HELLO */
#define SASYNC_HELLO_MAGIC "SASY"

/** protocol version in a HELLO */
#define SASYNC_HELLO_VERSION 3

/** length of the random instance id in a HELLO */
#define SASYNC_INSTANCE_LEN 16

/** length of the node name field in a HELLO; names are shorter by one */
#define SASYNC_NAME_LEN 64

/** offsets of the fields of a HELLO */
#define SASYNC_HELLO_NONCE 5
#define SASYNC_HELLO_INSTANCE (SASYNC_HELLO_NONCE + SASYNC_NONCE_LEN)
#define SASYNC_HELLO_AEADS (SASYNC_HELLO_INSTANCE + SASYNC_INSTANCE_LEN)
#define SASYNC_HELLO_NAME (SASYNC_HELLO_AEADS + 1)

/** length of a HELLO */
#define SASYNC_HELLO_LEN (SASYNC_HELLO_NAME + SASYNC_NAME_LEN)

/** frame type of the handshake confirmations */
#define SASYNC_FRAME_AUTH 1

/** frame type of records */
#define SASYNC_FRAME_DATA 2

/** frame type of heartbeats: payload is the sender's wall clock time in ms
 * since the epoch (u64, big endian), then a counter that moves while the
 * sender takes the records of the receiver's node: one per record received,
 * one per heartbeat interval it spent delivering them (u64, big endian,
 * wrapping; version 3); not counted as sync-tx/sync-rx */
#define SASYNC_FRAME_HEARTBEAT 3

/** offset of the record count in a heartbeat payload */
#define SASYNC_HEARTBEAT_ACKED 8

/** length of the time and count at the start of a heartbeat payload; the
 * rest is the data set with set_beat_data() */
#define SASYNC_HEARTBEAT_LEN 16

/** largest data a heartbeat carries beside the time */
#define SASYNC_BEAT_DATA_MAX 128

/** heartbeats missed before a partner is declared dead, by default */
#define SASYNC_HEARTBEAT_LOST 5

/** interval of heartbeats on an outgoing connection, in ms, by default;
 * also the tick of reconnects and stall checks */
#define SASYNC_HEARTBEAT_INTERVAL 200

/** shortest heartbeat interval, in ms */
#define SASYNC_HEARTBEAT_INTERVAL_MIN 50

/** AUTH payload sent by the connecting side */
#define SASYNC_AUTH_I "sasync auth connector"

/** AUTH payload sent by the accepting side */
#define SASYNC_AUTH_R "sasync auth acceptor"

/** maximum frame size on the wire, including its length field; a longer
 * announced length is counted as SASYNC_CTR_SYNC_RX_LEN_BAD and closes */
#define SASYNC_MAX_FRAME (1024 * 1024)

/** largest record send() accepts (frame header and a 16 byte ICV less) */
#define SASYNC_MAX_RECORD (SASYNC_MAX_FRAME - 14 - 16)

/** records queued per peer at most; the oldest are dropped (counted as
 * sync-dropped) and the partner gets a resync once its queue drained */
#define SASYNC_QUEUE_MAX 65536

/** bytes of records queued per peer at most, same policy */
#define SASYNC_QUEUE_MAX_BYTES (64 * 1024 * 1024)

/** a bulk resync waits while a queue holds more records than this, so it
 * never fills a queue itself */
#define SASYNC_QUEUE_HIGH (SASYNC_QUEUE_MAX / 4)

/**
 * Called with each authenticated, decrypted record payload, in order.
 *
 * @param data			user data
 * @param peer			address of the sending node
 * @param payload		payload (owned by the link, valid during the call)
 */
typedef void (*sasync_link_recv_t)(void *data, host_t *peer, chunk_t payload);

/**
 * Called when an outgoing connection to a partner node is authenticated,
 * (a place to start a bulk resync).
 */
typedef void (*sasync_link_up_t)(void *data, host_t *peer);

/**
 * Called for each sync error of the link: a failed handshake, a frame
 * rejected as forged, replayed or malformed. Each one is also counted and
 * logged.
 *
 * @param data			user data
 * @param peer			the configured peer the connection belongs to, else
 *						its source address
 * @param counter		counter that was incremented (SASYNC_CTR_SYNC_RX_*)
 * @param reason		what went wrong
 */
typedef void (*sasync_link_error_t)(void *data, host_t *peer,
									sasync_counter_t counter, char *reason);

/**
 * Called when a partner's heartbeat arrives, and once when it is declared
 * dead: nothing authentic arrived from it for heartbeat_lost intervals.
 *
 * @param data			user data
 * @param peer			configured address of the partner
 * @param alive			FALSE when declared dead
 * @param beat			data of the heartbeat (see set_beat_data()), empty
 *						when dead
 */
typedef void (*sasync_link_beat_t)(void *data, host_t *peer, bool alive,
								   chunk_t beat);

/**
 * Called before each connection the link makes and on each it accepts, to
 * get the keys of its handshake; with the link's lock held, so it must not
 * block for long (a look-up in charon's credentials is fine) nor call into
 * the link.
 *
 * @param data			user data
 * @param keys			SASYNC_KEYS_MAX keys to fill, each allocated and at
 *						least SASYNC_SECRET_MIN bytes; the link adopts them
 * @return				number of keys filled, 0 if there is none (the
 *						connection is not made, or refused)
 */
typedef int (*sasync_link_keys_t)(void *data, chunk_t *keys);

/**
 * State of the link to one partner node.
 */
typedef struct {
	/** configured address of the partner */
	host_t *peer;
	/** outgoing connection authenticated */
	bool out_up;
	/** incoming connection authenticated */
	bool in_up;
	/** heartbeats or records arrive from it (not for heartbeat_lost
	 * intervals: dead) */
	bool alive;
	/** frames queued for this peer */
	u_int queued;
	/** time of the last record received from this peer (monotonic s), 0 never */
	time_t last_rx;
	/** time of the last heartbeat received from this peer
	 * (sasync_link_time_ms()), 0 never */
	uint64_t last_heartbeat;
	/** delay of that heartbeat in ms: our wall clock at arrival minus the
	 * peer's when it was sent (so it includes any clock offset), 0 if the
	 * peer's clock is ahead */
	uint32_t heartbeat_lag;
	/** when the oldest record still queued for this peer was queued
	 * (sasync_link_time_ms()), 0 if the queue is empty: how far the peer
	 * lags behind us */
	uint64_t oldest_queued;
} sasync_link_peer_t;

/**
 * Encrypted, reliable sync channel to the partner nodes over TCP.
 *
 * Each node listens on "local" and connects to each of "peers". Records a
 * node sends travel on the connection it opened; records it receives arrive
 * on connections it accepted. Each connection starts with a handshake that
 * exchanges nonces and proves knowledge of the secret, then carries AEAD
 * frames (see sasync_crypt_t). Lost connections are re-established with
 * backoff; records sent while a peer is unreachable are queued (bounded).
 *
 * Concurrency model, charon's own: the link has no thread of its own and
 * never blocks on the network. Every connection is a stream_t whose socket
 * lib->watcher watches; its read and write callbacks run as processor jobs
 * at JOB_PRIO_CRITICAL, one at a time per connection and event. Writes are
 * non-blocking: what the socket does not take waits for its write callback.
 * Read callbacks only read, decrypt and queue: one job per connection
 * delivers its records to the receiver in order, and reading pauses while
 * too many wait (charon 5.9.8's watcher serves no other socket while a
 * callback runs and another socket has data). A scheduled job ticks every
 * SASYNC_HEARTBEAT_INTERVAL ms for heartbeats, reconnects and stalled
 * connections; a connection is stalled if for 30 s nothing could be written
 * and the partner's heartbeats acknowledged no record. One mutex protects
 * all state; it is released around the receiver and up callbacks, and
 * destroy() waits for a record being delivered. Connections and the link
 * are reference counted, as queued jobs may outlive them.
 */
struct sasync_link_t {

	/**
	 * Send a record to all partner nodes (queued, never blocks on the network).
	 *
	 * Records larger than SASYNC_MAX_RECORD are dropped with a log line. The
	 * queue depth gauge of the counters is the deepest per-peer queue.
	 * Records written to a connection that fails afterwards may be lost;
	 * the up callback is the place to resync.
	 */
	void (*send)(sasync_link_t *this, chunk_t payload);

	/**
	 * Send a record to one partner node, as send() does to all.
	 *
	 * The partner is the configured one with the address and port of to,
	 * else the first with its address; a record for a host that is no
	 * partner is dropped (logged).
	 *
	 * @param to			partner node, NULL for all of them
	 * @param payload		record
	 */
	void (*send_to)(sasync_link_t *this, host_t *to, chunk_t payload);

	/**
	 * Queue a record as send_to() does, but leave it queued: the caller
	 * sends another record right after, and the next send_to(), send() or
	 * flush() writes both with one system call. A record left so is written
	 * at the next heartbeat interval at the latest (as records queued for a
	 * full socket are), and never after a record queued later.
	 *
	 * @param to			partner node, NULL for all of them
	 * @param payload		record
	 */
	void (*send_more)(sasync_link_t *this, host_t *to, chunk_t payload);

	/**
	 * Write the records send_more() left queued.
	 */
	void (*flush)(sasync_link_t *this);

	/**
	 * Set the receiver of records.
	 *
	 * It is called from the read callback of an accepted connection (a
	 * processor job), so calls are serialized per connection, without any
	 * lock of the link held: it may call send(); while it is slow, that
	 * connection is not read. peer is the configured peer whose address the
	 * connection comes from, else the connection's source address.
	 */
	void (*set_receiver)(sasync_link_t *this, sasync_link_recv_t cb,
						 void *data);

	/**
	 * Set the callback for outgoing connections coming up.
	 *
	 * It is called from the connection's read callback, without any lock of
	 * the link held, so it may call send(); a resync of more than
	 * SASYNC_QUEUE_MAX records must be sent from a job of its own.
	 */
	void (*set_up_cb)(sasync_link_t *this, sasync_link_up_t cb, void *data);

	/**
	 * Set the callback for sync errors.
	 *
	 * It is called from the link's callbacks with the link's lock held, so
	 * it must not block nor call back into the link; once set_error_cb()
	 * returns, the previous callback is not running and is not called again.
	 *
	 * @param cb		callback, NULL to unset
	 * @param data		user data to pass to cb
	 */
	void (*set_error_cb)(sasync_link_t *this, sasync_link_error_t cb,
						 void *data);

	/**
	 * Set the heartbeat interval and how many missed heartbeats declare a
	 * partner dead.
	 *
	 * @param interval	interval in ms, at least SASYNC_HEARTBEAT_INTERVAL_MIN
	 * @param lost		missed heartbeats, at least 2
	 * @return			FALSE if out of range (nothing changed)
	 */
	bool (*set_heartbeat)(sasync_link_t *this, u_int interval, u_int lost);

	/**
	 * Set the data every heartbeat carries from now on (copied).
	 *
	 * @param data		at most SASYNC_BEAT_DATA_MAX bytes
	 */
	void (*set_beat_data)(sasync_link_t *this, chunk_t data);

	/**
	 * Set the callback for heartbeats and dead partners.
	 *
	 * It is called with the link's lock held, so it must not block; it may
	 * call set_beat_data(), nothing else of the link.
	 *
	 * @param cb		callback, NULL to unset
	 * @param data		user data to pass to cb
	 */
	void (*set_beat_cb)(sasync_link_t *this, sasync_link_beat_t cb,
						void *data);

	/**
	 * Records queued for a partner.
	 *
	 * @param to		partner, NULL for the most any partner has queued
	 * @return			records queued
	 */
	u_int (*get_queued)(sasync_link_t *this, host_t *to);

	/**
	 * Records received from a partner and not handed to the receiver yet
	 * (heartbeats are handled as they are read, records after them).
	 *
	 * @param from		partner
	 * @return			records
	 */
	u_int (*get_undelivered)(sasync_link_t *this, host_t *from);

	/**
	 * Set the keys of new connections, e.g. while the keys are changed:
	 * connections we make use the first, those we accept may use any.
	 * Connections already up keep the keys they derived.
	 *
	 * @param keys		keys, each at least SASYNC_SECRET_MIN bytes
	 * @param count		number of keys, at least 1
	 * @return			FALSE if a key is too short (nothing changed)
	 */
	bool (*set_keys)(sasync_link_t *this, chunk_t *keys, int count);

	/**
	 * Set where the keys come from, asked before each handshake instead of
	 * the keys set: so keys that change elsewhere are used at once.
	 *
	 * Once set_key_source() returns, the previous source is not running and
	 * is not called again.
	 *
	 * @param cb		key source, NULL to keep the keys it gave last
	 * @param data		user data to pass to cb
	 */
	void (*set_key_source)(sasync_link_t *this, sasync_link_keys_t cb,
						   void *data);

	/**
	 * Enumerate partner states (sasync_link_peer_t*), under a lock until
	 * the enumerator is destroyed.
	 */
	enumerator_t *(*create_peer_enumerator)(sasync_link_t *this);

	/**
	 * Destroy the link: close the sockets, waiting for their running
	 * callbacks, and drop the queues; jobs still queued end on their own.
	 */
	void (*destroy)(sasync_link_t *this);
};

/**
 * Monotonic clock of the link's peer state, in ms.
 *
 * @return				ms since an arbitrary point in the past
 */
uint64_t sasync_link_time_ms();

/**
 * Move the clock of sasync_link_time_ms() forward, for tests of timeouts.
 *
 * @param ms			ms to add from now on
 */
void sasync_link_time_skip(uint64_t ms);

/**
 * Create the link and start listening and connecting.
 *
 * Addresses are IP literals, an IPv6 address with a port as "[addr]:port".
 * A peer may be preceded by its node name and "@": its connections must
 * then come from a node of that name. peers may be NULL or empty for a link
 * that only receives; connections from addresses not configured are
 * refused before their handshake.
 *
 * @param local			"address[:port]" to listen on
 * @param peers			comma separated "[name@]address[:port]" of partners
 * @param name			our node name, shorter than SASYNC_NAME_LEN
 * @param secret		shared secret, at least SASYNC_SECRET_MIN bytes; empty
 *						for none until set_keys() or set_key_source()
 * @param counters		counters to update (sync-tx, sync-rx, *-bad...)
 * @return				link, NULL on a bad setting (logged)
 */
sasync_link_t *sasync_link_create(char *local, char *peers, char *name,
								  chunk_t secret, sasync_counters_t *counters);

#endif /** SASYNC_LINK_H_ @}*/
