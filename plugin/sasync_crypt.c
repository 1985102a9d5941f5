/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_crypt.h"

#include <crypto/kdfs/kdf.h>
#include <utils/debug.h>

/** frame version we speak */
#define FRAME_VERSION 1

/** u32 length, u8 version, u8 type, u64 seq */
#define FRAME_HDR_LEN (4 + 1 + 1 + 8)

/** label that separates our keys from any other use of the secret */
#define KDF_LABEL "sasync v2"

/** key and salt sizes of both AEADs we use */
#define AEAD_KEY_LEN 32
#define AEAD_SALT_LEN 4

typedef struct private_sasync_crypt_t private_sasync_crypt_t;

/**
 * Private data of a sasync_crypt_t object.
 */
struct private_sasync_crypt_t {

	/**
	 * Public interface.
	 */
	sasync_crypt_t public;

	/**
	 * AEAD keyed for our sending direction
	 */
	aead_t *out;

	/**
	 * AEAD keyed for the other side's sending direction
	 */
	aead_t *in;

	/**
	 * Sequence number of the next frame we seal
	 */
	uint64_t seq_out;

	/**
	 * Sequence number of the last frame we accepted
	 */
	uint64_t seq_in;
};

/**
 * Write the clear frame header, which is also the associated data
 */
static void write_header(u_char *pos, size_t frame_len, uint8_t type,
						 uint64_t seq)
{
	htoun32(pos, frame_len - 4);
	pos[4] = FRAME_VERSION;
	pos[5] = type;
	htoun64(pos + 6, seq);
}

METHOD(sasync_crypt_t, get_overhead, size_t,
	private_sasync_crypt_t *this)
{
	return FRAME_HDR_LEN + this->out->get_icv_size(this->out);
}

METHOD(sasync_crypt_t, seal_into, bool,
	private_sasync_crypt_t *this, uint8_t type, chunk_t plain, u_char *out)
{
	size_t icv_len, len;

	/* the sequence number is the IV: it must never wrap under one key */
	if (this->seq_out == UINT64_MAX)
	{
		return FALSE;
	}
	icv_len = this->out->get_icv_size(this->out);
	if (plain.len > UINT32_MAX - FRAME_HDR_LEN - icv_len)
	{
		return FALSE;
	}
	len = FRAME_HDR_LEN + plain.len + icv_len;
	write_header(out, len, type, this->seq_out);
	if (plain.len)
	{
		memmove(out + FRAME_HDR_LEN, plain.ptr, plain.len);
	}
	/* encrypted in place, the ICV goes into the space after the payload */
	if (!this->out->encrypt(this->out,
							chunk_create(out + FRAME_HDR_LEN, plain.len),
							chunk_create(out, FRAME_HDR_LEN),
							chunk_create(out + 6, 8), NULL))
	{
		memwipe(out + FRAME_HDR_LEN, plain.len);
		return FALSE;
	}
	this->seq_out++;
	return TRUE;
}

METHOD(sasync_crypt_t, seal, bool,
	private_sasync_crypt_t *this, uint8_t type, chunk_t plain, chunk_t *frame)
{
	chunk_t out;

	if (plain.len > UINT32_MAX - get_overhead(this))
	{
		return FALSE;
	}
	out = chunk_alloc(get_overhead(this) + plain.len);
	if (!seal_into(this, type, plain, out.ptr))
	{
		chunk_free(&out);
		return FALSE;
	}
	*frame = out;
	return TRUE;
}

METHOD(sasync_crypt_t, open_, sasync_open_t,
	private_sasync_crypt_t *this, chunk_t frame, uint8_t *type, chunk_t *plain)
{
	chunk_t data;
	size_t icv_len;
	uint64_t seq;

	icv_len = this->in->get_icv_size(this->in);
	if (frame.len < FRAME_HDR_LEN + icv_len ||
		untoh32(frame.ptr) != frame.len - 4)
	{
		return SASYNC_OPEN_BAD_LEN;
	}
	if (frame.ptr[4] != FRAME_VERSION)
	{
		return SASYNC_OPEN_BAD_VERSION;
	}
	seq = untoh64(frame.ptr + 6);
	/* decrypted in place in our own copy: some AEADs leak the buffer they
	 * allocate when verification fails, and the caller's frame stays intact */
	data = chunk_clone(chunk_skip(frame, FRAME_HDR_LEN));
	if (!this->in->decrypt(this->in, data, chunk_create(frame.ptr, FRAME_HDR_LEN),
						   chunk_create(frame.ptr + 6, 8), NULL))
	{
		chunk_clear(&data);
		return SASYNC_OPEN_AUTH_FAILED;
	}
	/* checked only on authentic frames, so a forged sequence number is
	 * reported as what it is. TCP delivers in order: only last+1 is valid */
	if (seq != this->seq_in + 1)
	{
		chunk_clear(&data);
		return SASYNC_OPEN_REPLAY;
	}
	this->seq_in = seq;
	*type = frame.ptr[5];
	data.len -= icv_len;
	*plain = data;
	return SASYNC_OPEN_OK;
}

METHOD(sasync_crypt_t, destroy, void,
	private_sasync_crypt_t *this)
{
	/* the AEADs wipe their own key schedules */
	DESTROY_IF(this->out);
	DESTROY_IF(this->in);
	free(this);
}

/**
 * Create an AEAD of an algorithm we use
 */
static aead_t *create_aead(encryption_algorithm_t alg)
{
	aead_t *aead;

	aead = lib->crypto->create_aead(lib->crypto, alg, AEAD_KEY_LEN,
									AEAD_SALT_LEN);
	/* we neither pad nor support other IV sizes than our sequence number */
	if (aead && (aead->get_block_size(aead) != 1 ||
				 aead->get_iv_size(aead) != 8))
	{
		aead->destroy(aead);
		aead = NULL;
	}
	return aead;
}

/**
 * Our AEADs, in the order we prefer them, and their bits in a HELLO
 */
static struct {
	encryption_algorithm_t alg;
	uint8_t bit;
} aeads[] = {
	{ ENCR_CHACHA20_POLY1305, SASYNC_AEAD_CHACHA20_POLY1305 },
	{ ENCR_AES_GCM_ICV16, SASYNC_AEAD_AES_GCM_256 },
};

/*
 * Described in header
 */
uint8_t sasync_crypt_supported()
{
	aead_t *aead;
	uint8_t mask = 0;
	int i;

	for (i = 0; i < countof(aeads); i++)
	{
		aead = create_aead(aeads[i].alg);
		if (aead)
		{
			mask |= aeads[i].bit;
			aead->destroy(aead);
		}
	}
	return mask;
}

/*
 * Described in header
 */
encryption_algorithm_t sasync_crypt_choose(uint8_t ours, uint8_t theirs)
{
	int i;

	for (i = 0; i < countof(aeads); i++)
	{
		if (ours & theirs & aeads[i].bit)
		{
			return aeads[i].alg;
		}
	}
	return ENCR_UNDEFINED;
}

/**
 * Derive both direction keys with prf+ and install them
 */
static bool derive_keys(private_sasync_crypt_t *this,
						encryption_algorithm_t alg, chunk_t secret,
						chunk_t hello_i, chunk_t hello_r, bool initiator)
{
	chunk_t seed, keymat = chunk_empty, key_ir, key_ri;
	uint16_t alg_n = htons(alg);
	kdf_t *prf_plus;
	size_t key_len;
	bool ok = FALSE;

	key_len = this->out->get_key_size(this->out);
	/* both HELLOs whole: nonces, instance ids, names and the AEADs offered;
	 * a change by anyone in between gives other keys and fails AUTH */
	seed = chunk_cata("cccc", chunk_from_str(KDF_LABEL),
					  chunk_from_thing(alg_n), hello_i, hello_r);
	prf_plus = lib->crypto->create_kdf(lib->crypto, KDF_PRF_PLUS,
									   PRF_HMAC_SHA2_256);
	if (prf_plus &&
		prf_plus->set_param(prf_plus, KDF_PARAM_KEY, secret) &&
		prf_plus->set_param(prf_plus, KDF_PARAM_SALT, seed) &&
		prf_plus->allocate_bytes(prf_plus, 2 * key_len, &keymat))
	{
		key_ir = chunk_create(keymat.ptr, key_len);
		key_ri = chunk_create(keymat.ptr + key_len, key_len);
		ok = this->out->set_key(this->out, initiator ? key_ir : key_ri) &&
			 this->in->set_key(this->in, initiator ? key_ri : key_ir);
	}
	DESTROY_IF(prf_plus);
	chunk_clear(&keymat);
	return ok;
}

/*
 * Described in header
 */
sasync_crypt_t *sasync_crypt_create(encryption_algorithm_t alg,
									chunk_t secret, chunk_t hello_i,
									chunk_t hello_r, bool initiator)
{
	private_sasync_crypt_t *this;

	if (secret.len < SASYNC_SECRET_MIN || hello_i.len < SASYNC_NONCE_LEN ||
		hello_r.len < SASYNC_NONCE_LEN)
	{
		return NULL;
	}

	INIT(this,
		.public = {
			.get_overhead = _get_overhead,
			.seal_into = _seal_into,
			.seal = _seal,
			.open = _open_,
			.destroy = _destroy,
		},
		.out = create_aead(alg),
		.in = create_aead(alg),
		.seq_out = 1,
	);

	if (!this->out || !this->in)
	{
		DBG1(DBG_APP, "sasync: AEAD %N not available, load the chapoly, "
			 "aes/gcm or openssl plugin", encryption_algorithm_names, alg);
		destroy(this);
		return NULL;
	}
	if (!derive_keys(this, alg, secret, hello_i, hello_r, initiator))
	{
		DBG1(DBG_APP, "sasync: deriving sync channel keys failed, is the "
			 "kdf, hmac or sha2 plugin missing?");
		destroy(this);
		return NULL;
	}
	return &this->public;
}
