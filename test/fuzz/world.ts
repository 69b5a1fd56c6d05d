// The data plane under test, filled the way the daemon fills it: a config
// validated by the real schema, turned into map writes by the real
// Reconciler (desired → plan → apply) against a real, loaded (unattached)
// DataPlane. Random changes go the same way (backends drained, weighted,
// failing their checks, losing their MAC, removed, added; services removed
// and back, scheduler and policy switched), so the tables hold changed slots
// with previous owners, and destinations draining or gone. view() reads the
// maps back for the model: what the program will read.
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { CONSTANTS, decodeDest, decodeFlowKey, encodeFlowKey, LAYOUT } from '../../src/dataplane/abi.ts';
import { allKeys, DataPlane, type OwnerDeadline } from '../../src/dataplane/dataplane.ts';
import { native } from '../../src/dataplane/native.ts';
import { component } from '../../src/log.ts';
import { mustParseIp } from '../../src/model/address.ts';
import type { Facts } from '../../src/model/desired.ts';
import { backendKey } from '../../src/model/keys.ts';
import { IPPROTO } from '../../src/model/protocol.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { MAC } from '../helpers/packets.ts';
import { serviceKey, vipKey, type DestView, type HashedFlow, type View } from './model.ts';
import type { Rng } from './rng.ts';

const DIRECTOR_MAC = MAC.director;
export const MAGLEV_SIZE = 16381;
const CAPACITY = { services: 64, backends: 1024, flows: 131072 };
const quiet = component('fuzz').child({}, { level: 'silent' });

type ServiceInput = NonNullable<ConfigInput['services']>[number];
type BackendInput = NonNullable<ServiceInput['backends']>[number];

const v4 = (last: number) => `10.240.0.${last}`;
const v6 = (last: number) => `2001:db8::${last.toString(16)}`;
const pool4 = Array.from({ length: 12 }, (_, i) => v4(101 + i));
const pool6 = Array.from({ length: 8 }, (_, i) => v6(0x101 + i));
const b = (address: string, extra: Partial<BackendInput> = {}): BackendInput => ({ address, ...extra });

/**
 * The services the world starts with: a port and the port-less service of a
 * VIP side by side, both schedulers, both families, both no-backend policies,
 * a service with no backend at all, a draining and a zero-weight backend, and
 * (with another NIC) a backend reached through XDP_REDIRECT.
 */
function initialServices(otherNic: string | null): ServiceInput[] {
  return [
    { name: 'web4', vip: v4(201), port: 80, backends: [b(pool4[0]!, { weight: 2 }), b(pool4[1]!), b(pool4[2]!, { weight: 3 }), b(pool4[3]!, { state: 'draining' })] },
    { name: 'dns4', vip: v4(201), port: 53, protocol: 'udp', scheduler: 'maglev-source', backends: [b(pool4[0]!), b(pool4[4]!), b(pool4[5]!)] },
    { name: 'any-udp4', vip: v4(202), port: 0, protocol: 'udp', backends: [b(pool4[1]!), b(pool4[6]!), b(pool4[7]!, { weight: 0 })] },
    { name: 'any-tcp4', vip: v4(202), port: 0, protocol: 'tcp', scheduler: 'maglev-source', noBackend: 'pass', backends: [b(pool4[2]!), b(pool4[3]!)] },
    { name: 'https4', vip: v4(202), port: 443, backends: [b(pool4[8]!), b(pool4[9]!)] },
    { name: 'empty4', vip: v4(203), port: 8080, backends: [] },
    { name: 'web6', vip: v6(0x201), port: 80, backends: [b(pool6[0]!), b(pool6[1]!, { weight: 4 }), b(pool6[2]!)] },
    { name: 'dns6', vip: v6(0x201), port: 53, protocol: 'udp', backends: [b(pool6[1]!), b(pool6[3]!)] },
    { name: 'any-udp6', vip: v6(0x202), port: 0, protocol: 'udp', scheduler: 'maglev-source', backends: [b(pool6[4]!), b(pool6[5]!), b(pool6[6]!)] },
    { name: 'any-tcp6', vip: v6(0x202), port: 0, protocol: 'tcp', noBackend: 'pass', backends: [b(pool6[2]!, { state: 'draining' })] },
    {
      name: 'split4',
      vip: v4(204),
      port: 80,
      backends: otherNic ? [b(pool4[10]!, { interface: otherNic }), b(pool4[11]!), b(pool4[4]!, { interface: otherNic })] : [b(pool4[10]!), b(pool4[11]!)],
    },
  ];
}

/** What a client of the world knows: the services configured now or lately (frames go to both). */
export interface Knowledge {
  services: { family: 4 | 6; vip: Buffer; proto: number; port: number }[];
  vips: { family: 4 | 6; addr: Buffer }[];
  owned: { family: 4 | 6; addr: Buffer }[];
}

export class World {
  readonly dp: DataPlane;
  readonly r: Reconciler;
  private services: ServiceInput[];
  private hashSeed: number;
  private readonly macs = new Map<string, Buffer | null>();
  private readonly down = new Set<string>();
  private readonly otherNic: { name: string; ifindex: number; mac: Buffer } | null;
  /** Every service key configured at some point, for the generator. */
  private readonly seen = new Map<string, Knowledge['services'][number]>();
  private deadline: OwnerDeadline = 'forever';
  private owned: string[] = [];
  readonly log: string[] = [];

  private constructor(dp: DataPlane, otherNic: World['otherNic'], rng: Rng) {
    this.dp = dp;
    this.otherNic = otherNic;
    this.services = initialServices(otherNic?.name ?? null);
    this.hashSeed = rng.u32();
    for (const a of [...pool4, ...pool6]) this.macs.set(a, macFor(a, 0));
    const facts: Facts = {
      macOf: (a) => this.macs.get(a.text) ?? null,
      healthy: (s, a) => !this.down.has(backendKey(s.name, a.text)),
      health: (s, a) => (this.down.has(backendKey(s.name, a.text)) ? 'down' : 'up'),
    };
    this.r = new Reconciler(observe(dp), {
      writer: dp,
      observe: () => observe(dp),
      context: () => ({
        maglevSize: MAGLEV_SIZE,
        maxServices: CAPACITY.services,
        maxDests: CAPACITY.backends,
        directorMac: DIRECTOR_MAC,
        nic: (name) => (this.otherNic && name === this.otherNic.name ? this.otherNic : undefined),
        tableCache: new Map(),
      }),
      facts,
      log: quiet,
    });
  }

  /** A world on a freshly loaded data plane; `otherNic` names an interface of this namespace for XDP_REDIRECT (null: none). */
  static async create(rng: Rng, otherNic: string | null): Promise<World> {
    const dp = await DataPlane.load({ maglevSize: MAGLEV_SIZE, maxServices: CAPACITY.services, maxDests: CAPACITY.backends, maxFlows: CAPACITY.flows });
    let nic: World['otherNic'] = null;
    if (otherNic) {
      const info = native.interfaceInfo(otherNic);
      nic = { name: otherNic, ifindex: info.ifindex, mac: info.mac };
      dp.putTxPort(info.ifindex);
    }
    const w = new World(dp, nic, rng);
    w.owned = [v4(201), v4(202), v6(0x201), v6(0x202)];
    w.dp.setOwnedVips(w.owned.map((a) => mustParseIp(a)));
    w.dp.setOwnerDeadline('forever');
    w.reconcile('start');
    return w;
  }

  private reconcile(reason: string): void {
    const config = validateConfig({ maglevTableSize: MAGLEV_SIZE, hashSeed: this.hashSeed, capacity: CAPACITY, services: this.services });
    for (const s of config.services) {
      const vip = mustParseIp(s.vip);
      const entry = { family: vip.family, vip: vip.bytes, proto: IPPROTO[s.protocol], port: s.port };
      this.seen.set(serviceKey(vip.family, vip.bytes, entry.proto, s.port), entry);
    }
    this.r.setConfig(config);
    this.r.flush(reason);
  }

  /** One random change, through the Reconciler (or the owner gate's state); returns what it did. */
  step(rng: Rng): string {
    const what = this.change(rng);
    this.log.push(what);
    return what;
  }

  private change(rng: Rng): string {
    const s = rng.pick(this.services);
    const backends = (s.backends ?? []) as BackendInput[];
    const some = backends.length > 0 ? rng.pick(backends) : null;
    const kind = rng.weighted<string>([
      [3, 'drain'],
      [3, 'weight'],
      [3, 'health'],
      [2, 'mac'],
      [3, 'remove-backend'],
      [3, 'add-backend'],
      [1, 'remove-service'],
      [1, 'scheduler'],
      [1, 'policy'],
      [2, 'owner'],
      [2, 'ingress-mac'],
      [1, 'seed'],
    ]);
    const redo = (why: string) => {
      this.reconcile(why);
      return why;
    };
    switch (kind) {
      case 'drain':
        if (!some) return redo(`${s.name}: nothing to drain`);
        some.state = some.state === 'draining' ? 'active' : 'draining';
        return redo(`${s.name}: ${some.address} ${some.state}`);
      case 'weight':
        if (!some) return redo(`${s.name}: no weight to change`);
        some.weight = rng.int(6);
        return redo(`${s.name}: ${some.address} weight ${some.weight}`);
      case 'health': {
        if (!some) return redo(`${s.name}: no backend to check`);
        const key = backendKey(s.name, mustParseIp(some.address).text);
        if (this.down.has(key)) this.down.delete(key);
        else this.down.add(key);
        this.r.markDirty([s.name]);
        return redo(`${s.name}: ${some.address} ${this.down.has(key) ? 'down' : 'up'}`);
      }
      case 'mac': {
        if (!some) return redo(`${s.name}: no MAC to change`);
        const a = mustParseIp(some.address).text;
        const mac = this.macs.get(a);
        const next = mac === null ? macFor(a, rng.int(3)) : rng.chance(0.5) ? null : macFor(a, 1 + rng.int(3));
        this.macs.set(a, next);
        this.r.markDirty(this.services.filter((x) => x.backends?.some((y) => y.address === some.address)).map((x) => x.name));
        return redo(`${a} MAC ${next?.toString('hex') ?? 'unresolved'}`);
      }
      case 'remove-backend':
        if (!some) return redo(`${s.name}: no backend to remove`);
        s.backends = backends.filter((x) => x !== some);
        return redo(`${s.name}: ${some.address} removed`);
      case 'add-backend': {
        const family = mustParseIp(s.vip).family;
        const free = (family === 4 ? pool4 : pool6).filter((a) => !backends.some((x) => x.address === a));
        if (free.length === 0 || backends.length >= 6) return redo(`${s.name}: no backend to add`);
        const address = rng.pick(free);
        const added: BackendInput = { address, weight: 1 + rng.int(3) };
        if (this.otherNic && family === 4 && rng.chance(0.3)) added.interface = this.otherNic.name;
        s.backends = [...backends, added];
        return redo(`${s.name}: ${address} added${added.interface ? ` via ${added.interface}` : ''}`);
      }
      case 'remove-service': {
        const back = [...this.removed.values()];
        if (back.length > 0 && (rng.chance(0.5) || this.services.length <= 4)) {
          const again = rng.pick(back);
          this.removed.delete(again.name);
          this.services.push(again);
          return redo(`${again.name}: back`);
        }
        this.removed.set(s.name, s);
        this.services = this.services.filter((x) => x !== s);
        return redo(`${s.name}: removed`);
      }
      case 'scheduler':
        s.scheduler = s.scheduler === 'maglev-source' ? 'maglev' : 'maglev-source';
        return redo(`${s.name}: scheduler ${s.scheduler}`);
      case 'policy':
        s.noBackend = s.noBackend === 'pass' ? 'drop' : 'pass';
        return redo(`${s.name}: noBackend ${s.noBackend}`);
      case 'owner': {
        const now = process.hrtime.bigint();
        const hour = 3_600_000_000_000n;
        this.deadline = rng.pick<OwnerDeadline>(['forever', 0, now + hour, now > hour ? now - hour : 1n]);
        this.dp.setOwnerDeadline(this.deadline);
        const all = [v4(201), v4(202), v4(203), v4(204), v6(0x201), v6(0x202)];
        this.owned = all.filter(() => rng.chance(0.6));
        this.dp.setOwnedVips(this.owned.map((a) => mustParseIp(a)));
        return `owner deadline ${this.deadline === 'forever' || this.deadline === 0 ? this.deadline : this.deadline > now ? 'in an hour' : 'an hour ago'}, owned ${this.owned.join(' ') || 'none'}`;
      }
      case 'ingress-mac': {
        const mac = this.dp.ingressMac() ? null : DIRECTOR_MAC;
        this.dp.setIngressMac(mac);
        return `ingress MAC ${mac ? mac.toString('hex') : 'unset'}`;
      }
      case 'seed':
        this.hashSeed = rng.u32();
        return redo(`hashSeed ${this.hashSeed}`);
    }
    return redo('nothing');
  }

  /** Services taken out by remove-service, by name, to bring back. */
  private readonly removed = new Map<string, ServiceInput>();

  knowledge(): Knowledge {
    const vips = new Map<string, { family: 4 | 6; addr: Buffer }>();
    for (const s of this.seen.values()) vips.set(vipKey(s.family, s.vip), { family: s.family, addr: s.vip });
    return {
      services: [...this.seen.values()],
      vips: [...vips.values()],
      owned: [v4(201), v4(202), v4(203), v6(0x201), v6(0x202)].map((a) => {
        const ip = mustParseIp(a);
        return { family: ip.family, addr: ip.bytes };
      }),
    };
  }

  /** The maps as the program reads them. */
  view(now: bigint = process.hrtime.bigint()): View {
    const services = new Map<string, View['services'] extends Map<string, infer V> ? V : never>();
    const vips = new Set<string>();
    for (const { key, value } of this.dp.listServices()) {
      const table = this.dp.readTable(value.id);
      if (!table) throw new Error(`service ${value.id} has no table`);
      services.set(serviceKey(key.family, key.addr, key.proto, key.port), {
        id: value.id,
        sourceHash: (value.flags & CONSTANTS.SVC_F_SOURCE_HASH) !== 0,
        noBackendPass: (value.flags & CONSTANTS.SVC_F_NO_BACKEND_PASS) !== 0,
        seed: value.seed,
        dest: table.dest,
        prev: table.prev,
      });
      vips.add(vipKey(key.family, key.addr));
    }
    const raw = this.dp.maps.dests.lookupAll(CAPACITY.backends);
    const dests: (DestView | undefined)[] = [];
    for (let id = 0; id < CAPACITY.backends; id++) dests.push(decodeDest(raw.subarray(id * LAYOUT.dest.size, (id + 1) * LAYOUT.dest.size)));
    const owned = new Set(this.dp.ownedVips().map((v) => vipKey(v.family, v.bytes)));
    const claiming = this.dp.ownerStatus(now).claiming;
    return { services, vips, dests, owned, claiming, ingressIfindex: loopbackIfindex(), ownMac: this.dp.ingressMac(), maglevSize: MAGLEV_SIZE };
  }

  /** The flow table as the kernel holds it, by flowKeyHex(). */
  kernelFlows(): Map<string, { key: HashedFlow; dest: number; service: number }> {
    const out = new Map<string, { key: HashedFlow; dest: number; service: number }>();
    for (const k of allKeys(this.dp.maps.flows)) {
      const v = this.dp.maps.flows.lookup(k);
      if (!v) continue;
      const f = decodeFlowKey(k);
      out.set(k.toString('hex'), {
        key: { family: f.family, saddr: f.saddr, daddr: f.daddr, sport: f.sport, dport: f.dport, proto: f.proto },
        dest: v.readUInt32LE(LAYOUT.flow.offsets.dest),
        service: v.readUInt32LE(LAYOUT.flow.offsets.service),
      });
    }
    return out;
  }

  clearFlows(): void {
    for (const k of [...allKeys(this.dp.maps.flows)]) this.dp.maps.flows.delete(k);
  }
}

/** A backend's MAC: its address's last byte, in one of a few versions (a MAC change). */
function macFor(address: string, version: number): Buffer {
  const ip = mustParseIp(address);
  return Buffer.from([0x02, 0x00, 0x10 + version, ip.family, ip.bytes[ip.family === 4 ? 2 : 14]!, ip.bytes[ip.family === 4 ? 3 : 15]!]);
}

let lo: number | null = null;
/** The ingress of a test run: this namespace's loopback. */
function loopbackIfindex(): number {
  return (lo ??= native.interfaceInfo('lo').ifindex);
}

/** A flow table key as the kernel's map holds it (struct xdplb_flow_key), hex: to compare with the model's. */
export function flowKeyHex(f: HashedFlow): string {
  return encodeFlowKey(f).toString('hex');
}
