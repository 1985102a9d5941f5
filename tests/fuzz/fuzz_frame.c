/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Fuzz target: link frames, sasync_crypt_t's open() with a fixed key.
 *
 * Input, first byte even ("stream"): the rest is what the connecting side
 * of an authenticated connection sent, as TCP delivers it to the accepting
 * side. It is cut into frames as the link does (u32 length of what follows,
 * at most SASYNC_MAX_FRAME in all: a mirror of rx_frame() in sasync_link.c,
 * which is static there) and each is opened in turn, as long as they open;
 * a record's payload goes on to the record checks (fuzz_record()), as the
 * dispatcher would take it. Opening anything not sealed with the key fails;
 * the seeds (seeds.c) are real sealed frames, so the fuzzer gets past the
 * AEAD with what it keeps of them (lengths, types, sequence numbers).
 *
 * Input, first byte odd ("round trip"): byte 1 a frame type, bytes 2-3 a
 * bit to flip, the rest a payload. It is sealed and must open as itself;
 * the frame with the bit flipped, truncated, or replayed must not.
 */

#include "fuzz.h"

#include "sasync_link.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* libFuzzer ignores what this returns */
	if (!fuzz_init("fuzz_frame"))
	{
		exit(1);
	}
	return 0;
}

/**
 * Open what the connecting side sent, frame by frame
 */
static void stream(chunk_t data)
{
	sasync_crypt_t *crypt = fuzz_crypt(FALSE);
	sasync_open_t result;
	chunk_t frame, plain;
	uint8_t type;
	size_t len;

	while (data.len >= 4)
	{
		len = 4 + (size_t)untoh32(data.ptr);
		if (len > SASYNC_MAX_FRAME || len > data.len)
		{	/* the link closes, or waits for more */
			break;
		}
		/* a buffer of exactly the frame, so reading past it shows */
		frame = chunk_clone(chunk_create(data.ptr, len));
		data = chunk_skip(data, len);
		result = crypt->open(crypt, frame, &type, &plain);
		chunk_free(&frame);
		if (result != SASYNC_OPEN_OK)
		{	/* the link closes */
			break;
		}
		if (type == SASYNC_FRAME_DATA)
		{
			fuzz_record(plain);
		}
		chunk_clear(&plain);
	}
	crypt->destroy(crypt);
}

/**
 * Open a frame that must not open, whatever the reason
 */
static void open_fails(sasync_crypt_t *crypt, chunk_t frame)
{
	sasync_open_t result;
	chunk_t plain;
	uint8_t type;

	frame = chunk_clone(frame);
	result = crypt->open(crypt, frame, &type, &plain);
	chunk_free(&frame);
	fuzz_assert(result != SASYNC_OPEN_OK);
}

/**
 * Open a frame that must open as type and payload
 */
static void open_ok(sasync_crypt_t *crypt, chunk_t frame, uint8_t want_type,
					chunk_t want)
{
	sasync_open_t result;
	chunk_t plain;
	uint8_t type;

	frame = chunk_clone(frame);
	result = crypt->open(crypt, frame, &type, &plain);
	chunk_free(&frame);
	fuzz_assert(result == SASYNC_OPEN_OK);
	fuzz_assert(type == want_type);
	fuzz_assert(plain.len == want.len &&
				(!want.len || memeq(plain.ptr, want.ptr, want.len)));
	chunk_clear(&plain);
}

/**
 * Seal and open, with tampered frames in between
 */
static void round_trip(chunk_t data)
{
	sasync_crypt_t *out, *in;
	chunk_t first, second, payload, tampered;
	uint8_t type;
	size_t bit;

	if (data.len < 3)
	{
		return;
	}
	type = data.ptr[0];
	bit = untoh16(data.ptr + 1);
	payload = chunk_skip(data, 3);

	out = fuzz_crypt(TRUE);
	in = fuzz_crypt(FALSE);
	fuzz_assert(out->seal(out, type, payload, &first));
	fuzz_assert(out->seal(out, type, payload, &second));
	/* the length field covers what follows it */
	fuzz_assert(untoh32(first.ptr) == first.len - 4);
	open_ok(in, first, type, payload);

	/* a flipped bit anywhere: length, version, type, sequence number,
	 * ciphertext or ICV */
	tampered = chunk_clone(second);
	bit %= tampered.len * 8;
	tampered.ptr[bit / 8] ^= 1 << (bit % 8);
	open_fails(in, tampered);
	chunk_free(&tampered);
	/* cut short, by one byte: the length no longer matches */
	open_fails(in, chunk_create(second.ptr, second.len - 1));

	/* what failed changed nothing: the second frame is the next one */
	open_ok(in, second, type, payload);
	/* and neither it nor the first opens again */
	open_fails(in, second);
	open_fails(in, first);

	chunk_free(&first);
	chunk_free(&second);
	out->destroy(out);
	in->destroy(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	chunk_t input = chunk_clone(chunk_create((u_char*)data, size));

	if (input.len)
	{
		if (input.ptr[0] & 1)
		{
			round_trip(chunk_skip(input, 1));
		}
		else
		{
			stream(chunk_skip(input, 1));
		}
	}
	chunk_free(&input);
	return 0;
}
