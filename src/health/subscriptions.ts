// Which probes a configuration asks for: one per backend address and
// effective check, shared by every service that checks that address in
// exactly that way. In Kubernetes mode a thousand Services have the same
// node backends and the same check (kube-proxy's /healthz), and one probe of
// each node tells them all. Pure.
import type { ServiceConfig } from '../config/schema.ts';

/** What a probe does every `interval` and how its results make a verdict: all of it, nothing else. */
export type EffectiveCheck =
  | { type: 'tcp'; port: number; interval: number; timeout: number; rise: number; fall: number }
  | {
      type: 'http' | 'https';
      port: number;
      path: string;
      host: string | null;
      expectStatus: number | string;
      verifyTls: boolean;
      interval: number;
      timeout: number;
      rise: number;
      fall: number;
    };

/**
 * A service's check with its port resolved (the check's, else the
 * service's); null without a check. Its fields are written in a fixed order,
 * so that two equal checks have the same probeKey however their config was
 * built.
 */
export function effectiveCheck(s: ServiceConfig): EffectiveCheck | null {
  const hc = s.healthCheck;
  if (hc.type === 'none') return null;
  const port = hc.port ?? s.port;
  const timing = { interval: hc.interval, timeout: hc.timeout, rise: hc.rise, fall: hc.fall };
  if (hc.type === 'tcp') return { type: hc.type, port, ...timing };
  return { type: hc.type, port, path: hc.path, host: hc.host ?? null, expectStatus: hc.expectStatus, verifyTls: hc.verifyTls, ...timing };
}

/** What identifies a probe: the address and the whole effective check (as JSON: written once per service, not per backend). */
function probeKey(address: string, checkJson: string): string {
  return `${address} ${checkJson}`;
}

/** One probe a service asks for: of one of its backends, with its check. */
export interface ServiceProbe {
  readonly key: string;
  readonly address: string;
  readonly check: EffectiveCheck;
}

/** The probes one service asks for, one per backend (none without a check). O(its backends). */
export function serviceProbes(s: ServiceConfig): ServiceProbe[] {
  const check = effectiveCheck(s);
  if (!check) return [];
  const checkJson = JSON.stringify(check);
  return s.backends.map(({ address }) => ({ key: probeKey(address, checkJson), address, check }));
}

export interface WantedProbe {
  address: string;
  check: EffectiveCheck;
  /** Names of the services whose verdicts it gives. */
  services: ReadonlySet<string>;
}

/** The probes the services ask for, by probeKey. O(backends). */
export function wantedProbes(services: readonly ServiceConfig[]): ReadonlyMap<string, WantedProbe> {
  const probes = new Map<string, { address: string; check: EffectiveCheck; services: Set<string> }>();
  for (const s of services)
    for (const { key, address, check } of serviceProbes(s)) {
      let probe = probes.get(key);
      if (!probe) probes.set(key, (probe = { address, check, services: new Set() }));
      probe.services.add(s.name);
    }
  return probes;
}
