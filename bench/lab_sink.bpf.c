// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The sink of `npm run bench:lab`: counts the IPv4 TCP and UDP frames that
 * arrive, per interface (counts[ingress_ifindex % 64], per CPU), and drops
 * them; everything else (ARP, IPv6) goes on to the stack. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int lab_sink(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u32 k = ctx->ingress_ifindex % 64;
	__u64 *c;

	if (p + 34 > end || p[12] != 0x08 || p[13] != 0x00 || (p[23] != IPPROTO_TCP && p[23] != IPPROTO_UDP))
		return XDP_PASS;
	c = bpf_map_lookup_elem(&counts, &k);
	if (c)
		(*c)++;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
