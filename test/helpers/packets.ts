// Builds test frames byte by byte: Ethernet (with VLAN tags), IPv4 (with
// options and fragments), IPv6 (with extension headers), TCP, UDP and ICMP
// errors. Checksums are filled where a receiver would check them.
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

export function ipv6(src: string, dst: string, l4: L4, ext: Ipv6Ext[] = []): Buffer {
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
  hdr.writeUInt8(64, 7);
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
  hdr.writeUInt16BE(v6 ? 0x86dd : 0x0800, off);
  return Buffer.concat([hdr, ip]);
}

/** The frame with its destination and source MACs replaced (what a forwarded frame must be). */
export function withMacs(frame: Buffer, dst: Buffer, src: Buffer): Buffer {
  const out = Buffer.from(frame);
  dst.copy(out, 0);
  src.copy(out, 6);
  return out;
}
