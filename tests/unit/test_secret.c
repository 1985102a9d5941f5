/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_secret.h"
#include "sasync_link.h"
#include "link_test_util.h"

#include <credentials/sets/mem_cred.h>

/** identity of the sync keys, as in swanctl.conf's secrets */
#define ID "sasync-cluster"

/** random-looking keys of 32 bytes and more */
#define KEY1 "0123456789abcdefghijklmnopqrstuv"
#define KEY2 "ABCDEFGHIJKLMNOPQRSTUVWXYZ-+*/.,"
#define KEY3 "the third key, with !\"#$%&'()=~|{}"

/** what swanctl loaded, added to lib->credmgr as vici does */
static mem_cred_t *creds;

static void setup(void)
{
	creds = mem_cred_create();
	lib->credmgr->add_set(lib->credmgr, &creds->set);
}

static void teardown(void)
{
	lib->credmgr->remove_set(lib->credmgr, &creds->set);
	creds->destroy(creds);
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.secret", NULL,
						   lib->ns);
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.secret_file",
						   NULL, lib->ns);
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.secret_id",
						   NULL, lib->ns);
}

/**
 * Load a key as swanctl does, "ike-<name> { id = <owner> secret = <key> }";
 * owner NULL for a secret without id (vici makes it %any's)
 */
static void load(char *name, shared_key_type_t type, char *owner, char *key)
{
	linked_list_t *owners = linked_list_create();

	owners->insert_last(owners, owner ? identification_create_from_string(owner)
						: identification_create_from_encoding(ID_ANY,
															  chunk_empty));
	creds->add_shared_unique(creds, name, shared_key_create(type,
						chunk_clone(chunk_from_str(key))), owners);
}

static int lookup(chunk_t keys[SASYNC_KEYS_MAX], int *weak)
{
	identification_t *id = identification_create_from_string(ID);
	int count;

	count = sasync_secret_lookup(id, keys, weak);
	id->destroy(id);
	return count;
}

START_TEST(test_lookup)
{
	chunk_t keys[SASYNC_KEYS_MAX];
	int weak;

	ck_assert_int_eq(lookup(keys, &weak), 0);
	ck_assert_int_eq(weak, 0);
	ck_assert(!keys[0].len && !keys[1].len);

	load("ike-sasync", SHARED_IKE, ID, KEY1);
	ck_assert_int_eq(lookup(keys, &weak), 1);
	ck_assert(chunk_equals(keys[0], chunk_from_str(KEY1)));
	ck_assert(!keys[1].len);
	sasync_secret_clear(keys);

	/* rotation: a second key; mem_cred_t lists the one loaded last first */
	load("ike-sasync-next", SHARED_IKE, ID, KEY2);
	ck_assert_int_eq(lookup(keys, &weak), 2);
	ck_assert(chunk_equals(keys[0], chunk_from_str(KEY2)));
	ck_assert(chunk_equals(keys[1], chunk_from_str(KEY1)));
	sasync_secret_clear(keys);

	/* a third is not used: two keys at most */
	load("ike-sasync-third", SHARED_IKE, ID, KEY3);
	ck_assert_int_eq(lookup(keys, &weak), 2);
	ck_assert(chunk_equals(keys[0], chunk_from_str(KEY3)));
	sasync_secret_clear(keys);

	/* the first removed, as swanctl --load-creds unloads it */
	creds->remove_shared_unique(creds, "ike-sasync");
	creds->remove_shared_unique(creds, "ike-sasync-third");
	ck_assert_int_eq(lookup(keys, &weak), 1);
	ck_assert(chunk_equals(keys[0], chunk_from_str(KEY2)));
	sasync_secret_clear(keys);
	ck_assert(!keys[0].len);
}
END_TEST

/**
 * Keys of other identities, of any identity, of a wildcard or of another
 * type are not the sync keys
 */
START_TEST(test_other_keys)
{
	chunk_t keys[SASYNC_KEYS_MAX];
	int weak;

	load("ike-any", SHARED_IKE, NULL, KEY1);
	load("ike-other", SHARED_IKE, "other-cluster", KEY1);
	load("ike-wildcard", SHARED_IKE, "*-cluster", KEY1);
	load("eap-sasync", SHARED_EAP, ID, KEY1);
	ck_assert_int_eq(lookup(keys, &weak), 0);
	ck_assert_int_eq(weak, 0);
	ck_assert(!keys[0].len);

	load("ike-sasync", SHARED_IKE, ID, KEY2);
	ck_assert_int_eq(lookup(keys, &weak), 1);
	ck_assert(chunk_equals(keys[0], chunk_from_str(KEY2)));
	sasync_secret_clear(keys);
}
END_TEST

START_TEST(test_weak)
{
	chunk_t keys[SASYNC_KEYS_MAX];
	int weak;

	/* 31 bytes */
	load("ike-short", SHARED_IKE, ID, "0123456789abcdefghijklmnopqrstu");
	/* 32 bytes of 15 distinct values */
	load("ike-pattern", SHARED_IKE, ID, "0123456789abcde0123456789abcde01");
	ck_assert_int_eq(lookup(keys, &weak), 0);
	ck_assert_int_eq(weak, 2);
	ck_assert(!keys[0].len);

	/* 16 distinct values pass */
	load("ike-sasync", SHARED_IKE, ID, "0123456789abcdef0123456789abcdef");
	ck_assert_int_eq(lookup(keys, &weak), 1);
	ck_assert_int_eq(weak, 2);
	ck_assert(chunk_equals(keys[0],
						   chunk_from_str("0123456789abcdef0123456789abcdef")));
	sasync_secret_clear(keys);
}
END_TEST

/**
 * The key source counts lookups without a valid key and follows changes
 */
START_TEST(test_creds_source)
{
	sasync_counters_t *ctr = sasync_counters_create();
	sasync_secret_creds_t *source;
	chunk_t keys[SASYNC_KEYS_MAX];

	source = sasync_secret_creds_create(identification_create_from_string(ID),
										ctr);
	ck_assert_int_eq(source->get_keys(source, keys), 0);
	ck_assert_int_eq(source->get_keys(source, keys), 0);
	ck_assert_int_eq(ctr->get(ctr, SASYNC_CTR_SYNC_NO_KEY), 2);

	load("ike-weak", SHARED_IKE, ID, "short");
	ck_assert_int_eq(source->get_keys(source, keys), 0);
	ck_assert_int_eq(ctr->get(ctr, SASYNC_CTR_SYNC_NO_KEY), 3);

	load("ike-sasync", SHARED_IKE, ID, KEY1);
	ck_assert_int_eq(source->get_keys(source, keys), 1);
	ck_assert(chunk_equals(keys[0], chunk_from_str(KEY1)));
	sasync_secret_clear(keys);
	ck_assert_int_eq(ctr->get(ctr, SASYNC_CTR_SYNC_NO_KEY), 3);

	creds->remove_shared_unique(creds, "ike-sasync");
	ck_assert_int_eq(source->get_keys(source, keys), 0);
	ck_assert_int_eq(ctr->get(ctr, SASYNC_CTR_SYNC_NO_KEY), 4);
	source->destroy(source);
	ctr->destroy(ctr);
}
END_TEST

static void set(char *name, char *value)
{
	lib->settings->set_str(lib->settings, "%s.plugins.sasync.%s", value,
						   lib->ns, name);
}

/**
 * Exactly one key source: secret, secret_file or secret_id
 */
START_TEST(test_one_source)
{
	chunk_t keys[SASYNC_KEYS_MAX];
	identification_t *id;
	char *hex = "0x27bb41b1b37236ab53f18642b83735e8"
				"907c344d1cfcdfdcf83480f7a75aced1";

	ck_assert(!sasync_secret_id());
	ck_assert_int_eq(sasync_secret_load(keys), 0);

	set("secret_id", ID);
	id = sasync_secret_id();
	ck_assert(id);
	ck_assert_str_eq(id->get_encoding(id).ptr, ID);
	id->destroy(id);

	/* secret_id and secret: neither */
	set("secret", hex);
	ck_assert(!sasync_secret_id());
	ck_assert_int_eq(sasync_secret_load(keys), 0);
	ck_assert(!keys[0].len);

	set("secret_id", "");
	ck_assert(!sasync_secret_id());
	ck_assert_int_eq(sasync_secret_load(keys), 1);
	sasync_secret_clear(keys);

	/* secret and secret_file: neither (the file is not even read) */
	set("secret_file", "/nonexistent");
	ck_assert_int_eq(sasync_secret_load(keys), 0);
}
END_TEST

static bool out_up(sasync_link_t *link)
{
	return peer_state(link).out_up;
}

/** a link taking its keys from the credentials, on port to peer */
static sasync_link_t *creds_link(uint16_t port, uint16_t peer,
								 sasync_counters_t *ctr,
								 sasync_secret_creds_t **source)
{
	sasync_link_t *link;

	link = link_create(port, peer, "", ctr);
	ck_assert(link);
	*source = sasync_secret_creds_create(
							identification_create_from_string(ID), ctr);
	link->set_key_source(link, (void*)(*source)->get_keys, *source);
	return link;
}

/**
 * Two links with keys from the credentials come up once a key is loaded,
 * and after a rotation a restarted partner connects with the new one, while
 * the old one is refused
 */
START_TEST(test_link_rotation)
{
	sasync_counters_t *ctr_a, *ctr_b, *ctr_c;
	sasync_secret_creds_t *src_a, *src_b;
	uint16_t port_a = free_port(), port_b = free_port(), port_c = free_port();
	sasync_link_t *a, *b, *c;
	uint64_t auth_bad;

	link_test_threads();
	ctr_a = sasync_counters_create();
	ctr_b = sasync_counters_create();
	ctr_c = sasync_counters_create();
	a = creds_link(port_a, port_b, ctr_a, &src_a);
	b = creds_link(port_b, port_a, ctr_b, &src_b);

	/* no key yet: nothing is made, both count it */
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_NO_KEY) >= 2 &&
					   ctr_b->get(ctr_b, SASYNC_CTR_SYNC_NO_KEY) >= 2));
	ck_assert(!out_up(a) && !out_up(b));

	load("ike-sasync", SHARED_IKE, ID, KEY1);
	ck_assert(WAIT_FOR(out_up(a) && out_up(b)));

	/* rotation: the second key added, then the first removed */
	load("ike-sasync-next", SHARED_IKE, ID, KEY2);
	creds->remove_shared_unique(creds, "ike-sasync");
	b->destroy(b);
	src_b->destroy(src_b);
	b = creds_link(port_b, port_a, ctr_b, &src_b);
	ck_assert(WAIT_FOR(out_up(b)));
	ck_assert(WAIT_FOR(out_up(a)));

	/* a node still on the first key is refused */
	auth_bad = ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD);
	c = link_create(port_c, port_a, KEY1, ctr_c);
	ck_assert(c);
	ck_assert(WAIT_FOR(ctr_a->get(ctr_a, SASYNC_CTR_SYNC_RX_AUTH_BAD) >
					   auth_bad));
	ck_assert(!out_up(c));

	c->destroy(c);
	b->destroy(b);
	a->destroy(a);
	src_b->destroy(src_b);
	src_a->destroy(src_a);
	ctr_a->destroy(ctr_a);
	ctr_b->destroy(ctr_b);
	ctr_c->destroy(ctr_c);
}
END_TEST

Suite *secret_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("secret");
	tc = tcase_create("credentials");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lookup);
	tcase_add_test(tc, test_other_keys);
	tcase_add_test(tc, test_weak);
	tcase_add_test(tc, test_creds_source);
	tcase_add_test(tc, test_one_source);
	tcase_add_test(tc, test_link_rotation);
	suite_add_tcase(s, tc);
	return s;
}
