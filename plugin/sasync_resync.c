/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_resync.h"
#include "sasync_keystore.h"

#include <daemon.h>
#include <collections/array.h>
#include <collections/hashtable.h>
#include <inttypes.h>

typedef struct private_sasync_resync_t private_sasync_resync_t;

/**
 * Private data of a sasync_resync_t object.
 */
struct private_sasync_resync_t {

	/**
	 * Public interface.
	 */
	sasync_resync_t public;

	/**
	 * Counters
	 */
	sasync_counters_t *counters;

	/**
	 * Initiator SPIs of the IKE SAs seen, NULL outside a resync
	 */
	hashtable_t *ike;

	/**
	 * Inbound SPIs of the CHILD SAs seen
	 */
	hashtable_t *child;

	/**
	 * IKE SAs the primary announced, and those seen when it last finished
	 */
	u_int total;
	u_int seen;
};

/**
 * A key of the tables: SPIs as pointers (on 32-bit systems IKE SPIs are
 * truncated: at worst an SA the primary lost is kept, never the reverse)
 */
static void *key(uint64_t spi)
{
	return (void*)(uintptr_t)(spi ?: 1);
}

/**
 * Forget the tables
 */
static void reset(private_sasync_resync_t *this)
{
	DESTROY_IF(this->ike);
	DESTROY_IF(this->child);
	this->ike = this->child = NULL;
}

METHOD(sasync_resync_t, start, void,
	private_sasync_resync_t *this, u_int total)
{
	reset(this);
	this->total = total;
	this->seen = 0;
	this->ike = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 64);
	this->child = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr,
								   64);
}

METHOD(sasync_resync_t, get_progress, bool,
	private_sasync_resync_t *this, u_int *seen, u_int *total)
{
	*seen = this->ike ? this->ike->get_count(this->ike) : this->seen;
	*total = this->total;
	return this->ike != NULL;
}

METHOD(sasync_resync_t, seen_ike, void,
	private_sasync_resync_t *this, uint64_t spi_i)
{
	if (this->ike)
	{
		this->ike->put(this->ike, key(spi_i), this);
	}
}

METHOD(sasync_resync_t, named_ike, bool,
	private_sasync_resync_t *this, uint64_t spi_i)
{
	return !this->ike || this->ike->get(this->ike, key(spi_i)) != NULL;
}

METHOD(sasync_resync_t, seen_child, void,
	private_sasync_resync_t *this, uint32_t spi_in)
{
	if (this->child)
	{
		this->child->put(this->child, key(spi_in), this);
	}
}

/**
 * Destroy the CHILD SAs of a passive IKE SA the resync did not name, return
 * how many. Whatever their state: one a rekey left DELETED just before the
 * node was demoted is never destroyed otherwise (its delayed delete is
 * refused on a passive IKE SA), and the primary names only installed ones.
 */
static u_int sweep_children(private_sasync_resync_t *this, ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	array_t *gone = NULL;
	uint32_t spi;
	u_int count = 0;

	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		spi = child_sa->get_spi(child_sa, TRUE);
		if (!this->child->get(this->child, key(spi)))
		{
			array_insert_create_value(&gone, sizeof(child_sa_t*), ARRAY_TAIL,
									  &child_sa);
		}
	}
	enumerator->destroy(enumerator);
	while (array_remove(gone, ARRAY_HEAD, &child_sa))
	{
		DBG1(DBG_APP, "sasync: CHILD_SA %s{%u} SPIs %.8x_i %.8x_o not in the "
			 "resync, gone on the primary: destroyed",
			 child_sa->get_name(child_sa), child_sa->get_unique_id(child_sa),
			 ntohl(child_sa->get_spi(child_sa, TRUE)),
			 ntohl(child_sa->get_spi(child_sa, FALSE)));
		ike_sa->destroy_child_sa(ike_sa, child_sa->get_protocol(child_sa),
								 child_sa->get_spi(child_sa, TRUE));
		count++;
	}
	array_destroy(gone);
	return count;
}

METHOD(sasync_resync_t, finish, void,
	private_sasync_resync_t *this)
{
	enumerator_t *enumerator;
	ike_sa_id_t *id;
	ike_sa_t *ike_sa;
	array_t *gone = NULL;
	u_int count = 0;

	if (!this->ike)
	{
		return;
	}
	this->seen = this->ike->get_count(this->ike);
	enumerator = charon->ike_sa_manager->create_enumerator(
												charon->ike_sa_manager, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		if (ike_sa->get_state(ike_sa) != IKE_PASSIVE)
		{
			continue;
		}
		id = ike_sa->get_id(ike_sa);
		if (this->ike->get(this->ike, key(id->get_initiator_spi(id))))
		{
			count += sweep_children(this, ike_sa);
		}
		else
		{
			array_insert_create(&gone, ARRAY_TAIL, id->clone(id));
		}
	}
	enumerator->destroy(enumerator);
	while (array_remove(gone, ARRAY_HEAD, &id))
	{
		ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager, id);
		if (ike_sa)
		{
			DBG1(DBG_APP, "sasync: IKE_SA %s[%u] %.16"PRIx64"_i %.16"PRIx64
				 "_r not in the resync, gone on the primary: destroyed",
				 ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa),
				 be64toh(id->get_initiator_spi(id)),
				 be64toh(id->get_responder_spi(id)));
			sasync_keystore_sync_destroy(ike_sa);
			count++;
		}
		id->destroy(id);
	}
	array_destroy(gone);
	for (; count; count--)
	{
		this->counters->inc(this->counters, SASYNC_CTR_RESYNC_REMOVED);
	}
	reset(this);
}

METHOD(sasync_resync_t, destroy, void,
	private_sasync_resync_t *this)
{
	reset(this);
	free(this);
}

/*
 * Described in header
 */
bool sasync_resync_names_ike(ike_sa_t *ike_sa)
{
	switch (ike_sa->get_state(ike_sa))
	{
		case IKE_ESTABLISHED:
		case IKE_REKEYING:
		case IKE_PASSIVE:
			return TRUE;
		default:
			return FALSE;
	}
}

/*
 * Described in header
 */
bool sasync_resync_names_child(child_sa_t *child_sa)
{
	switch (child_sa->get_state(child_sa))
	{
		case CHILD_INSTALLED:
		case CHILD_UPDATING:
		case CHILD_REKEYING:
			return TRUE;
		default:
			return FALSE;
	}
}

/*
 * Described in header
 */
sasync_resync_t *sasync_resync_create(sasync_counters_t *counters)
{
	private_sasync_resync_t *this;

	INIT(this,
		.public = {
			.start = _start,
			.get_progress = _get_progress,
			.named_ike = _named_ike,
			.seen_ike = _seen_ike,
			.seen_child = _seen_child,
			.finish = _finish,
			.destroy = _destroy,
		},
		.counters = counters,
	);
	return &this->public;
}
