/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_orphan.h"

#include <daemon.h>
#include <encoding/payloads/delete_payload.h>

typedef struct private_orphan_task_t private_orphan_task_t;

/**
 * The initiator task of the INFORMATIONAL exchange.
 */
struct private_orphan_task_t {

	/** task interface */
	task_t public;

	/** IKE SA */
	ike_sa_t *ike_sa;

	/** protocol and SPI to delete */
	protocol_id_t protocol;
	uint32_t spi;
};

METHOD(task_t, build, status_t,
	private_orphan_task_t *this, message_t *message)
{
	delete_payload_t *delete;

	delete = delete_payload_create(PLV2_DELETE, this->protocol);
	delete->add_spi(delete, this->spi);
	message->set_exchange_type(message, INFORMATIONAL);
	message->add_payload(message, (payload_t*)delete);
	DBG1(DBG_APP, "sasync: deleting %N CHILD_SA with SPI %.8x the failed node "
		 "had proposed", protocol_id_names, this->protocol, ntohl(this->spi));
	return NEED_MORE;
}

METHOD(task_t, pre_process, status_t,
	private_orphan_task_t *this, message_t *message)
{
	return SUCCESS;
}

METHOD(task_t, process, status_t,
	private_orphan_task_t *this, message_t *message)
{
	/* the peer answers with its own Delete if it held the SA, else empty */
	return SUCCESS;
}

METHOD(task_t, get_type, task_type_t,
	private_orphan_task_t *this)
{
	return TASK_CHILD_DELETE;
}

METHOD(task_t, migrate, void,
	private_orphan_task_t *this, ike_sa_t *ike_sa)
{
	this->ike_sa = ike_sa;
}

METHOD(task_t, destroy, void,
	private_orphan_task_t *this)
{
	free(this);
}

/*
 * Described in header
 */
void sasync_orphan_delete(ike_sa_t *ike_sa, protocol_id_t protocol,
						  uint32_t spi)
{
	private_orphan_task_t *this;

	INIT(this,
		.public = {
			.build = _build,
			.pre_process = _pre_process,
			.process = _process,
			.get_type = _get_type,
			.migrate = _migrate,
			.destroy = _destroy,
		},
		.ike_sa = ike_sa,
		.protocol = protocol,
		.spi = spi,
	);
	ike_sa->queue_task(ike_sa, &this->public);
	if (ike_sa->initiate(ike_sa, NULL, NULL) != SUCCESS)
	{
		DBG1(DBG_APP, "sasync: starting the delete of CHILD_SA %.8x failed",
			 ntohl(spi));
	}
}
