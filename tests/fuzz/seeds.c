/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Seed corpora of the fuzz targets, made with the real encoders: records of
 * every type (sasync_msg.c, the key store's encoders), frames sealed by
 * sasync_crypt.c with the fixed key of the frame target, vici messages
 * built by strongSwan's vici_builder in the shape the plugin's commands
 * and sasyncctl exchange.
 *
 * Usage: seeds DIR
 * Writes DIR/record/, DIR/frame/ and DIR/vici/ (one file per seed, named
 * after what it is), in the input formats fuzz_record.c, fuzz_frame.c and
 * fuzz_vici.c describe.
 */

#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include <bio/bio_writer.h>
#include <sa/authenticator.h>
#include <sa/ike_sa.h>
#include <plugins/vici/vici_builder.h>

#include "sasync_msg.h"
#include "sasync_keystore.h"
#include "sasync_link.h"

/** output directory */
static char *out_dir;

/** seeds written */
static int written;

/**
 * Write one seed to DIR/target/name
 */
static void write_seed(char *target, char *name, chunk_t data)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
	{
		fprintf(stderr, "seeds: mkdir %s: %s\n", path, strerror(errno));
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "w");
	if (!f || fwrite(data.ptr, 1, data.len, f) != data.len || fclose(f) != 0)
	{
		fprintf(stderr, "seeds: writing %s failed\n", path);
		exit(1);
	}
	written++;
}

/**
 * Bytes of a given length, a recognizable pattern
 */
static chunk_t bytes(size_t len, u_char seed)
{
	chunk_t data = chunk_alloc(len);
	size_t i;

	for (i = 0; i < len; i++)
	{
		data.ptr[i] = seed + i;
	}
	return data;
}

/**
 * The id of an IKE SA, as every SA record carries it
 */
static sasync_msg_t *ike_record(sasync_msg_type_t type, ike_version_t version)
{
	sasync_msg_t *msg = sasync_msg_create(type);

	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_I, 0x1122334455667788ULL);
	msg->add_int(msg, SASYNC_ATTR_IKE_SPI_R, 0x99aabbccddeeff00ULL);
	msg->add_int(msg, SASYNC_ATTR_IKE_INITIATOR, 0);
	msg->add_int(msg, SASYNC_ATTR_IKE_VERSION, version);
	return msg;
}

static void add_host(sasync_msg_t *msg, sasync_attr_t attr, char *ip,
					 uint16_t port)
{
	host_t *host = host_create_from_string(ip, port);

	msg->add_host(msg, attr, host);
	host->destroy(host);
}

static void add_id(sasync_msg_t *msg, sasync_attr_t attr, char *str)
{
	identification_t *id = identification_create_from_string(str);

	msg->add_id(msg, attr, id);
	id->destroy(id);
}

static void add_proposal(sasync_msg_t *msg, protocol_id_t protocol,
						 char *str)
{
	proposal_t *proposal = proposal_create_from_string(protocol, str);

	msg->add_proposal(msg, SASYNC_ATTR_PROPOSAL, proposal);
	proposal->destroy(proposal);
}

static void add_ts(sasync_msg_t *msg, sasync_attr_t attr, char *net,
				   uint8_t proto, uint16_t from, uint16_t to)
{
	traffic_selector_t *ts;

	ts = traffic_selector_create_from_cidr(net, proto, from, to);
	msg->add_ts(msg, attr, ts);
	ts->destroy(ts);
}

/**
 * An IKE_ADD as capture sends it, with the key inputs of its version
 */
static sasync_msg_t *ike_add(ike_version_t version, bool rekey, bool ipv6)
{
	sasync_ike_keys_t keys = {
		.secret = bytes(32, 0x10),
		.nonce_i = bytes(32, 0x20),
		.nonce_r = bytes(32, 0x30),
		.old_skd = rekey ? bytes(32, 0x40) : chunk_empty,
		.old_prf = PRF_HMAC_SHA2_256,
		.local_ke = version == IKEV1 ? bytes(256, 0x50) : chunk_empty,
		.remote_ke = version == IKEV1 ? bytes(256, 0x60) : chunk_empty,
		.psk = version == IKEV1 ? chunk_from_str("a pre-shared key")
								: chunk_empty,
		.auth = AUTH_PSK,
		.iv = version == IKEV1 ? bytes(16, 0x70) : chunk_empty,
	};
	sasync_msg_t *msg = ike_record(SASYNC_MSG_IKE_ADD, version);

	if (rekey)
	{
		msg->add_int(msg, SASYNC_ATTR_OLD_SPI_I, 0x0102030405060708ULL);
		msg->add_int(msg, SASYNC_ATTR_OLD_SPI_R, 0x1112131415161718ULL);
	}
	msg->add_int(msg, SASYNC_ATTR_UNIQUE, 42);
	msg->add_chunk(msg, SASYNC_ATTR_NAME, chunk_from_str("gw-gw"));
	if (ipv6)
	{
		add_host(msg, SASYNC_ATTR_LOCAL_HOST, "2001:db8::1", 4500);
		add_host(msg, SASYNC_ATTR_REMOTE_HOST, "2001:db8::2", 4500);
		add_host(msg, SASYNC_ATTR_REMOTE_VIP, "2001:db8:1::10", 0);
	}
	else
	{
		add_host(msg, SASYNC_ATTR_LOCAL_HOST, "198.18.0.100", 500);
		add_host(msg, SASYNC_ATTR_REMOTE_HOST, "198.18.0.2", 500);
		add_host(msg, SASYNC_ATTR_REMOTE_VIP, "10.3.0.1", 0);
		add_host(msg, SASYNC_ATTR_REMOTE_VIP, "10.3.0.2", 0);
	}
	add_id(msg, SASYNC_ATTR_LOCAL_ID, "C=CH, O=sasync, CN=gw.example.org");
	add_id(msg, SASYNC_ATTR_REMOTE_ID, "peer@example.org");
	add_id(msg, SASYNC_ATTR_REMOTE_EAP_ID, "carol");
	add_proposal(msg, PROTO_IKE, version == IKEV1 ?
				 "aes128-sha256-modp2048" : "aes256gcm16-prfsha256-ecp256");
	sasync_ike_keys_encode(&keys, version, msg);
	msg->add_int(msg, SASYNC_ATTR_EXTENSIONS, EXT_NATT | EXT_MOBIKE);
	msg->add_int(msg, SASYNC_ATTR_CONDITIONS, COND_NAT_ANY);
	msg->add_int(msg, SASYNC_ATTR_MID_I, 3);
	msg->add_int(msg, SASYNC_ATTR_MID_R, 1);
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, 1700000000000ULL);
	chunk_free(&keys.secret);
	chunk_free(&keys.nonce_i);
	chunk_free(&keys.nonce_r);
	chunk_free(&keys.old_skd);
	chunk_free(&keys.local_ke);
	chunk_free(&keys.remote_ke);
	chunk_free(&keys.iv);
	return msg;
}

/**
 * A CHILD_ADD as capture sends it
 */
static sasync_msg_t *child_add(bool ipv6, bool marks)
{
	sasync_child_keys_t keys = {
		.encr_in = bytes(36, 0x80),
		.encr_out = bytes(36, 0x90),
		.integ_in = bytes(32, 0xa0),
		.integ_out = bytes(32, 0xb0),
		.initiator = TRUE,
	};
	sasync_msg_t *msg = ike_record(SASYNC_MSG_CHILD_ADD, IKEV2);

	msg->add_chunk(msg, SASYNC_ATTR_CHILD_NAME, chunk_from_str("net-net"));
	msg->add_int(msg, SASYNC_ATTR_UNIQUE, 7);
	msg->add_int(msg, SASYNC_ATTR_PROTOCOL, PROTO_ESP);
	msg->add_int(msg, SASYNC_ATTR_MODE, MODE_TUNNEL);
	msg->add_int(msg, SASYNC_ATTR_ENCAP, 1);
	msg->add_int(msg, SASYNC_ATTR_IPCOMP, IPCOMP_NONE);
	msg->add_int(msg, SASYNC_ATTR_CPI_IN, 0);
	msg->add_int(msg, SASYNC_ATTR_CPI_OUT, 0);
	msg->add_int(msg, SASYNC_ATTR_SPI_IN, htonl(0xc1000001));
	msg->add_int(msg, SASYNC_ATTR_SPI_OUT, htonl(0xc2000002));
	msg->add_int(msg, SASYNC_ATTR_REQID, 1);
	if (marks)
	{
		msg->add_mark(msg, SASYNC_ATTR_MARK_IN,
					  (mark_t){ .value = 0x10, .mask = 0xff });
		msg->add_mark(msg, SASYNC_ATTR_MARK_OUT,
					  (mark_t){ .value = 0x20, .mask = 0xff });
		msg->add_int(msg, SASYNC_ATTR_IF_ID_IN, 5);
		msg->add_int(msg, SASYNC_ATTR_IF_ID_OUT, 6);
	}
	if (ipv6)
	{
		add_ts(msg, SASYNC_ATTR_LOCAL_TS, "2001:db8:2::/48", 0, 0, 65535);
		add_ts(msg, SASYNC_ATTR_REMOTE_TS, "2001:db8:1::10/128", 6, 443, 443);
	}
	else
	{
		add_ts(msg, SASYNC_ATTR_LOCAL_TS, "198.18.2.0/24", 0, 0, 65535);
		add_ts(msg, SASYNC_ATTR_LOCAL_TS, "198.18.3.0/24", 17, 53, 53);
		add_ts(msg, SASYNC_ATTR_REMOTE_TS, "10.3.0.1/32", 0, 0, 65535);
	}
	add_proposal(msg, PROTO_ESP, "aes128gcm16-esn");
	sasync_child_keys_encode(&keys, msg);
	msg->add_int(msg, SASYNC_ATTR_TIMESTAMP, 1700000000001ULL);
	chunk_free(&keys.encr_in);
	chunk_free(&keys.encr_out);
	chunk_free(&keys.integ_in);
	chunk_free(&keys.integ_out);
	return msg;
}

/**
 * A record of the CHILD SA of an IKE SA, by its unique id and SPI
 */
static sasync_msg_t *child_record(sasync_msg_type_t type)
{
	sasync_msg_t *msg = ike_record(type, IKEV2);

	msg->add_int(msg, SASYNC_ATTR_UNIQUE, 7);
	msg->add_int(msg, SASYNC_ATTR_PROTOCOL, PROTO_ESP);
	msg->add_int(msg, SASYNC_ATTR_SPI_IN, htonl(0xc1000001));
	return msg;
}

/**
 * Every record type, at least once
 */
static array_t *make_records(void)
{
	array_t *records = array_create(0, 0);
	sasync_msg_t *msg;

	array_insert(records, ARRAY_TAIL, ike_add(IKEV2, FALSE, FALSE));
	array_insert(records, ARRAY_TAIL, ike_add(IKEV2, TRUE, TRUE));
	array_insert(records, ARRAY_TAIL, ike_add(IKEV1, FALSE, FALSE));

	msg = ike_record(SASYNC_MSG_IKE_MID, IKEV2);
	msg->add_int(msg, SASYNC_ATTR_MID_I, 4);
	msg->add_int(msg, SASYNC_ATTR_MID_R, 2);
	array_insert(records, ARRAY_TAIL, msg);

	msg = ike_record(SASYNC_MSG_IKE_REKEYED, IKEV2);
	msg->add_int(msg, SASYNC_ATTR_OLD_SPI_I, 0x0102030405060708ULL);
	msg->add_int(msg, SASYNC_ATTR_OLD_SPI_R, 0x1112131415161718ULL);
	array_insert(records, ARRAY_TAIL, msg);

	array_insert(records, ARRAY_TAIL, ike_record(SASYNC_MSG_IKE_DELETE, IKEV2));
	array_insert(records, ARRAY_TAIL, child_add(FALSE, TRUE));
	array_insert(records, ARRAY_TAIL, child_add(TRUE, FALSE));
	array_insert(records, ARRAY_TAIL, child_record(SASYNC_MSG_CHILD_DELETE));
	array_insert(records, ARRAY_TAIL, sasync_msg_create(SASYNC_MSG_RESYNC_REQUEST));
	array_insert(records, ARRAY_TAIL, sasync_msg_create(SASYNC_MSG_RESYNC_DONE));
	array_insert(records, ARRAY_TAIL, child_record(SASYNC_MSG_CHILD_PENDING));
	array_insert(records, ARRAY_TAIL, child_record(SASYNC_MSG_CHILD_REKEYED));
	array_insert(records, ARRAY_TAIL, sasync_msg_create(SASYNC_MSG_RESYNC_START));
	return records;
}

/**
 * A seed name of a record: its type and number
 */
static char *record_name(sasync_msg_t *msg, int i, char *buf, size_t len)
{
	snprintf(buf, len, "%02d-%N", i, sasync_msg_type_names,
			 msg->get_type(msg));
	return buf;
}

/**
 * A heartbeat payload as the cluster sets it: time, records acknowledged,
 * then version, role,
 * priority, epoch and name
 */
static chunk_t heartbeat(void)
{
	bio_writer_t *writer = bio_writer_create(32);
	chunk_t beat;

	writer->write_uint64(writer, 1700000000000ULL);
	writer->write_uint64(writer, 42);
	writer->write_uint8(writer, 1);
	writer->write_uint8(writer, 1);
	writer->write_uint16(writer, 100);
	writer->write_uint32(writer, 3);
	writer->write_data8(writer, chunk_from_str("node-a"));
	beat = writer->extract_buf(writer);
	writer->destroy(writer);
	return beat;
}

/**
 * Records and frames
 */
static void record_and_frame_seeds(void)
{
	array_t *records = make_records();
	sasync_crypt_t *crypt;
	bio_writer_t *all, *one;
	sasync_msg_t *msg;
	chunk_t frame, beat;
	char name[64];
	int i;

	/* one stream of every frame, as a connection after its handshake */
	crypt = fuzz_crypt(TRUE);
	all = bio_writer_create(4096);
	all->write_uint8(all, 0);
	beat = heartbeat();
	fuzz_assert(crypt->seal(crypt, SASYNC_FRAME_HEARTBEAT, beat, &frame));
	all->write_data(all, frame);
	chunk_free(&frame);

	for (i = 0; i < array_count(records); i++)
	{
		array_get(records, i, &msg);
		record_name(msg, i, name, sizeof(name));
		write_seed("record", name, msg->get_encoding(msg));

		/* a stream of this one record alone */
		{
			sasync_crypt_t *single = fuzz_crypt(TRUE);

			one = bio_writer_create(1024);
			one->write_uint8(one, 0);
			fuzz_assert(single->seal(single, SASYNC_FRAME_DATA,
									 msg->get_encoding(msg), &frame));
			one->write_data(one, frame);
			chunk_free(&frame);
			write_seed("frame", name, one->get_buf(one));
			one->destroy(one);
			single->destroy(single);
		}
		fuzz_assert(crypt->seal(crypt, SASYNC_FRAME_DATA,
								msg->get_encoding(msg), &frame));
		all->write_data(all, frame);
		chunk_free(&frame);
	}
	fuzz_assert(crypt->seal(crypt, SASYNC_FRAME_HEARTBEAT, beat, &frame));
	all->write_data(all, frame);
	chunk_free(&frame);
	write_seed("frame", "stream-all", all->get_buf(all));
	all->destroy(all);
	crypt->destroy(crypt);

	/* round trips: a record, a heartbeat, nothing */
	array_get(records, 0, &msg);
	one = bio_writer_create(1024);
	one->write_uint8(one, 1);
	one->write_uint8(one, SASYNC_FRAME_DATA);
	one->write_uint16(one, 100);
	one->write_data(one, msg->get_encoding(msg));
	write_seed("frame", "roundtrip-record", one->get_buf(one));
	one->destroy(one);
	one = bio_writer_create(64);
	one->write_uint8(one, 1);
	one->write_uint8(one, SASYNC_FRAME_HEARTBEAT);
	one->write_uint16(one, 3);
	one->write_data(one, beat);
	write_seed("frame", "roundtrip-heartbeat", one->get_buf(one));
	one->destroy(one);
	write_seed("frame", "roundtrip-empty",
			   chunk_from_chars(1, SASYNC_FRAME_AUTH, 0, 0));
	chunk_free(&beat);

	array_destroy_offset(records, offsetof(sasync_msg_t, destroy));
}

/**
 * Write vici messages as one fuzz_vici input: the selector, then each
 * message with its u16 length; takes the messages
 */
static void write_vici(char *name, uint8_t selector, int count, ...)
{
	bio_writer_t *writer = bio_writer_create(1024);
	vici_message_t *msg;
	va_list args;
	int i;

	writer->write_uint8(writer, selector);
	va_start(args, count);
	for (i = 0; i < count; i++)
	{
		msg = va_arg(args, vici_message_t*);
		fuzz_assert(msg);
		writer->write_data16(writer, msg->get_encoding(msg));
		msg->destroy(msg);
	}
	va_end(args);
	write_seed("vici", name, writer->get_buf(writer));
	writer->destroy(writer);
}

/** selectors of fuzz_vici.c */
enum {
	SEL_SERVER = 0,
	SEL_STATUS = 1,
	SEL_STATS = 2,
	SEL_LIST = 3,
	SEL_PROMOTE = 4,
	SEL_DEMOTE = 5,
	SEL_RESYNC = 6,
	SEL_RESET = 7,
	SEL_RAW = 0x80,
};

static vici_message_t *request_role(char *reason)
{
	vici_builder_t *b = vici_builder_create();

	if (reason)
	{
		b->add_kv(b, "reason", "%s", reason);
	}
	return b->finalize(b);
}

static vici_message_t *request_list(void)
{
	vici_builder_t *b = vici_builder_create();

	b->add_kv(b, "ike", "%s", "gw-gw");
	b->add_kv(b, "ike-id", "%u", 42);
	return b->finalize(b);
}

/**
 * A request with every element type, nested
 */
static vici_message_t *request_nested(void)
{
	vici_builder_t *b = vici_builder_create();

	b->add_kv(b, "reason", "%s", "maintenance");
	b->begin_section(b, "a");
	b->begin_section(b, "b");
	b->add_kv(b, "key", "%s", "value");
	b->begin_list(b, "list");
	b->add_li(b, "%s", "one");
	b->add_li(b, "%s", "two");
	b->end_list(b);
	b->end_section(b);
	b->end_section(b);
	b->add(b, VICI_KEY_VALUE, "binary", chunk_from_chars(0x00, 0xff, 0x7f));
	return b->finalize(b);
}

static vici_message_t *reply_success(char *key, char *value)
{
	vici_builder_t *b = vici_builder_create();

	b->add_kv(b, "success", "%s", "yes");
	if (key)
	{
		b->add_kv(b, key, "%s", value);
	}
	return b->finalize(b);
}

static vici_message_t *reply_failure(void)
{
	vici_builder_t *b = vici_builder_create();

	b->add_kv(b, "success", "%s", "no");
	b->add_kv(b, "errmsg", "%s", "not a standby");
	return b->finalize(b);
}

/**
 * ha-status, as sasync_control.c builds it
 */
static vici_message_t *reply_status(void)
{
	vici_builder_t *b = vici_builder_create();
	int i;

	b->add_kv(b, "node", "%s", "node-a");
	b->add_kv(b, "priority", "%u", 100);
	b->add_kv(b, "role", "%s", "primary");
	b->add_kv(b, "epoch", "%u", 3);
	b->add_kv(b, "sync", "%s", "enabled");
	b->add_kv(b, "ike-sas-passive", "%u", 0);
	b->add_kv(b, "ike-sas-active", "%u", 2);
	b->add_kv(b, "child-sas-passive", "%u", 0);
	b->add_kv(b, "child-sas-active", "%u", 3);
	b->begin_section(b, "ike-sa-states");
	b->add_kv(b, "ESTABLISHED", "%u", 2);
	b->end_section(b);
	b->begin_section(b, "child-sa-states");
	b->add_kv(b, "INSTALLED", "%u", 3);
	b->end_section(b);
	b->add_kv(b, "forced-rekeys-pending", "%u", 0);
	b->add_kv(b, "child-sas-waiting", "%u", 0);
	b->add_kv(b, "sync-lag-last-ms", "%u", 1);
	b->add_kv(b, "sync-lag-max-ms", "%u", 12);
	b->add_kv(b, "queue-depth", "%u", 0);
	b->begin_section(b, "peers");
	for (i = 1; i <= 2; i++)
	{
		char name[4];

		snprintf(name, sizeof(name), "%d", i);
		b->begin_section(b, name);
		b->add_kv(b, "address", "198.18.0.1%d", i);
		b->add_kv(b, "port", "%u", 4510);
		b->add_kv(b, "out", "%s", "up");
		b->add_kv(b, "in", "%s", i == 1 ? "up" : "down");
		b->add_kv(b, "alive", "%s", i == 1 ? "yes" : "no");
		if (i == 1)
		{
			b->add_kv(b, "name", "%s", "node-b");
			b->add_kv(b, "role", "%s", "standby");
			b->add_kv(b, "priority", "%u", 50);
			b->add_kv(b, "epoch", "%u", 3);
			b->add_kv(b, "last-heartbeat-ms", "%u", 120);
			b->add_kv(b, "heartbeat-lag-ms", "%u", 1);
		}
		b->add_kv(b, "queued", "%u", 0);
		b->add_kv(b, "queue-lag-ms", "%u", 0);
		b->end_section(b);
	}
	b->end_section(b);
	return b->finalize(b);
}

/**
 * stats, with the ha section the plugin adds
 */
static vici_message_t *reply_stats(void)
{
	char *counters[] = {
		"resync", "vike-sync", "conn-sync", "sync-tx", "sync-rx",
		"sync-rx-len-bad", "sync-rx-auth-bad", "apply-fail", "promotions",
	};
	vici_builder_t *b = vici_builder_create();
	int i;

	b->add_kv(b, "uptime", "%s", "5 minutes");
	b->begin_section(b, "workers");
	b->add_kv(b, "total", "%u", 16);
	b->end_section(b);
	b->begin_section(b, "ha");
	for (i = 0; i < countof(counters); i++)
	{
		b->add_kv(b, counters[i], "%u", i * 7);
	}
	b->end_section(b);
	b->begin_list(b, "plugins");
	b->add_li(b, "%s", "sasync");
	b->end_list(b);
	return b->finalize(b);
}

/**
 * An ha-list-sa event of one IKE SA with CHILD SAs
 */
static vici_message_t *event_list_sa(char *ike, int children)
{
	vici_builder_t *b = vici_builder_create();
	int i;

	b->begin_section(b, ike);
	b->add_kv(b, "uniqueid", "%u", 42);
	b->add_kv(b, "version", "%u", 2);
	b->add_kv(b, "state", "%s", "ESTABLISHED");
	b->add_kv(b, "mode", "%s", "active");
	b->add_kv(b, "local-host", "%s", "198.18.0.100");
	b->add_kv(b, "local-port", "%u", 500);
	b->add_kv(b, "local-id", "%s", "gw.example.org");
	b->add_kv(b, "remote-host", "%s", "198.18.0.2");
	b->add_kv(b, "remote-port", "%u", 500);
	b->add_kv(b, "remote-id", "%s", "peer@example.org");
	b->add_kv(b, "initiator", "%s", "no");
	b->add_kv(b, "initiator-spi", "%s", "1122334455667788");
	b->add_kv(b, "responder-spi", "%s", "99aabbccddeeff00");
	b->begin_section(b, "child-sas");
	for (i = 0; i < children; i++)
	{
		char name[32];

		snprintf(name, sizeof(name), "net-%d", i + 7);
		b->begin_section(b, name);
		b->add_kv(b, "name", "%s", "net");
		b->add_kv(b, "uniqueid", "%u", i + 7);
		b->add_kv(b, "reqid", "%u", 1);
		b->add_kv(b, "state", "%s", "INSTALLED");
		b->add_kv(b, "mode", "%s", "active");
		b->add_kv(b, "protocol", "%s", "ESP");
		b->add_kv(b, "spi-in", "%s", "c1000001");
		b->add_kv(b, "spi-out", "%s", "c2000002");
		b->add_kv(b, "rekey-pending", "%s", i ? "yes" : "no");
		b->begin_list(b, "local-ts");
		b->add_li(b, "%s", "198.18.2.0/24");
		b->end_list(b);
		b->begin_list(b, "remote-ts");
		b->add_li(b, "%s", "10.3.0.1/32");
		b->end_list(b);
		b->end_section(b);
	}
	b->end_section(b);
	b->end_section(b);
	return b->finalize(b);
}

static vici_message_t *reply_list(int count)
{
	vici_builder_t *b = vici_builder_create();

	b->add_kv(b, "success", "%s", "yes");
	b->add_kv(b, "ike-sas", "%u", count);
	return b->finalize(b);
}

static void vici_seeds(void)
{
	write_vici("server-promote", SEL_SERVER, 1, request_role("maintenance"));
	write_vici("server-demote-empty", SEL_SERVER, 1, request_role(NULL));
	write_vici("server-list", SEL_SERVER, 1, request_list());
	write_vici("server-nested", SEL_SERVER, 2, request_nested(),
			   request_role("again"));
	write_vici("client-status", SEL_STATUS, 1, reply_status());
	write_vici("client-status-raw", SEL_STATUS | SEL_RAW, 1, reply_status());
	write_vici("client-stats", SEL_STATS, 1, reply_stats());
	write_vici("client-stats-raw", SEL_STATS | SEL_RAW, 1, reply_stats());
	write_vici("client-list", SEL_LIST, 3, event_list_sa("gw-gw", 2),
			   event_list_sa("dialup", 0), reply_list(2));
	write_vici("client-list-raw", SEL_LIST | SEL_RAW, 2,
			   event_list_sa("gw-gw", 1), reply_list(1));
	write_vici("client-promote", SEL_PROMOTE, 1,
			   reply_success("activated", "2"));
	write_vici("client-promote-failed", SEL_PROMOTE, 1, reply_failure());
	write_vici("client-demote", SEL_DEMOTE, 1, reply_success("passive", "2"));
	write_vici("client-resync", SEL_RESYNC, 1,
			   reply_success("resync", "started"));
	write_vici("client-reset", SEL_RESET, 1, reply_success(NULL, NULL));
}

int main(int argc, char *argv[])
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
	{
		fprintf(stderr, "seeds: mkdir %s: %s\n", out_dir, strerror(errno));
		return 1;
	}
	if (!fuzz_init("seeds"))
	{
		return 1;
	}
	record_and_frame_seeds();
	vici_seeds();
	printf("seeds: %d written to %s\n", written, out_dir);
	library_deinit();
	return 0;
}
