/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow hash: MurmurHash3 (x86_32) rounds over the words of a flow key,
 * seeded per service, so that every director computes the same value for the
 * same flow. The hash is over host-order loads of network-order bytes, which
 * is fine: it only has to agree with itself.
 */
#ifndef XDPLB_HASH_H
#define XDPLB_HASH_H

#include "../xdplb_abi.h"

static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 murmur_round(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 murmur_finish(__u32 h, __u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 hash_addr(__u32 h, const __u8 *addr, __u8 family)
{
	const __u32 *w = (const __u32 *)addr;

	h = murmur_round(h, w[0]);
	if (family == XDPLB_FAMILY_IPV6) {
		h = murmur_round(h, w[1]);
		h = murmur_round(h, w[2]);
		h = murmur_round(h, w[3]);
	}
	return h;
}

/* Hash of the whole 5-tuple. */
static __always_inline __u32 hash_flow(const struct xdplb_flow_key *f, __u32 seed)
{
	__u32 h = hash_addr(seed, f->saddr, f->family);

	h = hash_addr(h, f->daddr, f->family);
	h = murmur_round(h, ((__u32)f->sport << 16) | f->dport);
	h = murmur_round(h, f->proto);
	return murmur_finish(h, 40);
}

/* Hash of the client address only (client-IP affinity). */
static __always_inline __u32 hash_source(const struct xdplb_flow_key *f, __u32 seed)
{
	return murmur_finish(hash_addr(seed, f->saddr, f->family), 16);
}

/* Maps a 32-bit hash uniformly onto [0, size) without a division. */
static __always_inline __u32 hash_to_slot(__u32 hash, __u32 size)
{
	return ((__u64)hash * size) >> 32;
}

/* Index of an address's bit in the VIP prefilter (same in user space:
 * the low 32 bits of the address, host-order load, times a golden ratio). */
static __always_inline __u32 vip_filter_bit(const __u8 *addr, __u8 family)
{
	const __u32 *w = (const __u32 *)addr;
	__u32 k = family == XDPLB_FAMILY_IPV6 ? w[3] : w[0];

	return (k * 0x9e3779b1u) >> (32 - 16); /* 65536 bits */
}

/* Index of a service key in service_index (same in user space). */
static __always_inline __u32 service_index_hash(const struct xdplb_service_key *k)
{
	__u32 h = hash_addr(0x51ed2701, k->addr, k->family);

	h = murmur_round(h, ((__u32)k->port << 16) | ((__u32)k->proto << 8) | k->family);
	return murmur_finish(h, 20) >> (32 - XDPLB_SERVICE_INDEX_BITS);
}

#endif /* XDPLB_HASH_H */
