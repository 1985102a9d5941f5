/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_wait.h"

#include <collections/array.h>
#include <collections/hashtable.h>

typedef struct private_sasync_wait_t private_sasync_wait_t;

/**
 * What makes two records the same
 */
typedef struct {
	uint64_t spi_i;
	uint64_t spi_r;
	uint64_t spi_in;
	sasync_msg_type_t type;
} wait_key_t;

/**
 * A waiting record; msg is NULL once it was replaced or dropped (the entry
 * stays in the order until it is taken out)
 */
typedef struct {
	wait_key_t key;
	sasync_msg_t *msg;
	time_t since;
} entry_t;

struct private_sasync_wait_t {

	/** public interface */
	sasync_wait_t public;

	/** entry_t*, in order */
	array_t *order;

	/** wait_key_t -> entry_t*, the live entries */
	hashtable_t *index;

	/** records it holds at most */
	u_int max;
};

static bool is_child_record(sasync_msg_type_t type)
{
	switch (type)
	{
		case SASYNC_MSG_CHILD_ADD:
		case SASYNC_MSG_CHILD_DELETE:
		case SASYNC_MSG_CHILD_PENDING:
		case SASYNC_MSG_CHILD_REKEYED:
			return TRUE;
		default:
			return FALSE;
	}
}

static wait_key_t make_key(sasync_msg_type_t type, sasync_msg_t *msg)
{
	wait_key_t key = { .type = type };

	msg->get_int(msg, SASYNC_ATTR_IKE_SPI_I, &key.spi_i);
	msg->get_int(msg, SASYNC_ATTR_IKE_SPI_R, &key.spi_r);
	if (is_child_record(type))
	{
		msg->get_int(msg, SASYNC_ATTR_SPI_IN, &key.spi_in);
	}
	return key;
}

static u_int hash_key(wait_key_t *key)
{
	return chunk_hash(chunk_create((u_char*)key, offsetof(wait_key_t, type))) ^
		   key->type;
}

static bool equals_key(wait_key_t *a, wait_key_t *b)
{
	return a->spi_i == b->spi_i && a->spi_r == b->spi_r &&
		   a->spi_in == b->spi_in && a->type == b->type;
}

/**
 * Forget the record of a live entry; the entry leaves the order later
 */
static void kill_entry(private_sasync_wait_t *this, entry_t *entry)
{
	this->index->remove(this->index, &entry->key);
	entry->msg->destroy(entry->msg);
	entry->msg = NULL;
}

METHOD(sasync_wait_t, add, sasync_wait_status_t,
	private_sasync_wait_t *this, sasync_msg_t *msg, time_t since)
{
	entry_t *entry, *mid;
	wait_key_t key;

	key = make_key(msg->get_type(msg), msg);
	entry = this->index->get(this->index, &key);
	if (entry)
	{
		entry->msg->destroy(entry->msg);
		entry->msg = sasync_msg_parse(msg->get_encoding(msg));
		entry->since = since;
		if (key.type == SASYNC_MSG_IKE_ADD)
		{
			key.type = SASYNC_MSG_IKE_MID;
			mid = this->index->get(this->index, &key);
			if (mid)
			{
				kill_entry(this, mid);
			}
		}
		return SASYNC_WAIT_REPLACED;
	}
	if (this->index->get_count(this->index) >= this->max)
	{
		return SASYNC_WAIT_FULL;
	}
	INIT(entry,
		.key = key,
		.msg = sasync_msg_parse(msg->get_encoding(msg)),
		.since = since,
	);
	array_insert(this->order, ARRAY_TAIL, entry);
	this->index->put(this->index, &entry->key, entry);
	return SASYNC_WAIT_ADDED;
}

METHOD(sasync_wait_t, has, bool,
	private_sasync_wait_t *this, sasync_msg_type_t type, sasync_msg_t *msg)
{
	wait_key_t key;

	if (!this->index->get_count(this->index))
	{
		return FALSE;
	}
	key = make_key(type, msg);
	return this->index->get(this->index, &key) != NULL;
}

METHOD(sasync_wait_t, drop, u_int,
	private_sasync_wait_t *this, sasync_msg_t *delete)
{
	enumerator_t *enumerator;
	entry_t *entry;
	wait_key_t key;
	bool child;
	u_int count = 0;

	if (!this->index->get_count(this->index))
	{
		return 0;
	}
	child = delete->get_type(delete) == SASYNC_MSG_CHILD_DELETE;
	key = make_key(delete->get_type(delete), delete);
	enumerator = array_create_enumerator(this->order);
	while (enumerator->enumerate(enumerator, &entry))
	{
		if (entry->msg && entry->key.spi_i == key.spi_i &&
			entry->key.spi_r == key.spi_r &&
			(!child || (is_child_record(entry->key.type) &&
						entry->key.spi_in == key.spi_in)))
		{
			kill_entry(this, entry);
			count++;
		}
	}
	enumerator->destroy(enumerator);
	return count;
}

METHOD(sasync_wait_t, drop_unnamed, u_int,
	private_sasync_wait_t *this, bool (*named)(void *data, uint64_t spi_i),
	void *data)
{
	enumerator_t *enumerator;
	entry_t *entry;
	u_int count = 0;

	enumerator = array_create_enumerator(this->order);
	while (enumerator->enumerate(enumerator, &entry))
	{
		if (entry->msg && !named(data, entry->key.spi_i))
		{
			kill_entry(this, entry);
			count++;
		}
	}
	enumerator->destroy(enumerator);
	return count;
}

METHOD(sasync_wait_t, remove_first, bool,
	private_sasync_wait_t *this, sasync_msg_t **msg, time_t *since)
{
	entry_t *entry;

	while (array_remove(this->order, ARRAY_HEAD, &entry))
	{
		if (entry->msg)
		{
			this->index->remove(this->index, &entry->key);
			*msg = entry->msg;
			*since = entry->since;
			free(entry);
			return TRUE;
		}
		free(entry);
	}
	return FALSE;
}

METHOD(sasync_wait_t, get_count, u_int,
	private_sasync_wait_t *this)
{
	return this->index->get_count(this->index);
}

static void entry_destroy(entry_t *entry)
{
	DESTROY_IF(entry->msg);
	free(entry);
}

METHOD(sasync_wait_t, destroy, void,
	private_sasync_wait_t *this)
{
	this->index->destroy(this->index);
	array_destroy_function(this->order, (void*)entry_destroy, NULL);
	free(this);
}

/*
 * Described in header
 */
sasync_wait_t *sasync_wait_create(u_int max)
{
	private_sasync_wait_t *this;

	INIT(this,
		.public = {
			.add = _add,
			.has = _has,
			.drop = _drop,
			.drop_unnamed = _drop_unnamed,
			.remove_first = _remove_first,
			.get_count = _get_count,
			.destroy = _destroy,
		},
		.order = array_create(0, 0),
		.index = hashtable_create((hashtable_hash_t)hash_key,
								  (hashtable_equals_t)equals_key, 64),
		.max = max,
	);
	return &this->public;
}
