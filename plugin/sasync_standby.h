/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_standby sasync_standby
 * @{ @ingroup sasync
 */

#ifndef SASYNC_STANDBY_H_
#define SASYNC_STANDBY_H_

#include "sasync_role.h"
#include "sasync_counters.h"

#include <bus/listeners/listener.h>

typedef struct sasync_standby_t sasync_standby_t;

/**
 * A standby never initiates.
 *
 * The bus listener refuses every IKE SA a standby would initiate itself,
 * whatever started it: a connection loaded with start_action start, the
 * acquire of a trap policy, a DPD or close action restart, a retry, an
 * operator's initiate. The IKE SA fails before its first message is
 * encoded, so nothing leaves the node; each refusal is logged and counted
 * (initiate-refused). IKE SAs a peer initiates are not touched.
 *
 * At promotion, start_actions() does what the standby held back, for
 * exactly the CHILD configs no SA of the node holds yet.
 */
struct sasync_standby_t {

	/**
	 * Listener to register on charon's bus.
	 */
	listener_t listener;

	/**
	 * Run the start actions of the loaded connections on a promoted node:
	 * initiate each CHILD config with start_action start that no IKE SA
	 * holds a CHILD SA of, install the trap of each one with start_action
	 * trap that has none.
	 *
	 * @return			number of CHILD configs initiated or trapped
	 */
	u_int (*start_actions)(sasync_standby_t *this);

	/**
	 * Destroy a sasync_standby_t.
	 */
	void (*destroy)(sasync_standby_t *this);
};

/**
 * Create the standby guard.
 *
 * @param role			role of this node
 * @param counters		counters
 */
sasync_standby_t *sasync_standby_create(sasync_role_t *role,
										sasync_counters_t *counters);

#endif /** SASYNC_STANDBY_H_ @}*/
