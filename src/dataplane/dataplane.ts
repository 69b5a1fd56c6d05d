// The data plane as TypeScript sees it: the loaded (or adopted) XDP object,
// its maps, and typed reads and writes of them. No decisions are made here;
// src/reconcile decides what to write.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { XdplbError } from '../errors.ts';
import { formatIp, formatMac, type Family, type IpAddress } from '../model/address.ts';
import type { ServiceKey } from '../model/keys.ts';
import { ensureBpffsFor, ensurePinDir } from './bpffs.ts';
import {
  ABI_VERSION,
  CONSTANTS,
  decodeDest,
  decodeDestInfo,
  decodeIngressMac,
  decodeService,
  decodeServiceInfo,
  decodeServiceKey,
  decodeSlots,
  decodeVipKey,
  decodeVipOwner,
  encodeDest,
  encodeDestInfo,
  encodeIngressMac,
  encodeService,
  encodeServiceInfo,
  encodeServiceEntry,
  encodeServiceKey,
  encodeSlots,
  encodeVipKey,
  encodeVipOwner,
  LAYOUT,
  sumGlobal,
  sumTraffic,
  u32Key,
  VIP_OWNER_FOREVER,
  type DestInfo,
  type DestValue,
  type ServiceInfo,
  type ServiceValue,
  type Traffic,
} from './abi.ts';
import { native, type NativeMap, type NativeObject, type NativeProgram } from './native.ts';

export const DEFAULT_OBJECT = fileURLToPath(new URL('../../out/bpf/xdplb.bpf.o', import.meta.url));
export const PROGRAM_NAME = 'xdplb_ingress';

/**
 * Inner maps swapped in by one batch update of maglev_tables (one RCU wait):
 * as many open files at most (Node raises the soft limit to the hard one).
 */
const TABLES_PER_SWAP = 4096;

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
  'owned_vips',
  'vip_owner',
  'global_ext',
  'ingress_mac',
  'vip_set',
] as const;
type MapName = (typeof MAP_NAMES)[number];

/**
 * The maps added after ABI 1 was first released. Adding a map keeps the ABI:
 * load() adopts the pinned maps and creates and pins those not pinned yet.
 * Until a daemon of this build has done so, pins made by an older build of
 * the same ABI lack these, and status from them reads them as empty. A new
 * map goes here too.
 */
export const ADDED_MAPS: ReadonlySet<MapName> = new Set(['owned_vips', 'vip_owner', 'global_ext', 'ingress_mac', 'vip_set']);

/**
 * Until when the director claims its owned VIPs (the ownership gate,
 * bpf/lib/owner.h): a process.hrtime.bigint() value (CLOCK_MONOTONIC
 * nanoseconds, the clock of bpf_ktime_get_ns()), 'forever' (a director
 * without redundancy: its VIPs never lapse), or 0 (not owned: a standby).
 */
export type OwnerDeadline = bigint | 'forever' | 0;

/** What the ownership gate does now, for status. */
export interface OwnerStatus {
  deadline: OwnerDeadline;
  /** Whether ARP requests and neighbour solicitations for the owned VIPs reach the kernel now. */
  claiming: boolean;
  /** Nanoseconds until the gate closes: 0n when closed, null for 'forever'. */
  remainingNs: bigint | null;
  /** The owned VIPs, as text, sorted. */
  vips: string[];
}

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
   * program: what `xdplb status` uses when no daemon runs. A map of
   * ADDED_MAPS that an older build did not pin reads as empty.
   */
  static openPinned(pinDir: string): DataPlane {
    ensureBpffsFor(pinDir);
    if (!existsSync(`${pinDir}/services`)) throw new XdplbError('NOT_ATTACHED', `nothing is pinned in ${pinDir}: is xdplb attached there?`);
    checkPinnedAbi(pinDir);
    const maps = Object.fromEntries(
      MAP_NAMES.map((n) => [n, ADDED_MAPS.has(n) && !existsSync(`${pinDir}/${n}`) ? notPinnedYet(`${pinDir}/${n}`) : native.openPinnedMap(`${pinDir}/${n}`)]),
    ) as Record<MapName, NativeMap>;
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
          owned_vips: cap.maxServices,
          vip_set: cap.maxServices,
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
   * of a map-in-map waits for an RCU grace period (~17 ms here, per batch
   * update, however many entries it has), so the tables go in as few batches
   * as the open files allow: each table is encoded into its own new inner map
   * as it comes (one at a time: the iterable may build them lazily, and only
   * the map's fd is held), and up to TABLES_PER_SWAP inner maps are swapped
   * in by one batch update (one wait). An all-0 table empties the service's
   * slot (no backend).
   */
  putTables(tables: Iterable<{ serviceId: number; dest: Uint32Array; prev: Uint32Array }>): void {
    const size = this.capacities.maglevSize;
    let inners: NativeMap[] = [];
    let ids: number[] = [];
    const swap = () => {
      if (inners.length === 0) return;
      const keys = Buffer.alloc(4 * inners.length);
      const fds = Buffer.alloc(4 * inners.length);
      inners.forEach((inner, i) => {
        keys.writeUInt32LE(ids[i]!, 4 * i);
        fds.writeUInt32LE(inner.info().fd, 4 * i);
      });
      this.maps.maglev_tables.updateBatch(keys, fds, inners.length);
      for (const inner of inners.splice(0)) inner.close(); // the outer map holds its own references
      ids = [];
    };
    try {
      for (const t of tables) {
        if (t.dest.length !== size || t.prev.length !== size)
          throw new RangeError(`a table has ${size} slots, got ${t.dest.length}`);
        inners.push(native.createArrayMap(LAYOUT.slot.size, size, encodeSlots(t.dest, t.prev, this.slotScratch())));
        ids.push(t.serviceId);
        if (inners.length === TABLES_PER_SWAP) swap();
      }
      swap();
    } finally {
      for (const inner of inners) inner.close();
      inners = [];
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
    return this.tableSummary(serviceId, () => undefined).shares;
  }

  /**
   * A service's table as it is in the kernel: how many slots each
   * destination owns, and a fingerprint: the hash of each slot's current
   * owner, named by its address (`addressOf` of the dest id; as its rank
   * among the table's owners in address order), so that directors given the
   * same input show the same fingerprint whatever their dest ids and
   * histories. (The slots' previous owners, which keep flows in transition,
   * depend on history by design, and are left out.) One read of the table.
   */
  tableSummary(serviceId: number, addressOf: (destId: number) => string | undefined): { shares: Map<number, number>; fingerprint: string | null } {
    const raw = this.readTableRaw(serviceId);
    const shares = new Map<number, number>();
    if (!raw) return { shares, fingerprint: null };
    const words = new Uint32Array(raw.buffer, raw.byteOffset, raw.length / 4); // {dest, prev} pairs
    const counts = (this.shareCounts ??= new Uint32Array(this.capacities.maxDests)); // all 0 between calls
    for (let i = 0; i < words.length; i += 2) counts[words[i]!]!++;
    for (let i = 0; i < words.length; i += 2) {
      const d = words[i]!;
      if (counts[d]) shares.set(d, counts[d]!);
      counts[d] = 0;
    }
    const named = [...shares.keys()].map((id) => [id, addressOf(id) ?? `dest ${id}`] as const).sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const rank = new Map(named.map(([id], i) => [id, i]));
    const owners = new Uint32Array(words.length / 2);
    for (let i = 0; i < owners.length; i++) owners[i] = rank.get(words[2 * i]!)!;
    const fingerprint = createHash('sha256').update(named.map(([, a]) => a).join(',')).update(new Uint8Array(owners.buffer)).digest('hex').slice(0, 32);
    return { shares, fingerprint };
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

  /**
   * Makes vip_set exactly the VIPs of `services` (the exact set the program
   * asks on its slow paths, where the prefilter only says "maybe").
   */
  syncVipSet(services: Iterable<{ key: ServiceKey }>): void {
    const want = new Map<string, Buffer>();
    for (const { key } of services) {
      const k = encodeVipKey({ bytes: key.addr, family: key.family });
      want.set(k.toString('hex'), k);
    }
    const room = this.maps.vip_set.info().maxEntries;
    if (want.size > room) throw new XdplbError('CAPACITY', `${want.size} VIPs do not fit the data plane's ${room} (capacity.services)`);
    for (const key of [...allKeys(this.maps.vip_set)]) if (!want.delete(key.toString('hex'))) this.maps.vip_set.delete(key);
    for (const key of want.values()) this.maps.vip_set.update(key, Buffer.alloc(4)); // a set: the value is 0
  }

  /** Adds one VIP to vip_set (what syncVipSet does for a whole set; for tests and benchmarks that write maps by hand). */
  putVip(vip: { bytes: Buffer; family: Family }): void {
    this.maps.vip_set.update(encodeVipKey(vip), Buffer.alloc(4));
  }

  // ---- the ownership gate (bpf/lib/owner.h) ---------------------------------

  /**
   * Makes the owned-VIP set exactly `vips` (duplicates count once): deletes
   * the VIPs not listed, then adds the missing ones; returns both, as text.
   * More VIPs than the set holds (capacity.services: a VIP serves at least
   * one service) is refused (CAPACITY) before anything is written. The set
   * is pinned: it survives a daemon restart as it is. ARP requests and
   * neighbour solicitations for these VIPs reach the kernel only while the
   * owner deadline lies ahead (setOwnerDeadline). So that the kernel never
   * answers for a VIP outside the gate, add a VIP here before it goes onto
   * the NIC, and take it off the NIC before it leaves this set.
   */
  setOwnedVips(vips: readonly Pick<IpAddress, 'bytes' | 'family'>[]): { added: string[]; removed: string[] } {
    const want = new Map<string, Buffer>();
    for (const v of vips) {
      if ((v.family !== 4 && v.family !== 6) || v.bytes.length !== 16)
        throw new RangeError(`an owned VIP is 16 bytes of family 4 or 6, got ${v.bytes.length} bytes of family ${String(v.family)}`);
      const key = encodeVipKey(v);
      want.set(key.toString('hex'), key);
    }
    const room = this.maps.owned_vips.info().maxEntries;
    if (want.size > room)
      throw new XdplbError('CAPACITY', `${want.size} owned VIPs do not fit the data plane's ${room} (capacity.services): nothing was changed`);
    const text = (key: Buffer) => {
      const vip = decodeVipKey(key);
      return formatIp(vip.bytes, vip.family);
    };
    const removed: string[] = [];
    for (const key of [...allKeys(this.maps.owned_vips)]) {
      if (want.delete(key.toString('hex'))) continue; // already there
      this.maps.owned_vips.delete(key);
      removed.push(text(key));
    }
    const member = Buffer.alloc(4); // a set: the value is 0
    const added: string[] = [];
    for (const key of want.values()) {
      this.maps.owned_vips.update(key, member);
      added.push(text(key));
    }
    return { added, removed };
  }

  /** The owned-VIP set, sorted by family, then address. */
  ownedVips(): IpAddress[] {
    return [...allKeys(this.maps.owned_vips)]
      .map(decodeVipKey)
      .sort((a, b) => a.family - b.family || Buffer.compare(a.bytes, b.bytes))
      .map((v) => ({ text: formatIp(v.bytes, v.family), family: v.family, bytes: v.bytes }));
  }

  /**
   * Sets until when the owned VIPs are claimed (see OwnerDeadline): an
   * absolute process.hrtime.bigint() value, 'forever' or 0. One atomic 8-byte
   * store (the program reads it with one load). The deadline is pinned: after
   * a restart it stands until it is set again.
   */
  setOwnerDeadline(until: OwnerDeadline): void {
    let ns: bigint;
    if (until === 'forever') ns = VIP_OWNER_FOREVER;
    else if (until === 0) ns = 0n;
    else if (typeof until === 'bigint' && until >= 0n && until <= VIP_OWNER_FOREVER) ns = until;
    else throw new RangeError(`an owner deadline is a process.hrtime.bigint() value, 'forever' or 0, got ${String(until)}`);
    native.patchArrayMap(this.maps.vip_owner, encodeVipOwner(ns));
  }

  /** The owner deadline as set (0n reads back as 0, UINT64_MAX as 'forever'). */
  ownerDeadline(): OwnerDeadline {
    const value = this.maps.vip_owner.lookup(u32Key(0));
    const ns = value ? decodeVipOwner(value) : 0n;
    return ns === VIP_OWNER_FOREVER ? 'forever' : ns === 0n ? 0 : ns;
  }

  /** What the gate does at `now` (process.hrtime.bigint()), with the owned VIPs. */
  ownerStatus(now: bigint = process.hrtime.bigint()): OwnerStatus {
    const deadline = this.ownerDeadline();
    const vips = this.ownedVips().map((v) => v.text);
    if (deadline === 'forever') return { deadline, claiming: true, remainingNs: null, vips };
    const remainingNs = deadline === 0 || deadline <= now ? 0n : deadline - now;
    return { deadline, claiming: remainingNs > 0n, remainingNs, vips };
  }

  // ---- the ingress NIC's MAC (bpf/lib/ingress_mac.h) ---------------------------

  /**
   * Sets the MAC of the NIC the program is attached to: from then on a
   * packet for a service is forwarded only when its Ethernet destination is
   * this MAC (a frame flooded to this NIC, or seen by it in promiscuous mode,
   * goes to the kernel, counted in pass_not_our_mac). null unsets it: every
   * destination is forwarded, as in a data plane no daemon has attached.
   * One atomic 8-byte store (the program reads it with one load); pinned, so
   * it stands across restarts until set again. A group address (broadcast,
   * multicast) is no NIC's and is refused.
   */
  setIngressMac(mac: Buffer | null): void {
    if (mac !== null) {
      if (mac.length !== 6) throw new RangeError(`a MAC is 6 bytes, got ${mac.length}`);
      if (mac[0]! & 1) throw new RangeError(`${formatMac(mac)} is a group (multicast or broadcast) address, not a NIC's`);
      if (mac.every((b) => b === 0)) throw new RangeError('00:00:00:00:00:00 is no NIC\'s MAC (null unsets it)');
    }
    native.patchArrayMap(this.maps.ingress_mac, encodeIngressMac(mac));
  }

  /** The ingress NIC's MAC as set, or null when unset (or pinned by a build without the map). */
  ingressMac(): Buffer | null {
    const value = this.maps.ingress_mac.lookup(u32Key(0));
    return value ? decodeIngressMac(value) : null;
  }

  // ---- counters ---------------------------------------------------------------

  /** The global counters by name, in the order of globalStatNames(): global_stats' and global_ext's, summed over CPUs. */
  globalStats(): Record<string, bigint> {
    const names = globalStatLists();
    return {
      ...sumGlobal(this.maps.global_stats.lookupPerCpu(u32Key(0)), names.stats),
      ...sumGlobal(this.maps.global_ext.lookupPerCpu(u32Key(0)), names.ext),
    };
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

let statNames: { stats: readonly string[]; ext: readonly string[]; all: readonly string[] } | null = null;

/**
 * The names of the global counters as the addon compiled bpf/xdplb_abi.h
 * (read once): `stats` index global_stats (XDPLB_GLOBAL_STATS, frozen at
 * ABI 1), `ext` global_ext (XDPLB_GLOBAL_EXT_STATS, append-only), `all` is
 * both, in that order. The header is their one definition.
 */
export function globalStatLists(): { stats: readonly string[]; ext: readonly string[]; all: readonly string[] } {
  if (statNames) return statNames;
  const abi = native.abi();
  return (statNames = { stats: abi.globalStats, ext: abi.globalExtStats, all: [...abi.globalStats, ...abi.globalExtStats] });
}

/** Every global counter's name, in the order of globalStats(). */
export function globalStatNames(): readonly string[] {
  return globalStatLists().all;
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

/**
 * A stand-in for a map of ADDED_MAPS that an older build did not pin, for
 * status from its pins: it reads as the empty map a daemon of this build
 * would create; a write (or anything else) is refused, naming why.
 */
function notPinnedYet(path: string): NativeMap {
  const refuse = (): never => {
    throw new XdplbError(
      'PIN_INCOMPATIBLE',
      `${path} is not pinned: the data plane was pinned by an older xdplb, and a daemon of this version creates the map when it adopts it`,
    );
  };
  return {
    lookup: () => null,
    lookupPerCpu: () => null,
    nextKeys: () => [],
    countEntries: () => 0,
    entries: () => ({ keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0 }),
    close: () => {},
    update: refuse,
    delete: refuse,
    updateBatch: refuse,
    sumPerCpu: refuse,
    lookupAll: refuse,
    pin: refuse,
    info: refuse,
  };
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
