// The announcement interface for a routing daemon (BIRD, FRR): a route per
// VIP the director can serve, in a kernel routing table of its own
// (`routeTable`), `VIP/32 dev NIC scope link proto 251`. No rule points at
// that table, so it changes nothing in the director's own forwarding; the
// daemon imports it and announces the VIPs over BGP, and withdraws a route
// the moment it leaves the table. Which VIPs belong there is decided apart
// (announcedVips, pure); publishRoutes only makes the table say so, and
// touches nothing but its own routes (protocol 251 on its NIC). Where they
// were published is recorded in the run directory, so that detach withdraws
// them from that table in that namespace, and nothing else.
import { readFileSync, rmSync } from 'node:fs';
import { native } from '../dataplane/native.ts';
import { CONSTANTS } from '../dataplane/abi.ts';
import { XdplbError } from '../errors.ts';
import { formatIp, mustParseIp, type IpAddress } from '../model/address.ts';
import type { Applied } from '../reconcile/state.ts';
import { runFile, writeRunFile } from '../paths.ts';
import { currentNetns } from './netns.ts';

/** The rtnetlink protocol number of xdplb's routes (`ip route ... proto 251`; the routing daemon filters on it). */
export const RTPROT_XDPLB = 251;

interface RouteRecord {
  netns: string;
  table: number;
  ifindex: number;
}

const prefix = (a: IpAddress) => (a.family === 4 ? 32 : 128);

/**
 * The VIPs to announce: none unless the director is active and not drained;
 * else every VIP with a service that has a backend taking new flows whose
 * health check does not say it is down. Pure; sorted.
 */
export function announcedVips(applied: Applied, o: { active: boolean; drained: boolean }): string[] {
  if (!o.active || o.drained) return [];
  const vips = new Set<string>();
  for (const s of applied.services.values()) {
    const vip = formatIp(s.key.addr, s.key.family);
    if (vips.has(vip)) continue;
    for (const id of s.dests.values()) {
      const d = applied.dests.get(id);
      if (d && d.value.state === CONSTANTS.DEST_ACTIVE && d.info.health !== 'down') {
        vips.add(vip);
        break;
      }
    }
  }
  return [...vips].sort();
}

/** Our routes in the table: protocol 251 on this NIC. */
function ourRoutes(table: number, ifindex: number): Map<string, IpAddress> {
  const out = new Map<string, IpAddress>();
  for (const r of native.routes(table)) {
    if (r.protocol !== RTPROT_XDPLB || r.ifindex !== ifindex || r.prefixLength !== (r.family === 4 ? 32 : 128)) continue;
    const ip = mustParseIp(formatIp(r.dst, r.family));
    out.set(ip.text, ip);
  }
  return out;
}

/**
 * Makes xdplb's routes in `table` exactly `vips` (adds the missing, deletes
 * ours that are no longer wanted); `key` names the record (the pin
 * directory). Returns what changed.
 */
export function publishRoutes(key: string, table: number, ifindex: number, vips: readonly string[]): { added: string[]; withdrawn: string[] } {
  writeRunFile(key, 'routes.json', JSON.stringify({ netns: currentNetns(), table, ifindex } satisfies RouteRecord));
  const present = ourRoutes(table, ifindex);
  const want = new Set(vips);
  const added: string[] = [];
  const withdrawn: string[] = [];
  for (const text of vips) {
    if (present.has(text)) continue;
    const v = mustParseIp(text);
    native.addRoute(table, RTPROT_XDPLB, ifindex, v.family, v.bytes, prefix(v));
    added.push(text);
  }
  for (const [text, v] of present) {
    if (want.has(text)) continue;
    native.deleteRoute(table, RTPROT_XDPLB, ifindex, v.family, v.bytes, prefix(v));
    withdrawn.push(text);
  }
  return { added, withdrawn };
}

/**
 * Withdraws every route xdplb published for these pins (detach), from the
 * table and NIC recorded, then the record; refuses, withdrawing nothing,
 * from another network namespace than the one they were published in.
 */
export function withdrawRoutes(key: string): string[] {
  let record: RouteRecord;
  try {
    record = JSON.parse(readFileSync(runFile(key, 'routes.json'), 'utf8')) as RouteRecord;
  } catch {
    return [];
  }
  if (record.netns !== currentNetns())
    throw new XdplbError('USAGE', `the routes of ${key} (table ${record.table}) were published in another network namespace (${record.netns}): detach from there (nsenter --net=...); nothing was withdrawn`);
  const withdrawn: string[] = [];
  try {
    for (const [text, v] of ourRoutes(record.table, record.ifindex)) {
      native.deleteRoute(record.table, RTPROT_XDPLB, record.ifindex, v.family, v.bytes, prefix(v));
      withdrawn.push(text);
    }
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENODEV') throw err; // the NIC is gone, and its routes with it
  }
  rmSync(runFile(key, 'routes.json'), { force: true });
  return withdrawn;
}
