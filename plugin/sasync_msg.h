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
	/** IKE SA created or updated (upsert) */
	SASYNC_MSG_IKE_ADD = 1,
	/** IKE message IDs after an exchange */
	SASYNC_MSG_IKE_MID = 2,
	/** IKE SA rekeyed: CHILD SAs move from the old to the new one */
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
	SASYNC_MSG_TYPE_MAX,
};

extern enum_name_t *sasync_msg_type_names;

/**
 * Attribute types; each has a fixed value kind the decoder enforces.
 */
enum sasync_attr_t {
	/* u64 */
	SASYNC_ATTR_IKE_SPI_I = 1,
	SASYNC_ATTR_IKE_SPI_R,
	SASYNC_ATTR_OLD_SPI_I,
	SASYNC_ATTR_OLD_SPI_R,
	SASYNC_ATTR_TIMESTAMP,
	/* u8 */
	SASYNC_ATTR_IKE_VERSION,
	SASYNC_ATTR_IKE_INITIATOR,
	SASYNC_ATTR_CHILD_INITIATOR,
	SASYNC_ATTR_PROTOCOL,
	SASYNC_ATTR_MODE,
	SASYNC_ATTR_ENCAP,
	SASYNC_ATTR_IPCOMP,
	/* u16 */
	SASYNC_ATTR_OLD_PRF,
	SASYNC_ATTR_AUTH_METHOD,
	SASYNC_ATTR_CPI_IN,
	SASYNC_ATTR_CPI_OUT,
	/* u32 */
	SASYNC_ATTR_EXTENSIONS,
	SASYNC_ATTR_CONDITIONS,
	SASYNC_ATTR_MID_I,
	SASYNC_ATTR_MID_R,
	SASYNC_ATTR_UNIQUE,
	SASYNC_ATTR_SPI_IN,
	SASYNC_ATTR_SPI_OUT,
	SASYNC_ATTR_REQID,
	SASYNC_ATTR_IF_ID_IN,
	SASYNC_ATTR_IF_ID_OUT,
	/* mark: u32 value, u32 mask */
	SASYNC_ATTR_MARK_IN,
	SASYNC_ATTR_MARK_OUT,
	/* string */
	SASYNC_ATTR_NAME,
	SASYNC_ATTR_CHILD_NAME,
	/* opaque bytes (keys and key inputs) */
	SASYNC_ATTR_NONCE_I,
	SASYNC_ATTR_NONCE_R,
	SASYNC_ATTR_SECRET,
	SASYNC_ATTR_OLD_SKD,
	SASYNC_ATTR_ENCR_IN,
	SASYNC_ATTR_INTEG_IN,
	SASYNC_ATTR_ENCR_OUT,
	SASYNC_ATTR_INTEG_OUT,
	/** IKEv1: our and the peer's key exchange public values */
	SASYNC_ATTR_LOCAL_KE,
	SASYNC_ATTR_REMOTE_KE,
	/** IKEv1: the pre-shared key the keys are derived with */
	SASYNC_ATTR_PSK,
	/** IKEv1: phase 1 IV (last CBC block) */
	SASYNC_ATTR_IV,
	/* host: u8 family, address, u16 port */
	SASYNC_ATTR_LOCAL_HOST,
	SASYNC_ATTR_REMOTE_HOST,
	SASYNC_ATTR_LOCAL_VIP,
	SASYNC_ATTR_REMOTE_VIP,
	/* identity: u8 type, data */
	SASYNC_ATTR_LOCAL_ID,
	SASYNC_ATTR_REMOTE_ID,
	/** EAP or XAuth identity of the peer (the identity its lease is for) */
	SASYNC_ATTR_REMOTE_EAP_ID,
	/* proposal: u8 protocol, u8 number, (u16 type, u16 alg, u16 size)* */
	SASYNC_ATTR_PROPOSAL,
	/* traffic selector: u8 type, u8 proto, u16 from, u16 to, from, to */
	SASYNC_ATTR_LOCAL_TS,
	SASYNC_ATTR_REMOTE_TS,
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
