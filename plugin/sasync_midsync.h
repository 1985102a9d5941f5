/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_midsync sasync_midsync
 * @{ @ingroup sasync
 */

#ifndef SASYNC_MIDSYNC_H_
#define SASYNC_MIDSYNC_H_

#include "sasync_counters.h"

#include <sa/ike_sa.h>

/**
 * Start an RFC 6311 message ID synchronisation as the cluster (initiator).
 *
 * charon only implements the responder side. The request is an
 * INFORMATIONAL with message ID 0 carrying our next sending and expected
 * receiving message IDs; the peer answers with the values both sides then
 * use. The exchange runs in a job, after the caller checked the SA in.
 *
 * @param ike_sa		established IKEv2 SA whose peer supports RFC 6311
 * @param counters		counters (mid-sync-rfc6311 on success)
 */
void sasync_midsync_start(ike_sa_t *ike_sa, sasync_counters_t *counters);

#endif /** SASYNC_MIDSYNC_H_ @}*/
