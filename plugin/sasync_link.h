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

#include <library.h>

typedef struct sasync_link_t sasync_link_t;

/** default TCP port of the sync channel */
#define SASYNC_DEFAULT_PORT 4510

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
 * State of the link to one partner node.
 */
typedef struct {
	/** configured address of the partner */
	host_t *peer;
	/** outgoing connection authenticated */
	bool out_up;
	/** incoming connection authenticated */
	bool in_up;
	/** frames queued for this peer */
	u_int queued;
	/** time of the last frame received from this peer (monotonic s), 0 never */
	time_t last_rx;
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
 */
struct sasync_link_t {

	/**
	 * Send a record to all partner nodes (queued, never blocks on the network).
	 */
	void (*send)(sasync_link_t *this, chunk_t payload);

	/**
	 * Set the receiver of records.
	 */
	void (*set_receiver)(sasync_link_t *this, sasync_link_recv_t cb,
						 void *data);

	/**
	 * Set the callback for outgoing connections coming up.
	 */
	void (*set_up_cb)(sasync_link_t *this, sasync_link_up_t cb, void *data);

	/**
	 * Enumerate partner states (sasync_link_peer_t*), under a lock until
	 * the enumerator is destroyed.
	 */
	enumerator_t *(*create_peer_enumerator)(sasync_link_t *this);

	/**
	 * Destroy the link: close sockets, stop threads, drop queues.
	 */
	void (*destroy)(sasync_link_t *this);
};

/**
 * Create the link and start listening and connecting.
 *
 * @param local			"address[:port]" to listen on
 * @param peers			comma separated "address[:port]" of partner nodes
 * @param secret		shared secret, at least SASYNC_SECRET_MIN bytes
 * @param counters		counters to update (sync-tx, sync-rx, *-bad...)
 * @return				link, NULL on a bad setting (logged)
 */
sasync_link_t *sasync_link_create(char *local, char *peers, chunk_t secret,
								  sasync_counters_t *counters);

#endif /** SASYNC_LINK_H_ @}*/
