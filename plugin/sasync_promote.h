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

typedef struct sasync_promote_t sasync_promote_t;

/**
 * Promotion and demotion of this node.
 *
 * Promotion turns every passive IKE SA into an established one. Its CHILD
 * SAs already accept inbound ESP; their outbound direction is left to
 * sasync_outbound_t. IKEv2 SAs whose peer announced RFC 6311 support get
 * their message IDs synchronised with the peer.
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
	 * Become a standby node; established SAs are left as they are.
	 *
	 * @param reason	why, for logs and events
	 * @return			FALSE if already standby
	 */
	bool (*demote)(sasync_promote_t *this, char *reason);

	/**
	 * Destroy a sasync_promote_t.
	 */
	void (*destroy)(sasync_promote_t *this);
};

/**
 * Create the promotion handler.
 */
sasync_promote_t *sasync_promote_create(sasync_role_t *role,
										sasync_counters_t *counters);

#endif /** SASYNC_PROMOTE_H_ @}*/
