// Backend MACs from the kernel's neighbour table of the director's NIC. The
// director's kernel never sends to backends itself (XDP forwards around it),
// so entries go stale and may be collected: the last MAC seen stays known,
// and resolution is triggered (a UDP datagram to the discard port) for
// backends that are missing, stale or failed. The kernel's own notices of
// neighbour changes (RTNLGRP_NEIGH: apply()) bring a new or changed MAC in as
// it happens; the poll, every POLL_MS, is the safety net (a notice lost, an
// entry gone stale) and asks again for what is not fresh; while a backend is
// unresolved or stops answering, it runs every TROUBLE_POLL_MS. A backend that
// answers no resolution for LOST_AFTER polls in
// a row (the kernel cycles FAILED and INCOMPLETE while we keep asking) has its
// MAC forgotten: it is unresolved, and not used, until it answers again —
// forwarding to it would black-hole the traffic. One poll is not enough: an
// entry the kernel collected is briefly INCOMPLETE while it is asked again.
// Backends behind another NIC of the director are looked up in that NIC's
// table.
import { createSocket, type Socket } from 'node:dgram';
import { native } from '../dataplane/native.ts';
import { formatIp, type IpAddress } from '../model/address.ts';

const NUD = { INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20, NOARP: 0x40, PERMANENT: 0x80 };
const USABLE = NUD.REACHABLE | NUD.STALE | NUD.DELAY | NUD.PROBE | NUD.NOARP | NUD.PERMANENT;
const FRESH = NUD.REACHABLE | NUD.PERMANENT | NUD.NOARP;
/** How often the neighbour tables are read in full, beside the kernel's notices, while every backend is resolved. */
export const POLL_MS = 5000;
/** How often, while a backend is unresolved or has stopped answering (so that losing it takes LOST_AFTER seconds). */
export const TROUBLE_POLL_MS = 1000;
/** Polls without a usable entry before a known MAC is forgotten. */
const LOST_AFTER = 3;

/** A backend to resolve, on the segment of one of the director's NICs. */
export interface NeighbourTarget {
  address: IpAddress;
  ifindex: number;
}

const keyOf = (address: IpAddress | string, ifindex: number) => `${ifindex}/${typeof address === 'string' ? address : address.text}`;

export class Neighbours {
  private known = new Map<string, Buffer>();
  /** Polls in a row a known backend had no usable entry. */
  private misses = new Map<string, number>();
  private wanted = new Map<string, NeighbourTarget>();
  private readonly sockets: { 4?: Socket; 6?: Socket } = {};

  /** The backends to resolve and keep current, each on its NIC. */
  want(targets: readonly NeighbourTarget[]): void {
    this.wanted = new Map(targets.map((t) => [keyOf(t.address, t.ifindex), t]));
  }

  /** A MAC known from elsewhere (the pins of a running data plane). */
  seed(target: NeighbourTarget, mac: Buffer): void {
    const k = keyOf(target.address, target.ifindex);
    if (!this.known.has(k)) this.known.set(k, Buffer.from(mac));
  }

  macOf(address: IpAddress, ifindex: number): Buffer | null {
    return this.known.get(keyOf(address, ifindex)) ?? null;
  }

  /** Whether a wanted backend is unresolved or has missed a poll: then the tables are read every TROUBLE_POLL_MS. */
  troubled(): boolean {
    if (this.misses.size > 0) return true;
    for (const k of this.wanted.keys()) if (!this.known.has(k)) return true;
    return false;
  }

  /** Every wanted backend address, once, and whether its MAC is known (on every NIC it is wanted on). */
  resolution(): Array<{ address: string; resolved: boolean }> {
    const byAddress = new Map<string, boolean>();
    for (const [k, t] of this.wanted) byAddress.set(t.address.text, (byAddress.get(t.address.text) ?? true) && this.known.has(k));
    return [...byAddress].map(([address, resolved]) => ({ address, resolved }));
  }

  /**
   * Reads the neighbour table of each NIC with wanted backends; returns the
   * addresses whose MAC appeared, changed or was lost. Probes every wanted
   * address that is not freshly resolved.
   */
  poll(): string[] {
    const changed: string[] = [];
    const seen = new Map<string, number>();
    for (const ifindex of new Set([...this.wanted.values()].map((t) => t.ifindex))) {
      for (const n of native.neighbours(ifindex)) {
        const k = keyOf(formatIp(n.address, n.family), ifindex);
        seen.set(k, n.state);
        const target = this.wanted.get(k);
        if (!target || !n.mac || !(n.state & USABLE)) continue;
        const before = this.known.get(k);
        if (!before || !before.equals(n.mac)) {
          this.known.set(k, Buffer.from(n.mac));
          changed.push(target.address.text);
        }
      }
    }
    for (const [k, t] of this.wanted) {
      const state = seen.get(k) ?? 0;
      if (state & USABLE) this.misses.delete(k);
      else if (this.known.has(k)) {
        const misses = (this.misses.get(k) ?? 0) + 1;
        this.misses.set(k, misses);
        if (misses >= LOST_AFTER) {
          this.known.delete(k);
          this.misses.delete(k);
          changed.push(t.address.text);
        }
      }
      if (!(state & FRESH)) this.probe(t.address);
    }
    return changed;
  }

  /**
   * The kernel's notices of neighbour changes (native.watchNeighbours):
   * returns the wanted backends whose MAC appeared or changed. A backend
   * whose entry failed is asked again at once; losing a MAC is left to
   * poll() (one failure is not a loss).
   */
  apply(events: readonly { ifindex: number; deleted: boolean; family: 4 | 6; address: Buffer; mac: Buffer | null; state: number }[]): string[] {
    const changed: string[] = [];
    for (const e of events) {
      const k = keyOf(formatIp(e.address, e.family), e.ifindex);
      const target = this.wanted.get(k);
      if (!target) continue;
      if (!e.deleted && e.mac && e.state & USABLE) {
        this.misses.delete(k);
        const before = this.known.get(k);
        if (!before || !before.equals(e.mac)) {
          this.known.set(k, Buffer.from(e.mac));
          changed.push(target.address.text);
        }
      } else if (e.state & NUD.FAILED) {
        this.probe(target.address);
      }
    }
    return changed;
  }

  /** A datagram to the discard port: the kernel resolves the address on the NIC its route names. */
  private probe(addr: IpAddress): void {
    const family = addr.family;
    let s = this.sockets[family];
    if (!s) {
      s = createSocket(family === 4 ? 'udp4' : 'udp6');
      s.on('error', () => undefined); // ICMP unreachable answers are expected
      s.unref();
      this.sockets[family] = s;
    }
    s.send(Buffer.alloc(0), 9, addr.text, () => undefined);
  }

  close(): void {
    this.sockets[4]?.close();
    this.sockets[6]?.close();
  }
}
