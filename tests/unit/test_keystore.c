/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_keystore.h"
#include "sasync_msg.h"

#include <library.h>
#include <sa/authenticator.h>

/**
 * Bytes 0..len-1 plus an offset, so each value is recognisable
 */
static chunk_t pattern(size_t len, u_char offset)
{
	chunk_t chunk = chunk_alloc(len);
	size_t i;

	for (i = 0; i < len; i++)
	{
		chunk.ptr[i] = offset + i;
	}
	return chunk;
}

/**
 * An IKE entry with the inputs of an IKEv2 SA
 */
static void fill_ikev2(sasync_ike_keys_t *keys, bool rekeyed)
{
	keys->secret = pattern(32, 0x10);
	keys->nonce_i = pattern(32, 0x40);
	keys->nonce_r = pattern(24, 0x80);
	if (rekeyed)
	{
		keys->old_skd = pattern(32, 0xc0);
		keys->old_prf = PRF_HMAC_SHA2_256;
	}
}

/**
 * Encode an entry, then parse the encoding as a standby receives it
 */
static sasync_msg_t *encode_parse(sasync_ike_keys_t *keys,
								  ike_version_t version)
{
	sasync_msg_t *msg, *parsed;

	msg = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	sasync_ike_keys_encode(keys, version, msg);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	msg->destroy(msg);
	return parsed;
}

static bool has_attr(sasync_msg_t *msg, sasync_attr_t attr)
{
	uint64_t value;
	chunk_t chunk;

	return msg->get_chunk(msg, attr, &chunk) || msg->get_int(msg, attr, &value);
}

START_TEST(test_ike_entries)
{
	sasync_keystore_t *store;
	sasync_ike_keys_t *a, *b, *removed;

	store = sasync_keystore_create();
	store->lock(store);
	ck_assert(!store->get_ike(store, 1, FALSE));
	ck_assert_int_eq(store->get_count(store, FALSE), 0);

	a = store->get_ike(store, 1, TRUE);
	ck_assert(a);
	ck_assert(a->held);
	ck_assert(!a->synced);
	ck_assert(!a->secret.len && !a->old_skd.len && !a->replaces);
	ck_assert(store->get_ike(store, 1, FALSE) == a);
	ck_assert(store->get_ike(store, 1, TRUE) == a);
	ck_assert_int_eq(store->get_count(store, FALSE), 1);

	b = store->get_ike(store, 2, TRUE);
	ck_assert(b && b != a);
	ck_assert_int_eq(store->get_count(store, FALSE), 2);
	/* IKE entries are not CHILD entries */
	ck_assert_int_eq(store->get_count(store, TRUE), 0);
	ck_assert(!store->get_child(store, 1));

	/* the entry owns what it holds: held records, the replaced id */
	fill_ikev2(a, TRUE);
	array_insert(a->held, ARRAY_TAIL, sasync_msg_create(SASYNC_MSG_CHILD_ADD));
	a->replaces = ike_sa_id_create(IKEV2_MAJOR_VERSION, 1, 2, TRUE);

	removed = store->remove_ike(store, 1);
	ck_assert(removed == a);
	ck_assert(!store->get_ike(store, 1, FALSE));
	ck_assert(store->get_ike(store, 2, FALSE) == b);
	ck_assert_int_eq(store->get_count(store, FALSE), 1);
	ck_assert(!store->remove_ike(store, 1));
	sasync_ike_keys_destroy(removed);

	/* a new entry under a removed id starts empty */
	a = store->get_ike(store, 1, TRUE);
	ck_assert(a && !a->secret.len && !a->synced);
	store->unlock(store);
	/* destroy frees what is left (valgrind) */
	store->destroy(store);
}
END_TEST

static sasync_child_keys_t *child_keys(u_char offset, bool synced)
{
	sasync_child_keys_t *keys;

	INIT(keys,
		.encr_in = pattern(16, offset),
		.integ_in = pattern(32, offset + 1),
		.encr_out = pattern(16, offset + 2),
		.integ_out = pattern(32, offset + 3),
		.initiator = TRUE,
		.synced = synced,
	);
	return keys;
}

START_TEST(test_child_entries)
{
	sasync_keystore_t *store;
	sasync_child_keys_t *a, *b;

	store = sasync_keystore_create();
	store->lock(store);
	ck_assert(!store->get_child(store, 7));

	a = child_keys(1, FALSE);
	store->put_child(store, 7, a);
	ck_assert(store->get_child(store, 7) == a);
	ck_assert_int_eq(store->get_count(store, TRUE), 1);
	ck_assert_int_eq(store->get_count(store, FALSE), 0);

	/* replaces (and frees, valgrind would report a leak) the previous */
	b = child_keys(100, TRUE);
	store->put_child(store, 7, b);
	ck_assert(store->get_child(store, 7) == b);
	ck_assert(chunk_equals(b->encr_in, chunk_from_chars(100, 101, 102, 103,
		104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115)));
	ck_assert_int_eq(store->get_count(store, TRUE), 1);

	store->put_child(store, 8, child_keys(3, FALSE));
	ck_assert_int_eq(store->get_count(store, TRUE), 2);

	/* remove_child tells whether the standbys held it */
	ck_assert(store->remove_child(store, 7));
	ck_assert(!store->get_child(store, 7));
	ck_assert(!store->remove_child(store, 7));
	ck_assert(!store->remove_child(store, 8));
	ck_assert(!store->get_child(store, 8));
	ck_assert(!store->remove_child(store, 99));
	ck_assert_int_eq(store->get_count(store, TRUE), 0);

	store->put_child(store, 9, child_keys(5, TRUE));
	store->unlock(store);
	store->destroy(store);
}
END_TEST

/**
 * The store lock is recursive: capture takes it in a listener and again in
 * the helpers it calls
 */
START_TEST(test_lock_recursive)
{
	sasync_keystore_t *store;

	store = sasync_keystore_create();
	store->lock(store);
	store->lock(store);
	store->get_ike(store, 3, TRUE);
	/* get_count() locks itself */
	ck_assert_int_eq(store->get_count(store, FALSE), 1);
	store->unlock(store);
	store->unlock(store);
	store->destroy(store);
}
END_TEST

START_TEST(test_encode_ikev2)
{
	sasync_ike_keys_t orig = {}, *decoded;
	sasync_msg_t *msg;
	chunk_t chunk;
	uint64_t value;

	fill_ikev2(&orig, FALSE);
	/* IKEv1 inputs of an IKEv2 SA are not sent */
	orig.local_ke = pattern(8, 1);
	orig.psk = pattern(8, 2);
	orig.iv = pattern(16, 3);
	orig.auth = AUTH_PSK;

	msg = encode_parse(&orig, IKEV2);
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_SECRET, &chunk));
	ck_assert(chunk_equals(chunk, orig.secret));
	ck_assert(!has_attr(msg, SASYNC_ATTR_OLD_SKD));
	ck_assert(!msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &value));
	ck_assert(!has_attr(msg, SASYNC_ATTR_LOCAL_KE));
	ck_assert(!has_attr(msg, SASYNC_ATTR_REMOTE_KE));
	ck_assert(!has_attr(msg, SASYNC_ATTR_PSK));
	ck_assert(!has_attr(msg, SASYNC_ATTR_IV));
	ck_assert(!msg->get_int(msg, SASYNC_ATTR_AUTH_METHOD, &value));

	INIT(decoded, .held = array_create(0, 0));
	ck_assert(sasync_ike_keys_decode(decoded, msg));
	ck_assert(chunk_equals(decoded->secret, orig.secret));
	ck_assert(chunk_equals(decoded->nonce_i, orig.nonce_i));
	ck_assert(chunk_equals(decoded->nonce_r, orig.nonce_r));
	ck_assert(!decoded->old_skd.len);
	ck_assert_int_eq(decoded->old_prf, 0);
	ck_assert(!decoded->local_ke.len && !decoded->psk.len && !decoded->iv.len);
	ck_assert_int_eq(decoded->auth, 0);
	msg->destroy(msg);

	/* a rekeyed SA carries the old SK_d and PRF */
	orig.old_skd = pattern(32, 0xc0);
	orig.old_prf = PRF_HMAC_SHA2_256;
	msg = encode_parse(&orig, IKEV2);
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_OLD_SKD, &chunk));
	ck_assert(chunk_equals(chunk, orig.old_skd));
	ck_assert(msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &value));
	ck_assert_int_eq(value, PRF_HMAC_SHA2_256);
	ck_assert(sasync_ike_keys_decode(decoded, msg));
	ck_assert(chunk_equals(decoded->secret, orig.secret));
	ck_assert(chunk_equals(decoded->old_skd, orig.old_skd));
	ck_assert_int_eq(decoded->old_prf, PRF_HMAC_SHA2_256);
	msg->destroy(msg);

	/* decoding replaces everything: a later record without old SK_d
	 * leaves none */
	chunk_clear(&orig.old_skd);
	orig.old_prf = 0;
	msg = encode_parse(&orig, IKEV2);
	ck_assert(sasync_ike_keys_decode(decoded, msg));
	ck_assert(!decoded->old_skd.len);
	ck_assert_int_eq(decoded->old_prf, 0);
	msg->destroy(msg);

	sasync_ike_keys_destroy(decoded);
	chunk_clear(&orig.secret);
	chunk_free(&orig.nonce_i);
	chunk_free(&orig.nonce_r);
	chunk_free(&orig.local_ke);
	chunk_free(&orig.psk);
	chunk_free(&orig.iv);
}
END_TEST

START_TEST(test_encode_ikev1)
{
	sasync_ike_keys_t orig = {}, *decoded;
	sasync_msg_t *msg;
	chunk_t chunk;
	uint64_t value;

	fill_ikev2(&orig, FALSE);
	orig.local_ke = pattern(64, 0x11);
	orig.remote_ke = pattern(64, 0x22);
	orig.psk = chunk_clone(chunk_from_str("a pre-shared key"));
	orig.iv = pattern(16, 0x33);
	orig.auth = AUTH_XAUTH_INIT_PSK;

	msg = encode_parse(&orig, IKEV1);
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_LOCAL_KE, &chunk));
	ck_assert(chunk_equals(chunk, orig.local_ke));
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_REMOTE_KE, &chunk));
	ck_assert(chunk_equals(chunk, orig.remote_ke));
	ck_assert(msg->get_int(msg, SASYNC_ATTR_AUTH_METHOD, &value));
	ck_assert_int_eq(value, AUTH_XAUTH_INIT_PSK);

	INIT(decoded, .held = array_create(0, 0));
	ck_assert(sasync_ike_keys_decode(decoded, msg));
	ck_assert(chunk_equals(decoded->secret, orig.secret));
	ck_assert(chunk_equals(decoded->nonce_i, orig.nonce_i));
	ck_assert(chunk_equals(decoded->nonce_r, orig.nonce_r));
	ck_assert(chunk_equals(decoded->local_ke, orig.local_ke));
	ck_assert(chunk_equals(decoded->remote_ke, orig.remote_ke));
	ck_assert(chunk_equals(decoded->psk, orig.psk));
	ck_assert(chunk_equals(decoded->iv, orig.iv));
	ck_assert_int_eq(decoded->auth, AUTH_XAUTH_INIT_PSK);
	ck_assert(!decoded->old_skd.len);
	msg->destroy(msg);

	/* certificate authentication, before any phase 1 IV: neither PSK nor IV
	 * is sent, and decoding drops those it had */
	chunk_clear(&orig.psk);
	chunk_free(&orig.iv);
	orig.auth = AUTH_RSA;
	msg = encode_parse(&orig, IKEV1);
	ck_assert(!has_attr(msg, SASYNC_ATTR_PSK));
	ck_assert(!has_attr(msg, SASYNC_ATTR_IV));
	ck_assert(sasync_ike_keys_decode(decoded, msg));
	ck_assert(!decoded->psk.len);
	ck_assert(!decoded->iv.len);
	ck_assert_int_eq(decoded->auth, AUTH_RSA);
	ck_assert(chunk_equals(decoded->local_ke, orig.local_ke));
	msg->destroy(msg);

	sasync_ike_keys_destroy(decoded);
	chunk_clear(&orig.secret);
	chunk_free(&orig.nonce_i);
	chunk_free(&orig.nonce_r);
	chunk_free(&orig.local_ke);
	chunk_free(&orig.remote_ke);
}
END_TEST

/**
 * A record missing the secret (_i == 0) or one of the nonces
 */
START_TEST(test_decode_incomplete)
{
	sasync_attr_t attrs[] = {
		SASYNC_ATTR_SECRET, SASYNC_ATTR_NONCE_I, SASYNC_ATTR_NONCE_R,
	};
	sasync_ike_keys_t *keys;
	sasync_msg_t *msg, *parsed;
	chunk_t value;
	int i;

	msg = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	for (i = 0; i < countof(attrs); i++)
	{
		if (i != _i)
		{
			value = pattern(16, i);
			msg->add_chunk(msg, attrs[i], value);
			chunk_free(&value);
		}
	}
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	INIT(keys, .held = array_create(0, 0));
	ck_assert(!sasync_ike_keys_decode(keys, parsed));
	/* an empty value is no value either */
	msg->add_chunk(msg, attrs[_i], chunk_empty);
	parsed->destroy(parsed);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	ck_assert(!sasync_ike_keys_decode(keys, parsed));
	sasync_ike_keys_destroy(keys);
	parsed->destroy(parsed);
	msg->destroy(msg);
}
END_TEST

START_TEST(test_child_encode)
{
	sasync_child_keys_t *orig, *decoded;
	sasync_msg_t *msg, *parsed;
	uint64_t value;

	orig = child_keys(0x50, FALSE);
	orig->initiator = _i;
	msg = sasync_msg_create(SASYNC_MSG_CHILD_ADD);
	sasync_child_keys_encode(orig, msg);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	ck_assert(parsed->get_int(parsed, SASYNC_ATTR_CHILD_INITIATOR, &value));
	ck_assert_int_eq(value, _i);
	decoded = sasync_child_keys_decode(parsed);
	ck_assert(chunk_equals(decoded->encr_in, orig->encr_in));
	ck_assert(chunk_equals(decoded->integ_in, orig->integ_in));
	ck_assert(chunk_equals(decoded->encr_out, orig->encr_out));
	ck_assert(chunk_equals(decoded->integ_out, orig->integ_out));
	ck_assert_int_eq(decoded->initiator, _i);
	/* what a standby restored was synced by its sender */
	ck_assert(decoded->synced);

	/* the store takes it and reports it synced when it goes */
	{
		sasync_keystore_t *store = sasync_keystore_create();

		store->put_child(store, 42, decoded);
		ck_assert(store->remove_child(store, 42));
		store->put_child(store, 43, orig);
		ck_assert(!store->remove_child(store, 43));
		store->destroy(store);
	}
	parsed->destroy(parsed);
	msg->destroy(msg);
}
END_TEST

START_TEST(test_get_count)
{
	sasync_keystore_t *store;
	sasync_ike_keys_t *keys;
	int i;

	store = sasync_keystore_create();
	store->lock(store);
	for (i = 1; i <= 50; i++)
	{
		store->get_ike(store, i, TRUE);
		store->put_child(store, 1000 + i, child_keys(i, i % 2));
	}
	/* an id twice is one entry */
	store->get_ike(store, 10, TRUE);
	store->put_child(store, 1010, child_keys(0, FALSE));
	store->unlock(store);
	ck_assert_int_eq(store->get_count(store, FALSE), 50);
	ck_assert_int_eq(store->get_count(store, TRUE), 50);

	store->lock(store);
	for (i = 1; i <= 20; i++)
	{
		keys = store->remove_ike(store, i);
		ck_assert(keys);
		sasync_ike_keys_destroy(keys);
		store->remove_child(store, 1000 + i);
	}
	store->unlock(store);
	ck_assert_int_eq(store->get_count(store, FALSE), 30);
	ck_assert_int_eq(store->get_count(store, TRUE), 30);
	store->destroy(store);
}
END_TEST

Suite *keystore_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("keystore");

	tc = tcase_create("entries");
	tcase_add_test(tc, test_ike_entries);
	tcase_add_test(tc, test_child_entries);
	tcase_add_test(tc, test_lock_recursive);
	tcase_add_test(tc, test_get_count);
	suite_add_tcase(s, tc);

	tc = tcase_create("codec");
	tcase_add_test(tc, test_encode_ikev2);
	tcase_add_test(tc, test_encode_ikev1);
	tcase_add_loop_test(tc, test_decode_incomplete, 0, 3);
	tcase_add_loop_test(tc, test_child_encode, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
