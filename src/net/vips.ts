// VIP ownership: the director holds each VIP on its NIC (so it answers ARP
// for it) and announces it when it takes it. What it added, and where, is
// recorded in the run directory so that detach removes exactly that, from
// that NIC, and nothing an operator configured by hand.
import { readFileSync, rmSync } from 'node:fs';
import { native } from '../dataplane/native.ts';
import { XdplbError } from '../errors.ts';
import { formatIp, mustParseIp, type IpAddress } from '../model/address.ts';
import { runFile, writeRunFile } from '../paths.ts';
import { currentNetns } from './netns.ts';

/** What a director added: which VIPs, on which NIC, in which network namespace (ifindexes are per namespace). */
interface VipRecord {
  netns: string | null;
  ifindex: number | null;
  vips: string[];
}

function readRecord(key: string): VipRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(runFile(key, 'vips.json'), 'utf8'));
  } catch {
    return { netns: null, ifindex: null, vips: [] };
  }
  if (Array.isArray(raw)) return { netns: null, ifindex: null, vips: raw as string[] }; // written by xdplb 0.1: VIPs only
  return raw as VipRecord;
}

function writeRecord(key: string, ifindex: number, vips: string[]): void {
  writeRunFile(key, 'vips.json', JSON.stringify({ netns: currentNetns(), ifindex, vips } satisfies VipRecord));
}

const prefix = (a: IpAddress) => (a.family === 4 ? 32 : 128);

/**
 * Makes the VIPs on the interface exactly `vips` (among those we added):
 * adds and announces the new ones, removes ours that are no longer wanted.
 * With announceAll (a takeover), every VIP is announced, not only the new
 * ones: the segment's caches may still point at the previous owner.
 * `key` names the record (the pin directory). Returns what changed.
 */
export function ownVips(key: string, ifindex: number, mac: Buffer, vips: readonly IpAddress[], announceAll = false, mayAnnounce: () => boolean = () => true): { added: string[]; removed: string[]; announced: string[]; notRecorded?: string } {
  const present = new Set(native.addresses(ifindex).map((a) => formatIp(a.address, a.family)));
  const ours = new Set(readRecord(key).vips);
  const want = new Set(vips.map((v) => v.text));
  const added: string[] = [];
  const removed: string[] = [];
  for (const v of vips) {
    if (!present.has(v.text)) {
      native.addAddress(ifindex, v.family, v.bytes, prefix(v));
      ours.add(v.text);
      added.push(v.text);
    }
  }
  for (const text of [...ours]) {
    if (want.has(text)) continue;
    const v = mustParseIp(text);
    if (present.has(text)) native.deleteAddress(ifindex, v.family, v.bytes, prefix(v));
    ours.delete(text);
    removed.push(text);
  }
  // a record that cannot be written (a full disk) costs the undo of a crash, not the takeover: announced all the same
  let notRecorded: string | undefined;
  try {
    writeRecord(key, ifindex, [...ours]);
  } catch (err) {
    notRecorded = (err as Error).message;
  }
  // checked at the last moment: a leader whose Lease lapsed announces nothing
  const announced = !mayAnnounce() ? [] : announceAll ? vips.map((v) => v.text) : added;
  for (const text of announced) announce(ifindex, mac, mustParseIp(text));
  return { added, removed, announced, ...(notRecorded ? { notRecorded } : {}) };
}

export function announce(ifindex: number, mac: Buffer, vip: IpAddress): void {
  native.announce(ifindex, mac, vip.family, vip.bytes);
}

/**
 * Removes every VIP we added (detach) from the NIC we added them to, then
 * the record. `ifindex`: the NIC of the pinned attachment (0: it is gone,
 * and the VIPs with it), for a record that does not name one. Refuses,
 * removing nothing, from another network namespace than the one the VIPs
 * were added in.
 */
export function releaseVips(key: string, ifindex: number | null): string[] {
  const record = readRecord(key);
  if (record.vips.length > 0 && record.netns !== null && record.netns !== currentNetns())
    throw new XdplbError('USAGE', `the VIPs of ${key} (${record.vips.join(', ')}) were added in another network namespace (${record.netns}): detach from there (nsenter --net=...); nothing was removed`);
  const nic = record.ifindex ?? ifindex;
  if (nic) {
    let present = new Set<string>();
    try {
      present = new Set(native.addresses(nic).map((a) => formatIp(a.address, a.family)));
    } catch {
      /* the NIC is gone, and its addresses with it */
    }
    for (const text of record.vips) {
      const v = mustParseIp(text);
      if (present.has(text)) native.deleteAddress(nic, v.family, v.bytes, prefix(v));
    }
  } else if (nic === null && record.vips.length > 0) {
    throw new XdplbError('USAGE', `the NIC the VIPs of ${key} (${record.vips.join(', ')}) were added to is unknown: give -i IFACE; nothing was removed`);
  }
  rmSync(runFile(key, 'vips.json'), { force: true });
  return record.vips;
}
