// The native addon's whole surface, declared once. The addon checks argument
// types only; callers validate values (see dataplane.ts). It is loaded when
// first used, not when this module is imported, and libbpf's messages then
// go to the logger.
import { createRequire } from 'node:module';
import { component, type Logger } from '../log.ts';

export interface MapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  fd: number;
}

export interface NativeMap {
  /** The value, or null when the key is absent. */
  lookup(key: Buffer): Buffer | null;
  /** One value per possible CPU, or null when the key is absent. */
  lookupPerCpu(key: Buffer): Buffer[] | null;
  /** value: a Buffer, or for a map-in-map the inner map. flags: BPF_ANY (0) by default. */
  update(key: Buffer, value: Buffer | NativeMap, flags?: number): void;
  /** false when the key was absent. */
  delete(key: Buffer): boolean;
  /** count keys and values back to back; returns how many were written. */
  updateBatch(keys: Buffer, values: Buffer, count: number): number;
  /** Up to max keys after `after` (null: from the start), in map order. */
  nextKeys(after: Buffer | null, max: number): Buffer[];
  /** Per-CPU array of u64 words: the first `count` entries, each word summed over CPUs (count * words). */
  sumPerCpu(count: number): BigUint64Array;
  /** Array map: the values of entries 0..count-1, back to back (batched read). */
  lookupAll(count: number): Buffer;
  /** Entries a hash map holds now (batched read). */
  countEntries(): number;
  /** Up to count entries of a hash map, keys and values back to back (batched read). */
  entries(count: number): { keys: Buffer; values: Buffer; count: number };
  pin(path: string): void;
  info(): MapInfo;
  close(): void;
}

export interface TestRunResult {
  retval: number;
  /** The kernel's average time per repetition. */
  durationNs: number;
  packet: Buffer;
}

export interface LinkInfo {
  id: number;
  progId: number;
  type: number;
  /** 0 when the interface (or its namespace) is gone: a defunct link. */
  ifindex: number;
}

export interface NativeLink {
  pin(path: string): void;
  /** Atomically replaces the attached program. */
  update(program: NativeProgram): void;
  detach(): void;
  info(): LinkInfo;
  close(): void;
}

export interface NativeProgram {
  testRun(packet: Buffer, repeat: number): Promise<TestRunResult>;
  /**
   * Runs count frames one at a time, each `packet` with a big-endian counter
   * added to the 32 bits at `offset` (a new flow per run). verdicts[v]
   * counts the runs that returned v.
   */
  testRunVaried(packet: Buffer, count: number, offset: number): Promise<{ meanNs: number; verdicts: number[] }>;
  /**
   * Runs frames (packed back to back, their sizes in `lengths` as u32 in
   * host order) one after the other, once each, in one worker job: each sees
   * the maps as the ones before it left them. retvals and lengths: u32 per
   * frame; packets: the output frames, back to back.
   */
  testRunBatch(frames: Buffer, lengths: Buffer): Promise<{ retvals: Buffer; packets: Buffer; lengths: Buffer }>;
  /**
   * A packet generator (BPF_F_TEST_XDP_LIVE_FRAMES): runs the program repeat
   * times on frames made from `packet` (in batches of batchSize, 0: the
   * kernel's 64) and sends those it returns XDP_TX/XDP_REDIRECT for, through
   * interfaces of this process's network namespace. A frame's page may come
   * back changed by its receiver: the program must write every byte it
   * relies on. wallNs: the call's wall-clock time.
   */
  testRunLive(packet: Buffer, repeat: number, batchSize: number): Promise<{ wallNs: number }>;
  attachXdp(ifindex: number, mode: 'native' | 'generic'): Promise<NativeLink>;
  info(): { id: number; name: string; tag: string };
}

export interface NativeObject {
  map(name: string): NativeMap;
  program(name: string): NativeProgram;
}

export interface LoadOptions {
  /** `const volatile` globals by name, as raw bytes in host order. */
  rodata?: Record<string, Buffer>;
  maxEntries?: Record<string, number>;
  /** max_entries of the inner-map template of a map-in-map. */
  innerMaxEntries?: Record<string, number>;
  /** Pin every map here by name; reuse maps already pinned there. */
  pinDir?: string;
}

export interface StructLayout {
  size: number;
  offsets: Record<string, number>;
}

export interface AbiDescription {
  version: number;
  possibleCpus: number;
  layout: Record<string, StructLayout>;
  /** Names of the global_stats counters (frozen at ABI 1), in the order of their C enum. */
  globalStats: string[];
  /** Names of the global_ext counters (added after ABI 1, append-only), in the order of their C enum. */
  globalExtStats: string[];
  constants: Record<string, number>;
}

export interface NativeAddon {
  loadObject(path: string, options: LoadOptions): Promise<NativeObject>;
  openPinnedMap(path: string): NativeMap;
  openPinnedLink(path: string): NativeLink;
  mapFromId(id: number): NativeMap;
  /** A BPF_F_MMAPABLE array map filled with data in one copy. */
  createArrayMap(valueSize: number, maxEntries: number, data: Buffer): NativeMap;
  /** The whole content of an mmapable array map. */
  readArrayMap(map: NativeMap): Buffer;
  /** Makes an mmapable array map equal to data, one atomic 8-byte store per differing word; returns how many. */
  patchArrayMap(map: NativeMap, data: Buffer): number;
  /** ifindex and MAC of an interface in this process's network namespace. */
  interfaceInfo(name: string): { ifindex: number; mac: Buffer; hardwareType: number };
  /** An exclusive flock on path (made 0600 if missing), as an fd; EWOULDBLOCK when another process holds it. */
  lockFile(path: string): number;
  unlockFile(fd: number): void;
  listInterfaces(): string[];
  /** The neighbour table of an interface (addresses are 16 bytes, network order). */
  neighbours(ifindex: number): { family: 4 | 6; address: Buffer; mac: Buffer | null; state: number }[];
  addresses(ifindex: number): { family: 4 | 6; address: Buffer; prefixLength: number }[];
  addAddress(ifindex: number, family: 4 | 6, address: Buffer, prefixLength: number): void;
  deleteAddress(ifindex: number, family: 4 | 6, address: Buffer, prefixLength: number): void;
  /** A NIC's driver and its own counters (`ethtool -i`, `ethtool -S`); stats {} for a driver with none. */
  nicStats(name: string): { driver: string; stats: Record<string, number> };
  /**
   * The kernel's neighbour changes as they happen (RTNLGRP_NEIGH, on the JS
   * thread; keeps no process alive): an array per wake-up, or null when the
   * kernel dropped some (read the tables again). Returns stop().
   */
  watchNeighbours(callback: (events: { ifindex: number; deleted: boolean; family: 4 | 6; address: Buffer; mac: Buffer | null; state: number }[] | null) => void): () => void;
  /** The unicast routes of a routing table (both families); dst is 16 bytes (IPv4 in the first 4). */
  routes(table: number): { family: 4 | 6; dst: Buffer; prefixLength: number; protocol: number; ifindex: number }[];
  /** `dst/prefixLength dev ifindex scope link proto protocol table table` (EEXIST if it is there). */
  addRoute(table: number, protocol: number, ifindex: number, family: 4 | 6, dst: Buffer, prefixLength: number): void;
  deleteRoute(table: number, protocol: number, ifindex: number, family: 4 | 6, dst: Buffer, prefixLength: number): void;
  /** Gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) for address. */
  announce(ifindex: number, mac: Buffer, family: 4 | 6, address: Buffer): void;
  /** Receives libbpf's messages (a verifier log arrives as one message). */
  setLogger(logger: ((level: 'warn' | 'info' | 'debug', message: string) => void) | null): void;
  abi(): AbiDescription;
}

const require = createRequire(import.meta.url);
let loaded: NativeAddon | null = null;
let libbpfLog: Logger | null = null;

/** libbpf's messages (a verifier rejection arrives as one whole message). */
function toLog(level: 'warn' | 'info' | 'debug', message: string): void {
  const l = (libbpfLog ??= component('libbpf'));
  if (level === 'warn') l.warn({ libbpf: message }, 'libbpf');
  else l.debug({ libbpf: message }, 'libbpf');
}

/** The compiled addon, loaded on the first call, with libbpf's log hooked to ours. */
function addon(): NativeAddon {
  if (loaded === null) {
    const a = require('../../build/Release/xdplb.node') as NativeAddon;
    a.setLogger(toLog);
    loaded = a;
  }
  return loaded;
}

/**
 * The addon. Importing this module loads nothing: the first use of any of
 * its functions does, so that modules importing this one (for their types,
 * or for code they run only later) load where the addon is not built.
 */
export const native: NativeAddon = new Proxy({} as NativeAddon, { get: (_target, name) => Reflect.get(addon(), name) as unknown });
