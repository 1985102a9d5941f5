/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_role.h"

#include <daemon.h>
#include <collections/array.h>
#include <threading/mutex.h>

ENUM(sasync_role_names, SASYNC_ROLE_STANDBY, SASYNC_ROLE_PRIMARY,
	"standby",
	"primary",
);

typedef struct private_sasync_role_t private_sasync_role_t;

typedef struct {
	sasync_role_cb_t cb;
	void *data;
} role_listener_t;

struct private_sasync_role_t {

	/** public interface */
	sasync_role_t public;

	/** current role */
	sasync_role_state_t role;

	/** role_listener_t */
	array_t *listeners;

	/** serializes role changes and their callbacks */
	mutex_t *mutex;
};

METHOD(sasync_role_t, get, sasync_role_state_t,
	private_sasync_role_t *this)
{
	return this->role;
}

METHOD(sasync_role_t, set, bool,
	private_sasync_role_t *this, sasync_role_state_t role, char *reason)
{
	role_listener_t *listener;
	int i;

	this->mutex->lock(this->mutex);
	if (this->role == role)
	{
		this->mutex->unlock(this->mutex);
		return FALSE;
	}
	DBG1(DBG_APP, "sasync: role %N -> %N (%s)", sasync_role_names, this->role,
		 sasync_role_names, role, reason);
	this->role = role;
	for (i = 0; i < array_count(this->listeners); i++)
	{
		array_get(this->listeners, i, &listener);
		listener->cb(listener->data, role, reason);
	}
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(sasync_role_t, add_listener, void,
	private_sasync_role_t *this, sasync_role_cb_t cb, void *data)
{
	role_listener_t *listener;

	INIT(listener,
		.cb = cb,
		.data = data,
	);
	this->mutex->lock(this->mutex);
	array_insert(this->listeners, ARRAY_TAIL, listener);
	this->mutex->unlock(this->mutex);
}

METHOD(sasync_role_t, destroy, void,
	private_sasync_role_t *this)
{
	array_destroy_function(this->listeners, (void*)free, NULL);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
sasync_role_t *sasync_role_create(sasync_role_state_t initial)
{
	private_sasync_role_t *this;

	INIT(this,
		.public = {
			.get = _get,
			.set = _set,
			.add_listener = _add_listener,
			.destroy = _destroy,
		},
		.role = initial,
		.listeners = array_create(0, 2),
		.mutex = mutex_create(MUTEX_TYPE_RECURSIVE),
	);
	return &this->public;
}
