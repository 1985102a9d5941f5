/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_role sasync_role
 * @{ @ingroup sasync
 */

#ifndef SASYNC_ROLE_H_
#define SASYNC_ROLE_H_

#include <library.h>

typedef struct sasync_role_t sasync_role_t;

/**
 * Role of this node in the cluster.
 */
typedef enum {
	SASYNC_ROLE_STANDBY,
	SASYNC_ROLE_PRIMARY,
} sasync_role_state_t;

extern enum_name_t *sasync_role_names;

/**
 * Called after the role changed.
 */
typedef void (*sasync_role_cb_t)(void *data, sasync_role_state_t role,
								 char *reason);

/**
 * Current role of the node, shared by the components.
 */
struct sasync_role_t {

	/**
	 * Get the current role.
	 */
	sasync_role_state_t (*get)(sasync_role_t *this);

	/**
	 * Change the role.
	 *
	 * @param role		new role
	 * @param reason	why, for logs and events
	 * @return			FALSE if the node already had that role
	 */
	bool (*set)(sasync_role_t *this, sasync_role_state_t role, char *reason);

	/**
	 * Register a callback for role changes (one per component).
	 */
	void (*add_listener)(sasync_role_t *this, sasync_role_cb_t cb, void *data);

	/**
	 * Destroy a sasync_role_t.
	 */
	void (*destroy)(sasync_role_t *this);
};

/**
 * Create the role holder.
 *
 * @param initial		initial role
 */
sasync_role_t *sasync_role_create(sasync_role_state_t initial);

#endif /** SASYNC_ROLE_H_ @}*/
