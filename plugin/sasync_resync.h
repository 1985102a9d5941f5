/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_resync sasync_resync
 * @{ @ingroup sasync
 */

#ifndef SASYNC_RESYNC_H_
#define SASYNC_RESYNC_H_

#include "sasync_counters.h"

#include <library.h>
#include <sa/ike_sa.h>

typedef struct sasync_resync_t sasync_resync_t;

/**
 * The standby side of a full resync: what it holds passive and the resync
 * does not name is gone on the primary.
 *
 * Between the RESYNC_START and RESYNC_DONE records of a resync, every
 * IKE_ADD and CHILD_ADD (of the resync, or incremental) marks its SA as
 * seen. At the end, passive IKE SAs not seen, and CHILD SAs (in any state) of
 * seen ones that were not, are destroyed locally: nothing is sent to any
 * peer. Deletes the standby missed (while it was primary in a split brain,
 * or while its link was down) are so caught up. Not thread-safe: the apply
 * side calls it under its lock.
 */
struct sasync_resync_t {

	/**
	 * A resync starts: forget what was seen.
	 *
	 * @param total		IKE SAs the primary had at its start, 0 if unknown
	 */
	void (*start)(sasync_resync_t *this, u_int total);

	/**
	 * Progress of the latest resync.
	 *
	 * @param seen		IKE SAs named since its start (at its end, if done)
	 * @param total		IKE SAs the primary had at its start
	 * @return			TRUE while it runs
	 */
	bool (*get_progress)(sasync_resync_t *this, u_int *seen, u_int *total);

	/**
	 * An IKE SA is named by the primary.
	 *
	 * @param spi_i		its initiator SPI, as in ike_sa_id_t
	 */
	void (*seen_ike)(sasync_resync_t *this, uint64_t spi_i);

	/**
	 * Whether the running resync named an IKE SA so far.
	 *
	 * @param spi_i		its initiator SPI, as in ike_sa_id_t
	 * @return			TRUE if named, or if no resync runs
	 */
	bool (*named_ike)(sasync_resync_t *this, uint64_t spi_i);

	/**
	 * A CHILD SA is named by the primary.
	 *
	 * @param spi_in	its inbound SPI, as in child_sa_t (network order)
	 */
	void (*seen_child)(sasync_resync_t *this, uint32_t spi_in);

	/**
	 * The resync is done: destroy the passive SAs it did not name. Nothing
	 * happens without a start().
	 */
	void (*finish)(sasync_resync_t *this);

	/**
	 * Destroy a sasync_resync_t.
	 */
	void (*destroy)(sasync_resync_t *this);
};

/**
 * Create the resync tracker.
 *
 * @param counters		counters (resync-removed)
 * @return				tracker
 */
sasync_resync_t *sasync_resync_create(sasync_counters_t *counters);

/**
 * Whether a bulk resync from this node, as primary, names an IKE SA: it
 * holds it established, with a rekey in flight, or still passive (the walk
 * of a promotion has not activated it yet, or a switchover drained it).
 * What a resync leaves out, its partner destroys.
 *
 * @param ike_sa		IKE SA of this node
 * @return				TRUE if the resync names it
 */
bool sasync_resync_names_ike(ike_sa_t *ike_sa);

/**
 * Whether a bulk resync names a CHILD SA of an IKE SA it names: a live one
 * (installed, updating or being rekeyed), not one a rekey replaced or one
 * on its way out, which the partner would install again as live.
 *
 * @param child_sa		CHILD SA of this node
 * @return				TRUE if the resync names it
 */
bool sasync_resync_names_child(child_sa_t *child_sa);

#endif /** SASYNC_RESYNC_H_ @}*/
