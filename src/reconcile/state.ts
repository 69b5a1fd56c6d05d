// What the data plane holds, as the control plane keeps track of it: the
// result of the last apply, or what was read back from the pins at start.
import type { DestInfo, DestValue, ServiceKey } from '../dataplane/abi.ts';
import type { IpAddress } from '../model/address.ts';

export interface AppliedService {
  id: number;
  /** service_entries slot the index points to. */
  entry: number;
  keyText: string;
  key: ServiceKey;
  name: string;
  flags: number;
  seed: number;
  /** The input of the table written ("" when read back from pins); the
   * table itself stays in the kernel (128 KiB per service) and is read back
   * only when a change needs its previous owners. */
  tableInput: string;
  /** What the pins record the table was built from (a hash of tableInput; 0: unknown). */
  tableSig: number;
  /** What desired() gave for this service last time ("" when unknown):
   * an equal one means nothing to do. */
  signature: string;
  /** Backend address text → destination id. */
  dests: Map<string, number>;
}

export interface AppliedDest {
  id: number;
  address: IpAddress;
  value: DestValue;
  info: DestInfo;
}

export interface Applied {
  services: Map<string, AppliedService>;
  dests: Map<number, AppliedDest>;
  /** Service index slots that are not 0. */
  index: Map<number, number>;
  /** The index may not match the services (read back incomplete): the next plan rebuilds it. */
  indexStale: boolean;
  filter: BigUint64Array;
  /** Entries the index no longer points to; cleared by the next apply (an RCU grace period later). */
  retiredEntries: number[];
  /** Destination ids freed, oldest first: reused as late as possible. */
  freedDests: number[];
}

/** One past the highest service id and destination id in use: how much of the counter maps to read. */
export function idLimits(applied: Applied): { services: number; dests: number } {
  let services = 0;
  let dests = 0;
  for (const s of applied.services.values()) {
    services = Math.max(services, s.id + 1);
    for (const id of s.dests.values()) dests = Math.max(dests, id + 1);
  }
  return { services, dests };
}

export function emptyApplied(filterWords: number): Applied {
  return {
    services: new Map(),
    dests: new Map(),
    index: new Map(),
    indexStale: false,
    filter: new BigUint64Array(filterWords),
    retiredEntries: [],
    freedDests: [],
  };
}
