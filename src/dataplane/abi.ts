// Codecs for the ABI structs of bpf/xdplb_abi.h, and its constants. LAYOUT
// and the constants are this side's copy of that header, so that the pure
// code (model/, reconcile/) runs without the addon: test/dataplane/abi.test.ts
// compares LAYOUT with what the C compiler made of the header (through the
// addon), field by field, and every constant with the header's #define (and
// with the addon's export, for those it exports). Pure: nothing here loads
// the addon (the global counters' names come from it: see dataplane.ts).
import { createHash } from 'node:crypto';
import type { Family } from '../model/address.ts';
import type { Health } from '../model/health.ts';
import type { ServiceKey } from '../model/keys.ts';
import type { NoBackendPolicy, Scheduler } from '../model/service.ts';

export const LAYOUT = {
  service_key: { size: 20, offsets: { addr: 0, port: 16, proto: 18, family: 19 } },
  service: { size: 16, offsets: { id: 0, flags: 4, seed: 8 } },
  service_entry: { size: 36, offsets: { key: 0, service: 20 } },
  slot: { size: 8, offsets: { dest: 0, prev_dest: 4 } },
  dest: { size: 24, offsets: { ifindex: 0, mac: 4, src_mac: 10, state: 16, service: 20 } },
  dest_info: { size: 28, offsets: { addr: 0, service: 16, weight: 20, family: 24, configured: 25, health: 26 } },
  service_info: { size: 72, offsets: { name: 0, entry: 64, table_sig: 68 } },
  flow_key: { size: 40, offsets: { saddr: 0, daddr: 16, sport: 32, dport: 34, proto: 36, family: 37 } },
  flow: { size: 16, offsets: { dest: 0, service: 4, last_seen_ns: 8 } },
  traffic: { size: 24, offsets: { packets: 0, bytes: 8, new_flows: 16 } },
  vip_key: { size: 20, offsets: { addr: 0, family: 16 } },
  vip_owner: { size: 8, offsets: { until_ns: 0 } },
  ingress_mac: { size: 8, offsets: { mac: 0 } },
  global: { size: 136, offsets: { count: 0 } }, // frozen at ABI 1: 17 counters
  global_ext: { size: 512, offsets: { count: 0 } }, // GLOBAL_EXT_SLOTS counters, the first named (append-only)
} as const;

/**
 * XDPLB_ABI_VERSION: the version of the pinned layout, recorded in the
 * xdplb_abi map. Adding a map keeps it (load() creates and pins the maps not
 * pinned yet); a new global counter goes into global_ext, never global_stats.
 */
export const ABI_VERSION = 1;

/** XDPLB_<name> of the header, for each name here (the addon exports the same under these names). */
export const CONSTANTS = {
  SVC_F_SOURCE_HASH: 1 << 0,
  SVC_F_NO_BACKEND_PASS: 1 << 1,
  DEST_UNUSED: 0,
  DEST_ACTIVE: 1,
  DEST_DRAINING: 2,
  VIP_FILTER_WORDS: 1024,
  DEFAULT_MAGLEV_SIZE: 16381,
  MAX_SERVICES: 4096,
  MAX_DESTS: 65536,
  MAX_FLOWS: 262144,
  SERVICE_INDEX_BITS: 18,
  SERVICE_INDEX_COLLISION: 0xffffffff,
  GLOBAL_EXT_SLOTS: 64,
} as const;

/** A service's flags (XDPLB_SVC_F_*) from its scheduler and no-backend policy. */
export function encodeServiceFlags(s: { scheduler: Scheduler; noBackend: NoBackendPolicy }): number {
  return (s.scheduler === 'maglev-source' ? CONSTANTS.SVC_F_SOURCE_HASH : 0) | (s.noBackend === 'pass' ? CONSTANTS.SVC_F_NO_BACKEND_PASS : 0);
}

export function decodeServiceFlags(flags: number): { scheduler: Scheduler; noBackend: NoBackendPolicy } {
  return {
    scheduler: flags & CONSTANTS.SVC_F_SOURCE_HASH ? 'maglev-source' : 'maglev',
    noBackend: flags & CONSTANTS.SVC_F_NO_BACKEND_PASS ? 'pass' : 'drop',
  };
}

export function encodeServiceKey(k: ServiceKey): Buffer {
  const b = Buffer.alloc(LAYOUT.service_key.size);
  k.addr.copy(b, LAYOUT.service_key.offsets.addr, 0, 16);
  b.writeUInt16BE(k.port, LAYOUT.service_key.offsets.port);
  b.writeUInt8(k.proto, LAYOUT.service_key.offsets.proto);
  b.writeUInt8(k.family, LAYOUT.service_key.offsets.family);
  return b;
}

export function decodeServiceKey(b: Buffer): ServiceKey {
  const o = LAYOUT.service_key.offsets;
  return {
    addr: Buffer.from(b.subarray(o.addr, o.addr + 16)),
    port: b.readUInt16BE(o.port),
    proto: b.readUInt8(o.proto),
    family: b.readUInt8(o.family) as Family,
  };
}

export interface ServiceValue {
  id: number;
  flags: number;
  seed: number;
}

export function encodeService(v: ServiceValue): Buffer {
  const b = Buffer.alloc(LAYOUT.service.size);
  b.writeUInt32LE(v.id, LAYOUT.service.offsets.id);
  b.writeUInt32LE(v.flags, LAYOUT.service.offsets.flags);
  b.writeUInt32LE(v.seed, LAYOUT.service.offsets.seed);
  return b;
}

export function decodeService(b: Buffer): ServiceValue {
  const o = LAYOUT.service.offsets;
  return { id: b.readUInt32LE(o.id), flags: b.readUInt32LE(o.flags), seed: b.readUInt32LE(o.seed) };
}

export function encodeServiceEntry(key: ServiceKey, value: ServiceValue): Buffer {
  const o = LAYOUT.service_entry.offsets;
  const b = Buffer.alloc(LAYOUT.service_entry.size);
  encodeServiceKey(key).copy(b, o.key);
  encodeService(value).copy(b, o.service);
  return b;
}

// MurmurHash3 rounds as in bpf/lib/hash.h (32-bit, wrapping).
function murmurRound(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function murmurFinish(h: number, len: number): number {
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Mirrors service_index_hash() in bpf/lib/hash.h: loads are host order (little endian). */
export function serviceIndexHash(key: ServiceKey): number {
  const b = encodeServiceKey(key);
  const o = LAYOUT.service_key.offsets;
  let h = 0x51ed2701;
  const words = key.family === 6 ? 4 : 1;
  for (let i = 0; i < words; i++) h = murmurRound(h, b.readUInt32LE(o.addr + 4 * i));
  h = murmurRound(h, ((b.readUInt16LE(o.port) << 16) | (b[o.proto]! << 8) | b[o.family]!) | 0);
  return murmurFinish(h, 20) >>> (32 - CONSTANTS.SERVICE_INDEX_BITS);
}

/** hash_addr() of bpf/lib/hash.h: one round per host-order (little-endian) word of the address, 1 for IPv4, 4 for IPv6. */
function hashAddr(h: number, addr: Buffer, family: Family): number {
  for (let i = 0; i < (family === 6 ? 4 : 1); i++) h = murmurRound(h, addr.readUInt32LE(4 * i));
  return h;
}

/**
 * Mirrors hash_flow() in bpf/lib/hash.h: the packet's hash over its whole
 * 5-tuple with the service's seed. The ports enter as the program loads them:
 * the network-order bytes of the flow key read as host-order (little-endian) u16.
 */
export function hashFlow(f: FlowKey, seed: number): number {
  const key = encodeFlowKey(f);
  const o = LAYOUT.flow_key.offsets;
  let h = hashAddr(seed | 0, key.subarray(o.saddr, o.saddr + 16), f.family);
  h = hashAddr(h, key.subarray(o.daddr, o.daddr + 16), f.family);
  h = murmurRound(h, ((key.readUInt16LE(o.sport) << 16) | key.readUInt16LE(o.dport)) | 0);
  h = murmurRound(h, f.proto);
  return murmurFinish(h, 40);
}

/** Mirrors hash_source() in bpf/lib/hash.h: the hash of the client address alone (maglev-source, and fragments). */
export function hashSource(f: Pick<FlowKey, 'saddr' | 'family'>, seed: number): number {
  return murmurFinish(hashAddr(seed | 0, f.saddr, f.family), 16);
}

/** Mirrors hash_to_slot() in bpf/lib/hash.h: (hash * size) >> 32, exact in a double (hash < 2^32, size < 2^21). */
export function hashToSlot(hash: number, size: number): number {
  return Math.floor((hash * size) / 2 ** 32);
}

/**
 * A whole Maglev table: owners and previous owners of each slot, as {dest,
 * prev} pairs in host (little-endian) order. Into `out` when given (a scratch
 * buffer reused for many tables: 10,000 fresh 128 KiB buffers cost seconds of GC).
 */
export function encodeSlots(dest: Uint32Array, prev: Uint32Array, out?: Buffer): Buffer {
  const bytes = dest.length * LAYOUT.slot.size;
  const b = out ?? Buffer.alloc(bytes);
  if (b.length !== bytes || b.byteOffset % 4) throw new RangeError(`slots need ${bytes} aligned bytes, got ${b.length}`);
  const words = new Uint32Array(b.buffer, b.byteOffset, dest.length * 2);
  for (let i = 0; i < dest.length; i++) {
    words[2 * i] = dest[i]!;
    words[2 * i + 1] = prev[i]!;
  }
  return b;
}

export function decodeSlots(b: Buffer): { dest: Uint32Array; prev: Uint32Array } {
  const words = new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  const n = words.length / 2;
  const dest = new Uint32Array(n);
  const prev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    dest[i] = words[2 * i]!;
    prev[i] = words[2 * i + 1]!;
  }
  return { dest, prev };
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('xdplb assumes a little-endian host (the ABI is host order)');

export interface DestValue {
  ifindex: number; // 0: back out of the ingress NIC
  mac: Buffer;
  srcMac: Buffer;
  state: number; // CONSTANTS.DEST_*
  service: number; // the service id it belongs to
}

export function encodeDest(v: DestValue): Buffer {
  const o = LAYOUT.dest.offsets;
  const b = Buffer.alloc(LAYOUT.dest.size);
  b.writeUInt32LE(v.ifindex, o.ifindex);
  v.mac.copy(b, o.mac, 0, 6);
  v.srcMac.copy(b, o.src_mac, 0, 6);
  b.writeUInt8(v.state, o.state);
  b.writeUInt32LE(v.service, o.service);
  return b;
}

export function decodeDest(b: Buffer): DestValue {
  const o = LAYOUT.dest.offsets;
  return {
    ifindex: b.readUInt32LE(o.ifindex),
    mac: Buffer.from(b.subarray(o.mac, o.mac + 6)),
    srcMac: Buffer.from(b.subarray(o.src_mac, o.src_mac + 6)),
    state: b.readUInt8(o.state),
    service: b.readUInt32LE(o.service),
  };
}

/** XDPLB_DEST_CONFIGURED_<ACTIVE|DRAINING>: what the operator asked of a destination. */
export const CONFIGURED = { active: 1, draining: 2 } as const satisfies Record<DestInfo['configured'], number>;
/** XDPLB_HEALTH_<NONE|UP|DOWN>: the health checks' verdict. */
export const HEALTH = { none: 0, up: 1, down: 2 } as const satisfies Record<Health, number>;
const HEALTH_OF = new Map(Object.entries(HEALTH).map(([name, code]) => [code as number, name as Health]));

export interface DestInfo {
  addr: Buffer;
  family: Family;
  service: number; // 0: the slot is free
  weight: number;
  configured: 'active' | 'draining';
  health: Health;
}

export function encodeDestInfo(v: DestInfo): Buffer {
  const o = LAYOUT.dest_info.offsets;
  const b = Buffer.alloc(LAYOUT.dest_info.size);
  v.addr.copy(b, o.addr, 0, 16);
  b.writeUInt32LE(v.service, o.service);
  b.writeUInt32LE(v.weight, o.weight);
  b.writeUInt8(v.family, o.family);
  b.writeUInt8(CONFIGURED[v.configured], o.configured);
  b.writeUInt8(HEALTH[v.health], o.health);
  return b;
}

export function decodeDestInfo(b: Buffer): DestInfo {
  const o = LAYOUT.dest_info.offsets;
  return {
    addr: Buffer.from(b.subarray(o.addr, o.addr + 16)),
    service: b.readUInt32LE(o.service),
    weight: b.readUInt32LE(o.weight),
    family: b.readUInt8(o.family) as Family,
    configured: b.readUInt8(o.configured) === CONFIGURED.draining ? 'draining' : 'active',
    health: HEALTH_OF.get(b.readUInt8(o.health)) ?? 'none',
  };
}

/** XDPLB_SERVICE_NAME_LEN: bytes of service_info's name field, its NUL included. */
export const SERVICE_NAME_LEN = 64;

/** Hex digits of the hash that ends a long name's pinned form. */
const NAME_HASH_DIGITS = 16;

/**
 * A service's name as service_info records it (at most SERVICE_NAME_LEN - 1
 * bytes): the name itself when it fits, else its first 46 bytes, "~" and 16
 * hex digits of the SHA-256 of the whole name. Unique (64 bits of hash, so
 * two names that share their beginning differ), recognisable (it starts as
 * the name does), and never the name of another service (no service name has
 * a "~"). The daemon keeps the whole name; `xdplb status` from the pins shows
 * this one.
 */
export function pinnedServiceName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  const room = SERVICE_NAME_LEN - 1;
  if (bytes.length <= room) return name;
  let cut = room - 1 - NAME_HASH_DIGITS;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--; // not inside a UTF-8 sequence
  return `${bytes.subarray(0, cut).toString('utf8')}~${createHash('sha256').update(bytes).digest('hex').slice(0, NAME_HASH_DIGITS)}`;
}

export interface ServiceInfo {
  /** The service's name; a long one is written in its pinned form (pinnedServiceName). */
  name: string;
  entry: number;
  /** What the service's table was built from (tableSignature), written after the table; 0: unknown. */
  tableSig: number;
}

export function encodeServiceInfo(v: ServiceInfo): Buffer {
  const o = LAYOUT.service_info.offsets;
  const b = Buffer.alloc(LAYOUT.service_info.size);
  Buffer.from(pinnedServiceName(v.name), 'utf8').copy(b, o.name);
  b.writeUInt32LE(v.entry, o.entry);
  b.writeUInt32LE(v.tableSig, o.table_sig);
  return b;
}

export function decodeServiceInfo(b: Buffer): ServiceInfo {
  const o = LAYOUT.service_info.offsets;
  const raw = b.subarray(o.name, o.name + SERVICE_NAME_LEN);
  const end = raw.indexOf(0);
  return { name: raw.subarray(0, end < 0 ? raw.length : end).toString('utf8'), entry: b.readUInt32LE(o.entry), tableSig: b.readUInt32LE(o.table_sig) };
}

export interface FlowKey {
  saddr: Buffer;
  daddr: Buffer;
  sport: number;
  dport: number;
  proto: number;
  family: Family;
}

/** A flows key: addresses as 16 bytes (IPv4 in the first 4, the rest zero), ports in network order. */
export function encodeFlowKey(f: FlowKey): Buffer {
  const o = LAYOUT.flow_key.offsets;
  const b = Buffer.alloc(LAYOUT.flow_key.size);
  f.saddr.copy(b, o.saddr, 0, f.family === 4 ? 4 : 16);
  f.daddr.copy(b, o.daddr, 0, f.family === 4 ? 4 : 16);
  b.writeUInt16BE(f.sport, o.sport);
  b.writeUInt16BE(f.dport, o.dport);
  b.writeUInt8(f.proto, o.proto);
  b.writeUInt8(f.family, o.family);
  return b;
}

export function decodeFlowKey(b: Buffer): FlowKey {
  const o = LAYOUT.flow_key.offsets;
  return {
    saddr: Buffer.from(b.subarray(o.saddr, o.saddr + 16)),
    daddr: Buffer.from(b.subarray(o.daddr, o.daddr + 16)),
    sport: b.readUInt16BE(o.sport),
    dport: b.readUInt16BE(o.dport),
    proto: b.readUInt8(o.proto),
    family: b.readUInt8(o.family) as Family,
  };
}

export interface FlowValue {
  dest: number;
  service: number;
  lastSeenNs: bigint;
}

export function encodeFlow(v: FlowValue): Buffer {
  const o = LAYOUT.flow.offsets;
  const b = Buffer.alloc(LAYOUT.flow.size);
  b.writeUInt32LE(v.dest, o.dest);
  b.writeUInt32LE(v.service, o.service);
  b.writeBigUInt64LE(v.lastSeenNs, o.last_seen_ns);
  return b;
}

export function decodeFlow(b: Buffer): FlowValue {
  const o = LAYOUT.flow.offsets;
  return { dest: b.readUInt32LE(o.dest), service: b.readUInt32LE(o.service), lastSeenNs: b.readBigUInt64LE(o.last_seen_ns) };
}

export interface Traffic {
  packets: bigint;
  bytes: bigint;
  newFlows: bigint;
}

/** The traffic of entry `id` in a batched, CPU-summed read (Map.sumPerCpu). */
export function trafficAt(summed: BigUint64Array, id: number): Traffic {
  const o = LAYOUT.traffic.offsets;
  const base = id * (LAYOUT.traffic.size / 8);
  return { packets: summed[base + o.packets / 8] ?? 0n, bytes: summed[base + o.bytes / 8] ?? 0n, newFlows: summed[base + o.new_flows / 8] ?? 0n };
}

/** Sums one per-CPU traffic value over all CPUs. */
export function sumTraffic(perCpu: readonly Buffer[] | null): Traffic {
  const o = LAYOUT.traffic.offsets;
  const t: Traffic = { packets: 0n, bytes: 0n, newFlows: 0n };
  for (const b of perCpu ?? []) {
    t.packets += b.readBigUInt64LE(o.packets);
    t.bytes += b.readBigUInt64LE(o.bytes);
    t.newFlows += b.readBigUInt64LE(o.new_flows);
  }
  return t;
}

/** Sums per-CPU global counters (global_stats or global_ext) into { name: total }, names in the order of their C enum. */
export function sumGlobal(perCpu: readonly Buffer[] | null, names: readonly string[]): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  names.forEach((name, i) => {
    let sum = 0n;
    for (const b of perCpu ?? []) sum += b.readBigUInt64LE(LAYOUT.global.offsets.count + i * 8);
    out[name] = sum;
  });
  return out;
}

export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** Bit index of an address in the VIP prefilter; mirrors vip_filter_bit() in bpf/lib/hash.h. */
export function vipFilterBit(addr: Buffer, family: Family): number {
  const k = addr.readUInt32LE(family === 6 ? 12 : 0);
  return Math.imul(k, 0x9e3779b1) >>> 16;
}

/** Sets an address's bit in a prefilter (words as in the vip_filter map). */
export function addVipBit(filter: BigUint64Array, addr: Buffer, family: Family): void {
  const bit = vipFilterBit(addr, family);
  filter[bit >> 6]! |= 1n << BigInt(bit & 63);
}

/** XDPLB_VIP_OWNER_FOREVER (UINT64_MAX): a vip_owner deadline that never passes. */
export const VIP_OWNER_FOREVER = 0xffff_ffff_ffff_ffffn;

/** An owned_vips key: the address as the service key spells it (IPv4 in the first 4 bytes, the rest zero). */
export function encodeVipKey(vip: { bytes: Buffer; family: Family }): Buffer {
  const o = LAYOUT.vip_key.offsets;
  const b = Buffer.alloc(LAYOUT.vip_key.size);
  vip.bytes.copy(b, o.addr, 0, vip.family === 4 ? 4 : 16);
  b.writeUInt8(vip.family, o.family);
  return b;
}

export function decodeVipKey(b: Buffer): { bytes: Buffer; family: Family } {
  const o = LAYOUT.vip_key.offsets;
  return { bytes: Buffer.from(b.subarray(o.addr, o.addr + 16)), family: b.readUInt8(o.family) as Family };
}

/** vip_owner's value: the deadline in CLOCK_MONOTONIC nanoseconds (host order). */
export function encodeVipOwner(untilNs: bigint): Buffer {
  const b = Buffer.alloc(LAYOUT.vip_owner.size);
  b.writeBigUInt64LE(untilNs, LAYOUT.vip_owner.offsets.until_ns);
  return b;
}

export function decodeVipOwner(b: Buffer): bigint {
  return b.readBigUInt64LE(LAYOUT.vip_owner.offsets.until_ns);
}

/** ingress_mac's value: the NIC's 6 bytes as on the wire, then 2 zero bytes; all zero (null here) is unset. */
export function encodeIngressMac(mac: Buffer | null): Buffer {
  const b = Buffer.alloc(LAYOUT.ingress_mac.size);
  mac?.copy(b, LAYOUT.ingress_mac.offsets.mac, 0, 6);
  return b;
}

export function decodeIngressMac(b: Buffer): Buffer | null {
  const o = LAYOUT.ingress_mac.offsets.mac;
  const mac = Buffer.from(b.subarray(o, o + 6));
  return mac.every((x) => x === 0) ? null : mac;
}
