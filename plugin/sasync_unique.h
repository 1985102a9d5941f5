/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_unique sasync_unique
 * @{ @ingroup sasync
 */

#ifndef SASYNC_UNIQUE_H_
#define SASYNC_UNIQUE_H_

#include <library.h>

typedef struct sasync_unique_t sasync_unique_t;

/** most values one reservation moves a counter forward */
#define SASYNC_UNIQUE_RESERVE_MAX 1000000

/**
 * Keeps charon's %unique interface id and mark counters ahead of the
 * values restored CHILD SAs hold, so new tunnels never reuse them.
 *
 * charon hands these out from counters of its own (static in libstrongswan
 * and libcharon, only reachable by allocating), which on a standby lag
 * behind the active node. A record only raises the highest value held, in
 * constant time. The counters are moved in one reservation up to the
 * highest value, off the record path: in a job (one at a time, coalescing
 * every record since the last), and synchronously at promotion for what
 * the job did not reach yet. A reservation moves a counter by at most
 * SASYNC_UNIQUE_RESERVE_MAX values; a value further ahead is logged and
 * left. Thread-safe.
 */
struct sasync_unique_t {

	/**
	 * A restored CHILD SA holds these values (0: none).
	 *
	 * @param if_id		highest %unique interface id it holds
	 * @param mark		highest %unique mark it holds
	 */
	void (*hold)(sasync_unique_t *this, uint32_t if_id, uint32_t mark);

	/**
	 * Move the counters past every value held, now (at promotion).
	 */
	void (*reserve)(sasync_unique_t *this);

	/**
	 * Destroy a sasync_unique_t (a job in progress keeps what it needs).
	 */
	void (*destroy)(sasync_unique_t *this);
};

/**
 * Create the reservation.
 */
sasync_unique_t *sasync_unique_create();

#endif /** SASYNC_UNIQUE_H_ @}*/
