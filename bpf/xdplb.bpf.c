// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb: an LVS Direct-Routing director in XDP. A packet for a service
 * (VIP, protocol, port) gets the MAC of the backend chosen by the service's
 * Maglev table and leaves through XDP_TX (or XDP_REDIRECT to another NIC);
 * its IP packet is untouched, and only a frame sent to this director's NIC
 * is forwarded (lib/ingress_mac.h). ARP requests and neighbour solicitations
 * for the VIPs this director owns reach the kernel only while its ownership
 * deadline lies ahead (lib/owner.h). Everything else goes to the kernel
 * unchanged.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xdplb_abi.h"
#include "lib/parse.h"
#include "lib/hash.h"
#include "lib/maps.h"
#include "lib/owner.h"
#include "lib/ingress_mac.h"

/* Knobs set by user space before load. */
const volatile __u32 maglev_size = XDPLB_DEFAULT_MAGLEV_SIZE;

static __always_inline int count(struct xdplb_global *g, enum xdplb_global_stat s, int verdict)
{
	g->count[s]++;
	return verdict;
}

static __always_inline int vip_filter_has(const struct packet *pkt)
{
	__u32 bit = vip_filter_bit(pkt->flow.daddr, pkt->flow.family);
	__u32 word = bit / 64;
	__u64 *bits = bpf_map_lookup_elem(&vip_filter, &word);

	return bits && (*bits & (1ULL << (bit % 64)));
}

/* Whether the packet's destination is exactly a VIP (vip_set), not only
 * its prefilter bit: asked on the slow paths only. */
static __always_inline int is_vip(const struct packet *pkt)
{
	struct xdplb_vip_key key = { .family = pkt->flow.family };

	__builtin_memcpy(key.addr, pkt->flow.daddr, 16);
	return bpf_map_lookup_elem(&vip_set, &key) != NULL;
}

static __always_inline int same_addr(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int service_key_equal(const struct xdplb_service_key *a,
					     const struct xdplb_service_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* The service of a key: through the index (inlined array lookups), or the
 * hash map when the index holds a collision or another key. */
static __always_inline struct xdplb_service *lookup_service(struct xdplb_global *g,
							   const struct xdplb_service_key *key)
{
	__u32 h = service_index_hash(key);
	__u32 *entry_id = bpf_map_lookup_elem(&service_index, &h);
	struct xdplb_service_entry *e;

	if (!entry_id || !*entry_id)
		return NULL;
	if (*entry_id != XDPLB_SERVICE_INDEX_COLLISION) {
		e = bpf_map_lookup_elem(&service_entries, entry_id);
		if (e && service_key_equal(&e->key, key))
			return &e->service;
	}
	g->count[XDPLB_STAT_SERVICE_SLOW_LOOKUP]++;
	return bpf_map_lookup_elem(&services, key);
}

static __always_inline struct xdplb_service *find_service(struct xdplb_global *g,
							 const struct packet *pkt, __u16 port)
{
	struct xdplb_service_key key = {
		.port = port,
		.proto = pkt->flow.proto,
		.family = pkt->flow.family,
	};
	struct xdplb_service *svc;

	__builtin_memcpy(key.addr, pkt->flow.daddr, 16);
	svc = lookup_service(g, &key);
	if (svc || !port)
		return svc;
	key.port = 0; /* the port-less service of this VIP and protocol */
	return lookup_service(g, &key);
}

/* The destination `id` if it exists, belongs to `service` and may take
 * packets (a draining one only where draining_ok). */
static __always_inline struct xdplb_dest *usable_dest(__u32 id, __u32 service, int draining_ok)
{
	struct xdplb_dest *d;

	if (!id)
		return NULL;
	d = bpf_map_lookup_elem(&dests, &id);
	if (!d || d->service != service)
		return NULL;
	if (d->state == XDPLB_DEST_ACTIVE ||
	    (draining_ok && d->state == XDPLB_DEST_DRAINING))
		return d;
	return NULL;
}

/*
 * Chooses the destination of a packet. A slot that did not change since its
 * table was built sends straight to its owner (no flow state). On a changed
 * slot, a TCP SYN starts a new connection: it goes to the slot's owner and
 * replaces whatever the flow table held for that 5-tuple (client ports are
 * reused: an old entry must not lead a new connection to a draining
 * backend). Other packets consult the flow table: a known flow keeps its
 * destination while that one exists; an unknown TCP segment (or an ICMP
 * error) belongs to a flow that started before the change and stays with the
 * slot's previous owner if that one still exists; anything else (UDP) is a
 * new flow.
 */
static __always_inline struct xdplb_dest *choose_dest(struct xdplb_global *g, struct packet *pkt,
						       const struct xdplb_service *svc,
						       const struct xdplb_slot *slot, int *new_flow,
						       __u32 *dest_id)
{
	int syn = (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	struct xdplb_dest *d = NULL;
	struct xdplb_flow *known;
	struct xdplb_flow flow = {};
	__u32 dest;

	if (!slot->prev_dest) {
		*new_flow = syn;
		*dest_id = slot->dest;
		return usable_dest(slot->dest, svc->id, 1);
	}
	if (syn && !pkt->icmp_error) {
		dest = slot->dest;
		*new_flow = 1;
		goto record;
	}
	known = bpf_map_lookup_elem(&flows, &pkt->flow);
	if (known) {
		d = usable_dest(known->dest, svc->id, 1);
		if (d) {
			g->count[XDPLB_STAT_FLOW_HIT]++;
			known->last_seen_ns = bpf_ktime_get_coarse_ns();
			*new_flow = syn;
			*dest_id = known->dest;
			return d;
		}
	}
	g->count[XDPLB_STAT_FLOW_MISS]++;
	if (pkt->icmp_error || (pkt->flow.proto == IPPROTO_TCP && !syn))
		d = usable_dest(slot->prev_dest, svc->id, 1);
	if (d) {
		dest = slot->prev_dest;
		*new_flow = 0;
	} else {
		dest = slot->dest;
		*new_flow = !pkt->icmp_error; /* an ICMP error starts no flow */
	}
	if (pkt->icmp_error)
		goto out;
record:
	if (!dest)
		goto out;
	flow.dest = dest;
	flow.service = svc->id;
	flow.last_seen_ns = bpf_ktime_get_coarse_ns();
	if (bpf_map_update_elem(&flows, &pkt->flow, &flow, BPF_ANY))
		g->count[XDPLB_STAT_FLOW_INSERT_FAILED]++;
out:
	*dest_id = dest;
	/* the previous owner was looked up already; anything else is looked up once here */
	return d ? d : usable_dest(dest, svc->id, 1);
}

static __always_inline void add_traffic(void *map, __u32 id, __u32 bytes, int new_flow)
{
	struct xdplb_traffic *t = bpf_map_lookup_elem(map, &id);

	if (!t)
		return;
	t->packets++;
	t->bytes += bytes;
	t->new_flows += new_flow;
}

SEC("xdp")
int xdplb_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct cursor c = CURSOR_OF(ctx);
	struct packet pkt = {};
	struct xdplb_global *g;
	struct xdplb_service *svc;
	struct xdplb_dest *d;
	struct xdplb_slot *slot, cur;
	struct ethhdr *eth = data;
	void *table, *l3;
	__u32 zero = 0, hash, index, dest_id;
	int new_flow = 0, err, verdict;
	__be16 ethertype;

	g = bpf_map_lookup_elem(&global_stats, &zero);
	if (!g)
		return XDP_ABORTED;

	ethertype = parse_ethernet(&c);
	l3 = c.pos;
	if (ethertype == bpf_htons(ETH_P_IP))
		err = parse_ipv4(&c, &pkt);
	else if (ethertype == bpf_htons(ETH_P_IPV6))
		err = parse_ipv6(&c, &pkt);
	else if (ethertype == bpf_htons(ETH_P_ARP))
		return owner_gate_arp(g, &c);
	else
		return count(g, XDPLB_STAT_PASS_NOT_VIP, XDP_PASS);
	if (!pkt.flow.family)	/* addresses unreadable: not known to be ours */
		return count(g, XDPLB_STAT_PASS_NOT_VIP, XDP_PASS);
	/* the prefilter says "maybe"; what is not the fast path (a TCP or UDP
	 * packet parsed whole, whose service lookup is exact) asks the exact set */
	if (!vip_filter_has(&pkt) ||
	    ((err != PARSE_OK || pkt.fragment ||
	      (pkt.flow.proto != IPPROTO_TCP && pkt.flow.proto != IPPROTO_UDP)) &&
	     !is_vip(&pkt))) {
		/* a solicitation to a solicited-node group, or to any address
		 * but a VIP (proto is set only when the IPv6 headers parsed
		 * whole) */
		if (err == PARSE_OK && pkt.flow.proto == IPPROTO_ICMPV6 &&
		    pkt.flow.family == XDPLB_FAMILY_IPV6 && !pkt.fragment) {
			verdict = owner_gate_ns(c.pos, c.end, c.limit, l3);
			if (verdict != OWNER_NOT_GATED)
				return verdict;
		}
		return count(g, XDPLB_STAT_PASS_NOT_VIP, XDP_PASS);
	}
	if (err == PARSE_TRUNCATED)
		return count(g, XDPLB_STAT_DROP_MALFORMED, XDP_DROP);
	if (err == PARSE_UNSUPPORTED) {
		g->count[XDPLB_STAT_IPV6_EXT_UNKNOWN]++;
		return count(g, XDPLB_STAT_PASS_UNSUPPORTED, XDP_PASS);
	}

	if (pkt.fragment) {
		/* Fragment policy: fragments carry no ports (but the first), so
		 * only a port-less service can take them, hashed on the client
		 * address alone so that all fragments meet at one backend. */
		g->count[XDPLB_STAT_FRAGMENT]++;
		svc = find_service(g, &pkt, 0);
		if (!svc)
			return count(g, XDPLB_STAT_DROP_FRAGMENT, XDP_DROP);
		hash = hash_source(&pkt.flow, svc->seed);
	} else {
		if ((pkt.flow.family == XDPLB_FAMILY_IPV4 && pkt.flow.proto == IPPROTO_ICMP) ||
		    (pkt.flow.family == XDPLB_FAMILY_IPV6 && pkt.flow.proto == IPPROTO_ICMPV6)) {
			__u8 *icmp = cursor_take(&c, 8);
			__u8 outer[16] __attribute__((aligned(4)));

			if (!icmp)
				return count(g, XDPLB_STAT_DROP_MALFORMED, XDP_DROP);
			if (pkt.flow.proto == IPPROTO_ICMP ? !icmp4_is_error(icmp[0])
							  : !icmp6_is_error(icmp[0])) {
				/* a solicitation sent to the VIP itself */
				if (pkt.flow.proto == IPPROTO_ICMPV6 &&
				    pkt.flow.family == XDPLB_FAMILY_IPV6) {
					verdict = owner_gate_ns(icmp, c.end, c.limit, l3);
					if (verdict != OWNER_NOT_GATED)
						return verdict;
				}
				return count(g, XDPLB_STAT_PASS_UNSUPPORTED, XDP_PASS);
			}
			__builtin_memcpy(outer, pkt.flow.daddr, 16);
			err = parse_quoted_flow(&c, &pkt);
			/* an error goes to the source of the packet it quotes: one
			 * quoting another address's packet is not this VIP's */
			if (err == PARSE_OK && !same_addr(outer, pkt.flow.daddr))
				return count(g, XDPLB_STAT_PASS_NOT_VIP, XDP_PASS);
		} else {
			err = parse_l4(&c, &pkt);
			/* a TCP or UDP header cut short: dropped only when the
			 * address is exactly a VIP (the slow path asks) */
			if (err == PARSE_TRUNCATED && !is_vip(&pkt))
				return count(g, XDPLB_STAT_PASS_NOT_VIP, XDP_PASS);
		}
		if (err == PARSE_TRUNCATED)
			return count(g, XDPLB_STAT_DROP_MALFORMED, XDP_DROP);
		if (err == PARSE_UNSUPPORTED)
			return count(g, XDPLB_STAT_PASS_UNSUPPORTED, XDP_PASS);
		svc = find_service(g, &pkt, pkt.flow.dport);
		if (!svc)
			return count(g, XDPLB_STAT_PASS_NOT_VIP, XDP_PASS);
		hash = svc->flags & XDPLB_SVC_F_SOURCE_HASH ? hash_source(&pkt.flow, svc->seed)
							    : hash_flow(&pkt.flow, svc->seed);
	}

	/* A frame for a VIP sent to another host (flooded, or seen by a
	 * promiscuous NIC), to broadcast or to a group is not ours to forward:
	 * decided before anything is counted or recorded for its service.
	 * Skipped while the MAC is unset (lib/ingress_mac.h). */
	if (!sent_to_us(eth))
		return count_ext(XDPLB_EXT_STAT_PASS_NOT_OUR_MAC, XDP_PASS);

	table = bpf_map_lookup_elem(&maglev_tables, &svc->id);
	if (!table)
		return count(g, XDPLB_STAT_DROP_NO_TABLE, XDP_DROP);
	index = hash_to_slot(hash, maglev_size);
	slot = bpf_map_lookup_elem(table, &index);
	if (!slot)
		return count(g, XDPLB_STAT_DROP_NO_TABLE, XDP_DROP);
	/* One 8-byte load: the director patches changed slots in place with
	 * 8-byte stores, so dest and prev_dest are always read as a pair. */
	*(__u64 *)&cur = *(volatile const __u64 *)slot;
	d = choose_dest(g, &pkt, svc, &cur, &new_flow, &dest_id);
	if (!d) {
		if (svc->flags & XDPLB_SVC_F_NO_BACKEND_PASS)
			return count(g, XDPLB_STAT_PASS_NO_BACKEND, XDP_PASS);
		return count(g, XDPLB_STAT_DROP_NO_BACKEND, XDP_DROP);
	}

	if (pkt.icmp_error)
		g->count[XDPLB_STAT_ICMP_ERROR_STEERED]++;
	add_traffic(&service_stats, svc->id, pkt.l3_bytes, new_flow);
	add_traffic(&dest_stats, dest_id, pkt.l3_bytes, new_flow);
	__builtin_memcpy(eth->h_dest, d->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, d->src_mac, ETH_ALEN);
	if (d->ifindex && d->ifindex != ctx->ingress_ifindex) {
		g->count[XDPLB_STAT_REDIRECT]++;
		return bpf_redirect_map(&tx_ports, d->ifindex, XDP_DROP);
	}
	return count(g, XDPLB_STAT_TX, XDP_TX);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
