/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_validate sasync_validate
 * @{ @ingroup sasync
 */

#ifndef SASYNC_VALIDATE_H_
#define SASYNC_VALIDATE_H_

#include "sasync_counters.h"
#include "sasync_msg.h"

#include <sa/ike_sa.h>
#include <config/child_cfg.h>
#include <config/ike_cfg.h>

typedef enum sasync_reject_t sasync_reject_t;
typedef struct sasync_validate_t sasync_validate_t;

/**
 * Why a record was rejected: each cause has a counter of its own.
 */
enum sasync_reject_t {
	/** it names an SA this node runs itself (SASYNC_CTR_REJECT_OWN_SA) */
	SASYNC_REJECT_OWN_SA,
	/** its traffic selectors do not fit the child config */
	SASYNC_REJECT_TS,
	/** its addresses do not fit the IKE config */
	SASYNC_REJECT_HOSTS,
	/** its key or IV lengths are not those of its proposal */
	SASYNC_REJECT_KEYS,
	/** too many records wait already (SASYNC_CTR_WAIT_DROPPED) */
	SASYNC_REJECT_WAIT_FULL,
	SASYNC_REJECT_MAX,
};

/**
 * Names of the causes, as in the log ("own-sa", ...).
 */
extern enum_name_t *sasync_reject_names;

/**
 * Counter of a cause.
 */
sasync_counter_t sasync_reject_counter(sasync_reject_t cause);

/**
 * What a standby accepts from a record beyond its authenticity: only what
 * its own configuration allows, as charon would for an SA it negotiated.
 *
 * The checks are functions below; this object counts and logs what they
 * reject. A rejected record is counted under its cause and in apply-failed,
 * each time; it is logged at most once per cause every
 * SASYNC_REJECT_LOG_INTERVAL seconds (the next line says how many were not
 * logged), so a flood of bad records can't flood the log.
 */
struct sasync_validate_t {

	/**
	 * Count a rejected record and log it, unless a record of the same cause
	 * was logged less than SASYNC_REJECT_LOG_INTERVAL seconds ago.
	 *
	 * @param cause		why it was rejected
	 * @param type		type of the record
	 * @param peer		node that sent it, NULL if not known (a retry)
	 * @param detail	what was wrong, for the log
	 * @return			TRUE if it was logged now (report it further then)
	 */
	bool (*reject)(sasync_validate_t *this, sasync_reject_t cause,
				   sasync_msg_type_t type, host_t *peer, char *detail);

	/**
	 * Destroy a sasync_validate_t.
	 */
	void (*destroy)(sasync_validate_t *this);
};

/** seconds between two log lines of the same cause */
#define SASYNC_REJECT_LOG_INTERVAL 10

/**
 * Create the rejection accounting.
 *
 * @param counters		counters to update
 */
sasync_validate_t *sasync_validate_create(sasync_counters_t *counters);

/**
 * Check the addresses of an IKE SA against its IKE config, as charon picks
 * a config for an IKE_SA_INIT: the local address among the config's local
 * addresses (%any: any), the remote among its remote ones (%any for
 * dialup: any). Names in the config are resolved, as charon does.
 *
 * @param ike_cfg		IKE config of the SA
 * @param me			local address
 * @param other			remote address
 * @return				TRUE if both fit
 */
bool sasync_validate_hosts(ike_cfg_t *ike_cfg, host_t *me, host_t *other);

/**
 * Narrow the traffic selectors of a record with the child config, as
 * charon's child_create and quick_mode narrow what a peer proposes (dynamic
 * selectors become the SA's virtual IPs, else its address). The record
 * fits if narrowing cut nothing off: every selector of it lies within the
 * result.
 *
 * @param cfg			child config
 * @param ike_sa		IKE SA the CHILD SA belongs to
 * @param local			TRUE for the local selectors
 * @param supplied		selectors of the record (traffic_selector_t*)
 * @return				narrowed selectors to install, NULL if the record
 *						does not fit (or has none)
 */
linked_list_t *sasync_validate_ts(child_cfg_t *cfg, ike_sa_t *ike_sa,
								  bool local, linked_list_t *supplied);

/**
 * Check the key lengths of a CHILD SA record against its proposal: what
 * charon's keymat derives for its algorithms (salt of AEAD and counter
 * modes included), for the IKE version of the SA.
 *
 * @param proposal		proposal of the CHILD SA, NULL fails
 * @param version		IKE version of its IKE SA
 * @param msg			CHILD_ADD record with ENCR/INTEG_IN/OUT
 * @return				TRUE if all four lengths are right
 */
bool sasync_validate_child_keys(proposal_t *proposal, ike_version_t version,
								sasync_msg_t *msg);

/**
 * Check the IKEv1 phase 1 IV of a record: it must be exactly one block of
 * the SA's IKE encryption algorithm (charon's encryption reads a block from
 * it, whatever its length). Always TRUE for IKEv2 SAs or without an IV.
 *
 * @param ike_sa		IKE SA with its keys derived
 * @param msg			IKE_ADD record
 * @return				TRUE if the IV fits
 */
bool sasync_validate_iv(ike_sa_t *ike_sa, sasync_msg_t *msg);

#endif /** SASYNC_VALIDATE_H_ @}*/
