/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fuzz.h"

#include <stdio.h>

#include <utils/debug.h>

#include "sasync_msg.h"
#include "sasync_keystore.h"

#ifndef PLUGINDIR
# define PLUGINDIR "/usr/lib/ipsec/plugins"
#endif

/** what the link needs; no openssl, see fuzz_init() */
#define FUZZ_PLUGINS "random nonce sha2 hmac kdf chapoly aes gcm"

/** a fixed nonce of each side */
static u_char nonce_i[SASYNC_NONCE_LEN], nonce_r[SASYNC_NONCE_LEN];

/**
 * strongSwan's log: formatted, so that a bad argument to a format (a
 * dangling pointer, %B of a chunk past its buffer) shows, then dropped
 */
static void dbg_format(debug_t group, level_t level, char *fmt, ...)
{
	char buf[1024];
	va_list args;

	if (level <= 2)
	{
		va_start(args, fmt);
		vsnprintf(buf, sizeof(buf), fmt, args);
		va_end(args);
	}
}

/*
 * Described in header
 */
bool fuzz_init(char *name)
{
	static bool done;

	if (done)
	{
		return TRUE;
	}
	if (!library_init("", name))
	{
		fprintf(stderr, "%s: library_init() failed\n", name);
		return FALSE;
	}
	dbg = dbg_format;
	lib->plugins->add_path(lib->plugins, PLUGINDIR);
	if (!lib->plugins->load(lib->plugins, FUZZ_PLUGINS))
	{
		fprintf(stderr, "%s: loading '%s' from %s failed\n", name,
				FUZZ_PLUGINS, PLUGINDIR);
		return FALSE;
	}
	memset(nonce_i, 0x11, sizeof(nonce_i));
	memset(nonce_r, 0x22, sizeof(nonce_r));
	done = TRUE;
	return TRUE;
}

/*
 * Described in header
 */
sasync_crypt_t *fuzz_crypt(bool initiator)
{
	sasync_crypt_t *crypt;

	/* the HELLOs stand in as their nonces: the keys depend on them whole */
	crypt = sasync_crypt_create(ENCR_CHACHA20_POLY1305,
								chunk_from_str(FUZZ_SECRET),
								chunk_from_thing(nonce_i),
								chunk_from_thing(nonce_r), initiator);
	fuzz_assert(crypt);
	return crypt;
}

/**
 * Equal chunks, empty ones too (chunk_equals() wants data pointers)
 */
static bool same_chunk(chunk_t a, chunk_t b)
{
	return a.len == b.len && (!a.len || memeq(a.ptr, b.ptr, a.len));
}

/**
 * Format values as the plugin's log lines do
 */
static void format_values(host_t *host, identification_t *id,
						  traffic_selector_t *ts)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%H %#H %Y %R", host, host, id, ts);
}

/** every transform type add_proposal() writes, in its order */
static const transform_type_t proposal_types[] = {
	ENCRYPTION_ALGORITHM, INTEGRITY_ALGORITHM, PSEUDO_RANDOM_FUNCTION,
	KEY_EXCHANGE_METHOD, EXTENDED_SEQUENCE_NUMBERS,
};

/**
 * Proposals that encode the same (add_proposal() keeps the first algorithm
 * of each type it knows)
 */
static bool same_proposal(proposal_t *a, proposal_t *b)
{
	uint16_t alg_a, size_a, alg_b, size_b;
	bool has_a, has_b;
	int i;

	if (!a || !b)
	{
		return a == b;
	}
	if (a->get_protocol(a) != b->get_protocol(b) ||
		a->get_number(a) != b->get_number(b))
	{
		return FALSE;
	}
	for (i = 0; i < countof(proposal_types); i++)
	{
		has_a = a->get_algorithm(a, proposal_types[i], &alg_a, &size_a);
		has_b = b->get_algorithm(b, proposal_types[i], &alg_b, &size_b);
		if (has_a != has_b || (has_a && (alg_a != alg_b || size_a != size_b)))
		{
			return FALSE;
		}
	}
	return TRUE;
}

/**
 * Every value of one attribute, as the getters decode them; one of each
 * kind, so the built copy holds each attribute at most once
 */
typedef struct {
	bool has_int;
	uint64_t num;
	bool has_chunk;
	chunk_t bytes;
	char *str;
	host_t *host;
	identification_t *id;
	proposal_t *proposal;
	bool has_mark;
	mark_t mark;
	traffic_selector_t *ts;
} values_t;

/**
 * The first traffic selector of an attribute, cloned
 */
static traffic_selector_t *first_ts(sasync_msg_t *msg, sasync_attr_t attr)
{
	traffic_selector_t *ts, *first = NULL;
	enumerator_t *enumerator;

	enumerator = msg->create_ts_enumerator(msg, attr);
	while (enumerator->enumerate(enumerator, &ts))
	{
		format_values(NULL, NULL, ts);
		if (!first)
		{
			first = ts->clone(ts);
		}
	}
	enumerator->destroy(enumerator);
	return first;
}

/**
 * Decode one attribute with every getter, as the apply side would
 */
static void get_values(sasync_msg_t *msg, sasync_attr_t attr, values_t *v)
{
	enumerator_t *enumerator;
	host_t *host;

	*v = (values_t){};
	v->has_int = msg->get_int(msg, attr, &v->num);
	v->has_chunk = msg->get_chunk(msg, attr, &v->bytes);
	v->str = msg->get_string(msg, attr);
	v->host = msg->get_host(msg, attr);
	v->id = msg->get_id(msg, attr);
	v->proposal = msg->get_proposal(msg, attr);
	v->has_mark = msg->get_mark(msg, attr, &v->mark);
	/* the first is what get_* would give, the rest as remote VIPs */
	enumerator = msg->create_host_enumerator(msg, attr);
	while (enumerator->enumerate(enumerator, &host))
	{
		format_values(host, NULL, NULL);
	}
	enumerator->destroy(enumerator);
	v->ts = first_ts(msg, attr);
	format_values(v->host, v->id, v->ts);
}

static void free_values(values_t *v)
{
	free(v->str);
	DESTROY_IF(v->host);
	DESTROY_IF(v->id);
	DESTROY_IF(v->proposal);
	DESTROY_IF(v->ts);
}

/**
 * Add the decoded values to a record: each add_*() takes only attributes of
 * its kind
 */
static void add_values(sasync_msg_t *msg, sasync_attr_t attr, values_t *v)
{
	if (v->has_int)
	{
		msg->add_int(msg, attr, v->num);
	}
	if (v->has_chunk)
	{
		msg->add_chunk(msg, attr, v->bytes);
	}
	if (v->host)
	{
		msg->add_host(msg, attr, v->host);
	}
	if (v->id)
	{
		msg->add_id(msg, attr, v->id);
	}
	if (v->proposal)
	{
		msg->add_proposal(msg, attr, v->proposal);
	}
	if (v->has_mark)
	{
		msg->add_mark(msg, attr, v->mark);
	}
	if (v->ts)
	{
		msg->add_ts(msg, attr, v->ts);
	}
}

/**
 * What decoded from the original decodes the same from the rebuilt record
 */
static void check_values(sasync_attr_t attr, values_t *a, values_t *b)
{
	/* get_int() reads the raw bytes of any attribute of 1, 2, 4 or 8 bytes;
	 * those of a proposal and an identity are re-encoded as decoded (a
	 * proposal with what add_proposal() keeps, an ID_ANY without data) */
	if (attr != SASYNC_ATTR_PROPOSAL && !a->id)
	{
		fuzz_assert(a->has_int == b->has_int);
		fuzz_assert(!a->has_int || a->num == b->num);
	}
	fuzz_assert(a->has_chunk == b->has_chunk);
	fuzz_assert(!a->has_chunk || same_chunk(a->bytes, b->bytes));
	fuzz_assert(!a->str == !b->str);
	fuzz_assert(!a->str || streq(a->str, b->str));
	/* add_host() leaves out %any, as capture never sends it */
	if (a->host && !a->host->is_anyaddr(a->host))
	{
		fuzz_assert(b->host && a->host->ip_equals(a->host, b->host) &&
					a->host->get_port(a->host) == b->host->get_port(b->host));
	}
	else
	{
		fuzz_assert(!b->host);
	}
	fuzz_assert(!a->id == !b->id);
	fuzz_assert(!a->id || (a->id->get_type(a->id) == b->id->get_type(b->id) &&
				same_chunk(a->id->get_encoding(a->id),
						   b->id->get_encoding(b->id))));
	fuzz_assert(same_proposal(a->proposal, b->proposal));
	fuzz_assert(a->has_mark == b->has_mark);
	fuzz_assert(!a->has_mark || (a->mark.value == b->mark.value &&
								 a->mark.mask == b->mark.mask));
	fuzz_assert(!a->ts == !b->ts);
	fuzz_assert(!a->ts || a->ts->equals(a->ts, b->ts));
}

/**
 * The key store decodes the record, encodes its keys back the same
 */
static void check_keys(sasync_msg_t *msg)
{
	sasync_ike_keys_t *a, *b;
	sasync_child_keys_t *ca, *cb;
	sasync_msg_t *built, *parsed;
	sasync_keystore_t *store;
	bool ok;

	INIT(a, .held = array_create(0, 0));
	INIT(b, .held = array_create(0, 0));
	ok = sasync_ike_keys_decode(a, msg);
	fuzz_assert(ok == (a->secret.len && a->nonce_i.len && a->nonce_r.len));
	/* decoding again replaces (and frees) what there was */
	ok = sasync_ike_keys_decode(a, msg);
	built = sasync_msg_create(SASYNC_MSG_IKE_ADD);
	sasync_ike_keys_encode(a, IKEV1, built);
	parsed = sasync_msg_parse(built->get_encoding(built));
	fuzz_assert(parsed);
	fuzz_assert(sasync_ike_keys_decode(b, parsed) == ok);
	fuzz_assert(same_chunk(a->secret, b->secret));
	fuzz_assert(same_chunk(a->nonce_i, b->nonce_i));
	fuzz_assert(same_chunk(a->nonce_r, b->nonce_r));
	fuzz_assert(same_chunk(a->old_skd, b->old_skd));
	/* the PRF of SK_d travels with it only */
	fuzz_assert(!a->old_skd.len || a->old_prf == b->old_prf);
	fuzz_assert(same_chunk(a->local_ke, b->local_ke));
	fuzz_assert(same_chunk(a->remote_ke, b->remote_ke));
	fuzz_assert(same_chunk(a->psk, b->psk));
	fuzz_assert(same_chunk(a->iv, b->iv));
	fuzz_assert(a->auth == b->auth);
	parsed->destroy(parsed);
	built->destroy(built);
	sasync_ike_keys_destroy(a);
	sasync_ike_keys_destroy(b);

	ca = sasync_child_keys_decode(msg);
	built = sasync_msg_create(SASYNC_MSG_CHILD_ADD);
	sasync_child_keys_encode(ca, built);
	parsed = sasync_msg_parse(built->get_encoding(built));
	fuzz_assert(parsed);
	cb = sasync_child_keys_decode(parsed);
	fuzz_assert(ca->initiator == cb->initiator);
	fuzz_assert(same_chunk(ca->encr_in, cb->encr_in));
	fuzz_assert(same_chunk(ca->integ_in, cb->integ_in));
	fuzz_assert(same_chunk(ca->encr_out, cb->encr_out));
	fuzz_assert(same_chunk(ca->integ_out, cb->integ_out));
	parsed->destroy(parsed);
	built->destroy(built);
	/* only the store frees CHILD keys, as it wipes them */
	store = sasync_keystore_create();
	store->put_child(store, 1, ca);
	store->put_child(store, 2, cb);
	store->destroy(store);
}

/*
 * Described in header
 */
void fuzz_record(chunk_t data)
{
	sasync_msg_t *msg, *copy, *built, *parsed;
	values_t *a, *b;
	chunk_t encoding;
	int attr;

	msg = sasync_msg_parse(data);
	if (!msg)
	{
		return;
	}
	fuzz_assert(msg->get_type(msg) >= SASYNC_MSG_IKE_ADD &&
				msg->get_type(msg) < SASYNC_MSG_TYPE_MAX);
	/* the apply side keeps records that wait by their encoding */
	encoding = msg->get_encoding(msg);
	fuzz_assert(same_chunk(encoding, data));
	copy = sasync_msg_parse(encoding);
	fuzz_assert(copy);
	copy->destroy(copy);

	/* numbers beyond the known ones too: the getters must refuse them */
	a = calloc(SASYNC_ATTR_MAX + 2, sizeof(values_t));
	b = calloc(SASYNC_ATTR_MAX + 2, sizeof(values_t));
	built = sasync_msg_create(msg->get_type(msg));
	for (attr = 0; attr < SASYNC_ATTR_MAX + 2; attr++)
	{
		get_values(msg, attr, &a[attr]);
		add_values(built, attr, &a[attr]);
	}
	parsed = sasync_msg_parse(built->get_encoding(built));
	fuzz_assert(parsed);
	for (attr = 0; attr < SASYNC_ATTR_MAX + 2; attr++)
	{
		get_values(parsed, attr, &b[attr]);
		check_values(attr, &a[attr], &b[attr]);
		free_values(&a[attr]);
		free_values(&b[attr]);
	}
	free(a);
	free(b);
	parsed->destroy(parsed);
	built->destroy(built);

	check_keys(msg);
	msg->destroy(msg);
}
