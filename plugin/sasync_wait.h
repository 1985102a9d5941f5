/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_wait sasync_wait
 * @{ @ingroup sasync
 */

#ifndef SASYNC_WAIT_H_
#define SASYNC_WAIT_H_

#include "sasync_msg.h"

typedef enum sasync_wait_status_t sasync_wait_status_t;
typedef struct sasync_wait_t sasync_wait_t;

/**
 * What happened to a record queued with add().
 */
enum sasync_wait_status_t {
	/** queued at the end */
	SASYNC_WAIT_ADDED,
	/** it took the place of the same record, which waited already */
	SASYNC_WAIT_REPLACED,
	/** not queued: as many records as allowed wait already */
	SASYNC_WAIT_FULL,
};

/**
 * Records of the apply side that wait for something (their connection,
 * their IKE SA), in order, de-duplicated and bounded.
 *
 * Two records are the same if they have the same type and are about the
 * same SA: the same IKE SPIs, and for CHILD SA records the same inbound
 * SPI. Each record is complete (a bulk resync sends every SA again), so a
 * newer one replaces the same older one in its place: a resync that comes
 * again and again while a connection is not loaded queues each record once.
 * Not thread-safe: the apply side uses it under its lock.
 */
struct sasync_wait_t {

	/**
	 * Queue a copy of a record, or let it replace the same record waiting.
	 * A newer IKE_ADD also drops the IKE_MID of its SA queued behind the
	 * older one: it carries newer message IDs.
	 *
	 * @param msg		record (copied)
	 * @param since		since when it waits (monotonic s)
	 * @return			what happened to it
	 */
	sasync_wait_status_t (*add)(sasync_wait_t *this, sasync_msg_t *msg,
								time_t since);

	/**
	 * Whether a record of the given type about the IKE SA of a record waits.
	 *
	 * @param type		type of the waiting record (IKE SA records only)
	 * @param msg		record with the IKE SPIs to look for
	 */
	bool (*has)(sasync_wait_t *this, sasync_msg_type_t type,
				sasync_msg_t *msg);

	/**
	 * Drop the records a delete makes pointless: those of its IKE SA for an
	 * IKE_DELETE, those of its CHILD SA (inbound SPI) for a CHILD_DELETE.
	 *
	 * @param delete	IKE_DELETE or CHILD_DELETE record
	 * @return			number of records dropped
	 */
	u_int (*drop)(sasync_wait_t *this, sasync_msg_t *delete);

	/**
	 * Drop the records of IKE SAs a full resync did not name: they are gone
	 * on the primary, and applied later they would be stale.
	 *
	 * @param named		whether the resync named the IKE SA of this
	 *					initiator SPI
	 * @param data		user data to pass to named
	 * @return			number of records dropped
	 */
	u_int (*drop_unnamed)(sasync_wait_t *this,
						  bool (*named)(void *data, uint64_t spi_i),
						  void *data);

	/**
	 * Take the oldest record out.
	 *
	 * @param msg		record, to destroy
	 * @param since		since when it waits
	 * @return			FALSE if none waits
	 */
	bool (*remove_first)(sasync_wait_t *this, sasync_msg_t **msg,
						 time_t *since);

	/**
	 * Number of records waiting.
	 */
	u_int (*get_count)(sasync_wait_t *this);

	/**
	 * Destroy a sasync_wait_t and the records in it.
	 */
	void (*destroy)(sasync_wait_t *this);
};

/**
 * Create an empty queue.
 *
 * @param max			records it holds at most
 */
sasync_wait_t *sasync_wait_create(u_int max);

#endif /** SASYNC_WAIT_H_ @}*/
