/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_keystore.h"

#include <collections/hashtable.h>
#include <threading/mutex.h>

#include <daemon.h>

typedef struct private_sasync_keystore_t private_sasync_keystore_t;

/** set while this thread destroys an IKE SA because sync says so */
static __thread bool sync_destroying;

struct private_sasync_keystore_t {

	/** public interface */
	sasync_keystore_t public;

	/** unique id => sasync_ike_keys_t */
	hashtable_t *ikes;

	/** unique id => sasync_child_keys_t */
	hashtable_t *children;

	/** protects both tables and their entries */
	mutex_t *mutex;
};

static void *key_of(u_int unique)
{
	return (void*)(uintptr_t)unique;
}

/*
 * Described in header
 */
void sasync_ike_keys_destroy(sasync_ike_keys_t *keys)
{
	chunk_clear(&keys->secret);
	chunk_free(&keys->nonce_i);
	chunk_free(&keys->nonce_r);
	chunk_clear(&keys->old_skd);
	chunk_free(&keys->local_ke);
	chunk_free(&keys->remote_ke);
	chunk_clear(&keys->psk);
	chunk_free(&keys->iv);
	DESTROY_IF(keys->replaces);
	array_destroy_offset(keys->held, offsetof(sasync_msg_t, destroy));
	free(keys);
}

static void child_keys_destroy(sasync_child_keys_t *keys)
{
	chunk_clear(&keys->encr_in);
	chunk_clear(&keys->integ_in);
	chunk_clear(&keys->encr_out);
	chunk_clear(&keys->integ_out);
	free(keys);
}

static void add_if_set(sasync_msg_t *msg, sasync_attr_t attr, chunk_t value)
{
	if (value.len)
	{
		msg->add_chunk(msg, attr, value);
	}
}

/*
 * Described in header
 */
void sasync_ike_keys_encode(sasync_ike_keys_t *keys, ike_version_t version,
							sasync_msg_t *msg)
{
	msg->add_chunk(msg, SASYNC_ATTR_SECRET, keys->secret);
	msg->add_chunk(msg, SASYNC_ATTR_NONCE_I, keys->nonce_i);
	msg->add_chunk(msg, SASYNC_ATTR_NONCE_R, keys->nonce_r);
	if (keys->old_skd.len)
	{
		msg->add_chunk(msg, SASYNC_ATTR_OLD_SKD, keys->old_skd);
		msg->add_int(msg, SASYNC_ATTR_OLD_PRF, keys->old_prf);
	}
	if (version != IKEV1)
	{
		return;
	}
	/* IKEv1 derives its keys and IVs from more inputs */
	msg->add_chunk(msg, SASYNC_ATTR_LOCAL_KE, keys->local_ke);
	msg->add_chunk(msg, SASYNC_ATTR_REMOTE_KE, keys->remote_ke);
	msg->add_int(msg, SASYNC_ATTR_AUTH_METHOD, keys->auth);
	add_if_set(msg, SASYNC_ATTR_PSK, keys->psk);
	add_if_set(msg, SASYNC_ATTR_IV, keys->iv);
}

static void decode_chunk(sasync_msg_t *msg, sasync_attr_t attr, chunk_t *dst,
						 bool secret)
{
	chunk_t value;

	if (secret)
	{
		chunk_clear(dst);
	}
	else
	{
		chunk_free(dst);
	}
	if (msg->get_chunk(msg, attr, &value))
	{
		*dst = chunk_clone(value);
	}
}

/*
 * Described in header
 */
bool sasync_ike_keys_decode(sasync_ike_keys_t *keys, sasync_msg_t *msg)
{
	uint64_t value;

	decode_chunk(msg, SASYNC_ATTR_SECRET, &keys->secret, TRUE);
	decode_chunk(msg, SASYNC_ATTR_NONCE_I, &keys->nonce_i, FALSE);
	decode_chunk(msg, SASYNC_ATTR_NONCE_R, &keys->nonce_r, FALSE);
	decode_chunk(msg, SASYNC_ATTR_OLD_SKD, &keys->old_skd, TRUE);
	decode_chunk(msg, SASYNC_ATTR_LOCAL_KE, &keys->local_ke, FALSE);
	decode_chunk(msg, SASYNC_ATTR_REMOTE_KE, &keys->remote_ke, FALSE);
	decode_chunk(msg, SASYNC_ATTR_PSK, &keys->psk, TRUE);
	decode_chunk(msg, SASYNC_ATTR_IV, &keys->iv, FALSE);
	keys->old_prf = msg->get_int(msg, SASYNC_ATTR_OLD_PRF, &value) ? value
																	: 0;
	keys->auth = msg->get_int(msg, SASYNC_ATTR_AUTH_METHOD, &value) ? value
																	: 0;
	return keys->secret.len && keys->nonce_i.len && keys->nonce_r.len;
}

/*
 * Described in header
 */
void sasync_child_keys_encode(sasync_child_keys_t *keys, sasync_msg_t *msg)
{
	msg->add_int(msg, SASYNC_ATTR_CHILD_INITIATOR, keys->initiator);
	msg->add_chunk(msg, SASYNC_ATTR_ENCR_IN, keys->encr_in);
	msg->add_chunk(msg, SASYNC_ATTR_INTEG_IN, keys->integ_in);
	msg->add_chunk(msg, SASYNC_ATTR_ENCR_OUT, keys->encr_out);
	msg->add_chunk(msg, SASYNC_ATTR_INTEG_OUT, keys->integ_out);
}

/*
 * Described in header
 */
sasync_child_keys_t *sasync_child_keys_decode(sasync_msg_t *msg)
{
	sasync_child_keys_t *keys;
	uint64_t initiator = 0;

	msg->get_int(msg, SASYNC_ATTR_CHILD_INITIATOR, &initiator);
	INIT(keys,
		.initiator = initiator,
		/* its sender told the other partners already */
		.synced = TRUE,
	);
	decode_chunk(msg, SASYNC_ATTR_ENCR_IN, &keys->encr_in, TRUE);
	decode_chunk(msg, SASYNC_ATTR_INTEG_IN, &keys->integ_in, TRUE);
	decode_chunk(msg, SASYNC_ATTR_ENCR_OUT, &keys->encr_out, TRUE);
	decode_chunk(msg, SASYNC_ATTR_INTEG_OUT, &keys->integ_out, TRUE);
	return keys;
}

METHOD(sasync_keystore_t, lock, void,
	private_sasync_keystore_t *this)
{
	this->mutex->lock(this->mutex);
}

METHOD(sasync_keystore_t, unlock, void,
	private_sasync_keystore_t *this)
{
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_keystore_t, get_ike, sasync_ike_keys_t*,
	private_sasync_keystore_t *this, u_int unique, bool create)
{
	sasync_ike_keys_t *keys;

	keys = this->ikes->get(this->ikes, key_of(unique));
	if (!keys && create)
	{
		INIT(keys,
			.held = array_create(0, 0),
		);
		this->ikes->put(this->ikes, key_of(unique), keys);
	}
	return keys;
}

METHOD(sasync_keystore_t, remove_ike, sasync_ike_keys_t*,
	private_sasync_keystore_t *this, u_int unique)
{
	return this->ikes->remove(this->ikes, key_of(unique));
}

METHOD(sasync_keystore_t, get_child, sasync_child_keys_t*,
	private_sasync_keystore_t *this, u_int unique)
{
	return this->children->get(this->children, key_of(unique));
}

METHOD(sasync_keystore_t, put_child, void,
	private_sasync_keystore_t *this, u_int unique, sasync_child_keys_t *keys)
{
	keys = this->children->put(this->children, key_of(unique), keys);
	if (keys)
	{
		child_keys_destroy(keys);
	}
}

METHOD(sasync_keystore_t, remove_child, bool,
	private_sasync_keystore_t *this, u_int unique)
{
	sasync_child_keys_t *keys;
	bool synced;

	keys = this->children->remove(this->children, key_of(unique));
	if (!keys)
	{
		return FALSE;
	}
	synced = keys->synced;
	child_keys_destroy(keys);
	return synced;
}

METHOD(sasync_keystore_t, get_count, u_int,
	private_sasync_keystore_t *this, bool children)
{
	u_int count;

	this->mutex->lock(this->mutex);
	count = children ? this->children->get_count(this->children)
					 : this->ikes->get_count(this->ikes);
	this->mutex->unlock(this->mutex);
	return count;
}

METHOD(sasync_keystore_t, hand_over, void,
	private_sasync_keystore_t *this)
{
	enumerator_t *enumerator;
	sasync_ike_keys_t *keys;

	this->mutex->lock(this->mutex);
	enumerator = this->ikes->create_enumerator(this->ikes);
	while (enumerator->enumerate(enumerator, NULL, &keys))
	{
		keys->handover = TRUE;
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_keystore_t, destroy, void,
	private_sasync_keystore_t *this)
{
	this->ikes->destroy_function(this->ikes, (void*)sasync_ike_keys_destroy);
	this->children->destroy_function(this->children,
									 (void*)child_keys_destroy);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_keystore_t *sasync_keystore_create()
{
	private_sasync_keystore_t *this;

	INIT(this,
		.public = {
			.lock = _lock,
			.unlock = _unlock,
			.get_ike = _get_ike,
			.remove_ike = _remove_ike,
			.get_child = _get_child,
			.put_child = _put_child,
			.remove_child = _remove_child,
			.get_count = _get_count,
			.hand_over = _hand_over,
			.destroy = _destroy,
		},
		.ikes = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 32),
		.children = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr,
									 32),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
	);
	return &this->public;
}

/*
 * Described in header
 */
void sasync_keystore_sync_destroy(ike_sa_t *ike_sa)
{
	sync_destroying = TRUE;
	charon->ike_sa_manager->checkin_and_destroy(charon->ike_sa_manager,
												ike_sa);
	sync_destroying = FALSE;
}

/*
 * Described in header
 */
bool sasync_keystore_sync_destroying()
{
	return sync_destroying;
}
