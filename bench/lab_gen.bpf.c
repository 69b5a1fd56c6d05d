// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The packet generator of `npm run bench:lab`, run with
 * BPF_F_TEST_XDP_LIVE_FRAMES (testRunLive): every run writes one whole
 * 60-byte frame (64 on the wire) and sends it with bpf_redirect to the
 * interface in `config`. Whole, because on a veth the frame's page is passed
 * on by reference and comes back with the receiver's rewrites in it.
 *
 * Frame n (n counts runs on this CPU, numbered across CPUs): flow
 * f = n % flows (churn: f = n, every frame a new flow); even flows are TCP
 * to port 80 (ACK; churn: SYN), odd ones UDP to port 53; the client is
 * 10.1.(f & 0xffff) port 1024 + (f >> 16) % 60000; the VIP is
 * vip_base + (f >> 1) % vips. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct gen_config {
	__u32 ifindex;
	__u32 flows;   /* 0: churn */
	__u32 vip_base; /* host order */
	__u32 vips;
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 ncpus;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq SEC(".maps");

#define FRAME 60

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int lab_gen(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_config *c = bpf_map_lookup_elem(&config, &zero);
	__u64 *n = bpf_map_lookup_elem(&seq, &zero);
	__u64 f;
	__u32 saddr, daddr, sum = 0;
	__u16 sport, *w;
	int tcp, i;

	if (!c || !n || p + FRAME > end || !c->vips)
		return XDP_ABORTED;
	f = (*n)++ * (c->ncpus ? c->ncpus : 1) + bpf_get_smp_processor_id();
	if (c->flows)
		f %= c->flows;
	tcp = !(f & 1);
	saddr = (10u << 24) | (1u << 16) | (__u32)(f & 0xffff);
	sport = 1024 + (__u16)((f >> 16) % 60000);
	daddr = c->vip_base + (__u32)((f >> 1) % c->vips);

	__builtin_memcpy(p, c->dst_mac, 6);
	__builtin_memcpy(p + 6, c->src_mac, 6);
	p[12] = 0x08; p[13] = 0x00;
	/* IPv4: 20 bytes, total length 46 (TCP + 6 bytes, UDP + 18) */
	p[14] = 0x45; p[15] = 0;
	p[16] = 0; p[17] = 46;
	p[18] = 0; p[19] = 0; p[20] = 0x40; p[21] = 0; /* DF */
	p[22] = 64; p[23] = tcp ? IPPROTO_TCP : IPPROTO_UDP;
	p[24] = 0; p[25] = 0;
	*(__u32 *)(p + 26) = bpf_htonl(saddr);
	*(__u32 *)(p + 30) = bpf_htonl(daddr);
	w = (__u16 *)(p + 14);
#pragma unroll
	for (i = 0; i < 10; i++)
		sum += w[i];
	*(__u16 *)(p + 24) = csum_fold(sum);
	*(__u16 *)(p + 34) = bpf_htons(sport);
	if (tcp) {
		*(__u16 *)(p + 36) = bpf_htons(80);
		*(__u32 *)(p + 38) = bpf_htonl((__u32)f);  /* seq */
		*(__u32 *)(p + 42) = c->flows ? bpf_htonl(1) : 0; /* ack */
		p[46] = 0x50;
		p[47] = c->flows ? 0x10 : 0x02; /* ACK; churn: SYN */
		*(__u16 *)(p + 48) = bpf_htons(65535);
		*(__u32 *)(p + 50) = 0; /* checksum (nobody checks it), urgent pointer */
		__builtin_memset(p + 54, 0, 6);
	} else {
		*(__u16 *)(p + 36) = bpf_htons(53);
		*(__u16 *)(p + 38) = bpf_htons(26);
		*(__u16 *)(p + 40) = 0; /* no checksum */
		__builtin_memset(p + 42, 0, 18);
	}
	return bpf_redirect(c->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
