// The VIP-owner role on the director's NIC. Active: the NIC holds every VIP
// (so the director answers ARP/NDP for them), and a takeover announces every
// one of them (gratuitous ARP / unsolicited NA), not only the ones it adds:
// the segment's caches may still point at the previous owner. Standby: the
// NIC holds none of the VIPs xdplb added. The maps are not touched either way.
// The role set at run time is recorded in the run directory, so that a daemon
// restart keeps it (a standby that restarted must not take the VIPs from the
// active director); without a record the config's role holds.
import { readFileSync, rmSync } from 'node:fs';
import type { Logger } from '../log.ts';
import type { IpAddress } from '../model/address.ts';
import { ROLES, type Role } from '../model/role.ts';
import { ownVips } from '../net/vips.ts';
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
}

/** Forgets the recorded role (detach: the next start takes the config's). */
export function forgetRole(key: string): void {
  rmSync(runFile(key, 'role'), { force: true });
}

export class VipOwner {
  private current: Role;
  /** The role and VIPs of the last sync that succeeded. */
  private lastSynced = '';
  private readonly o: VipOwnerOptions;

  constructor(role: Role, options: VipOwnerOptions) {
    this.current = role;
    this.o = options;
    options.onRole(role);
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
    const changed = ownVips(this.o.key, this.o.ifindex, this.o.mac, this.current === 'active' ? vips : [], takeover && this.current === 'active');
    this.lastSynced = wanted;
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
    writeRunFile(this.o.key, 'role', role);
    this.o.onRole(role);
    if (role !== was) this.o.log.info({ role, was }, role === 'active' ? 'active: this director owns the VIPs' : 'standby: this director owns no VIP');
    return was;
  }
}
