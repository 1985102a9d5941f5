/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_vici sasync_vici
 * @{ @ingroup sasync
 */

#ifndef SASYNC_VICI_H_
#define SASYNC_VICI_H_

#include "sasync_counters.h"
#include "sasync_vici_msg.h"

#include <library.h>

typedef struct sasync_vici_t sasync_vici_t;

/**
 * Default URI of the plugin's vici socket.
 */
#define SASYNC_VICI_DEFAULT_URI "unix:///var/run/charon-sasync.vici"

/**
 * Callback handling a command.
 *
 * Runs in a worker thread; commands of one client are handled one after the
 * other, those of different clients concurrently.
 *
 * @param user		user data, as passed to add_command()
 * @param request	request message, owned by the server
 * @param client	identifier of the requesting client, for send_event()
 * @return			reply message (the server takes ownership), NULL to reply
 *					"success = no" with a generic errmsg
 */
typedef sasync_vici_msg_t *(*sasync_vici_cmd_t)(void *user,
												sasync_vici_msg_t *request,
												u_int client);

/**
 * A vici server on a socket of its own, for the plugin's commands and events.
 *
 * charon's vici dispatcher can't be extended by plugins, so the plugin serves
 * the protocol itself; stock swanctl/libvici talk to it with --uri. Built in
 * are the commands "stats" (charon's stats plus an "ha" section with the
 * counters) and "ha-reset-counters".
 *
 * Clients sending malformed packets are disconnected, as are clients that
 * don't read what is sent to them.
 *
 * The server must be destroyed before the objects its command callbacks use.
 */
struct sasync_vici_t {

	/**
	 * Register a command; a second registration of a name replaces the first.
	 *
	 * @param name		command name (copied)
	 * @param cb		callback handling the command
	 * @param user		user data to pass to cb
	 */
	void (*add_command)(sasync_vici_t *this, char *name, sasync_vici_cmd_t cb,
						void *user);

	/**
	 * Register an event name clients may register for.
	 *
	 * @param name		event name (copied)
	 */
	void (*add_event)(sasync_vici_t *this, char *name);

	/**
	 * Check whether any client is registered for an event, to skip building
	 * messages nobody receives.
	 *
	 * @param name		event name
	 * @return			TRUE if a client is registered
	 */
	bool (*has_listeners)(sasync_vici_t *this, char *name);

	/**
	 * Send an event to all clients registered for it. Never blocks on clients.
	 *
	 * @param name		event name
	 * @param msg		event message (destroyed by the call), NULL for empty
	 */
	void (*raise_event)(sasync_vici_t *this, char *name,
						sasync_vici_msg_t *msg);

	/**
	 * Send an event to one client, if it is registered for it, e.g. to stream
	 * results to the client of a running command.
	 *
	 * @param client	client identifier, as passed to the command callback
	 * @param name		event name
	 * @param msg		event message (destroyed by the call), NULL for empty
	 */
	void (*send_event)(sasync_vici_t *this, u_int client, char *name,
					   sasync_vici_msg_t *msg);

	/**
	 * Stop serving: close the socket and all client connections, wait for
	 * running commands.
	 */
	void (*destroy)(sasync_vici_t *this);
};

/**
 * Create the server, listening on uri.
 *
 * For unix:// URIs the socket gets mode 0770, owned by charon's user and
 * group; the group is changed to <ns>.plugins.sasync.socket_group if set.
 * The socket file is removed on destroy.
 *
 * @param uri		URI to listen on, e.g. SASYNC_VICI_DEFAULT_URI
 * @param counters	counters for "stats" and "ha-reset-counters", NULL for
 *					none (no "ha" section then)
 * @return			server, NULL if the socket can't be created
 */
sasync_vici_t *sasync_vici_create(char *uri, sasync_counters_t *counters);

#endif /** SASYNC_VICI_H_ @}*/
