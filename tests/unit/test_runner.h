/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * Helpers of the unit test runner (test_runner.c) for the suites.
 */

#ifndef SASYNC_TEST_RUNNER_H_
#define SASYNC_TEST_RUNNER_H_

#include <library.h>

/** plugins the runner loads by default (SASYNC_TEST_PLUGINS overrides) */
#define SASYNC_TEST_PLUGINS_DEFAULT \
	"random nonce sha1 sha2 hmac aes gcm chapoly openssl kdf"

/**
 * Re-initialize libstrongswan and libcharon with another set of plugins,
 * e.g. in a checked fixture to test without a crypto implementation; call it
 * again with NULL in the teardown to get the default set back.
 *
 * @param plugins	space-separated plugin list, NULL for the default
 * @return			TRUE if every plugin in the list was loaded
 */
bool sasync_test_reinit(char *plugins);

#endif /** SASYNC_TEST_RUNNER_H_ */
