/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_crypt sasync_crypt
 * @{ @ingroup sasync
 */

#ifndef SASYNC_CRYPT_H_
#define SASYNC_CRYPT_H_

#include <library.h>

typedef struct sasync_crypt_t sasync_crypt_t;

/** length of the per-connection nonce each side contributes */
#define SASYNC_NONCE_LEN 32

/** minimum length of the shared secret */
#define SASYNC_SECRET_MIN 16

/**
 * Result of opening a frame.
 */
typedef enum {
	SASYNC_OPEN_OK,
	/** frame too short or its length fields are inconsistent */
	SASYNC_OPEN_BAD_LEN,
	/** unsupported version */
	SASYNC_OPEN_BAD_VERSION,
	/** AEAD verification failed: tampered, or another secret */
	SASYNC_OPEN_AUTH_FAILED,
	/** sequence number not the next expected one: replayed or reordered */
	SASYNC_OPEN_REPLAY,
} sasync_open_t;

/**
 * AEAD protection of sync frames in one direction pair of one connection.
 *
 * Keys come from the shared secret and both sides' nonces, so each
 * connection (and each direction) has its own keys. Every frame carries an
 * explicit 64-bit sequence number that must be exactly the next expected
 * one, which rejects replayed, reordered and dropped frames.
 *
 * Frame layout (all big endian):
 *   u32 length (of what follows), u8 version, u8 type, u64 seq,
 *   AEAD ciphertext of the payload with ICV; length, version, type and seq
 *   are authenticated as associated data.
 */
struct sasync_crypt_t {

	/**
	 * Protect a payload into a frame, consuming the next send sequence number.
	 *
	 * @param type		frame type, authenticated in clear
	 * @param plain		payload
	 * @param frame		allocated frame
	 * @return			TRUE if successful
	 */
	bool (*seal)(sasync_crypt_t *this, uint8_t type, chunk_t plain,
				 chunk_t *frame);

	/**
	 * Verify and decrypt a complete frame (as delimited by its length).
	 *
	 * @param frame		complete frame, including the length field
	 * @param type		frame type
	 * @param plain		allocated payload, on SASYNC_OPEN_OK
	 * @return			result
	 */
	sasync_open_t (*open)(sasync_crypt_t *this, chunk_t frame, uint8_t *type,
						  chunk_t *plain);

	/**
	 * Destroy a sasync_crypt_t, wiping keys.
	 */
	void (*destroy)(sasync_crypt_t *this);
};

/**
 * Derive the connection keys and create the frame protection.
 *
 * @param secret		shared secret (at least SASYNC_SECRET_MIN bytes)
 * @param nonce_i		nonce of the connecting side
 * @param nonce_r		nonce of the accepting side
 * @param initiator		TRUE on the connecting side
 * @return				instance, NULL if no AEAD is available
 */
sasync_crypt_t *sasync_crypt_create(chunk_t secret, chunk_t nonce_i,
									chunk_t nonce_r, bool initiator);

#endif /** SASYNC_CRYPT_H_ @}*/
