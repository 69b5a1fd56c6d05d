// The reference model of the data plane, written from SPEC §2 and the
// README's "How the data plane works" (not from bpf/): for one Ethernet
// frame, the verdict, the counter it is counted under, and for a forwarded
// frame the destination and the exact bytes that leave (only the MACs
// change). It reads what the program reads: the maps as the control plane
// wrote them (services, tables, destinations, owned VIPs and their deadline,
// egress ports; a View), and keeps its own copy of the flow table, which the
// frames change as the README's flow rules say.
//
// The rules, as the model applies them:
// - Ethernet, then up to two VLAN tags (802.1Q or 802.1ad, any order). A
//   frame that is cut before its EtherType, or has a third tag, is not
//   understood: passed (pass_not_vip).
// - ARP: a request (hardware type Ethernet or IEEE 802, IPv4, lengths 6/4,
//   op 1) for an owned VIP, not gratuitous (sender IP = target IP), is the
//   ownership gate's: passed while the owner deadline lies ahead
//   (pass_neigh_owned), dropped after (drop_neigh_expired). Any other ARP
//   frame is passed (pass_not_vip).
// - IPv4/IPv6 whose addresses cannot be read (cut before them): passed. The
//   destination decides "for a VIP": an address some service has. A frame
//   not for a VIP is passed untouched (pass_not_vip), whatever else is wrong
//   with it: only the neighbour solicitation gate acts on such frames.
// - For a VIP, a malformed or truncated IP packet is dropped (drop_malformed):
//   a wrong version, an IPv4 header under 20 bytes or beyond the frame, a
//   total length below the header or beyond the frame, an IPv6 payload beyond
//   the frame, an extension header, L4 header, ICMP header or quoted header
//   that does not fit in the IP packet (its length, not the frame's: Ethernet
//   padding is not part of it).
// - IPv6 extension headers: hop-by-hop, routing, fragment, destination
//   options and AH are skipped, up to four; a fifth is not balanced (passed,
//   pass_unsupported, and counted ipv6_ext_unknown). A fragment header with
//   an offset or the M flag makes a fragment (an atomic fragment is not one);
//   after a fragment header with an offset, the rest is payload.
// - Fragments (counted `fragment`) carry no ports: only the port-less service
//   of their VIP and protocol takes them, hashed on the client address; none:
//   dropped (drop_fragment). They are never TCP SYNs.
// - TCP and UDP: the service (VIP, protocol, port), else the port-less
//   service of that VIP and protocol; none: passed (pass_not_vip). ICMP (v4
//   in IPv4, v6 in IPv6): an error (ICMP 3, 4, 11, 12; ICMPv6 1-4) is steered
//   by the flow it quotes (a reply from VIP:port to the client, turned
//   around; an error about another address's packet is not the VIP's: passed,
//   pass_not_vip), non-errors to a VIP are passed (pass_unsupported), but for a
//   neighbour solicitation of an owned VIP (the gate). Other protocols to a
//   VIP: pass_unsupported, as are errors quoting neither TCP nor UDP.
// - Backend choice: the slot hash(flow) of the service's table (5-tuple, or
//   the source address for maglev-source; MurmurHash3 and multiply-shift, as
//   src/dataplane/abi.ts defines the hash for the program and `trace`). An
//   unchanged slot (no previous owner) sends to its owner, no flow state. On a changed slot: a TCP SYN
//   (SYN without ACK) goes to the owner and replaces the flow's entry; else a
//   known flow whose destination is still usable keeps it (flow_hit); else
//   (flow_miss) an unknown TCP segment or ICMP error goes to the previous
//   owner if usable, anything else to the owner, and the flow is recorded
//   with the destination it got (ICMP errors record nothing: they are not
//   flows). A known flow whose destination is no longer usable is treated as
//   unknown ("a destination remembered this way is used only if it still
//   belongs to the same service"). Usable: the destination exists, belongs to
//   this service, and is active or draining.
// - No usable destination: dropped (drop_no_backend), or passed
//   (pass_no_backend) for a service with noBackend: pass.
// - Forwarded: dst MAC := the destination's MAC, src MAC := its egress NIC's;
//   XDP_TX when it leaves by the NIC it came in on (ifindex 0 or the ingress
//   one), XDP_REDIRECT otherwise (xdp_tx / xdp_redirect). Counted for the
//   service and the destination: one packet, the IP length in bytes, and a
//   new flow for a TCP SYN or a flow that starts on the owner of a changed
//   slot. An ICMP error is counted icmp_error_steered.
// - With the NIC's own MAC set (README: Forwarding), only frames addressed to
//   it are forwarded: a frame for a service sent to another unicast MAC or to
//   a group is passed untouched (pass_not_our_mac), before anything is counted
//   or recorded for its service (a fragment is still counted `fragment`).
import { CONSTANTS, hashFlow, hashSource, hashToSlot, type FlowKey } from '../../src/dataplane/abi.ts';

/** A flow as the hash and the flow table see it (addresses 16 bytes, ports in host order). */
export type HashedFlow = FlowKey;

export type Verdict = 'ABORTED' | 'DROP' | 'PASS' | 'TX' | 'REDIRECT';

export interface ServiceView {
  id: number;
  sourceHash: boolean;
  noBackendPass: boolean;
  seed: number;
  dest: Uint32Array;
  prev: Uint32Array;
}

export interface DestView {
  ifindex: number;
  mac: Buffer;
  srcMac: Buffer;
  state: number;
  service: number;
}

/** What the program reads, as the maps hold it. */
export interface View {
  /** By serviceKey(). */
  services: Map<string, ServiceView>;
  /** By vipKey(): every address some service has. */
  vips: Set<string>;
  /** By destination id. */
  dests: (DestView | undefined)[];
  /** The ARP/NDP gate: the owned VIPs (vipKey()) and whether they are claimed now. */
  owned: Set<string>;
  claiming: boolean;
  /** ifindex of the NIC frames come in on (a test run's: lo). */
  ingressIfindex: number;
  /** The NIC's own MAC, when the program checks the destination MAC; null: no check. */
  ownMac: Buffer | null;
  maglevSize: number;
}

export const vipKey = (family: 4 | 6, addr: Buffer): string => `${family}/${addr.toString('hex', 0, family === 4 ? 4 : 16)}`;
export const serviceKey = (family: 4 | 6, addr: Buffer, proto: number, port: number): string => `${vipKey(family, addr)}/${proto}/${port}`;
const flowKey = (f: HashedFlow): string => `${f.family}/${f.saddr.toString('latin1')}${f.daddr.toString('latin1')}/${f.sport}/${f.dport}/${f.proto}`;

export interface Prediction {
  verdict: Verdict;
  /** The global counter the frame's verdict is counted under. */
  reason: string;
  /** Other global counters it adds one to. */
  also: string[];
  /** For a forwarded frame. */
  service?: number;
  dest?: number;
  bytes?: number;
  newFlow?: boolean;
  /** The frame that must leave (forwarded), or the frame itself (passed). */
  out: Buffer;
  /** How the model decided, for a failure message. */
  why: string;
}

export interface ModelFlow {
  dest: number;
  service: number;
}

const TCP = 6;
const UDP = 17;
const ICMP = 1;
const ICMPV6 = 58;
const IPV6_EXT = new Set([0, 43, 44, 60, 51]);
const MAX_IPV6_EXT = 4;

function isGroupMac(frame: Buffer): boolean {
  return (frame[0]! & 1) === 1;
}

export class Model {
  view: View;
  /** The flow table as the frames made it, by flowKey. */
  readonly flows = new Map<string, ModelFlow & { key: HashedFlow }>();
  /** Every counter the frames added to: global ones by name, traffic by `service <id>` / `dest <id>`. */
  readonly tally = new Map<string, number>();
  readonly traffic = new Map<string, { packets: number; bytes: number; newFlows: number }>();

  constructor(view: View) {
    this.view = view;
  }

  private count(name: string): void {
    this.tally.set(name, (this.tally.get(name) ?? 0) + 1);
  }

  private addTraffic(what: string, bytes: number, newFlow: boolean): void {
    const t = this.traffic.get(what) ?? { packets: 0, bytes: 0, newFlows: 0 };
    t.packets++;
    t.bytes += bytes;
    t.newFlows += newFlow ? 1 : 0;
    this.traffic.set(what, t);
  }

  resetTallies(): void {
    this.tally.clear();
    this.traffic.clear();
  }

  /** Predicts one frame and applies its effect on the flow table and the counters. */
  run(frame: Buffer): Prediction {
    const p = this.decide(frame);
    this.count(p.reason);
    for (const c of p.also) this.count(c);
    if (p.dest !== undefined && p.service !== undefined) {
      this.addTraffic(`service ${p.service}`, p.bytes!, p.newFlow!);
      this.addTraffic(`dest ${p.dest}`, p.bytes!, p.newFlow!);
    }
    return p;
  }

  private decide(frame: Buffer): Prediction {
    const len = frame.length;
    const pass = (reason: string, why: string, also: string[] = []): Prediction => ({ verdict: 'PASS', reason, also, out: frame, why });
    const drop = (reason: string, why: string, also: string[] = []): Prediction => ({ verdict: 'DROP', reason, also, out: frame, why });
    if (len < 14) return pass('pass_not_vip', 'shorter than an Ethernet header');
    let type = frame.readUInt16BE(12);
    let off = 14;
    for (let tags = 0; tags < 2 && (type === 0x8100 || type === 0x88a8); tags++) {
      if (off + 4 > len) return pass('pass_not_vip', 'cut inside a VLAN tag');
      type = frame.readUInt16BE(off + 2);
      off += 4;
    }
    if (type === 0x0806) return this.arp(frame, off, pass, drop);
    if (type !== 0x0800 && type !== 0x86dd) return pass('pass_not_vip', `EtherType ${type.toString(16)}`);
    const v6 = type === 0x86dd;
    const family = v6 ? 6 : 4;
    if (len - off < (v6 ? 40 : 20)) return pass('pass_not_vip', 'IP header cut before its addresses');
    const src = Buffer.alloc(16);
    const dst = Buffer.alloc(16);
    if (v6) {
      frame.copy(src, 0, off + 8, off + 24);
      frame.copy(dst, 0, off + 24, off + 40);
    } else {
      frame.copy(src, 0, off + 12, off + 16);
      frame.copy(dst, 0, off + 16, off + 20);
    }
    const forVip = this.view.vips.has(vipKey(family, dst));

    // the IP header, its length and (IPv6) the extension headers
    let end: number; // end of the IP packet
    let l4: number;
    let proto: number;
    let fragment = false;
    let bad: string | null = null;
    let extUnknown = false;
    if (!v6) {
      const ihl = frame[off]! & 15;
      const tot = frame.readUInt16BE(off + 2);
      proto = frame[off + 9]!;
      end = off + tot;
      l4 = off + ihl * 4;
      if (frame[off]! >> 4 !== 4) bad = `IPv4 version ${frame[off]! >> 4}`;
      else if (ihl < 5) bad = `IPv4 header length ${ihl * 4}`;
      else if (l4 > len) bad = 'IPv4 header beyond the frame';
      else if (tot < ihl * 4) bad = `IPv4 total length ${tot} below its header`;
      else if (end > len) bad = `IPv4 total length ${tot} beyond the frame`;
      else fragment = (frame.readUInt16BE(off + 6) & 0x3fff) !== 0;
    } else {
      end = off + 40 + frame.readUInt16BE(off + 4);
      proto = frame[off + 6]!;
      l4 = off + 40;
      if (frame[off]! >> 4 !== 6) bad = `IPv6 version ${frame[off]! >> 4}`;
      else if (end > len) bad = 'IPv6 payload beyond the frame';
      else {
        for (let n = 0; IPV6_EXT.has(proto); n++) {
          if (n === MAX_IPV6_EXT) {
            extUnknown = true;
            break;
          }
          if (l4 + 8 > end) {
            bad = `extension header ${proto} beyond the IPv6 payload`;
            break;
          }
          const next = frame[l4]!;
          if (proto === 44) {
            const fo = frame.readUInt16BE(l4 + 2);
            const later = fo >> 3 !== 0;
            if (later || (fo & 1) === 1) fragment = true;
            l4 += 8;
            proto = next;
            if (later) break; // what follows is a piece of the payload, not headers
            continue;
          }
          const hl = proto === 51 ? (frame[l4 + 1]! + 2) * 4 : (frame[l4 + 1]! + 1) * 8;
          if (l4 + hl > end) {
            bad = `extension header ${proto} beyond the IPv6 payload`;
            break;
          }
          l4 += hl;
          proto = next;
        }
      }
    }
    const ipBytes = end - off;

    if (!forVip) {
      // the solicitation gate: a well-formed solicitation for an owned VIP, to any address
      if (v6 && !bad && !extUnknown && !fragment && proto === ICMPV6) {
        const gate = this.solicitation(frame, off, l4, end);
        if (gate) return gate.verdict === 'PASS' ? pass(gate.reason, gate.why) : drop(gate.reason, gate.why);
      }
      return pass('pass_not_vip', 'not for a VIP');
    }
    if (bad) return drop('drop_malformed', bad);
    if (extUnknown) return pass('pass_unsupported', `more than ${MAX_IPV6_EXT} extension headers`, ['ipv6_ext_unknown']);

    const flow: HashedFlow = { family, saddr: src, daddr: dst, sport: 0, dport: 0, proto };
    let syn = false;
    let icmpError = false;
    let service: ServiceView | undefined;
    const also: string[] = [];
    if (fragment) {
      also.push('fragment');
      service = this.view.services.get(serviceKey(family, dst, proto, 0));
      if (!service) return drop('drop_fragment', `fragment, no port-less service of ${vipKey(family, dst)} proto ${proto}`, also);
    } else {
      if (proto === TCP || proto === UDP) {
        if (l4 + (proto === TCP ? 20 : 8) > end) return drop('drop_malformed', `${proto === TCP ? 'TCP' : 'UDP'} header beyond the IP packet`);
        flow.sport = frame.readUInt16BE(l4);
        flow.dport = frame.readUInt16BE(l4 + 2);
        if (proto === TCP) syn = (frame[l4 + 13]! & 0x12) === 0x02;
      } else if ((proto === ICMP && !v6) || (proto === ICMPV6 && v6)) {
        if (l4 + 8 > end) return drop('drop_malformed', 'ICMP header beyond the IP packet');
        const t = frame[l4]!;
        const error = v6 ? t >= 1 && t <= 4 : t === 3 || t === 4 || t === 11 || t === 12;
        if (!error) {
          const gate = v6 ? this.solicitation(frame, off, l4, end) : null;
          if (gate) return gate.verdict === 'PASS' ? pass(gate.reason, gate.why) : drop(gate.reason, gate.why);
          return pass('pass_unsupported', `ICMP type ${t} to a VIP`);
        }
        const q = l4 + 8;
        let qproto: number;
        let qhl: number;
        if (!v6) {
          if (q + 20 > end) return drop('drop_malformed', 'quoted IPv4 header beyond the IP packet');
          const ihl = frame[q]! & 15;
          if (frame[q]! >> 4 !== 4 || ihl < 5) return drop('drop_malformed', 'quoted header is not IPv4');
          qhl = ihl * 4;
          if (q + qhl > end) return drop('drop_malformed', 'quoted IPv4 header beyond the IP packet');
          qproto = frame[q + 9]!;
        } else {
          if (q + 40 > end) return drop('drop_malformed', 'quoted IPv6 header beyond the IP packet');
          if (frame[q]! >> 4 !== 6) return drop('drop_malformed', 'quoted header is not IPv6');
          qhl = 40;
          qproto = frame[q + 6]!;
        }
        if (qproto !== TCP && qproto !== UDP) return pass('pass_unsupported', `ICMP error quoting protocol ${qproto}`);
        if (q + qhl + 4 > end) return drop('drop_malformed', 'quoted ports beyond the IP packet');
        // the quoted packet went from VIP:port to the client: the flow is the other way round
        flow.saddr = Buffer.alloc(16);
        flow.daddr = Buffer.alloc(16);
        if (v6) {
          frame.copy(flow.saddr, 0, q + 24, q + 40);
          frame.copy(flow.daddr, 0, q + 8, q + 24);
        } else {
          frame.copy(flow.saddr, 0, q + 16, q + 20);
          frame.copy(flow.daddr, 0, q + 12, q + 16);
        }
        // an error is sent to the source of the packet it quotes: one quoting another address's packet is not this VIP's
        if (!flow.daddr.equals(dst)) return pass('pass_not_vip', `ICMP error to ${vipKey(family, dst)} quoting a packet from ${vipKey(family, flow.daddr)}`);
        flow.proto = qproto;
        flow.sport = frame.readUInt16BE(q + qhl + 2);
        flow.dport = frame.readUInt16BE(q + qhl);
        icmpError = true;
      } else {
        return pass('pass_unsupported', `protocol ${proto} to a VIP`);
      }
      service =
        this.view.services.get(serviceKey(family, flow.daddr, flow.proto, flow.dport)) ??
        (flow.dport !== 0 ? this.view.services.get(serviceKey(family, flow.daddr, flow.proto, 0)) : undefined);
      if (!service) return pass('pass_not_vip', `no service for ${vipKey(family, flow.daddr)} proto ${flow.proto} port ${flow.dport}`);
    }

    if (this.view.ownMac && (isGroupMac(frame) || !frame.subarray(0, 6).equals(this.view.ownMac)))
      return pass(ownMacRule.reason, `addressed to ${frame.toString('hex', 0, 6)}, not to the NIC's ${this.view.ownMac.toString('hex')}`, also);

    // the hash is the program's definition (src/dataplane/abi.ts): the one thing the model shares with it
    const hash = service.sourceHash || fragment ? hashSource(flow, service.seed) : hashFlow(flow, service.seed);
    const slot = hashToSlot(hash, this.view.maglevSize);
    const owner = service.dest[slot]!;
    const prev = service.prev[slot]!;
    const svcId = service.id;
    const usable = (id: number) => {
      const d = id === 0 ? undefined : this.view.dests[id];
      return d !== undefined && d.service === svcId && (d.state === CONSTANTS.DEST_ACTIVE || d.state === CONSTANTS.DEST_DRAINING);
    };
    let dest: number;
    let newFlow: boolean;
    let why = `service ${svcId} slot ${slot} owner ${owner} prev ${prev}`;
    if (prev === 0) {
      dest = owner;
      newFlow = syn;
    } else if (syn) {
      dest = owner;
      newFlow = true;
      if (dest !== 0) this.record(flow, dest, svcId);
      why += ': SYN to the owner';
    } else {
      const k = flowKey(flow);
      const known = this.flows.get(k);
      if (known && usable(known.dest)) {
        also.push('flow_hit');
        dest = known.dest;
        newFlow = false;
        why += `: known flow to ${dest}`;
      } else {
        also.push('flow_miss');
        if ((icmpError || flow.proto === TCP) && usable(prev)) {
          dest = prev;
          newFlow = false;
          why += ': unknown, to the previous owner';
        } else {
          dest = owner;
          newFlow = !icmpError;
          why += known ? ': its destination is gone, to the owner' : ': unknown, to the owner';
        }
        if (!icmpError && dest !== 0) this.record(flow, dest, svcId);
      }
    }
    if (!usable(dest)) {
      if (service.noBackendPass) return pass('pass_no_backend', `${why}: no usable destination`, also);
      return drop('drop_no_backend', `${why}: no usable destination`, also);
    }
    const d = this.view.dests[dest]!;
    if (icmpError) also.push('icmp_error_steered');
    const out = Buffer.from(frame);
    d.mac.copy(out, 0);
    d.srcMac.copy(out, 6);
    const redirect = d.ifindex !== 0 && d.ifindex !== this.view.ingressIfindex;
    return {
      verdict: redirect ? 'REDIRECT' : 'TX',
      reason: redirect ? 'xdp_redirect' : 'xdp_tx',
      also,
      service: svcId,
      dest,
      bytes: ipBytes,
      newFlow,
      out,
      why: `${why}: to ${dest}`,
    };
  }

  /** Replaces the model's flow table (with the kernel's, after frames the two disagreed on). */
  setFlows(entries: Iterable<{ key: HashedFlow; dest: number; service: number }>): void {
    this.flows.clear();
    for (const e of entries) this.record(e.key, e.dest, e.service);
  }

  private record(flow: HashedFlow, dest: number, service: number): void {
    this.flows.set(flowKey(flow), { dest, service, key: { ...flow } });
  }

  /** The gate's verdict for a well-formed neighbour solicitation of an owned VIP at l4, else null. */
  private solicitation(frame: Buffer, ip: number, l4: number, end: number): { verdict: Verdict; reason: string; why: string } | null {
    if (l4 + 24 > end || frame[l4] !== 135 || frame[l4 + 1] !== 0 || frame[ip + 7] !== 255) return null;
    const target = frame.subarray(l4 + 8, l4 + 24);
    if (!this.view.owned.has(vipKey(6, target))) return null;
    return this.gate(`solicitation for owned ${target.toString('hex')}`);
  }

  private gate(why: string): { verdict: Verdict; reason: string; why: string } {
    return this.view.claiming
      ? { verdict: 'PASS', reason: 'pass_neigh_owned', why: `${why}, claimed` }
      : { verdict: 'DROP', reason: 'drop_neigh_expired', why: `${why}, claim lapsed` };
  }

  private arp(frame: Buffer, off: number, pass: (r: string, w: string) => Prediction, drop: (r: string, w: string) => Prediction): Prediction {
    if (off + 28 > frame.length) return pass('pass_not_vip', 'ARP cut short');
    const htype = frame.readUInt16BE(off);
    const request =
      (htype === 1 || htype === 6) &&
      frame.readUInt16BE(off + 2) === 0x0800 &&
      frame[off + 4] === 6 &&
      frame[off + 5] === 4 &&
      frame.readUInt16BE(off + 6) === 1;
    if (!request) return pass('pass_not_vip', 'ARP, not a request');
    const spa = frame.subarray(off + 14, off + 18);
    const tpa = frame.subarray(off + 24, off + 28);
    if (spa.equals(tpa)) return pass('pass_not_vip', 'gratuitous ARP');
    const target = Buffer.alloc(16);
    tpa.copy(target);
    if (!this.view.owned.has(vipKey(4, target))) return pass('pass_not_vip', 'ARP request for an address not owned');
    const g = this.gate(`ARP request for owned ${tpa.toString('hex')}`);
    return g.verdict === 'PASS' ? pass(g.reason, g.why) : drop(g.reason, g.why);
  }
}

/** A frame for a service not addressed to the NIC's own MAC, when the program knows it: passed, counted under this. */
export const ownMacRule = { reason: 'pass_not_our_mac' };
