// The VIP-owner role on the director's NIC. Active: the NIC holds every VIP
// (so the director answers ARP/NDP for them, while the data plane's ownership
// gate lets the requests through: until claimUntil, which a daemon that
// stopped can no longer move on), and a takeover announces every
// one of them (gratuitous ARP / unsolicited NA), not only the ones it adds:
// the segment's caches may still point at the previous owner. Standby: the
// NIC holds none of the VIPs xdplb added. The maps are not touched either way.
// A takeover is announced in a burst (now, ANNOUNCE_BURST_MS later: a
// frame lost on the wire must not leave a cache on the old owner), and the
// VIPs are announced again every ANNOUNCE_REFRESH_MS while active; never once
// the director may no longer claim them (claimUntil: a leader whose Lease
// was not renewed in time). The role set at run time by `xdplb role` is
// recorded in the run directory, so that a daemon restart keeps it (a standby
// that restarted must not take the VIPs from the active director); without a
// record the config's role holds. Under leader election the Lease decides,
// and nothing is recorded.
import { readFileSync, rmSync } from 'node:fs';
import type { Logger } from '../log.ts';
import type { IpAddress } from '../model/address.ts';
import { ROLES, type Role } from '../model/role.ts';
import type { DataPlane, OwnerDeadline } from '../dataplane/dataplane.ts';
import { announce, ownVips } from '../net/vips.ts';
import { runFile, writeRunFile } from '../paths.ts';

/** The role recorded for this pin directory by the last `xdplb role`, if any. */
export function recordedRole(key: string): Role | null {
  try {
    const r = readFileSync(runFile(key, 'role'), 'utf8').trim();
    return (ROLES as readonly string[]).includes(r) ? (r as Role) : null;
  } catch {
    return null;
  }
}

export interface VipOwnerOptions {
  /** The record of what was added (the pin directory). */
  key: string;
  ifindex: number;
  mac: Buffer;
  /** ownVips of the config: false leaves the NIC's addresses to the operator. */
  enabled(): boolean;
  log: Logger;
  /** Called with every role set (metrics). */
  onRole(role: Role): void;
  /** Whether a role set is recorded for the next start (not under leader election). */
  recordRole: boolean;
  /**
   * Until when (performance.now()) an active director may claim the VIPs:
   * Infinity for a director without redundancy; the Lease's deadline under
   * leader election; the last renewal plus vipClaimLease otherwise.
   */
  claimUntil(): number;
  /** The data plane's ownership gate: ARP/NDP for these VIPs reaches the kernel only until the deadline. */
  gate: Pick<DataPlane, 'setOwnedVips' | 'setOwnerDeadline'>;
}

/** A claimUntil (performance.now() milliseconds) as the gate's deadline (process.hrtime nanoseconds). */
export function gateDeadline(claimUntil: number, now = performance.now(), hrNow = process.hrtime.bigint()): OwnerDeadline {
  if (claimUntil === Infinity) return 'forever';
  if (claimUntil <= now) return 0;
  return hrNow + BigInt(Math.round((claimUntil - now) * 1e6));
}

/** After a takeover's announcement, the same again this long after it. */
export const ANNOUNCE_BURST_MS = [200, 1000] as const;
/** While active, every VIP is announced again this often. */
export const ANNOUNCE_REFRESH_MS = 10_000;

/** Forgets the recorded role (detach: the next start takes the config's). */
export function forgetRole(key: string): void {
  rmSync(runFile(key, 'role'), { force: true });
}

export class VipOwner {
  private current: Role;
  /** The role and VIPs of the last sync that succeeded. */
  private lastSynced = '';
  /** The VIPs the NIC holds as the active director (of the last sync). */
  private held: readonly IpAddress[] = [];
  private readonly o: VipOwnerOptions;
  private burst: NodeJS.Timeout[] = [];
  private readonly refresh: NodeJS.Timeout;

  constructor(role: Role, options: VipOwnerOptions) {
    this.current = role;
    this.o = options;
    options.onRole(role);
    this.refresh = setInterval(() => this.announceHeld('refresh'), ANNOUNCE_REFRESH_MS);
    this.refresh.unref();
  }

  /** Stops the announcements (the daemon stops). */
  close(): void {
    clearInterval(this.refresh);
    for (const t of this.burst) clearTimeout(t);
    this.burst = [];
  }

  /** Whether this director may claim the VIPs now: active, and within claimUntil. */
  mayClaim(): boolean {
    return this.current === 'active' && performance.now() < this.o.claimUntil();
  }

  /** Moves the gate's deadline to claimUntil (after a Lease renewal, or the static claim's): a daemon that stops renewing stops claiming. */
  renewClaim(): void {
    if (!this.o.enabled() || this.current !== 'active') return;
    this.o.gate.setOwnerDeadline(gateDeadline(this.o.claimUntil()));
  }

  /** Announces every VIP held, if it may still claim them. */
  private announceHeld(why: string): void {
    if (!this.o.enabled() || !this.mayClaim() || this.held.length === 0) return;
    try {
      for (const vip of this.held) announce(this.o.ifindex, this.o.mac, vip);
    } catch (err) {
      this.o.log.warn({ err, why }, 'announcing the VIPs failed');
    }
  }

  get role(): Role {
    return this.current;
  }

  /** Makes the NIC hold exactly `vips` (active) or none (standby); with takeover, announces them all. */
  sync(vips: readonly IpAddress[], takeover = false): void {
    if (!this.o.enabled()) return;
    // the same VIPs in the same role: nothing to do (a Kubernetes change of backends must not cost a netlink dump)
    const wanted = `${this.current} ${vips.map((v) => v.text).join(',')}`;
    if (!takeover && wanted === this.lastSynced) return;
    const active = this.current === 'active';
    // the gate opens before a VIP goes onto the NIC, and closes before one leaves it
    if (active) {
      this.renewClaim();
      this.o.gate.setOwnedVips(vips);
    } else {
      this.o.gate.setOwnerDeadline(0);
    }
    const changed = ownVips(this.o.key, this.o.ifindex, this.o.mac, active ? vips : [], takeover && active, () => this.mayClaim());
    if (!active) this.o.gate.setOwnedVips([]); // a standby gates nothing: no drops counted for VIPs it never held
    this.lastSynced = wanted;
    this.held = active ? [...vips] : [];
    if (takeover && active) {
      for (const t of this.burst) clearTimeout(t);
      this.burst = ANNOUNCE_BURST_MS.map((ms) => setTimeout(() => this.announceHeld('takeover'), ms));
    }
    if (changed.notRecorded) this.o.log.error({ error: changed.notRecorded }, 'the record of the VIPs this daemon added could not be written: they are on the NIC and announced, but `xdplb detach` after a crash would not know them');
    if (changed.added.length || changed.removed.length || changed.announced.length) this.o.log.info({ role: this.current, ...changed }, 'VIPs on the interface');
  }

  /** Sets the role, and the NIC's VIPs with it (a change to active is a takeover); returns the role it had. */
  set(role: Role, vips: readonly IpAddress[]): Role {
    const was = this.current;
    this.current = role;
    try {
      this.sync(vips, role === 'active' && was !== 'active');
    } catch (err) {
      this.current = was; // the NIC could not follow: the role stays what it was
      throw err;
    }
    if (this.o.recordRole) writeRunFile(this.o.key, 'role', role);
    this.o.onRole(role);
    if (role !== was) this.o.log.info({ role, was }, role === 'active' ? 'active: this director owns the VIPs' : 'standby: this director owns no VIP');
    return was;
  }
}
