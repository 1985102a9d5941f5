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
#include <credentials/keys/shared_key.h>

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

/**
 * Check that a key is long and random enough, NULL if so, else why not
 */
static char *check_key(chunk_t key)
{
	if (key.len < SASYNC_KEY_MIN)
	{
		return "shorter than 32 bytes";
	}
	if (distinct_bytes(key) < DISTINCT_MIN)
	{
		return "not random (too few distinct bytes)";
	}
	return NULL;
}

/*
 * Described in header
 */
char *sasync_secret_parse(char *str, chunk_t *key)
{
	chunk_t text, decoded;
	char *error;

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
	error = check_key(decoded);
	if (error)
	{
		chunk_clear(&decoded);
		return error;
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
/**
 * A key setting, NULL if not set or empty
 */
static char *key_setting(char *name)
{
	char *value;

	value = lib->settings->get_str(lib->settings, "%s.plugins.sasync.%s",
								   NULL, lib->ns, name);
	return value && *value ? value : NULL;
}

/*
 * Described in header
 */
identification_t *sasync_secret_id()
{
	char *id = key_setting("secret_id");

	if (!id || key_setting("secret") || key_setting("secret_file"))
	{	/* several sources are refused by sasync_secret_load() */
		return NULL;
	}
	return identification_create_from_string(id);
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
	path = key_setting("secret_file");
	secret = key_setting("secret");
	if (!!path + !!secret + !!key_setting("secret_id") > 1)
	{
		DBG1(DBG_APP, "sasync: several key sources set, set only one of "
			 "secret_file, secret and secret_id");
		return 0;
	}
	if (path)
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

/*
 * Described in header
 */
int sasync_secret_lookup(identification_t *id, chunk_t keys[SASYNC_KEYS_MAX],
						 int *weak)
{
	enumerator_t *enumerator;
	shared_key_t *shared;
	id_match_t match;
	int count = 0;

	*weak = 0;
	memset(keys, 0, sizeof(chunk_t) * SASYNC_KEYS_MAX);
	enumerator = lib->credmgr->create_shared_enumerator(lib->credmgr,
												SHARED_IKE, id, NULL);
	while (count < SASYNC_KEYS_MAX &&
		   enumerator->enumerate(enumerator, &shared, &match, NULL))
	{	/* only keys of this id: not a wildcard or any IKE PSK without id */
		if (match != ID_MATCH_PERFECT)
		{
			continue;
		}
		if (check_key(shared->get_key(shared)))
		{
			(*weak)++;
			continue;
		}
		keys[count++] = chunk_clone(shared->get_key(shared));
	}
	enumerator->destroy(enumerator);
	return count;
}

typedef struct private_sasync_secret_creds_t private_sasync_secret_creds_t;

/**
 * Private data of a sasync_secret_creds_t
 */
struct private_sasync_secret_creds_t {

	/** public interface */
	sasync_secret_creds_t public;

	/** identity owning the keys */
	identification_t *id;

	/** counters to update */
	sasync_counters_t *counters;

	/** keys and weak keys found by the last lookup, -1 before the first */
	int found, weak;
};

METHOD(sasync_secret_creds_t, get_keys, int,
	private_sasync_secret_creds_t *this, chunk_t keys[SASYNC_KEYS_MAX])
{
	int count, weak;

	count = sasync_secret_lookup(this->id, keys, &weak);
	if (!count)
	{
		this->counters->inc(this->counters, SASYNC_CTR_SYNC_NO_KEY);
	}
	if (count == this->found && weak == this->weak)
	{	/* looked up for every handshake: log changes only */
		return count;
	}
	this->found = count;
	this->weak = weak;
	if (weak)
	{
		DBG1(DBG_APP, "sasync: %d key%s of '%Y' in charon's credentials "
			 "refused: shorter than %d bytes or not random; make one with: "
			 "echo \"0s$(head -c 32 /dev/urandom | base64)\"", weak,
			 weak > 1 ? "s" : "", this->id, SASYNC_KEY_MIN);
	}
	if (count)
	{
		DBG1(DBG_APP, "sasync: %d sync key%s of '%Y' in charon's credentials",
			 count, count > 1 ? "s" : "", this->id);
	}
	else
	{
		DBG1(DBG_APP, "sasync: no valid sync key of '%Y' in charon's "
			 "credentials (swanctl.conf: secrets { ike-sasync { id = %Y "
			 "secret = 0s... } }, then swanctl --load-creds), sync link down",
			 this->id, this->id);
	}
	return count;
}

METHOD(sasync_secret_creds_t, destroy_creds, void,
	private_sasync_secret_creds_t *this)
{
	this->id->destroy(this->id);
	free(this);
}

/*
 * Described in header
 */
sasync_secret_creds_t *sasync_secret_creds_create(identification_t *id,
												  sasync_counters_t *counters)
{
	private_sasync_secret_creds_t *this;

	INIT(this,
		.public = {
			.get_keys = _get_keys,
			.destroy = _destroy_creds,
		},
		.id = id,
		.counters = counters,
		.found = -1,
		.weak = -1,
	);
	return &this->public;
}
