/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_crypt.h"
#include "test_runner.h"

#include <library.h>

/** without chapoly and openssl: no ChaCha20/Poly1305, AES-GCM it is */
#define PLUGINS_NO_CHAPOLY "random nonce sha2 hmac kdf aes gcm"

#define TYPE_DATA 2

static chunk_t secret, nonce_i, nonce_r;
static encryption_algorithm_t alg;
static sasync_crypt_t *ini, *res;
static rng_t *rng;

static void setup(void)
{
	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ck_assert(rng);
	secret = chunk_from_str("0123456789abcdef-sasync-secret--");
	ck_assert(rng->allocate_bytes(rng, SASYNC_NONCE_LEN, &nonce_i));
	ck_assert(rng->allocate_bytes(rng, SASYNC_NONCE_LEN, &nonce_r));
	/* what a handshake of two such nodes chooses */
	alg = sasync_crypt_choose(sasync_crypt_supported(), 0xff);
	ini = sasync_crypt_create(alg, secret, nonce_i, nonce_r, TRUE);
	res = sasync_crypt_create(alg, secret, nonce_i, nonce_r, FALSE);
	ck_assert(ini && res);
}

static void teardown(void)
{
	ini->destroy(ini);
	res->destroy(res);
	rng->destroy(rng);
	chunk_free(&nonce_i);
	chunk_free(&nonce_r);
}

static void setup_gcm(void)
{
	ck_assert(sasync_test_reinit(PLUGINS_NO_CHAPOLY));
	setup();
}

static void teardown_gcm(void)
{
	teardown();
	ck_assert(sasync_test_reinit(NULL));
}

/** seal a payload that must succeed */
static chunk_t seal(sasync_crypt_t *crypt, char *str)
{
	chunk_t frame;

	ck_assert(crypt->seal(crypt, TYPE_DATA, chunk_from_str(str), &frame));
	return frame;
}

/** open a frame and return the result, the payload is checked on OK */
static sasync_open_t open_check(sasync_crypt_t *crypt, chunk_t frame,
								char *expected)
{
	sasync_open_t result;
	chunk_t plain = chunk_empty;
	uint8_t type = 0;

	result = crypt->open(crypt, frame, &type, &plain);
	if (result == SASYNC_OPEN_OK)
	{
		ck_assert_uint_eq(type, TYPE_DATA);
		if (expected)
		{
			ck_assert(chunk_equals(plain, chunk_from_str(expected)));
		}
		chunk_free(&plain);
	}
	else
	{
		ck_assert(plain.ptr == NULL);
	}
	return result;
}

START_TEST(test_create_invalid)
{
	sasync_crypt_t *crypt;

	crypt = sasync_crypt_create(alg, chunk_from_str("too short"), nonce_i,
								nonce_r, TRUE);
	ck_assert(crypt == NULL);
	crypt = sasync_crypt_create(alg, secret,
								chunk_create(nonce_i.ptr, 31), nonce_r, TRUE);
	ck_assert(crypt == NULL);
	crypt = sasync_crypt_create(alg, secret, nonce_i, chunk_empty,
								FALSE);
	ck_assert(crypt == NULL);
	crypt = sasync_crypt_create(ENCR_AES_CBC, secret, nonce_i, nonce_r,
								FALSE);
	ck_assert(crypt == NULL);
}
END_TEST

START_TEST(test_choose)
{
	uint8_t both = SASYNC_AEAD_CHACHA20_POLY1305 | SASYNC_AEAD_AES_GCM_256;

	ck_assert_int_eq(sasync_crypt_choose(both, both), ENCR_CHACHA20_POLY1305);
	ck_assert_int_eq(sasync_crypt_choose(both, SASYNC_AEAD_AES_GCM_256),
					 ENCR_AES_GCM_ICV16);
	ck_assert_int_eq(sasync_crypt_choose(SASYNC_AEAD_AES_GCM_256,
					 SASYNC_AEAD_CHACHA20_POLY1305), ENCR_UNDEFINED);
	ck_assert_int_eq(sasync_crypt_choose(both, 0x80), ENCR_UNDEFINED);
	/* the crypto plugins of the tests provide both */
	ck_assert_uint_eq(sasync_crypt_supported(), both);
}
END_TEST

START_TEST(test_other_aead)
{
	sasync_crypt_t *other;
	chunk_t frame;

	/* the same secret and HELLOs, another AEAD: keys and cipher differ */
	other = sasync_crypt_create(ENCR_AES_GCM_ICV16, secret, nonce_i, nonce_r,
								FALSE);
	ck_assert(other);
	frame = seal(ini, "aead");
	ck_assert_int_eq(open_check(other, frame, NULL), SASYNC_OPEN_AUTH_FAILED);
	other->destroy(other);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_roundtrip)
{
	size_t sizes[] = { 0, 1, 15, 16, 17, 100, 1500, 70000 };
	chunk_t plain, frame, out;
	uint8_t type;
	int i, dir;

	for (dir = 0; dir < 2; dir++)
	{
		sasync_crypt_t *from = dir ? res : ini, *to = dir ? ini : res;

		for (i = 0; i < countof(sizes); i++)
		{
			plain = chunk_alloc(sizes[i]);
			memset(plain.ptr, 'a' + i, plain.len);
			ck_assert(from->seal(from, 7, plain, &frame));
			/* layout: u32 len, u8 version, u8 type, u64 seq, data, ICV */
			ck_assert_uint_eq(frame.len, 4 + 1 + 1 + 8 + plain.len + 16);
			ck_assert_uint_eq(untoh32(frame.ptr), frame.len - 4);
			ck_assert_uint_eq(frame.ptr[4], 1);
			ck_assert_uint_eq(frame.ptr[5], 7);
			ck_assert_uint_eq(untoh64(frame.ptr + 6), i + 1);
			if (plain.len >= 16)
			{	/* encrypted, not just authenticated */
				ck_assert(!memeq(frame.ptr + 14, plain.ptr, 16));
			}
			ck_assert_int_eq(to->open(to, frame, &type, &out),
							 SASYNC_OPEN_OK);
			ck_assert_uint_eq(type, 7);
			ck_assert_uint_eq(out.len, plain.len);
			ck_assert(!plain.len || memeq(out.ptr, plain.ptr, plain.len));
			chunk_free(&out);
			chunk_free(&frame);
			chunk_free(&plain);
		}
	}
}
END_TEST

/* frames sealed back to back into one buffer (as the link writes a backlog)
 * are those seal() makes, and open one after the other */
START_TEST(test_seal_into)
{
	char *strs[] = { "first", "", "the third record" };
	size_t overhead = ini->get_overhead(ini), len = 0, off = 0;
	sasync_crypt_t *twin;
	u_char buf[256];
	chunk_t frame, expected;
	int i;

	twin = sasync_crypt_create(alg, secret, nonce_i, nonce_r, TRUE);
	ck_assert(twin);
	for (i = 0; i < countof(strs); i++)
	{
		ck_assert(ini->seal_into(ini, TYPE_DATA, chunk_from_str(strs[i]),
								 buf + len));
		expected = seal(twin, strs[i]);
		ck_assert_uint_eq(expected.len, overhead + strlen(strs[i]));
		ck_assert(chunk_equals(chunk_create(buf + len, expected.len),
							   expected));
		chunk_free(&expected);
		len += overhead + strlen(strs[i]);
	}
	for (i = 0; i < countof(strs); i++)
	{
		frame = chunk_create(buf + off, 4 + untoh32(buf + off));
		ck_assert_uint_eq(frame.len, overhead + strlen(strs[i]));
		ck_assert(open_check(res, frame, strs[i]) == SASYNC_OPEN_OK);
		off += frame.len;
	}
	ck_assert_uint_eq(off, len);
	twin->destroy(twin);
}
END_TEST

START_TEST(test_bitflip)
{
	chunk_t frame, copy;
	sasync_open_t result;
	int bit;

	frame = seal(ini, "a record that must not be tampered with");
	copy = chunk_clone(frame);
	for (bit = 0; bit < frame.len * 8; bit++)
	{
		memcpy(copy.ptr, frame.ptr, frame.len);
		copy.ptr[bit / 8] ^= 1 << (bit % 8);
		result = open_check(res, copy, NULL);
		ck_assert_int_ne(result, SASYNC_OPEN_OK);
		if (bit < 32)
		{
			ck_assert_int_eq(result, SASYNC_OPEN_BAD_LEN);
		}
		else if (bit < 40)
		{
			ck_assert_int_eq(result, SASYNC_OPEN_BAD_VERSION);
		}
		else
		{
			ck_assert_int_eq(result, SASYNC_OPEN_AUTH_FAILED);
		}
	}
	/* rejected frames leave the receive state untouched */
	ck_assert_int_eq(open_check(res, frame, "a record that must not be "
								"tampered with"), SASYNC_OPEN_OK);
	chunk_free(&copy);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_truncation)
{
	chunk_t frame, copy;
	sasync_open_t result;
	size_t len;

	frame = seal(ini, "truncate me at every possible length");
	copy = chunk_clone(frame);
	for (len = 0; len < frame.len; len++)
	{
		/* as is: the length field no longer matches */
		memcpy(copy.ptr, frame.ptr, frame.len);
		result = open_check(res, chunk_create(copy.ptr, len), NULL);
		ck_assert_int_eq(result, SASYNC_OPEN_BAD_LEN);

		/* with a length field fixed up to the truncated size */
		if (len >= 4)
		{
			htoun32(copy.ptr, len - 4);
			result = open_check(res, chunk_create(copy.ptr, len), NULL);
			ck_assert(result == SASYNC_OPEN_BAD_LEN ||
					  result == SASYNC_OPEN_AUTH_FAILED);
			ck_assert_int_eq(result, len < 4 + 1 + 1 + 8 + 16 ?
							 SASYNC_OPEN_BAD_LEN : SASYNC_OPEN_AUTH_FAILED);
		}
	}
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_OK);
	chunk_free(&copy);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_length_off_by_one)
{
	chunk_t frame, longer;

	frame = seal(ini, "length");
	htoun32(frame.ptr, frame.len - 4 + 1);
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_BAD_LEN);
	htoun32(frame.ptr, frame.len - 4 - 1);
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_BAD_LEN);
	htoun32(frame.ptr, 0xffffffff);
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_BAD_LEN);

	/* a trailing byte the length field does not cover */
	htoun32(frame.ptr, frame.len - 4);
	longer = chunk_cat("cc", frame, chunk_from_chars(0x00));
	ck_assert_int_eq(open_check(res, longer, NULL), SASYNC_OPEN_BAD_LEN);
	/* ... or covers, but which is not authenticated */
	htoun32(longer.ptr, longer.len - 4);
	ck_assert_int_eq(open_check(res, longer, NULL), SASYNC_OPEN_AUTH_FAILED);

	ck_assert_int_eq(open_check(res, frame, "length"), SASYNC_OPEN_OK);
	chunk_free(&longer);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_version)
{
	chunk_t frame;

	frame = seal(ini, "version");
	frame.ptr[4] = 2;
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_BAD_VERSION);
	frame.ptr[4] = 0;
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_BAD_VERSION);
	frame.ptr[4] = 1;
	ck_assert_int_eq(open_check(res, frame, "version"), SASYNC_OPEN_OK);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_replay)
{
	chunk_t f1, f2;

	f1 = seal(ini, "one");
	f2 = seal(ini, "two");
	ck_assert_int_eq(open_check(res, f1, "one"), SASYNC_OPEN_OK);
	ck_assert_int_eq(open_check(res, f1, NULL), SASYNC_OPEN_REPLAY);
	ck_assert_int_eq(open_check(res, f2, "two"), SASYNC_OPEN_OK);
	ck_assert_int_eq(open_check(res, f2, NULL), SASYNC_OPEN_REPLAY);
	ck_assert_int_eq(open_check(res, f1, NULL), SASYNC_OPEN_REPLAY);
	chunk_free(&f1);
	chunk_free(&f2);
}
END_TEST

START_TEST(test_reorder)
{
	chunk_t f1, f2, f3;

	f1 = seal(ini, "one");
	f2 = seal(ini, "two");
	f3 = seal(ini, "three");
	/* a gap is rejected as well, and does not advance the state */
	ck_assert_int_eq(open_check(res, f2, NULL), SASYNC_OPEN_REPLAY);
	ck_assert_int_eq(open_check(res, f3, NULL), SASYNC_OPEN_REPLAY);
	ck_assert_int_eq(open_check(res, f1, "one"), SASYNC_OPEN_OK);
	ck_assert_int_eq(open_check(res, f3, NULL), SASYNC_OPEN_REPLAY);
	ck_assert_int_eq(open_check(res, f2, "two"), SASYNC_OPEN_OK);
	ck_assert_int_eq(open_check(res, f3, "three"), SASYNC_OPEN_OK);
	chunk_free(&f1);
	chunk_free(&f2);
	chunk_free(&f3);
}
END_TEST

START_TEST(test_wrong_secret)
{
	sasync_crypt_t *other;
	chunk_t frame;

	other = sasync_crypt_create(alg,
						chunk_from_str("0123456789abcdef-sasync-secret-T"),
						nonce_i, nonce_r, FALSE);
	ck_assert(other);
	frame = seal(ini, "secret");
	ck_assert_int_eq(open_check(other, frame, NULL), SASYNC_OPEN_AUTH_FAILED);
	ck_assert_int_eq(open_check(res, frame, "secret"), SASYNC_OPEN_OK);
	other->destroy(other);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_other_nonces)
{
	sasync_crypt_t *other;
	chunk_t frame, swapped;

	/* the same secret but another connection's nonces */
	other = sasync_crypt_create(alg, secret, nonce_r, nonce_i, FALSE);
	ck_assert(other);
	frame = seal(ini, "nonces");
	ck_assert_int_eq(open_check(other, frame, NULL), SASYNC_OPEN_AUTH_FAILED);
	other->destroy(other);

	/* a frame of another connection with the same seq differs entirely */
	other = sasync_crypt_create(alg, secret, nonce_r, nonce_i, TRUE);
	ck_assert(other);
	ck_assert(other->seal(other, TYPE_DATA, chunk_from_str("nonces"),
						  &swapped));
	ck_assert_uint_eq(swapped.len, frame.len);
	ck_assert(!memeq(swapped.ptr + 14, frame.ptr + 14, frame.len - 14));
	other->destroy(other);
	chunk_free(&swapped);
	chunk_free(&frame);
}
END_TEST

START_TEST(test_directions)
{
	chunk_t f_i, f_r;

	f_i = seal(ini, "from the initiator");
	f_r = seal(res, "from the responder");
	/* same seq, same plaintext length, yet other keys */
	ck_assert(!memeq(f_i.ptr + 14, f_r.ptr + 14, 16));
	/* a frame reflected back to its sender is not accepted */
	ck_assert_int_eq(open_check(ini, f_i, NULL), SASYNC_OPEN_AUTH_FAILED);
	ck_assert_int_eq(open_check(res, f_r, NULL), SASYNC_OPEN_AUTH_FAILED);
	ck_assert_int_eq(open_check(res, f_i, "from the initiator"),
					 SASYNC_OPEN_OK);
	ck_assert_int_eq(open_check(ini, f_r, "from the responder"),
					 SASYNC_OPEN_OK);
	chunk_free(&f_i);
	chunk_free(&f_r);
}
END_TEST

START_TEST(test_garbage)
{
	sasync_open_t result;
	chunk_t garbage;
	uint8_t len;
	int i;

	for (i = 0; i < 2000; i++)
	{
		ck_assert(rng->get_bytes(rng, 1, &len));
		ck_assert(rng->allocate_bytes(rng, len, &garbage));
		if (i % 2 && garbage.len >= 5)
		{	/* plausible header, so the AEAD is what rejects it */
			htoun32(garbage.ptr, garbage.len - 4);
			garbage.ptr[4] = 1;
		}
		result = open_check(res, garbage, NULL);
		ck_assert_int_ne(result, SASYNC_OPEN_OK);
		ck_assert_int_ne(result, SASYNC_OPEN_REPLAY);
		chunk_free(&garbage);
	}
	ck_assert_int_eq(open_check(res, chunk_empty, NULL), SASYNC_OPEN_BAD_LEN);
}
END_TEST

START_TEST(test_gcm_fallback)
{
	aead_t *aead;
	chunk_t frame;
	int bit;

	/* this fixture loads no ChaCha20/Poly1305 implementation */
	aead = lib->crypto->create_aead(lib->crypto, ENCR_CHACHA20_POLY1305, 32, 4);
	ck_assert(aead == NULL);
	ck_assert_uint_eq(sasync_crypt_supported(), SASYNC_AEAD_AES_GCM_256);
	ck_assert_int_eq(alg, ENCR_AES_GCM_ICV16);

	frame = seal(ini, "protected with AES-GCM");
	ck_assert_uint_eq(frame.len, 14 + strlen("protected with AES-GCM") + 16);
	for (bit = 0; bit < frame.len * 8; bit++)
	{
		frame.ptr[bit / 8] ^= 1 << (bit % 8);
		ck_assert_int_ne(open_check(res, frame, NULL), SASYNC_OPEN_OK);
		frame.ptr[bit / 8] ^= 1 << (bit % 8);
	}
	ck_assert_int_eq(open_check(res, frame, "protected with AES-GCM"),
					 SASYNC_OPEN_OK);
	ck_assert_int_eq(open_check(res, frame, NULL), SASYNC_OPEN_REPLAY);
	chunk_free(&frame);
}
END_TEST

Suite *crypt_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("crypt");

	tc = tcase_create("default");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_invalid);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_seal_into);
	tcase_add_test(tc, test_bitflip);
	tcase_add_test(tc, test_truncation);
	tcase_add_test(tc, test_length_off_by_one);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_replay);
	tcase_add_test(tc, test_reorder);
	tcase_add_test(tc, test_wrong_secret);
	tcase_add_test(tc, test_choose);
	tcase_add_test(tc, test_other_aead);
	tcase_add_test(tc, test_other_nonces);
	tcase_add_test(tc, test_directions);
	tcase_add_test(tc, test_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("gcm");
	tcase_add_checked_fixture(tc, setup_gcm, teardown_gcm);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_bitflip);
	tcase_add_test(tc, test_gcm_fallback);
	suite_add_tcase(s, tc);

	return s;
}
