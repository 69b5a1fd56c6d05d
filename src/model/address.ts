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
 * Parses an IPv4 or IPv6 literal; returns null when it is neither. Memoized
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

function parseIpText(text: string): IpAddress | null {
  const bytes = Buffer.alloc(16);
  if (isIPv4(text)) {
    text.split('.').forEach((part, i) => bytes.writeUInt8(Number(part), i));
    return { text, family: 4, bytes };
  }
  if (!isIPv6(text)) return null;
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
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  if (v4.length) v4.forEach((b, i) => bytes.writeUInt8(b, 12 + i));
  return { text: formatIp(bytes, 6), family: 6, bytes };
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
