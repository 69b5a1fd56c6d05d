// What the data plane holds, as the control plane keeps track of it: the
// result of the last apply, or what was read back from the pins at start.
import type { DestInfo, DestValue } from '../dataplane/abi.ts';
import { mustParseIp, type IpAddress } from '../model/address.ts';
import { backendKey, serviceKeyText, type ServiceKey } from '../model/keys.ts';
import type { ServiceSpec } from '../model/service.ts';

export interface AppliedService {
  id: number;
  /** service_entries slot the index points to. */
  entry: number;
  keyText: string;
  key: ServiceKey;
  /** The whole name; read back from the pins, the form they hold (a long name cut: pinnedServiceName). */
  name: string;
  /** XDPLB_SVC_F_* */
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

/**
 * The backends of `services` that the data plane records as failing their
 * health check, as backendKey()s: what a restarted daemon's checks start
 * from. Services are matched by their key, not their name (the pins hold a
 * long name cut short).
 */
export function recordedDown(applied: Applied, services: Iterable<ServiceSpec>): Set<string> {
  const down = new Set<string>();
  for (const s of services) {
    const a = applied.services.get(serviceKeyText(s.protocol, mustParseIp(s.vip), s.port));
    for (const [address, id] of a?.dests ?? []) if (applied.dests.get(id)?.info.health === 'down') down.add(backendKey(s.name, address));
  }
  return down;
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
