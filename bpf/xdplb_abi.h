/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the XDP program and user space: every map key and value that
 * crosses the kernel/user line, the counter names and the knobs. The addon
 * compiles this same header and reports its sizes, offsets, constants and
 * counter names; the TypeScript codecs (src/dataplane/abi.ts) hold a copy of
 * the layout and the constants, and test/dataplane/abi.test.ts fails if it
 * ever disagrees with that report or with the #defines here.
 * Addresses and ports are in network byte order; everything else is host order.
 */
#ifndef XDPLB_ABI_H
#define XDPLB_ABI_H

#include <linux/types.h>

/* Bumped whenever a pinned map's layout changes. User space records it in the
 * pinned xdplb_abi map (lib/maps.h) and refuses to adopt pins that hold
 * another version, so that an old layout is never misread. A bump makes the
 * upgrade a cold start (detach, counters reset), so state is added without
 * one: a new map is no layout change (a daemon creates and pins the maps not
 * pinned yet beside those it adopts), and a new global counter goes into
 * global_ext (below), never into global_stats. */
#define XDPLB_ABI_VERSION 1

#define XDPLB_FAMILY_IPV4 4
#define XDPLB_FAMILY_IPV6 6

/* Default capacities; user space may override each before load. */
#ifndef XDPLB_MAX_SERVICES
#define XDPLB_MAX_SERVICES 4096
#endif
#ifndef XDPLB_MAX_DESTS
#define XDPLB_MAX_DESTS 65536
#endif
#ifndef XDPLB_MAX_FLOWS
#define XDPLB_MAX_FLOWS 262144
#endif
#ifndef XDPLB_DEFAULT_MAGLEV_SIZE
#define XDPLB_DEFAULT_MAGLEV_SIZE 16381
#endif
/* VIP prefilter: a bitmap of XDPLB_VIP_FILTER_WORDS * 64 bits. */
#define XDPLB_VIP_FILTER_WORDS 1024
/* Service index: 2^XDPLB_SERVICE_INDEX_BITS direct-mapped entries. */
#define XDPLB_SERVICE_INDEX_BITS 18
#define XDPLB_SERVICE_INDEX_COLLISION 0xffffffffU

/* services: (VIP, protocol, destination port) -> service. port 0 is the
 * port-less service of that VIP and protocol. */
struct xdplb_service_key {
	__u8 addr[16];	/* VIP; IPv4 in the first 4 bytes, rest zero (network order) */
	__u16 port;	/* network order; 0 = all ports */
	__u8 proto;	/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;	/* XDPLB_FAMILY_IPV4 / _IPV6 */
};

#define XDPLB_SVC_F_SOURCE_HASH (1U << 0) /* hash the client address only */
#define XDPLB_SVC_F_NO_BACKEND_PASS (1U << 1) /* no backend: XDP_PASS, not drop */

struct xdplb_service {
	__u32 id;	/* index into maglev_tables and service_stats; never 0 */
	__u32 flags;	/* XDPLB_SVC_F_* */
	__u32 seed;	/* per-service hash seed, the same on every director */
	__u32 reserved;
};

/*
 * service_entries[n] holds one service with its key. service_index[h] names
 * the entry of the service whose key hashes to h (service_index_hash()), 0
 * when no service does, or XDPLB_SERVICE_INDEX_COLLISION when several do:
 * then the hash map `services` decides. An entry is written before the
 * index points to it and never changed while it does (a change takes a new
 * entry), so the program always reads a whole one.
 */
struct xdplb_service_entry {
	struct xdplb_service_key key;
	struct xdplb_service service;
};

/* One slot of a service's Maglev table (inner array of maglev_size slots). */
struct xdplb_slot {	/* read and written as one 8-byte word */
	__u32 dest;	 /* destination now owning this slot; 0 = none */
	__u32 prev_dest; /* owner before the last change, 0 = slot unchanged:
			  * flows on a changed slot are looked up in `flows` */
} __attribute__((aligned(8)));

#define XDPLB_DEST_UNUSED 0
#define XDPLB_DEST_ACTIVE 1   /* takes new flows */
#define XDPLB_DEST_DRAINING 2 /* keeps its flows, takes no new ones */

/* dests: destination id -> where to send (one per service and backend). */
struct xdplb_dest {
	__u32 ifindex;	   /* egress interface; 0 = back out of the ingress NIC */
	__u8 mac[6];	   /* backend's MAC: the new destination MAC */
	__u8 src_mac[6];   /* egress NIC's MAC: the new source MAC */
	__u8 state;	   /* XDPLB_DEST_* */
	__u8 reserved[3];
	__u32 service;	   /* the service it belongs to: ids are reused, and a
			    * remembered id must never lead to another service */
};

/*
 * Control-plane records kept beside the data plane (the program never reads
 * them): what a destination and a service are, so that `xdplb status` and a
 * restarted daemon can read everything from the pins.
 */
#define XDPLB_DEST_CONFIGURED_ACTIVE 1
#define XDPLB_DEST_CONFIGURED_DRAINING 2
#define XDPLB_HEALTH_NONE 0 /* no health check */
#define XDPLB_HEALTH_UP 1
#define XDPLB_HEALTH_DOWN 2

struct xdplb_dest_info {
	__u8 addr[16];	  /* backend address (network order) */
	__u32 service;	  /* id of the service it belongs to; 0 = slot free */
	__u32 weight;	  /* configured weight */
	__u8 family;	  /* XDPLB_FAMILY_* */
	__u8 configured;  /* XDPLB_DEST_CONFIGURED_*: what the operator asked */
	__u8 health;	  /* XDPLB_HEALTH_*: the health checks' verdict */
	__u8 reserved;
};

#define XDPLB_SERVICE_NAME_LEN 64

struct xdplb_service_info {
	char name[XDPLB_SERVICE_NAME_LEN]; /* NUL-padded, at most 63 bytes: a longer
					    * name is cut to its beginning, "~" and
					    * a hash of the whole */
	__u32 entry;			   /* service_entries slot in use */
	__u32 table_sig;		   /* what the table was built from (a hash,
					    * never 0), written after the table;
					    * 0: unknown or being rewritten */
};

/* flows: the 5-tuple of a flow on a changed slot -> its destination. */
struct xdplb_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;	/* network order */
	__u16 dport;	/* network order */
	__u8 proto;
	__u8 family;
	__u8 reserved[2];
};

struct xdplb_flow {
	__u32 dest;
	__u32 service;
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns() of the last packet */
};

/*
 * The ownership gate (lib/owner.h): owned_vips holds the VIPs this director
 * holds on its NIC, vip_owner until when it may claim them. An ARP request or
 * a neighbour solicitation for an owned VIP reaches the kernel (which answers
 * it) only while vip_owner's deadline lies ahead, so that a director whose
 * daemon died stops claiming its VIPs by itself.
 */
struct xdplb_vip_key {
	__u8 addr[16];	  /* IPv4 in the first 4 bytes, rest zero (network order),
			   * as in xdplb_service_key */
	__u8 family;	  /* XDPLB_FAMILY_IPV4 / _IPV6 */
	__u8 reserved[3]; /* zero */
};

/* vip_owner's one entry, read and written as one 8-byte word (an mmapable
 * array: user space stores it atomically). */
struct xdplb_vip_owner {
	__u64 until_ns;	/* CLOCK_MONOTONIC (bpf_ktime_get_ns(), Node's
			 * process.hrtime.bigint()): the VIPs are claimed while
			 * now < until_ns. 0: not owned (claimed never);
			 * XDPLB_VIP_OWNER_FOREVER: claimed always */
} __attribute__((aligned(8)));

#define XDPLB_VIP_OWNER_FOREVER (~0ULL) /* UINT64_MAX: a director without redundancy */

/* ingress_mac's one entry: the MAC of the NIC the program is attached to,
 * written by the daemon when it attaches or adopts the program. Read and
 * written as one 8-byte word (an mmapable array: user space stores it
 * atomically). A packet for a service is forwarded only when its
 * destination MAC is this one (lib/ingress_mac.h); all zero: unset, every
 * destination forwarded (a data plane no daemon has attached). */
struct xdplb_ingress_mac {
	__u8 mac[6];	  /* the NIC's MAC, as on the wire */
	__u8 reserved[2]; /* zero */
} __attribute__((aligned(8)));

/* Per-CPU traffic counters, for a service and for a destination. */
struct xdplb_traffic {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows; /* TCP SYNs and flows created in the flow table */
};

/* Global per-CPU counters: one array of __u64 indexed by this list, in the
 * pinned global_stats. Frozen at ABI 1 (17 counters, asserted below): one
 * more would change the value size of a pinned map. Add to
 * XDPLB_GLOBAL_EXT_STATS instead. */
#define XDPLB_GLOBAL_STATS(X)                                                  \
	X(TX, "xdp_tx")                                                        \
	X(REDIRECT, "xdp_redirect")                                            \
	X(PASS_NOT_VIP, "pass_not_vip")                                        \
	X(PASS_NO_BACKEND, "pass_no_backend")                                  \
	X(PASS_UNSUPPORTED, "pass_unsupported")                                \
	X(DROP_NO_BACKEND, "drop_no_backend")                                  \
	X(DROP_MALFORMED, "drop_malformed")                                    \
	X(DROP_FRAGMENT, "drop_fragment")                                      \
	X(DROP_NO_TABLE, "drop_no_table")                                      \
	X(ABORTED, "aborted")                                                  \
	X(FLOW_HIT, "flow_hit")                                                \
	X(FLOW_MISS, "flow_miss")                                              \
	X(FLOW_INSERT_FAILED, "flow_insert_failed")                            \
	X(ICMP_ERROR_STEERED, "icmp_error_steered")                            \
	X(FRAGMENT, "fragment")                                                \
	X(IPV6_EXT_UNKNOWN, "ipv6_ext_unknown")                                \
	X(SERVICE_SLOW_LOOKUP, "service_slow_lookup")

#define XDPLB_STAT_ENUM(name, text) XDPLB_STAT_##name,
enum xdplb_global_stat { XDPLB_GLOBAL_STATS(XDPLB_STAT_ENUM) XDPLB_STAT__COUNT };
#undef XDPLB_STAT_ENUM

struct xdplb_global {
	__u64 count[XDPLB_STAT__COUNT];
};

/*
 * Global per-CPU counters added after ABI 1, in global_ext: one entry of
 * XDPLB_GLOBAL_EXT_SLOTS __u64 slots, the first XDPLB_EXT_STAT__COUNT named
 * by this list, the rest spare (0). APPEND-ONLY: a new counter goes at the
 * end and takes the next spare slot, so the pinned layout never changes: a
 * program that does not know a slot leaves it 0, user space that does not
 * know it does not read it. Never remove, reorder or insert one (a slot's
 * index is its identity in the pins: a retired counter keeps its place).
 * Changing XDPLB_GLOBAL_EXT_SLOTS changes the layout (bump the ABI). The
 * names share one namespace with XDPLB_GLOBAL_STATS'; the enumerators are
 * XDPLB_EXT_STAT_*, never an index of global_stats.
 */
#define XDPLB_GLOBAL_EXT_SLOTS 64
#define XDPLB_GLOBAL_EXT_STATS(X)                                              \
	X(PASS_NEIGH_OWNED, "pass_neigh_owned")                                \
	X(DROP_NEIGH_EXPIRED, "drop_neigh_expired")                            \
	X(PASS_NOT_OUR_MAC, "pass_not_our_mac")

#define XDPLB_EXT_STAT_ENUM(name, text) XDPLB_EXT_STAT_##name,
enum xdplb_global_ext_stat { XDPLB_GLOBAL_EXT_STATS(XDPLB_EXT_STAT_ENUM) XDPLB_EXT_STAT__COUNT };
#undef XDPLB_EXT_STAT_ENUM

struct xdplb_global_ext {
	__u64 count[XDPLB_GLOBAL_EXT_SLOTS];
};

/* Build-time layout checks; the addon exports the same sizes to TypeScript. */
#ifdef __cplusplus
#define _Static_assert static_assert
#endif
_Static_assert(sizeof(struct xdplb_service_key) == 20, "service key");
_Static_assert(sizeof(struct xdplb_service) == 16, "service");
_Static_assert(sizeof(struct xdplb_service_entry) == 36, "service entry");
_Static_assert(sizeof(struct xdplb_slot) == 8, "slot");
_Static_assert(sizeof(struct xdplb_dest) == 24, "dest");
_Static_assert(sizeof(struct xdplb_dest_info) == 28, "dest info");
_Static_assert(sizeof(struct xdplb_service_info) == 72, "service info");
_Static_assert(sizeof(struct xdplb_flow_key) == 40, "flow key");
_Static_assert(sizeof(struct xdplb_flow) == 16, "flow");
_Static_assert(sizeof(struct xdplb_traffic) == 24, "traffic");
_Static_assert(sizeof(struct xdplb_vip_key) == 20, "vip key");
_Static_assert(sizeof(struct xdplb_vip_owner) == 8, "vip owner");
_Static_assert(sizeof(struct xdplb_ingress_mac) == 8, "ingress mac");
_Static_assert(sizeof(struct xdplb_global) == 8 * 17, "global: frozen at ABI 1, add to XDPLB_GLOBAL_EXT_STATS");
_Static_assert(XDPLB_EXT_STAT__COUNT <= XDPLB_GLOBAL_EXT_SLOTS, "global_ext: no spare slot left");
_Static_assert(sizeof(struct xdplb_global_ext) == 512, "global ext");

#endif /* XDPLB_ABI_H */
