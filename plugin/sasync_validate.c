/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_validate.h"

#include <daemon.h>
#include <sa/keymat.h>
#include <threading/mutex.h>

ENUM(sasync_reject_names, SASYNC_REJECT_OWN_SA, SASYNC_REJECT_WAIT_FULL,
	"own-sa",
	"ts",
	"hosts",
	"keys",
	"wait-full",
);

/*
 * Described in header
 */
sasync_counter_t sasync_reject_counter(sasync_reject_t cause)
{
	switch (cause)
	{
		case SASYNC_REJECT_OWN_SA:
			return SASYNC_CTR_REJECT_OWN_SA;
		case SASYNC_REJECT_TS:
			return SASYNC_CTR_REJECT_TS;
		case SASYNC_REJECT_HOSTS:
			return SASYNC_CTR_REJECT_HOSTS;
		case SASYNC_REJECT_KEYS:
			return SASYNC_CTR_REJECT_KEYS;
		case SASYNC_REJECT_WAIT_FULL:
		default:
			return SASYNC_CTR_WAIT_DROPPED;
	}
}

typedef struct private_sasync_validate_t private_sasync_validate_t;

struct private_sasync_validate_t {

	/** public interface */
	sasync_validate_t public;

	/** counters */
	sasync_counters_t *counters;

	/** when each cause was last logged (monotonic s), 0 never */
	time_t logged[SASYNC_REJECT_MAX];

	/** rejections of each cause since its last log line */
	u_int suppressed[SASYNC_REJECT_MAX];

	/** protects logged and suppressed */
	mutex_t *mutex;
};

METHOD(sasync_validate_t, reject, bool,
	private_sasync_validate_t *this, sasync_reject_t cause,
	sasync_msg_type_t type, host_t *peer, char *detail)
{
	time_t now = time_monotonic(NULL);
	u_int suppressed;
	bool log;

	if (cause >= SASYNC_REJECT_MAX)
	{
		cause = SASYNC_REJECT_KEYS;
	}
	this->counters->inc(this->counters, sasync_reject_counter(cause));
	this->counters->inc(this->counters, SASYNC_CTR_APPLY_FAILED);

	this->mutex->lock(this->mutex);
	log = !this->logged[cause] ||
		  now - this->logged[cause] >= SASYNC_REJECT_LOG_INTERVAL;
	suppressed = this->suppressed[cause];
	if (log)
	{
		this->logged[cause] = now;
		this->suppressed[cause] = 0;
	}
	else
	{
		this->suppressed[cause]++;
	}
	this->mutex->unlock(this->mutex);

	if (log && peer)
	{
		DBG1(DBG_APP, "sasync: %N record from %H rejected (%N): %s; %u more "
			 "of this cause since the last such line", sasync_msg_type_names,
			 type, peer, sasync_reject_names, cause, detail, suppressed);
	}
	else if (log)
	{
		DBG1(DBG_APP, "sasync: %N record rejected (%N): %s; %u more of this "
			 "cause since the last such line", sasync_msg_type_names, type,
			 sasync_reject_names, cause, detail, suppressed);
	}
	return log;
}

METHOD(sasync_validate_t, destroy, void,
	private_sasync_validate_t *this)
{
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_validate_t *sasync_validate_create(sasync_counters_t *counters)
{
	private_sasync_validate_t *this;

	INIT(this,
		.public = {
			.reject = _reject,
			.destroy = _destroy,
		},
		.counters = counters,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	return &this->public;
}

/*
 * Described in header
 */
bool sasync_validate_hosts(ike_cfg_t *ike_cfg, host_t *me, host_t *other)
{
	return ike_cfg && me && other &&
		   ike_cfg->match_me(ike_cfg, me) &&
		   ike_cfg->match_other(ike_cfg, other);
}

/**
 * Whether a selector lies within one of a list
 */
static bool ts_within(traffic_selector_t *ts, linked_list_t *list)
{
	enumerator_t *enumerator;
	traffic_selector_t *outer;
	bool found = FALSE;

	enumerator = list->create_enumerator(list);
	while (!found && enumerator->enumerate(enumerator, &outer))
	{
		found = ts->is_contained_in(ts, outer);
	}
	enumerator->destroy(enumerator);
	return found;
}

/*
 * Described in header
 */
linked_list_t *sasync_validate_ts(child_cfg_t *cfg, ike_sa_t *ike_sa,
								  bool local, linked_list_t *supplied)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;
	linked_list_t *hosts, *narrowed;
	bool fits = TRUE;

	if (!supplied->get_count(supplied))
	{
		return NULL;
	}
	hosts = ike_sa_get_dynamic_hosts(ike_sa, local);
	narrowed = cfg->get_traffic_selectors(cfg, local, supplied, hosts, FALSE);
	hosts->destroy(hosts);

	enumerator = supplied->create_enumerator(supplied);
	while (fits && enumerator->enumerate(enumerator, &ts))
	{
		fits = ts_within(ts, narrowed);
	}
	enumerator->destroy(enumerator);
	if (!fits || !narrowed->get_count(narrowed))
	{
		narrowed->destroy_offset(narrowed, offsetof(traffic_selector_t,
													destroy));
		return NULL;
	}
	return narrowed;
}

/**
 * Salt or nonce bytes charon's keymat adds to the key of an AEAD or
 * counter mode algorithm; IKEv1's keymat knows fewer of them
 */
static size_t salt_size(uint16_t alg, ike_version_t version)
{
	switch (alg)
	{
		case ENCR_AES_CCM_ICV8:
		case ENCR_AES_CCM_ICV12:
		case ENCR_AES_CCM_ICV16:
		case ENCR_CAMELLIA_CCM_ICV8:
		case ENCR_CAMELLIA_CCM_ICV12:
		case ENCR_CAMELLIA_CCM_ICV16:
			return 3;
		case ENCR_AES_GCM_ICV8:
		case ENCR_AES_GCM_ICV12:
		case ENCR_AES_GCM_ICV16:
		case ENCR_AES_CTR:
		case ENCR_NULL_AUTH_AES_GMAC:
			return 4;
		case ENCR_CAMELLIA_CTR:
		case ENCR_CHACHA20_POLY1305:
			return version == IKEV2 ? 4 : 0;
		default:
			return 0;
	}
}

/**
 * Key lengths (bytes) charon derives for a CHILD SA proposal, as
 * keymat_v1/v2's derive_child_keys() compute them; FALSE if it derives none
 */
static bool child_key_sizes(proposal_t *proposal, ike_version_t version,
							size_t *encr, size_t *integ)
{
	uint16_t alg, size;

	*encr = *integ = 0;
	if (proposal->get_algorithm(proposal, ENCRYPTION_ALGORITHM, &alg, &size))
	{
		size = size ?: keymat_get_keylen_encr(alg);
		if (alg != ENCR_NULL && !size)
		{
			return FALSE;
		}
		*encr = size / 8 + salt_size(alg, version);
	}
	if (proposal->get_algorithm(proposal, INTEGRITY_ALGORITHM, &alg, &size))
	{
		size = size ?: keymat_get_keylen_integ(alg);
		if (!size)
		{
			return FALSE;
		}
		*integ = size / 8;
	}
	return TRUE;
}

/*
 * Described in header
 */
bool sasync_validate_child_keys(proposal_t *proposal, ike_version_t version,
								sasync_msg_t *msg)
{
	chunk_t encr_in = chunk_empty, integ_in = chunk_empty;
	chunk_t encr_out = chunk_empty, integ_out = chunk_empty;
	size_t encr, integ;

	if (!proposal || !child_key_sizes(proposal, version, &encr, &integ))
	{
		return FALSE;
	}
	msg->get_chunk(msg, SASYNC_ATTR_ENCR_IN, &encr_in);
	msg->get_chunk(msg, SASYNC_ATTR_INTEG_IN, &integ_in);
	msg->get_chunk(msg, SASYNC_ATTR_ENCR_OUT, &encr_out);
	msg->get_chunk(msg, SASYNC_ATTR_INTEG_OUT, &integ_out);
	return encr_in.len == encr && encr_out.len == encr &&
		   integ_in.len == integ && integ_out.len == integ;
}

/*
 * Described in header
 */
bool sasync_validate_iv(ike_sa_t *ike_sa, sasync_msg_t *msg)
{
	keymat_t *keymat;
	aead_t *aead;
	chunk_t iv;

	if (ike_sa->get_version(ike_sa) != IKEV1 ||
		!msg->get_chunk(msg, SASYNC_ATTR_IV, &iv))
	{
		return TRUE;
	}
	keymat = ike_sa->get_keymat(ike_sa);
	aead = keymat->get_aead(keymat, FALSE);
	return aead && iv.len == aead->get_block_size(aead);
}
