/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_kex.h"

typedef struct private_sasync_kex_t private_sasync_kex_t;

struct private_sasync_kex_t {

	/** public interface */
	key_exchange_t public;

	/** key exchange method */
	key_exchange_method_t method;

	/** synced shared secret */
	chunk_t secret;

	/** our public value */
	chunk_t my_value;
};

METHOD(key_exchange_t, get_shared_secret, bool,
	private_sasync_kex_t *this, chunk_t *secret)
{
	*secret = chunk_clone(this->secret);
	return TRUE;
}

/* the exchange already happened: the peer's value is never set again */
METHOD(key_exchange_t, set_public_key, bool,
	private_sasync_kex_t *this, chunk_t value)
{
	return FALSE;
}

METHOD(key_exchange_t, get_public_key, bool,
	private_sasync_kex_t *this, chunk_t *value)
{
	if (!this->my_value.len)
	{
		return FALSE;
	}
	*value = chunk_clone(this->my_value);
	return TRUE;
}

METHOD(key_exchange_t, get_method, key_exchange_method_t,
	private_sasync_kex_t *this)
{
	return this->method;
}

METHOD(key_exchange_t, destroy, void,
	private_sasync_kex_t *this)
{
	chunk_clear(&this->secret);
	chunk_free(&this->my_value);
	free(this);
}

/*
 * Described in header
 */
key_exchange_t *sasync_kex_create(key_exchange_method_t method, chunk_t secret,
								  chunk_t my_value)
{
	private_sasync_kex_t *this;

	INIT(this,
		.public = {
			.get_shared_secret = _get_shared_secret,
			.set_public_key = _set_public_key,
			.get_public_key = _get_public_key,
			.get_method = _get_method,
			.destroy = _destroy,
		},
		.method = method,
		.secret = chunk_clone(secret),
		.my_value = chunk_clone(my_value),
	);
	return &this->public;
}
