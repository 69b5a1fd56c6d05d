// IP addresses as the data plane stores them: 16 bytes in network order, IPv4
// in the first four, and a family of 4 or 6.
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface IpAddress {
  readonly text: string;
  readonly family: Family;
  /** 16 bytes, network order; IPv4 uses the first 4. */
  readonly bytes: Buffer;
}

const parsed = new Map<string, IpAddress | null>();

/**
 * Parses an IPv4 or IPv6 literal; returns null when it is neither, and for an
 * IPv6 address with a zone ("fe80::1%eth0"): xdplb has nowhere to keep the
 * zone, and dropping it silently would name another address. Memoized
 * (bounded): a large config names the same nodes thousands of times, and
 * every reload parses them again. The result is shared: never modify it.
 */
export function parseIp(text: string): IpAddress | null {
  let ip = parsed.get(text);
  if (ip === undefined) {
    if (parsed.size >= 1_000_000) parsed.clear();
    ip = parseIpText(text);
    parsed.set(text, ip);
  }
  return ip;
}

/** What is wrong with a text that parseIp refused, said as what was expected. */
export function ipSyntaxError(text: string): string {
  const zone = text.indexOf('%');
  if (zone >= 0 && isIPv6(text))
    return `an IPv4 or IPv6 address without a zone: the zone of ${text} (%${text.slice(zone + 1)}) is not supported, give the address alone`;
  return 'an IPv4 or IPv6 address';
}

/**
 * Address bytes are cut from shared slabs: a Buffer of its own costs ~230
 * bytes, a view of a slab ~130, and a config of 500,000 backends keeps every
 * address in the memo above.
 */
const SLAB_BYTES = 4096;
let slab = Buffer.alloc(0);
let slabUsed = 0;

function addressBytes(): Buffer {
  if (slabUsed + 16 > slab.length) [slab, slabUsed] = [Buffer.alloc(SLAB_BYTES), 0];
  return slab.subarray(slabUsed, (slabUsed += 16));
}

function parseIpText(text: string): IpAddress | null {
  if (isIPv4(text)) {
    const bytes = addressBytes();
    text.split('.').forEach((part, i) => bytes.writeUInt8(Number(part), i));
    return { text, family: 4, bytes };
  }
  if (!isIPv6(text) || text.includes('%')) return null;
  let tail = text;
  let v4: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    v4 = dotted[1].split('.').map(Number);
    tail = text.slice(0, -dotted[1].length) + '0:0';
  }
  const [head = '', rest] = tail.split('::');
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups = rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = addressBytes();
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  if (v4.length) v4.forEach((b, i) => bytes.writeUInt8(b, 12 + i));
  return { text: formatIp(bytes, 6), family: 6, bytes };
}

/** Whether the first `bits` bits of a and b agree (a plain loop: Buffer.compare with offsets costs more than the whole check). */
function samePrefix(a: Buffer, b: Buffer, bits: number): boolean {
  for (let i = 0; i < bits >> 3; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  return rest === 0 || ((a[bits >> 3]! ^ b[bits >> 3]!) & (0xff << (8 - rest)) & 0xff) === 0;
}

/** Ranges no load-balanced flow can be addressed to, and why. */
const UNUSABLE: readonly { range: string; why: string }[] = [
  { range: '0.0.0.0/8', why: 'is in 0.0.0.0/8 ("this host on this network"): a source address only, never a destination' },
  { range: '127.0.0.0/8', why: 'is a loopback address (127.0.0.0/8): it never leaves the host it is on' },
  { range: '224.0.0.0/4', why: 'is a multicast address (224.0.0.0/4): it names a group of hosts, not one' },
  { range: '255.255.255.255/32', why: 'is the limited broadcast address: it names every host of the segment, not one' },
  { range: '::/128', why: 'is the unspecified address (::): it names no host' },
  { range: '::1/128', why: 'is the loopback address (::1): it never leaves the host it is on' },
  { range: 'ff00::/8', why: 'is a multicast address (ff00::/8): it names a group of hosts, not one' },
  { range: '::ffff:0:0/96', why: 'is an IPv4-mapped address (::ffff:0:0/96), never seen on the wire: write the IPv4 address itself' },
];
const unusableRanges = UNUSABLE.map(({ range, why }) => {
  const [text = '', bits = ''] = range.split('/');
  return { ip: mustParseIp(text), bits: Number(bits), why };
});

/**
 * Why an address cannot be a VIP or a backend (the one host a flow is sent
 * to), or null when it can: unspecified, loopback, multicast, broadcast and
 * IPv4-mapped addresses. Pure; the config schema and `xdplb realserver` use it.
 */
export function unusableAddress(ip: IpAddress): string | null {
  const r = unusableRanges.find((u) => u.ip.family === ip.family && samePrefix(ip.bytes, u.ip.bytes, u.bits));
  return r ? `${ip.text} ${r.why}` : null;
}

/** The canonical text of an address (RFC 5952 for IPv6). */
export function formatIp(bytes: Buffer, family: Family): string {
  if (family === 4) return [...bytes.subarray(0, 4)].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function mustParseIp(text: string): IpAddress {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP address: ${text}`);
  return ip;
}

/** "aa:bb:cc:dd:ee:ff" */
export function formatMac(mac: Buffer): string {
  return [...mac.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function parseMac(text: string): Buffer | null {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(text)) return null;
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}
