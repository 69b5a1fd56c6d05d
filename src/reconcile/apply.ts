// apply(): carries out a plan's operations in order against the data plane.
// The only side effects of a reconcile happen here.
import type { DestInfo, DestValue, ServiceInfo, ServiceValue } from '../dataplane/abi.ts';
import type { ServiceKey } from '../model/keys.ts';
import type { Op, TableWrite } from './plan.ts';

/** The part of the data plane a plan writes (DataPlane, or a recording fake). */
export interface DataPlaneWriter {
  writeVipFilter(next: BigUint64Array, current: BigUint64Array): void;
  /** Makes the exact VIP set that of these services (after a change of the set of services). */
  syncVipSet(services: Iterable<{ key: ServiceKey }>): void;
  /** Writes destinations in batches: every info first, then every value (what the program reads). */
  putDests(dests: readonly { id: number; value: DestValue; info: DestInfo }[]): void;
  /** Swaps in whole tables, taking them one at a time (built lazily: 10k tables are 1.3 GB), in as few RCU waits as it can. */
  putTables(tables: Iterable<{ serviceId: number; dest: Uint32Array; prev: Uint32Array }>): void;
  /** The service's table as the data plane holds it (null: none). */
  readTable(serviceId: number): { dest: Uint32Array; prev: Uint32Array } | null;
  /** Patches the service's table in place (only the slots that differ); false when it has none. */
  patchTable(serviceId: number, dest: Uint32Array, prev: Uint32Array): boolean;
  putService(key: ServiceKey, value: ServiceValue): void;
  putServiceEntry(entry: number, key: ServiceKey, value: ServiceValue): void;
  putServiceInfo(id: number, info: ServiceInfo): void;
  putServiceIndex(hash: number, entry: number): void;
  deleteService(key: ServiceKey): boolean;
  clearServiceEntry(entry: number): void;
}

/** Map writes a plan makes: one per operation, one per table. */
export function countWrites(ops: readonly Op[]): number {
  return ops.reduce((n, op) => n + (op.kind === 'tables' ? op.tables.length : op.kind === 'service' || op.kind === 'dest' ? 3 : 1), 0);
}

/** Carries out a plan's operations in order; returns the services whose tables were changed in place (they may hold previous owners). */
export function apply(dp: DataPlaneWriter, ops: readonly Op[]): { patchedTables: number[] } {
  const patchedTables: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.kind) {
      case 'filter':
        dp.writeVipFilter(op.words, op.previous);
        break;
      case 'dest': {
        // a run of destination operations goes in one batch (they are independent of each other)
        const run = [op];
        while (ops[i + 1]?.kind === 'dest') run.push(ops[++i] as typeof op);
        dp.putDests(run);
        break;
      }
      case 'tables': {
        const whole: TableWrite[] = [];
        for (const t of op.tables) {
          const current = t.inPlace ? dp.readTable(t.serviceId) : null;
          if (!current) whole.push(t);
          else {
            const { dest, prev } = t.build(current);
            if (dp.patchTable(t.serviceId, dest, prev)) patchedTables.push(t.serviceId);
            else whole.push(t); // gone meanwhile: a whole new one
          }
        }
        if (whole.length > 0) dp.putTables(built(whole));
        break;
      }
      case 'service': {
        const value = { id: op.id, flags: op.flags, seed: op.seed };
        dp.putService(op.key, value);
        dp.putServiceEntry(op.entry, op.key, value);
        dp.putServiceInfo(op.id, { name: op.name, entry: op.entry, tableSig: op.tableSig });
        break;
      }
      case 'serviceInfo':
        dp.putServiceInfo(op.id, { name: op.name, entry: op.entry, tableSig: op.tableSig });
        break;
      case 'index':
        dp.putServiceIndex(op.hash, op.entry);
        break;
      case 'deleteService':
        dp.deleteService(op.key);
        dp.putServiceInfo(op.id, { name: '', entry: 0, tableSig: 0 });
        break;
      case 'clearEntry':
        dp.clearServiceEntry(op.entry);
        break;
    }
  }
  return { patchedTables };
}

/** Each table built when the writer takes it, and dropped once it is written. */
function* built(tables: readonly TableWrite[]): Generator<{ serviceId: number; dest: Uint32Array; prev: Uint32Array }> {
  for (const t of tables) yield { serviceId: t.serviceId, ...t.build(null) };
}
