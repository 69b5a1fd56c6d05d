/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Whether a frame was sent to this director: its Ethernet destination is the
 * MAC of the NIC the program is attached to (ingress_mac, written by the
 * daemon). The program forwards a packet for a service (XDP_TX, XDP_REDIRECT:
 * connections, ICMP errors, fragments) only then; a frame sent to another
 * host, to broadcast or to a multicast group goes to the kernel untouched,
 * which drops what is not its own (PACKET_OTHERHOST).
 *
 * Why: a NIC hands XDP frames addressed to other hosts whenever it is
 * promiscuous (tcpdump, a bridge member, a veth, which delivers everything
 * its bridge floods to it), and a bridge or a switch floods unknown unicast
 * to every port (an FDB entry aged out, a port went down). Two directors on
 * one segment, an active one and a standby, would then both forward the
 * flooded copies of a VIP's frames: the backend gets each twice, and the
 * standby serves traffic nobody sent it. An LVS director handles only the
 * frames addressed to it; so does this one.
 *
 * Unset (all zero): the check is skipped and every destination is
 * forwarded, as before there was one. That is a data plane loaded without a
 * daemon (the BPF_PROG_TEST_RUN packet tests, which keep passing unchanged),
 * or pinned by an older build and not yet adopted by a daemon that writes
 * the MAC.
 *
 * Cost: called only once a packet matched a service, so traffic not for a
 * VIP pays nothing; an inlined array lookup, one 8-byte load of the MAC and
 * one 6-byte compare.
 */
#ifndef XDPLB_INGRESS_MAC_H
#define XDPLB_INGRESS_MAC_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "../xdplb_abi.h"
#include "maps.h"

/*
 * Returns 1 when the frame whose Ethernet header is at eth (bounds checked
 * by the caller) is addressed to the ingress NIC, or when its MAC is unset;
 * 0 for any other destination (unicast, broadcast or multicast).
 */
static __always_inline int sent_to_us(const void *eth)
{
	union {
		__u64 word;
		__u8 bytes[8];
	} ours;
	__u16 ours_head; /* bytes 0-1 of the MAC */
	__u32 ours_tail; /* bytes 2-5 */
	__u32 zero = 0;
	struct xdplb_ingress_mac *m = bpf_map_lookup_elem(&ingress_mac, &zero);

	if (!m)
		return 1; /* cannot happen: an array's entry 0 always exists */
	/* one 8-byte load: user space stores the MAC atomically */
	ours.word = *(volatile const __u64 *)m;
	__builtin_memcpy(&ours_head, ours.bytes, 2);
	__builtin_memcpy(&ours_tail, ours.bytes + 2, 4);
	if (!ours_head && !ours_tail)
		return 1; /* unset: the check is skipped (see above) */
	/* two loads from the frame, at offsets 0 and 2: aligned even where
	 * the verifier checks alignment (it assumes NET_IP_ALIGN, 2) */
	return *(const __u16 *)eth == ours_head && *(const __u32 *)((const __u8 *)eth + 2) == ours_tail;
}

#endif /* XDPLB_INGRESS_MAC_H */
