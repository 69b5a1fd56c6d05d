// A backend ("real server") in Direct-Routing mode: it holds every VIP on
// `lo` so that it accepts the packets the director hands it (and can reach
// the VIP itself), and it must not answer ARP for them on its NICs, or it
// would steal the VIP from the director:
//   arp_ignore=1   answer ARP only for addresses on the receiving interface
//   arp_announce=2 never use a VIP as the source of its own ARP requests
//   rp_filter      strict (1) becomes loose (2): replies leave from a VIP
//                  that no route points back to
// Idempotent; --undo removes the VIPs and restores the sysctls it changed.
// What it changed is recorded per network namespace (addresses and sysctls
// are per namespace), so hosts sharing a machine do not undo each other.
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { native } from '../dataplane/native.ts';
import { formatIp, type IpAddress } from '../model/address.ts';
import { currentNetns } from '../net/netns.ts';
import { ensureRunDir, RUN_DIR } from '../paths.ts';

/**
 * Who changes the host: the command line (`xdplb realserver --vip`), or the
 * Kubernetes agent (`--k8s`). Each keeps its own record, so neither removes
 * an address the other added.
 */
export type Changer = 'cli' | 'agent';

/** The record of this network namespace ("realserver-4026531840.json", the agent's "realserver-k8s-4026531840.json"). */
function stateFile(by: Changer): string {
  return `${RUN_DIR}/realserver-${by === 'agent' ? 'k8s-' : ''}${currentNetns().replace(/\D/g, '')}.json`;
}

interface SavedState {
  vips: string[];
  sysctls: Record<string, string>;
}

const SYSCTLS: Record<string, string> = {
  'net/ipv4/conf/all/arp_ignore': '1',
  'net/ipv4/conf/all/arp_announce': '2',
};

function readSysctl(key: string): string {
  return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
}

function writeSysctl(key: string, value: string): void {
  writeFileSync(`/proc/sys/${key}`, value);
}

function loadState(by: Changer): SavedState {
  const file = stateFile(by);
  if (!existsSync(file)) return { vips: [], sysctls: {} };
  return JSON.parse(readFileSync(file, 'utf8')) as SavedState;
}

function saveState(s: SavedState, by: Changer): void {
  ensureRunDir();
  writeFileSync(stateFile(by), JSON.stringify(s, null, 2));
}

export interface RealserverResult {
  vipsAdded: string[];
  vipsRemoved: string[];
  sysctls: Record<string, string>;
}

/** rp_filter keys that are strict (1) now: all, and every interface. */
function strictRpFilters(): string[] {
  const keys = ['net/ipv4/conf/all/rp_filter'];
  for (const iface of native.listInterfaces()) keys.push(`net/ipv4/conf/${iface}/rp_filter`);
  return keys.filter((k) => existsSync(`/proc/sys/${k}`) && readSysctl(k) === '1');
}

/** The VIPs xdplb added to lo in this network namespace (and has not removed). */
export function addedVips(by: Changer = 'cli'): string[] {
  return loadState(by).vips;
}

export function configureRealserver(vips: readonly IpAddress[], by: Changer = 'cli'): RealserverResult {
  const state = loadState(by);
  // the sysctls first: a VIP on lo while arp_ignore is still 0 would make this host answer ARP for it, taking it
  // from the director; each change is recorded as it is made, so that a failure part way leaves nothing unrecorded
  const changed: Record<string, string> = {};
  const wanted: Record<string, string> = { ...SYSCTLS };
  for (const k of strictRpFilters()) wanted[k] = '2';
  for (const [k, v] of Object.entries(wanted)) {
    const before = readSysctl(k);
    if (before === v) continue;
    if (!(k in state.sysctls)) state.sysctls[k] = before;
    saveState(state, by);
    writeSysctl(k, v);
    changed[k] = v;
  }
  const lo = native.interfaceInfo('lo').ifindex;
  const present = new Set(native.addresses(lo).map((a) => formatIp(a.address, a.family)));
  const added: string[] = [];
  for (const v of vips) {
    if (present.has(v.text)) continue;
    state.vips = [...new Set([...state.vips, v.text])];
    saveState(state, by);
    native.addAddress(lo, v.family, v.bytes, v.family === 4 ? 32 : 128);
    added.push(v.text);
  }
  saveState(state, by);
  return { vipsAdded: added, vipsRemoved: [], sysctls: changed };
}

/**
 * Removes the VIPs it added (only `vips`, when given) and, once none it
 * added is left, restores the sysctls it changed (unless keepSysctls: the
 * Kubernetes agent keeps them while it runs, with or without VIPs). A VIP it did not add is
 * left alone, and named in `notAdded`.
 */
export function undoRealserver(vips?: readonly IpAddress[], o: { keepSysctls?: boolean; by?: Changer } = {}): RealserverResult & { notAdded: string[] } {
  const by = o.by ?? 'cli';
  const state = loadState(by);
  const lo = native.interfaceInfo('lo').ifindex;
  const present = new Map(native.addresses(lo).map((a) => [formatIp(a.address, a.family), a]));
  const chosen = vips ? vips.map((v) => v.text) : state.vips;
  const notAdded = chosen.filter((t) => !state.vips.includes(t));
  const removed: string[] = [];
  for (const text of chosen) {
    if (notAdded.includes(text)) continue;
    const a = present.get(text);
    if (a) native.deleteAddress(lo, a.family, a.address, a.prefixLength);
    removed.push(text);
  }
  state.vips = state.vips.filter((t) => !removed.includes(t));
  if (state.vips.length > 0 || o.keepSysctls) {
    saveState(state, by);
    return { vipsAdded: [], vipsRemoved: removed, sysctls: {}, notAdded };
  }
  for (const [k, v] of Object.entries(state.sysctls)) writeSysctl(k, v);
  rmSync(stateFile(by), { force: true });
  return { vipsAdded: [], vipsRemoved: removed, sysctls: state.sysctls, notAdded };
}
