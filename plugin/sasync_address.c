/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "sasync_address.h"

#include <errno.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <netinet/in.h>

#include <daemon.h>
#include <collections/array.h>
#include <processing/jobs/callback_job.h>
#include <threading/mutex.h>

typedef struct private_sasync_address_t private_sasync_address_t;

/**
 * A configured cluster address
 */
typedef struct {
	/** the address */
	host_t *host;
	/** its prefix length */
	int prefix;
	/** interface it goes on */
	char *iface;
} addr_t;

/**
 * Private data of a sasync_address_t object.
 */
struct private_sasync_address_t {

	/**
	 * Public interface.
	 */
	sasync_address_t public;

	/**
	 * Configured addresses, addr_t*
	 */
	array_t *addrs;

	/**
	 * Role of this node
	 */
	sasync_role_t *role;

	/**
	 * Counters
	 */
	sasync_counters_t *counters;

	/**
	 * Serializes the changes of the jobs
	 */
	mutex_t *mutex;

	/**
	 * Set on destroy, for jobs still queued
	 */
	bool stopped;

	/**
	 * References: the owner and queued jobs
	 */
	refcount_t ref;
};

/**
 * Drop a reference, freeing with the last
 */
static void address_put(private_sasync_address_t *this)
{
	addr_t *addr;

	if (ref_put(&this->ref))
	{
		while (array_remove(this->addrs, ARRAY_HEAD, &addr))
		{
			addr->host->destroy(addr->host);
			free(addr->iface);
			free(addr);
		}
		array_destroy(this->addrs);
		this->mutex->destroy(this->mutex);
		free(this);
	}
}

/**
 * Announce an IPv4 address with a gratuitous ARP request and reply, so
 * neighbours and switches move to us at once
 */
static void announce(addr_t *addr)
{
	struct sockaddr_ll ll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ARP),
		.sll_halen = ETH_ALEN,
		.sll_addr = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	};
	struct ifreq ifr = {};
	u_char arp[28] = { 0, 1, 8, 0, ETH_ALEN, 4 };
	chunk_t ip = addr->host->get_address(addr->host);
	int fd, op;

	if (addr->host->get_family(addr->host) != AF_INET)
	{	/* IPv6: the kernel's unsolicited NA (ndisc_notify) */
		return;
	}
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	strncpy(ifr.ifr_name, addr->iface, IFNAMSIZ - 1);
	ll.sll_ifindex = if_nametoindex(addr->iface);
	if (fd < 0 || !ll.sll_ifindex || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
	{
		DBG1(DBG_APP, "sasync: no gratuitous ARP for %H on %s: %s",
			 addr->host, addr->iface, strerror(errno));
		if (fd >= 0)
		{
			close(fd);
		}
		return;
	}
	/* sender and target are both us: MAC, IP; target MAC zero (request)
	 * or ours (reply) */
	memcpy(arp + 8, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	memcpy(arp + 14, ip.ptr, 4);
	memcpy(arp + 24, ip.ptr, 4);
	for (op = 1; op <= 2; op++)
	{
		arp[7] = op;
		memset(arp + 18, 0, ETH_ALEN);
		if (op == 2)
		{
			memcpy(arp + 18, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
		}
		if (sendto(fd, arp, sizeof(arp), 0, (struct sockaddr*)&ll,
				   sizeof(ll)) < 0)
		{
			DBG1(DBG_APP, "sasync: gratuitous ARP for %H on %s failed: %s",
				 addr->host, addr->iface, strerror(errno));
		}
	}
	close(fd);
}

/**
 * Whether an address is on one of our interfaces
 */
static bool present(addr_t *addr)
{
	return charon->kernel->get_interface(charon->kernel, addr->host, NULL);
}

/**
 * Add or delete an address with one rtnetlink request. Not through
 * charon->kernel->add_ip(): that installs virtual IPs, on the interface of
 * install_virtual_ip_on if set (kernel-libipsec sets its TUN device), not at
 * all with install_virtual_ip = no, and never deletes addresses it did not
 * add; a cluster address must go exactly where configured.
 */
static bool manage(addr_t *addr, int type)
{
	struct {
		struct nlmsghdr hdr;
		struct ifaddrmsg ifa;
		u_char attrs[64];
	} req = {
		.hdr = {
			.nlmsg_type = type,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
						   (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_REPLACE : 0),
			.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
		},
		.ifa = {
			.ifa_family = addr->host->get_family(addr->host),
			.ifa_prefixlen = addr->prefix,
			.ifa_index = if_nametoindex(addr->iface),
		},
	};
	struct {
		struct nlmsghdr hdr;
		struct nlmsgerr err;
	} ack;
	chunk_t ip = addr->host->get_address(addr->host);
	struct rtattr *rta;
	int fd, i, types[] = { IFA_LOCAL, IFA_ADDRESS };
	bool ok = FALSE;

	for (i = 0; i < countof(types); i++)
	{
		rta = (struct rtattr*)((u_char*)&req + NLMSG_ALIGN(req.hdr.nlmsg_len));
		rta->rta_type = types[i];
		rta->rta_len = RTA_LENGTH(ip.len);
		memcpy(RTA_DATA(rta), ip.ptr, ip.len);
		req.hdr.nlmsg_len = NLMSG_ALIGN(req.hdr.nlmsg_len) + rta->rta_len;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd >= 0 && req.ifa.ifa_index &&
		send(fd, &req, req.hdr.nlmsg_len, 0) == req.hdr.nlmsg_len &&
		recv(fd, &ack, sizeof(ack), 0) >= (ssize_t)sizeof(ack) &&
		ack.hdr.nlmsg_type == NLMSG_ERROR)
	{
		ok = !ack.err.error;
		errno = -ack.err.error;
	}
	if (fd >= 0)
	{
		close(fd);
	}
	if (ok)
	{
		DBG1(DBG_APP, "sasync: cluster address %H/%d %s %s", addr->host,
			 addr->prefix, type == RTM_NEWADDR ? "added on" : "removed from",
			 addr->iface);
	}
	else
	{
		DBG1(DBG_APP, "sasync: %s cluster address %H/%d on %s failed: %s",
			 type == RTM_NEWADDR ? "adding" : "removing", addr->host,
			 addr->prefix, addr->iface, strerror(errno));
	}
	return ok;
}

/**
 * Put the addresses where the role says; check is TRUE for the periodic
 * check, which counts what it finds wrong
 */
static void sync_addresses(private_sasync_address_t *this,
						   sasync_role_state_t role, bool check)
{
	addr_t *addr;
	bool primary;
	int i;

	this->mutex->lock(this->mutex);
	primary = role == SASYNC_ROLE_PRIMARY;
	for (i = 0; i < array_count(this->addrs); i++)
	{
		array_get(this->addrs, i, &addr);
		if (present(addr) == primary)
		{
			continue;
		}
		if (check)
		{
			DBG1(DBG_APP, "sasync: cluster address %H is %s this %N node, "
				 "repairing", addr->host, primary ? "missing on" : "left on",
				 sasync_role_names, role);
			this->counters->inc(this->counters, SASYNC_CTR_ADDRESS_REPAIRS);
		}
		if (manage(addr, primary ? RTM_NEWADDR : RTM_DELADDR) && primary)
		{
			announce(addr);
		}
	}
	this->mutex->unlock(this->mutex);
}

/**
 * Job checking the addresses, rescheduling itself
 */
static job_requeue_t check_job(private_sasync_address_t *this)
{
	if (this->stopped)
	{
		return JOB_REQUEUE_NONE;
	}
	sync_addresses(this, this->role->get(this->role), TRUE);
	return JOB_RESCHEDULE(SASYNC_ADDRESS_CHECK);
}

/**
 * Queue the check job, holding a reference
 */
static void queue_check(private_sasync_address_t *this)
{
	ref_get(&this->ref);
	lib->processor->queue_job(lib->processor,
			(job_t*)callback_job_create_with_prio((callback_job_cb_t)check_job,
								this, (void*)address_put,
								(callback_job_cancel_t)return_false,
								JOB_PRIO_CRITICAL));
}

/**
 * Role changes: move the addresses at once, before a promotion activates
 * the SAs, whose first messages (RFC 6311) leave from these addresses. An
 * rtnetlink request is answered in a moment.
 */
static void role_changed(private_sasync_address_t *this,
						 sasync_role_state_t role, char *reason)
{
	sync_addresses(this, role, FALSE);
}

/**
 * Parse one "address[/prefix]@interface", FALSE if invalid (logged)
 */
static bool parse_addr(private_sasync_address_t *this, char *str)
{
	char *at = strchr(str, '@');
	host_t *host = NULL;
	int prefix = -1;
	addr_t *addr;

	if (at && at[1])
	{
		*at = '\0';
		host = host_create_from_subnet(str, &prefix);
		if (host && !strchr(str, '/'))
		{
			prefix = host->get_family(host) == AF_INET ? 32 : 128;
		}
		*at = '@';
	}
	if (!host || strlen(at + 1) >= IFNAMSIZ)
	{
		DBG1(DBG_APP, "sasync: invalid cluster address '%s' (expected "
			 "address[/prefix]@interface)", str);
		DESTROY_IF(host);
		return FALSE;
	}
	INIT(addr,
		.host = host,
		.prefix = prefix,
		.iface = strdup(at + 1),
	);
	array_insert(this->addrs, ARRAY_TAIL, addr);
	return TRUE;
}

METHOD(sasync_address_t, destroy, void,
	private_sasync_address_t *this)
{
	this->stopped = TRUE;
	address_put(this);
}

/*
 * Described in header
 */
sasync_address_t *sasync_address_create(char *addresses, sasync_role_t *role,
										sasync_counters_t *counters)
{
	private_sasync_address_t *this;
	enumerator_t *enumerator;
	char *token;
	bool ok = TRUE;

	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.addrs = array_create(0, 0),
		.role = role,
		.counters = counters,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.ref = 1,
	);
	enumerator = enumerator_create_token(addresses, ",", " ");
	while (ok && enumerator->enumerate(enumerator, &token))
	{
		ok = parse_addr(this, token);
	}
	enumerator->destroy(enumerator);
	if (!ok || !array_count(this->addrs))
	{
		destroy(this);
		return NULL;
	}
	role->add_listener(role, (void*)role_changed, this);
	queue_check(this);
	return &this->public;
}
