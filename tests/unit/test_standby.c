/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * sasync_standby's listener on charon's real bus: the first message of an
 * IKE SA the node initiates itself goes through ike_sa_t.generate_message()
 * as charon's task managers send it. On a standby it is refused (nothing
 * encoded, so nothing could be sent; initiate-refused counted), on the
 * primary the same message is encoded. Messages of IKE SAs the peer
 * initiated, of passive ones and received ones pass on a standby too.
 */

#include <check.h>

#include "sasync_standby.h"

#include <daemon.h>

static sasync_role_t *role;
static sasync_counters_t *counters;
static sasync_standby_t *standby;

static void setup()
{
	role = sasync_role_create(SASYNC_ROLE_STANDBY);
	counters = sasync_counters_create();
	standby = sasync_standby_create(role, counters);
	charon->bus->add_listener(charon->bus, &standby->listener);
}

static void teardown()
{
	charon->bus->set_sa(charon->bus, NULL);
	charon->bus->remove_listener(charon->bus, &standby->listener);
	standby->destroy(standby);
	counters->destroy(counters);
	role->destroy(role);
}

static uint64_t refused()
{
	return counters->get(counters, SASYNC_CTR_INITIATE_REFUSED);
}

/**
 * An IKE SA in state IKE_CONNECTING, started by this node if initiator
 */
static ike_sa_t *connecting_sa(ike_version_t version, bool initiator)
{
	ike_sa_id_t *id;
	ike_sa_t *ike_sa;

	id = ike_sa_id_create(version == IKEV1 ? IKEV1_MAJOR_VERSION
										   : IKEV2_MAJOR_VERSION,
						  0x1122334455667788ULL,
						  initiator ? 0 : 0x8877665544332211ULL, initiator);
	ike_sa = ike_sa_create(id, initiator, version);
	id->destroy(id);
	ck_assert(ike_sa);
	ike_sa->set_my_host(ike_sa, host_create_from_string("192.0.2.1", 500));
	ike_sa->set_other_host(ike_sa, host_create_from_string("203.0.113.5", 500));
	ike_sa->set_condition(ike_sa, COND_ORIGINAL_INITIATOR, initiator);
	ike_sa->set_state(ike_sa, IKE_CONNECTING);
	charon->bus->set_sa(charon->bus, ike_sa);
	return ike_sa;
}

/**
 * A message of the IKE SA, addressed as its task manager does
 */
static message_t *ikev2_message(ike_sa_t *ike_sa, exchange_type_t type,
								bool request)
{
	message_t *message;
	host_t *me = ike_sa->get_my_host(ike_sa);
	host_t *other = ike_sa->get_other_host(ike_sa);

	message = message_create(IKEV2_MAJOR_VERSION, IKEV2_MINOR_VERSION);
	message->set_source(message, me->clone(me));
	message->set_destination(message, other->clone(other));
	message->set_exchange_type(message, type);
	message->set_request(message, request);
	message->set_message_id(message, 0);
	return message;
}

static void destroy_sa(ike_sa_t *ike_sa)
{
	charon->bus->set_sa(charon->bus, NULL);
	ike_sa->destroy(ike_sa);
}

/**
 * Generate an IKE_SA_INIT message of the IKE SA as the task manager does;
 * TRUE if it was encoded
 */
static bool generate(ike_sa_t *ike_sa, bool request, exchange_type_t *type)
{
	message_t *message = ikev2_message(ike_sa, IKE_SA_INIT, request);
	packet_t *packet = NULL;
	status_t status;

	status = ike_sa->generate_message(ike_sa, message, &packet);
	*type = message->get_exchange_type(message);
	if (status == SUCCESS)
	{
		ck_assert(packet);
		ck_assert(packet->get_data(packet).len > 0);
		packet->destroy(packet);
	}
	message->destroy(message);
	return status == SUCCESS;
}

START_TEST(test_refused_on_standby)
{
	ike_sa_t *ike_sa = connecting_sa(IKEV2, TRUE);
	exchange_type_t type;

	ck_assert(!generate(ike_sa, TRUE, &type));
	ck_assert_int_eq(type, EXCHANGE_TYPE_UNDEFINED);
	ck_assert_int_eq(refused(), 1);
	destroy_sa(ike_sa);
}
END_TEST

/**
 * The IKE_SA_INIT request (initiator) or response of a new IKE SA is
 * encoded, nothing refused
 */
static void check_passes(bool initiator)
{
	ike_sa_t *ike_sa = connecting_sa(IKEV2, initiator);
	exchange_type_t type;

	ck_assert(generate(ike_sa, initiator, &type));
	ck_assert_int_eq(type, IKE_SA_INIT);
	ck_assert_int_eq(refused(), 0);
	destroy_sa(ike_sa);
}

START_TEST(test_passes_on_primary)
{
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "test"));
	check_passes(TRUE);
}
END_TEST

START_TEST(test_role_read_per_message)
{
	ike_sa_t *ike_sa = connecting_sa(IKEV2, TRUE);
	exchange_type_t type;

	ck_assert(!generate(ike_sa, TRUE, &type));
	ck_assert(role->set(role, SASYNC_ROLE_PRIMARY, "promoted"));
	ck_assert(generate(ike_sa, TRUE, &type));
	ck_assert_int_eq(type, IKE_SA_INIT);
	ck_assert(role->set(role, SASYNC_ROLE_STANDBY, "demoted"));
	ck_assert(!generate(ike_sa, TRUE, &type));
	ck_assert_int_eq(refused(), 2);
	destroy_sa(ike_sa);
}
END_TEST

START_TEST(test_responder_passes)
{
	/* the IKE_SA_INIT response to a peer that initiates */
	check_passes(FALSE);
}
END_TEST

START_TEST(test_incoming_and_passive_pass)
{
	ike_sa_t *ike_sa = connecting_sa(IKEV2, TRUE);
	message_t *message = ikev2_message(ike_sa, IKE_SA_INIT, FALSE);

	/* a received message of an IKE SA we initiated */
	charon->bus->message(charon->bus, message, TRUE, TRUE);
	ck_assert_int_eq(message->get_exchange_type(message), IKE_SA_INIT);
	message->destroy(message);
	/* our own IKE SA once past IKE_CONNECTING (here passive, as a restored
	 * one on a standby; an INFORMATIONAL of it is no initiation: a passive
	 * SA sends nothing anyway) */
	ike_sa->set_state(ike_sa, IKE_PASSIVE);
	message = ikev2_message(ike_sa, INFORMATIONAL, TRUE);
	charon->bus->message(charon->bus, message, FALSE, TRUE);
	ck_assert_int_eq(message->get_exchange_type(message), INFORMATIONAL);
	message->destroy(message);
	ck_assert_int_eq(refused(), 0);
	destroy_sa(ike_sa);
}
END_TEST

START_TEST(test_ikev1_refused)
{
	ike_sa_t *ike_sa = connecting_sa(IKEV1, TRUE);
	message_t *message;

	message = message_create(IKEV1_MAJOR_VERSION, IKEV1_MINOR_VERSION);
	message->set_exchange_type(message, ID_PROT);
	message->set_request(message, TRUE);
	charon->bus->message(charon->bus, message, FALSE, TRUE);
	ck_assert_int_eq(message->get_exchange_type(message),
					 EXCHANGE_TYPE_UNDEFINED);
	message->destroy(message);
	ck_assert_int_eq(refused(), 1);
	destroy_sa(ike_sa);
}
END_TEST

Suite *standby_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("standby");
	tc = tcase_create("initiation");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_refused_on_standby);
	tcase_add_test(tc, test_passes_on_primary);
	tcase_add_test(tc, test_role_read_per_message);
	tcase_add_test(tc, test_responder_passes);
	tcase_add_test(tc, test_incoming_and_passive_pass);
	tcase_add_test(tc, test_ikev1_refused);
	suite_add_tcase(s, tc);
	return s;
}
