/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_vici.h"

#include <daemon.h>
#include <collections/array.h>
#include <collections/hashtable.h>
#include <collections/linked_list.h>
#include <networking/streams/stream_unix.h>
#include <processing/jobs/callback_job.h>
#include <threading/condvar.h>
#include <threading/mutex.h>
#include <threading/thread.h>

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(HAVE_MALLINFO2) || defined(HAVE_MALLINFO)
#include <malloc.h>
#endif

/**
 * Packets received but not yet handled, per client, before we stop reading
 */
#define MAX_QUEUED_IN 16

/**
 * Bytes queued for a client that does not read, before we disconnect it
 */
#define MAX_QUEUED_OUT (16 * 1024 * 1024)

/**
 * Concurrent clients; the socket is root-only, this just caps resources
 */
#define MAX_CLIENTS 64

/**
 * Backlog of the listening socket
 */
#define BACKLOG 16

typedef struct private_sasync_vici_t private_sasync_vici_t;

/**
 * Private data of a sasync_vici_t object.
 */
struct private_sasync_vici_t {

	/**
	 * Public interface
	 */
	sasync_vici_t public;

	/**
	 * Service accepting clients
	 */
	stream_service_t *service;

	/**
	 * Path of the unix socket, to remove on destroy, NULL for other URIs
	 */
	char *path;

	/**
	 * Counters for stats, may be NULL
	 */
	sasync_counters_t *counters;

	/**
	 * Creation time (monotonic), for the uptime in stats
	 */
	time_t created;

	/**
	 * Protects conns, commands, events, nextid and destroying
	 */
	mutex_t *mutex;

	/**
	 * Connected clients, as conn_t
	 */
	linked_list_t *conns;

	/**
	 * Registered commands, name => command_t
	 */
	hashtable_t *commands;

	/**
	 * Registered event names, as char*
	 */
	linked_list_t *events;

	/**
	 * Last client identifier handed out
	 */
	u_int nextid;

	/**
	 * destroy() has been called
	 */
	bool destroying;

	/**
	 * Jobs queued or running that use this object; a leaf lock, so jobs can
	 * be queued with any other lock held
	 */
	mutex_t *jobs_mutex;

	/**
	 * Signalled when a job finishes
	 */
	condvar_t *jobs_done;

	/**
	 * Number of jobs queued or running
	 */
	u_int jobs;
};

/**
 * A registered command
 */
typedef struct {
	/** command name, the hashtable key */
	char *name;
	/** handler */
	sasync_vici_cmd_t cb;
	/** user data for cb */
	void *user;
} command_t;

/**
 * A connected client.
 *
 * Stream callbacks get the conn_t directly: stream->destroy() waits for
 * them, and the connection list's reference is dropped only after that.
 * Jobs look the connection up by id and hold a reference while they run.
 *
 * Lock order: private_sasync_vici_t.mutex, then conn_t.mutex, then
 * jobs_mutex. ctl is never taken with another lock held, as the stream calls
 * under it wait for running stream callbacks, which take conn_t.mutex.
 */
typedef struct {
	/** server */
	private_sasync_vici_t *this;
	/** client identifier */
	u_int id;
	/** references: the connection list and running jobs */
	refcount_t ref;
	/** client stream, NULL once destroyed (access under ctl) */
	stream_t *stream;
	/** serializes (re-)registering stream callbacks and destroying it */
	mutex_t *ctl;
	/** protects all members below */
	mutex_t *mutex;
	/** length header of the packet being received */
	u_char hdr[sizeof(uint32_t)];
	/** bytes of hdr received */
	u_int hdrlen;
	/** payload of the packet being received, allocated once hdr is complete */
	chunk_t in;
	/** bytes of in received */
	size_t done;
	/** received packets to handle, as chunk_t */
	array_t *queue;
	/** a job handling queue is queued or running */
	bool processing;
	/** reading is suspended until queue drains */
	bool read_paused;
	/** packets to send including length headers, as chunk_t */
	array_t *out;
	/** bytes of the first packet in out already sent */
	size_t out_done;
	/** bytes in out not yet sent */
	size_t out_bytes;
	/** the write callback is registered or about to be */
	bool write_armed;
	/** nothing more to read (closed by the client or a framing error) */
	bool eof;
	/** a framing error: don't wait for the client to read the responses */
	bool failed;
	/** close once everything queued is sent */
	bool linger;
	/** a disconnect is pending, nothing more gets read, handled or queued */
	bool closing;
	/** event names the client registered for, as char* */
	linked_list_t *events;
} conn_t;

/**
 * Data of a job for a connection, freed with free() as the job may outlive
 * the plugin code when the processor is torn down
 */
typedef struct {
	/** server */
	private_sasync_vici_t *this;
	/** client identifier */
	u_int id;
} selector_t;

/**
 * Queue a job for a connection.
 */
static void queue_job(private_sasync_vici_t *this, u_int id,
					  job_requeue_t (*cb)(selector_t *sel), job_priority_t prio)
{
	selector_t *sel;

	INIT(sel,
		.this = this,
		.id = id,
	);
	this->jobs_mutex->lock(this->jobs_mutex);
	this->jobs++;
	this->jobs_mutex->unlock(this->jobs_mutex);

	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create_with_prio((callback_job_cb_t)cb, sel,
												  free, NULL, prio));
}

/**
 * Mark a job as finished.
 */
static void job_done(private_sasync_vici_t *this)
{
	this->jobs_mutex->lock(this->jobs_mutex);
	this->jobs--;
	this->jobs_done->broadcast(this->jobs_done);
	this->jobs_mutex->unlock(this->jobs_mutex);
}

/**
 * Free a connection whose stream is gone.
 */
static void destroy_conn(conn_t *conn)
{
	chunk_t chunk;

	while (array_remove(conn->queue, ARRAY_HEAD, &chunk))
	{
		chunk_free(&chunk);
	}
	while (array_remove(conn->out, ARRAY_HEAD, &chunk))
	{
		chunk_free(&chunk);
	}
	array_destroy(conn->queue);
	array_destroy(conn->out);
	chunk_free(&conn->in);
	conn->events->destroy_function(conn->events, free);
	conn->mutex->destroy(conn->mutex);
	conn->ctl->destroy(conn->ctl);
	free(conn);
}

/**
 * Release a reference to a connection.
 */
static void put_conn(conn_t *conn)
{
	if (ref_put(&conn->ref))
	{
		destroy_conn(conn);
	}
}

/**
 * Find a connected client by id and get a reference.
 */
static conn_t *get_conn(private_sasync_vici_t *this, u_int id)
{
	enumerator_t *enumerator;
	conn_t *conn, *found = NULL;

	this->mutex->lock(this->mutex);
	enumerator = this->conns->create_enumerator(this->conns);
	while (enumerator->enumerate(enumerator, &conn))
	{
		if (conn->id == id)
		{
			ref_get(&conn->ref);
			found = conn;
			break;
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	return found;
}

/**
 * Send what can be sent without blocking, e.g. the responses preceding a
 * protocol error. Call with conn->mutex held, and closing set so that the
 * write callback doesn't interfere.
 */
static void flush_out(conn_t *conn, stream_t *stream)
{
	chunk_t packet;
	ssize_t len;

	while (array_get(conn->out, ARRAY_HEAD, &packet))
	{
		len = stream->write(stream, packet.ptr + conn->out_done,
							packet.len - conn->out_done, FALSE);
		if (len <= 0)
		{
			break;
		}
		conn->out_done += len;
		conn->out_bytes -= len;
		if (conn->out_done == packet.len)
		{
			array_remove(conn->out, ARRAY_HEAD, NULL);
			chunk_free(&packet);
			conn->out_done = 0;
		}
	}
}

/**
 * Destroy the stream of a connection and drop the list's reference; the
 * connection must be removed from the list already.
 */
static void shutdown_conn(conn_t *conn)
{
	conn->ctl->lock(conn->ctl);
	if (conn->stream)
	{
		conn->mutex->lock(conn->mutex);
		conn->closing = TRUE;
		flush_out(conn, conn->stream);
		conn->mutex->unlock(conn->mutex);
		conn->stream->destroy(conn->stream);
		conn->stream = NULL;
	}
	conn->ctl->unlock(conn->ctl);
	put_conn(conn);
}

/**
 * Job disconnecting a client
 */
static job_requeue_t disconnect_job(selector_t *sel)
{
	private_sasync_vici_t *this = sel->this;
	enumerator_t *enumerator;
	conn_t *conn, *found = NULL;

	this->mutex->lock(this->mutex);
	enumerator = this->conns->create_enumerator(this->conns);
	while (enumerator->enumerate(enumerator, &conn))
	{
		if (conn->id == sel->id)
		{
			this->conns->remove_at(this->conns, enumerator);
			found = conn;
			break;
		}
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);

	if (found)
	{
		DBG2(DBG_APP, "sasync vici client %u disconnected", sel->id);
		shutdown_conn(found);
	}
	job_done(this);
	return JOB_REQUEUE_NONE;
}

/**
 * Tear down a connection in a job, as a stream can't be destroyed from its
 * own callbacks. Call with conn->mutex held.
 */
static void close_conn(conn_t *conn)
{
	if (!conn->closing)
	{
		conn->closing = TRUE;
		queue_job(conn->this, conn->id, disconnect_job, JOB_PRIO_CRITICAL);
	}
}

/**
 * Close a connection that won't send anything anymore, once its requests
 * are handled; after a clean close, once the client read all responses.
 * Call with conn->mutex held.
 */
static void finish_conn(conn_t *conn)
{
	if (conn->failed || !array_count(conn->out))
	{
		close_conn(conn);
	}
	else
	{
		conn->linger = TRUE;
	}
}

/**
 * Stream callback sending queued packets
 */
CALLBACK(on_write, bool,
	conn_t *conn, stream_t *stream)
{
	chunk_t packet;
	ssize_t len;
	bool keep = FALSE;

	conn->mutex->lock(conn->mutex);
	while (!conn->closing && array_get(conn->out, ARRAY_HEAD, &packet))
	{
		len = stream->write(stream, packet.ptr + conn->out_done,
							packet.len - conn->out_done, FALSE);
		if (len < 0 && errno == EWOULDBLOCK)
		{
			keep = TRUE;
			break;
		}
		if (len <= 0)
		{
			/* the client went away, nothing to worry about */
			DBG2(DBG_APP, "sasync vici client %u: write failed: %s",
				 conn->id, len ? strerror(errno) : "connection closed");
			close_conn(conn);
			break;
		}
		conn->out_done += len;
		conn->out_bytes -= len;
		if (conn->out_done == packet.len)
		{
			array_remove(conn->out, ARRAY_HEAD, NULL);
			chunk_free(&packet);
			conn->out_done = 0;
		}
	}
	if (!keep)
	{	/* queue_out() re-registers us once there is more to send */
		conn->write_armed = FALSE;
		if (conn->linger && !array_count(conn->out))
		{
			close_conn(conn);
		}
	}
	conn->mutex->unlock(conn->mutex);
	return keep;
}

/**
 * Job registering the write callback; stream callbacks can only be
 * registered outside of the stream's callbacks
 */
static job_requeue_t enable_writer_job(selector_t *sel)
{
	conn_t *conn;

	conn = get_conn(sel->this, sel->id);
	if (conn)
	{
		conn->ctl->lock(conn->ctl);
		if (conn->stream)
		{
			conn->stream->on_write(conn->stream, on_write, conn);
		}
		conn->ctl->unlock(conn->ctl);
		put_conn(conn);
	}
	job_done(sel->this);
	return JOB_REQUEUE_NONE;
}

/**
 * Queue a complete packet for a client. Call with conn->mutex held.
 */
static void queue_out(conn_t *conn, chunk_t packet)
{
	if (conn->closing)
	{
		chunk_free(&packet);
		return;
	}
	if (conn->out_bytes + packet.len > MAX_QUEUED_OUT)
	{
		DBG1(DBG_APP, "sasync vici client %u does not read its messages, "
			 "disconnecting", conn->id);
		chunk_free(&packet);
		close_conn(conn);
		return;
	}
	array_insert(conn->out, ARRAY_TAIL, &packet);
	conn->out_bytes += packet.len;
	if (!conn->write_armed)
	{
		conn->write_armed = TRUE;
		queue_job(conn->this, conn->id, enable_writer_job, JOB_PRIO_CRITICAL);
	}
}

/**
 * Encode and queue a packet for a client.
 */
static void send_packet(conn_t *conn, sasync_vici_packet_t type, char *name,
						chunk_t msg)
{
	chunk_t packet;

	packet = sasync_vici_packet_encode(type, name, msg);
	if (!packet.ptr)
	{
		DBG1(DBG_APP, "sasync vici %N packet of %zu bytes not sendable",
			 sasync_vici_packet_names, type, msg.len);
		return;
	}
	conn->mutex->lock(conn->mutex);
	queue_out(conn, packet);
	conn->mutex->unlock(conn->mutex);
}

/**
 * Result of reading from a client
 */
typedef enum {
	/** a packet is complete */
	READ_PACKET,
	/** no more data available for now */
	READ_AGAIN,
	/** the client closed the connection between packets */
	READ_CLOSED,
	/** read error, premature close or invalid length */
	READ_FAILED,
} read_status_t;

/**
 * Read (part of) a packet without blocking. Call with conn->mutex held.
 */
static read_status_t read_packet(conn_t *conn, stream_t *stream, char *err,
								 size_t errlen)
{
	uint32_t len;
	ssize_t got;

	while (conn->hdrlen < sizeof(conn->hdr))
	{
		got = stream->read(stream, conn->hdr + conn->hdrlen,
						   sizeof(conn->hdr) - conn->hdrlen, FALSE);
		if (got > 0)
		{
			conn->hdrlen += got;
			continue;
		}
		if (got < 0 && errno == EWOULDBLOCK)
		{
			return READ_AGAIN;
		}
		if (conn->hdrlen == 0 && (got == 0 || errno == ECONNRESET))
		{
			return READ_CLOSED;
		}
		snprintf(err, errlen, "read failed: %s",
				 got ? strerror(errno) : "connection closed within a packet");
		return READ_FAILED;
	}
	if (!conn->in.ptr)
	{
		len = untoh32(conn->hdr);
		if (!len || len > SASYNC_VICI_PACKET_MAX_LEN)
		{
			snprintf(err, errlen, "invalid packet length %u (maximum %u)",
					 len, SASYNC_VICI_PACKET_MAX_LEN);
			return READ_FAILED;
		}
		conn->in = chunk_alloc(len);
		conn->done = 0;
	}
	while (conn->done < conn->in.len)
	{
		got = stream->read(stream, conn->in.ptr + conn->done,
						   conn->in.len - conn->done, FALSE);
		if (got > 0)
		{
			conn->done += got;
			continue;
		}
		if (got < 0 && errno == EWOULDBLOCK)
		{
			return READ_AGAIN;
		}
		snprintf(err, errlen, "read failed: %s",
				 got ? strerror(errno) : "connection closed within a packet");
		return READ_FAILED;
	}
	return READ_PACKET;
}

/**
 * Forward declaration
 */
static job_requeue_t process_job(selector_t *sel);

/**
 * Stream callback receiving packets; they are handled in a job, so a slow
 * command neither blocks the watcher nor prevents reading
 */
CALLBACK(on_read, bool,
	conn_t *conn, stream_t *stream)
{
	char err[128] = "";
	bool keep = TRUE;

	conn->mutex->lock(conn->mutex);
	while (keep)
	{
		if (conn->closing || conn->eof)
		{
			keep = FALSE;
			break;
		}
		if (array_count(conn->queue) >= MAX_QUEUED_IN)
		{	/* process_job() registers us again once the queue drains */
			conn->read_paused = TRUE;
			keep = FALSE;
			break;
		}
		switch (read_packet(conn, stream, err, sizeof(err)))
		{
			case READ_PACKET:
				array_insert(conn->queue, ARRAY_TAIL, &conn->in);
				conn->in = chunk_empty;
				conn->hdrlen = 0;
				if (!conn->processing)
				{
					conn->processing = TRUE;
					/* commands may take a while, don't block critical
					 * threads (the watcher, the sync link) with them */
					queue_job(conn->this, conn->id, process_job,
							  JOB_PRIO_MEDIUM);
				}
				continue;
			case READ_AGAIN:
				break;
			case READ_FAILED:
				DBG1(DBG_APP, "sasync vici client %u: %s, disconnecting",
					 conn->id, err);
				conn->failed = TRUE;
				/* fall-through */
			case READ_CLOSED:
				/* answer the requests received before */
				conn->eof = TRUE;
				keep = FALSE;
				if (!conn->processing)
				{
					finish_conn(conn);
				}
				break;
		}
		break;
	}
	conn->mutex->unlock(conn->mutex);
	return keep;
}

/**
 * Disconnect a client that violated the protocol.
 */
static void protocol_error(conn_t *conn, char *what, char *name)
{
	DBG1(DBG_APP, "sasync vici client %u: %s%s%s, disconnecting", conn->id,
		 what, name ? " " : "", name ?: "");
	conn->mutex->lock(conn->mutex);
	close_conn(conn);
	conn->mutex->unlock(conn->mutex);
}

/**
 * Handle a CMD_REQUEST packet.
 */
static void handle_command(private_sasync_vici_t *this, conn_t *conn,
						   char *name, chunk_t data)
{
	sasync_vici_msg_t *request, *reply;
	command_t *cmd, found = {};
	chunk_t encoding;

	request = sasync_vici_msg_create(data, FALSE);
	if (!request)
	{
		protocol_error(conn, "malformed request", name);
		return;
	}
	this->mutex->lock(this->mutex);
	cmd = this->commands->get(this->commands, name);
	if (cmd)
	{
		found = *cmd;
	}
	this->mutex->unlock(this->mutex);

	if (!found.cb)
	{
		DBG2(DBG_APP, "sasync vici client %u: unknown command '%s'",
			 conn->id, name);
		request->destroy(request);
		send_packet(conn, SASYNC_VICI_CMD_UNKNOWN, NULL, chunk_empty);
		return;
	}

	DBG2(DBG_APP, "sasync vici client %u: command '%s'", conn->id, name);
	thread_cleanup_push((void*)request->destroy, request);
	reply = found.cb(found.user, request, conn->id);
	thread_cleanup_pop(TRUE);

	if (!reply)
	{
		reply = sasync_vici_msg_create_reply(FALSE, "%s failed", name);
	}
	encoding = reply->get_encoding(reply);
	if (sizeof(uint32_t) + 1 + encoding.len > SASYNC_VICI_PACKET_MAX_LEN)
	{
		DBG1(DBG_APP, "sasync vici reply to '%s' of %zu bytes too large",
			 name, encoding.len);
		reply->destroy(reply);
		reply = sasync_vici_msg_create_reply(FALSE, "reply too large");
		encoding = reply->get_encoding(reply);
	}
	send_packet(conn, SASYNC_VICI_CMD_RESPONSE, NULL, encoding);
	reply->destroy(reply);
}

/**
 * Check if an event name is registered, with this->mutex held.
 */
static bool event_known(private_sasync_vici_t *this, char *name)
{
	return this->events->find_first(this->events, linked_list_match_str,
									NULL, name);
}

/**
 * Handle an EVENT_REGISTER/EVENT_UNREGISTER packet.
 */
static void handle_registration(private_sasync_vici_t *this, conn_t *conn,
								char *name, bool reg)
{
	char *current;
	bool known;

	this->mutex->lock(this->mutex);
	known = event_known(this, name);
	this->mutex->unlock(this->mutex);

	if (!known)
	{
		DBG2(DBG_APP, "sasync vici client %u: unknown event '%s'",
			 conn->id, name);
		send_packet(conn, SASYNC_VICI_EVENT_UNKNOWN, NULL, chunk_empty);
		return;
	}
	conn->mutex->lock(conn->mutex);
	if (conn->events->find_first(conn->events, linked_list_match_str,
								 (void**)&current, name))
	{
		if (!reg)
		{
			conn->events->remove(conn->events, current, NULL);
			free(current);
		}
	}
	else if (reg)
	{
		conn->events->insert_last(conn->events, strdup(name));
	}
	conn->mutex->unlock(conn->mutex);

	DBG2(DBG_APP, "sasync vici client %u %sregistered for '%s'", conn->id,
		 reg ? "" : "un", name);
	send_packet(conn, SASYNC_VICI_EVENT_CONFIRM, NULL, chunk_empty);
}

/**
 * Handle a received packet.
 */
static void handle_packet(private_sasync_vici_t *this, conn_t *conn,
						  chunk_t packet)
{
	sasync_vici_packet_t type;
	char name[SASYNC_VICI_NAME_BUF];
	chunk_t data;

	if (!sasync_vici_packet_decode(packet, &type, name, &data))
	{
		protocol_error(conn, "malformed packet", NULL);
		return;
	}
	switch (type)
	{
		case SASYNC_VICI_CMD_REQUEST:
			handle_command(this, conn, name, data);
			break;
		case SASYNC_VICI_EVENT_REGISTER:
		case SASYNC_VICI_EVENT_UNREGISTER:
			handle_registration(this, conn, name,
								type == SASYNC_VICI_EVENT_REGISTER);
			break;
		default:
			protocol_error(conn, "unexpected packet",
						   enum_to_name(sasync_vici_packet_names, type));
			break;
	}
}

/**
 * Job handling the received packets of a client in order
 */
static job_requeue_t process_job(selector_t *sel)
{
	chunk_t packet;
	conn_t *conn;
	bool resume;

	conn = get_conn(sel->this, sel->id);
	while (conn)
	{
		conn->mutex->lock(conn->mutex);
		if (conn->closing ||
			!array_remove(conn->queue, ARRAY_HEAD, &packet))
		{
			conn->processing = FALSE;
			if (conn->eof)
			{
				finish_conn(conn);
			}
			conn->mutex->unlock(conn->mutex);
			break;
		}
		resume = conn->read_paused;
		conn->read_paused = FALSE;
		conn->mutex->unlock(conn->mutex);

		if (resume)
		{
			conn->ctl->lock(conn->ctl);
			if (conn->stream)
			{
				conn->stream->on_read(conn->stream, on_read, conn);
			}
			conn->ctl->unlock(conn->ctl);
		}
		thread_cleanup_push((void*)chunk_free, &packet);
		handle_packet(sel->this, conn, packet);
		thread_cleanup_pop(TRUE);
	}
	if (conn)
	{
		put_conn(conn);
	}
	job_done(sel->this);
	return JOB_REQUEUE_NONE;
}

/**
 * Accept a client connection
 */
CALLBACK(on_accept, bool,
	private_sasync_vici_t *this, stream_t *stream)
{
	conn_t *conn;

	this->mutex->lock(this->mutex);
	if (this->destroying ||
		this->conns->get_count(this->conns) >= MAX_CLIENTS)
	{
		if (!this->destroying)
		{
			DBG1(DBG_APP, "sasync vici: %d clients connected, rejecting "
				 "another", MAX_CLIENTS);
		}
		this->mutex->unlock(this->mutex);
		return FALSE;
	}
	INIT(conn,
		.this = this,
		.id = ++this->nextid,
		.ref = 1,
		.stream = stream,
		.ctl = mutex_create(MUTEX_TYPE_DEFAULT),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.queue = array_create(sizeof(chunk_t), 0),
		.out = array_create(sizeof(chunk_t), 0),
		.events = linked_list_create(),
	);
	this->conns->insert_last(this->conns, conn);
	/* destroy() can't remove it before we return, it waits for us */
	this->mutex->unlock(this->mutex);

	DBG2(DBG_APP, "sasync vici client %u connected", conn->id);
	conn->ctl->lock(conn->ctl);
	stream->on_read(stream, on_read, conn);
	conn->ctl->unlock(conn->ctl);
	return TRUE;
}

METHOD(sasync_vici_t, add_command, void,
	private_sasync_vici_t *this, char *name, sasync_vici_cmd_t cb, void *user)
{
	command_t *cmd;

	INIT(cmd,
		.name = strdup(name),
		.cb = cb,
		.user = user,
	);
	this->mutex->lock(this->mutex);
	cmd = this->commands->put(this->commands, cmd->name, cmd);
	this->mutex->unlock(this->mutex);
	if (cmd)
	{
		free(cmd->name);
		free(cmd);
	}
}

METHOD(sasync_vici_t, add_event, void,
	private_sasync_vici_t *this, char *name)
{
	this->mutex->lock(this->mutex);
	if (!event_known(this, name))
	{
		this->events->insert_last(this->events, strdup(name));
	}
	this->mutex->unlock(this->mutex);
}

/**
 * Check if a client is registered for an event, with conn->mutex held.
 */
static bool conn_registered(conn_t *conn, char *name)
{
	return conn->events->find_first(conn->events, linked_list_match_str,
									NULL, name);
}

METHOD(sasync_vici_t, has_listeners, bool,
	private_sasync_vici_t *this, char *name)
{
	enumerator_t *enumerator;
	conn_t *conn;
	bool found = FALSE;

	this->mutex->lock(this->mutex);
	enumerator = this->conns->create_enumerator(this->conns);
	while (!found && enumerator->enumerate(enumerator, &conn))
	{
		conn->mutex->lock(conn->mutex);
		found = !conn->closing && conn_registered(conn, name);
		conn->mutex->unlock(conn->mutex);
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	return found;
}

/**
 * Queue an event to all (client 0) or one registered client.
 */
static void deliver_event(private_sasync_vici_t *this, u_int client,
						  char *name, sasync_vici_msg_t *msg)
{
	enumerator_t *enumerator;
	conn_t *conn;
	chunk_t packet;

	packet = sasync_vici_packet_encode(SASYNC_VICI_EVENT, name,
								msg ? msg->get_encoding(msg) : chunk_empty);
	DESTROY_IF(msg);
	if (!packet.ptr)
	{
		DBG1(DBG_APP, "sasync vici event '%s' not sendable", name);
		return;
	}
	this->mutex->lock(this->mutex);
	enumerator = this->conns->create_enumerator(this->conns);
	while (enumerator->enumerate(enumerator, &conn))
	{
		if (client && conn->id != client)
		{
			continue;
		}
		conn->mutex->lock(conn->mutex);
		if (conn_registered(conn, name))
		{
			queue_out(conn, chunk_clone(packet));
		}
		conn->mutex->unlock(conn->mutex);
	}
	enumerator->destroy(enumerator);
	this->mutex->unlock(this->mutex);
	chunk_free(&packet);
}

METHOD(sasync_vici_t, raise_event, void,
	private_sasync_vici_t *this, char *name, sasync_vici_msg_t *msg)
{
	deliver_event(this, 0, name, msg);
}

METHOD(sasync_vici_t, send_event, void,
	private_sasync_vici_t *this, u_int client, char *name,
	sasync_vici_msg_t *msg)
{
	if (!client)
	{
		DESTROY_IF(msg);
		return;
	}
	deliver_event(this, client, name, msg);
}

/**
 * Add the "ha" section with the plugin's counters and gauges. Plain
 * "swanctl --stats" ignores it (--raw/--pretty show it); it must not get a
 * list at the top level, as swanctl prints the items of every top-level
 * list as loaded plugins.
 */
static void add_ha_stats(private_sasync_vici_t *this, sasync_vici_builder_t *b)
{
	sasync_counters_t *counters = this->counters;
	uint32_t last, max;
	int i;

	counters->get_lag(counters, &last, &max);

	b->begin_section(b, "ha");
	for (i = 0; i < SASYNC_CTR_MAX; i++)
	{
		b->add_kv(b, enum_to_name(sasync_counter_names, i), "%"PRIu64,
				  counters->get(counters, i));
	}
	b->add_kv(b, "queue-depth", "%u",
			  counters->get_queue_depth(counters));
	b->add_kv(b, "sync-lag-last-ms", "%u", last);
	b->add_kv(b, "sync-lag-max-ms", "%u", max);
	b->end_section(b);
}

/**
 * Add the daemon statistics, with the keys charon's own vici uses so that
 * "swanctl --stats" understands them.
 */
static void add_daemon_stats(private_sasync_vici_t *this,
							 sasync_vici_builder_t *b)
{
	enumerator_t *enumerator;
	plugin_t *plugin;
	time_t now, since;
	int i;

	now = time_monotonic(NULL);
	since = time(NULL) - (now - this->created);

	b->begin_section(b, "uptime");
	b->add_kv(b, "running", "%V", &now, &this->created);
	b->add_kv(b, "since", "%T", &since, FALSE);
	b->end_section(b);

	b->begin_section(b, "workers");
	b->add_kv(b, "total", "%u",
			  lib->processor->get_total_threads(lib->processor));
	b->add_kv(b, "idle", "%u",
			  lib->processor->get_idle_threads(lib->processor));
	b->begin_section(b, "active");
	for (i = 0; i < JOB_PRIO_MAX; i++)
	{
		b->add_kv(b, enum_to_name(job_priority_names, i), "%u",
				  lib->processor->get_working_threads(lib->processor, i));
	}
	b->end_section(b);
	b->end_section(b);

	b->begin_section(b, "queues");
	for (i = 0; i < JOB_PRIO_MAX; i++)
	{
		b->add_kv(b, enum_to_name(job_priority_names, i), "%u",
				  lib->processor->get_job_load(lib->processor, i));
	}
	b->end_section(b);

	b->add_kv(b, "scheduled", "%u",
			  lib->scheduler->get_job_load(lib->scheduler));

	/* without the daemon (unit tests) there are no IKE_SAs to count */
	if (charon && charon->ike_sa_manager)
	{
		b->begin_section(b, "ikesas");
		b->add_kv(b, "total", "%u",
			charon->ike_sa_manager->get_count(charon->ike_sa_manager));
		b->add_kv(b, "half-open", "%u",
			charon->ike_sa_manager->get_half_open_count(
									charon->ike_sa_manager, NULL, FALSE));
		b->end_section(b);
	}

	b->begin_list(b, "plugins");
	enumerator = lib->plugins->create_plugin_enumerator(lib->plugins);
	while (enumerator->enumerate(enumerator, &plugin, NULL))
	{
		b->add_li(b, "%s", plugin->get_name(plugin));
	}
	enumerator->destroy(enumerator);
	b->end_list(b);

#ifdef HAVE_MALLINFO2
	{
		struct mallinfo2 mi = mallinfo2();

		b->begin_section(b, "mallinfo");
		b->add_kv(b, "sbrk", "%zu", mi.arena);
		b->add_kv(b, "mmap", "%zu", mi.hblkhd);
		b->add_kv(b, "used", "%zu", mi.uordblks);
		b->add_kv(b, "free", "%zu", mi.fordblks);
		b->end_section(b);
	}
#elif defined(HAVE_MALLINFO)
	{
		struct mallinfo mi = mallinfo();

		b->begin_section(b, "mallinfo");
		b->add_kv(b, "sbrk", "%u", (u_int)mi.arena);
		b->add_kv(b, "mmap", "%u", (u_int)mi.hblkhd);
		b->add_kv(b, "used", "%u", (u_int)mi.uordblks);
		b->add_kv(b, "free", "%u", (u_int)mi.fordblks);
		b->end_section(b);
	}
#endif
}

/**
 * Built-in "stats" command
 */
static sasync_vici_msg_t *stats_cmd(private_sasync_vici_t *this,
									sasync_vici_msg_t *request, u_int client)
{
	sasync_vici_builder_t *b;

	b = sasync_vici_builder_create();
	add_daemon_stats(this, b);
	if (this->counters)
	{
		add_ha_stats(this, b);
	}
	return b->finish(b);
}

/**
 * Built-in "ha-reset-counters" command
 */
static sasync_vici_msg_t *reset_counters_cmd(private_sasync_vici_t *this,
											 sasync_vici_msg_t *request,
											 u_int client)
{
	if (!this->counters)
	{
		return sasync_vici_msg_create_reply(FALSE, "no counters");
	}
	this->counters->reset(this->counters);
	DBG1(DBG_APP, "sasync counters reset via vici");
	return sasync_vici_msg_create_reply(TRUE, NULL);
}

CALLBACK(destroy_command, void,
	command_t *cmd, const void *key)
{
	free(cmd->name);
	free(cmd);
}

METHOD(sasync_vici_t, destroy, void,
	private_sasync_vici_t *this)
{
	conn_t *conn;

	this->mutex->lock(this->mutex);
	this->destroying = TRUE;
	this->mutex->unlock(this->mutex);

	/* no new clients, please */
	if (this->path)
	{
		unlink(this->path);
	}
	/* waits for running accept callbacks, so no conn is added after this.
	 * Note that in 5.9.8 this deadlocks if the watcher is just handing a
	 * new connection to the service (the service holds its mutex while
	 * waiting for its own watcher callback, which wants that mutex); charon
	 * stops the watcher before unloading plugins, so only tests that destroy
	 * the server while a connect() is in flight are affected */
	DESTROY_IF(this->service);

	while (TRUE)
	{
		this->mutex->lock(this->mutex);
		if (this->conns->remove_first(this->conns, (void**)&conn) != SUCCESS)
		{
			this->mutex->unlock(this->mutex);
			break;
		}
		this->mutex->unlock(this->mutex);
		shutdown_conn(conn);
	}

	/* queued jobs reference us; if the processor has no threads anymore
	 * (charon cancels them before unloading plugins), they never run and
	 * get freed with free() */
	this->jobs_mutex->lock(this->jobs_mutex);
	while (this->jobs &&
		   lib->processor->get_total_threads(lib->processor))
	{
		this->jobs_done->timed_wait(this->jobs_done, this->jobs_mutex, 100);
	}
	this->jobs_mutex->unlock(this->jobs_mutex);

	this->conns->destroy(this->conns);
	this->commands->destroy_function(this->commands, destroy_command);
	this->events->destroy_function(this->events, free);
	this->jobs_done->destroy(this->jobs_done);
	this->jobs_mutex->destroy(this->jobs_mutex);
	this->mutex->destroy(this->mutex);
	free(this->path);
	free(this);
}

/**
 * Hand the unix socket to the configured group, if any.
 */
static void set_socket_group(private_sasync_vici_t *this)
{
	struct group grp, *res = NULL;
	char buf[1024], *name;

	name = lib->settings->get_str(lib->settings,
						"%s.plugins.sasync.socket_group", NULL, lib->ns);
	if (!name)
	{
		return;
	}
	if (getgrnam_r(name, &grp, buf, sizeof(buf), &res) != 0 || !res)
	{
		DBG1(DBG_APP, "sasync vici socket group '%s' not found", name);
		return;
	}
	if (chown(this->path, -1, res->gr_gid) != 0 ||
		chmod(this->path, S_IRWXU | S_IRWXG) != 0)
	{
		DBG1(DBG_APP, "changing group of '%s' failed: %s", this->path,
			 strerror(errno));
	}
}

/*
 * Described in header
 */
sasync_vici_t *sasync_vici_create(char *uri, sasync_counters_t *counters)
{
	private_sasync_vici_t *this;
	struct sockaddr_un addr;

	INIT(this,
		.public = {
			.add_command = _add_command,
			.add_event = _add_event,
			.has_listeners = _has_listeners,
			.raise_event = _raise_event,
			.send_event = _send_event,
			.destroy = _destroy,
		},
		.counters = counters,
		.created = time_monotonic(NULL),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.conns = linked_list_create(),
		.commands = hashtable_create(hashtable_hash_str, hashtable_equals_str,
									 8),
		.events = linked_list_create(),
		.jobs_mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.jobs_done = condvar_create(CONDVAR_TYPE_DEFAULT),
	);

	add_command(this, "stats", (sasync_vici_cmd_t)stats_cmd, this);
	add_command(this, "ha-reset-counters",
				(sasync_vici_cmd_t)reset_counters_cmd, this);

	/* the stream service creates unix sockets with mode 0770 (umask 007),
	 * owned by charon's user/group */
	this->service = lib->streams->create_service(lib->streams, uri, BACKLOG);
	if (!this->service)
	{
		DBG1(DBG_APP, "creating sasync vici socket '%s' failed", uri);
		destroy(this);
		return NULL;
	}
	if (strpfx(uri, "unix://") && stream_parse_uri_unix(uri, &addr) > 0)
	{
		this->path = strdup(addr.sun_path);
		set_socket_group(this);
	}
	this->service->on_accept(this->service, on_accept, this,
							 JOB_PRIO_CRITICAL, 0);
	DBG1(DBG_APP, "sasync vici listening on '%s'", uri);
	return &this->public;
}
