/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Fuzz target: the vici codec as the plugin and sasyncctl use it.
 *
 * Input: a selector byte, then messages, each a u16 length and its bytes.
 *
 * Selector 0 ("server"): each message is a request to the plugin's control
 * socket, as strongSwan's dispatcher hands it to the plugin's commands
 * (vici_message_create_from_data(), then get_str()/get_int() of what
 * sasync_control.c reads). Its elements are enumerated, built again with
 * vici_builder and must enumerate the same; it is dumped as sasyncctl --raw
 * and swanctl do.
 *
 * Selector 1-7 ("client"): sasyncctl's own code (tools/sasyncctl.c,
 * compiled in here with libvici.c, both unchanged) runs a command against
 * a daemon whose reply is the last message; the messages before it are
 * ha-list-sa events (for "list"). Selector bit 0x80: --raw.
 *
 * libvici.c and the vici codec are strongSwan's sources from the tree the
 * plugin compiles its vici server from (VICI_SRCDIR), instrumented like
 * ours. vici_submit() and vici_register() are replaced: the daemon is the
 * input.
 *
 * strongSwan 5.9.8's vici_message_t enumerates an explicit end marker
 * without setting the element type, and its find_value() (get_str(),
 * get_int(), vici_find_str()) and dump() keep theirs uninitialised: a
 * message that starts with one makes them use an uninitialised name. The
 * plugin reads nothing of such a request (readable() in sasync_control.c),
 * so neither does the server mode here. find_value() also goes on after an
 * element that does not parse, and may find any key in what follows (so
 * sasyncctl's loop over "peers.%d.address" would never end). The daemon
 * sends what vici_builder writes only: the client mode drops any message
 * that vici_builder would not write the same.
 */

#include "fuzz.h"

#include <stdio.h>

/* strongSwan's libvici, as libvici.so is built from it */
#include "libvici.c"

/* sasyncctl, its main() renamed, its daemon replaced by the input */
static vici_res_t *fuzz_submit(vici_req_t *req, vici_conn_t *conn);
static int fuzz_register(vici_conn_t *conn, char *name, vici_event_cb_t cb,
						 void *user);
#define vici_submit fuzz_submit
#define vici_register fuzz_register
#define main sasyncctl_main
#include "sasyncctl.c"
#undef main
#undef vici_register
#undef vici_submit

/**
 * Whether a message starts with an end marker, see above
 */
static bool end_first(chunk_t msg)
{
	return msg.len && msg.ptr[0] == VICI_END;
}

/** one element of a message */
typedef struct {
	vici_type_t type;
	char name[257];
	chunk_t value;
} element_t;

/** most elements checked of a message */
#define MAX_ELEMENTS 512

/**
 * Read the elements of a message until its end, FALSE if it is invalid
 */
static bool read_elements(vici_message_t *msg, element_t *elements,
						  int *count)
{
	enumerator_t *enumerator;
	vici_type_t type = VICI_END;
	chunk_t value = chunk_empty;
	char *name = NULL;
	bool ok = FALSE;

	*count = 0;
	enumerator = msg->create_enumerator(msg);
	while (*count < MAX_ELEMENTS &&
		   enumerator->enumerate(enumerator, &type, &name, &value))
	{
		if (type == VICI_END)
		{
			ok = TRUE;
			break;
		}
		elements[*count] = (element_t){
			.type = type,
			.value = value,
		};
		if (name)
		{
			snprintf(elements[*count].name, sizeof(elements[*count].name),
					 "%s", name);
		}
		(*count)++;
	}
	enumerator->destroy(enumerator);
	return ok;
}

/**
 * Build a message of elements, NULL if the builder refuses them
 */
static vici_message_t *build(element_t *elements, int count)
{
	vici_builder_t *builder = vici_builder_create();
	int i;

	for (i = 0; i < count; i++)
	{
		switch (elements[i].type)
		{
			case VICI_SECTION_START:
			case VICI_LIST_START:
				builder->add(builder, elements[i].type, elements[i].name);
				break;
			case VICI_KEY_VALUE:
				builder->add(builder, elements[i].type, elements[i].name,
							 elements[i].value);
				break;
			case VICI_LIST_ITEM:
				builder->add(builder, elements[i].type, elements[i].value);
				break;
			default:
				builder->add(builder, elements[i].type);
				break;
		}
	}
	return builder->finalize(builder);
}

static bool has_name(vici_type_t type)
{
	return type == VICI_SECTION_START || type == VICI_LIST_START ||
		   type == VICI_KEY_VALUE;
}

static bool has_value(vici_type_t type)
{
	return type == VICI_KEY_VALUE || type == VICI_LIST_ITEM;
}

/**
 * Whether vici_builder writes a message as it is, see above
 */
static bool built_as_is(chunk_t data)
{
	vici_message_t *msg, *built = NULL;
	element_t *elements;
	bool same = FALSE;
	int count;

	if (end_first(data))
	{
		return FALSE;
	}
	msg = vici_message_create_from_data(data, FALSE);
	elements = malloc(sizeof(element_t) * MAX_ELEMENTS);
	if (read_elements(msg, elements, &count))
	{
		built = build(elements, count);
	}
	if (built)
	{
		same = chunk_equals(built->get_encoding(built), data) ||
			   (!data.len && !built->get_encoding(built).len);
		built->destroy(built);
	}
	free(elements);
	msg->destroy(msg);
	return same;
}

/**
 * What a message enumerates builds a message that enumerates the same
 */
static void check_codec(vici_message_t *msg)
{
	element_t *a, *b;
	vici_message_t *built;
	int count_a, count_b, i;

	a = malloc(sizeof(element_t) * MAX_ELEMENTS);
	b = malloc(sizeof(element_t) * MAX_ELEMENTS);
	if (read_elements(msg, a, &count_a))
	{
		built = build(a, count_a);
		if (built)
		{
			fuzz_assert(read_elements(built, b, &count_b));
			fuzz_assert(count_a == count_b);
			for (i = 0; i < count_a; i++)
			{
				fuzz_assert(a[i].type == b[i].type);
				fuzz_assert(!has_name(a[i].type) ||
							streq(a[i].name, b[i].name));
				fuzz_assert(!has_value(a[i].type) ||
							(a[i].value.len == b[i].value.len &&
							 (!a[i].value.len || memeq(a[i].value.ptr,
										b[i].value.ptr, a[i].value.len))));
			}
			built->destroy(built);
		}
	}
	free(a);
	free(b);
}

/** the input's messages not read yet */
static chunk_t input;

/** sasyncctl's event listener (it registers one at most) */
static vici_event_cb_t event_cb;
static void *event_user;

/**
 * Next message of the input, FALSE when there is none
 */
static bool next_message(chunk_t *msg)
{
	size_t len;

	if (input.len < 2)
	{
		return FALSE;
	}
	len = min(untoh16(input.ptr), input.len - 2);
	/* a copy of exactly its size, so reading past it shows */
	*msg = chunk_clone(chunk_create(input.ptr + 2, len));
	input = chunk_skip(input, 2 + len);
	return TRUE;
}

/**
 * A response as libvici makes it of what the daemon sent
 */
static vici_res_t *make_res(chunk_t data)
{
	vici_message_t *message;
	vici_res_t *res;

	message = vici_message_create_from_data(data, TRUE);
	INIT(res,
		.message = message,
		.enumerator = message->create_enumerator(message),
		.strings = linked_list_create(),
	);
	return res;
}

static int fuzz_register(vici_conn_t *conn, char *name, vici_event_cb_t cb,
						 void *user)
{
	event_cb = cb;
	event_user = user;
	return 0;
}

/**
 * The daemon: events first (as libvici delivers them while the request is
 * pending), then the last message as the reply
 */
static vici_res_t *fuzz_submit(vici_req_t *req, vici_conn_t *conn)
{
	vici_res_t *res;
	chunk_t msg;

	vici_free_req(req);
	while (next_message(&msg))
	{
		if (!built_as_is(msg))
		{
			chunk_free(&msg);
			continue;
		}
		if (!input.len)
		{
			return make_res(msg);
		}
		if (event_cb)
		{
			res = make_res(msg);
			event_cb(event_user, "ha-list-sa", res);
			vici_free_res(res);
		}
		else
		{
			chunk_free(&msg);
		}
	}
	errno = ECONNRESET;
	return NULL;
}

/** where dumps go */
static FILE *null;

/**
 * A request to the plugin's control socket
 */
static void server(void)
{
	vici_message_t *request;
	char *str;
	chunk_t msg;

	while (next_message(&msg))
	{
		request = vici_message_create_from_data(msg, FALSE);
		check_codec(request);
		if (!end_first(msg))
		{
			/* what sasync_control.c reads of its requests */
			str = request->get_str(request, NULL, "reason");
			fuzz_assert(!str || strlen(str) < msg.len);
			str = request->get_str(request, NULL, "ike");
			fuzz_assert(!str || strlen(str) < msg.len);
			request->get_int(request, 0, "ike-id");
			/* as swanctl and sasyncctl --raw print */
			request->dump(request, "request", FALSE, null);
			request->dump(request, "request", TRUE, null);
		}
		request->destroy(request);
		chunk_free(&msg);
	}
}

/**
 * sasyncctl's commands, by selector
 */
static char *commands[] = {
	"status", "stats", "list", "promote", "demote", "resync", "reset",
};

/**
 * A sasyncctl command against the input as the daemon
 */
static void client(uint8_t selector)
{
	options_t o = {
		.uri = DEFAULT_URI,
		.raw = (selector & 0x80) != 0,
		.cmd = commands[((selector & 0x7f) - 1) % countof(commands)],
	};

	event_cb = NULL;
	event_user = NULL;
	run(NULL, &o);
	fflush(stdout);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* sasyncctl prints on stdout: not into libFuzzer's output */
	null = fopen("/dev/null", "w");
	/* libFuzzer ignores what this returns */
	if (!null || !freopen("/dev/null", "w", stdout) || !fuzz_init("fuzz_vici"))
	{
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	chunk_t all;

	if (!size)
	{
		return 0;
	}
	all = chunk_clone(chunk_create((u_char*)data, size));
	input = chunk_skip(all, 1);
	if (all.ptr[0] & 0x7f)
	{
		client(all.ptr[0]);
	}
	else
	{
		server();
	}
	chunk_free(&all);
	return 0;
}
