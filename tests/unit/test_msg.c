/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <check.h>

#include "sasync_msg.h"

#include <library.h>
#include <sa/authenticator.h>

/**
 * A record of the given type with one attribute of every kind
 */
static sasync_msg_t *build_full(sasync_msg_type_t type)
{
	sasync_msg_t *msg = sasync_msg_create(type);
	host_t *host4 = host_create_from_string("198.18.0.100", 4500);
	host_t *host6 = host_create_from_string("2001:db8::1", 500);
	identification_t *id = identification_create_from_string("cluster@test");
	proposal_t *proposal = proposal_create_from_string(PROTO_IKE,
											"aes256-sha256-modp2048");
	traffic_selector_t *ts = traffic_selector_create_from_cidr(
											"198.18.2.0/24", 0, 0, 65535);
	mark_t mark = { .value = 42, .mask = 0xffffffff };

	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_I, 0x1122334455667788ULL);
	msg->add_int(msg, SASYNC_ATTR_IKE_VERSION, 2);
	msg->add_int(msg, SASYNC_ATTR_OLD_PRF, 0xbeef);
	msg->add_int(msg, SASYNC_ATTR_MID_I, 0xdeadbeef);
	msg->add_mark(msg, SASYNC_ATTR_MARK_IN, mark);
	msg->add_chunk(msg, SASYNC_ATTR_NAME, chunk_from_str("site"));
	msg->add_chunk(msg, SASYNC_ATTR_SECRET, chunk_from_chars(1, 2, 3, 4));
	msg->add_host(msg, SASYNC_ATTR_LOCAL_HOST, host4);
	msg->add_host(msg, SASYNC_ATTR_REMOTE_HOST, host6);
	msg->add_id(msg, SASYNC_ATTR_LOCAL_ID, id);
	msg->add_proposal(msg, SASYNC_ATTR_PROPOSAL, proposal);
	msg->add_ts(msg, SASYNC_ATTR_LOCAL_TS, ts);
	msg->add_ts(msg, SASYNC_ATTR_LOCAL_TS, ts);
	/* IKEv1 and dialup attributes */
	msg->add_int(msg, SASYNC_ATTR_AUTH_METHOD, AUTH_XAUTH_INIT_PSK);
	msg->add_chunk(msg, SASYNC_ATTR_LOCAL_KE, chunk_from_chars(5, 6, 7));
	msg->add_chunk(msg, SASYNC_ATTR_PSK, chunk_from_str("psk"));
	msg->add_chunk(msg, SASYNC_ATTR_IV, chunk_from_chars(0xaa, 0xbb));
	msg->add_id(msg, SASYNC_ATTR_REMOTE_EAP_ID, id);
	host4->destroy(host4);
	host6->destroy(host6);
	id->destroy(id);
	proposal->destroy(proposal);
	ts->destroy(ts);
	return msg;
}

static void check_full(sasync_msg_t *msg)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;
	identification_t *id;
	proposal_t *proposal;
	uint64_t value;
	host_t *host;
	mark_t mark;
	chunk_t chunk;
	char *name;
	uint16_t alg;
	int count = 0;

	ck_assert(msg->get_int(msg, SASYNC_ATTR_IKE_SPI_I, &value));
	ck_assert(value == 0x1122334455667788ULL);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_IKE_VERSION, &value));
	ck_assert_int_eq(value, 2);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &value));
	ck_assert_int_eq(value, 0xbeef);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_MID_I, &value));
	ck_assert(value == 0xdeadbeef);
	ck_assert(!msg->get_int(msg, SASYNC_ATTR_MID_R, &value));
	ck_assert(msg->get_mark(msg, SASYNC_ATTR_MARK_IN, &mark));
	ck_assert_int_eq(mark.value, 42);
	ck_assert(mark.mask == 0xffffffff);
	name = msg->get_string(msg, SASYNC_ATTR_NAME);
	ck_assert_str_eq(name, "site");
	free(name);
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_SECRET, &chunk));
	ck_assert(chunk_equals(chunk, chunk_from_chars(1, 2, 3, 4)));
	host = msg->get_host(msg, SASYNC_ATTR_LOCAL_HOST);
	ck_assert(host);
	ck_assert_int_eq(host->get_port(host), 4500);
	ck_assert(chunk_equals(host->get_address(host),
						   chunk_from_chars(198, 18, 0, 100)));
	host->destroy(host);
	host = msg->get_host(msg, SASYNC_ATTR_REMOTE_HOST);
	ck_assert(host && host->get_family(host) == AF_INET6);
	ck_assert_int_eq(host->get_port(host), 500);
	host->destroy(host);
	id = msg->get_id(msg, SASYNC_ATTR_LOCAL_ID);
	ck_assert(id && id->get_type(id) == ID_RFC822_ADDR);
	ck_assert(chunk_equals(id->get_encoding(id),
						   chunk_from_str("cluster@test")));
	id->destroy(id);
	proposal = msg->get_proposal(msg, SASYNC_ATTR_PROPOSAL);
	ck_assert(proposal);
	ck_assert(proposal->get_algorithm(proposal, ENCRYPTION_ALGORITHM, &alg,
									  NULL));
	ck_assert_int_eq(alg, ENCR_AES_CBC);
	ck_assert(proposal->get_algorithm(proposal, KEY_EXCHANGE_METHOD, &alg,
									  NULL));
	ck_assert_int_eq(alg, MODP_2048_BIT);
	proposal->destroy(proposal);
	enumerator = msg->create_ts_enumerator(msg, SASYNC_ATTR_LOCAL_TS);
	while (enumerator->enumerate(enumerator, &ts))
	{
		ck_assert(ts->get_type(ts) == TS_IPV4_ADDR_RANGE);
		ck_assert(chunk_equals(ts->get_to_address(ts),
							   chunk_from_chars(198, 18, 2, 255)));
		count++;
	}
	enumerator->destroy(enumerator);
	ck_assert_int_eq(count, 2);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_AUTH_METHOD, &value));
	ck_assert_int_eq(value, AUTH_XAUTH_INIT_PSK);
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_LOCAL_KE, &chunk));
	ck_assert(chunk_equals(chunk, chunk_from_chars(5, 6, 7)));
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_PSK, &chunk));
	ck_assert(chunk_equals(chunk, chunk_from_str("psk")));
	ck_assert(msg->get_chunk(msg, SASYNC_ATTR_IV, &chunk));
	ck_assert(chunk_equals(chunk, chunk_from_chars(0xaa, 0xbb)));
	id = msg->get_id(msg, SASYNC_ATTR_REMOTE_EAP_ID);
	ck_assert(id && id->get_type(id) == ID_RFC822_ADDR);
	id->destroy(id);
}

START_TEST(test_round_trip)
{
	sasync_msg_t *msg, *parsed;

	msg = build_full(_i);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	ck_assert_int_eq(parsed->get_type(parsed), _i);
	check_full(parsed);
	ck_assert(chunk_equals(msg->get_encoding(msg),
						   parsed->get_encoding(parsed)));
	msg->destroy(msg);
	parsed->destroy(parsed);
}
END_TEST

START_TEST(test_empty)
{
	sasync_msg_t *msg, *parsed;

	msg = sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	ck_assert_int_eq(parsed->get_type(parsed), SASYNC_MSG_RESYNC_REQUEST);
	parsed->destroy(parsed);
	msg->destroy(msg);
}
END_TEST

START_TEST(test_truncated)
{
	sasync_msg_t *msg;
	chunk_t data;
	size_t len;

	msg = build_full(SASYNC_MSG_IKE_ADD);
	data = msg->get_encoding(msg);
	for (len = 0; len < data.len; len++)
	{
		ck_assert(!sasync_msg_parse(chunk_create(data.ptr, len)));
	}
	msg->destroy(msg);
}
END_TEST

/**
 * Offsets of all attribute length fields in an encoding
 */
static int length_offsets(chunk_t data, size_t *offsets, int max)
{
	size_t pos = 4;
	int count = 0;

	while (pos + 4 <= data.len && count < max)
	{
		offsets[count++] = pos + 2;
		pos += 4 + untoh16(data.ptr + pos + 2);
	}
	return count;
}

START_TEST(test_length_off_by_one)
{
	sasync_msg_t *msg;
	size_t offsets[64];
	chunk_t data, copy;
	int count, i, delta;

	msg = build_full(SASYNC_MSG_CHILD_ADD);
	data = msg->get_encoding(msg);
	count = length_offsets(data, offsets, countof(offsets));
	ck_assert(count > 10);
	for (i = 0; i < count; i++)
	{
		for (delta = -1; delta <= 1; delta += 2)
		{
			copy = chunk_clone(data);
			htoun16(copy.ptr + offsets[i],
					untoh16(copy.ptr + offsets[i]) + delta);
			ck_assert(!sasync_msg_parse(copy));
			chunk_free(&copy);
		}
	}
	/* the attribute count, too */
	for (delta = -1; delta <= 1; delta += 2)
	{
		copy = chunk_clone(data);
		htoun16(copy.ptr + 2, untoh16(copy.ptr + 2) + delta);
		ck_assert(!sasync_msg_parse(copy));
		chunk_free(&copy);
	}
	msg->destroy(msg);
}
END_TEST

START_TEST(test_unknown_types)
{
	sasync_msg_t *msg;
	chunk_t copy;

	msg = build_full(SASYNC_MSG_IKE_ADD);
	copy = chunk_clone(msg->get_encoding(msg));
	copy.ptr[1] = SASYNC_MSG_TYPE_MAX;
	ck_assert(!sasync_msg_parse(copy));
	copy.ptr[1] = 0;
	ck_assert(!sasync_msg_parse(copy));
	copy.ptr[1] = SASYNC_MSG_IKE_ADD;
	copy.ptr[0] = SASYNC_MSG_VERSION + 1;
	ck_assert(!sasync_msg_parse(copy));
	copy.ptr[0] = SASYNC_MSG_VERSION;
	/* first attribute type */
	htoun16(copy.ptr + 4, SASYNC_ATTR_MAX);
	ck_assert(!sasync_msg_parse(copy));
	htoun16(copy.ptr + 4, 0);
	ck_assert(!sasync_msg_parse(copy));
	chunk_free(&copy);
	msg->destroy(msg);
}
END_TEST

START_TEST(test_wrong_value_size)
{
	sasync_msg_t *msg;
	chunk_t data;

	/* an u32 attribute with 3 bytes, lengths otherwise consistent */
	data = chunk_from_chars(SASYNC_MSG_VERSION, SASYNC_MSG_IKE_MID, 0, 1,
							0, SASYNC_ATTR_MID_I, 0, 3, 1, 2, 3);
	ck_assert(!sasync_msg_parse(data));
	/* a host with a bad family */
	data = chunk_from_chars(SASYNC_MSG_VERSION, SASYNC_MSG_IKE_ADD, 0, 1,
							0, SASYNC_ATTR_LOCAL_HOST, 0, 7,
							5, 1, 2, 3, 4, 0, 1);
	msg = sasync_msg_parse(data);
	ck_assert(msg);
	ck_assert(!msg->get_host(msg, SASYNC_ATTR_LOCAL_HOST));
	msg->destroy(msg);
}
END_TEST

START_TEST(test_garbage)
{
	sasync_msg_t *msg;
	rng_t *rng;
	chunk_t data;
	int i, accepted = 0;

	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	ck_assert(rng);
	for (i = 0; i < 5000; i++)
	{
		ck_assert(rng->allocate_bytes(rng, 1 + i % 300, &data));
		msg = sasync_msg_parse(data);
		if (msg)
		{	/* only possible if the bytes happen to be well-formed */
			accepted++;
			msg->destroy(msg);
		}
		chunk_free(&data);
	}
	ck_assert(accepted < 50);
	rng->destroy(rng);
}
END_TEST

/**
 * Wire numbers of every attribute and record type: a record written by one
 * version must parse the same in every later one
 */
START_TEST(test_wire_numbers)
{
	struct {
		int value;
		int wire;
	} attrs[] = {
		{ SASYNC_ATTR_IKE_SPI_I, 1 },
		{ SASYNC_ATTR_IKE_SPI_R, 2 },
		{ SASYNC_ATTR_OLD_SPI_I, 3 },
		{ SASYNC_ATTR_OLD_SPI_R, 4 },
		{ SASYNC_ATTR_TIMESTAMP, 5 },
		{ SASYNC_ATTR_IKE_VERSION, 6 },
		{ SASYNC_ATTR_IKE_INITIATOR, 7 },
		{ SASYNC_ATTR_CHILD_INITIATOR, 8 },
		{ SASYNC_ATTR_PROTOCOL, 9 },
		{ SASYNC_ATTR_MODE, 10 },
		{ SASYNC_ATTR_ENCAP, 11 },
		{ SASYNC_ATTR_IPCOMP, 12 },
		{ SASYNC_ATTR_OLD_PRF, 13 },
		{ SASYNC_ATTR_AUTH_METHOD, 14 },
		{ SASYNC_ATTR_CPI_IN, 15 },
		{ SASYNC_ATTR_CPI_OUT, 16 },
		{ SASYNC_ATTR_EXTENSIONS, 17 },
		{ SASYNC_ATTR_CONDITIONS, 18 },
		{ SASYNC_ATTR_MID_I, 19 },
		{ SASYNC_ATTR_MID_R, 20 },
		{ SASYNC_ATTR_UNIQUE, 21 },
		{ SASYNC_ATTR_SPI_IN, 22 },
		{ SASYNC_ATTR_SPI_OUT, 23 },
		{ SASYNC_ATTR_REQID, 24 },
		{ SASYNC_ATTR_IF_ID_IN, 25 },
		{ SASYNC_ATTR_IF_ID_OUT, 26 },
		{ SASYNC_ATTR_MARK_IN, 27 },
		{ SASYNC_ATTR_MARK_OUT, 28 },
		{ SASYNC_ATTR_NAME, 29 },
		{ SASYNC_ATTR_CHILD_NAME, 30 },
		{ SASYNC_ATTR_NONCE_I, 31 },
		{ SASYNC_ATTR_NONCE_R, 32 },
		{ SASYNC_ATTR_SECRET, 33 },
		{ SASYNC_ATTR_OLD_SKD, 34 },
		{ SASYNC_ATTR_ENCR_IN, 35 },
		{ SASYNC_ATTR_INTEG_IN, 36 },
		{ SASYNC_ATTR_ENCR_OUT, 37 },
		{ SASYNC_ATTR_INTEG_OUT, 38 },
		{ SASYNC_ATTR_LOCAL_KE, 39 },
		{ SASYNC_ATTR_REMOTE_KE, 40 },
		{ SASYNC_ATTR_PSK, 41 },
		{ SASYNC_ATTR_IV, 42 },
		{ SASYNC_ATTR_LOCAL_HOST, 43 },
		{ SASYNC_ATTR_REMOTE_HOST, 44 },
		{ SASYNC_ATTR_LOCAL_VIP, 45 },
		{ SASYNC_ATTR_REMOTE_VIP, 46 },
		{ SASYNC_ATTR_LOCAL_ID, 47 },
		{ SASYNC_ATTR_REMOTE_ID, 48 },
		{ SASYNC_ATTR_REMOTE_EAP_ID, 49 },
		{ SASYNC_ATTR_PROPOSAL, 50 },
		{ SASYNC_ATTR_LOCAL_TS, 51 },
		{ SASYNC_ATTR_REMOTE_TS, 52 },
		{ SASYNC_ATTR_RESYNC_TOTAL, 53 },
		{ SASYNC_ATTR_HANDOVER, 54 },
	}, types[] = {
		{ SASYNC_MSG_IKE_ADD, 1 },
		{ SASYNC_MSG_IKE_MID, 2 },
		{ SASYNC_MSG_IKE_REKEYED, 3 },
		{ SASYNC_MSG_IKE_DELETE, 4 },
		{ SASYNC_MSG_CHILD_ADD, 5 },
		{ SASYNC_MSG_CHILD_DELETE, 6 },
		{ SASYNC_MSG_RESYNC_REQUEST, 7 },
		{ SASYNC_MSG_RESYNC_DONE, 8 },
		{ SASYNC_MSG_CHILD_PENDING, 9 },
		{ SASYNC_MSG_CHILD_REKEYED, 10 },
		{ SASYNC_MSG_RESYNC_START, 11 },
	};
	int i;

	for (i = 0; i < countof(attrs); i++)
	{
		ck_assert_int_eq(attrs[i].value, attrs[i].wire);
	}
	ck_assert_int_eq(SASYNC_ATTR_MAX, countof(attrs) + 1);
	for (i = 0; i < countof(types); i++)
	{
		ck_assert_int_eq(types[i].value, types[i].wire);
	}
	ck_assert_int_eq(SASYNC_MSG_VERSION, 1);
}
END_TEST

/**
 * A record as a version 1 node writes it, byte by byte: u8 version, u8 type,
 * u16 count, then per attribute u16 type, u16 length, value (big endian)
 */
START_TEST(test_golden_record)
{
	chunk_t data = chunk_from_chars(
		0x01, 0x05, 0x00, 0x05,
		0x00, 0x01, 0x00, 0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x00, 0x09, 0x00, 0x01, 0x03,
		0x00, 0x0f, 0x00, 0x02, 0xbe, 0xef,
		0x00, 0x16, 0x00, 0x04, 0xc0, 0xff, 0xee, 0x01,
		0x00, 0x1e, 0x00, 0x03, 'n', 'e', 't');
	sasync_msg_t *msg, *copy;
	uint64_t value;
	char *name;

	msg = sasync_msg_parse(data);
	ck_assert(msg != NULL);
	ck_assert_int_eq(msg->get_type(msg), SASYNC_MSG_CHILD_ADD);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_IKE_SPI_I, &value));
	ck_assert(value == 0x1122334455667788ULL);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_PROTOCOL, &value));
	ck_assert_int_eq(value, 3);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_CPI_IN, &value));
	ck_assert_int_eq(value, 0xbeef);
	ck_assert(msg->get_int(msg, SASYNC_ATTR_SPI_IN, &value));
	ck_assert_int_eq(value, 0xc0ffee01);
	name = msg->get_string(msg, SASYNC_ATTR_CHILD_NAME);
	ck_assert_str_eq(name, "net");
	free(name);

	/* and written back the same */
	copy = sasync_msg_create(SASYNC_MSG_CHILD_ADD);
	copy->add_int(copy, SASYNC_ATTR_IKE_SPI_I, 0x1122334455667788ULL);
	copy->add_int(copy, SASYNC_ATTR_PROTOCOL, 3);
	copy->add_int(copy, SASYNC_ATTR_CPI_IN, 0xbeef);
	copy->add_int(copy, SASYNC_ATTR_SPI_IN, 0xc0ffee01);
	copy->add_chunk(copy, SASYNC_ATTR_CHILD_NAME, chunk_from_str("net"));
	ck_assert(chunk_equals(copy->get_encoding(copy), data));
	copy->destroy(copy);
	msg->destroy(msg);
}
END_TEST

START_TEST(test_empty_string)
{
	sasync_msg_t *msg, *parsed;
	char *name;

	/* an empty string attribute has no data: decoded as "", not a copy of
	 * a NULL pointer */
	msg = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	msg->add_chunk(msg, SASYNC_ATTR_NAME, chunk_empty);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	name = parsed->get_string(parsed, SASYNC_ATTR_NAME);
	ck_assert(name);
	ck_assert_str_eq(name, "");
	free(name);
	parsed->destroy(parsed);
	msg->destroy(msg);
}
END_TEST

/**
 * Names from records go to logs: control characters come out as '?', a
 * NUL ends the name
 */
START_TEST(test_string_escaped)
{
	sasync_msg_t *msg, *parsed;
	char *name;

	msg = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	msg->add_chunk(msg, SASYNC_ATTR_NAME,
				   chunk_from_str("gw\n\033[31m\x7fok"));
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	name = parsed->get_string(parsed, SASYNC_ATTR_NAME);
	ck_assert_str_eq(name, "gw??[31m?ok");
	free(name);
	parsed->destroy(parsed);
	msg->destroy(msg);
}
END_TEST

/**
 * Count what an enumerator of hosts or traffic selectors yields
 */
static int count_values(enumerator_t *enumerator)
{
	void *value;
	int count = 0;

	while (enumerator->enumerate(enumerator, &value))
	{
		count++;
	}
	enumerator->destroy(enumerator);
	return count;
}

START_TEST(test_enumerator_kind)
{
	sasync_msg_t *msg, *parsed;
	chunk_t ts, host;

	/* bytes that decode as a traffic selector and as an IPv4 host, in
	 * attributes of other kinds (a proposal and a name): the enumerators
	 * refuse them as the getters do (found by tests/fuzz) */
	ts = chunk_from_chars(TS_IPV4_ADDR_RANGE, 0, 0, 0, 0xff, 0xff,
						  198, 18, 2, 0, 198, 18, 2, 255);
	host = chunk_from_chars(4, 198, 18, 0, 1, 0x01, 0xf4);
	msg = sasync_msg_create(SASYNC_MSG_CHILD_ADD);
	msg->add_chunk(msg, SASYNC_ATTR_NAME, host);
	msg->add_chunk(msg, SASYNC_ATTR_CHILD_NAME, ts);
	parsed = sasync_msg_parse(msg->get_encoding(msg));
	ck_assert(parsed);
	ck_assert_int_eq(count_values(parsed->create_host_enumerator(parsed,
										SASYNC_ATTR_NAME)), 0);
	ck_assert_int_eq(count_values(parsed->create_ts_enumerator(parsed,
										SASYNC_ATTR_CHILD_NAME)), 0);
	ck_assert_int_eq(count_values(parsed->create_ts_enumerator(parsed,
										SASYNC_ATTR_NAME)), 0);
	parsed->destroy(parsed);
	msg->destroy(msg);
}
END_TEST

Suite *msg_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("msg");

	tc = tcase_create("round trip");
	tcase_add_loop_test(tc, test_round_trip, SASYNC_MSG_IKE_ADD,
						SASYNC_MSG_TYPE_MAX);
	tcase_add_test(tc, test_empty);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_length_off_by_one);
	tcase_add_test(tc, test_unknown_types);
	tcase_add_test(tc, test_wrong_value_size);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_wire_numbers);
	tcase_add_test(tc, test_golden_record);
	tcase_add_test(tc, test_empty_string);
	tcase_add_test(tc, test_string_escaped);
	tcase_add_test(tc, test_enumerator_kind);
	suite_add_tcase(s, tc);
	return s;
}
