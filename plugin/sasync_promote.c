/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_promote.h"
#include "sasync_midsync.h"

#include <daemon.h>

typedef struct private_sasync_promote_t private_sasync_promote_t;

struct private_sasync_promote_t {

	/** public interface */
	sasync_promote_t public;

	/** node role */
	sasync_role_t *role;

	/** counters */
	sasync_counters_t *counters;
};

/**
 * Make a passive IKE SA established, and resync its message IDs
 */
static void activate(private_sasync_promote_t *this, ike_sa_t *ike_sa)
{
	ike_sa->set_state(ike_sa, IKE_ESTABLISHED);
	if (ike_sa->get_version(ike_sa) == IKEV2 &&
		ike_sa->supports_extension(ike_sa, EXT_IKE_MESSAGE_ID_SYNC))
	{
		sasync_midsync_start(ike_sa, this->counters);
	}
}

METHOD(sasync_promote_t, promote, bool,
	private_sasync_promote_t *this, char *reason, u_int *count)
{
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	u_int activated = 0;

	if (!this->role->set(this->role, SASYNC_ROLE_PRIMARY, reason))
	{
		return FALSE;
	}
	this->counters->inc(this->counters, SASYNC_CTR_PROMOTIONS);
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if (ike_sa->get_state(ike_sa) == IKE_PASSIVE)
		{
			activate(this, ike_sa);
			activated++;
		}
	}
	enumerator->destroy(enumerator);
	DBG1(DBG_APP, "sasync: promoted, %u IKE_SAs activated", activated);
	if (count)
	{
		*count = activated;
	}
	return TRUE;
}

METHOD(sasync_promote_t, demote, bool,
	private_sasync_promote_t *this, char *reason)
{
	if (!this->role->set(this->role, SASYNC_ROLE_STANDBY, reason))
	{
		return FALSE;
	}
	this->counters->inc(this->counters, SASYNC_CTR_DEMOTIONS);
	return TRUE;
}

METHOD(sasync_promote_t, destroy, void,
	private_sasync_promote_t *this)
{
	free(this);
}

/*
 * Described in header
 */
sasync_promote_t *sasync_promote_create(sasync_role_t *role,
										sasync_counters_t *counters)
{
	private_sasync_promote_t *this;

	INIT(this,
		.public = {
			.promote = _promote,
			.demote = _demote,
			.destroy = _destroy,
		},
		.role = role,
		.counters = counters,
	);
	return &this->public;
}
