/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_address sasync_address
 * @{ @ingroup sasync
 */

#ifndef SASYNC_ADDRESS_H_
#define SASYNC_ADDRESS_H_

#include "sasync_counters.h"
#include "sasync_role.h"

typedef struct sasync_address_t sasync_address_t;

/** seconds between checks that the addresses match the role */
#define SASYNC_ADDRESS_CHECK 2

/**
 * The cluster addresses, on the primary only (built-in address mode).
 *
 * When the node becomes primary it adds each configured address through
 * charon's kernel interface and announces IPv4 ones with gratuitous ARP
 * (request and reply); when it becomes standby it removes them. Every
 * SASYNC_ADDRESS_CHECK seconds it checks that they are where the role says:
 * a mismatch (an address missing on the primary, or left on a standby) is
 * logged, counted as address-repairs and repaired. A role change moves
 * them at once, in the role's callback: before a promotion activates the
 * SAs, whose first messages leave from them.
 */
struct sasync_address_t {

	/**
	 * Destroy a sasync_address_t, leaving the addresses as they are.
	 */
	void (*destroy)(sasync_address_t *this);
};

/**
 * Create the address manager.
 *
 * @param addresses		comma separated "address[/prefix]@interface"
 * @param role			role of this node
 * @param counters		counters to update
 * @return				manager, NULL if the setting is invalid (logged)
 */
sasync_address_t *sasync_address_create(char *addresses, sasync_role_t *role,
										sasync_counters_t *counters);

#endif /** SASYNC_ADDRESS_H_ @}*/
