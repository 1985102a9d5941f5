/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_msg.h"

#include <sys/time.h>

#include <bio/bio_reader.h>
#include <bio/bio_writer.h>
#include <collections/array.h>
#include <utils/debug.h>

ENUM(sasync_msg_type_names, SASYNC_MSG_IKE_ADD, SASYNC_MSG_RESYNC_START,
	"IKE_ADD",
	"IKE_MID",
	"IKE_REKEYED",
	"IKE_DELETE",
	"CHILD_ADD",
	"CHILD_DELETE",
	"RESYNC_REQUEST",
	"RESYNC_DONE",
	"CHILD_PENDING",
	"CHILD_REKEYED",
	"RESYNC_START",
);

ENUM(sasync_attr_names, SASYNC_ATTR_IKE_SPI_I, SASYNC_ATTR_HANDOVER,
	"IKE_SPI_I", "IKE_SPI_R", "OLD_SPI_I", "OLD_SPI_R", "TIMESTAMP",
	"IKE_VERSION", "IKE_INITIATOR", "CHILD_INITIATOR", "PROTOCOL", "MODE",
	"ENCAP", "IPCOMP", "OLD_PRF", "AUTH_METHOD", "CPI_IN", "CPI_OUT", "EXTENSIONS",
	"CONDITIONS", "MID_I", "MID_R", "UNIQUE", "SPI_IN", "SPI_OUT", "REQID",
	"IF_ID_IN", "IF_ID_OUT", "MARK_IN", "MARK_OUT", "NAME", "CHILD_NAME",
	"NONCE_I", "NONCE_R", "SECRET", "OLD_SKD", "ENCR_IN", "INTEG_IN",
	"ENCR_OUT", "INTEG_OUT", "LOCAL_KE", "REMOTE_KE", "PSK", "IV", "LOCAL_HOST", "REMOTE_HOST", "LOCAL_VIP",
	"REMOTE_VIP", "LOCAL_ID", "REMOTE_ID", "REMOTE_EAP_ID", "PROPOSAL", "LOCAL_TS",
	"REMOTE_TS", "RESYNC_TOTAL", "HANDOVER",
);

/** largest value of a bytes attribute (keys, nonces, names) */
#define MAX_BYTES 1024

typedef enum {
	KIND_NONE = 0,
	KIND_U8,
	KIND_U16,
	KIND_U32,
	KIND_U64,
	KIND_MARK,
	KIND_BYTES,
	KIND_HOST,
	KIND_ID,
	KIND_PROPOSAL,
	KIND_TS,
} attr_kind_t;

/**
 * Value kind of each attribute, by its wire number (zero: none such)
 */
static const attr_kind_t kinds[SASYNC_ATTR_MAX] = {
	[SASYNC_ATTR_IKE_SPI_I] = KIND_U64,
	[SASYNC_ATTR_IKE_SPI_R] = KIND_U64,
	[SASYNC_ATTR_OLD_SPI_I] = KIND_U64,
	[SASYNC_ATTR_OLD_SPI_R] = KIND_U64,
	[SASYNC_ATTR_TIMESTAMP] = KIND_U64,
	[SASYNC_ATTR_IKE_VERSION] = KIND_U8,
	[SASYNC_ATTR_IKE_INITIATOR] = KIND_U8,
	[SASYNC_ATTR_CHILD_INITIATOR] = KIND_U8,
	[SASYNC_ATTR_PROTOCOL] = KIND_U8,
	[SASYNC_ATTR_MODE] = KIND_U8,
	[SASYNC_ATTR_ENCAP] = KIND_U8,
	[SASYNC_ATTR_IPCOMP] = KIND_U8,
	[SASYNC_ATTR_OLD_PRF] = KIND_U16,
	[SASYNC_ATTR_AUTH_METHOD] = KIND_U16,
	[SASYNC_ATTR_CPI_IN] = KIND_U16,
	[SASYNC_ATTR_CPI_OUT] = KIND_U16,
	[SASYNC_ATTR_EXTENSIONS] = KIND_U32,
	[SASYNC_ATTR_CONDITIONS] = KIND_U32,
	[SASYNC_ATTR_MID_I] = KIND_U32,
	[SASYNC_ATTR_MID_R] = KIND_U32,
	[SASYNC_ATTR_UNIQUE] = KIND_U32,
	[SASYNC_ATTR_SPI_IN] = KIND_U32,
	[SASYNC_ATTR_SPI_OUT] = KIND_U32,
	[SASYNC_ATTR_REQID] = KIND_U32,
	[SASYNC_ATTR_IF_ID_IN] = KIND_U32,
	[SASYNC_ATTR_IF_ID_OUT] = KIND_U32,
	[SASYNC_ATTR_MARK_IN] = KIND_MARK,
	[SASYNC_ATTR_MARK_OUT] = KIND_MARK,
	[SASYNC_ATTR_NAME] = KIND_BYTES,
	[SASYNC_ATTR_CHILD_NAME] = KIND_BYTES,
	[SASYNC_ATTR_NONCE_I] = KIND_BYTES,
	[SASYNC_ATTR_NONCE_R] = KIND_BYTES,
	[SASYNC_ATTR_SECRET] = KIND_BYTES,
	[SASYNC_ATTR_OLD_SKD] = KIND_BYTES,
	[SASYNC_ATTR_ENCR_IN] = KIND_BYTES,
	[SASYNC_ATTR_INTEG_IN] = KIND_BYTES,
	[SASYNC_ATTR_ENCR_OUT] = KIND_BYTES,
	[SASYNC_ATTR_INTEG_OUT] = KIND_BYTES,
	[SASYNC_ATTR_LOCAL_KE] = KIND_BYTES,
	[SASYNC_ATTR_REMOTE_KE] = KIND_BYTES,
	[SASYNC_ATTR_PSK] = KIND_BYTES,
	[SASYNC_ATTR_IV] = KIND_BYTES,
	[SASYNC_ATTR_LOCAL_HOST] = KIND_HOST,
	[SASYNC_ATTR_REMOTE_HOST] = KIND_HOST,
	[SASYNC_ATTR_LOCAL_VIP] = KIND_HOST,
	[SASYNC_ATTR_REMOTE_VIP] = KIND_HOST,
	[SASYNC_ATTR_LOCAL_ID] = KIND_ID,
	[SASYNC_ATTR_REMOTE_ID] = KIND_ID,
	[SASYNC_ATTR_REMOTE_EAP_ID] = KIND_ID,
	[SASYNC_ATTR_PROPOSAL] = KIND_PROPOSAL,
	[SASYNC_ATTR_LOCAL_TS] = KIND_TS,
	[SASYNC_ATTR_REMOTE_TS] = KIND_TS,
	[SASYNC_ATTR_RESYNC_TOTAL] = KIND_U32,
	[SASYNC_ATTR_HANDOVER] = KIND_U8,
};

/**
 * Value kind of an attribute, KIND_NONE for numbers no attribute has
 */
static attr_kind_t kind_of(sasync_attr_t attr)
{
	if (attr <= 0 || attr >= SASYNC_ATTR_MAX)
	{
		return KIND_NONE;
	}
	return kinds[attr];
}

typedef struct {
	sasync_attr_t type;
	chunk_t value;
} attr_t;

typedef struct private_sasync_msg_t private_sasync_msg_t;

struct private_sasync_msg_t {

	/** public interface */
	sasync_msg_t public;

	/** record type */
	sasync_msg_type_t type;

	/** attr_t, values pointing into buf (parsed) or allocated (built) */
	array_t *attrs;

	/** index + 1 in attrs of the first attribute of each type, 0 for none:
	 * a record is read by some 30 lookups, a scan each made them a fifth
	 * of a standby's work (B1) */
	uint32_t first[SASYNC_ATTR_MAX];

	/** received encoding, or cached built encoding */
	chunk_t encoding;

	/** TRUE if attribute values are allocated */
	bool built;
};

METHOD(sasync_msg_t, get_type, sasync_msg_type_t,
	private_sasync_msg_t *this)
{
	return this->type;
}

static void add_attr(private_sasync_msg_t *this, sasync_attr_t type,
					 chunk_t value)
{
	attr_t attr = {
		.type = type,
		.value = value,
	};
	array_insert(this->attrs, ARRAY_TAIL, &attr);
	if (type < SASYNC_ATTR_MAX && !this->first[type])
	{
		this->first[type] = array_count(this->attrs);
	}
	chunk_clear(&this->encoding);
}

static chunk_t writer_value(bio_writer_t *writer)
{
	chunk_t value = writer->extract_buf(writer);

	writer->destroy(writer);
	return value;
}

METHOD(sasync_msg_t, add_int, void,
	private_sasync_msg_t *this, sasync_attr_t attr, uint64_t value)
{
	u_char buf[8];
	size_t len;

	/* network order, written directly: a record has some twenty of these */
	switch (kind_of(attr))
	{
		case KIND_U8:
			buf[0] = value;
			len = 1;
			break;
		case KIND_U16:
			htoun16(buf, value);
			len = 2;
			break;
		case KIND_U32:
			htoun32(buf, value);
			len = 4;
			break;
		case KIND_U64:
			htoun64(buf, value);
			len = 8;
			break;
		default:
			return;
	}
	add_attr(this, attr, chunk_clone(chunk_create(buf, len)));
}

METHOD(sasync_msg_t, add_chunk, void,
	private_sasync_msg_t *this, sasync_attr_t attr, chunk_t value)
{
	if (kind_of(attr) == KIND_BYTES && value.len <= MAX_BYTES)
	{
		add_attr(this, attr, chunk_clone(value));
	}
}

static void write_host(bio_writer_t *writer, host_t *host)
{
	writer->write_uint8(writer, host->get_family(host) == AF_INET6 ? 6 : 4);
	writer->write_data(writer, host->get_address(host));
	writer->write_uint16(writer, host->get_port(host));
}

METHOD(sasync_msg_t, add_host, void,
	private_sasync_msg_t *this, sasync_attr_t attr, host_t *host)
{
	bio_writer_t *writer;

	if (kind_of(attr) == KIND_HOST && !host->is_anyaddr(host))
	{
		writer = bio_writer_create(19);
		write_host(writer, host);
		add_attr(this, attr, writer_value(writer));
	}
}

METHOD(sasync_msg_t, add_id, void,
	private_sasync_msg_t *this, sasync_attr_t attr, identification_t *id)
{
	bio_writer_t *writer;

	if (kind_of(attr) == KIND_ID)
	{
		writer = bio_writer_create(32);
		writer->write_uint8(writer, id->get_type(id));
		writer->write_data(writer, id->get_encoding(id));
		add_attr(this, attr, writer_value(writer));
	}
}

METHOD(sasync_msg_t, add_proposal, void,
	private_sasync_msg_t *this, sasync_attr_t attr, proposal_t *proposal)
{
	transform_type_t types[] = {
		ENCRYPTION_ALGORITHM, INTEGRITY_ALGORITHM, PSEUDO_RANDOM_FUNCTION,
		KEY_EXCHANGE_METHOD, EXTENDED_SEQUENCE_NUMBERS,
	};
	bio_writer_t *writer;
	uint16_t alg, size;
	int i;

	if (kind_of(attr) != KIND_PROPOSAL)
	{
		return;
	}
	writer = bio_writer_create(32);
	writer->write_uint8(writer, proposal->get_protocol(proposal));
	writer->write_uint8(writer, proposal->get_number(proposal));
	for (i = 0; i < countof(types); i++)
	{
		if (proposal->get_algorithm(proposal, types[i], &alg, &size))
		{
			writer->write_uint16(writer, types[i]);
			writer->write_uint16(writer, alg);
			writer->write_uint16(writer, size);
		}
	}
	add_attr(this, attr, writer_value(writer));
}

METHOD(sasync_msg_t, add_ts, void,
	private_sasync_msg_t *this, sasync_attr_t attr, traffic_selector_t *ts)
{
	bio_writer_t *writer;

	if (kind_of(attr) != KIND_TS)
	{
		return;
	}
	writer = bio_writer_create(40);
	writer->write_uint8(writer, ts->get_type(ts));
	writer->write_uint8(writer, ts->get_protocol(ts));
	writer->write_uint16(writer, ts->get_from_port(ts));
	writer->write_uint16(writer, ts->get_to_port(ts));
	writer->write_data(writer, ts->get_from_address(ts));
	writer->write_data(writer, ts->get_to_address(ts));
	add_attr(this, attr, writer_value(writer));
}

METHOD(sasync_msg_t, add_mark, void,
	private_sasync_msg_t *this, sasync_attr_t attr, mark_t mark)
{
	bio_writer_t *writer;

	if (kind_of(attr) == KIND_MARK)
	{
		writer = bio_writer_create(8);
		writer->write_uint32(writer, mark.value);
		writer->write_uint32(writer, mark.mask);
		add_attr(this, attr, writer_value(writer));
	}
}

/**
 * Find the first value of an attribute
 */
static bool find_attr(private_sasync_msg_t *this, sasync_attr_t type,
					  chunk_t *value)
{
	attr_t attr;

	if (type >= SASYNC_ATTR_MAX || !this->first[type] ||
		!array_get(this->attrs, this->first[type] - 1, &attr))
	{
		return FALSE;
	}
	*value = attr.value;
	return TRUE;
}

METHOD(sasync_msg_t, get_int, bool,
	private_sasync_msg_t *this, sasync_attr_t attr, uint64_t *value)
{
	chunk_t data;

	if (!find_attr(this, attr, &data))
	{
		return FALSE;
	}
	switch (data.len)
	{
		case 1:
			*value = data.ptr[0];
			return TRUE;
		case 2:
			*value = untoh16(data.ptr);
			return TRUE;
		case 4:
			*value = untoh32(data.ptr);
			return TRUE;
		case 8:
			*value = untoh64(data.ptr);
			return TRUE;
		default:
			return FALSE;
	}
}

METHOD(sasync_msg_t, get_chunk, bool,
	private_sasync_msg_t *this, sasync_attr_t attr, chunk_t *value)
{
	return kind_of(attr) == KIND_BYTES && find_attr(this, attr, value);
}

METHOD(sasync_msg_t, get_string, char*,
	private_sasync_msg_t *this, sasync_attr_t attr)
{
	chunk_t value;
	char *str, *pos;

	if (!get_chunk(this, attr, &value))
	{
		return NULL;
	}
	/* an empty attribute has no data pointer to copy from */
	str = value.len ? strndup(value.ptr, value.len) : strdup("");
	/* names go to logs and to config lookups: no control characters (a
	 * name with them matches no config anyway) */
	for (pos = str; *pos; pos++)
	{
		if ((u_char)*pos < 0x20 || *pos == 0x7f)
		{
			*pos = '?';
		}
	}
	return str;
}

/**
 * Decode a host value, NULL if malformed
 */
static host_t *decode_host(chunk_t data)
{
	bio_reader_t *reader = bio_reader_create(data);
	host_t *host = NULL;
	uint8_t family;
	uint16_t port;
	chunk_t addr;

	if (reader->read_uint8(reader, &family) &&
		reader->read_data(reader, family == 6 ? 16 : 4, &addr) &&
		reader->read_uint16(reader, &port) &&
		!reader->remaining(reader) && (family == 4 || family == 6))
	{
		host = host_create_from_chunk(family == 6 ? AF_INET6 : AF_INET,
									  addr, port);
	}
	reader->destroy(reader);
	return host;
}

METHOD(sasync_msg_t, get_host, host_t*,
	private_sasync_msg_t *this, sasync_attr_t attr)
{
	chunk_t data;

	if (kind_of(attr) != KIND_HOST || !find_attr(this, attr, &data))
	{
		return NULL;
	}
	return decode_host(data);
}

/**
 * Decode an identity value, NULL if malformed
 */
static identification_t *decode_id(chunk_t data)
{
	if (data.len < 1 || data.len > MAX_BYTES)
	{
		return NULL;
	}
	return identification_create_from_encoding(data.ptr[0],
											   chunk_skip(data, 1));
}

METHOD(sasync_msg_t, get_id, identification_t*,
	private_sasync_msg_t *this, sasync_attr_t attr)
{
	chunk_t data;

	if (kind_of(attr) != KIND_ID || !find_attr(this, attr, &data))
	{
		return NULL;
	}
	return decode_id(data);
}

/**
 * Decode a proposal value, NULL if malformed
 */
static proposal_t *decode_proposal(chunk_t data)
{
	bio_reader_t *reader = bio_reader_create(data);
	proposal_t *proposal = NULL;
	uint8_t protocol, number;
	uint16_t type, alg, size;

	if (reader->read_uint8(reader, &protocol) &&
		reader->read_uint8(reader, &number) &&
		reader->remaining(reader) % 6 == 0 &&
		protocol >= PROTO_IKE && protocol <= PROTO_AH + 1)
	{
		proposal = proposal_create(protocol, number);
		while (reader->remaining(reader))
		{
			reader->read_uint16(reader, &type);
			reader->read_uint16(reader, &alg);
			reader->read_uint16(reader, &size);
			proposal->add_algorithm(proposal, type, alg, size);
		}
	}
	reader->destroy(reader);
	return proposal;
}

METHOD(sasync_msg_t, get_proposal, proposal_t*,
	private_sasync_msg_t *this, sasync_attr_t attr)
{
	chunk_t data;

	if (kind_of(attr) != KIND_PROPOSAL || !find_attr(this, attr, &data))
	{
		return NULL;
	}
	return decode_proposal(data);
}

METHOD(sasync_msg_t, get_mark, bool,
	private_sasync_msg_t *this, sasync_attr_t attr, mark_t *mark)
{
	chunk_t data;

	if (kind_of(attr) != KIND_MARK || !find_attr(this, attr, &data) ||
		data.len != 8)
	{
		return FALSE;
	}
	mark->value = untoh32(data.ptr);
	mark->mask = untoh32(data.ptr + 4);
	return TRUE;
}

/**
 * Decode a traffic selector value, NULL if malformed
 */
static traffic_selector_t *decode_ts(chunk_t data)
{
	bio_reader_t *reader = bio_reader_create(data);
	traffic_selector_t *ts = NULL;
	uint8_t type, proto;
	uint16_t from_port, to_port;
	chunk_t from, to;
	size_t len;

	if (reader->read_uint8(reader, &type) &&
		reader->read_uint8(reader, &proto) &&
		reader->read_uint16(reader, &from_port) &&
		reader->read_uint16(reader, &to_port) &&
		(type == TS_IPV4_ADDR_RANGE || type == TS_IPV6_ADDR_RANGE))
	{
		len = type == TS_IPV4_ADDR_RANGE ? 4 : 16;
		if (reader->read_data(reader, len, &from) &&
			reader->read_data(reader, len, &to) &&
			!reader->remaining(reader))
		{
			ts = traffic_selector_create_from_bytes(proto, type, from,
													from_port, to, to_port);
		}
	}
	reader->destroy(reader);
	return ts;
}

/**
 * Enumerator over decoded values of one attribute type
 */
typedef struct {
	enumerator_t public;
	enumerator_t *inner;
	sasync_attr_t type;
	void *(*decode)(chunk_t data);
	void (*destroy_value)(void *value);
	void *current;
} value_enumerator_t;

static void destroy_current(value_enumerator_t *this)
{
	if (this->current)
	{
		this->destroy_value(this->current);
		this->current = NULL;
	}
}

METHOD(enumerator_t, value_enumerate, bool,
	value_enumerator_t *this, va_list args)
{
	void **out;
	attr_t *attr;

	VA_ARGS_VGET(args, out);
	destroy_current(this);
	while (this->inner->enumerate(this->inner, &attr))
	{
		if (attr->type == this->type)
		{
			this->current = this->decode(attr->value);
			if (this->current)
			{
				*out = this->current;
				return TRUE;
			}
		}
	}
	return FALSE;
}

METHOD(enumerator_t, value_destroy, void,
	value_enumerator_t *this)
{
	destroy_current(this);
	this->inner->destroy(this->inner);
	free(this);
}

static void host_destroy_value(void *value)
{
	((host_t*)value)->destroy(value);
}

static void ts_destroy_value(void *value)
{
	((traffic_selector_t*)value)->destroy(value);
}

static enumerator_t *create_value_enumerator(private_sasync_msg_t *this,
						sasync_attr_t type, void *(*decode)(chunk_t),
						void (*destroy_value)(void*))
{
	value_enumerator_t *enumerator;

	INIT(enumerator,
		.public = {
			.enumerate = enumerator_enumerate_default,
			.venumerate = _value_enumerate,
			.destroy = _value_destroy,
		},
		.inner = array_create_enumerator(this->attrs),
		.type = type,
		.decode = decode,
		.destroy_value = destroy_value,
	);
	return &enumerator->public;
}

METHOD(sasync_msg_t, create_host_enumerator, enumerator_t*,
	private_sasync_msg_t *this, sasync_attr_t attr)
{
	/* as the getters: values of another kind may look like hosts */
	if (kind_of(attr) != KIND_HOST)
	{
		return enumerator_create_empty();
	}
	return create_value_enumerator(this, attr, (void*)decode_host,
								   host_destroy_value);
}

METHOD(sasync_msg_t, create_ts_enumerator, enumerator_t*,
	private_sasync_msg_t *this, sasync_attr_t attr)
{
	if (kind_of(attr) != KIND_TS)
	{
		return enumerator_create_empty();
	}
	return create_value_enumerator(this, attr, (void*)decode_ts,
								   ts_destroy_value);
}

METHOD(sasync_msg_t, get_encoding, chunk_t,
	private_sasync_msg_t *this)
{
	bio_writer_t *writer;
	enumerator_t *enumerator;
	attr_t *attr;

	if (this->encoding.len)
	{
		return this->encoding;
	}
	writer = bio_writer_create(256);
	writer->write_uint8(writer, SASYNC_MSG_VERSION);
	writer->write_uint8(writer, this->type);
	writer->write_uint16(writer, array_count(this->attrs));
	enumerator = array_create_enumerator(this->attrs);
	while (enumerator->enumerate(enumerator, &attr))
	{
		writer->write_uint16(writer, attr->type);
		writer->write_data16(writer, attr->value);
	}
	enumerator->destroy(enumerator);
	this->encoding = writer_value(writer);
	return this->encoding;
}

METHOD(sasync_msg_t, destroy, void,
	private_sasync_msg_t *this)
{
	attr_t attr;

	/* built values are allocated, parsed ones point into the encoding */
	while (this->built && array_remove(this->attrs, ARRAY_HEAD, &attr))
	{
		chunk_clear(&attr.value);
	}
	array_destroy(this->attrs);
	chunk_clear(&this->encoding);
	free(this);
}

static private_sasync_msg_t *msg_create(sasync_msg_type_t type, bool built)
{
	private_sasync_msg_t *this;

	INIT(this,
		.public = {
			.get_type = _get_type,
			.add_int = _add_int,
			.add_chunk = _add_chunk,
			.add_host = _add_host,
			.add_id = _add_id,
			.add_proposal = _add_proposal,
			.add_ts = _add_ts,
			.add_mark = _add_mark,
			.get_int = _get_int,
			.get_chunk = _get_chunk,
			.get_string = _get_string,
			.get_host = _get_host,
			.get_id = _get_id,
			.get_proposal = _get_proposal,
			.get_mark = _get_mark,
			.create_host_enumerator = _create_host_enumerator,
			.create_ts_enumerator = _create_ts_enumerator,
			.get_encoding = _get_encoding,
			.destroy = _destroy,
		},
		.type = type,
		/* room for the attributes of an IKE_ADD or CHILD_ADD: array_t
		 * grows by one element per insert once it is full */
		.attrs = array_create(sizeof(attr_t), 40),
		.built = built,
	);
	return this;
}

/*
 * Described in header
 */
sasync_msg_t *sasync_msg_create(sasync_msg_type_t type)
{
	return &msg_create(type, TRUE)->public;
}

/**
 * Check that a value has a valid size and form for its attribute
 */
static bool value_valid(sasync_attr_t type, chunk_t value)
{
	switch (kind_of(type))
	{
		case KIND_U8:
			return value.len == 1;
		case KIND_U16:
			return value.len == 2;
		case KIND_U32:
			return value.len == 4;
		case KIND_U64:
		case KIND_MARK:
			return value.len == 8;
		case KIND_BYTES:
			return value.len <= MAX_BYTES;
		case KIND_HOST:
			return value.len == 7 || value.len == 19;
		case KIND_ID:
			return value.len >= 1 && value.len <= MAX_BYTES;
		case KIND_PROPOSAL:
			return value.len >= 2 && (value.len - 2) % 6 == 0;
		case KIND_TS:
			return value.len == 6 + 8 || value.len == 6 + 32;
		case KIND_NONE:
			break;
	}
	return FALSE;
}

/**
 * Parse all attributes, FALSE on any inconsistency
 */
static bool parse_attrs(private_sasync_msg_t *this, bio_reader_t *reader,
						uint16_t count)
{
	uint16_t type;
	chunk_t value;

	while (count--)
	{
		if (!reader->read_uint16(reader, &type) ||
			!reader->read_data16(reader, &value))
		{
			DBG1(DBG_APP, "sasync: truncated %N record",
				 sasync_msg_type_names, this->type);
			return FALSE;
		}
		if (!value_valid(type, value))
		{
			DBG1(DBG_APP, "sasync: invalid attribute %u (%zu bytes) in %N "
				 "record", type, value.len, sasync_msg_type_names,
				 this->type);
			return FALSE;
		}
		add_attr(this, type, value);
	}
	if (reader->remaining(reader))
	{
		DBG1(DBG_APP, "sasync: %zu trailing bytes in %N record",
			 reader->remaining(reader), sasync_msg_type_names, this->type);
		return FALSE;
	}
	return TRUE;
}

/*
 * Described in header
 */
sasync_msg_t *sasync_msg_parse(chunk_t data)
{
	private_sasync_msg_t *this;
	bio_reader_t *reader;
	uint8_t version, type;
	uint16_t count;
	chunk_t copy;
	bool ok;

	copy = chunk_clone(data);
	reader = bio_reader_create(copy);
	if (!reader->read_uint8(reader, &version) ||
		!reader->read_uint8(reader, &type) ||
		!reader->read_uint16(reader, &count))
	{
		DBG1(DBG_APP, "sasync: record of %zu bytes too short", data.len);
		reader->destroy(reader);
		chunk_clear(&copy);
		return NULL;
	}
	if (version != SASYNC_MSG_VERSION || type < SASYNC_MSG_IKE_ADD ||
		type >= SASYNC_MSG_TYPE_MAX)
	{
		DBG1(DBG_APP, "sasync: unsupported record version %u type %u",
			 version, type);
		reader->destroy(reader);
		chunk_clear(&copy);
		return NULL;
	}
	this = msg_create(type, FALSE);
	ok = parse_attrs(this, reader, count);
	reader->destroy(reader);
	/* attribute values point into the copy, owned as our encoding */
	this->encoding = copy;
	if (!ok)
	{
		destroy(this);
		return NULL;
	}
	return &this->public;
}

/*
 * Described in header
 */
uint64_t sasync_now_ms()
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
