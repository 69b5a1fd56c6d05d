/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ownership gate: an ARP request or a neighbour solicitation for an owned
 * VIP (owned_vips) is passed to the kernel, which answers it because the VIP
 * is on the NIC, only while vip_owner's deadline lies ahead; after it, it is
 * dropped, and the kernel's answer with it.
 *
 * Why here: the active director holds its VIPs as addresses on its NIC, so
 * the kernel answers for them for as long as they stay there. If the daemon
 * dies and the machine lives on, nothing removes them, and once a standby
 * has taken the VIPs over two MACs answer for each. The XDP program is the
 * one part that outlives the daemon (it is pinned) and it sees every request
 * before the kernel does. So the live daemon keeps pushing a deadline
 * forward, like a lease, and the clock closes the gate without any process
 * running. A watchdog process could die with the daemon. The sysctls are
 * per interface, not per address, and never expire. A netfilter ruleset
 * would be one more piece of kernel state to own beside this program.
 *
 * Cost: nothing on TCP/UDP to a VIP, one comparison on an IPv6 packet that
 * is not for a VIP. The checks sit on the ARP EtherType and on ICMPv6 type
 * 135, and the clock (~23 ns) is read only for an owned VIP whose deadline
 * is neither 0 nor "forever"; the verdict's counter (global_ext) costs one
 * more lookup, for a gated request only. The exact hash set is used, not
 * the VIP prefilter: the prefilter has false positives, and it holds only
 * the VIPs that have a service now, so an owned VIP without its bit there
 * would never be gated. ARP requests are few next to data packets.
 *
 * A dropped request is retried by its sender, which gets its answer from
 * the new owner. This director's kernel misses the passive refresh of the
 * sender's neighbour entry and resolves it again if it needs it. Not
 * covered: the kernel's own ARP requests and solicitations sent *from* a VIP
 * (egress never meets XDP); arp_announce=2 on the NIC makes the kernel
 * prefer another source address for ARP.
 */
#ifndef XDPLB_OWNER_H
#define XDPLB_OWNER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "../xdplb_abi.h"
#include "maps.h"
#include "parse.h"

#define OWNER_NOT_GATED -1 /* not a request for an owned VIP: the caller decides */

/*
 * The verdict for a request whose target address is addr (network order,
 * 4 or 16 bytes by family; family is a constant at each call site). Returns
 * XDP_PASS while the deadline lies ahead, XDP_DROP after it, each counted in
 * global_ext, or OWNER_NOT_GATED when addr is not an owned VIP.
 */
static __always_inline int owner_gate(const __u8 *addr, __u8 family)
{
	struct xdplb_vip_key key = { .family = family };
	struct xdplb_vip_owner *owner;
	__u32 zero = 0;
	__u64 until;

	if (family == XDPLB_FAMILY_IPV4)
		__builtin_memcpy(key.addr, addr, 4);
	else
		__builtin_memcpy(key.addr, addr, 16);
	if (!bpf_map_lookup_elem(&owned_vips, &key))
		return OWNER_NOT_GATED;
	owner = bpf_map_lookup_elem(&vip_owner, &zero);
	/* one 8-byte load: user space stores the deadline atomically */
	until = owner ? *(volatile const __u64 *)&owner->until_ns : 0;
	if (until == XDPLB_VIP_OWNER_FOREVER || (until && bpf_ktime_get_ns() < until))
		return count_ext(XDPLB_EXT_STAT_PASS_NEIGH_OWNED, XDP_PASS);
	return count_ext(XDPLB_EXT_STAT_DROP_NEIGH_EXPIRED, XDP_DROP);
}

/* An ARP frame (cursor after the EtherType): gated when it is a request for
 * an owned VIP; anything else goes to the kernel as before. */
static __always_inline int owner_gate_arp(struct xdplb_global *g, struct cursor *c)
{
	__u8 *target = arp_request_target(c);
	int verdict = target ? owner_gate(target, XDPLB_FAMILY_IPV4) : OWNER_NOT_GATED;

	if (verdict != OWNER_NOT_GATED)
		return verdict;
	g->count[XDPLB_STAT_PASS_NOT_VIP]++;
	return XDP_PASS;
}

/* An ICMPv6 message at icmp (ip6: its IPv6 header): the gate's verdict when
 * it is a neighbour solicitation for an owned VIP, else OWNER_NOT_GATED. */
static __always_inline int owner_gate_ns(__u8 *icmp, void *end, void *limit, struct ipv6hdr *ip6)
{
	__u8 *target = ns_target(icmp, end, limit, ip6);

	return target ? owner_gate(target, XDPLB_FAMILY_IPV6) : OWNER_NOT_GATED;
}

#endif /* XDPLB_OWNER_H */
