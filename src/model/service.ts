// A service as xdplb balances it, whatever it came from (the config file,
// Kubernetes): what desired() reads. The config schema (src/config/schema.ts)
// builds its fields from these lists, and a validated service is one. Pure.
import type { Protocol } from './protocol.ts';

/** maglev: hash of the 5-tuple; maglev-source: of the client address (client-IP affinity). */
export const SCHEDULERS = ['maglev', 'maglev-source'] as const;
export type Scheduler = (typeof SCHEDULERS)[number];

/** When no backend can take a packet: drop it (counted), or pass it to the director's kernel. */
export const NO_BACKEND_POLICIES = ['drop', 'pass'] as const;
export type NoBackendPolicy = (typeof NO_BACKEND_POLICIES)[number];

/** What the operator asked of a backend: take new flows, or keep its flows only. */
export const BACKEND_STATES = ['active', 'draining'] as const;
export type BackendState = (typeof BACKEND_STATES)[number];

export interface BackendSpec {
  /** Canonical address text. */
  readonly address: string;
  readonly weight: number;
  readonly state: BackendState;
  /** The director's NIC it is reached through, when not the one the program runs on. */
  readonly interface?: string | undefined;
}

export interface ServiceSpec {
  /** Unique; 1 to MAX_SERVICE_NAME characters (a Kubernetes one is "namespace/name:port"). */
  readonly name: string;
  /** Canonical address text. */
  readonly vip: string;
  /** 0: every port of the VIP and protocol. */
  readonly port: number;
  readonly protocol: Protocol;
  readonly scheduler: Scheduler;
  readonly noBackend: NoBackendPolicy;
  readonly backends: readonly BackendSpec[];
}

/** What every service's desired state depends on, besides the service itself. */
export interface ServiceSet {
  /** Directors that must agree (ECMP, failover) use the same one. */
  readonly hashSeed: number;
  readonly services: readonly ServiceSpec[];
}

/**
 * The longest service name: a Kubernetes Service's "namespace/name" (a DNS
 * subdomain, up to 253 characters), ":" and a port's name (up to 63). The
 * data plane records at most 63 bytes of it (see pinnedServiceName in
 * src/dataplane/abi.ts); the daemon keeps the whole name.
 */
export const MAX_SERVICE_NAME = 253 + 1 + 63;
