/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_vici_msg.h"

#include <bio/bio_writer.h>
#include <collections/linked_list.h>
#include <settings/settings.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>

ENUM(sasync_vici_packet_names, SASYNC_VICI_CMD_REQUEST, SASYNC_VICI_EVENT,
	"CMD_REQUEST",
	"CMD_RESPONSE",
	"CMD_UNKNOWN",
	"EVENT_REGISTER",
	"EVENT_UNREGISTER",
	"EVENT_CONFIRM",
	"EVENT_UNKNOWN",
	"EVENT",
);

ENUM(sasync_vici_element_names, SASYNC_VICI_END, SASYNC_VICI_LIST_END,
	"END",
	"SECTION_START",
	"SECTION_END",
	"KEY_VALUE",
	"LIST_START",
	"LIST_ITEM",
	"LIST_END",
);

/**
 * Longest path accepted by lookups; longer ones can't match anything anyway
 * unless sections are nested very deep.
 */
#define MAX_PATH 1024

/**
 * Take a field with an 8-bit length prefix off the front of buf.
 */
static bool take_data8(chunk_t *buf, chunk_t *out)
{
	size_t len;

	if (buf->len < 1)
	{
		return FALSE;
	}
	len = buf->ptr[0];
	if (buf->len - 1 < len)
	{
		return FALSE;
	}
	*out = chunk_create(buf->ptr + 1, len);
	*buf = chunk_skip(*buf, 1 + len);
	return TRUE;
}

/**
 * Take a field with a 16-bit network order length prefix off buf.
 */
static bool take_data16(chunk_t *buf, chunk_t *out)
{
	size_t len;

	if (buf->len < 2)
	{
		return FALSE;
	}
	len = untoh16(buf->ptr);
	if (buf->len - 2 < len)
	{
		return FALSE;
	}
	*out = chunk_create(buf->ptr + 2, len);
	*buf = chunk_skip(*buf, 2 + len);
	return TRUE;
}

/**
 * Read the element at the front of buf and advance past it. Only checks
 * that the type is known and that all lengths fit into buf.
 */
static bool read_element(chunk_t *buf, sasync_vici_element_t *type,
						 chunk_t *name, chunk_t *value)
{
	chunk_t pos = *buf;

	*name = *value = chunk_empty;
	if (!pos.len)
	{
		return FALSE;
	}
	*type = pos.ptr[0];
	pos = chunk_skip(pos, 1);

	switch (*type)
	{
		case SASYNC_VICI_SECTION_START:
		case SASYNC_VICI_LIST_START:
			if (!take_data8(&pos, name))
			{
				return FALSE;
			}
			break;
		case SASYNC_VICI_KEY_VALUE:
			if (!take_data8(&pos, name) || !take_data16(&pos, value))
			{
				return FALSE;
			}
			break;
		case SASYNC_VICI_LIST_ITEM:
			if (!take_data16(&pos, value))
			{
				return FALSE;
			}
			break;
		case SASYNC_VICI_SECTION_END:
		case SASYNC_VICI_LIST_END:
			break;
		default:
			return FALSE;
	}
	*buf = pos;
	return TRUE;
}

/**
 * Names must be usable as C strings and as path components.
 */
static bool name_valid(chunk_t name)
{
	return name.len > 0 && name.len < SASYNC_VICI_NAME_BUF &&
		   !memchr(name.ptr, '\0', name.len);
}

/*
 * Described in header
 */
bool sasync_vici_msg_validate(chunk_t data)
{
	sasync_vici_element_t type;
	chunk_t name, value;
	size_t depth = 0;
	bool in_list = FALSE;

	while (data.len)
	{
		if (!read_element(&data, &type, &name, &value))
		{
			return FALSE;
		}
		switch (type)
		{
			case SASYNC_VICI_SECTION_START:
				if (in_list || !name_valid(name))
				{
					return FALSE;
				}
				depth++;
				break;
			case SASYNC_VICI_SECTION_END:
				if (in_list || !depth)
				{
					return FALSE;
				}
				depth--;
				break;
			case SASYNC_VICI_KEY_VALUE:
				if (in_list || !name_valid(name))
				{
					return FALSE;
				}
				break;
			case SASYNC_VICI_LIST_START:
				if (in_list || !name_valid(name))
				{
					return FALSE;
				}
				in_list = TRUE;
				break;
			case SASYNC_VICI_LIST_ITEM:
				if (!in_list)
				{
					return FALSE;
				}
				break;
			case SASYNC_VICI_LIST_END:
				if (!in_list)
				{
					return FALSE;
				}
				in_list = FALSE;
				break;
			default:
				return FALSE;
		}
	}
	return depth == 0 && !in_list;
}

typedef struct private_sasync_vici_msg_t private_sasync_vici_msg_t;

/**
 * Private data of a sasync_vici_msg_t object.
 */
struct private_sasync_vici_msg_t {

	/**
	 * Public interface
	 */
	sasync_vici_msg_t public;

	/**
	 * Validated encoding
	 */
	chunk_t encoding;

	/**
	 * Strings handed out by get_str(), freed with the message
	 */
	linked_list_t *strings;
};

/**
 * Check if an element name is the next component of path, either a section
 * (followed by '.', rest is set past it) or the final key/list name.
 */
static bool match_component(chunk_t name, char *path, bool leaf, char **rest)
{
	char *dot;
	size_t len;

	dot = strchr(path, '.');
	if (leaf == (dot != NULL))
	{
		return FALSE;
	}
	len = dot ? (size_t)(dot - path) : strlen(path);
	if (name.len != len || !memeq(name.ptr, path, len))
	{
		return FALSE;
	}
	if (rest)
	{
		*rest = dot + 1;
	}
	return TRUE;
}

/**
 * Find an element of type want (KEY_VALUE or LIST_START) by path. Sets value
 * (for key/values) and pos (the data following the element).
 */
static bool find_element(private_sasync_vici_msg_t *this, char *path,
						 sasync_vici_element_t want, chunk_t *value,
						 chunk_t *pos)
{
	sasync_vici_element_t type;
	chunk_t buf = this->encoding, name, val;
	size_t depth = 0, matched = 0;
	char *rest = path;

	while (buf.len && read_element(&buf, &type, &name, &val))
	{
		switch (type)
		{
			case SASYNC_VICI_SECTION_START:
				if (depth == matched &&
					match_component(name, rest, FALSE, &rest))
				{
					matched++;
				}
				depth++;
				break;
			case SASYNC_VICI_SECTION_END:
				if (depth == matched)
				{	/* the section the key should be in ends here */
					return FALSE;
				}
				depth--;
				break;
			case SASYNC_VICI_KEY_VALUE:
			case SASYNC_VICI_LIST_START:
				if (type == want && depth == matched &&
					match_component(name, rest, TRUE, NULL))
				{
					*value = val;
					*pos = buf;
					return TRUE;
				}
				break;
			default:
				break;
		}
	}
	return FALSE;
}

/**
 * Format a lookup path, FALSE if it's too long to match anything.
 */
static bool format_path(char *buf, size_t len, char *fmt, va_list args)
{
	int written;

	written = vsnprintf(buf, len, fmt, args);
	return written >= 0 && (size_t)written < len;
}

/**
 * Look up a value by printf-style path.
 */
static bool vfind_value(private_sasync_vici_msg_t *this, chunk_t *value,
						char *fmt, va_list args)
{
	char path[MAX_PATH];
	chunk_t pos;

	return format_path(path, sizeof(path), fmt, args) &&
		   find_element(this, path, SASYNC_VICI_KEY_VALUE, value, &pos);
}

/**
 * Look up a value as string, cached in the message; NULL if not found.
 */
static char *vfind_str(private_sasync_vici_msg_t *this, char *fmt,
					   va_list args)
{
	chunk_t value;
	char *str;

	if (!vfind_value(this, &value, fmt, args) ||
		memchr(value.ptr, '\0', value.len))
	{
		return NULL;
	}
	str = strndup(value.ptr, value.len);
	this->strings->insert_last(this->strings, str);
	return str;
}

METHOD(sasync_vici_msg_t, get_encoding, chunk_t,
	private_sasync_vici_msg_t *this)
{
	return this->encoding;
}

METHOD(sasync_vici_msg_t, get_value, chunk_t,
	private_sasync_vici_msg_t *this, chunk_t def, char *fmt, ...)
{
	va_list args;
	chunk_t value;
	bool found;

	va_start(args, fmt);
	found = vfind_value(this, &value, fmt, args);
	va_end(args);
	return found ? value : def;
}

METHOD(sasync_vici_msg_t, get_str, char*,
	private_sasync_vici_msg_t *this, char *def, char *fmt, ...)
{
	va_list args;
	char *str;

	va_start(args, fmt);
	str = vfind_str(this, fmt, args);
	va_end(args);
	return str ?: def;
}

METHOD(sasync_vici_msg_t, get_int, int,
	private_sasync_vici_msg_t *this, int def, char *fmt, ...)
{
	va_list args;
	char *str, *end;
	long value;

	va_start(args, fmt);
	str = vfind_str(this, fmt, args);
	va_end(args);
	if (!str || !*str)
	{
		return def;
	}
	errno = 0;
	value = strtol(str, &end, 10);
	if (errno || *end || value < INT_MIN || value > INT_MAX)
	{
		return def;
	}
	return value;
}

METHOD(sasync_vici_msg_t, get_bool, bool,
	private_sasync_vici_msg_t *this, bool def, char *fmt, ...)
{
	va_list args;
	char *str;

	va_start(args, fmt);
	str = vfind_str(this, fmt, args);
	va_end(args);
	return str ? settings_value_as_bool(str, def) : def;
}

/**
 * Enumerator over the elements of a message
 */
typedef struct {
	/** implements enumerator_t */
	enumerator_t public;
	/** data not yet enumerated */
	chunk_t pos;
	/** SASYNC_VICI_END has been returned */
	bool done;
	/** current name, NUL-terminated */
	char name[SASYNC_VICI_NAME_BUF];
} element_enumerator_t;

METHOD(enumerator_t, enumerate_elements, bool,
	element_enumerator_t *this, va_list args)
{
	sasync_vici_element_t *type;
	chunk_t name, value, *out_value;
	char **out_name;

	VA_ARGS_VGET(args, type, out_name, out_value);

	if (this->done)
	{
		return FALSE;
	}
	if (!this->pos.len)
	{
		this->done = TRUE;
		name = value = chunk_empty;
		*type = SASYNC_VICI_END;
	}
	else if (!read_element(&this->pos, type, &name, &value))
	{	/* can't happen for validated messages */
		this->done = TRUE;
		return FALSE;
	}
	if (out_name)
	{
		*out_name = NULL;
		if (name.ptr)
		{
			snprintf(this->name, sizeof(this->name), "%.*s", (int)name.len,
					 name.ptr);
			*out_name = this->name;
		}
	}
	if (out_value)
	{
		*out_value = value;
	}
	return TRUE;
}

METHOD(sasync_vici_msg_t, create_enumerator, enumerator_t*,
	private_sasync_vici_msg_t *this)
{
	element_enumerator_t *enumerator;

	INIT(enumerator,
		.public = {
			.enumerate = enumerator_enumerate_default,
			.venumerate = _enumerate_elements,
			.destroy = (void*)free,
		},
		.pos = this->encoding,
	);
	return &enumerator->public;
}

/**
 * Enumerator over the items of a list
 */
typedef struct {
	/** implements enumerator_t */
	enumerator_t public;
	/** data following the list start, or the last item */
	chunk_t pos;
	/** current item as string */
	char *item;
} list_enumerator_t;

METHOD(enumerator_t, enumerate_items, bool,
	list_enumerator_t *this, va_list args)
{
	sasync_vici_element_t type;
	chunk_t name, value;
	char **item;

	VA_ARGS_VGET(args, item);

	if (!this->pos.len || !read_element(&this->pos, &type, &name, &value) ||
		type != SASYNC_VICI_LIST_ITEM)
	{
		this->pos = chunk_empty;
		return FALSE;
	}
	free(this->item);
	this->item = strndup(value.ptr, value.len);
	*item = this->item;
	return TRUE;
}

METHOD(enumerator_t, destroy_items, void,
	list_enumerator_t *this)
{
	free(this->item);
	free(this);
}

METHOD(sasync_vici_msg_t, create_list_enumerator, enumerator_t*,
	private_sasync_vici_msg_t *this, char *fmt, ...)
{
	list_enumerator_t *enumerator;
	char path[MAX_PATH];
	chunk_t value, pos;
	va_list args;
	bool found;

	va_start(args, fmt);
	found = format_path(path, sizeof(path), fmt, args) &&
			find_element(this, path, SASYNC_VICI_LIST_START, &value, &pos);
	va_end(args);
	if (!found)
	{
		return enumerator_create_empty();
	}
	INIT(enumerator,
		.public = {
			.enumerate = enumerator_enumerate_default,
			.venumerate = _enumerate_items,
			.destroy = _destroy_items,
		},
		.pos = pos,
	);
	return &enumerator->public;
}

/**
 * Print a value as text if it is printable, as hex otherwise.
 */
static void print_value(FILE *out, chunk_t value)
{
	if (chunk_printable(value, NULL, 0))
	{
		fprintf(out, "%.*s", (int)value.len, value.ptr);
	}
	else
	{
		fprintf(out, "0x%+B", &value);
	}
}

METHOD(sasync_vici_msg_t, dump, void,
	private_sasync_vici_msg_t *this, char *label, bool pretty, FILE *out)
{
	enumerator_t *enumerator;
	sasync_vici_element_t type;
	chunk_t value;
	char *name;
	int indent = 1;

	/* in the compact form, elements are separated by a single space */
	#define NEWLINE() (pretty ? fprintf(out, "\n%*s", 2 * indent, "") : \
									fprintf(out, " "))

	fprintf(out, "%s%s{", label ?: "", label ? " " : "");
	enumerator = create_enumerator(this);
	while (enumerator->enumerate(enumerator, &type, &name, &value))
	{
		switch (type)
		{
			case SASYNC_VICI_SECTION_START:
				NEWLINE();
				fprintf(out, "%s {", name);
				indent++;
				break;
			case SASYNC_VICI_LIST_START:
				NEWLINE();
				fprintf(out, "%s = [", name);
				indent++;
				break;
			case SASYNC_VICI_SECTION_END:
			case SASYNC_VICI_LIST_END:
				indent--;
				NEWLINE();
				fprintf(out, type == SASYNC_VICI_LIST_END ? "]" : "}");
				break;
			case SASYNC_VICI_KEY_VALUE:
				NEWLINE();
				fprintf(out, "%s = ", name);
				print_value(out, value);
				break;
			case SASYNC_VICI_LIST_ITEM:
				NEWLINE();
				print_value(out, value);
				break;
			case SASYNC_VICI_END:
				indent = 0;
				NEWLINE();
				fprintf(out, "}\n");
				break;
		}
	}
	enumerator->destroy(enumerator);
	#undef NEWLINE
}

METHOD(sasync_vici_msg_t, destroy, void,
	private_sasync_vici_msg_t *this)
{
	this->strings->destroy_function(this->strings, free);
	chunk_free(&this->encoding);
	free(this);
}

/*
 * Described in header
 */
sasync_vici_msg_t *sasync_vici_msg_create(chunk_t data, bool cleanup)
{
	private_sasync_vici_msg_t *this;

	if (!sasync_vici_msg_validate(data))
	{
		if (cleanup)
		{
			chunk_free(&data);
		}
		return NULL;
	}

	INIT(this,
		.public = {
			.get_encoding = _get_encoding,
			.create_enumerator = _create_enumerator,
			.get_value = _get_value,
			.get_str = _get_str,
			.get_int = _get_int,
			.get_bool = _get_bool,
			.create_list_enumerator = _create_list_enumerator,
			.dump = _dump,
			.destroy = _destroy,
		},
		.encoding = cleanup ? data : chunk_clone(data),
		.strings = linked_list_create(),
	);
	return &this->public;
}

typedef struct private_sasync_vici_builder_t private_sasync_vici_builder_t;

/**
 * Private data of a sasync_vici_builder_t object.
 */
struct private_sasync_vici_builder_t {

	/**
	 * Public interface
	 */
	sasync_vici_builder_t public;

	/**
	 * Encoding built so far
	 */
	bio_writer_t *writer;

	/**
	 * Number of open sections
	 */
	u_int depth;

	/**
	 * Is a list open?
	 */
	bool in_list;

	/**
	 * Did adding an element fail?
	 */
	bool failed;
};

/**
 * Write an element with an optional name and value, if it's valid here.
 * name is NULL for unnamed, value.ptr NULL for value-less elements.
 */
static void add_element(private_sasync_vici_builder_t *this,
						sasync_vici_element_t type, char *name, chunk_t value)
{
	if (this->failed)
	{
		return;
	}
	if (name && (!*name || strlen(name) >= SASYNC_VICI_NAME_BUF))
	{
		DBG1(DBG_APP, "vici element name '%s' invalid", name);
		this->failed = TRUE;
		return;
	}
	if (value.len > 0xFFFF)
	{
		DBG1(DBG_APP, "vici value of %zu bytes too long", value.len);
		this->failed = TRUE;
		return;
	}
	this->writer->write_uint8(this->writer, type);
	if (name)
	{
		this->writer->write_data8(this->writer, chunk_from_str(name));
	}
	if (type == SASYNC_VICI_KEY_VALUE || type == SASYNC_VICI_LIST_ITEM)
	{
		this->writer->write_data16(this->writer, value);
	}
}

/**
 * Remember an element added where it is not allowed.
 */
static void misplaced(private_sasync_vici_builder_t *this,
					  sasync_vici_element_t type)
{
	if (!this->failed)
	{
		DBG1(DBG_APP, "vici element %N not allowed here",
			 sasync_vici_element_names, type);
	}
	this->failed = TRUE;
}

/**
 * Add a printf-formatted value element.
 */
static void add_formatted(private_sasync_vici_builder_t *this,
						  sasync_vici_element_t type, char *key, char *fmt,
						  va_list args)
{
	char buf[512], *str = buf;
	va_list copy;
	int len;

	if (this->failed)
	{
		return;
	}
	/* most values fit on the stack, format again on the heap otherwise */
	va_copy(copy, args);
	len = vsnprintf(buf, sizeof(buf), fmt, copy);
	va_end(copy);
	if (len >= (int)sizeof(buf))
	{
		str = malloc(len + 1);
		len = vsnprintf(str, len + 1, fmt, args);
	}
	if (len < 0)
	{
		this->failed = TRUE;
	}
	else
	{
		add_element(this, type, key, chunk_create(str, len));
	}
	if (str != buf)
	{
		free(str);
	}
}

METHOD(sasync_vici_builder_t, vadd_kv, void,
	private_sasync_vici_builder_t *this, char *key, char *fmt, va_list args)
{
	if (this->in_list)
	{
		misplaced(this, SASYNC_VICI_KEY_VALUE);
		return;
	}
	add_formatted(this, SASYNC_VICI_KEY_VALUE, key, fmt, args);
}

METHOD(sasync_vici_builder_t, add_kv, void,
	private_sasync_vici_builder_t *this, char *key, char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vadd_kv(this, key, fmt, args);
	va_end(args);
}

METHOD(sasync_vici_builder_t, add_kv_chunk, void,
	private_sasync_vici_builder_t *this, char *key, chunk_t value)
{
	if (this->in_list)
	{
		misplaced(this, SASYNC_VICI_KEY_VALUE);
		return;
	}
	add_element(this, SASYNC_VICI_KEY_VALUE, key, value);
}

METHOD(sasync_vici_builder_t, begin_section, void,
	private_sasync_vici_builder_t *this, char *name)
{
	if (this->in_list)
	{
		misplaced(this, SASYNC_VICI_SECTION_START);
		return;
	}
	add_element(this, SASYNC_VICI_SECTION_START, name, chunk_empty);
	this->depth++;
}

METHOD(sasync_vici_builder_t, end_section, void,
	private_sasync_vici_builder_t *this)
{
	if (this->in_list || !this->depth)
	{
		misplaced(this, SASYNC_VICI_SECTION_END);
		return;
	}
	add_element(this, SASYNC_VICI_SECTION_END, NULL, chunk_empty);
	this->depth--;
}

METHOD(sasync_vici_builder_t, begin_list, void,
	private_sasync_vici_builder_t *this, char *name)
{
	if (this->in_list)
	{
		misplaced(this, SASYNC_VICI_LIST_START);
		return;
	}
	add_element(this, SASYNC_VICI_LIST_START, name, chunk_empty);
	this->in_list = TRUE;
}

METHOD(sasync_vici_builder_t, vadd_li, void,
	private_sasync_vici_builder_t *this, char *fmt, va_list args)
{
	if (!this->in_list)
	{
		misplaced(this, SASYNC_VICI_LIST_ITEM);
		return;
	}
	add_formatted(this, SASYNC_VICI_LIST_ITEM, NULL, fmt, args);
}

METHOD(sasync_vici_builder_t, add_li, void,
	private_sasync_vici_builder_t *this, char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vadd_li(this, fmt, args);
	va_end(args);
}

METHOD(sasync_vici_builder_t, add_li_chunk, void,
	private_sasync_vici_builder_t *this, chunk_t value)
{
	if (!this->in_list)
	{
		misplaced(this, SASYNC_VICI_LIST_ITEM);
		return;
	}
	add_element(this, SASYNC_VICI_LIST_ITEM, NULL, value);
}

METHOD(sasync_vici_builder_t, end_list, void,
	private_sasync_vici_builder_t *this)
{
	if (!this->in_list)
	{
		misplaced(this, SASYNC_VICI_LIST_END);
		return;
	}
	add_element(this, SASYNC_VICI_LIST_END, NULL, chunk_empty);
	this->in_list = FALSE;
}

METHOD(sasync_vici_builder_t, destroy_builder, void,
	private_sasync_vici_builder_t *this)
{
	this->writer->destroy(this->writer);
	free(this);
}

METHOD(sasync_vici_builder_t, finish, sasync_vici_msg_t*,
	private_sasync_vici_builder_t *this)
{
	sasync_vici_msg_t *msg = NULL;

	if (this->failed)
	{
		DBG1(DBG_APP, "building vici message failed");
	}
	else if (this->depth || this->in_list)
	{
		DBG1(DBG_APP, "vici message has unclosed %s",
			 this->in_list ? "list" : "sections");
	}
	else
	{
		msg = sasync_vici_msg_create(this->writer->extract_buf(this->writer),
									 TRUE);
	}
	destroy_builder(this);
	return msg;
}

/*
 * Described in header
 */
sasync_vici_builder_t *sasync_vici_builder_create()
{
	private_sasync_vici_builder_t *this;

	INIT(this,
		.public = {
			.add_kv = _add_kv,
			.vadd_kv = _vadd_kv,
			.add_kv_chunk = _add_kv_chunk,
			.begin_section = _begin_section,
			.end_section = _end_section,
			.begin_list = _begin_list,
			.add_li = _add_li,
			.vadd_li = _vadd_li,
			.add_li_chunk = _add_li_chunk,
			.end_list = _end_list,
			.finish = _finish,
			.destroy = _destroy_builder,
		},
		.writer = bio_writer_create(0),
	);
	return &this->public;
}

/*
 * Described in header
 */
sasync_vici_msg_t *sasync_vici_msg_create_reply(bool success, char *fmt, ...)
{
	sasync_vici_builder_t *b;
	va_list args;

	b = sasync_vici_builder_create();
	b->add_kv(b, "success", success ? "yes" : "no");
	if (fmt)
	{
		va_start(args, fmt);
		b->vadd_kv(b, "errmsg", fmt, args);
		va_end(args);
	}
	return b->finish(b);
}

/*
 * Described in header
 */
bool sasync_vici_packet_is_named(sasync_vici_packet_t type)
{
	switch (type)
	{
		case SASYNC_VICI_CMD_REQUEST:
		case SASYNC_VICI_EVENT_REGISTER:
		case SASYNC_VICI_EVENT_UNREGISTER:
		case SASYNC_VICI_EVENT:
			return TRUE;
		default:
			return FALSE;
	}
}

/*
 * Described in header
 */
chunk_t sasync_vici_packet_encode(sasync_vici_packet_t type, char *name,
								  chunk_t msg)
{
	size_t namelen = 0, len;
	chunk_t packet;
	u_char *pos;

	if (type >= SASYNC_VICI_PACKET_MAX)
	{
		return chunk_empty;
	}
	if (sasync_vici_packet_is_named(type))
	{
		namelen = name ? strlen(name) : 0;
		if (!namelen || namelen >= SASYNC_VICI_NAME_BUF)
		{
			return chunk_empty;
		}
	}
	len = 1 + (namelen ? 1 + namelen : 0) + msg.len;
	if (len > SASYNC_VICI_PACKET_MAX_LEN)
	{
		return chunk_empty;
	}
	packet = chunk_alloc(sizeof(uint32_t) + len);
	pos = packet.ptr;
	htoun32(pos, len);
	pos += sizeof(uint32_t);
	*pos++ = type;
	if (namelen)
	{
		*pos++ = namelen;
		memcpy(pos, name, namelen);
		pos += namelen;
	}
	if (msg.len)
	{
		memcpy(pos, msg.ptr, msg.len);
	}
	return packet;
}

/*
 * Described in header
 */
bool sasync_vici_packet_decode(chunk_t packet, sasync_vici_packet_t *type,
							   char name[SASYNC_VICI_NAME_BUF], chunk_t *msg)
{
	chunk_t tag;

	name[0] = '\0';
	if (!packet.len || packet.len > SASYNC_VICI_PACKET_MAX_LEN ||
		packet.ptr[0] >= SASYNC_VICI_PACKET_MAX)
	{
		return FALSE;
	}
	*type = packet.ptr[0];
	packet = chunk_skip(packet, 1);
	if (sasync_vici_packet_is_named(*type))
	{
		if (!take_data8(&packet, &tag) || !name_valid(tag))
		{
			return FALSE;
		}
		memcpy(name, tag.ptr, tag.len);
		name[tag.len] = '\0';
	}
	*msg = packet;
	return TRUE;
}
