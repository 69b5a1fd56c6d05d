// plan(): the ordered map operations that turn what the data plane holds into
// what is desired, and the changes to the Applied record (commit() them once
// written). Pure. The order never sends a packet nowhere:
//   1. the VIP prefilter gains new VIPs' bits (a set bit only costs a lookup)
//   2. destinations are written (new, changed MAC or state) before any table
//      names them
//   3. tables: new and removed services' swapped in whole (one batch), changed
//      ones patched in place, slot by slot (each slot one atomic 8-byte word)
//   4. services: hash map, a fresh entry, then the index that points to it
//   5. removed services leave the index, then the hash map
//   6. destinations of removed backends are freed, after no table names them
//   7. entries retired by the previous plan are cleared (long unused by now)
//   8. the prefilter loses the bits of VIPs that are gone
// Only services whose input changed are touched; given a scope, only those
// services are even looked at (the cost of a health verdict does not grow
// with the number of services).
import { createHash } from 'node:crypto';
import { addVipBit, CONSTANTS, encodeServiceFlags, pinnedServiceName, serviceIndexHash, type DestInfo, type DestValue } from '../dataplane/abi.ts';
import { XdplbError } from '../errors.ts';
import { maglevTable, NO_BACKEND, nextSlots } from '../model/maglev.ts';
import type { Desired, DesiredBackend, DesiredService } from '../model/desired.ts';
import type { ServiceKey } from '../model/keys.ts';
import type { Applied, AppliedDest, AppliedService } from './state.ts';

export type Op =
  | { kind: 'filter'; words: BigUint64Array; previous: BigUint64Array }
  | { kind: 'dest'; id: number; value: DestValue; info: DestInfo }
  | { kind: 'tables'; tables: TableWrite[] }
  | { kind: 'service'; key: ServiceKey; id: number; flags: number; seed: number; entry: number; name: string; tableSig: number }
  | { kind: 'serviceInfo'; id: number; name: string; entry: number; tableSig: number }
  | { kind: 'index'; hash: number; entry: number }
  | { kind: 'deleteService'; key: ServiceKey; id: number }
  | { kind: 'clearEntry'; entry: number };

/** A table to write; built only when written (10k tables are 1.3 GB). */
export interface TableWrite {
  serviceId: number;
  /**
   * Patch the table the data plane holds, slot by slot, instead of swapping
   * in a new one: no new map and no RCU grace period. Each packet reads one
   * slot, and each slot changes atomically, so a packet sees its slot either
   * before or after the change.
   */
  inPlace: boolean;
  /**
   * The table to write, given the one the data plane holds now (read by
   * apply(), for a table patched in place: its previous owners are kept).
   * A table swapped in whole is valid only until the next build (its arrays
   * are reused): write it before building the next.
   */
  build(current: { dest: Uint32Array; prev: Uint32Array } | null): { dest: Uint32Array; prev: Uint32Array };
}

export interface PlanContext {
  maglevSize: number;
  maxServices: number;
  maxDests: number;
  /** MAC of the director's NIC (new source MAC of forwarded frames). */
  directorMac: Buffer;
  /** ifindex and MAC of another NIC of the director that backends sit behind (XDP_REDIRECT). */
  nic?(name: string): { ifindex: number; mac: Buffer } | undefined;
  /** Memoised Maglev tables (same input → same table). */
  tableCache?: Map<string, Int32Array>;
}

const STATE = { active: CONSTANTS.DEST_ACTIVE, draining: CONSTANTS.DEST_DRAINING, down: CONSTANTS.DEST_UNUSED } as const;

/**
 * The lowest number from 1 up that `used` does not hold. Numbers are only
 * ever added to `used` during a plan, so the lowest free one never goes down:
 * the search resumes where the last one stopped (10,000 new services cost
 * 10,000 steps, not 50 million).
 */
class LowestFree {
  readonly used: Set<number>;
  private readonly max: number;
  private from = 1;

  constructor(used: Set<number>, max: number) {
    this.used = used;
    this.max = max;
  }

  next(): number {
    while (this.from < this.max && this.used.has(this.from)) this.from++;
    if (this.from < this.max) return this.from;
    throw new XdplbError('CAPACITY', `no free slot below ${this.max}: raise capacity in the config (and restart)`);
  }
}

function filterOf(services: Iterable<{ key: ServiceKey }>, words: number): BigUint64Array {
  const f = new BigUint64Array(words);
  for (const s of services) addVipBit(f, s.key.addr, s.key.family);
  return f;
}

function sameFilter(a: BigUint64Array, b: BigUint64Array): boolean {
  return a.every((w, i) => w === b[i]);
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.equals(b);
}

/** What a table is built from, as 32 bits (never 0, which means "unknown"), recorded in the pins. */
function tableSignature(inputText: string): number {
  return createHash('sha256').update(inputText).digest().readUInt32LE(0) || 1;
}

let zeros = new Uint32Array(0);
/** A table's worth of 0 (no owner, no previous owner): shared, never written. */
function noSlots(size: number): Uint32Array {
  if (zeros.length !== size) zeros = new Uint32Array(size);
  return zeros;
}

/** The table input of a service: backends that take new flows, with weights and destination ids. */
function tableInput(backends: readonly DesiredBackend[], ids: Map<string, number>): { text: string; active: { key: string; weight: number; id: number }[] } {
  const active = backends
    .filter((b) => b.state === 'active' && b.weight > 0)
    .map((b) => ({ key: b.address.text, weight: b.weight, id: ids.get(b.address.text)! }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { text: active.map((a) => `${a.key}*${a.weight}#${a.id}`).join(','), active };
}

let scratchDest = new Uint32Array(0);
/**
 * A table's worth of owners for a table swapped in whole, reused from one
 * table to the next: putTables() copies each into its map before it takes
 * the next (10,000 fresh 64 KiB arrays cost seconds of GC).
 */
function reusedDest(size: number): Uint32Array {
  if (scratchDest.length !== size) scratchDest = new Uint32Array(size);
  return scratchDest;
}

/** The owners' destination ids of each slot, into `dest` when given. */
function buildTable(active: { key: string; weight: number; id: number }[], size: number, cache?: Map<string, Int32Array>, into?: Uint32Array): Uint32Array {
  const cacheKey = `${size}|${active.map((a) => `${a.key}*${a.weight}`).join(',')}`;
  let positions = cache?.get(cacheKey);
  if (!positions) {
    positions = maglevTable(active, size);
    if (cache) {
      if (cache.size >= 256) cache.delete(cache.keys().next().value!);
      cache.set(cacheKey, positions);
    }
  }
  const ids = Uint32Array.from(active, (a) => a.id); // same canonical (key) order as maglevTable's
  const dest = into ?? new Uint32Array(positions.length);
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    dest[i] = p === NO_BACKEND ? 0 : ids[p]!;
  }
  return dest;
}

/** Everything of a desired service that its data-plane state depends on. */
function signatureOf(ws: DesiredService): string {
  const parts = [`${ws.name}|${ws.scheduler}|${ws.noBackend}|${ws.seed}`];
  for (const b of ws.backends) parts.push(`${b.address.text}*${b.weight}:${b.state}:${b.condition}:${b.health}:${b.mac?.toString('hex') ?? '-'}@${b.via ?? ''}`);
  return parts.join('|'); // one flat string: kept for every service, a chain of += pieces cost 3x the memory
}

/**
 * What a plan changes in the Applied record: applied with commit() once the
 * operations are written, so a small change costs nothing per unchanged
 * service or backend (no copy of 100,000 destinations).
 */
export interface AppliedDelta {
  /** Services written (new or changed record) or removed (null). */
  services: Map<string, AppliedService | null>;
  /** Destinations written or freed (null). */
  dests: Map<number, AppliedDest | null>;
  /** The whole new index, when services came, went or took new entries. */
  index: Map<number, number> | null;
  filter: BigUint64Array;
  retiredEntries: number[];
  /** How many ids were taken from the front of freedDests, and the ids freed now. */
  freedTaken: number;
  freed: number[];
}

export interface Plan {
  ops: Op[];
  delta: AppliedDelta;
}

/** Records a plan's changes into `applied` (after its operations were written). */
export function commit(applied: Applied, d: AppliedDelta): void {
  for (const [k, s] of d.services) {
    if (s) applied.services.set(k, s);
    else applied.services.delete(k);
  }
  for (const [id, x] of d.dests) {
    if (x) applied.dests.set(id, x);
    else applied.dests.delete(id);
  }
  if (d.index) {
    applied.index = d.index;
    applied.indexStale = false;
  }
  applied.filter = d.filter;
  applied.retiredEntries = d.retiredEntries;
  applied.freedDests.splice(0, d.freedTaken);
  applied.freedDests.push(...d.freed);
}

/** A new record: `applied` (untouched) with the plan's changes. */
export function appliedAfter(applied: Applied, p: Plan): Applied {
  const next: Applied = {
    services: new Map(applied.services),
    dests: new Map(applied.dests),
    index: new Map(applied.index),
    indexStale: applied.indexStale,
    filter: applied.filter,
    retiredEntries: [...applied.retiredEntries],
    freedDests: [...applied.freedDests],
  };
  commit(next, p.delta);
  return next;
}

/**
 * scope: the keys of the only services whose desired state may differ from
 * what `applied` records, when the caller knows (a health verdict, a MAC, an
 * override changed); every other service is left as it is, unread. Without
 * it — or when the set of services differs — every service is compared.
 */
export function plan(applied: Applied, want: Desired, ctx: PlanContext, scope?: ReadonlySet<string>): Plan {
  const ops: Op[] = [];
  const filterWords = applied.filter.length;
  const delta: AppliedDelta = { services: new Map(), dests: new Map(), index: null, filter: applied.filter, retiredEntries: [], freedTaken: 0, freed: [] };
  const scoped = scope !== undefined && want.services.size === applied.services.size && [...scope].every((k) => applied.services.has(k) && want.services.has(k));

  // ids in use, gathered only when a new one is needed
  let serviceIds: LowestFree | null = null;
  let entries: LowestFree | null = null;
  const usedServiceIds = () => (serviceIds ??= new LowestFree(new Set([...applied.services.values()].map((s) => s.id)), ctx.maxServices));
  const usedEntries = () => (entries ??= new LowestFree(new Set([...applied.services.values()].map((s) => s.entry).concat(applied.retiredEntries)), 2 * ctx.maxServices));
  const takenDests = new Set<number>(); // allocated by this plan
  const destUsed = (id: number) => applied.dests.has(id) || takenDests.has(id);
  let nextDestId = 1;
  const allocDest = (): number => {
    while (delta.freedTaken < applied.freedDests.length) {
      const id = applied.freedDests[delta.freedTaken++]!;
      if (!destUsed(id)) return id;
    }
    while (destUsed(nextDestId)) nextDestId++;
    if (nextDestId >= ctx.maxDests) throw new XdplbError('CAPACITY', `more than ${ctx.maxDests - 1} backends: raise capacity.backends (and restart)`);
    return nextDestId;
  };
  const freeDestOf = (destId: number, freeOps: Op[]) => {
    freeOps.push(freeDest(applied.dests.get(destId)));
    delta.dests.set(destId, null);
    delta.freed.push(destId);
  };

  // 1. prefilter: union first (unchanged while the set of services is)
  const sameServices = scoped || (want.services.size === applied.services.size && [...want.services.keys()].every((k) => applied.services.has(k)));
  const wantFilter = sameServices ? applied.filter : filterOf(want.services.values(), filterWords);
  const union = applied.filter.map((w, i) => w | wantFilter[i]!);
  if (!sameFilter(union, applied.filter)) ops.push({ kind: 'filter', words: union, previous: applied.filter });

  const destOps: Op[] = [];
  const tables: TableWrite[] = [];
  let membershipChanged = false;
  const serviceOps: Op[] = [];
  const freeOps: Op[] = [];

  const considered = scoped ? [...scope].map((k) => want.services.get(k)!) : want.services.values();
  for (const ws of considered) {
    const old = applied.services.get(ws.keyText);
    const signature = signatureOf(ws);
    if (old && old.signature === signature) continue;
    const id = old?.id ?? usedServiceIds().next();
    usedServiceIds().used.add(id);
    const dests = new Map<string, number>();
    for (const b of ws.backends) {
      const oldId = old?.dests.get(b.address.text);
      const destId = oldId ?? allocDest();
      takenDests.add(destId);
      dests.set(b.address.text, destId);
      const egress = b.via === null ? null : ctx.nic?.(b.via);
      if (egress === undefined) throw new XdplbError('CONFIG_INVALID', `backend ${b.address.text} of ${ws.name}: no interface ${b.via} known`);
      const value: DestValue = {
        ifindex: egress?.ifindex ?? 0, // 0: back out of the NIC it came in on (XDP_TX)
        mac: b.mac ?? Buffer.alloc(6),
        srcMac: egress?.mac ?? ctx.directorMac,
        state: STATE[b.state],
        service: id,
      };
      const info: DestInfo = { addr: b.address.bytes, family: b.address.family, service: id, weight: b.weight, configured: b.condition === 'draining' || b.weight === 0 ? 'draining' : 'active', health: b.health };
      const prev = applied.dests.get(destId);
      // A down backend keeps the MAC it had (harmless: its state says no).
      if (b.state === 'down' && prev) value.mac = prev.value.mac;
      const changed =
        !prev ||
        prev.value.state !== value.state ||
        prev.value.ifindex !== value.ifindex ||
        prev.value.service !== value.service ||
        !sameBytes(prev.value.mac, value.mac) ||
        !sameBytes(prev.value.srcMac, value.srcMac) ||
        prev.info.weight !== info.weight ||
        prev.info.configured !== info.configured ||
        prev.info.health !== info.health;
      if (changed) {
        destOps.push({ kind: 'dest', id: destId, value, info });
        delta.dests.set(destId, { id: destId, address: b.address, value, info } satisfies AppliedDest);
      }
    }
    // backends no longer configured: free after the table stops naming them
    for (const [addr, destId] of old?.dests ?? []) if (!dests.has(addr)) freeDestOf(destId, freeOps);

    const input = tableInput(ws.backends, dests);
    const tableSig = tableSignature(input.text);
    // the table is known to be built from this input: same input as applied, or (read back
    // from the pins) the signature the last complete table write recorded
    const tableKnown = old !== undefined && (old.tableInput === input.text || (old.tableInput === '' && old.tableSig === tableSig));
    let tableWritten = false;
    if (!tableKnown) {
      if (!old) {
        tables.push({ serviceId: id, inPlace: false, build: () => ({ dest: buildTable(input.active, ctx.maglevSize, ctx.tableCache, reusedDest(ctx.maglevSize)), prev: noSlots(ctx.maglevSize) }) });
        tableWritten = true;
      } else {
        // a change: patched into the table the data plane holds, whose owners become the previous ones
        const dest = buildTable(input.active, ctx.maglevSize, ctx.tableCache);
        tables.push({ serviceId: id, inPlace: true, build: (current) => ({ dest, prev: nextSlots(current?.dest ?? null, current?.prev ?? null, dest) }) });
        tableWritten = true;
      }
    }

    let entry = old?.entry ?? 0;
    const flags = encodeServiceFlags(ws);
    const attrsChanged = !old || old.flags !== flags || old.seed !== ws.seed;
    if (attrsChanged) {
      membershipChanged = true;
      entry = usedEntries().next();
      usedEntries().used.add(entry);
      if (old) delta.retiredEntries.push(old.entry);
    }
    // the table signature is 0 while a table is rewritten, and the new one once it is whole
    if (old && tableWritten && old.tableSig !== 0) destOps.push({ kind: 'serviceInfo', id, name: old.name, entry: old.entry, tableSig: 0 });
    // the pins hold a long name in its pinned form: read back, that form is the same name
    const nameRecorded = old !== undefined && (old.name === ws.name || old.name === pinnedServiceName(ws.name));
    if (attrsChanged || !nameRecorded) serviceOps.push({ kind: 'service', key: ws.key, id, flags, seed: ws.seed, entry, name: ws.name, tableSig });
    else if (old.tableSig !== tableSig || tableWritten) serviceOps.push({ kind: 'serviceInfo', id, name: ws.name, entry, tableSig });
    delta.services.set(ws.keyText, { id, entry, keyText: ws.keyText, key: ws.key, name: ws.name, flags, seed: ws.seed, tableInput: input.text, tableSig, signature, dests } satisfies AppliedService);
  }

  // removed services
  const removedOps: Op[] = [];
  if (!scoped) {
    for (const old of applied.services.values()) {
      if (want.services.has(old.keyText)) continue;
      membershipChanged = true;
      removedOps.push({ kind: 'deleteService', key: old.key, id: old.id });
      delta.services.set(old.keyText, null);
      delta.retiredEntries.push(old.entry);
      // an empty table releases the old one's memory and sends nothing anywhere
      tables.push({ serviceId: old.id, inPlace: false, build: () => ({ dest: noSlots(ctx.maglevSize), prev: noSlots(ctx.maglevSize) }) });
      for (const destId of old.dests.values()) freeDestOf(destId, freeOps);
    }
    // destinations of no service (an apply cut short after its destinations, before its services:
    // a daemon killed mid-reconcile) are freed, else they would hold their slots for good
    const owners = new Set([...applied.services.values()].map((s) => s.id));
    for (const d of applied.dests.values()) if (!owners.has(d.info.service) && !delta.dests.has(d.id)) freeDestOf(d.id, freeOps);
  }

  // the index follows the services: every key at its hash, collisions marked
  // (recomputed only when a service came, went or took a new entry)
  const indexOps: Op[] = [];
  if (membershipChanged || applied.indexStale) {
    const wantIndex = new Map<number, number>();
    const place = (s: AppliedService) => {
      const h = serviceIndexHash(s.key);
      wantIndex.set(h, wantIndex.has(h) ? CONSTANTS.SERVICE_INDEX_COLLISION : s.entry);
    };
    for (const [k, s] of applied.services) if (!delta.services.has(k)) place(s);
    for (const s of delta.services.values()) if (s) place(s);
    for (const [h, e] of wantIndex) if (applied.index.get(h) !== e) indexOps.push({ kind: 'index', hash: h, entry: e });
    for (const h of applied.index.keys()) if (!wantIndex.has(h)) indexOps.push({ kind: 'index', hash: h, entry: 0 });
    delta.index = wantIndex;
  }

  ops.push(...destOps);
  if (tables.length > 0) ops.push({ kind: 'tables', tables });
  ops.push(...serviceOps, ...indexOps, ...removedOps, ...freeOps);
  for (const entry of applied.retiredEntries) ops.push({ kind: 'clearEntry', entry });

  // 8. prefilter: exact
  if (!sameFilter(wantFilter, union)) ops.push({ kind: 'filter', words: wantFilter, previous: union });
  delta.filter = wantFilter;
  return { ops, delta };
}

function freeDest(d: AppliedDest | undefined): Op {
  if (!d) throw new Error('freeing an unknown destination');
  return {
    kind: 'dest',
    id: d.id,
    value: { ...d.value, state: CONSTANTS.DEST_UNUSED, service: 0 },
    info: { ...d.info, service: 0 },
  };
}

/** A one-line description of each operation (logs, golden tests). */
export function describeOp(op: Op): string {
  switch (op.kind) {
    case 'filter':
      return `filter ${op.words.reduce((n, w) => n + popcount(w), 0)} bits`;
    case 'dest':
      return `dest ${op.id} service ${op.value.service} state ${op.value.state} mac ${op.value.mac.toString('hex')}`;
    case 'tables':
      return `tables ${op.tables.map((t) => `${t.serviceId}${t.inPlace ? ' in place' : ''}`).join(',')}`;
    case 'service':
      return `service ${op.id} entry ${op.entry} ${op.name}`;
    case 'serviceInfo':
      return `service ${op.id} table ${op.tableSig === 0 ? 'being rewritten' : 'recorded'}`;
    case 'index':
      return `index ${op.hash} -> ${op.entry === CONSTANTS.SERVICE_INDEX_COLLISION ? 'collision' : op.entry}`;
    case 'deleteService':
      return `delete service ${op.id}`;
    case 'clearEntry':
      return `clear entry ${op.entry}`;
  }
}

function popcount(w: bigint): number {
  let n = 0;
  for (; w; w &= w - 1n) n++;
  return n;
}

