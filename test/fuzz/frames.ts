// The fuzzer's frame generator: seeded (Rng), so a seed names every frame it
// makes. It builds well-formed frames from what a client of the world knows
// (its services, VIPs and owned VIPs; never the maps) and then, for some,
// mutates fields or bytes, pads or cuts them:
// - Ethernet with 0-2 VLAN tags (802.1Q / 802.1ad, sometimes a third), to the
//   director's MAC or to a group or another host's;
// - IPv4 with options and fragments, IPv6 with chains of extension headers
//   (hop-by-hop, routing, destination options, AH, fragment: atomic, first,
//   later), TCP with every kind of flags, UDP, payloads of any length;
// - VIP and non-VIP destinations: the director itself, neighbours of the
//   VIPs, group addresses, and addresses that share a VIP's bit in the
//   data plane's prefilter (the generator may aim at the program's weak
//   spots; the model never looks at them);
// - ICMP and ICMPv6 errors quoting replies of random and of live flows, the
//   quote cut anywhere; echo and other non-errors;
// - ARP (requests, replies, probes, gratuitous, other hardware types) and
//   neighbour solicitations (the ownership gate), valid and not.
// Flows come from a pool, so the same 5-tuples come back (SYN, then the rest)
// and the flow table matters.
import { vipFilterBit } from '../../src/dataplane/abi.ts';
import { MAC } from '../helpers/packets.ts';
import type { Rng } from './rng.ts';
import type { Knowledge } from './world.ts';

const DIRECTOR_MAC = MAC.director;

interface Flow {
  family: 4 | 6;
  client: Buffer; // 16 bytes
  vip: Buffer; // 16 bytes
  proto: number;
  sport: number;
  dport: number;
}

const TCP = 6;
const UDP = 17;

function checksum(b: Buffer, start = 0, end = b.length): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += b.readUInt16BE(i);
  if ((end - start) % 2) sum += b[end - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function addr4(a: number, b: number, c: number, d: number): Buffer {
  const out = Buffer.alloc(16);
  out[0] = a;
  out[1] = b;
  out[2] = c;
  out[3] = d;
  return out;
}

function addr6(hex: string): Buffer {
  return Buffer.from(hex.padStart(32, '0'), 'hex');
}

/** 2001:db8:: + the low 32 bits given. */
function db8(low: number): Buffer {
  const b = addr6('20010db8000000000000000000000000');
  b.writeUInt32BE(low >>> 0, 12);
  return b;
}

/** Multiplicative inverse of an odd 32-bit number modulo 2^32 (Newton). */
function inverse32(a: number): number {
  let x = a;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x));
  return x >>> 0;
}
const GOLDEN_INV = inverse32(0x9e3779b1);

/** An address other than `vip` whose prefilter bit is the VIP's (a false positive of the prefilter). */
function prefilterTwin(rng: Rng, family: 4 | 6, vip: Buffer): Buffer {
  const bit = vipFilterBit(vip, family);
  for (;;) {
    const k = Math.imul(((bit << 16) | rng.u16()) >>> 0, GOLDEN_INV) >>> 0; // (k * golden) >>> 16 === bit
    const out = Buffer.from(vip);
    out.writeUInt32LE(k, family === 6 ? 12 : 0);
    if (!out.equals(vip)) return out;
  }
}

export class FrameGen {
  private readonly rng: Rng;
  private readonly k: Knowledge;
  private readonly flows: Flow[] = [];
  private readonly nonVip4: Buffer[];
  private readonly nonVip6: Buffer[];

  constructor(rng: Rng, k: Knowledge) {
    this.rng = rng;
    this.k = k;
    const v4s = k.vips.filter((v) => v.family === 4);
    const v6s = k.vips.filter((v) => v.family === 6);
    this.nonVip4 = [
      addr4(10, 240, 0, 2), // the director
      addr4(10, 240, 0, 200),
      addr4(10, 240, 0, 210),
      addr4(10, 240, 0, 101),
      addr4(255, 255, 255, 255),
      addr4(224, 0, 0, 1),
      addr4(0, 0, 0, 0),
      ...v4s.flatMap((v) => [prefilterTwin(rng, 4, v.addr), prefilterTwin(rng, 4, v.addr)]),
    ];
    this.nonVip6 = [
      db8(2),
      db8(0x200),
      addr6('ff020000000000000000000000000001'),
      addr6('fe800000000000000000000000000001'),
      ...k.owned.filter((o) => o.family === 6).map((o) => solicitedNode(o.addr)),
      ...v6s.flatMap((v) => [prefilterTwin(rng, 6, v.addr), prefilterTwin(rng, 6, v.addr)]),
    ];
    for (let i = 0; i < 1500; i++) this.flows.push(this.freshFlow());
  }

  private client(family: 4 | 6): Buffer {
    const r = this.rng;
    if (family === 4) return r.chance(0.5) ? addr4(198, 51, 100, r.int(256)) : addr4(1 + r.int(223), r.int(256), r.int(256), r.int(256));
    const b = addr6('20010db80000000c0000000000000000');
    b.writeUInt32BE(r.u32(), 12);
    if (r.chance(0.3)) b.writeUInt32BE(r.u32(), 8);
    return b;
  }

  private freshFlow(): Flow {
    const r = this.rng;
    if (this.k.services.length === 0 || r.chance(0.1)) {
      const family = r.chance(0.5) ? 4 : 6;
      const vips = this.k.vips.filter((v) => v.family === family);
      const vip = vips.length > 0 ? r.pick(vips).addr : family === 4 ? addr4(10, 240, 0, 201) : db8(0x201);
      return { family, client: this.client(family), vip, proto: r.chance(0.5) ? TCP : UDP, sport: r.u16(), dport: r.chance(0.5) ? r.u16() : r.pick([22, 80, 443, 53, 8080]) };
    }
    const s = r.pick(this.k.services);
    return { family: s.family, client: this.client(s.family), vip: s.vip, proto: s.proto, sport: r.chance(0.05) ? r.int(2) : r.u16(), dport: s.port !== 0 ? s.port : r.u16() };
  }

  private flow(): Flow {
    const r = this.rng;
    if (r.chance(0.75)) return r.pick(this.flows);
    const f = this.freshFlow();
    this.flows[r.int(this.flows.length)] = f;
    return f;
  }

  private nonVip(family: 4 | 6): Buffer {
    const r = this.rng;
    if (r.chance(0.2)) return this.client(family);
    return r.pick(family === 4 ? this.nonVip4 : this.nonVip6);
  }

  private payload(): Buffer {
    const r = this.rng;
    const n = r.weighted<number>([
      [5, 0],
      [3, 1 + r.int(16)],
      [3, r.int(200)],
      [1, 1000 + r.int(400)],
    ]);
    return r.bytes(n);
  }

  /** The next frame. */
  next(): Buffer {
    const r = this.rng;
    const kind = r.weighted<string>([
      [38, 'flow'],
      [6, 'unserved'],
      [14, 'non-vip'],
      [12, 'icmp-error'],
      [3, 'icmp-other'],
      [8, 'fragment'],
      [5, 'arp'],
      [6, 'ns'],
      [2, 'other-ethertype'],
      [3, 'garbage'],
    ]);
    let ip: Buffer;
    switch (kind) {
      case 'flow': {
        const f = this.flow();
        ip = this.ip(f.family, f.client, f.vip, this.l4(f.proto, f.sport, f.dport));
        break;
      }
      case 'unserved': {
        const f = this.flow();
        const proto = r.pick([TCP, UDP, 1, 58, 47, 132, 50, 59, 135, r.u8()]);
        ip = this.ip(f.family, f.client, f.vip, this.l4(proto, f.sport, r.chance(0.5) ? r.u16() : f.dport));
        break;
      }
      case 'non-vip': {
        const f = this.flow();
        const proto = r.pick([TCP, UDP, TCP, UDP, 1, 58, 47]);
        ip = this.ip(f.family, f.client, this.nonVip(f.family), this.l4(proto, f.sport, f.dport));
        break;
      }
      case 'icmp-error':
        ip = this.icmpError();
        break;
      case 'icmp-other': {
        const f = this.flow();
        ip = this.ip(f.family, f.client, r.chance(0.8) ? f.vip : this.nonVip(f.family), this.icmp(f.family, r.pick(f.family === 4 ? [0, 8, 5, 13, r.u8()] : [128, 129, 133, 134, 136, 137, r.u8()]), r.u8(), r.bytes(4), r.bytes(r.int(40))));
        break;
      }
      case 'fragment':
        ip = this.fragment();
        break;
      case 'arp':
        return this.finish(this.arp(), 0x0806);
      case 'ns':
        ip = this.solicitation();
        break;
      case 'other-ethertype':
        return this.finish(r.bytes(r.int(80)), r.pick([0x88cc, 0x8847, 0x0842, 0x86dd ^ 1, r.u16()]));
      default: {
        // bytes that only look like IP from afar
        const b = r.bytes(r.int(120));
        if (b.length > 0) b[0] = r.chance(0.5) ? 0x45 : 0x60 | (b[0]! & 15);
        return this.finish(b, r.chance(0.5) ? 0x0800 : 0x86dd);
      }
    }
    return this.finish(ip, ip[0]! >> 4 === 6 ? 0x86dd : 0x0800);
  }

  /** Ethernet header, VLAN tags, then padding, mutations and cuts. */
  private finish(l3: Buffer, type: number): Buffer {
    const r = this.rng;
    const dst = r.weighted<Buffer>([
      [85, DIRECTOR_MAC],
      [4, Buffer.alloc(6, 0xff)],
      [3, Buffer.from([0x33, 0x33, 0xff, r.u8(), r.u8(), r.u8()])],
      [3, Buffer.from([0x01, 0x00, 0x5e, 0, 0, r.u8()])],
      [5, Buffer.from([0x02, 0x00, 0x00, 0x00, 0x01, r.u8()])],
    ]);
    const tags = r.weighted<number>([
      [70, 0],
      [18, 1],
      [10, 2],
      [2, 3],
    ]);
    const eth = Buffer.alloc(14 + 4 * tags);
    dst.copy(eth, 0);
    Buffer.from([0x02, 0x00, 0x00, 0x00, 0x00, r.chance(0.5) ? 0x01 : 0x0a]).copy(eth, 6);
    let at = 12;
    for (let i = 0; i < tags; i++) {
      eth.writeUInt16BE(r.chance(0.5) ? 0x8100 : 0x88a8, at);
      eth.writeUInt16BE(r.u16(), at + 2);
      at += 4;
    }
    eth.writeUInt16BE(type, at);
    let frame = Buffer.concat([eth, l3]);
    const l3at = eth.length;
    if (r.chance(0.2)) frame = Buffer.concat([frame, r.chance(0.5) ? Buffer.alloc(1 + r.int(30)) : r.bytes(1 + r.int(30))]);
    if (r.chance(0.14)) this.mutate(frame, l3at);
    if (r.chance(0.12) && frame.length > 14) {
      // cut: anywhere, most often near the start of a header
      const near = r.pick([l3at, l3at + 20, l3at + 40, l3at + 48, l3at + 60, l3at + 68, l3at + 88, frame.length]);
      const len = r.chance(0.7) ? near + r.range(-4, 4) : r.range(14, frame.length - 1);
      frame = frame.subarray(0, Math.max(14, Math.min(frame.length - 1, len)));
    }
    return frame;
  }

  /** Changes a field to a value on or past its bounds, or a few bytes anywhere. */
  private mutate(frame: Buffer, l3: number): void {
    const r = this.rng;
    const set8 = (at: number, v: number) => at < frame.length && (frame[at] = v & 0xff);
    const set16 = (at: number, v: number) => at + 1 < frame.length && frame.writeUInt16BE(v & 0xffff, at);
    const v6 = frame[l3]! >> 4 === 6;
    switch (r.int(8)) {
      case 0: // IPv4 header length / version nibble
        set8(l3, r.chance(0.5) ? (frame[l3]! & 0xf0) | r.int(16) : (r.int(16) << 4) | (frame[l3]! & 15));
        break;
      case 1: // total length / payload length
        if (l3 + 5 < frame.length) {
          const at = v6 ? l3 + 4 : l3 + 2;
          const cur = frame.readUInt16BE(at);
          set16(at, r.chance(0.5) ? cur + r.range(-8, 8) : r.u16());
        }
        break;
      case 2: // protocol / next header
        set8(v6 ? l3 + 6 : l3 + 9, r.pick([0, 6, 17, 1, 58, 43, 44, 60, 51, r.u8()]));
        break;
      case 3: // fragment bits
        if (!v6) set16(l3 + 6, r.pick([0x2000, 0x0001, 0x4000, 0x3fff, r.u16()]));
        else set8(l3 + 40 + 1, r.u8()); // a first extension header's length
        break;
      case 4: // the L4 header's region
        set8(l3 + (v6 ? 40 : 20) + r.int(24), r.u8());
        break;
      case 5: // a VLAN tag or the EtherType
        set16(12 + 4 * r.int(3), r.pick([0x8100, 0x88a8, 0x0800, 0x86dd, 0x0806, r.u16()]));
        break;
      default: {
        const n = 1 + r.int(3);
        for (let i = 0; i < n; i++) {
          const at = r.int(Math.min(frame.length, 100));
          frame[at] = frame[at]! ^ (1 << r.int(8));
        }
      }
    }
  }

  private l4(proto: number, sport: number, dport: number): { proto: number; bytes: Buffer } {
    const r = this.rng;
    if (proto === TCP) {
      const opts = r.chance(0.3) ? 4 * (1 + r.int(10)) : 0;
      const payload = this.payload();
      const b = Buffer.alloc(20 + opts + payload.length);
      b.writeUInt16BE(sport, 0);
      b.writeUInt16BE(dport, 2);
      b.writeUInt32BE(r.u32(), 4);
      b.writeUInt32BE(r.u32(), 8);
      b[12] = ((5 + opts / 4) << 4) | (r.chance(0.05) ? r.int(16) : 0);
      b[13] = r.weighted<number>([
        [25, 0x02], // SYN
        [35, 0x10], // ACK
        [15, 0x18], // PSH ACK
        [5, 0x12], // SYN ACK
        [5, 0x11], // FIN ACK
        [3, 0x04], // RST
        [2, 0x03], // SYN FIN
        [2, 0x06], // SYN RST
        [8, r.u8()],
      ]);
      b.writeUInt16BE(r.u16(), 14);
      r.bytes(opts).copy(b, 20);
      payload.copy(b, 20 + opts);
      return { proto, bytes: b };
    }
    if (proto === UDP) {
      const payload = this.payload();
      const b = Buffer.alloc(8 + payload.length);
      b.writeUInt16BE(sport, 0);
      b.writeUInt16BE(dport, 2);
      b.writeUInt16BE(r.chance(0.9) ? b.length : r.u16(), 4);
      payload.copy(b, 8);
      return { proto, bytes: b };
    }
    const b = r.bytes(r.int(64));
    if (b.length >= 4) {
      b.writeUInt16BE(sport, 0);
      b.writeUInt16BE(dport, 2);
    }
    return { proto, bytes: b };
  }

  private icmp(family: 4 | 6, type: number, code: number, rest: Buffer, body: Buffer): { proto: number; bytes: Buffer } {
    const b = Buffer.concat([Buffer.from([type, code, 0, 0]), rest.subarray(0, 4), body]);
    b.writeUInt16BE(checksum(b), 2);
    return { proto: family === 4 ? 1 : 58, bytes: b };
  }

  /** An IPv4 or IPv6 packet around an L4 payload, with options or extension headers. */
  private ip(family: 4 | 6, src: Buffer, dst: Buffer, l4: { proto: number; bytes: Buffer }, frag?: { offset: number; more: boolean; next?: number }): Buffer {
    const r = this.rng;
    if (family === 4) {
      const opts = r.chance(0.2) ? 4 * (1 + r.int(10)) : 0;
      const h = Buffer.alloc(20 + opts);
      h[0] = 0x40 | (5 + opts / 4);
      h[1] = r.chance(0.8) ? 0 : r.u8();
      h.writeUInt16BE(h.length + l4.bytes.length, 2);
      h.writeUInt16BE(r.u16(), 4);
      const flags = frag ? (frag.more ? 0x2000 : 0) | (frag.offset & 0x1fff) : r.chance(0.5) ? 0x4000 : 0;
      h.writeUInt16BE(flags, 6);
      h[8] = r.chance(0.9) ? 64 : r.u8();
      h[9] = l4.proto;
      src.copy(h, 12, 0, 4);
      dst.copy(h, 16, 0, 4);
      if (opts) {
        r.bytes(opts).copy(h, 20);
        if (r.chance(0.5)) h.fill(1, 20); // NOPs
      }
      h.writeUInt16BE(checksum(h), 10);
      return Buffer.concat([h, l4.bytes]);
    }
    const exts: { type: number; bytes: Buffer }[] = [];
    const n = r.weighted<number>([
      [60, 0],
      [15, 1],
      [10, 2],
      [6, 3],
      [5, 4],
      [4, 5],
    ]);
    for (let i = 0; i < n; i++) {
      const t = r.pick([0, 43, 60, 60, 51, 44]);
      if (t === 44) exts.push({ type: 44, bytes: fragHeader(0, false, r.u32()) });
      else if (t === 51) {
        const len = 1 + r.int(4); // AH: (len + 2) * 4 bytes
        const h = r.bytes((len + 2) * 4);
        h[1] = len;
        exts.push({ type: 51, bytes: h });
      } else {
        const len = r.int(3); // (len + 1) * 8 bytes
        const h = r.bytes((len + 1) * 8);
        h[1] = len;
        exts.push({ type: t, bytes: h });
      }
    }
    if (frag) {
      // the unfragmentable part, then the fragment header; a first fragment may go on with options
      exts.push({ type: 44, bytes: fragHeader(frag.offset, frag.more, r.u32()) });
      if (frag.offset === 0 && r.chance(0.2)) exts.push({ type: 60, bytes: Buffer.concat([Buffer.from([0, 0]), r.bytes(6)]) });
    }
    exts.forEach((e, i) => (e.bytes[0] = i + 1 < exts.length ? exts[i + 1]!.type : l4.proto));
    // a later fragment names, as its next header, what followed the fragment header in the first one
    if (frag?.next !== undefined) exts[exts.length - 1]!.bytes[0] = frag.next;
    const payload = Buffer.concat([...exts.map((e) => e.bytes), l4.bytes]);
    const h = Buffer.alloc(40);
    h.writeUInt32BE(0x60000000 | (r.chance(0.8) ? 0 : r.u32() & 0x0fffffff), 0);
    h.writeUInt16BE(payload.length, 4);
    h[6] = exts[0]?.type ?? l4.proto;
    h[7] = r.chance(0.9) ? 64 : r.u8();
    src.copy(h, 8);
    dst.copy(h, 24);
    return Buffer.concat([h, payload]);
  }

  private fragment(): Buffer {
    const r = this.rng;
    const f = this.flow();
    const dst = r.chance(0.85) ? f.vip : this.nonVip(f.family);
    const shape = r.int(4); // first, middle, last, atomic/none
    const offset = shape === 0 || shape === 3 ? 0 : 1 + r.int(180);
    const more = shape === 0 || shape === 1;
    const body = shape === 0 ? this.l4(f.proto, f.sport, f.dport) : { proto: f.proto, bytes: r.bytes(8 + r.int(100)) };
    if (f.family === 4) return this.ip(4, f.client, dst, body, { offset, more });
    const next = offset !== 0 && r.chance(0.15) ? r.pick([60, 43, 0]) : undefined; // a later fragment whose unfragmentable part ended in options
    return this.ip(6, f.client, dst, body, next === undefined ? { offset, more } : { offset, more, next });
  }

  /** An ICMP error (or, sometimes, a look-alike) quoting the reply of a flow: VIP:port → client:sport. */
  private icmpError(): Buffer {
    const r = this.rng;
    const f = this.flow();
    const family = f.family;
    const replyL4 = this.l4(f.proto === TCP || f.proto === UDP ? f.proto : TCP, f.dport, f.sport);
    const quotedFamily = r.chance(0.95) ? family : family === 4 ? 6 : 4;
    const qsrc = r.chance(0.9) ? f.vip : this.nonVip(quotedFamily);
    let quoted = this.ip(quotedFamily, quotedFamily === family ? qsrc : this.client(quotedFamily), f.client, r.chance(0.9) ? replyL4 : { proto: r.pick([1, 58, 47, 132]), bytes: replyL4.bytes });
    const keep = r.weighted<number>([
      [6, quoted.length],
      [3, (quotedFamily === 4 ? 28 : 48) + r.int(8)],
      [2, r.int(quoted.length + 1)],
    ]);
    quoted = quoted.subarray(0, Math.min(quoted.length, keep, 1200));
    const type =
      family === 4
        ? r.weighted<number>([
            [6, 3],
            [2, 11],
            [1, 12],
            [1, 4],
            [1, 5],
            [1, r.u8()],
          ])
        : r.weighted<number>([
            [6, 2],
            [2, 1],
            [2, 3],
            [1, 4],
            [1, r.u8()],
          ]);
    const code = family === 4 && type === 3 ? r.pick([4, 4, 1, 3, 13]) : r.int(4);
    const rest = Buffer.alloc(4);
    rest.writeUInt32BE(r.chance(0.5) ? 1280 + r.int(200) : r.u32());
    const router = family === 4 ? addr4(10, 240, 0, 1) : db8(1);
    const to = r.chance(0.85) ? f.vip : r.chance(0.5) ? this.nonVip(family) : r.pick(this.k.vips.filter((v) => v.family === family).map((v) => v.addr).concat([f.vip]));
    return this.ip(family, router, to, this.icmp(family, type, code, rest, quoted));
  }

  private arp(): Buffer {
    const r = this.rng;
    const owned4 = this.k.owned.filter((o) => o.family === 4).map((o) => o.addr);
    const target = r.weighted<Buffer>([
      [6, owned4.length > 0 ? r.pick(owned4) : addr4(10, 240, 0, 201)],
      [2, this.nonVip(4)],
      [1, addr4(10, 240, 0, 204)],
    ]);
    const b = Buffer.alloc(28);
    b.writeUInt16BE(r.weighted<number>([[8, 1], [2, 6], [1, r.u16()]]), 0);
    b.writeUInt16BE(r.chance(0.92) ? 0x0800 : r.pick([0x86dd, r.u16()]), 2);
    b[4] = r.chance(0.93) ? 6 : r.u8();
    b[5] = r.chance(0.93) ? 4 : r.u8();
    b.writeUInt16BE(r.weighted<number>([[7, 1], [2, 2], [1, r.u16()]]), 6);
    Buffer.from([0x02, 0, 0, 0, 0, 0x0a]).copy(b, 8);
    const sender = r.weighted<Buffer>([[7, this.client(4)], [1, addr4(0, 0, 0, 0)], [2, target]]);
    sender.copy(b, 14, 0, 4);
    target.copy(b, 24, 0, 4);
    return r.chance(0.1) ? b.subarray(0, r.int(28)) : b;
  }

  /** A neighbour solicitation (or another ICMPv6 message of its shape). */
  private solicitation(): Buffer {
    const r = this.rng;
    const owned6 = this.k.owned.filter((o) => o.family === 6).map((o) => o.addr);
    const target = r.weighted<Buffer>([
      [6, owned6.length > 0 ? r.pick(owned6) : db8(0x201)],
      [2, this.nonVip(6)],
    ]);
    const to = r.weighted<Buffer>([
      [5, solicitedNode(target)],
      [2, target],
      [1, db8(2)],
      [1, this.nonVip(6)],
    ]);
    const from = r.chance(0.15) ? Buffer.alloc(16) : this.client(6);
    const type = r.weighted<number>([[9, 135], [1, 136], [1, r.u8()]]);
    const body = Buffer.alloc(20 + (r.chance(0.7) ? 8 : 0));
    target.copy(body, 4);
    if (body.length > 20) {
      body[20] = 1;
      body[21] = 1;
    }
    let msg = this.icmp(6, type, r.chance(0.9) ? 0 : r.u8(), body.subarray(0, 4), body.subarray(4));
    if (r.chance(0.1)) msg = { proto: 58, bytes: msg.bytes.subarray(0, r.int(msg.bytes.length)) };
    const p = this.ip(6, from, to, msg);
    p[7] = r.chance(0.85) ? 255 : r.pick([64, 254, 1, r.u8()]);
    return p;
  }
}

function fragHeader(offset: number, more: boolean, id: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(((offset & 0x1fff) << 3) | (more ? 1 : 0), 2);
  h.writeUInt32BE(id >>> 0, 4);
  return h;
}

/** The solicited-node group of an IPv6 address (ff02::1:ffXX:XXXX). */
function solicitedNode(addr: Buffer): Buffer {
  const b = Buffer.from('ff0200000000000000000001ff000000', 'hex');
  addr.copy(b, 13, 13, 16);
  return b;
}
