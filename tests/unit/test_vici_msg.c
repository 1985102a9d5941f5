/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <library.h>
#include <check.h>

#include <stdio.h>
#include <stdlib.h>

#include "sasync_vici_msg.h"

/**
 * The example from the protocol description:
 *   key1 = value1
 *   section1 = {
 *     sub-section = { key2 = value2 }
 *     list1 = [ item1, item2 ]
 *   }
 */
static u_char example[] = {
	3, 4,'k','e','y','1', 0,6,'v','a','l','u','e','1',
	1, 8,'s','e','c','t','i','o','n','1',
	1, 11,'s','u','b','-','s','e','c','t','i','o','n',
	3, 4,'k','e','y','2', 0,6,'v','a','l','u','e','2',
	2,
	4, 5,'l','i','s','t','1',
	5, 0,5,'i','t','e','m','1',
	5, 0,5,'i','t','e','m','2',
	6,
	2,
};

/**
 * An element expected from the enumerator
 */
typedef struct {
	sasync_vici_element_t type;
	char *name;
	char *value;
} element_t;

/**
 * Check that a message enumerates exactly the given elements (and END).
 */
static void assert_elements(sasync_vici_msg_t *msg, element_t *expected,
							int count)
{
	enumerator_t *enumerator;
	sasync_vici_element_t type;
	chunk_t value;
	char *name;
	int i = 0;

	enumerator = msg->create_enumerator(msg);
	while (enumerator->enumerate(enumerator, &type, &name, &value))
	{
		if (i == count)
		{
			ck_assert_int_eq(type, SASYNC_VICI_END);
			ck_assert(name == NULL);
			ck_assert_int_eq(value.len, 0);
			i++;
			continue;
		}
		ck_assert_int_lt(i, count);
		ck_assert_int_eq(type, expected[i].type);
		if (expected[i].name)
		{
			ck_assert_str_eq(name, expected[i].name);
		}
		else
		{
			ck_assert(name == NULL);
		}
		if (expected[i].value)
		{
			ck_assert(chunk_equals(value, chunk_from_str(expected[i].value)));
		}
		else
		{
			ck_assert_int_eq(value.len, 0);
		}
		i++;
	}
	enumerator->destroy(enumerator);
	ck_assert_int_eq(i, count + 1);
}

/**
 * Build the example message with the builder.
 */
static sasync_vici_msg_t *build_example()
{
	sasync_vici_builder_t *b;

	b = sasync_vici_builder_create();
	b->add_kv(b, "key1", "value%d", 1);
	b->begin_section(b, "section1");
	b->begin_section(b, "sub-section");
	b->add_kv(b, "key2", "%s", "value2");
	b->end_section(b);
	b->begin_list(b, "list1");
	b->add_li(b, "item%d", 1);
	b->add_li(b, "%s", "item2");
	b->end_list(b);
	b->end_section(b);
	return b->finish(b);
}

START_TEST(test_builder_encoding)
{
	sasync_vici_msg_t *msg;

	msg = build_example();
	ck_assert(msg);
	ck_assert(chunk_equals(msg->get_encoding(msg),
						   chunk_create(example, sizeof(example))));
	msg->destroy(msg);
}
END_TEST

START_TEST(test_parse_example)
{
	element_t expected[] = {
		{ SASYNC_VICI_KEY_VALUE, "key1", "value1" },
		{ SASYNC_VICI_SECTION_START, "section1", NULL },
		{ SASYNC_VICI_SECTION_START, "sub-section", NULL },
		{ SASYNC_VICI_KEY_VALUE, "key2", "value2" },
		{ SASYNC_VICI_SECTION_END, NULL, NULL },
		{ SASYNC_VICI_LIST_START, "list1", NULL },
		{ SASYNC_VICI_LIST_ITEM, NULL, "item1" },
		{ SASYNC_VICI_LIST_ITEM, NULL, "item2" },
		{ SASYNC_VICI_LIST_END, NULL, NULL },
		{ SASYNC_VICI_SECTION_END, NULL, NULL },
	};
	sasync_vici_msg_t *msg;
	enumerator_t *enumerator;
	char *item;
	int i = 0;

	ck_assert(sasync_vici_msg_validate(chunk_create(example,
													sizeof(example))));
	msg = sasync_vici_msg_create(chunk_create(example, sizeof(example)),
								 FALSE);
	ck_assert(msg);
	ck_assert(msg->get_encoding(msg).ptr != example);
	assert_elements(msg, expected, countof(expected));

	ck_assert_str_eq(msg->get_str(msg, NULL, "key1"), "value1");
	ck_assert_str_eq(msg->get_str(msg, NULL, "section1.sub-section.key2"),
					 "value2");
	ck_assert_str_eq(msg->get_str(msg, NULL, "%s.%s.key%d", "section1",
								  "sub-section", 2), "value2");
	/* keys are only found in their own section */
	ck_assert(msg->get_str(msg, NULL, "key2") == NULL);
	ck_assert(msg->get_str(msg, NULL, "section1.key2") == NULL);
	ck_assert(msg->get_str(msg, NULL, "sub-section.key2") == NULL);
	ck_assert(msg->get_str(msg, NULL, "section1.sub-section.key1") == NULL);
	/* sections, lists and prefixes are not values */
	ck_assert_str_eq(msg->get_str(msg, "def", "section1"), "def");
	ck_assert_str_eq(msg->get_str(msg, "def", "section1.list1"), "def");
	ck_assert_str_eq(msg->get_str(msg, "def", "key"), "def");
	ck_assert_str_eq(msg->get_str(msg, "def", ""), "def");
	ck_assert_str_eq(msg->get_str(msg, "def", "."), "def");
	ck_assert_str_eq(msg->get_str(msg, "def", "section1..key2"), "def");

	enumerator = msg->create_list_enumerator(msg, "section1.list1");
	while (enumerator->enumerate(enumerator, &item))
	{
		ck_assert_str_eq(item, i++ ? "item2" : "item1");
	}
	enumerator->destroy(enumerator);
	ck_assert_int_eq(i, 2);

	enumerator = msg->create_list_enumerator(msg, "list1");
	ck_assert(!enumerator->enumerate(enumerator, &item));
	enumerator->destroy(enumerator);
	msg->destroy(msg);
}
END_TEST

START_TEST(test_roundtrip_all_types)
{
	element_t expected[] = {
		{ SASYNC_VICI_KEY_VALUE, "empty", "" },
		{ SASYNC_VICI_LIST_START, "empty-list", NULL },
		{ SASYNC_VICI_LIST_END, NULL, NULL },
		{ SASYNC_VICI_SECTION_START, "a", NULL },
		{ SASYNC_VICI_SECTION_START, "b", NULL },
		{ SASYNC_VICI_SECTION_START, "c", NULL },
		{ SASYNC_VICI_KEY_VALUE, "deep", "1" },
		{ SASYNC_VICI_LIST_START, "l", NULL },
		{ SASYNC_VICI_LIST_ITEM, NULL, "x" },
		{ SASYNC_VICI_LIST_ITEM, NULL, "" },
		{ SASYNC_VICI_LIST_END, NULL, NULL },
		{ SASYNC_VICI_SECTION_END, NULL, NULL },
		{ SASYNC_VICI_SECTION_END, NULL, NULL },
		{ SASYNC_VICI_KEY_VALUE, "deep", "2" },
		{ SASYNC_VICI_SECTION_END, NULL, NULL },
		{ SASYNC_VICI_SECTION_START, "empty-section", NULL },
		{ SASYNC_VICI_SECTION_END, NULL, NULL },
		{ SASYNC_VICI_KEY_VALUE, "deep", "0" },
	};
	sasync_vici_builder_t *b;
	sasync_vici_msg_t *msg, *copy;
	enumerator_t *enumerator;
	char *item;
	int i = 0;

	b = sasync_vici_builder_create();
	b->add_kv(b, "empty", "%s", "");
	b->begin_list(b, "empty-list");
	b->end_list(b);
	b->begin_section(b, "a");
	b->begin_section(b, "b");
	b->begin_section(b, "c");
	b->add_kv(b, "deep", "%d", 1);
	b->begin_list(b, "l");
	b->add_li(b, "x");
	b->add_li(b, "%s", "");
	b->end_list(b);
	b->end_section(b);
	b->end_section(b);
	b->add_kv(b, "deep", "%u", 2);
	b->end_section(b);
	b->begin_section(b, "empty-section");
	b->end_section(b);
	b->add_kv(b, "deep", "0");
	msg = b->finish(b);
	ck_assert(msg);
	assert_elements(msg, expected, countof(expected));

	/* parse the encoding again, taking ownership */
	copy = sasync_vici_msg_create(chunk_clone(msg->get_encoding(msg)), TRUE);
	ck_assert(copy);
	assert_elements(copy, expected, countof(expected));
	ck_assert(chunk_equals(copy->get_encoding(copy), msg->get_encoding(msg)));
	msg->destroy(msg);

	ck_assert_int_eq(copy->get_int(copy, -1, "deep"), 0);
	ck_assert_int_eq(copy->get_int(copy, -1, "a.deep"), 2);
	ck_assert_int_eq(copy->get_int(copy, -1, "a.b.c.deep"), 1);
	ck_assert_int_eq(copy->get_int(copy, -1, "a.b.deep"), -1);
	ck_assert_int_eq(copy->get_int(copy, -1, "empty"), -1);
	ck_assert_str_eq(copy->get_str(copy, NULL, "empty"), "");
	ck_assert(chunk_equals(copy->get_value(copy, chunk_empty, "a.b.c.deep"),
						   chunk_from_str("1")));
	ck_assert(copy->get_value(copy, chunk_empty, "missing").ptr == NULL);

	enumerator = copy->create_list_enumerator(copy, "a.b.c.l");
	while (enumerator->enumerate(enumerator, &item))
	{
		ck_assert_str_eq(item, i++ ? "" : "x");
	}
	enumerator->destroy(enumerator);
	ck_assert_int_eq(i, 2);

	enumerator = copy->create_list_enumerator(copy, "empty-list");
	ck_assert(!enumerator->enumerate(enumerator, &item));
	enumerator->destroy(enumerator);
	copy->destroy(copy);
}
END_TEST

START_TEST(test_roundtrip_binary_and_limits)
{
	sasync_vici_builder_t *b;
	sasync_vici_msg_t *msg;
	enumerator_t *enumerator;
	chunk_t big, bin = chunk_from_chars(0x00, 0x01, 0xff, 0x00);
	char name[256], *item;

	memset(name, 'n', 255);
	name[255] = '\0';
	big = chunk_alloc(0xFFFF);
	memset(big.ptr, 'v', big.len);

	b = sasync_vici_builder_create();
	b->add_kv_chunk(b, "bin", bin);
	b->add_kv_chunk(b, name, big);
	b->begin_section(b, name);
	b->begin_list(b, name);
	b->add_li_chunk(b, bin);
	b->add_li_chunk(b, big);
	b->end_list(b);
	b->end_section(b);
	msg = b->finish(b);
	ck_assert(msg);

	ck_assert(chunk_equals(msg->get_value(msg, chunk_empty, "bin"), bin));
	/* can't be a string with NULs in it */
	ck_assert_str_eq(msg->get_str(msg, "def", "bin"), "def");
	ck_assert(chunk_equals(msg->get_value(msg, chunk_empty, "%s", name), big));
	ck_assert_int_eq(strlen(msg->get_str(msg, "", "%s", name)), 0xFFFF);

	enumerator = msg->create_list_enumerator(msg, "%s.%s", name, name);
	ck_assert(enumerator->enumerate(enumerator, &item));
	ck_assert_str_eq(item, "");
	ck_assert(enumerator->enumerate(enumerator, &item));
	ck_assert_int_eq(strlen(item), 0xFFFF);
	ck_assert(!enumerator->enumerate(enumerator, &item));
	enumerator->destroy(enumerator);
	msg->destroy(msg);
	chunk_free(&big);
}
END_TEST

START_TEST(test_get_int_bool)
{
	sasync_vici_builder_t *b;
	sasync_vici_msg_t *msg;

	b = sasync_vici_builder_create();
	b->add_kv(b, "neg", "-42");
	b->add_kv(b, "junk", "12abc");
	b->add_kv(b, "huge", "99999999999999");
	b->add_kv(b, "yes", "yes");
	b->add_kv(b, "no", "no");
	b->add_kv(b, "true", "true");
	b->add_kv(b, "maybe", "maybe");
	msg = b->finish(b);
	ck_assert(msg);

	ck_assert_int_eq(msg->get_int(msg, 7, "neg"), -42);
	ck_assert_int_eq(msg->get_int(msg, 7, "junk"), 7);
	ck_assert_int_eq(msg->get_int(msg, 7, "huge"), 7);
	ck_assert_int_eq(msg->get_int(msg, 7, "missing"), 7);
	ck_assert(msg->get_bool(msg, FALSE, "yes"));
	ck_assert(!msg->get_bool(msg, TRUE, "no"));
	ck_assert(msg->get_bool(msg, FALSE, "true"));
	ck_assert(msg->get_bool(msg, TRUE, "maybe"));
	ck_assert(!msg->get_bool(msg, FALSE, "maybe"));
	ck_assert(msg->get_bool(msg, TRUE, "missing"));
	msg->destroy(msg);
}
END_TEST

START_TEST(test_empty_and_reply)
{
	sasync_vici_builder_t *b;
	sasync_vici_msg_t *msg;

	b = sasync_vici_builder_create();
	msg = b->finish(b);
	ck_assert(msg);
	ck_assert_int_eq(msg->get_encoding(msg).len, 0);
	assert_elements(msg, NULL, 0);
	msg->destroy(msg);

	msg = sasync_vici_msg_create(chunk_empty, FALSE);
	ck_assert(msg);
	msg->destroy(msg);

	msg = sasync_vici_msg_create_reply(TRUE, NULL);
	ck_assert_str_eq(msg->get_str(msg, NULL, "success"), "yes");
	ck_assert(msg->get_str(msg, NULL, "errmsg") == NULL);
	msg->destroy(msg);

	msg = sasync_vici_msg_create_reply(FALSE, "no %s", "way");
	ck_assert(!msg->get_bool(msg, TRUE, "success"));
	ck_assert_str_eq(msg->get_str(msg, NULL, "errmsg"), "no way");
	msg->destroy(msg);
}
END_TEST

/**
 * A builder misuse, applied after some valid elements
 */
typedef void (*misuse_t)(sasync_vici_builder_t *b);

static void kv_in_list(sasync_vici_builder_t *b)
{
	b->begin_list(b, "l");
	b->add_kv(b, "k", "v");
	b->end_list(b);
}

static void kv_chunk_in_list(sasync_vici_builder_t *b)
{
	b->begin_list(b, "l");
	b->add_kv_chunk(b, "k", chunk_from_str("v"));
	b->end_list(b);
}

static void section_in_list(sasync_vici_builder_t *b)
{
	b->begin_list(b, "l");
	b->begin_section(b, "s");
	b->end_section(b);
	b->end_list(b);
}

static void list_in_list(sasync_vici_builder_t *b)
{
	b->begin_list(b, "l");
	b->begin_list(b, "m");
	b->end_list(b);
	b->end_list(b);
}

static void item_outside_list(sasync_vici_builder_t *b)
{
	b->add_li(b, "x");
}

static void item_chunk_outside_list(sasync_vici_builder_t *b)
{
	b->add_li_chunk(b, chunk_from_str("x"));
}

static void end_list_outside_list(sasync_vici_builder_t *b)
{
	b->end_list(b);
}

static void end_section_at_top(sasync_vici_builder_t *b)
{
	b->end_section(b);
}

static void end_section_in_list(sasync_vici_builder_t *b)
{
	b->begin_section(b, "s");
	b->begin_list(b, "l");
	b->end_section(b);
	b->end_list(b);
	b->end_section(b);
}

static void unclosed_section(sasync_vici_builder_t *b)
{
	b->begin_section(b, "s");
}

static void unclosed_list(sasync_vici_builder_t *b)
{
	b->begin_list(b, "l");
}

static void empty_name(sasync_vici_builder_t *b)
{
	b->add_kv(b, "", "v");
}

static void long_name(sasync_vici_builder_t *b)
{
	char name[257];

	memset(name, 'n', 256);
	name[256] = '\0';
	b->begin_section(b, name);
	b->end_section(b);
}

static void long_value(sasync_vici_builder_t *b)
{
	chunk_t value = chunk_alloca(0x10000);

	memset(value.ptr, 'v', value.len);
	b->add_kv_chunk(b, "k", value);
}

static void long_formatted_value(sasync_vici_builder_t *b)
{
	b->add_kv(b, "k", "%70000s", "v");
}

static misuse_t misuses[] = {
	kv_in_list,
	kv_chunk_in_list,
	section_in_list,
	list_in_list,
	item_outside_list,
	item_chunk_outside_list,
	end_list_outside_list,
	end_section_at_top,
	end_section_in_list,
	unclosed_section,
	unclosed_list,
	empty_name,
	long_name,
	long_value,
	long_formatted_value,
};

START_TEST(test_builder_misuse)
{
	sasync_vici_builder_t *b;

	b = sasync_vici_builder_create();
	b->add_kv(b, "ok", "1");
	b->begin_section(b, "ok");
	b->end_section(b);
	misuses[_i](b);
	b->add_kv(b, "after", "1");
	ck_assert(b->finish(b) == NULL);
}
END_TEST

START_TEST(test_builder_destroy)
{
	sasync_vici_builder_t *b;

	b = sasync_vici_builder_create();
	b->begin_section(b, "s");
	b->add_kv(b, "k", "v");
	b->destroy(b);
}
END_TEST

START_TEST(test_dump)
{
	sasync_vici_msg_t *msg;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	msg = build_example();

	out = open_memstream(&buf, &len);
	msg->dump(msg, "example", FALSE, out);
	fclose(out);
	ck_assert_str_eq(buf, "example { key1 = value1 section1 { sub-section { "
					 "key2 = value2 } list1 = [ item1 item2 ] } }\n");
	free(buf);

	out = open_memstream(&buf, &len);
	msg->dump(msg, NULL, TRUE, out);
	fclose(out);
	ck_assert_str_eq(buf,
		"{\n"
		"  key1 = value1\n"
		"  section1 {\n"
		"    sub-section {\n"
		"      key2 = value2\n"
		"    }\n"
		"    list1 = [\n"
		"      item1\n"
		"      item2\n"
		"    ]\n"
		"  }\n"
		"}\n");
	free(buf);
	msg->destroy(msg);
}
END_TEST

/**
 * A message wholly enclosed in a section, so no proper prefix is balanced;
 * names and values use letters only, so a shifted length never lands on a
 * valid element type.
 */
static sasync_vici_msg_t *build_enclosed()
{
	sasync_vici_builder_t *b;

	b = sasync_vici_builder_create();
	b->begin_section(b, "outer");
	b->add_kv(b, "key", "value");
	b->add_kv(b, "e", "");
	b->begin_section(b, "inner");
	b->add_kv(b, "x", "y");
	b->end_section(b);
	b->begin_list(b, "list");
	b->add_li(b, "item");
	b->add_li(b, "");
	b->add_li(b, "z");
	b->end_list(b);
	b->begin_list(b, "nolist");
	b->end_list(b);
	b->end_section(b);
	return b->finish(b);
}

START_TEST(test_truncations)
{
	sasync_vici_msg_t *msg, *bad;
	chunk_t data;
	size_t i;

	msg = build_enclosed();
	ck_assert(msg);
	data = msg->get_encoding(msg);
	for (i = 0; i < data.len; i++)
	{
		chunk_t part = chunk_clone(chunk_create(data.ptr, i));

		/* the empty prefix is the empty message */
		ck_assert(sasync_vici_msg_validate(part) == (i == 0));
		bad = sasync_vici_msg_create(part, TRUE);
		ck_assert((bad != NULL) == (i == 0));
		DESTROY_IF(bad);
	}
	msg->destroy(msg);
}
END_TEST

START_TEST(test_truncations_at_boundaries)
{
	sasync_vici_msg_t *msg;
	chunk_t data;
	size_t i;
	/* lengths of the example's prefixes that are whole, balanced messages */
	size_t valid[] = { 0, 14, sizeof(example) };
	int v = 0;

	msg = build_example();
	data = msg->get_encoding(msg);
	for (i = 0; i <= data.len; i++)
	{
		bool ok = sasync_vici_msg_validate(chunk_create(data.ptr, i));

		if (v < countof(valid) && valid[v] == i)
		{
			ck_assert(ok);
			v++;
		}
		else
		{
			ck_assert(!ok);
		}
	}
	ck_assert_int_eq(v, countof(valid));
	msg->destroy(msg);
}
END_TEST

/**
 * Find the offsets of every length field in a valid encoding, with their
 * size (1 or 2 bytes).
 */
static int find_lengths(chunk_t data, size_t *offsets, int *sizes, int max)
{
	size_t pos = 0;
	int count = 0;

	while (pos < data.len)
	{
		u_char type = data.ptr[pos++];

		if (type == SASYNC_VICI_SECTION_START ||
			type == SASYNC_VICI_LIST_START ||
			type == SASYNC_VICI_KEY_VALUE)
		{
			ck_assert_int_lt(count, max);
			offsets[count] = pos;
			sizes[count++] = 1;
			pos += 1 + data.ptr[pos];
		}
		if (type == SASYNC_VICI_KEY_VALUE || type == SASYNC_VICI_LIST_ITEM)
		{
			ck_assert_int_lt(count, max);
			offsets[count] = pos;
			sizes[count++] = 2;
			pos += 2 + untoh16(data.ptr + pos);
		}
	}
	ck_assert_int_eq(pos, data.len);
	return count;
}

START_TEST(test_length_off_by_one)
{
	sasync_vici_msg_t *msg, *bad;
	size_t offsets[64];
	int sizes[64], count, i, delta;
	chunk_t data;

	msg = build_enclosed();
	data = msg->get_encoding(msg);
	count = find_lengths(data, offsets, sizes, countof(offsets));
	ck_assert_int_eq(count, 13);

	for (i = 0; i < count; i++)
	{
		for (delta = -1; delta <= 1; delta += 2)
		{
			chunk_t copy = chunk_clone(data);
			u_char *field = copy.ptr + offsets[i];

			if (sizes[i] == 1)
			{
				*field += delta;
			}
			else
			{
				htoun16(field, untoh16(field) + delta);
			}
			ck_assert_msg(!sasync_vici_msg_validate(copy),
						  "length at %zu %+d accepted", offsets[i], delta);
			bad = sasync_vici_msg_create(copy, TRUE);
			ck_assert(bad == NULL);
		}
	}
	msg->destroy(msg);
}
END_TEST

/**
 * Hand-made invalid encodings
 */
static struct {
	char *what;
	chunk_t data;
} invalid[] = {
	{ "unknown type 0", chunk_from_chars(0) },
	{ "unknown type 7", chunk_from_chars(7) },
	{ "unknown type 255", chunk_from_chars(255) },
	{ "section end at top", chunk_from_chars(2) },
	{ "list end at top", chunk_from_chars(6) },
	{ "item at top", chunk_from_chars(5, 0, 1, 'x') },
	{ "unclosed section", chunk_from_chars(1, 1, 's') },
	{ "unclosed list", chunk_from_chars(4, 1, 'l') },
	{ "empty section name", chunk_from_chars(1, 0, 2) },
	{ "empty key", chunk_from_chars(3, 0, 0, 1, 'v') },
	{ "empty list name", chunk_from_chars(4, 0, 6) },
	{ "NUL in key", chunk_from_chars(3, 2, 'k', 0, 0, 1, 'v') },
	{ "NUL in section", chunk_from_chars(1, 1, 0, 2) },
	{ "kv in list", chunk_from_chars(4, 1, 'l', 3, 1, 'k', 0, 0, 6) },
	{ "section in list", chunk_from_chars(4, 1, 'l', 1, 1, 's', 2, 6) },
	{ "nested list", chunk_from_chars(4, 1, 'l', 4, 1, 'm', 6, 6) },
	{ "section end in list", chunk_from_chars(1, 1, 's', 4, 1, 'l', 2, 6) },
	{ "list end closes section", chunk_from_chars(1, 1, 's', 6) },
	{ "value length beyond", chunk_from_chars(3, 1, 'k', 0xff, 0xff, 'v') },
	{ "name length beyond", chunk_from_chars(1, 0xff, 's', 2) },
	{ "kv without value", chunk_from_chars(3, 1, 'k') },
	{ "kv half value length", chunk_from_chars(3, 1, 'k', 0) },
	{ "item half length", chunk_from_chars(4, 1, 'l', 5, 0) },
	{ "extra section end", chunk_from_chars(1, 1, 's', 2, 2) },
};

START_TEST(test_invalid)
{
	ck_assert_msg(!sasync_vici_msg_validate(invalid[_i].data), "%s accepted",
				  invalid[_i].what);
	ck_assert(sasync_vici_msg_create(invalid[_i].data, FALSE) == NULL);
}
END_TEST

/**
 * Walk a message that was accepted, all of it must be readable.
 */
static void exercise(sasync_vici_msg_t *msg)
{
	enumerator_t *enumerator;
	sasync_vici_element_t type;
	chunk_t value;
	char *name;
	FILE *out;

	enumerator = msg->create_enumerator(msg);
	while (enumerator->enumerate(enumerator, &type, &name, &value))
	{
		if (name)
		{
			msg->get_str(msg, NULL, "%s", name);
		}
	}
	enumerator->destroy(enumerator);
	out = fopen("/dev/null", "w");
	msg->dump(msg, "x", TRUE, out);
	fclose(out);
}

START_TEST(test_garbage)
{
	sasync_vici_msg_t *msg;
	u_char buf[300];
	int i, j, len, accepted = 0;

	srandom(0x5a5a + _i);
	for (i = 0; i < 2000; i++)
	{
		len = random() % sizeof(buf);
		for (j = 0; j < len; j++)
		{
			/* bias towards element types and small lengths, so parsing gets
			 * past the first byte often */
			buf[j] = random() % 2 ? random() % 8 : random();
		}
		msg = sasync_vici_msg_create(chunk_create(buf, len), FALSE);
		if (msg)
		{
			accepted++;
			exercise(msg);
			msg->destroy(msg);
		}
	}
	/* the empty buffer at least */
	ck_assert_int_lt(accepted, 2000);
}
END_TEST

START_TEST(test_mutations)
{
	sasync_vici_msg_t *msg, *mutant;
	chunk_t data, copy;
	int i, flips;

	srandom(0x1234 + _i);
	msg = build_enclosed();
	data = msg->get_encoding(msg);
	for (i = 0; i < 2000; i++)
	{
		copy = chunk_clone(data);
		for (flips = 1 + random() % 3; flips; flips--)
		{
			copy.ptr[random() % copy.len] = random();
		}
		mutant = sasync_vici_msg_create(copy, TRUE);
		if (mutant)
		{
			exercise(mutant);
			mutant->destroy(mutant);
		}
	}
	msg->destroy(msg);
}
END_TEST

START_TEST(test_packet_roundtrip)
{
	sasync_vici_packet_t type, decoded;
	char name[SASYNC_VICI_NAME_BUF];
	chunk_t packet, msg = chunk_from_chars(3, 1, 'k', 0, 1, 'v'), rest;

	for (type = 0; type < SASYNC_VICI_PACKET_MAX; type++)
	{
		bool named = sasync_vici_packet_is_named(type);

		packet = sasync_vici_packet_encode(type, "stats", msg);
		ck_assert(packet.ptr);
		ck_assert_int_eq(untoh32(packet.ptr), packet.len - 4);
		ck_assert_int_eq(packet.ptr[4], type);
		ck_assert_int_eq(packet.len, 4 + 1 + (named ? 6 : 0) + msg.len);
		ck_assert(sasync_vici_packet_decode(chunk_skip(packet, 4), &decoded,
											name, &rest));
		ck_assert_int_eq(decoded, type);
		ck_assert_str_eq(name, named ? "stats" : "");
		ck_assert(chunk_equals(rest, msg));
		chunk_free(&packet);
	}
	ck_assert(sasync_vici_packet_is_named(SASYNC_VICI_CMD_REQUEST));
	ck_assert(sasync_vici_packet_is_named(SASYNC_VICI_EVENT));
	ck_assert(!sasync_vici_packet_is_named(SASYNC_VICI_CMD_RESPONSE));
	ck_assert(!sasync_vici_packet_is_named(SASYNC_VICI_EVENT_CONFIRM));

	/* unnamed without a message */
	packet = sasync_vici_packet_encode(SASYNC_VICI_CMD_UNKNOWN, NULL,
									   chunk_empty);
	ck_assert(chunk_equals(packet, chunk_from_chars(0, 0, 0, 1, 2)));
	chunk_free(&packet);
}
END_TEST

START_TEST(test_packet_encode_invalid)
{
	char name[257];
	chunk_t big, packet;

	memset(name, 'n', 256);
	name[256] = '\0';
	ck_assert(!sasync_vici_packet_encode(SASYNC_VICI_CMD_REQUEST, NULL,
										 chunk_empty).ptr);
	ck_assert(!sasync_vici_packet_encode(SASYNC_VICI_CMD_REQUEST, "",
										 chunk_empty).ptr);
	ck_assert(!sasync_vici_packet_encode(SASYNC_VICI_EVENT, name,
										 chunk_empty).ptr);
	ck_assert(!sasync_vici_packet_encode(SASYNC_VICI_PACKET_MAX, "x",
										 chunk_empty).ptr);
	big = chunk_alloc(SASYNC_VICI_PACKET_MAX_LEN);
	memset(big.ptr, 0, big.len);
	ck_assert(!sasync_vici_packet_encode(SASYNC_VICI_CMD_RESPONSE, NULL,
										 big).ptr);
	big.len--;
	ck_assert(!sasync_vici_packet_encode(SASYNC_VICI_EVENT, "e", big).ptr);
	big.len -= 2;
	name[1] = '\0';
	packet = sasync_vici_packet_encode(SASYNC_VICI_EVENT, name, big);
	ck_assert(packet.ptr);
	ck_assert_int_eq(packet.len, 4 + SASYNC_VICI_PACKET_MAX_LEN);
	chunk_free(&packet);
	chunk_free(&big);
}
END_TEST

static struct {
	char *what;
	chunk_t data;
} invalid_packets[] = {
	{ "empty", { NULL, 0 } },
	{ "type 8", chunk_from_chars(8) },
	{ "type 255", chunk_from_chars(255, 1, 'x') },
	{ "request without name length", chunk_from_chars(0) },
	{ "request with empty name", chunk_from_chars(0, 0) },
	{ "request name truncated", chunk_from_chars(0, 5, 's', 't') },
	{ "event name with NUL", chunk_from_chars(7, 2, 'e', 0) },
	{ "register without name", chunk_from_chars(3) },
	{ "unregister name truncated", chunk_from_chars(4, 2, 'e') },
};

START_TEST(test_packet_decode_invalid)
{
	sasync_vici_packet_t type;
	char name[SASYNC_VICI_NAME_BUF];
	chunk_t msg;

	ck_assert_msg(!sasync_vici_packet_decode(invalid_packets[_i].data, &type,
											 name, &msg),
				  "%s accepted", invalid_packets[_i].what);
}
END_TEST

START_TEST(test_packet_decode_garbage)
{
	sasync_vici_packet_t type;
	char name[SASYNC_VICI_NAME_BUF];
	u_char buf[64];
	chunk_t msg;
	int i, j, len;

	srandom(0xfeed);
	for (i = 0; i < 5000; i++)
	{
		len = random() % sizeof(buf);
		for (j = 0; j < len; j++)
		{
			buf[j] = j == 0 ? random() % 10 : random();
		}
		if (sasync_vici_packet_decode(chunk_create(buf, len), &type, name,
									  &msg))
		{
			ck_assert_int_lt(type, SASYNC_VICI_PACKET_MAX);
			ck_assert(!msg.len || msg.ptr + msg.len == buf + len);
			ck_assert_int_lt(strlen(name), SASYNC_VICI_NAME_BUF);
		}
	}
}
END_TEST

Suite *vici_msg_suite_create(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("vici_msg");

	tc = tcase_create("roundtrip");
	tcase_add_test(tc, test_builder_encoding);
	tcase_add_test(tc, test_parse_example);
	tcase_add_test(tc, test_roundtrip_all_types);
	tcase_add_test(tc, test_roundtrip_binary_and_limits);
	tcase_add_test(tc, test_get_int_bool);
	tcase_add_test(tc, test_empty_and_reply);
	tcase_add_test(tc, test_dump);
	suite_add_tcase(s, tc);

	tc = tcase_create("builder errors");
	tcase_add_loop_test(tc, test_builder_misuse, 0, countof(misuses));
	tcase_add_test(tc, test_builder_destroy);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_truncations);
	tcase_add_test(tc, test_truncations_at_boundaries);
	tcase_add_test(tc, test_length_off_by_one);
	tcase_add_loop_test(tc, test_invalid, 0, countof(invalid));
	tcase_add_loop_test(tc, test_garbage, 0, 4);
	tcase_add_loop_test(tc, test_mutations, 0, 4);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("packets");
	tcase_add_test(tc, test_packet_roundtrip);
	tcase_add_test(tc, test_packet_encode_invalid);
	tcase_add_loop_test(tc, test_packet_decode_invalid, 0,
						countof(invalid_packets));
	tcase_add_test(tc, test_packet_decode_garbage);
	suite_add_tcase(s, tc);

	return s;
}
