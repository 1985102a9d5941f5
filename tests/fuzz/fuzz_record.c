/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Fuzz target: a record as the link delivers it to a standby
 * (sasync_dispatch parses it with sasync_msg_parse(), sasync_apply reads it
 * with the getters and the key store's decoders). See fuzz_record().
 */

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* libFuzzer ignores what this returns */
	if (!fuzz_init("fuzz_record"))
	{
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly the input's size, so reading past it shows */
	chunk_t record = chunk_clone(chunk_create((u_char*)data, size));

	fuzz_record(record);
	chunk_free(&record);
	return 0;
}
