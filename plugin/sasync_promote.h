/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_promote sasync_promote
 * @{ @ingroup sasync
 */

#ifndef SASYNC_PROMOTE_H_
#define SASYNC_PROMOTE_H_

#include "sasync_role.h"
#include "sasync_counters.h"

#include "sasync_apply.h"
#include "sasync_standby.h"

#include <sa/ike_sa.h>

typedef struct sasync_promote_t sasync_promote_t;

/**
 * Promotion and demotion of this node.
 *
 * Promotion turns every passive IKE SA into an established one, with the
 * apply side held off so no record restores an SA passive afterwards. Its
 * CHILD SAs already accept inbound ESP; their outbound direction is left to
 * sasync_outbound_t. IKEv2 SAs whose peer announced RFC 6311 support get
 * their message IDs synchronised with the peer first, before any rekey.
 * Unless charon.plugins.sasync.updown_on_promote is no, each restored IKE
 * and CHILD SA raises its up event (updown scripts, vici ike-updown and
 * child-updown, accounting), as it would have on the failed node. Then the
 * start actions the node held back as a standby run, for what it does not
 * hold (sasync_standby_t).
 *
 * Demotion is the reverse: established IKE SAs become passive again,
 * without a message to any peer. What the node still completes on one of
 * them before it is passive (an exchange in flight at the demotion), and
 * an IKE SA it was negotiating then, goes to the new primary as a
 * hand-over (sasync_capture_t), so neither node loses it.
 */
struct sasync_promote_t {

	/**
	 * Become the active node.
	 *
	 * @param reason	why, for logs and events
	 * @param count		number of IKE SAs activated, if not NULL
	 * @return			FALSE if already primary
	 */
	bool (*promote)(sasync_promote_t *this, char *reason, u_int *count);

	/**
	 * Become a standby node: every established IKE SA becomes passive again,
	 * as the SAs a standby restored are (no DPD, rekey, reauthentication,
	 * retransmit or answer; charon's jobs check for IKE_PASSIVE). Nothing is
	 * deleted and no message is sent, so the peer's view stays as it is.
	 * The CHILD SAs stay installed, so inbound ESP is still accepted.
	 *
	 * @param reason	why, for logs and events
	 * @param count		number of IKE SAs made passive, if not NULL
	 * @return			FALSE if already standby
	 */
	bool (*demote)(sasync_promote_t *this, char *reason, u_int *count);

	/**
	 * Destroy a sasync_promote_t.
	 */
	void (*destroy)(sasync_promote_t *this);
};

/** RFC 6311 message ID syncs started per second after a promotion, by
 * default (charon.plugins.sasync.promote_rate) */
#define SASYNC_PROMOTE_RATE 200

/**
 * Make a restored IKE SA active: established, its message IDs synchronised
 * with the peer (RFC 6311) if it supports that, then a CHILD SA the failed
 * node left half-made at the peer deleted there (sasync_orphan_delete()).
 * The exchanges may wait: with thousands of SAs, starting them all at once
 * would hit the peers (and this node) with a burst. An exchange due is
 * started by sasync_promote_sync_due(): by a job of promote() (at
 * promote_rate), or earlier when the SA is about to start another exchange
 * (a forced rekey).
 *
 * @param ike_sa		passive IKE SA, checked out
 * @param counters		counters
 * @param keys			key store (exchanges left open)
 * @param now			start the exchanges now, else leave them due
 */
void sasync_promote_activate(ike_sa_t *ike_sa, sasync_counters_t *counters,
							 sasync_keystore_t *keys, bool now);

/**
 * Start the RFC 6311 message ID sync (and the delete of a CHILD SA the
 * failed node left half-made) of a promoted IKE SA if it still waits for
 * it, so an exchange queued after it uses synchronised message IDs.
 *
 * @param ike_sa		established IKE SA, checked out
 * @param counters		counters
 * @param keys			key store
 */
void sasync_promote_sync_due(ike_sa_t *ike_sa, sasync_counters_t *counters,
							 sasync_keystore_t *keys);

/**
 * Delete the rekeyed CHILD SAs of an IKEv2 SA at the peer, as charon does
 * once it rekeyed one. The node that rekeyed them may have died (or lost
 * the role) before its delete reached the peer or this node: kept, such a
 * CHILD SA would stay here, unused, until it expires. A peer that deleted
 * it already answers with an empty INFORMATIONAL.
 *
 * @param ike_sa		established IKEv2 SA, checked out
 * @param counters		counters (rekeyed-deleted)
 * @return				number of CHILD SAs whose delete was started
 */
u_int sasync_promote_delete_rekeyed(ike_sa_t *ike_sa,
									sasync_counters_t *counters);

/**
 * Make an IKE SA of this node passive, as a demotion does with each of
 * them (described in sasync_promote.c); also for one a demoted node
 * completed afterwards and handed over.
 *
 * @param ike_sa		IKE SA, checked out
 * @param keys			key store
 * @return				FALSE if the SA is not one to keep (half-open,
 *						rekeyed), left as it is
 */
bool sasync_promote_make_passive(ike_sa_t *ike_sa, sasync_keystore_t *keys);

/**
 * Create the promotion handler.
 *
 * @param role			role of this node
 * @param counters		counters
 * @param apply			apply side, held off during the role change
 * @param keys			key store
 * @param standby		start actions held back on the standby, run after
 *						promotion; NULL for none
 */
sasync_promote_t *sasync_promote_create(sasync_role_t *role,
										sasync_counters_t *counters,
										sasync_apply_t *apply,
										sasync_keystore_t *keys,
										sasync_standby_t *standby);

#endif /** SASYNC_PROMOTE_H_ @}*/
