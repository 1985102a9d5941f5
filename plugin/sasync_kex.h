/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_kex sasync_kex
 * @{ @ingroup sasync
 */

#ifndef SASYNC_KEX_H_
#define SASYNC_KEX_H_

#include <crypto/key_exchange.h>

/**
 * A key exchange that only knows the shared secret synced from the active
 * node, so a standby derives the same IKE keys through charon's keymat.
 *
 * @param method		key exchange method of the IKE SA
 * @param secret		shared secret, cloned
 * @param my_value		our public value (IKEv1 derives the IV from it),
 *						cloned, chunk_empty if not needed
 * @return				key exchange object
 */
key_exchange_t *sasync_kex_create(key_exchange_method_t method, chunk_t secret,
								  chunk_t my_value);

#endif /** SASYNC_KEX_H_ @}*/
