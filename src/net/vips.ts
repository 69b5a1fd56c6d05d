// VIP ownership: the director holds each VIP on its NIC (so it answers ARP
// for it) and announces it when it takes it. What it added is recorded in
// /run/xdplb so that detach removes exactly that, and nothing an operator
// configured by hand.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { native } from '../dataplane/native.ts';
import { formatIp, mustParseIp, type IpAddress } from '../model/address.ts';

const STATE_DIR = process.env.XDPLB_RUN_DIR ?? '/run/xdplb';

function recordPath(key: string): string {
  return `${STATE_DIR}/${key.replaceAll('/', '_')}.vips.json`;
}

function readRecord(key: string): string[] {
  try {
    return JSON.parse(readFileSync(recordPath(key), 'utf8')) as string[];
  } catch {
    return [];
  }
}

function writeRecord(key: string, vips: string[]): void {
  mkdirSync(STATE_DIR, { recursive: true });
  writeFileSync(recordPath(key), JSON.stringify(vips));
}

const prefix = (a: IpAddress) => (a.family === 4 ? 32 : 128);

/**
 * Makes the VIPs on the interface exactly `vips` (among those we added):
 * adds and announces the new ones, removes ours that are no longer wanted.
 * `key` names the record (the pin directory). Returns what changed.
 */
export function ownVips(key: string, ifindex: number, mac: Buffer, vips: readonly IpAddress[]): { added: string[]; removed: string[] } {
  const present = new Set(native.addresses(ifindex).map((a) => formatIp(a.address, a.family)));
  const ours = new Set(readRecord(key));
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
  writeRecord(key, [...ours]);
  for (const text of added) announce(ifindex, mac, mustParseIp(text));
  return { added, removed };
}

export function announce(ifindex: number, mac: Buffer, vip: IpAddress): void {
  native.announce(ifindex, mac, vip.family, vip.bytes);
}

/** Removes every VIP we added (detach). */
export function releaseVips(key: string, ifindex: number | null): string[] {
  const ours = readRecord(key);
  if (ifindex !== null) {
    const present = new Set(native.addresses(ifindex).map((a) => formatIp(a.address, a.family)));
    for (const text of ours) {
      const v = mustParseIp(text);
      if (present.has(text)) native.deleteAddress(ifindex, v.family, v.bytes, prefix(v));
    }
  }
  rmSync(recordPath(key), { force: true });
  return ours;
}
