/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the data plane, and count_ext() for the counters of
 * global_ext. Keys and values are the ABI structs of xdplb_abi.h; user space
 * sizes the capacities before load and pins all of them, so that a restart
 * or a new program version keeps state and counters. A pinned map keeps its
 * layout for as long as the ABI version stays: new state takes a new map.
 */
#ifndef XDPLB_MAPS_H
#define XDPLB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "../xdplb_abi.h"

/* ABI version of the pinned layout (one entry, written by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xdplb_abi SEC(".maps");

/* VIP prefilter: bit vip_filter_bit(daddr) set for every VIP. A clear bit
 * sends the packet to the kernel without a hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} vip_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << XDPLB_SERVICE_INDEX_BITS);
	__type(key, __u32);
	__type(value, __u32);
} service_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * XDPLB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct xdplb_service_entry);
} service_entries SEC(".maps");

/* Every service by key: authoritative, read by the program only when the
 * index reports a collision. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPLB_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdplb_service_key);
	__type(value, struct xdplb_service);
} services SEC(".maps");

/* A service's Maglev table; user space creates one per table version and
 * swaps it into maglev_tables whole. */
struct maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_DEFAULT_MAGLEV_SIZE);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct xdplb_slot)); /* libbpf 1.1 cannot size a __type here */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPLB_MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct maglev_table);
} maglev_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct xdplb_dest);
} dests SEC(".maps");

/* Control-plane records, by destination id and by service id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct xdplb_dest_info);
} dest_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct xdplb_service_info);
} service_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPLB_MAX_FLOWS);
	__type(key, struct xdplb_flow_key);
	__type(value, struct xdplb_flow);
} flows SEC(".maps");

/* The kernel adds BPF_F_RDONLY_PROG to a devmap's flags: the addon's reuse
 * check of pinned maps ignores that flag (libbpf's own would refuse). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

/* The ownership gate (lib/owner.h): the VIPs this director holds on its NIC
 * (a set: the value is 0), and until when it claims them. A VIP serves at
 * least one service, so there are no more of them than services. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPLB_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdplb_vip_key);
	__type(value, __u32);
} owned_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xdplb_vip_owner);
} vip_owner SEC(".maps");

/* The MAC of the NIC the program is attached to (lib/ingress_mac.h): only
 * frames sent to it are forwarded. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xdplb_ingress_mac);
} ingress_mac SEC(".maps");

/* Every VIP some service has (a set: the value is 0), exact: the prefilter
 * only says "maybe". Consulted on the slow paths only (a malformed or
 * fragmented packet, a protocol no service balances, an ICMP message), so
 * that a frame for an address that merely shares a VIP's prefilter bit is
 * passed as not for a VIP. Written by user space after every change of the
 * set of services (DataPlane.syncVipSet). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPLB_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdplb_vip_key);
	__type(value, __u32);
} vip_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct xdplb_traffic);
} service_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct xdplb_traffic);
} dest_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdplb_global);
} global_stats SEC(".maps");

/* Global counters added after ABI 1 (XDPLB_GLOBAL_EXT_STATS, append-only). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdplb_global_ext);
} global_ext SEC(".maps");

/* Counts s in global_ext and returns verdict. One map lookup per call: fine
 * off the fast path; a fast-path caller would look the entry up once. */
static __always_inline int count_ext(enum xdplb_global_ext_stat s, int verdict)
{
	__u32 zero = 0;
	struct xdplb_global_ext *x = bpf_map_lookup_elem(&global_ext, &zero);

	if (x)
		x->count[s]++;
	return verdict;
}

#endif /* XDPLB_MAPS_H */
