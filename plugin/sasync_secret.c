/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utils/debug.h>

/** a random key of SASYNC_KEY_MIN bytes has about 30 distinct bytes; fewer
 * than this many means a pattern or text, not a random key */
#define DISTINCT_MIN 16

/** longest line of a key file */
#define LINE_MAX_LEN 1024

/**
 * Count the distinct byte values of a key
 */
static u_int distinct_bytes(chunk_t key)
{
	bool seen[256] = {};
	u_int count = 0;
	size_t i;

	for (i = 0; i < key.len; i++)
	{
		count += !seen[key.ptr[i]];
		seen[key.ptr[i]] = TRUE;
	}
	return count;
}

/**
 * Check that the text of a key only has characters of its encoding
 */
static bool valid_text(char *text, bool hex)
{
	if (!*text)
	{
		return FALSE;
	}
	for (; *text; text++)
	{
		if (hex ? !isxdigit(*text)
				: !isalnum(*text) && !strchr("+/=", *text))
		{
			return FALSE;
		}
	}
	return TRUE;
}

/*
 * Described in header
 */
char *sasync_secret_parse(char *str, chunk_t *key)
{
	chunk_t text, decoded;

	if (!str || strlen(str) < 2 || str[0] != '0' ||
		(str[1] != 'x' && str[1] != 's'))
	{
		return "not written as 0x<hex> or 0s<base64> (a passphrase is not "
			   "a key)";
	}
	if (!valid_text(str + 2, str[1] == 'x'))
	{
		return "not valid hex or base64";
	}
	text = chunk_from_str(str + 2);
	decoded = str[1] == 'x' ? chunk_from_hex(text, NULL)
							: chunk_from_base64(text, NULL);
	if (decoded.len < SASYNC_KEY_MIN)
	{
		chunk_clear(&decoded);
		return "shorter than 32 bytes";
	}
	if (distinct_bytes(decoded) < DISTINCT_MIN)
	{
		chunk_clear(&decoded);
		return "not random (too few distinct bytes)";
	}
	*key = decoded;
	return NULL;
}

/**
 * Check that a key file is a regular file of root or our user, not readable
 * or writable by anyone else; NULL if fine, else why not
 */
static char *check_file(FILE *file)
{
	struct stat st;

	if (fstat(fileno(file), &st) < 0 || !S_ISREG(st.st_mode))
	{
		return "is not a regular file";
	}
	if (st.st_uid != 0 && st.st_uid != geteuid())
	{
		return "is owned by another user";
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		return "is accessible by group or others (chmod 0600 it)";
	}
	return NULL;
}

/**
 * Strip a line of a key file of its end of line and surrounding space
 */
static char *strip(char *line)
{
	char *end;

	while (isspace(*line))
	{
		line++;
	}
	end = line + strlen(line);
	while (end > line && isspace(end[-1]))
	{
		*--end = '\0';
	}
	return line;
}

/**
 * Parse the keys of an open key file, FALSE on any invalid line (logged)
 */
static bool parse_file(FILE *file, char *path, chunk_t keys[SASYNC_KEYS_MAX])
{
	char buf[LINE_MAX_LEN], *line, *error;
	int count = 0, lineno = 0;
	bool ok = TRUE;

	while (ok && fgets(buf, sizeof(buf), file))
	{
		lineno++;
		line = strip(buf);
		if (!*line || *line == '#')
		{
			continue;
		}
		if (count == SASYNC_KEYS_MAX)
		{
			DBG1(DBG_APP, "sasync: %s holds more than %d keys", path,
				 SASYNC_KEYS_MAX);
			ok = FALSE;
		}
		else if ((error = sasync_secret_parse(line, &keys[count])))
		{
			DBG1(DBG_APP, "sasync: key on line %d of %s is %s", lineno, path,
				 error);
			ok = FALSE;
		}
		else
		{
			count++;
		}
	}
	memwipe(buf, sizeof(buf));
	if (ok && !count)
	{
		DBG1(DBG_APP, "sasync: %s holds no key", path);
	}
	return ok && count;
}

/**
 * Load the keys from a file, FALSE if invalid (logged)
 */
static bool load_file(char *path, chunk_t keys[SASYNC_KEYS_MAX])
{
	FILE *file;
	char *error;
	bool ok;

	file = fopen(path, "re");
	if (!file)
	{
		DBG1(DBG_APP, "sasync: opening secret_file %s failed: %s", path,
			 strerror(errno));
		return FALSE;
	}
	error = check_file(file);
	if (error)
	{
		DBG1(DBG_APP, "sasync: secret_file %s %s", path, error);
		fclose(file);
		return FALSE;
	}
	ok = parse_file(file, path, keys);
	fclose(file);
	return ok;
}

/*
 * Described in header
 */
void sasync_secret_clear(chunk_t keys[SASYNC_KEYS_MAX])
{
	int i;

	for (i = 0; i < SASYNC_KEYS_MAX; i++)
	{
		chunk_clear(&keys[i]);
	}
}

/**
 * Number of keys loaded, the used ones come first
 */
static int count_keys(chunk_t keys[SASYNC_KEYS_MAX])
{
	int count = 0;

	while (count < SASYNC_KEYS_MAX && keys[count].len)
	{
		count++;
	}
	return count;
}

/*
 * Described in header
 */
int sasync_secret_load(chunk_t keys[SASYNC_KEYS_MAX])
{
	char *path, *secret, *error = "missing";
	int i;

	for (i = 0; i < SASYNC_KEYS_MAX; i++)
	{
		keys[i] = chunk_empty;
	}
	path = lib->settings->get_str(lib->settings,
						"%s.plugins.sasync.secret_file", NULL, lib->ns);
	secret = lib->settings->get_str(lib->settings,
						"%s.plugins.sasync.secret", NULL, lib->ns);
	if (path && *path)
	{
		if (load_file(path, keys))
		{
			return count_keys(keys);
		}
	}
	else if (secret && !(error = sasync_secret_parse(secret, &keys[0])))
	{
		return 1;
	}
	else
	{
		DBG1(DBG_APP, "sasync: charon.plugins.sasync.secret is %s", error);
	}
	sasync_secret_clear(keys);
	DBG1(DBG_APP, "sasync: the sync channel needs a random key of at least "
		 "%d bytes in secret_file; make one with: %s", SASYNC_KEY_MIN,
		 SASYNC_KEY_HOWTO);
	return 0;
}
