/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_midsync.h"

#include <daemon.h>
#include <bio/bio_reader.h>
#include <bio/bio_writer.h>
#include <encoding/payloads/notify_payload.h>
#include <processing/jobs/callback_job.h>

typedef struct private_midsync_task_t private_midsync_task_t;

/** seconds the peer has to answer before the synced IDs are used as they
 * are: outbound traffic waits for the forced rekeys queued behind, so not
 * long; they are right unless the failed node had an exchange in flight */
#define MIDSYNC_TIMEOUT 3

/** how far ahead of the synced one the next request ID we announce is: the
 * peer ignores a sync with an ID below the one it expects (RFC 6311 3.3),
 * and records of the failed node's last exchanges may not have reached us;
 * the peer takes the larger value, so skipping IDs is harmless */
#define MIDSYNC_MARGIN 64

/**
 * State shared by the task and its timeout job; either may go first. Only
 * used with the IKE SA checked out, which serializes them.
 */
typedef struct {
	/** the exchange is complete (or given up), the task only waits to be
	 * dropped */
	bool done;
	/** the task still exists */
	bool alive;
	/** references: the task and the job */
	refcount_t refs;
} midsync_state_t;

static void state_unref(midsync_state_t *state)
{
	if (ref_put(&state->refs))
	{
		free(state);
	}
}

/**
 * The initiator task of the exchange.
 */
struct private_midsync_task_t {

	/** task interface */
	task_t public;

	/** IKE SA */
	ike_sa_t *ike_sa;

	/** counters */
	sasync_counters_t *counters;

	/** our nonce */
	uint32_t nonce;

	/** our next request ID (synced + MIDSYNC_MARGIN), and the next one we
	 * expect */
	uint32_t send;
	uint32_t recv;

	/** our next request ID as synced, if the peer does not answer */
	uint32_t synced;

	/** shared with the timeout job */
	midsync_state_t *state;
};

METHOD(task_t, build, status_t,
	private_midsync_task_t *this, message_t *message)
{
	bio_writer_t *writer;

	if (this->state->done)
	{	/* requeued by the reset in process(): drop out without a message */
		message->set_exchange_type(message, EXCHANGE_TYPE_UNDEFINED);
		return SUCCESS;
	}
	writer = bio_writer_create(12);
	writer->write_uint32(writer, this->nonce);
	writer->write_uint32(writer, this->send);
	writer->write_uint32(writer, this->recv);
	message->set_message_id(message, 0);
	message->add_notify(message, FALSE, IKEV2_MESSAGE_ID_SYNC,
						writer->get_buf(writer));
	writer->destroy(writer);
	return NEED_MORE;
}

METHOD(task_t, pre_process, status_t,
	private_midsync_task_t *this, message_t *message)
{
	return SUCCESS;
}

/*
 * Described in header
 */
bool sasync_midsync_parse(message_t *message, uint32_t *nonce, uint32_t *send,
						  uint32_t *recv)
{
	notify_payload_t *notify;
	bio_reader_t *reader;
	bool ok;

	notify = message->get_notify(message, IKEV2_MESSAGE_ID_SYNC);
	if (!notify)
	{
		return FALSE;
	}
	reader = bio_reader_create(notify->get_notification_data(notify));
	ok = reader->read_uint32(reader, nonce) &&
		 reader->read_uint32(reader, send) &&
		 reader->read_uint32(reader, recv) &&
		 !reader->remaining(reader);
	reader->destroy(reader);
	return ok;
}

/**
 * Parse the peer's answer: its next request ID and the one it expects
 */
static bool parse_answer(private_midsync_task_t *this, message_t *message,
						 uint32_t *peer_send, uint32_t *peer_recv)
{
	uint32_t nonce;

	return sasync_midsync_parse(message, &nonce, peer_send, peer_recv) &&
		   nonce == this->nonce;
}

METHOD(task_t, process, status_t,
	private_midsync_task_t *this, message_t *message)
{
	uint32_t peer_send, peer_recv;

	if (!parse_answer(this, message, &peer_send, &peer_recv) ||
		peer_recv < this->send)
	{
		DBG1(DBG_APP, "sasync: invalid %N answer, keeping synced message IDs",
			 notify_type_names, IKEV2_MESSAGE_ID_SYNC);
		peer_recv = this->synced;
		peer_send = this->recv;
	}
	else
	{
		DBG1(DBG_APP, "sasync: RFC 6311 message ID sync: initiating %u[%u], "
			 "responding %u[%u]", peer_recv, this->send, peer_send, this->recv);
		this->counters->inc(this->counters, SASYNC_CTR_MID_SYNC_RFC6311);
	}
	/* setting the IDs resets the task manager, which requeues this task and
	 * restarts with the next one: so mark it done and keep it alive */
	this->state->done = TRUE;
	this->ike_sa->set_message_id(this->ike_sa, TRUE, peer_recv);
	this->ike_sa->set_message_id(this->ike_sa, FALSE, peer_send);
	return NEED_MORE;
}

METHOD(task_t, get_type, task_type_t,
	private_midsync_task_t *this)
{
	/* charon sends queued tasks of known types only; a DPD is an
	 * INFORMATIONAL like ours */
	return TASK_IKE_DPD;
}

METHOD(task_t, migrate, void,
	private_midsync_task_t *this, ike_sa_t *ike_sa)
{
	this->ike_sa = ike_sa;
}

METHOD(task_t, destroy, void,
	private_midsync_task_t *this)
{
	this->state->alive = FALSE;
	state_unref(this->state);
	free(this);
}

static task_t *midsync_task_create(ike_sa_t *ike_sa,
								   sasync_counters_t *counters)
{
	private_midsync_task_t *this;
	rng_t *rng;

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
		.counters = counters,
		.send = ike_sa->get_message_id(ike_sa, TRUE) + MIDSYNC_MARGIN,
		.recv = ike_sa->get_message_id(ike_sa, FALSE),
		.synced = ike_sa->get_message_id(ike_sa, TRUE),
	);
	INIT(this->state,
		.alive = TRUE,
		.refs = 1,
	);
	rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK);
	if (!rng || !rng->get_bytes(rng, sizeof(this->nonce), (void*)&this->nonce))
	{
		this->nonce = random();
	}
	DESTROY_IF(rng);
	return &this->public;
}

/**
 * The timeout of one exchange
 */
typedef struct {
	ike_sa_id_t *id;
	midsync_state_t *state;
	/** the IDs synced before the exchange */
	uint32_t send;
	uint32_t recv;
} timeout_t;

static void timeout_destroy(timeout_t *timeout)
{
	timeout->id->destroy(timeout->id);
	state_unref(timeout->state);
	free(timeout);
}

/**
 * No answer: a peer that announced RFC 6311 support but does not answer it
 * would have charon retransmit until it gives the IKE SA up, with every
 * rekey waiting behind. Use the synced IDs as they are instead: right
 * unless the failed node had an exchange in flight.
 */
static job_requeue_t midsync_timeout(timeout_t *timeout)
{
	ike_sa_t *ike_sa;

	ike_sa = charon->ike_sa_manager->checkout(charon->ike_sa_manager,
											  timeout->id);
	if (!ike_sa)
	{
		return JOB_REQUEUE_NONE;
	}
	if (timeout->state->alive && !timeout->state->done)
	{
		DBG1(DBG_APP, "sasync: no answer to the RFC 6311 message ID sync "
			 "after %ds, using the synced IDs %u[%u]", MIDSYNC_TIMEOUT,
			 timeout->send, timeout->recv);
		/* resetting the IDs drops the request and requeues the task, which
		 * then drops out; the tasks behind it go on */
		timeout->state->done = TRUE;
		ike_sa->set_message_id(ike_sa, TRUE, timeout->send);
		ike_sa->set_message_id(ike_sa, FALSE, timeout->recv);
		ike_sa->initiate(ike_sa, NULL, NULL);
	}
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	return JOB_REQUEUE_NONE;
}

/*
 * Described in header
 */
void sasync_midsync_start(ike_sa_t *ike_sa, sasync_counters_t *counters)
{
	private_midsync_task_t *task;
	timeout_t *timeout;

	task = (private_midsync_task_t*)midsync_task_create(ike_sa, counters);
	INIT(timeout,
		.id = ike_sa->get_id(ike_sa)->clone(ike_sa->get_id(ike_sa)),
		.state = task->state,
		.send = task->synced,
		.recv = task->recv,
	);
	ref_get(&task->state->refs);
	lib->scheduler->schedule_job(lib->scheduler, (job_t*)callback_job_create(
						(callback_job_cb_t)midsync_timeout, timeout,
						(callback_job_cleanup_t)timeout_destroy, NULL),
						MIDSYNC_TIMEOUT);
	/* RFC 6311 requests use message ID 0 */
	ike_sa->set_message_id(ike_sa, TRUE, 0);
	ike_sa->queue_task(ike_sa, &task->public);
	if (ike_sa->initiate(ike_sa, NULL, NULL) != SUCCESS)
	{
		DBG1(DBG_APP, "sasync: starting RFC 6311 message ID sync of %s[%u] "
			 "failed", ike_sa->get_name(ike_sa), ike_sa->get_unique_id(ike_sa));
	}
}
