/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_role.h"
#include "sasync_kex.h"

typedef struct {
	int calls;
	sasync_role_state_t last;
	char *reason;
} seen_t;

static void on_role(seen_t *seen, sasync_role_state_t role, char *reason)
{
	seen->calls++;
	seen->last = role;
	seen->reason = reason;
}

START_TEST(test_transitions)
{
	sasync_role_t *role = sasync_role_create(SASYNC_ROLE_STANDBY);
	seen_t seen = {};

	role->add_listener(role, (void*)on_role, &seen);
	ck_assert_int_eq(role->get(role), SASYNC_ROLE_STANDBY);
	/* no change, no callback */
	ck_assert(!role->set(role, SASYNC_ROLE_STANDBY, "again"));
	ck_assert_int_eq(seen.calls, 0);
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "promote"));
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_int_eq(seen.last, SASYNC_ROLE_PRIMARY);
	ck_assert_str_eq(seen.reason, "promote");
	ck_assert_int_eq(role->get(role), SASYNC_ROLE_PRIMARY);
	ck_assert(!role->set(role, SASYNC_ROLE_PRIMARY, "twice"));
	ck_assert_int_eq(seen.calls, 1);
	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "demote"));
	ck_assert_int_eq(seen.calls, 2);
	ck_assert_int_eq(seen.last, SASYNC_ROLE_STANDBY);
	role->destroy(role);
}
END_TEST

/**
 * A listener that reads the role while it is being changed
 */
static void reads_role(sasync_role_t **role, sasync_role_state_t state,
					   char *reason)
{
	ck_assert_int_eq((*role)->get(*role), state);
}

START_TEST(test_listener_sees_new_role)
{
	sasync_role_t *role = sasync_role_create(SASYNC_ROLE_PRIMARY);

	role->add_listener(role, (void*)reads_role, &role);
	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "test"));
	role->destroy(role);
}
END_TEST

START_TEST(test_kex)
{
	key_exchange_t *kex;
	chunk_t secret = chunk_from_chars(1, 2, 3), value;

	kex = sasync_kex_create(MODP_2048_BIT, secret, chunk_empty);
	ck_assert_int_eq(kex->get_method(kex), MODP_2048_BIT);
	ck_assert(kex->get_shared_secret(kex, &value));
	ck_assert(chunk_equals(value, secret));
	chunk_clear(&value);
	/* no public value known: IKEv2 never asks */
	ck_assert(!kex->get_public_key(kex, &value));
	ck_assert(!kex->set_public_key(kex, secret));
	kex->destroy(kex);

	kex = sasync_kex_create(MODP_2048_BIT, secret, chunk_from_chars(9, 8));
	ck_assert(kex->get_public_key(kex, &value));
	ck_assert(chunk_equals(value, chunk_from_chars(9, 8)));
	chunk_free(&value);
	kex->destroy(kex);
}
END_TEST

Suite *role_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("role");
	tc = tcase_create("role");
	tcase_add_test(tc, test_transitions);
	tcase_add_test(tc, test_listener_sees_new_role);
	suite_add_tcase(s, tc);
	tc = tcase_create("kex");
	tcase_add_test(tc, test_kex);
	suite_add_tcase(s, tc);
	return s;
}
