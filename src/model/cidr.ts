// Address ranges (CIDRs) of the Kubernetes mode: the CIDRs externalIPs may be served
// from, and the pools LoadBalancer addresses are allocated from. Parsing a
// CIDR, asking whether an address is in one, and finding a range's lowest
// free address. Pure.
import { formatIp, parseIp, unusableAddress, type Family, type IpAddress } from './address.ts';

export interface Cidr {
  /** As written in the settings ("198.51.100.64/26"), for messages. */
  readonly text: string;
  readonly family: Family;
  /** The first address, as a number (IPv4: 32 bits, IPv6: 128). */
  readonly first: bigint;
  readonly prefix: number;
  /** The first address's bytes (network order), to compare prefixes without arithmetic. */
  readonly bytes: Buffer;
}

const BITS: Readonly<Record<Family, number>> = { 4: 32, 6: 128 };

/** An address as a number: its 4 (IPv4) or 16 (IPv6) bytes, big-endian. */
export function addressNumber(ip: IpAddress): bigint {
  let n = 0n;
  for (const b of ip.bytes.subarray(0, ip.family === 4 ? 4 : 16)) n = (n << 8n) | BigInt(b);
  return n;
}

/** The address of a number (the inverse of addressNumber). */
export function numberAddress(n: bigint, family: Family): IpAddress {
  const bytes = Buffer.alloc(16);
  const len = family === 4 ? 4 : 16;
  for (let i = len - 1; i >= 0; i--, n >>= 8n) bytes[i] = Number(n & 0xffn);
  const ip = parseIp(formatIp(bytes, family));
  if (!ip) throw new Error(`no address for ${n} (IPv${family})`);
  return ip;
}

/**
 * "198.51.100.64/26", "2001:db8:64::/120", or one address (a /32 or /128) →
 * a Cidr; a string saying what was expected when it is none of these, or
 * when bits are set past the prefix ("198.51.100.65/26" names no range: its
 * writer meant .64/26 or .65/32, and guessing would serve the wrong one).
 */
export function parseCidr(text: string): Cidr | string {
  const [addr = '', prefixText, extra] = text.split('/');
  const ip = parseIp(addr);
  if (!ip || extra !== undefined) return `a CIDR such as 198.51.100.0/24 or 2001:db8::/64 (got ${JSON.stringify(text)})`;
  const bits = BITS[ip.family];
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return `a prefix length from 0 to ${bits} in ${JSON.stringify(text)}`;
  const first = addressNumber(ip);
  const hostBits = BigInt(bits - prefix);
  if (first & ((1n << hostBits) - 1n)) return `${text} has bits set past its /${prefix}: write the range's first address (${numberAddress((first >> hostBits) << hostBits, ip.family).text}/${prefix})`;
  return { text, family: ip.family, first, prefix, bytes: ip.bytes };
}

/** The number of addresses in the range. */
function size(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.family] - c.prefix);
}

/** Whether the address is inside the range (same family, same first prefix bits). */
export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (ip.family !== c.family) return false;
  const whole = c.prefix >> 3;
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== c.bytes[i]) return false;
  const rest = c.prefix & 7;
  return rest === 0 || ((ip.bytes[whole]! ^ c.bytes[whole]!) & (0xff << (8 - rest)) & 0xff) === 0;
}

/** The first range of the list that holds the address, or undefined. */
export function rangeOf(ranges: readonly Cidr[], ip: IpAddress): Cidr | undefined {
  return ranges.find((c) => cidrContains(c, ip));
}

/**
 * How many addresses firstFree looks at past the taken ones before it calls a
 * range exhausted: a range made mostly of unusable addresses (a multicast
 * pool) would otherwise be walked address by address.
 */
const SCAN_SLACK = 65_536;

/**
 * The lowest address of the range that is usable as a VIP (unusableAddress)
 * and not taken, or null when there is none. Looks at no more than
 * taken.size + SCAN_SLACK addresses, so a /64 pool costs what its allocated
 * addresses cost. from: where to start (an allocator that knows every
 * address below it is taken skips them).
 */
export function firstFree(c: Cidr, taken: ReadonlySet<string>, from: bigint = c.first): IpAddress | null {
  const end = c.first + size(c);
  let budget = taken.size + SCAN_SLACK;
  for (let n = from > c.first ? from : c.first; n < end && budget > 0; n++, budget--) {
    const ip = numberAddress(n, c.family);
    if (!taken.has(ip.text) && unusableAddress(ip) === null) return ip;
  }
  return null;
}

/** Orders addresses: IPv4 before IPv6, then by number (so 10.0.0.9 before 10.0.0.10). */
export function compareAddresses(a: IpAddress, b: IpAddress): number {
  if (a.family !== b.family) return a.family - b.family;
  const len = a.family === 4 ? 4 : 16;
  return a.bytes.compare(b.bytes, 0, len, 0, len);
}
