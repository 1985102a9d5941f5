/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_dispatch.h"
#include "sasync_msg.h"

#include <daemon.h>

typedef struct private_sasync_dispatch_t private_sasync_dispatch_t;

struct private_sasync_dispatch_t {

	/** public interface */
	sasync_dispatch_t public;

	/** link we receive from */
	sasync_link_t *link;

	/** node role */
	sasync_role_t *role;

	/** active side, sends bulk resyncs */
	sasync_capture_t *capture;

	/** standby side */
	sasync_apply_t *apply;
};

static bool is_primary(private_sasync_dispatch_t *this)
{
	return this->role->get(this->role) == SASYNC_ROLE_PRIMARY;
}

CALLBACK(receive, void,
	private_sasync_dispatch_t *this, host_t *peer, chunk_t data)
{
	sasync_msg_t *msg;

	msg = sasync_msg_parse(data);
	if (!msg)
	{
		this->apply->reject(this->apply, peer, "malformed record");
		return;
	}
	switch (msg->get_type(msg))
	{
		case SASYNC_MSG_RESYNC_REQUEST:
			if (is_primary(this))
			{
				DBG1(DBG_APP, "sasync: %H asks for a bulk resync", peer);
				this->capture->resync(this->capture, peer);
			}
			else
			{
				DBG1(DBG_APP, "sasync: resync request from %H ignored, we are "
					 "standby", peer);
			}
			break;
		default:
			this->apply->apply(this->apply, peer, msg);
			break;
	}
	msg->destroy(msg);
}

CALLBACK(link_up, void,
	private_sasync_dispatch_t *this, host_t *peer)
{
	if (is_primary(this))
	{
		DBG1(DBG_APP, "sasync: sync link to %H up, starting bulk resync", peer);
		this->capture->resync(this->capture, peer);
	}
}

METHOD(sasync_dispatch_t, destroy, void,
	private_sasync_dispatch_t *this)
{
	free(this);
}

/*
 * Described in header
 */
sasync_dispatch_t *sasync_dispatch_create(sasync_link_t *link,
										  sasync_role_t *role,
										  sasync_capture_t *capture,
										  sasync_apply_t *apply)
{
	private_sasync_dispatch_t *this;

	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.link = link,
		.role = role,
		.capture = capture,
		.apply = apply,
	);
	link->set_receiver(link, receive, this);
	link->set_up_cb(link, link_up, this);
	return &this->public;
}
