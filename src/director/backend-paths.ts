// How the director reaches its backends: the NIC each one sits behind (the
// program's own, or another one, reached with XDP_REDIRECT through the
// devmap), and each one's MAC (the kernel's neighbour table, resolution
// asked for when missing, followed by the kernel's notices, polled as a safety net).
import type { ServiceConfig } from '../config/schema.ts';
import { CONSTANTS } from '../dataplane/abi.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import { native } from '../dataplane/native.ts';
import { errorMessage, XdplbError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { mustParseIp, type IpAddress } from '../model/address.ts';
import { Neighbours, type NeighbourTarget } from '../net/neighbours.ts';
import type { Applied } from '../reconcile/state.ts';

export interface Nic {
  ifindex: number;
  mac: Buffer;
}

/**
 * The other NICs backends sit behind (`interface` of a backend), looked up
 * (nothing is written); throws CONFIG_INVALID naming a missing one.
 */
export function lookupNics(services: readonly ServiceConfig[]): Map<string, Nic> {
  const nics = new Map<string, Nic>();
  for (const s of services)
    for (const b of s.backends) {
      if (!b.interface || nics.has(b.interface)) continue;
      try {
        nics.set(b.interface, native.interfaceInfo(b.interface));
      } catch (err) {
        throw new XdplbError('CONFIG_INVALID', `service ${s.name}, backend ${b.address}: interface ${b.interface}: ${errorMessage(err)}`, [], { cause: err });
      }
    }
  return nics;
}

export class BackendPaths {
  /** The other NICs in use, by name. */
  nics = new Map<string, Nic>();
  private readonly neighbours = new Neighbours();
  /** The targets of the last resolve (what the next one need not wait for again). */
  lastTargets: ReadonlyMap<string, NeighbourTarget> = new Map();
  private readonly dp: DataPlane;
  /** The NIC the program runs on. */
  private readonly ifindex: number;
  private readonly log: Logger;

  constructor(dp: DataPlane, ifindex: number, log: Logger) {
    this.dp = dp;
    this.ifindex = ifindex;
    this.log = log;
  }

  /** Puts the NICs backends sit behind in the redirect map: before the destinations that name them are written. */
  putTxPorts(): void {
    for (const nic of this.nics.values()) this.dp.putTxPort(nic.ifindex);
  }

  /** Takes NICs no backend is behind any more out of the redirect map (after the reconcile that left them). */
  pruneTxPorts(): void {
    const gone = this.dp.pruneTxPorts(new Set([...this.nics.values()].map((n) => n.ifindex)));
    if (gone.length > 0) this.log.info({ ifindexes: gone }, 'NICs no longer used for XDP_REDIRECT');
  }

  /** The ifindex of the NIC a backend is reached through. */
  ifindexVia(via: string | null | undefined): number {
    return via ? (this.nics.get(via)?.ifindex ?? 0) : this.ifindex;
  }

  /** The MAC of a backend reached through NIC `via` (null: the program's own); null while unresolved. */
  macOf(address: IpAddress, via: string | null): Buffer | null {
    return this.neighbours.macOf(address, this.ifindexVia(via));
  }

  /** Backends known from the pins keep their MAC across a restart. */
  seed(applied: Applied): void {
    for (const dest of applied.dests.values())
      if (dest.value.state !== CONSTANTS.DEST_UNUSED) this.neighbours.seed({ address: dest.address, ifindex: dest.value.ifindex || this.ifindex }, dest.value.mac);
  }

  /** Every backend of the services, by "ifindex/address", once. */
  targets(services: readonly ServiceConfig[]): Map<string, NeighbourTarget> {
    const all = new Map<string, NeighbourTarget>();
    for (const s of services)
      for (const b of s.backends) {
        const ifindex = this.ifindexVia(b.interface);
        const key = `${ifindex}/${b.address}`;
        if (!all.has(key)) all.set(key, { address: mustParseIp(b.address), ifindex }); // parsed once per node, not once per service
      }
    return all;
  }

  /**
   * Asks the kernel to resolve every backend of the services, and waits up
   * to ms for them; with `known` (the previous config's), only for the
   * backends that are new (a backend that has been unresolved for a while
   * must not delay a reload).
   */
  async resolve(services: readonly ServiceConfig[], ms: number, known?: ReadonlyMap<string, NeighbourTarget>): Promise<void> {
    const all = this.targets(services);
    this.lastTargets = all;
    this.neighbours.want([...all.values()]);
    const waitFor = [...all].filter(([k]) => !known?.has(k)).map(([, t]) => t);
    const deadline = Date.now() + ms;
    for (;;) {
      this.neighbours.poll();
      if (waitFor.every((t) => this.neighbours.macOf(t.address, t.ifindex)) || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Reads the neighbour table; returns the backend addresses whose MAC was resolved, changed or lost. */
  poll(): string[] {
    return this.neighbours.poll();
  }

  /**
   * Follows the kernel's neighbour notices: `onChanged` gets the backends
   * whose MAC appeared or changed as it happens (or, after the kernel dropped
   * notices, what a full read found).
   */
  watch(onChanged: (addresses: string[]) => void): void {
    this.stopWatching?.();
    this.stopWatching = native.watchNeighbours((events) => {
      try {
        const changed = events === null ? this.neighbours.poll() : this.neighbours.apply(events);
        if (changed.length > 0) onChanged(changed);
      } catch (err) {
        this.log.error({ err }, 'a neighbour notice could not be applied; the next poll catches up');
      }
    });
  }

  private stopWatching: (() => void) | null = null;

  /** Whether a backend is unresolved or stopped answering (the tables are then read every second). */
  troubled(): boolean {
    return this.neighbours.troubled();
  }

  /** Each backend's resolution, for the metrics. */
  resolution(): ReturnType<Neighbours['resolution']> {
    return this.neighbours.resolution();
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = null;
    this.neighbours.close();
  }
}
