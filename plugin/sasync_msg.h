/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup sasync_msg sasync_msg
 * @{ @ingroup sasync
 */

#ifndef SASYNC_MSG_H_
#define SASYNC_MSG_H_

#include <library.h>
#include <networking/host.h>
#include <utils/identification.h>
#include <selectors/traffic_selector.h>
#include <crypto/proposal/proposal.h>
#include <ipsec/ipsec_types.h>

typedef struct sasync_msg_t sasync_msg_t;
typedef enum sasync_msg_type_t sasync_msg_type_t;
typedef enum sasync_attr_t sasync_attr_t;

/** version of the record format, carried in the record header */
#define SASYNC_MSG_VERSION 1

/**
 * Record types of the sync protocol.
 */
enum sasync_msg_type_t {
	/** IKE SA created or updated (upsert); with OLD_SPI_I/R it replaces
	 * that SA (IKEv2 rekey, IKEv1 reauthentication) */
	SASYNC_MSG_IKE_ADD = 1,
	/** IKE message IDs after an exchange */
	SASYNC_MSG_IKE_MID = 2,
	/** IKE SA rekeyed: CHILD SAs move from the old to the new one (no
	 * longer sent: the IKE_ADD of an SA names the SA it replaces, with
	 * OLD_SPI_I/R; still applied) */
	SASYNC_MSG_IKE_REKEYED = 3,
	/** IKE SA gone */
	SASYNC_MSG_IKE_DELETE = 4,
	/** CHILD SA installed */
	SASYNC_MSG_CHILD_ADD = 5,
	/** CHILD SA gone */
	SASYNC_MSG_CHILD_DELETE = 6,
	/** ask the active node for a full resync */
	SASYNC_MSG_RESYNC_REQUEST = 7,
	/** end of a full resync */
	SASYNC_MSG_RESYNC_DONE = 8,
	/** CHILD SA the active node proposes (its inbound SPI) in an exchange
	 * it started: the peer may install it before the answer comes back */
	SASYNC_MSG_CHILD_PENDING = 9,
	/** CHILD SA rekeyed: its successor is installed, it lingers until it is
	 * deleted (IKEv1 keeps it until it expires) */
	SASYNC_MSG_CHILD_REKEYED = 10,
	/** start of a full resync: SAs a standby holds passive that the resync
	 * does not name are gone on the primary */
	SASYNC_MSG_RESYNC_START = 11,
	SASYNC_MSG_TYPE_MAX,
};

extern enum_name_t *sasync_msg_type_names;

/**
 * Attribute types, by their number on the wire; each has a fixed value kind
 * (sasync_msg.c) the decoder enforces. Numbers are never reused or
 * renumbered: a record written by an older version must parse the same, and
 * new attributes get new numbers (unit test msg pins them).
 */
enum sasync_attr_t {
	/* u64 */
	SASYNC_ATTR_IKE_SPI_I = 1,
	SASYNC_ATTR_IKE_SPI_R = 2,
	SASYNC_ATTR_OLD_SPI_I = 3,
	SASYNC_ATTR_OLD_SPI_R = 4,
	SASYNC_ATTR_TIMESTAMP = 5,
	/* u8 */
	SASYNC_ATTR_IKE_VERSION = 6,
	SASYNC_ATTR_IKE_INITIATOR = 7,
	SASYNC_ATTR_CHILD_INITIATOR = 8,
	SASYNC_ATTR_PROTOCOL = 9,
	SASYNC_ATTR_MODE = 10,
	SASYNC_ATTR_ENCAP = 11,
	SASYNC_ATTR_IPCOMP = 12,
	/* u16 */
	SASYNC_ATTR_OLD_PRF = 13,
	SASYNC_ATTR_AUTH_METHOD = 14,
	SASYNC_ATTR_CPI_IN = 15,
	SASYNC_ATTR_CPI_OUT = 16,
	/* u32 */
	SASYNC_ATTR_EXTENSIONS = 17,
	SASYNC_ATTR_CONDITIONS = 18,
	SASYNC_ATTR_MID_I = 19,
	SASYNC_ATTR_MID_R = 20,
	SASYNC_ATTR_UNIQUE = 21,
	SASYNC_ATTR_SPI_IN = 22,
	SASYNC_ATTR_SPI_OUT = 23,
	SASYNC_ATTR_REQID = 24,
	SASYNC_ATTR_IF_ID_IN = 25,
	SASYNC_ATTR_IF_ID_OUT = 26,
	/* mark: u32 value, u32 mask */
	SASYNC_ATTR_MARK_IN = 27,
	SASYNC_ATTR_MARK_OUT = 28,
	/* string */
	SASYNC_ATTR_NAME = 29,
	SASYNC_ATTR_CHILD_NAME = 30,
	/* opaque bytes (keys and key inputs) */
	SASYNC_ATTR_NONCE_I = 31,
	SASYNC_ATTR_NONCE_R = 32,
	SASYNC_ATTR_SECRET = 33,
	SASYNC_ATTR_OLD_SKD = 34,
	SASYNC_ATTR_ENCR_IN = 35,
	SASYNC_ATTR_INTEG_IN = 36,
	SASYNC_ATTR_ENCR_OUT = 37,
	SASYNC_ATTR_INTEG_OUT = 38,
	/** IKEv1: our and the peer's key exchange public values */
	SASYNC_ATTR_LOCAL_KE = 39,
	SASYNC_ATTR_REMOTE_KE = 40,
	/** IKEv1: the pre-shared key the keys are derived with */
	SASYNC_ATTR_PSK = 41,
	/** IKEv1: phase 1 IV (last CBC block) */
	SASYNC_ATTR_IV = 42,
	/* host: u8 family, address, u16 port */
	SASYNC_ATTR_LOCAL_HOST = 43,
	SASYNC_ATTR_REMOTE_HOST = 44,
	SASYNC_ATTR_LOCAL_VIP = 45,
	SASYNC_ATTR_REMOTE_VIP = 46,
	/* identity: u8 type, data */
	SASYNC_ATTR_LOCAL_ID = 47,
	SASYNC_ATTR_REMOTE_ID = 48,
	/** EAP or XAuth identity of the peer (the identity its lease is for) */
	SASYNC_ATTR_REMOTE_EAP_ID = 49,
	/* proposal: u8 protocol, u8 number, (u16 type, u16 alg, u16 size)* */
	SASYNC_ATTR_PROPOSAL = 50,
	/* traffic selector: u8 type, u8 proto, u16 from, u16 to, from, to */
	SASYNC_ATTR_LOCAL_TS = 51,
	SASYNC_ATTR_REMOTE_TS = 52,
	/** IKE SAs a bulk resync goes through (RESYNC_START) */
	SASYNC_ATTR_RESYNC_TOTAL = 53,
	/** sent by a demoted node about an SA it still acted on (an exchange in
	 * flight at the demotion): the primary applies it too */
	SASYNC_ATTR_HANDOVER = 54,
	SASYNC_ATTR_MAX,
};

extern enum_name_t *sasync_attr_names;

/**
 * A sync record: a type and a list of typed attributes.
 *
 * Encoding (big endian): u8 version, u8 type, u16 attribute count, then
 * per attribute u16 type, u16 length, value. The decoder is strict: any
 * inconsistent length, unknown type or value of the wrong size rejects the
 * whole record.
 */
struct sasync_msg_t {

	/**
	 * Get the record type.
	 */
	sasync_msg_type_t (*get_type)(sasync_msg_t *this);

	/**
	 * Add an integer attribute; the attribute's kind gives its width.
	 */
	void (*add_int)(sasync_msg_t *this, sasync_attr_t attr, uint64_t value);

	/**
	 * Add a bytes or string attribute (strings without terminator).
	 */
	void (*add_chunk)(sasync_msg_t *this, sasync_attr_t attr, chunk_t value);

	/**
	 * Add a host (address and port).
	 */
	void (*add_host)(sasync_msg_t *this, sasync_attr_t attr, host_t *host);

	/**
	 * Add an identity.
	 */
	void (*add_id)(sasync_msg_t *this, sasync_attr_t attr,
				   identification_t *id);

	/**
	 * Add a proposal (its first algorithm of each transform type).
	 */
	void (*add_proposal)(sasync_msg_t *this, sasync_attr_t attr,
						 proposal_t *proposal);

	/**
	 * Add a traffic selector.
	 */
	void (*add_ts)(sasync_msg_t *this, sasync_attr_t attr,
				   traffic_selector_t *ts);

	/**
	 * Add a mark (value and mask).
	 */
	void (*add_mark)(sasync_msg_t *this, sasync_attr_t attr, mark_t mark);

	/**
	 * Get the first integer attribute of a type.
	 *
	 * @return			TRUE if present
	 */
	bool (*get_int)(sasync_msg_t *this, sasync_attr_t attr, uint64_t *value);

	/**
	 * Get the first bytes/string attribute of a type (points into the
	 * record).
	 */
	bool (*get_chunk)(sasync_msg_t *this, sasync_attr_t attr, chunk_t *value);

	/**
	 * Get the first string attribute as an allocated, terminated string.
	 *
	 * @return			string, NULL if absent
	 */
	char* (*get_string)(sasync_msg_t *this, sasync_attr_t attr);

	/**
	 * Get the first host attribute of a type.
	 *
	 * @return			new host, NULL if absent
	 */
	host_t* (*get_host)(sasync_msg_t *this, sasync_attr_t attr);

	/**
	 * Get the first identity attribute of a type.
	 *
	 * @return			new identity, NULL if absent
	 */
	identification_t* (*get_id)(sasync_msg_t *this, sasync_attr_t attr);

	/**
	 * Get the first proposal attribute of a type.
	 *
	 * @return			new proposal, NULL if absent
	 */
	proposal_t* (*get_proposal)(sasync_msg_t *this, sasync_attr_t attr);

	/**
	 * Get the first mark attribute of a type.
	 */
	bool (*get_mark)(sasync_msg_t *this, sasync_attr_t attr, mark_t *mark);

	/**
	 * Enumerate all hosts of a type (host_t*, owned by the enumerator).
	 */
	enumerator_t* (*create_host_enumerator)(sasync_msg_t *this,
											sasync_attr_t attr);

	/**
	 * Enumerate all traffic selectors of a type (traffic_selector_t*,
	 * owned by the enumerator).
	 */
	enumerator_t* (*create_ts_enumerator)(sasync_msg_t *this,
										  sasync_attr_t attr);

	/**
	 * Get the encoding of the record (owned by the record).
	 */
	chunk_t (*get_encoding)(sasync_msg_t *this);

	/**
	 * Destroy the record, wiping its (key carrying) encoding.
	 */
	void (*destroy)(sasync_msg_t *this);
};

/**
 * Create an empty record to build.
 */
sasync_msg_t *sasync_msg_create(sasync_msg_type_t type);

/**
 * Parse a received record.
 *
 * @param data		encoding, copied
 * @return			record, NULL if malformed (logged at level 1)
 */
sasync_msg_t *sasync_msg_parse(chunk_t data);

/**
 * Milliseconds since the epoch: the timestamp of records (sync lag) and of
 * heartbeats.
 */
uint64_t sasync_now_ms();

#endif /** SASYNC_MSG_H_ @}*/
