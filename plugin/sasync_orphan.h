/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_orphan sasync_orphan
 * @{ @ingroup sasync
 */

#ifndef SASYNC_ORPHAN_H_
#define SASYNC_ORPHAN_H_

#include <sa/ike_sa.h>

/**
 * Delete, at the peer, a CHILD SA the failed node had proposed in a
 * CREATE_CHILD_SA exchange it started but did not see answered.
 *
 * The peer installs such a CHILD SA when it answers; the answer went to a
 * dead node, so no one here holds the SA and the peer would keep it, unused,
 * until it expires. An INFORMATIONAL with a Delete payload naming the SPI
 * the failed node proposed (its inbound SPI, the peer's outbound one) makes
 * the peer remove it. A peer that never installed it answers with an empty
 * INFORMATIONAL. The task is queued behind any exchange in progress (the
 * RFC 6311 resync comes first).
 *
 * @param ike_sa		established IKEv2 SA, checked out
 * @param protocol		PROTO_ESP or PROTO_AH
 * @param spi			SPI the failed node proposed (network order)
 */
void sasync_orphan_delete(ike_sa_t *ike_sa, protocol_id_t protocol,
						  uint32_t spi);

#endif /** SASYNC_ORPHAN_H_ @}*/
