// A loaded (unattached) data plane with services written straight into its
// maps, for BPF_PROG_TEST_RUN packet tests. Destination ids: service id * 100
// + backend number; backend n has MAC backendMac(n). And the writes and reads
// of a DataPlane that only tests need (the director's go through plan()).
import { addVipBit, CONSTANTS, serviceIndexHash, type ServiceValue } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { mustParseIp } from '../../src/model/address.ts';
import type { ServiceKey } from '../../src/model/keys.ts';
import { canonicalOrder, maglevTable, nextSlots, NO_BACKEND } from '../../src/model/maglev.ts';
import { IPPROTO, type Protocol } from '../../src/model/protocol.ts';
import { backendMac, MAC } from './packets.ts';

/**
 * Writes one service whole (hash map, entry, index — marking a collision
 * when another key holds its index slot), for code that builds services one
 * by one. plan() computes the whole index instead, and handles removals.
 */
export function putServiceIndexed(dp: DataPlane, key: ServiceKey, value: ServiceValue, entry: number): void {
  dp.putService(key, value);
  dp.putServiceEntry(entry, key, value);
  const h = serviceIndexHash(key);
  const held = dp.readServiceIndex(h);
  dp.putServiceIndex(h, held === 0 || held === entry ? entry : CONSTANTS.SERVICE_INDEX_COLLISION);
}

/** Swaps in one whole table. */
export function putTable(dp: DataPlane, serviceId: number, dest: Uint32Array, prev: Uint32Array): void {
  dp.putTables([{ serviceId, dest, prev }]);
}

/** The ids of a data plane's maps in this process's view (adoption keeps the same maps). */
export function mapIds(dp: DataPlane): Record<string, number> {
  return Object.fromEntries(Object.entries(dp.maps).map(([n, m]) => [n, m.info().id]));
}

export const VERDICT = ['ABORTED', 'DROP', 'PASS', 'TX', 'REDIRECT'] as const;
export type Verdict = (typeof VERDICT)[number];

export interface FixtureBackend {
  n: number;
  weight?: number;
  state?: 'active' | 'draining' | 'gone';
}

export interface FixtureService {
  id: number;
  vip: string;
  port: number;
  proto: Protocol;
  sourceHash?: boolean;
  noBackendPass?: boolean;
  seed?: number;
  backends: FixtureBackend[];
}

const STATE = { active: CONSTANTS.DEST_ACTIVE, draining: CONSTANTS.DEST_DRAINING, gone: CONSTANTS.DEST_UNUSED };

export class Fixture {
  readonly dp: DataPlane;
  private filter: BigUint64Array;

  private constructor(dp: DataPlane) {
    this.dp = dp;
    this.filter = new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS);
  }

  /** With pinDir, the maps are pinned there too (for commands that read the pins). */
  static async create(maglevSize = 16381, maxServices = 64, pinDir?: string): Promise<Fixture> {
    return new Fixture(await DataPlane.load({ maglevSize, maxServices, maxDests: 4096, maxFlows: 65536, ...(pinDir ? { pinDir } : {}) }));
  }

  /** Writes a service, its destinations and its table (keeping prev owners). */
  setService(s: FixtureService): void {
    const vip = mustParseIp(s.vip);
    for (const b of s.backends)
      this.dp.putDest(s.id * 100 + b.n, { ifindex: 0, mac: backendMac(b.n), srcMac: MAC.director, state: STATE[b.state ?? 'active'], service: s.id });
    const inTable = s.backends.filter((b) => (b.state ?? 'active') === 'active');
    const order = canonicalOrder(inTable.map((b) => ({ key: `backend-${b.n}`, weight: b.weight ?? 1, n: b.n })));
    const table = maglevTable(order, this.dp.capacities.maglevSize);
    const dest = Uint32Array.from(table, (i) => (i === NO_BACKEND ? 0 : s.id * 100 + order[i]!.n));
    const old = this.dp.readTable(s.id);
    putTable(this.dp, s.id, dest, nextSlots(old?.dest ?? null, old?.prev ?? null, dest));
    const next = BigUint64Array.from(this.filter);
    addVipBit(next, vip.bytes, vip.family);
    this.dp.writeVipFilter(next, this.filter);
    this.dp.putVip(vip);
    this.filter = next;
    const key = { addr: vip.bytes, family: vip.family, proto: IPPROTO[s.proto], port: s.port };
    const value = {
      id: s.id,
      seed: s.seed ?? 0x5eed,
      flags: (s.sourceHash ? CONSTANTS.SVC_F_SOURCE_HASH : 0) | (s.noBackendPass ? CONSTANTS.SVC_F_NO_BACKEND_PASS : 0),
    };
    putServiceIndexed(this.dp, key, value, s.id); // entry number = service id here
  }

  async run(frame: Buffer): Promise<{ verdict: Verdict; packet: Buffer }> {
    const r = await this.dp.program.testRun(frame, 1);
    return { verdict: VERDICT[r.retval] ?? 'ABORTED', packet: r.packet };
  }

  /** Backend number a forwarded frame was sent to (from its new dst MAC). */
  static backendOf(packet: Buffer): number {
    return packet[5]!;
  }
}
