/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_fuzz sasync_fuzz
 * @{ @ingroup sasync
 *
 * What the fuzz targets (tests/fuzz/fuzz_*.c) and their seed generator
 * (tests/fuzz/seeds.c) share: the library set-up, the fixed keys of the
 * link frames, and the checks of a decoded record.
 */

#ifndef SASYNC_FUZZ_H_
#define SASYNC_FUZZ_H_

#include <library.h>

#include "sasync_crypt.h"

/** shared secret of the frames the frame target opens */
#define FUZZ_SECRET "sasync fuzz secret, fixed for reproducible seeds"

/**
 * libFuzzer's entry points, called by its main()
 */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/**
 * Initialise libstrongswan with the crypto the link needs (random nonce
 * sha2 hmac kdf chapoly aes gcm, no openssl: it leaks on purpose at exit),
 * once. strongSwan's log is formatted, as the plugin's DBG arguments would
 * be, and dropped.
 *
 * @param name		program name
 * @return			FALSE on failure (reported on stderr)
 */
bool fuzz_init(char *name);

/**
 * Frame protection with the fixed secret and nonces.
 *
 * @param initiator	TRUE for the connecting side (seals what the
 *					accepting side opens)
 * @return			instance, aborts on failure
 */
sasync_crypt_t *fuzz_crypt(bool initiator);

/**
 * Abort with a message: libFuzzer reports it as a crash with the input.
 */
#define fuzz_assert(cond) ({ \
	if (!(cond)) \
	{ \
		fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", \
				__FILE__, __LINE__, #cond); \
		abort(); \
	} \
})

/**
 * Decode a record as the standby does (sasync_dispatch/sasync_apply: every
 * getter, the key store's decoders, the log formats of the values) and
 * check that what decodes encodes back to the same values.
 *
 * @param data		record as received
 */
void fuzz_record(chunk_t data);

#endif /** SASYNC_FUZZ_H_ @}*/
