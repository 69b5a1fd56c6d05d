// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmark baseline: the least a DR director can do. Parses Ethernet and
 * IPv4 with the same helpers as xdplb, rewrites both MACs to fixed values
 * and returns XDP_TX: no service lookup, no table, no counters. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/parse.h"

SEC("xdp")
int baseline_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct cursor c = CURSOR_OF(ctx);
	struct packet pkt = {};
	struct ethhdr *eth = data;
	static const __u8 mac[ETH_ALEN] = { 2, 0, 0, 0, 0, 1 };

	if (parse_ethernet(&c) != bpf_htons(ETH_P_IP) || parse_ipv4(&c, &pkt))
		return XDP_PASS;
	if (parse_l4(&c, &pkt))
		return XDP_PASS;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
