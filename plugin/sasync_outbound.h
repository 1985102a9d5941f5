/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_outbound sasync_outbound
 * @{ @ingroup sasync
 */

#ifndef SASYNC_OUTBOUND_H_
#define SASYNC_OUTBOUND_H_

#include "sasync_role.h"
#include "sasync_counters.h"
#include "sasync_keystore.h"

#include <bus/listeners/listener.h>
#include <kernel/kernel_listener.h>
#include <sa/ike_sa.h>

typedef struct sasync_outbound_t sasync_outbound_t;

/**
 * Guards the outbound direction of restored CHILD SAs.
 *
 * A standby never knows how far the active node got with an SA's outbound
 * sequence numbers, so it treats them as exhausted: the restored SA has no
 * usable outbound state, and the first packet that wants to leave through
 * it forces a CHILD SA rekey instead. How that first packet is noticed
 * depends on the kernel backend, both through charon's kernel interface:
 *  - backends that pin the SPI in outbound policies (kernel-netlink): no
 *    outbound SA is installed, so the kernel raises an acquire for the
 *    policy's reqid;
 *  - others (kernel-libipsec, which finds outbound SAs by reqid and raises
 *    no acquires): a sentinel SA with a random SPI and random keys and a
 *    hard lifetime of one packet takes the reqid. Its expire event is the
 *    trigger; the one packet it carries uses an SPI the peer never saw.
 * A trigger before promotion is remembered and acted on at promotion.
 */
struct sasync_outbound_t {

	/**
	 * Kernel listener for acquires and expires.
	 */
	kernel_listener_t kernel;

	/**
	 * Bus listener to forget CHILD SAs that are gone.
	 */
	listener_t bus;

	/**
	 * Register a restored CHILD SA whose outbound SA must not be used.
	 *
	 * The caller has the IKE SA checked out; the CHILD SA's policies are
	 * installed but its outbound SA is not.
	 *
	 * @param ike_sa		IKE SA of the CHILD SA
	 * @param child_sa		restored CHILD SA
	 * @param encr_len		length of the outbound encryption key
	 * @param integ_len		length of the outbound integrity key
	 * @return				TRUE if the guard is in place
	 */
	bool (*restore)(sasync_outbound_t *this, ike_sa_t *ike_sa,
					child_sa_t *child_sa, size_t encr_len, size_t integ_len);

	/**
	 * Number of restored CHILD SAs still waiting for their forced rekey.
	 */
	u_int (*get_pending)(sasync_outbound_t *this);

	/**
	 * Whether a CHILD SA (by unique id) waits for its forced rekey.
	 */
	bool (*is_pending)(sasync_outbound_t *this, uint32_t unique);

	/**
	 * Destroy a sasync_outbound_t, removing sentinel SAs.
	 */
	void (*destroy)(sasync_outbound_t *this);
};

/**
 * Create the outbound guard.
 *
 * @param role			role of this node; triggers act once it is primary
 * @param counters		counters to update (forced-rekeys)
 * @param keys			key store: a forced rekey first starts the RFC 6311
 *						sync its IKE SA may still wait for
 */
sasync_outbound_t *sasync_outbound_create(sasync_role_t *role,
										  sasync_counters_t *counters,
										  sasync_keystore_t *keys);

#endif /** SASYNC_OUTBOUND_H_ @}*/
