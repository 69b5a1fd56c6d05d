// Previous slot owners that lapse. A slot whose owner changed remembers the
// one before (nextSlots), and the program sends a mid-stream packet it has no
// flow entry for to that one: right for a flow that began before the change.
// Once flowIdleTimeout has passed since the change, every such flow that still
// lives has sent a packet, and the program recorded it in the flow table; a
// previous owner that no live flow needs then lapses, and the slot is back on
// the fast path. Behind ECMP that is what sends a flow that began on another
// director after the change (and moved here) to the backend its SYN went to.
// The decision is pure (lapsedPrev); this reads the flow table and writes the
// slots (8-byte atomic stores, no RCU wait).
import { decodeFlow, decodeFlowKey, decodeServiceFlags, hashFlow, hashSource, hashToSlot, LAYOUT } from '../dataplane/abi.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import type { Logger } from '../log.ts';
import { lapsedPrev } from '../model/maglev.ts';
import type { Applied, AppliedService } from '../reconcile/state.ts';

export interface PreviousOwnersOptions {
  dp: DataPlane;
  applied(): Applied;
  /** flowIdleTimeout: a flow silent this long is forgotten. */
  idleMs(): number;
  log: Logger;
}

export interface SweepResult {
  /** Services whose tables were read (their changes are flowIdleTimeout old). */
  services: number;
  /** Slots whose previous owner lapsed. */
  lapsed: number;
  /** Slots that keep theirs: a live flow on them goes elsewhere than the owner. */
  kept: number;
  flowsRead: number;
}

export class PreviousOwners {
  private readonly o: PreviousOwnersOptions;
  /** Service id → when its table last changed in place (performance.now()). */
  private readonly changedAt = new Map<number, number>();
  /** No new read of the flow table before this (a table that keeps its previous owners is looked at again later). */
  private notBefore = 0;

  constructor(o: PreviousOwnersOptions) {
    this.o = o;
  }

  /** Tables changed in place (or adopted: they may hold previous owners): their flows' clock starts now. */
  changed(serviceIds: Iterable<number>, now = performance.now()): void {
    for (const id of serviceIds) this.changedAt.set(id, now);
    this.notBefore = 0;
  }

  /** Services whose tables may still hold previous owners. */
  get pending(): number {
    return this.changedAt.size;
  }

  /** Lapses the previous owners that are due and that no live flow needs; null when nothing was due. */
  sweep(now = performance.now()): SweepResult | null {
    const idleMs = this.o.idleMs();
    if (now < this.notBefore) return null;
    const due = new Map<number, AppliedService>();
    const byId = new Map<number, AppliedService>();
    for (const s of this.o.applied().services.values()) byId.set(s.id, s);
    for (const [id, at] of this.changedAt) {
      if (now - at < idleMs) continue;
      const s = byId.get(id);
      if (s) due.set(id, s);
      else this.changedAt.delete(id); // gone: a new service with this id starts with a whole table
    }
    if (due.size === 0) return null;
    const { dp } = this.o;
    const size = dp.capacities.maglevSize;
    const flows = liveFlowsOn(dp, due, size, process.hrtime.bigint() - BigInt(idleMs) * 1_000_000n);
    const result: SweepResult = { services: due.size, lapsed: 0, kept: 0, flowsRead: flows.read };
    for (const [id] of due) {
      const table = dp.readTable(id);
      if (!table) {
        this.changedAt.delete(id);
        continue;
      }
      const next = lapsedPrev(table.dest, table.prev, flows.byService.get(id) ?? []);
      const prev = next ?? table.prev;
      if (next) {
        for (let i = 0; i < prev.length; i++) if (table.prev[i] !== 0 && prev[i] === 0) result.lapsed++;
        dp.patchTable(id, table.dest, next);
      }
      const kept = prev.reduce((n, p) => n + (p !== 0 ? 1 : 0), 0);
      result.kept += kept;
      if (kept === 0) this.changedAt.delete(id);
    }
    // what is kept is needed by live flows: looked at again once some of them may have gone quiet
    this.notBefore = now + Math.max(1000, idleMs / 4);
    if (result.lapsed > 0) this.o.log.info(result, 'previous slot owners lapsed: no live flow needs them');
    return result;
  }
}

/** The live flow-table entries of the due services: each one's slot and destination. */
function liveFlowsOn(dp: DataPlane, due: ReadonlyMap<number, AppliedService>, size: number, since: bigint): { byService: Map<number, { slot: number; dest: number }[]>; read: number } {
  const map = dp.maps.flows;
  const { keys, values, count } = map.entries(map.info().maxEntries);
  const ks = LAYOUT.flow_key.size;
  const vs = LAYOUT.flow.size;
  const byService = new Map<number, { slot: number; dest: number }[]>();
  const destsOf = new Map<number, Set<number>>();
  for (let i = 0; i < count; i++) {
    const flow = decodeFlow(values.subarray(i * vs, (i + 1) * vs));
    const s = due.get(flow.service);
    if (!s || flow.lastSeenNs < since) continue;
    let dests = destsOf.get(s.id);
    if (!dests) destsOf.set(s.id, (dests = new Set(s.dests.values())));
    if (!dests.has(flow.dest)) continue; // not this service's any more: the program does not use it
    const key = decodeFlowKey(keys.subarray(i * ks, (i + 1) * ks));
    const hash = decodeServiceFlags(s.flags).scheduler === 'maglev-source' ? hashSource(key, s.seed) : hashFlow(key, s.seed);
    let list = byService.get(flow.service);
    if (!list) byService.set(flow.service, (list = []));
    list.push({ slot: hashToSlot(hash, size), dest: flow.dest });
  }
  return { byService, read: count };
}
