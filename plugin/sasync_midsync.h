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
 * receiving message IDs (the sending one plus one, in case this node missed
 * the last update); the peer answers with the values both sides then use.
 * It is started at once on the checked out SA, so it is the first exchange
 * after promotion: rekeys queued later wait for it.
 *
 * @param ike_sa		established IKEv2 SA whose peer supports RFC 6311,
 *						checked out, with no task active
 * @param counters		counters (mid-sync-rfc6311 on success)
 */
void sasync_midsync_start(ike_sa_t *ike_sa, sasync_counters_t *counters);

/**
 * Read the IKEV2_MESSAGE_ID_SYNC notify of a message: the nonce, the
 * sender's next request ID and the next one it expects.
 *
 * @param message		message with the notify
 * @param nonce			nonce of the notify
 * @param send			next message ID its sender uses for a request
 * @param recv			next message ID its sender expects
 * @return				FALSE if there is none, or not of 12 bytes
 */
bool sasync_midsync_parse(message_t *message, uint32_t *nonce, uint32_t *send,
						  uint32_t *recv);

#endif /** SASYNC_MIDSYNC_H_ @}*/
