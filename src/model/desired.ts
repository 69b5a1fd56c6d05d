// desired(): what the data plane should hold, from the services configured
// and what the daemon knows of the world (backend MACs, health). Pure: a
// function of its arguments, which it reads and never changes (the facts
// are read-only views: the health checker keeps its own memory).
import { createHash } from 'node:crypto';
import { mustParseIp, type IpAddress } from './address.ts';
import type { Health } from './health.ts';
import { serviceKeyText, type ServiceKey } from './keys.ts';
import { IPPROTO } from './protocol.ts';
import type { BackendSpec, NoBackendPolicy, Scheduler, ServiceSet, ServiceSpec } from './service.ts';

/** Why a configured backend takes no new flows, or none at all. */
export type BackendCondition = 'ok' | 'draining' | 'unresolved' | 'unhealthy';

/**
 * What the data plane does with a backend: active takes new flows; draining
 * keeps its flows only; down takes nothing (its flows are rescheduled) but
 * keeps its destination slot, and so its counters.
 */
export type BackendDataState = 'active' | 'draining' | 'down';

export interface DesiredBackend {
  address: IpAddress;
  /** The director's NIC that reaches it, when not the one the program runs on. */
  via: string | null;
  weight: number;
  mac: Buffer | null;
  /** The health checks' verdict ('none': no check). */
  health: Health;
  state: BackendDataState;
  condition: BackendCondition;
}

export interface DesiredService {
  keyText: string;
  key: ServiceKey;
  /** The whole name (the data plane records a bounded form of a long one). */
  name: string;
  scheduler: Scheduler;
  noBackend: NoBackendPolicy;
  seed: number;
  backends: DesiredBackend[];
}

export interface Desired {
  services: Map<string, DesiredService>;
}

export interface Facts {
  /** The MAC of a backend on the segment of NIC `via` (null: the program's own); null while unresolved. */
  macOf(address: IpAddress, via: string | null): Buffer | null;
  /**
   * Whether a backend may take traffic according to its health checks (and
   * the service's all-down policy); true where there is no check.
   */
  healthy(service: ServiceSpec, address: IpAddress): boolean;
  /** The health checks' own verdict, for the records ('none' without a check). */
  health(service: ServiceSpec, address: IpAddress): Health;
  /** An operator's runtime override (`xdplb backend ...`), on top of the config. */
  override?(service: ServiceSpec, address: IpAddress): BackendOverride | null;
}

export type BackendOverride = 'drain' | 'remove';

const seeds = new Map<string, number>();

/** A bounded memo: reloads of large configs parse and hash the same strings again. */
function memo<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size >= 1_000_000) cache.clear();
    v = make();
    cache.set(key, v);
  }
  return v;
}

/** The per-service hash seed: the same on every director with the same hashSeed. */
export function serviceSeed(hashSeed: number, keyText: string): number {
  return memo(seeds, `${hashSeed}/${keyText}`, () => createHash('sha256').update(`${hashSeed}/${keyText}`).digest().readUInt32LE(0));
}

const address = mustParseIp; // memoized there

function backendOf(s: ServiceSpec, b: BackendSpec, facts: Facts): DesiredBackend {
  const ip = address(b.address);
  const via = b.interface ?? null;
  const mac = facts.macOf(ip, via);
  const base = { address: ip, via, weight: b.weight, mac, health: facts.health(s, ip) };
  if (!mac) return { ...base, state: 'down', condition: 'unresolved' };
  if (!facts.healthy(s, ip)) return { ...base, state: 'down', condition: 'unhealthy' };
  if (b.state === 'draining' || b.weight === 0 || facts.override?.(s, ip) === 'drain') return { ...base, state: 'draining', condition: 'draining' };
  return { ...base, state: 'active', condition: 'ok' };
}

/** One service of desired(): what changes with a health verdict, a MAC or an override of its backends. */
export function desiredService(config: ServiceSet, s: ServiceSpec, facts: Facts): DesiredService {
  const vip = address(s.vip);
  const keyText = serviceKeyText(s.protocol, vip, s.port);
  return {
    keyText,
    key: { addr: vip.bytes, family: vip.family, proto: IPPROTO[s.protocol], port: s.port },
    name: s.name,
    scheduler: s.scheduler,
    noBackend: s.noBackend,
    seed: serviceSeed(config.hashSeed, keyText),
    backends: s.backends.filter((b) => facts.override?.(s, address(b.address)) !== 'remove').map((b) => backendOf(s, b, facts)),
  };
}

export function desired(config: ServiceSet, facts: Facts): Desired {
  const services = new Map<string, DesiredService>();
  for (const s of config.services) {
    const ws = desiredService(config, s, facts);
    services.set(ws.keyText, ws);
  }
  return { services };
}
