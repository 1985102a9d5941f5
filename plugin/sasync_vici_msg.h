/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_vici_msg sasync_vici_msg
 * @{ @ingroup sasync
 *
 * Codec for the vici protocol, as spoken by swanctl and libvici.
 *
 * On the stream, each packet is a 32-bit network order length followed by
 * that many bytes of payload. The payload starts with a packet type
 * (sasync_vici_packet_t); named types carry an 8-bit length and a name next;
 * the rest is a message. A message is a sequence of elements
 * (sasync_vici_element_t): names have an 8-bit length, values a 16-bit
 * network order length. Sections nest arbitrarily, lists hold items only and
 * don't nest.
 */

#ifndef SASYNC_VICI_MSG_H_
#define SASYNC_VICI_MSG_H_

#include <library.h>
#include <collections/enumerator.h>

#include <stdio.h>

typedef enum sasync_vici_packet_t sasync_vici_packet_t;
typedef enum sasync_vici_element_t sasync_vici_element_t;
typedef struct sasync_vici_msg_t sasync_vici_msg_t;
typedef struct sasync_vici_builder_t sasync_vici_builder_t;

/**
 * Maximum length of a packet payload (without the length header).
 */
#define SASYNC_VICI_PACKET_MAX_LEN (512 * 1024)

/**
 * Size of a buffer able to hold any name, NUL-terminated.
 */
#define SASYNC_VICI_NAME_BUF 256

/**
 * Packet types.
 */
enum sasync_vici_packet_t {
	/** named request message */
	SASYNC_VICI_CMD_REQUEST = 0,
	/** unnamed response message for a request */
	SASYNC_VICI_CMD_RESPONSE = 1,
	/** unnamed response if the requested command is unknown */
	SASYNC_VICI_CMD_UNKNOWN = 2,
	/** named event registration request */
	SASYNC_VICI_EVENT_REGISTER = 3,
	/** named event deregistration request */
	SASYNC_VICI_EVENT_UNREGISTER = 4,
	/** unnamed response for successful event (de-)registration */
	SASYNC_VICI_EVENT_CONFIRM = 5,
	/** unnamed response if event (de-)registration failed */
	SASYNC_VICI_EVENT_UNKNOWN = 6,
	/** named event message */
	SASYNC_VICI_EVENT = 7,
	/** number of packet types */
	SASYNC_VICI_PACKET_MAX,
};

/**
 * Names of the packet types ("CMD_REQUEST", ...).
 */
extern enum_name_t *sasync_vici_packet_names;

/**
 * Message element types.
 */
enum sasync_vici_element_t {
	/** not an element: marks the end of a message in parse results */
	SASYNC_VICI_END = 0,
	/** begin a named section */
	SASYNC_VICI_SECTION_START = 1,
	/** end the innermost section */
	SASYNC_VICI_SECTION_END = 2,
	/** a named value in the current section */
	SASYNC_VICI_KEY_VALUE = 3,
	/** begin a named list */
	SASYNC_VICI_LIST_START = 4,
	/** an unnamed value in the current list */
	SASYNC_VICI_LIST_ITEM = 5,
	/** end the current list */
	SASYNC_VICI_LIST_END = 6,
};

/**
 * Names of the element types ("SECTION_START", ...).
 */
extern enum_name_t *sasync_vici_element_names;

/**
 * A validated, immutable vici message.
 *
 * Lookups take a printf-style path: section names and the key joined with
 * '.', e.g. "uptime.running" (so names containing '.' can't be looked up).
 * An object is not meant to be shared between threads: strings returned by
 * get_str() are cached in it.
 */
struct sasync_vici_msg_t {

	/**
	 * Get the encoded message.
	 *
	 * @return			encoding, owned by the message
	 */
	chunk_t (*get_encoding)(sasync_vici_msg_t *this);

	/**
	 * Enumerate the elements of the message, in order.
	 *
	 * The enumerator yields a sasync_vici_element_t, a char* name (NULL for
	 * element types without a name, valid until the next call) and a chunk_t
	 * value (chunk_empty for element types without a value, pointing into
	 * the message). The last element yielded is SASYNC_VICI_END.
	 *
	 * @return			enumerator over (sasync_vici_element_t, char*, chunk_t)
	 */
	enumerator_t* (*create_enumerator)(sasync_vici_msg_t *this);

	/**
	 * Get the raw value of a key.
	 *
	 * @param def		value returned if the key is missing
	 * @param fmt		printf-style path to the key
	 * @return			value, pointing into the message, or def
	 */
	chunk_t (*get_value)(sasync_vici_msg_t *this, chunk_t def, char *fmt, ...);

	/**
	 * Get the value of a key as string.
	 *
	 * @param def		value returned if the key is missing or contains a NUL
	 * @param fmt		printf-style path to the key
	 * @return			string, owned by the message, or def
	 */
	char* (*get_str)(sasync_vici_msg_t *this, char *def, char *fmt, ...);

	/**
	 * Get the value of a key as integer.
	 *
	 * @param def		value returned if the key is missing or not a number
	 * @param fmt		printf-style path to the key
	 * @return			value, or def
	 */
	int (*get_int)(sasync_vici_msg_t *this, int def, char *fmt, ...);

	/**
	 * Get the value of a key as boolean (yes/no, true/false, 1/0...).
	 *
	 * @param def		value returned if the key is missing or not a boolean
	 * @param fmt		printf-style path to the key
	 * @return			value, or def
	 */
	bool (*get_bool)(sasync_vici_msg_t *this, bool def, char *fmt, ...);

	/**
	 * Enumerate the items of a list, as strings.
	 *
	 * The path names the list, e.g. "plugins" or "section.list". Items are
	 * cut at an embedded NUL. Yields nothing if the list is missing.
	 *
	 * @param fmt		printf-style path to the list
	 * @return			enumerator over char* (valid until the next call)
	 */
	enumerator_t* (*create_list_enumerator)(sasync_vici_msg_t *this,
											char *fmt, ...);

	/**
	 * Print the message in the style of "swanctl --raw/--pretty".
	 *
	 * @param label		label to print before the message, NULL for none
	 * @param pretty	TRUE for an indented multi-line format
	 * @param out		stream to print to
	 */
	void (*dump)(sasync_vici_msg_t *this, char *label, bool pretty, FILE *out);

	/**
	 * Destroy a sasync_vici_msg_t.
	 */
	void (*destroy)(sasync_vici_msg_t *this);
};

/**
 * Check that data is a well-formed message: known element types, every
 * length within the data, non-empty names without NULs, balanced sections,
 * lists closed, not nested and holding items only.
 *
 * @param data		encoded message
 * @return			TRUE if well-formed
 */
bool sasync_vici_msg_validate(chunk_t data);

/**
 * Create a message from its encoding, after validating it.
 *
 * @param data		encoded message
 * @param cleanup	TRUE to take ownership of data (freed even on failure),
 *					FALSE to copy it
 * @return			message, NULL if data is malformed
 */
sasync_vici_msg_t *sasync_vici_msg_create(chunk_t data, bool cleanup);

/**
 * Create a reply message "success = yes|no", plus "errmsg" if a format
 * is given (usually only for failures).
 *
 * @param success	value of the success key
 * @param fmt		printf-style errmsg, NULL for none
 * @return			message
 */
sasync_vici_msg_t *sasync_vici_msg_create_reply(bool success, char *fmt, ...);

/**
 * Builder for messages.
 *
 * Errors (a name longer than 255 bytes or empty, a value longer than 65535
 * bytes, an element that's not allowed where it's added) are remembered and
 * make finish() fail, so callers can add everything and check once.
 */
struct sasync_vici_builder_t {

	/**
	 * Add a key/value to the current section, value printf-style.
	 *
	 * @param key		key name
	 * @param fmt		printf-style format of the value
	 */
	void (*add_kv)(sasync_vici_builder_t *this, char *key, char *fmt, ...);

	/**
	 * Add a key/value to the current section, value printf-style.
	 *
	 * @param key		key name
	 * @param fmt		printf-style format of the value
	 * @param args		arguments for fmt
	 */
	void (*vadd_kv)(sasync_vici_builder_t *this, char *key, char *fmt,
					va_list args);

	/**
	 * Add a key/value with a raw value to the current section.
	 *
	 * @param key		key name
	 * @param value		value, copied
	 */
	void (*add_kv_chunk)(sasync_vici_builder_t *this, char *key, chunk_t value);

	/**
	 * Open a section in the current section.
	 *
	 * @param name		section name
	 */
	void (*begin_section)(sasync_vici_builder_t *this, char *name);

	/**
	 * Close the innermost section.
	 */
	void (*end_section)(sasync_vici_builder_t *this);

	/**
	 * Open a list in the current section.
	 *
	 * @param name		list name
	 */
	void (*begin_list)(sasync_vici_builder_t *this, char *name);

	/**
	 * Add an item to the open list, printf-style.
	 *
	 * @param fmt		printf-style format of the item
	 */
	void (*add_li)(sasync_vici_builder_t *this, char *fmt, ...);

	/**
	 * Add an item to the open list, printf-style.
	 *
	 * @param fmt		printf-style format of the item
	 * @param args		arguments for fmt
	 */
	void (*vadd_li)(sasync_vici_builder_t *this, char *fmt, va_list args);

	/**
	 * Add a raw item to the open list.
	 *
	 * @param value		item, copied
	 */
	void (*add_li_chunk)(sasync_vici_builder_t *this, chunk_t value);

	/**
	 * Close the open list.
	 */
	void (*end_list)(sasync_vici_builder_t *this);

	/**
	 * Finish the message and destroy the builder.
	 *
	 * @return			message, NULL after an error or with sections/lists
	 *					left open
	 */
	sasync_vici_msg_t* (*finish)(sasync_vici_builder_t *this);

	/**
	 * Destroy the builder without finishing.
	 */
	void (*destroy)(sasync_vici_builder_t *this);
};

/**
 * Begin building a message.
 *
 * @return			builder
 */
sasync_vici_builder_t *sasync_vici_builder_create();

/**
 * Whether a packet type carries a name.
 *
 * @param type		packet type
 * @return			TRUE for CMD_REQUEST, EVENT_REGISTER/UNREGISTER, EVENT
 */
bool sasync_vici_packet_is_named(sasync_vici_packet_t type);

/**
 * Encode a packet, including its 32-bit length header.
 *
 * @param type		packet type
 * @param name		name for named types (1-255 bytes), ignored otherwise
 * @param msg		encoded message, chunk_empty for none
 * @return			allocated packet, chunk_empty if name or size are invalid
 */
chunk_t sasync_vici_packet_encode(sasync_vici_packet_t type, char *name,
								  chunk_t msg);

/**
 * Decode a packet payload (as received after its length header).
 *
 * Checks the type, the name of named types (1-255 bytes, no NUL) and the
 * size, not the message: see sasync_vici_msg_create().
 *
 * @param packet	packet payload
 * @param type		receives the packet type
 * @param name		receives the NUL-terminated name ("" if not named)
 * @param msg		receives the message part, pointing into packet
 * @return			TRUE if well-formed
 */
bool sasync_vici_packet_decode(chunk_t packet, sasync_vici_packet_t *type,
							   char name[SASYNC_VICI_NAME_BUF], chunk_t *msg);

#endif /** SASYNC_VICI_MSG_H_ @}*/
