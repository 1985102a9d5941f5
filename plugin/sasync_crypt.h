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
#define SASYNC_SECRET_MIN 32

/** AEADs as offered in a HELLO, one bit each */
#define SASYNC_AEAD_CHACHA20_POLY1305 0x01
#define SASYNC_AEAD_AES_GCM_256 0x02

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
 * Keys come from the shared secret and both sides' HELLOs (nonces), so each
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
	 * Bytes a frame adds to its payload: header and ICV.
	 *
	 * @return			overhead per frame
	 */
	size_t (*get_overhead)(sasync_crypt_t *this);

	/**
	 * Protect a payload into a frame at a given place, as seal() does, so
	 * several frames can be written one after the other into one buffer.
	 *
	 * @param type		frame type, authenticated in clear
	 * @param plain		payload
	 * @param out		get_overhead() + plain.len bytes for the frame
	 * @return			TRUE if successful
	 */
	bool (*seal_into)(sasync_crypt_t *this, uint8_t type, chunk_t plain,
					  u_char *out);

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
 * The AEADs we can use, as SASYNC_AEAD_* bits.
 *
 * @return				bits of the available AEADs
 */
uint8_t sasync_crypt_supported();

/**
 * Choose the AEAD of a connection: the first of ours, in our order of
 * preference (ChaCha20/Poly1305, AES-GCM), that the other side offers too.
 *
 * @param ours			SASYNC_AEAD_* bits we offer
 * @param theirs		SASYNC_AEAD_* bits the other side offers
 * @return				algorithm, ENCR_UNDEFINED if none in common
 */
encryption_algorithm_t sasync_crypt_choose(uint8_t ours, uint8_t theirs);

/**
 * Derive the connection keys and create the frame protection. The keys
 * depend on the secret, the algorithm and both HELLOs whole, so that both
 * sides agree on everything the HELLOs said once the AUTH frames verify.
 *
 * @param alg			AEAD, ENCR_CHACHA20_POLY1305 or ENCR_AES_GCM_ICV16
 * @param secret		shared secret (at least SASYNC_SECRET_MIN bytes)
 * @param hello_i		HELLO of the connecting side (with its nonce)
 * @param hello_r		HELLO of the accepting side (with its nonce)
 * @param initiator		TRUE on the connecting side
 * @return				instance, NULL if the AEAD is not available
 */
sasync_crypt_t *sasync_crypt_create(encryption_algorithm_t alg,
									chunk_t secret, chunk_t hello_i,
									chunk_t hello_r, bool initiator);

#endif /** SASYNC_CRYPT_H_ @}*/
