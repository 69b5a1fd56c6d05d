/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing through a cursor: Ethernet with up to two VLAN tags, IPv4
 * (with options), IPv6 (with the common extension headers), TCP, UDP, the
 * packet quoted inside an ICMP/ICMPv6 error, and the target of an ARP request
 * or a neighbour solicitation. Every read is bounds-checked
 * against data_end. Helpers return 0 on success and a negative value when the
 * header does not fit; fields they fill keep network byte order.
 */
#ifndef XDPLB_PARSE_H
#define XDPLB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "../xdplb_abi.h"

#ifndef XDPLB_MAX_IPV6_EXT
#define XDPLB_MAX_IPV6_EXT 4
#endif

#define PARSE_OK 0
#define PARSE_TRUNCATED -1 /* a header does not fit in the frame */
#define PARSE_UNSUPPORTED -2 /* well formed, but not something we balance */

struct cursor {
	void *pos;
	void *end;   /* data_end: what the verifier checks against */
	void *limit; /* the end of the IP packet once known (<= end): padding is no part of it */
};

/* A cursor over the whole frame (the IP packet's end is set once parsed). */
#define CURSOR_OF(ctx)                                                                           \
	((struct cursor){ .pos = (void *)(long)(ctx)->data, .end = (void *)(long)(ctx)->data_end, \
			  .limit = (void *)(long)(ctx)->data_end })

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

/* What the data plane needs from one packet. */
struct packet {
	struct xdplb_flow_key flow; /* addresses, ports, protocol, family */
	__u32 l3_bytes;		    /* IP length from the header (no L2) */
	__u8 tcp_flags;		    /* the TCP flags byte, 0 for UDP */
	__u8 fragment;		    /* 1: an IP fragment (no ports) */
	__u8 icmp_error;	    /* 1: flow was taken from an ICMP error */
};

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

/* Returns a pointer to len bytes at the cursor and advances, or NULL. */
static __always_inline void *cursor_take(struct cursor *c, __u32 len)
{
	void *p = c->pos;

	if (p + len > c->end || p + len > c->limit)
		return NULL;
	c->pos = p + len;
	return p;
}

/* Skips Ethernet and up to two VLAN tags; returns the EtherType (network
 * order) or 0 when truncated. */
static __always_inline __be16 parse_ethernet(struct cursor *c)
{
	struct ethhdr *eth = cursor_take(c, sizeof(*eth));
	struct vlan_tag *tag;
	__be16 proto;

	if (!eth)
		return 0;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = cursor_take(c, sizeof(*tag));
		if (!tag)
			return 0;
		proto = tag->proto;
	}
	return proto;
}

/* Reads the ports of a TCP or UDP header at the cursor into the flow key
 * (network order) and the TCP flags. */
static __always_inline int parse_l4(struct cursor *c, struct packet *pkt)
{
	if (pkt->flow.proto == IPPROTO_TCP) {
		struct tcphdr *tcp = cursor_take(c, sizeof(*tcp));

		if (!tcp)
			return PARSE_TRUNCATED;
		pkt->flow.sport = tcp->source;
		pkt->flow.dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		return PARSE_OK;
	}
	if (pkt->flow.proto == IPPROTO_UDP) {
		struct udphdr *udp = cursor_take(c, sizeof(*udp));

		if (!udp)
			return PARSE_TRUNCATED;
		pkt->flow.sport = udp->source;
		pkt->flow.dport = udp->dest;
		return PARSE_OK;
	}
	return PARSE_UNSUPPORTED;
}

/* IPv4 header with options; fills addresses, protocol, length, fragment. */
static __always_inline int parse_ipv4(struct cursor *c, struct packet *pkt)
{
	struct iphdr *ip = c->pos;
	__u32 hdr_len;

	if ((void *)(ip + 1) > c->end)
		return PARSE_TRUNCATED;
	/* Addresses first: a bad header to a VIP is dropped, not passed. */
	pkt->flow.family = XDPLB_FAMILY_IPV4;
	pkt->flow.proto = ip->protocol;
	__builtin_memcpy(pkt->flow.saddr, &ip->saddr, 4);
	__builtin_memcpy(pkt->flow.daddr, &ip->daddr, 4);
	hdr_len = ip->ihl * 4;
	if (ip->version != 4 || hdr_len < sizeof(*ip))
		return PARSE_TRUNCATED;
	if (!cursor_take(c, hdr_len))
		return PARSE_TRUNCATED;
	pkt->l3_bytes = bpf_ntohs(ip->tot_len);
	if (pkt->l3_bytes < hdr_len || (void *)ip + pkt->l3_bytes > c->end)
		return PARSE_TRUNCATED;
	c->limit = (void *)ip + pkt->l3_bytes;
	pkt->fragment = (ip->frag_off & bpf_htons(0x3fff)) != 0;
	return PARSE_OK;
}

static __always_inline int ipv6_is_extension(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
	       next == IPPROTO_DSTOPTS || next == IPPROTO_FRAGMENT ||
	       next == IPPROTO_AH;
}

/* IPv6 header and up to XDPLB_MAX_IPV6_EXT extension headers. Returns
 * PARSE_UNSUPPORTED when more extension headers follow. */
static __always_inline int parse_ipv6(struct cursor *c, struct packet *pkt)
{
	struct ipv6hdr *ip6 = cursor_take(c, sizeof(*ip6));
	__u8 next;

	if (!ip6)
		return PARSE_TRUNCATED;
	/* Addresses first: a bad header to a VIP is dropped, not passed. */
	pkt->flow.family = XDPLB_FAMILY_IPV6;
	__builtin_memcpy(pkt->flow.saddr, &ip6->saddr, 16);
	__builtin_memcpy(pkt->flow.daddr, &ip6->daddr, 16);
	if (ip6->version != 6)
		return PARSE_TRUNCATED;
	pkt->l3_bytes = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	if ((void *)ip6 + pkt->l3_bytes > c->end)
		return PARSE_TRUNCATED;
	c->limit = (void *)ip6 + pkt->l3_bytes;
	next = ip6->nexthdr;
#pragma unroll
	for (int i = 0; i < XDPLB_MAX_IPV6_EXT; i++) {
		__u8 *ext;

		if (!ipv6_is_extension(next))
			break;
		ext = c->pos;
		if ((void *)(ext + 8) > c->end || (void *)(ext + 8) > c->limit)
			return PARSE_TRUNCATED;
		if (next == IPPROTO_FRAGMENT) {
			/* offset or more-fragments set: a real fragment */
			pkt->fragment |= (*(__be16 *)(ext + 2) & bpf_htons(0xfff9)) != 0;
			c->pos = ext + 8;
			/* a later fragment: what follows is payload, not headers; its
			 * upper protocol is the one its fragment header names */
			if (*(__be16 *)(ext + 2) & bpf_htons(0xfff8)) {
				pkt->flow.proto = ext[0];
				return PARSE_OK;
			}
		} else if (next == IPPROTO_AH) {
			if (!cursor_take(c, (ext[1] + 2) * 4))
				return PARSE_TRUNCATED;
		} else {
			if (!cursor_take(c, (ext[1] + 1) * 8))
				return PARSE_TRUNCATED;
		}
		next = ext[0];
	}
	pkt->flow.proto = next;
	if (ipv6_is_extension(next))
		return PARSE_UNSUPPORTED;
	return PARSE_OK;
}

/* The packet quoted in an ICMP error (after the 8-byte ICMP header) is a
 * reply from a VIP flow; turn it back into the client-to-VIP flow key. */
static __always_inline int parse_quoted_flow(struct cursor *c, struct packet *pkt)
{
	struct packet inner = {};
	__be16 *ports;

	if (pkt->flow.family == XDPLB_FAMILY_IPV4) {
		struct iphdr *ip = c->pos;

		if ((void *)(ip + 1) > c->end || (void *)(ip + 1) > c->limit || ip->version != 4 || ip->ihl < 5)
			return PARSE_TRUNCATED;
		if (!cursor_take(c, ip->ihl * 4))
			return PARSE_TRUNCATED;
		inner.flow.family = XDPLB_FAMILY_IPV4;
		inner.flow.proto = ip->protocol;
		__builtin_memcpy(inner.flow.saddr, &ip->saddr, 4);
		__builtin_memcpy(inner.flow.daddr, &ip->daddr, 4);
	} else {
		struct ipv6hdr *ip6 = cursor_take(c, sizeof(*ip6));

		if (!ip6 || ip6->version != 6)
			return PARSE_TRUNCATED;
		inner.flow.family = XDPLB_FAMILY_IPV6;
		inner.flow.proto = ip6->nexthdr;
		__builtin_memcpy(inner.flow.saddr, &ip6->saddr, 16);
		__builtin_memcpy(inner.flow.daddr, &ip6->daddr, 16);
	}
	/* An ICMP error quotes at least 8 bytes of L4: the ports. */
	if (inner.flow.proto != IPPROTO_TCP && inner.flow.proto != IPPROTO_UDP)
		return PARSE_UNSUPPORTED;
	ports = cursor_take(c, 4);
	if (!ports)
		return PARSE_TRUNCATED;
	__builtin_memcpy(pkt->flow.saddr, inner.flow.daddr, 16);
	__builtin_memcpy(pkt->flow.daddr, inner.flow.saddr, 16);
	pkt->flow.sport = ports[1];
	pkt->flow.dport = ports[0];
	pkt->flow.proto = inner.flow.proto;
	pkt->icmp_error = 1;
	return PARSE_OK;
}

/* ICMP error types (linux/icmp.h drags in libc headers). Destination
 * unreachable covers "fragmentation needed"; ICMPv6 type 2 is "packet too big". */
static __always_inline int icmp4_is_error(__u8 type)
{
	return type == 3 || type == 4 || type == 11 || type == 12;
}

static __always_inline int icmp6_is_error(__u8 type)
{
	return type >= 1 && type <= 4;
}

/* An IPv4-over-Ethernet ARP packet (linux/if_arp.h pulls in libc headers). */
struct arp_ipv4 {
	__be16 htype;	/* ARP_HTYPE_* */
	__be16 ptype;	/* ETH_P_IP */
	__u8 hlen;	/* 6 */
	__u8 plen;	/* 4 */
	__be16 op;	/* ARP_OP_* */
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
};
_Static_assert(sizeof(struct arp_ipv4) == 28, "arp");

#define ARP_HTYPE_ETHER 1
#define ARP_HTYPE_IEEE802 6 /* Linux answers it on Ethernet too (arp_process) */
#define ARP_OP_REQUEST 1

/*
 * The target protocol address (4 bytes, network order) of the IPv4 ARP
 * request at the cursor, or NULL for anything else: a reply, another
 * hardware or protocol type, a frame too short to hold one (the kernel
 * discards it), and a gratuitous ARP (sender address = target address:
 * another host announcing that address, which the kernel never answers).
 * An ARP probe (sender address 0.0.0.0) is a request: the kernel answers it
 * for its own addresses.
 */
static __always_inline __u8 *arp_request_target(struct cursor *c)
{
	struct arp_ipv4 *arp = cursor_take(c, sizeof(*arp));

	if (!arp)
		return NULL;
	if ((arp->htype != bpf_htons(ARP_HTYPE_ETHER) && arp->htype != bpf_htons(ARP_HTYPE_IEEE802)) ||
	    arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != ETH_ALEN || arp->plen != 4 ||
	    arp->op != bpf_htons(ARP_OP_REQUEST))
		return NULL;
	if (arp->spa[0] == arp->tpa[0] && arp->spa[1] == arp->tpa[1] && arp->spa[2] == arp->tpa[2] &&
	    arp->spa[3] == arp->tpa[3])
		return NULL;
	return arp->tpa;
}

#define ICMPV6_NEIGHBOUR_SOLICITATION 135
#define NDISC_HOP_LIMIT 255

/*
 * The target address (16 bytes, network order) of the neighbour
 * solicitation whose ICMPv6 header is at icmp (ip6: its IPv6 header), or
 * NULL for anything else, including the solicitations the kernel discards
 * itself (RFC 4861 7.1.1): a hop limit other than 255, a code other than 0,
 * fewer than 24 bytes. The destination is not checked: the kernel answers a
 * solicitation for one of its addresses whatever local address it was sent
 * to (the solicited-node group, the target itself, or another).
 */
static __always_inline __u8 *ns_target(__u8 *icmp, void *end, void *limit, struct ipv6hdr *ip6)
{
	if ((void *)(ip6 + 1) > end || (void *)(icmp + 24) > end || (void *)(icmp + 24) > limit)
		return NULL;
	if (icmp[0] != ICMPV6_NEIGHBOUR_SOLICITATION || icmp[1] != 0 || ip6->hop_limit != NDISC_HOP_LIMIT)
		return NULL;
	return icmp + 8;
}

#endif /* XDPLB_PARSE_H */
