// Builds test frames byte by byte: Ethernet (with VLAN tags), IPv4 (with
// options and fragments), IPv6 (with extension headers), TCP, UDP, ICMP
// errors, ARP and neighbour solicitations. Checksums are filled where a
// receiver would check them (the XDP program checks none: ICMPv6 has none
// here).
import { mustParseIp } from '../../src/model/address.ts';

export const MAC = {
  client: Buffer.from('02000000000a', 'hex'),
  router: Buffer.from('020000000001', 'hex'),
  director: Buffer.from('020000000002', 'hex'),
};

export function backendMac(n: number): Buffer {
  return Buffer.from([0x02, 0, 0, 0, 0x01, n]);
}

export interface L4 {
  proto: number;
  bytes: Buffer;
}

export function tcp(sport: number, dport: number, flags: 'syn' | 'ack' | 'synack' | 'fin' = 'ack', payload = Buffer.alloc(0)): L4 {
  const b = Buffer.alloc(20 + payload.length);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt32BE(1000, 4);
  b.writeUInt32BE(flags === 'syn' ? 0 : 2000, 8);
  b.writeUInt8(5 << 4, 12);
  b.writeUInt8({ syn: 0x02, ack: 0x10, synack: 0x12, fin: 0x11 }[flags], 13);
  b.writeUInt16BE(65535, 14);
  payload.copy(b, 20);
  return { proto: 6, bytes: b };
}

export function udp(sport: number, dport: number, payload = Buffer.from('hello')): L4 {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt16BE(b.length, 4);
  payload.copy(b, 8);
  return { proto: 17, bytes: b };
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface Ipv4Options {
  options?: Buffer; // multiple of 4 bytes
  fragmentOffset?: number; // in 8-byte units
  moreFragments?: boolean;
  ttl?: number;
}

export function ipv4(src: string, dst: string, l4: L4, o: Ipv4Options = {}): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const hdr = Buffer.alloc(20 + opts.length);
  hdr.writeUInt8(0x40 | (hdr.length / 4), 0);
  hdr.writeUInt16BE(hdr.length + l4.bytes.length, 2);
  hdr.writeUInt16BE(0x1234, 4);
  hdr.writeUInt16BE((o.moreFragments ? 0x2000 : 0) | (o.fragmentOffset ?? 0), 6);
  hdr.writeUInt8(o.ttl ?? 64, 8);
  hdr.writeUInt8(l4.proto, 9);
  mustParseIp(src).bytes.copy(hdr, 12, 0, 4);
  mustParseIp(dst).bytes.copy(hdr, 16, 0, 4);
  opts.copy(hdr, 20);
  hdr.writeUInt16BE(checksum(hdr), 10);
  return Buffer.concat([hdr, l4.bytes]);
}

/** An IPv6 extension header: next header is filled in by ipv6(). */
export interface Ipv6Ext {
  type: number; // 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options
  body?: Buffer; // after next-header and length; padded to 8-byte units
  fragmentOffset?: number;
  moreFragments?: boolean;
}

export function ipv6(src: string, dst: string, l4: L4, ext: Ipv6Ext[] = [], o: { hopLimit?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  ext.forEach((e, i) => {
    const next = ext[i + 1]?.type ?? l4.proto;
    let h: Buffer;
    if (e.type === 44) {
      h = Buffer.alloc(8);
      h.writeUInt16BE(((e.fragmentOffset ?? 0) << 3) | (e.moreFragments ? 1 : 0), 2);
      h.writeUInt32BE(0xabcd, 4);
    } else {
      const body = e.body ?? Buffer.alloc(6);
      const len = Math.ceil((body.length + 2) / 8) * 8;
      h = Buffer.alloc(len);
      h.writeUInt8(len / 8 - 1, 1);
      body.copy(h, 2);
    }
    h.writeUInt8(next, 0);
    parts.push(h);
  });
  const payload = Buffer.concat([...parts, l4.bytes]);
  const hdr = Buffer.alloc(40);
  hdr.writeUInt32BE(0x60000000, 0);
  hdr.writeUInt16BE(payload.length, 4);
  hdr.writeUInt8(ext[0]?.type ?? l4.proto, 6);
  hdr.writeUInt8(o.hopLimit ?? 64, 7);
  mustParseIp(src).bytes.copy(hdr, 8);
  mustParseIp(dst).bytes.copy(hdr, 24);
  return Buffer.concat([hdr, payload]);
}

/** ICMP (v4) error quoting `quoted` (an IP packet): type 3 code 4 is "fragmentation needed". */
export function icmp4Error(quoted: Buffer, type = 3, code = 4, mtu = 1400): L4 {
  const b = Buffer.alloc(8 + Math.min(quoted.length, 28 + 40));
  b.writeUInt8(type, 0);
  b.writeUInt8(code, 1);
  b.writeUInt16BE(mtu, 6);
  quoted.copy(b, 8, 0, b.length - 8);
  b.writeUInt16BE(checksum(b), 2);
  return { proto: 1, bytes: b };
}

/** ICMPv6 error: type 2 is "packet too big". */
export function icmp6Error(quoted: Buffer, type = 2, mtu = 1280): L4 {
  const b = Buffer.alloc(8 + Math.min(quoted.length, 48 + 40));
  b.writeUInt8(type, 0);
  b.writeUInt32BE(mtu, 4);
  quoted.copy(b, 8, 0, b.length - 8);
  return { proto: 58, bytes: b };
}

export function icmp4Echo(): L4 {
  const b = Buffer.alloc(16);
  b.writeUInt8(8, 0);
  b.writeUInt16BE(checksum(b), 2);
  return { proto: 1, bytes: b };
}

export interface EthOptions {
  dst?: Buffer;
  src?: Buffer;
  /** VLAN IDs, outermost first; two tags make an 802.1ad + 802.1Q stack. */
  vlans?: number[];
  /** The EtherType; by default IPv4 or IPv6 from the packet's version. */
  type?: number;
}

export function ethernet(ip: Buffer, o: EthOptions = {}): Buffer {
  const vlans = o.vlans ?? [];
  const v6 = ip[0]! >> 4 === 6;
  const hdr = Buffer.alloc(14 + 4 * vlans.length);
  (o.dst ?? MAC.director).copy(hdr, 0);
  (o.src ?? MAC.router).copy(hdr, 6);
  let off = 12;
  vlans.forEach((id, i) => {
    hdr.writeUInt16BE(i === 0 && vlans.length === 2 ? 0x88a8 : 0x8100, off);
    hdr.writeUInt16BE(id, off + 2);
    off += 4;
  });
  hdr.writeUInt16BE(o.type ?? (v6 ? 0x86dd : 0x0800), off);
  return Buffer.concat([hdr, ip]);
}

/** The frame with its destination and source MACs replaced (what a forwarded frame must be). */
export function withMacs(frame: Buffer, dst: Buffer, src: Buffer): Buffer {
  const out = Buffer.from(frame);
  dst.copy(out, 0);
  src.copy(out, 6);
  return out;
}

export const BROADCAST = Buffer.alloc(6, 0xff);
export const ETH_P_ARP = 0x0806;

export interface ArpOptions {
  /** ARP hardware type: 1 Ethernet (default), 6 IEEE 802. */
  htype?: number;
  /** Protocol type: 0x0800 IPv4 (default). */
  ptype?: number;
  /** Hardware address length: 6 (default). */
  hlen?: number;
  senderMac?: Buffer;
}

/** An IPv4-over-Ethernet ARP packet (28 bytes): op 1 request (target MAC 0), op 2 reply; send it with ethernet(..., { type: ETH_P_ARP }). */
export function arp(op: 'request' | 'reply' | number, sender: string, target: string, o: ArpOptions = {}): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(o.htype ?? 1, 0);
  b.writeUInt16BE(o.ptype ?? 0x0800, 2);
  b.writeUInt8(o.hlen ?? 6, 4);
  b.writeUInt8(4, 5);
  b.writeUInt16BE(op === 'request' ? 1 : op === 'reply' ? 2 : op, 6);
  (o.senderMac ?? MAC.client).copy(b, 8);
  mustParseIp(sender).bytes.copy(b, 14, 0, 4);
  if (op === 'reply') MAC.director.copy(b, 18);
  mustParseIp(target).bytes.copy(b, 24, 0, 4);
  return b;
}

/** The solicited-node multicast group of an IPv6 address (ff02::1:ffXX:XXXX, RFC 4291). */
export function solicitedNode(address: string): string {
  const b = mustParseIp(address).bytes;
  return `ff02::1:ff${b[13]!.toString(16).padStart(2, '0')}:${b.readUInt16BE(14).toString(16)}`;
}

/** The Ethernet group of an IPv6 multicast address (33:33 and its last 32 bits). */
export function multicastMac(address: string): Buffer {
  return Buffer.concat([Buffer.from([0x33, 0x33]), mustParseIp(address).bytes.subarray(12, 16)]);
}

/** ICMPv6 neighbour solicitation for target, with a source link-layer address option (none from ::, as in DAD); `type` and `code` for other ICMPv6 messages of that shape. */
export function neighbourSolicitation(target: string, o: { sourceMac?: Buffer | null; type?: number; code?: number } = {}): L4 {
  const lla = o.sourceMac === null ? Buffer.alloc(0) : Buffer.concat([Buffer.from([1, 1]), o.sourceMac ?? MAC.client]);
  const b = Buffer.alloc(24 + lla.length);
  b.writeUInt8(o.type ?? 135, 0);
  b.writeUInt8(o.code ?? 0, 1);
  mustParseIp(target).bytes.copy(b, 8);
  lla.copy(b, 24);
  return { proto: 58, bytes: b };
}
