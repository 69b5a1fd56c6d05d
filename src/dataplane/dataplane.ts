// The data plane as TypeScript sees it: the loaded (or adopted) XDP object,
// its maps, and typed reads and writes of them. No decisions are made here;
// src/reconcile decides what to write.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { XdplbError } from '../errors.ts';
import type { ServiceKey } from '../model/keys.ts';
import { ensureBpffsFor, ensurePinDir } from './bpffs.ts';
import {
  ABI_VERSION,
  CONSTANTS,
  decodeDest,
  decodeDestInfo,
  decodeService,
  decodeServiceInfo,
  decodeServiceKey,
  decodeSlots,
  encodeDest,
  encodeDestInfo,
  encodeService,
  encodeServiceInfo,
  encodeServiceEntry,
  encodeServiceKey,
  encodeSlots,
  LAYOUT,
  sumGlobal,
  sumTraffic,
  u32Key,
  type DestInfo,
  type DestValue,
  type ServiceInfo,
  type ServiceValue,
  type Traffic,
} from './abi.ts';
import { native, type NativeMap, type NativeObject, type NativeProgram } from './native.ts';

export const DEFAULT_OBJECT = fileURLToPath(new URL('../../out/bpf/xdplb.bpf.o', import.meta.url));
export const PROGRAM_NAME = 'xdplb_ingress';

export interface Capacities {
  /** Maglev table size: a prime. */
  maglevSize: number;
  maxServices: number;
  maxDests: number;
  maxFlows: number;
}

export const DEFAULT_CAPACITIES: Capacities = {
  maglevSize: CONSTANTS.DEFAULT_MAGLEV_SIZE,
  maxServices: CONSTANTS.MAX_SERVICES,
  maxDests: CONSTANTS.MAX_DESTS,
  maxFlows: CONSTANTS.MAX_FLOWS,
};

export interface LoadRequest extends Partial<Capacities> {
  objectPath?: string;
  /** Pin (and adopt) every map in this bpffs directory. */
  pinDir?: string;
}

/** The maps, each pinned under its name in the pin directory. */
export const MAP_NAMES = [
  'xdplb_abi',
  'vip_filter',
  'service_index',
  'service_entries',
  'services',
  'maglev_tables',
  'dests',
  'dest_info',
  'service_info',
  'flows',
  'tx_ports',
  'service_stats',
  'dest_stats',
  'global_stats',
] as const;
type MapName = (typeof MAP_NAMES)[number];

export class DataPlane {
  readonly maps: Readonly<Record<MapName, NativeMap>>;
  readonly capacities: Capacities;
  private readonly loadedProgram: NativeProgram | null;

  private constructor(maps: Record<MapName, NativeMap>, program: NativeProgram | null, capacities: Capacities) {
    this.maps = maps;
    this.loadedProgram = program;
    this.capacities = capacities;
  }

  /** The loaded program (not there for a data plane opened from pins only). */
  get program(): NativeProgram {
    if (!this.loadedProgram) throw new XdplbError('NOT_ATTACHED', 'this data plane was opened from its pins: it has no program of its own');
    return this.loadedProgram;
  }

  /**
   * Opens the maps pinned in pinDir, read and write, without loading a
   * program: what `xdplb status` uses when no daemon runs.
   */
  static openPinned(pinDir: string): DataPlane {
    ensureBpffsFor(pinDir);
    if (!existsSync(`${pinDir}/services`)) throw new XdplbError('NOT_ATTACHED', `nothing is pinned in ${pinDir}: is xdplb attached there?`);
    checkPinnedAbi(pinDir);
    const maps = Object.fromEntries(MAP_NAMES.map((n) => [n, native.openPinnedMap(`${pinDir}/${n}`)])) as Record<MapName, NativeMap>;
    return new DataPlane(maps, null, {
      maglevSize: pinnedMaglevSize(maps) ?? DEFAULT_CAPACITIES.maglevSize,
      maxServices: maps.services.info().maxEntries,
      maxDests: maps.dests.info().maxEntries,
      maxFlows: maps.flows.info().maxEntries,
    });
  }

  /**
   * Loads the XDP object. With pinDir, maps already pinned there are adopted
   * (after an ABI version check) and new ones are pinned, so state and
   * counters survive restarts and program upgrades.
   */
  static async load(req: LoadRequest = {}): Promise<DataPlane> {
    const cap: Capacities = {
      maglevSize: req.maglevSize ?? DEFAULT_CAPACITIES.maglevSize,
      maxServices: req.maxServices ?? DEFAULT_CAPACITIES.maxServices,
      maxDests: req.maxDests ?? DEFAULT_CAPACITIES.maxDests,
      maxFlows: req.maxFlows ?? DEFAULT_CAPACITIES.maxFlows,
    };
    if (req.pinDir) {
      ensurePinDir(req.pinDir);
      checkPinnedAbi(req.pinDir);
    }
    const objectPath = req.objectPath ?? DEFAULT_OBJECT;
    const maglevSize = Buffer.alloc(4);
    maglevSize.writeUInt32LE(cap.maglevSize);
    let object: NativeObject;
    try {
      object = await native.loadObject(objectPath, {
        rodata: { maglev_size: maglevSize },
        maxEntries: {
          services: cap.maxServices,
          service_entries: 2 * cap.maxServices,
          maglev_tables: cap.maxServices,
          service_stats: cap.maxServices,
          dests: cap.maxDests,
          dest_info: cap.maxDests,
          service_info: cap.maxServices,
          dest_stats: cap.maxDests,
          flows: cap.maxFlows,
        },
        innerMaxEntries: { maglev_tables: cap.maglevSize },
        ...(req.pinDir ? { pinDir: req.pinDir } : {}),
      });
    } catch (err) {
      if (req.pinDir && (err as { code?: string }).code === 'EINVAL' && existsSync(`${req.pinDir}/services`)) {
        throw new XdplbError(
          'PIN_INCOMPATIBLE',
          `${(err as Error).message}: the maps pinned in ${req.pinDir} do not match this program's maps or the requested capacities ` +
            `(maglevSize ${cap.maglevSize}, maxServices ${cap.maxServices}, maxDests ${cap.maxDests}, maxFlows ${cap.maxFlows}). ` +
            `Start with the capacities they were created with, or detach first (this resets the counters)`,
          [],
          { cause: err },
        );
      }
      throw err;
    }
    const maps = Object.fromEntries(MAP_NAMES.map((n) => [n, object.map(n)])) as Record<MapName, NativeMap>;
    const dp = new DataPlane(maps, object.program(PROGRAM_NAME), cap);
    dp.maps.xdplb_abi.update(u32Key(0), u32Key(ABI_VERSION));
    return dp;
  }

  // ---- services -------------------------------------------------------

  putService(key: ServiceKey, value: ServiceValue): void {
    this.maps.services.update(encodeServiceKey(key), encodeService(value));
  }

  /** Writes a service entry (never one the index points to: see xdplb_abi.h). */
  putServiceEntry(entry: number, key: ServiceKey, value: ServiceValue): void {
    this.maps.service_entries.update(u32Key(entry), encodeServiceEntry(key, value));
  }

  clearServiceEntry(entry: number): void {
    this.maps.service_entries.update(u32Key(entry), Buffer.alloc(LAYOUT.service_entry.size));
  }

  /** Points index slot h at an entry (0: none; SERVICE_INDEX_COLLISION: ask the hash map). */
  putServiceIndex(h: number, entry: number): void {
    this.maps.service_index.update(u32Key(h), u32Key(entry));
  }

  readServiceIndex(h: number): number {
    return this.maps.service_index.lookup(u32Key(h))?.readUInt32LE(0) ?? 0;
  }

  deleteService(key: ServiceKey): boolean {
    return this.maps.services.delete(encodeServiceKey(key));
  }

  listServices(): { key: ServiceKey; value: ServiceValue }[] {
    const out: { key: ServiceKey; value: ServiceValue }[] = [];
    for (const k of allKeys(this.maps.services)) {
      const v = this.maps.services.lookup(k);
      if (v) out.push({ key: decodeServiceKey(k), value: decodeService(v) });
    }
    return out;
  }

  // ---- pins ----------------------------------------------------------------

  /** The maps whose pins in pinDir are gone (removed under a running daemon). */
  missingPins(pinDir: string): MapName[] {
    return MAP_NAMES.filter((n) => !existsSync(`${pinDir}/${n}`));
  }

  /** Pins these maps in pinDir again. */
  repin(pinDir: string, names: readonly MapName[]): void {
    for (const n of names) this.maps[n].pin(`${pinDir}/${n}`);
  }

  // ---- Maglev tables ----------------------------------------------------

  /**
   * Installs whole new tables, each in one atomic pointer swap. Every update
   * of a map-in-map waits for an RCU grace period (~8 ms here), so all the
   * tables of a change go in one batch: one wait, however many tables.
   * A null table empties the service's slot (all slots 0: no backend).
   */
  putTables(tables: readonly { serviceId: number; dest: Uint32Array; prev: Uint32Array }[]): void {
    if (tables.length === 0) return;
    const size = this.capacities.maglevSize;
    const inners: NativeMap[] = [];
    try {
      const keys = Buffer.alloc(4 * tables.length);
      const fds = Buffer.alloc(4 * tables.length);
      tables.forEach((t, i) => {
        if (t.dest.length !== size || t.prev.length !== size)
          throw new RangeError(`a table has ${size} slots, got ${t.dest.length}`);
        const inner = native.createArrayMap(LAYOUT.slot.size, size, encodeSlots(t.dest, t.prev, this.slotScratch()));
        inners.push(inner);
        keys.writeUInt32LE(t.serviceId, 4 * i);
        fds.writeUInt32LE(inner.info().fd, 4 * i);
      });
      this.maps.maglev_tables.updateBatch(keys, fds, tables.length);
    } finally {
      for (const inner of inners) inner.close(); // the outer map holds its own references
    }
  }

  private scratch: Buffer | null = null;

  /** One table's worth of slots, reused: the addon copies it into the map at once. */
  private slotScratch(): Buffer {
    return (this.scratch ??= Buffer.alloc(this.capacities.maglevSize * LAYOUT.slot.size));
  }

  /**
   * Rewrites the slots of a service's table that differ, in place (8-byte
   * atomic stores into the mmapped map): no new map, no RCU grace period.
   * Returns false when the service has no table.
   */
  patchTable(serviceId: number, dest: Uint32Array, prev: Uint32Array): boolean {
    const size = this.capacities.maglevSize;
    if (dest.length !== size || prev.length !== size) throw new RangeError(`a table has ${size} slots, got ${dest.length}`);
    const id = this.maps.maglev_tables.lookup(u32Key(serviceId));
    if (!id) return false;
    const inner = native.mapFromId(id.readUInt32LE(0));
    try {
      native.patchArrayMap(inner, encodeSlots(dest, prev, this.slotScratch()));
      return true;
    } finally {
      inner.close();
    }
  }

  readTable(serviceId: number): { dest: Uint32Array; prev: Uint32Array } | null {
    const raw = this.readTableRaw(serviceId);
    return raw && decodeSlots(raw);
  }

  /** How many slots of a service's table each destination owns (none: no table). */
  tableShares(serviceId: number): Map<number, number> {
    const raw = this.readTableRaw(serviceId);
    const shares = new Map<number, number>();
    if (!raw) return shares;
    const words = new Uint32Array(raw.buffer, raw.byteOffset, raw.length / 4); // {dest, prev} pairs
    const counts = (this.shareCounts ??= new Uint32Array(this.capacities.maxDests)); // all 0 between calls
    for (let i = 0; i < words.length; i += 2) counts[words[i]!]!++;
    for (let i = 0; i < words.length; i += 2) {
      const d = words[i]!;
      if (counts[d]) shares.set(d, counts[d]!);
      counts[d] = 0;
    }
    return shares;
  }

  private shareCounts: Uint32Array | null = null;

  private readTableRaw(serviceId: number): Buffer | null {
    const id = this.maps.maglev_tables.lookup(u32Key(serviceId));
    if (!id) return null;
    const inner = native.mapFromId(id.readUInt32LE(0));
    try {
      return native.readArrayMap(inner);
    } finally {
      inner.close();
    }
  }

  // ---- destinations -------------------------------------------------------

  putDest(id: number, value: DestValue): void {
    this.maps.dests.update(u32Key(id), encodeDest(value));
  }

  putDestInfo(id: number, info: DestInfo): void {
    this.maps.dest_info.update(u32Key(id), encodeDestInfo(info));
  }

  /** Destinations in batches: every info first, then every value (what the program reads). */
  putDests(dests: readonly { id: number; value: DestValue; info: DestInfo }[]): void {
    const chunk = 4096;
    for (let at = 0; at < dests.length; at += chunk) {
      const part = dests.slice(at, at + chunk);
      const keys = Buffer.alloc(4 * part.length);
      part.forEach((d, i) => keys.writeUInt32LE(d.id, 4 * i));
      this.maps.dest_info.updateBatch(keys, Buffer.concat(part.map((d) => encodeDestInfo(d.info))), part.length);
      this.maps.dests.updateBatch(keys, Buffer.concat(part.map((d) => encodeDest(d.value))), part.length);
    }
  }

  /** Every destination slot in use (its info names a service), read in batches. */
  *usedDests(): Generator<{ id: number; value: DestValue; info: DestInfo }> {
    const n = this.capacities.maxDests;
    const infos = this.maps.dest_info.lookupAll(n);
    const values = this.maps.dests.lookupAll(n);
    const is = LAYOUT.dest_info.size;
    const vs = LAYOUT.dest.size;
    for (let id = 1; id < n; id++) {
      const info = decodeDestInfo(infos.subarray(id * is, (id + 1) * is));
      if (info.service === 0) continue;
      yield { id, info, value: decodeDest(values.subarray(id * vs, (id + 1) * vs)) };
    }
  }

  putServiceInfo(id: number, info: ServiceInfo): void {
    this.maps.service_info.update(u32Key(id), encodeServiceInfo(info));
  }

  readServiceInfo(id: number): ServiceInfo {
    const v = this.maps.service_info.lookup(u32Key(id));
    if (!v) throw new RangeError(`no service slot ${id}`);
    return decodeServiceInfo(v);
  }

  /** Adds an egress interface for XDP_REDIRECT (ifindex in this namespace). */
  putTxPort(ifindex: number): void {
    const value = Buffer.alloc(8);
    value.writeUInt32LE(ifindex);
    this.maps.tx_ports.update(u32Key(ifindex), value);
  }

  /** Removes every egress interface but `keep` (call once no destination names them). */
  pruneTxPorts(keep: ReadonlySet<number>): number[] {
    const gone = [...allKeys(this.maps.tx_ports)].map((k) => k.readUInt32LE(0)).filter((ifindex) => !keep.has(ifindex));
    for (const ifindex of gone) this.maps.tx_ports.delete(u32Key(ifindex));
    return gone;
  }

  // ---- VIP prefilter --------------------------------------------------------

  readVipFilter(): BigUint64Array {
    const words = new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS);
    for (let i = 0; i < words.length; i++) words[i] = this.maps.vip_filter.lookup(u32Key(i))?.readBigUInt64LE(0) ?? 0n;
    return words;
  }

  /** Writes the words of the prefilter that differ from `current`. */
  writeVipFilter(next: BigUint64Array, current: BigUint64Array): void {
    const value = Buffer.alloc(8);
    for (let i = 0; i < next.length; i++) {
      if (next[i] === current[i]) continue;
      value.writeBigUInt64LE(next[i]!);
      this.maps.vip_filter.update(u32Key(i), value);
    }
  }

  // ---- counters ---------------------------------------------------------------

  /** The global counters by name, in the order of the C enum. */
  globalStats(): Record<string, bigint> {
    return sumGlobal(this.maps.global_stats.lookupPerCpu(u32Key(0)), globalStatNames());
  }

  serviceTraffic(serviceId: number): Traffic {
    return sumTraffic(this.maps.service_stats.lookupPerCpu(u32Key(serviceId)));
  }

  destTraffic(destId: number): Traffic {
    return sumTraffic(this.maps.dest_stats.lookupPerCpu(u32Key(destId)));
  }

  /**
   * Traffic of every service id below `count` in one batched read: packets,
   * bytes and new flows of id i at [3i], [3i+1], [3i+2] (see trafficAt).
   */
  serviceTrafficAll(count: number): BigUint64Array {
    return this.maps.service_stats.sumPerCpu(count);
  }

  /** Like serviceTrafficAll, for destination ids. */
  destTrafficAll(count: number): BigUint64Array {
    return this.maps.dest_stats.sumPerCpu(count);
  }

  /** Entries in the flow table now (batched read of the LRU map). */
  flowEntries(): number {
    return this.maps.flows.countEntries();
  }
}

let statNames: readonly string[] | null = null;

/** The global counters' names, in the order of the C enum: as the addon compiled bpf/xdplb_abi.h (read once). */
export function globalStatNames(): readonly string[] {
  return (statNames ??= native.abi().globalStats);
}

/** Every key of a map, read in chunks. */
export function* allKeys(map: NativeMap, chunk = 4096): Generator<Buffer> {
  let after: Buffer | null = null;
  for (;;) {
    const keys = map.nextKeys(after, chunk);
    yield* keys;
    if (keys.length < chunk) return;
    after = keys[keys.length - 1]!;
  }
}

/**
 * The slots per table of a pinned data plane: the size of the first table a
 * service has (the outer map does not record its inner maps' size). Null
 * when no service has a table, where the size does not matter.
 */
function pinnedMaglevSize(maps: Record<MapName, NativeMap>): number | null {
  for (const k of allKeys(maps.services)) {
    const service = maps.services.lookup(k);
    const table = service && maps.maglev_tables.lookup(u32Key(decodeService(service).id));
    if (!table) continue;
    const inner = native.mapFromId(table.readUInt32LE(0));
    try {
      return inner.info().maxEntries;
    } finally {
      inner.close();
    }
  }
  return null;
}

/** Refuses pins written by another ABI version (recorded in their xdplb_abi map), before anything is touched. */
function checkPinnedAbi(pinDir: string): void {
  const path = `${pinDir}/xdplb_abi`;
  if (!existsSync(path)) return;
  const map = native.openPinnedMap(path);
  try {
    const pinned = map.lookup(u32Key(0))?.readUInt32LE(0) ?? 0;
    if (pinned !== ABI_VERSION)
      throw new XdplbError(
        'ABI_MISMATCH',
        `the data plane pinned in ${pinDir} has ABI version ${pinned}, this xdplb speaks version ${ABI_VERSION}; ` +
          `it was left untouched. To migrate: stop the old daemon, run the old build's \`xdplb detach\` ` +
          `(or remove ${pinDir}), then start this one (counters restart from zero).`,
      );
  } finally {
    map.close();
  }
}
