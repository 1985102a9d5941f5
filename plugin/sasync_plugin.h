/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync sasync
 * @ingroup cplugins
 *
 * @defgroup sasync_plugin sasync_plugin
 * @{ @ingroup sasync
 */

#ifndef SASYNC_PLUGIN_H_
#define SASYNC_PLUGIN_H_

#include <plugins/plugin.h>

typedef struct sasync_plugin_t sasync_plugin_t;

/**
 * IKE and IPsec SA synchronisation to standby nodes.
 *
 * Data flow: sasync_capture_t (bus, active node) -> sasync_msg_t (records)
 * -> sasync_link_t (encrypted TCP) -> sasync_apply_t (standby) ->
 * sasync_promote_t / sasync_outbound_t (failover). sasync_control_t serves
 * status and control on the plugin's own vici socket (strongSwan's vici
 * server, compiled in).
 */
struct sasync_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	plugin_t plugin;
};

#endif /** SASYNC_PLUGIN_H_ @}*/
