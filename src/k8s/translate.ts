// The Kubernetes mode's translation: Services, EndpointSlices and Nodes (a
// snapshot of the informers' caches) and the mode's settings → the services
// xdplb balances, the Events an operator must see, and the LoadBalancer
// addresses to write to each Service's status. Pure and deterministic: the
// same snapshot, in any order, gives byte-identical output, so every director
// builds the same tables (ECMP, failover). Each rule is one small function;
// translate() composes them.
//
// Service names are "namespace/name:port/vip" (port: the port's name, else
// its number). The VIP is part of the name because one Service port is served
// on several addresses (its externalIPs, one LoadBalancer address per family)
// and the schema wants every name unique; "namespace/name:port" stays its
// prefix, so status and metrics still show the Kubernetes origin.
import type { V1EndpointSlice, V1Node, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { validateConfig } from '../config/load.ts';
import type { Config, ConfigInput, KubernetesConfig, ServiceConfig } from '../config/schema.ts';
import { XdplbError } from '../errors.ts';
import { parseIp, unusableAddress, type Family, type IpAddress } from '../model/address.ts';
import { serviceKeyText } from '../model/keys.ts';
import type { Protocol } from '../model/protocol.ts';
import type { BackendState } from '../model/service.ts';
import { addressNumber, compareAddresses, firstFree, parseCidr, rangeOf, type Cidr } from '../model/cidr.ts';
import { parseLabelSelector, type LabelSelector } from '../model/selector.ts';

// ---------------------------------------------------------------- settings

/**
 * The `kubernetes:` keys of SPEC §7 that the translation reads, as the config
 * schema gives them (validated, defaults filled in, durations in ms).
 */
export type KubernetesSettings = Omit<KubernetesConfig, 'kubeconfig'>;
export type NodeHealthCheck = KubernetesSettings['nodeHealthCheck'];

/** The settings of a `kubernetes: {}` section: every key at its default. */
export const DEFAULT_SETTINGS: KubernetesSettings = validateConfig({ kubernetes: {} }, {}, 'the default kubernetes settings').kubernetes!;

/** The settings parsed once per translation. */
interface Compiled {
  readonly externalIPs: readonly Cidr[];
  readonly pools: readonly Cidr[];
  readonly selector: LabelSelector;
  readonly settings: KubernetesSettings;
}

/** Parses the settings' CIDRs and selector; throws CONFIG_INVALID naming every bad one. */
export function compileSettings(settings: KubernetesSettings): Compiled {
  const problems: string[] = [];
  const cidrs = (key: string, list: readonly string[]) =>
    list.flatMap((text, i) => {
      const c = parseCidr(text);
      if (typeof c === 'string') problems.push(`kubernetes.${key}[${i}]: ${c}`);
      return typeof c === 'string' ? [] : [c];
    });
  const externalIPs = cidrs('externalIPs', settings.externalIPs);
  const pools = cidrs('pools', settings.pools);
  const selector = parseLabelSelector(settings.nodeSelector);
  if (typeof selector === 'string') problems.push(`kubernetes.${selector}`);
  if (problems.length > 0 || typeof selector === 'string') throw new XdplbError('CONFIG_INVALID', `kubernetes settings are invalid:\n  ${problems.join('\n  ')}`, problems);
  return { externalIPs, pools, selector, settings };
}

// ---------------------------------------------------------------- output

/** An Event (events.k8s.io/v1) to record on a Service. */
export interface KubeEvent {
  /** "namespace/name" */
  readonly service: string;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** A service as the config schema takes it (validateServices turns it into a ServiceConfig). */
export type ServiceInput = NonNullable<ConfigInput['services']>[number];

export interface Snapshot {
  readonly services: readonly V1Service[];
  readonly endpointSlices: readonly V1EndpointSlice[];
  readonly nodes: readonly V1Node[];
}

export interface Translation {
  /** Sorted by name. */
  readonly services: readonly ServiceInput[];
  /** Sorted by Service, reason, message. */
  readonly events: readonly KubeEvent[];
  /** LoadBalancer addresses per "namespace/name" (in ipFamilies order), for status.loadBalancer.ingress; keys sorted. */
  readonly allocations: ReadonlyMap<string, readonly string[]>;
}

/**
 * The translated services through the one schema (with the data plane's
 * capacity): what the Kubernetes source hands to combineServices. Throws
 * CONFIG_INVALID, as for a config file, if a rule here let an invalid one
 * through (a bug: translate() emits only services the schema accepts).
 */
export function validateServices(services: readonly ServiceInput[], capacity?: Config['capacity']): readonly ServiceConfig[] {
  return validateConfig({ ...(capacity ? { capacity } : {}), services }, {}, 'the Kubernetes services').services;
}

// ---------------------------------------------------------------- small rules

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';
/** The cluster autoscaler's taint on a node it is about to remove (KEP-3836: kube-proxy's /healthz then fails). */
const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';
export const LOAD_BALANCER_IPS_ANNOTATION = 'xdplb.io/load-balancer-ips';
export const ALLOW_SHARED_IP_ANNOTATION = 'xdplb.io/allow-shared-ip';

const FAMILY_NAME: Readonly<Record<Family, string>> = { 4: 'IPv4', 6: 'IPv6' };

/** The "namespace/name" of the Service a translated service comes from ("shop/web:http/203.0.113.1" → "shop/web"). */
export function originOf(serviceName: string): string {
  return serviceName.slice(0, serviceName.indexOf(':')); // namespaces and names are DNS labels: no ':'
}

/** "namespace/name" of an object. */
export function objectKey(o: { metadata?: { namespace?: string; name?: string } }): string {
  return `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
}

/** Milliseconds since the epoch of a creationTimestamp (a Date from the client, a string from raw JSON); absent: newest. */
function createdMs(s: V1Service): number {
  const t = s.metadata?.creationTimestamp as Date | string | undefined;
  const ms = t === undefined ? NaN : new Date(t).getTime();
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/** Oldest first (creationTimestamp), then by "namespace/name": who keeps a contested address or port. */
export function compareAge(a: V1Service, b: V1Service): number {
  return createdMs(a) - createdMs(b) || (objectKey(a) < objectKey(b) ? -1 : objectKey(a) > objectKey(b) ? 1 : 0);
}

/** A host address of a VIP or backend (parses, and names one host), or null. */
function hostAddress(text: string | undefined): IpAddress | null {
  const ip = text === undefined ? null : parseIp(text.trim());
  return ip && unusableAddress(ip) === null ? ip : null;
}

function warning(service: string, reason: string, message: string): KubeEvent {
  return { service, type: 'Warning', reason, message };
}

/** One served port of a Service. */
export interface PortSpec {
  /** The port's name, else its number. */
  readonly label: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** The Service's TCP and UDP ports (absent protocol: TCP); any other (SCTP) → a Warning, and the port is skipped. */
export function servicePorts(s: V1Service): { ports: PortSpec[]; events: KubeEvent[] } {
  const ports: PortSpec[] = [];
  const events: KubeEvent[] = [];
  for (const p of s.spec?.ports ?? []) {
    const protocol = (p.protocol ?? 'TCP').toLowerCase();
    const label = portLabel(p);
    if (protocol === 'tcp' || protocol === 'udp') ports.push({ label, port: p.port, protocol });
    else events.push(warning(objectKey(s), 'UnsupportedProtocol', `port ${label} (${p.protocol}/${p.port}) is not served: xdplb balances TCP and UDP only`));
  }
  return { ports, events };
}

function portLabel(p: V1ServicePort): string {
  return p.name ? p.name : String(p.port);
}

/** The Service's families from spec.ipFamilies, in its order (absent: IPv4, the API server's single-stack default). */
export function serviceFamilies(s: V1Service): Family[] {
  const families = (s.spec?.ipFamilies ?? []).flatMap((f): Family[] => (f === 'IPv4' ? [4] : f === 'IPv6' ? [6] : []));
  return families.length > 0 ? [...new Set(families)] : [4];
}

/**
 * The Service's spec.externalIPs that may be served: each inside one of the
 * settings' ranges. Any other → a Warning (ExternalIPNotAllowed: anyone who
 * may create a Service could otherwise capture another's traffic,
 * CVE-2020-8554) and it is ignored; with no ranges, none are served.
 */
export function allowedExternalIps(s: V1Service, ranges: readonly Cidr[]): { vips: IpAddress[]; events: KubeEvent[] } {
  const vips: IpAddress[] = [];
  const events: KubeEvent[] = [];
  const externalIPs = new Set(s.spec?.externalIPs ?? []);
  if (externalIPs.size > 0 && isHeadless(s))
    return { vips, events: [warning(objectKey(s), 'ExternalIPNotServed', `externalIPs ${[...externalIPs].join(', ')} are not served: kube-proxy does not proxy a headless Service (clusterIP: None), so no node would answer`)] };
  const families = serviceFamilies(s);
  for (const text of externalIPs) {
    const ip = hostAddress(text);
    if (!ip) events.push(warning(objectKey(s), 'InvalidExternalIP', `externalIP ${JSON.stringify(text)} is not served: it is not the address of one host`));
    else if (!families.includes(ip.family))
      events.push(
        warning(
          objectKey(s),
          'ExternalIPNotServed',
          `externalIP ${ip.text} is not served: it is ${FAMILY_NAME[ip.family]}, not one of the Service's ipFamilies (${families.map((f) => FAMILY_NAME[f]).join(', ')}), and kube-proxy handles only those`,
        ),
      );
    else if (!rangeOf(ranges, ip))
      events.push(
        warning(
          objectKey(s),
          'ExternalIPNotAllowed',
          `externalIP ${ip.text} is not served: it is outside the allowed ranges (${ranges.map((r) => r.text).join(', ') || 'none'}; CVE-2020-8554)`,
        ),
      );
    else if (!vips.some((v) => v.text === ip.text)) vips.push(ip); // "2001:db8::1" and "2001:DB8::1" are one
  }
  return { vips, events };
}

/** A headless Service (clusterIP None): kube-proxy does not proxy it. */
function isHeadless(s: V1Service): boolean {
  return s.spec?.clusterIP === 'None';
}

/** Whether a Service is a LoadBalancer of ours: type LoadBalancer, and our class (or none, with defaultClass). */
export function isOurLoadBalancer(s: V1Service, settings: KubernetesSettings): boolean {
  if (s.spec?.type !== 'LoadBalancer') return false;
  const cls = s.spec.loadBalancerClass;
  return cls === undefined || cls === '' ? settings.defaultClass : cls === settings.loadBalancerClass;
}

/** Where a LoadBalancer address was asked for, for messages. */
function requestSource(s: V1Service): string {
  return s.spec?.loadBalancerIP ? 'spec.loadBalancerIP' : `annotation ${LOAD_BALANCER_IPS_ANNOTATION}`;
}

/**
 * The addresses a LoadBalancer Service asks for: spec.loadBalancerIP, else the
 * annotation (comma-separated, at most one per family); null when it asks for
 * none (allocate from the pools). Each must be a host address of one of the
 * Service's families, inside a pool; otherwise the error is a Warning, and the
 * Service's load balancer is not served. Asked-for addresses are the whole
 * answer: a family of ipFamilies they do not cover gets no address (no
 * half-asked, half-allocated Service).
 */
export function requestedAddresses(s: V1Service, pools: readonly Cidr[]): IpAddress[] | null | { error: KubeEvent } {
  const raw = s.spec?.loadBalancerIP || s.metadata?.annotations?.[LOAD_BALANCER_IPS_ANNOTATION] || '';
  if (raw.trim() === '') return null;
  const families = serviceFamilies(s);
  const fail = (reason: string, message: string) => ({ error: warning(objectKey(s), reason, `${requestSource(s)}: ${message}; the load balancer is not served`) });
  const ips: IpAddress[] = [];
  for (const text of raw.split(',').map((t) => t.trim())) {
    const ip = hostAddress(text);
    if (!ip) return fail('InvalidLoadBalancerIP', `${JSON.stringify(text)} is not the address of one host`);
    if (!families.includes(ip.family)) return fail('InvalidLoadBalancerIP', `${ip.text} is ${FAMILY_NAME[ip.family]}, not one of the Service's ipFamilies (${families.map((f) => FAMILY_NAME[f]).join(', ')})`);
    if (ips.some((o) => o.family === ip.family)) return fail('InvalidLoadBalancerIP', `more than one ${FAMILY_NAME[ip.family]} address`);
    if (!rangeOf(pools, ip)) return fail('LoadBalancerIPNotInPool', `${ip.text} is outside the pools (${pools.map((p) => p.text).join(', ') || 'none'})`);
    ips.push(ip);
  }
  return ips;
}

/** The addresses the Service held, per status.loadBalancer.ingress (read back after a restart) and the previous translation. */
function heldAddresses(s: V1Service, previous: ReadonlyMap<string, readonly string[]> | undefined): IpAddress[] {
  const texts = [...(s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip), ...(previous?.get(objectKey(s)) ?? [])];
  return texts.flatMap((t) => hostAddress(t) ?? []);
}

// ---------------------------------------------------------------- allocation

/** What one LoadBalancer Service wants of the pools. */
interface LbRequest {
  readonly service: V1Service;
  readonly key: string;
  readonly families: readonly Family[];
  readonly requested: readonly IpAddress[] | null;
  readonly held: readonly IpAddress[];
  /** The allow-shared-ip annotation's value, when set. */
  readonly shareKey: string | undefined;
  /** "tcp/80" of each served port: two sharers' sets must be disjoint. */
  readonly ports: ReadonlySet<string>;
}

/**
 * Whether req may hold an address beside its holders: each carries the same
 * allow-shared-ip value and no port (protocol and number) of theirs is one of
 * req's. Otherwise the holder (older) keeps it.
 */
export function canShare(holders: readonly Pick<LbRequest, 'shareKey' | 'ports'>[], req: Pick<LbRequest, 'shareKey' | 'ports'>): boolean {
  return holders.every((h) => req.shareKey !== undefined && h.shareKey === req.shareKey && ![...h.ports].some((p) => req.ports.has(p)));
}

/**
 * Who holds each address as the allocation proceeds, kept so that each step
 * costs what it touches: the taken addresses (held, or served as externalIPs),
 * the addresses of each share key, and per pool the point below which every
 * address is taken (reset when one is given back).
 */
class AddressBook {
  private readonly holders = new Map<string, LbRequest[]>();
  private readonly taken: Set<string>;
  private readonly byShareKey = new Map<string, Map<string, IpAddress>>();
  private readonly cursors = new Map<Cidr, bigint>();
  private readonly pools: readonly Cidr[];

  constructor(pools: readonly Cidr[], reserved: ReadonlySet<string>) {
    this.pools = pools;
    this.taken = new Set(reserved);
  }

  /** Whether req may hold ip now (canShare with its holders). */
  mayHold(ip: IpAddress, req: LbRequest): boolean {
    return canShare(this.holders.get(ip.text) ?? [], req);
  }

  /** Who holds ip, for messages ("shop/web"). */
  holderNames(ip: IpAddress): string {
    return (this.holders.get(ip.text) ?? []).map((h) => h.key).join(', ');
  }

  hold(ip: IpAddress, req: LbRequest): void {
    this.holders.set(ip.text, [...(this.holders.get(ip.text) ?? []), req]);
    this.taken.add(ip.text);
    if (req.shareKey !== undefined) {
      const ips = this.byShareKey.get(req.shareKey) ?? new Map<string, IpAddress>();
      this.byShareKey.set(req.shareKey, ips.set(ip.text, ip));
    }
  }

  release(ips: Iterable<IpAddress>, req: LbRequest): void {
    for (const ip of ips) {
      const rest = (this.holders.get(ip.text) ?? []).filter((h) => h !== req);
      if (rest.length > 0) this.holders.set(ip.text, rest);
      else {
        this.holders.delete(ip.text);
        this.taken.delete(ip.text);
        this.cursors.clear();
      }
      if (req.shareKey !== undefined && !rest.some((h) => h.shareKey === req.shareKey)) this.byShareKey.get(req.shareKey)?.delete(ip.text);
    }
  }

  /**
   * A new address of the family for req: with a share key, the lowest address
   * its fellow sharers hold that it may join; else the lowest free one of the
   * first pool (in settings order) that has one. Addresses served as
   * externalIPs are never handed out.
   */
  allocate(family: Family, req: LbRequest): { ip: IpAddress; pool: Cidr } | null {
    if (req.shareKey !== undefined) {
      const shared = [...(this.byShareKey.get(req.shareKey)?.values() ?? [])]
        .filter((ip) => ip.family === family && rangeOf(this.pools, ip) && this.mayHold(ip, req))
        .sort(compareAddresses)[0];
      if (shared) return { ip: shared, pool: rangeOf(this.pools, shared)! };
    }
    for (const pool of this.pools.filter((p) => p.family === family)) {
      const ip = firstFree(pool, this.taken, this.cursors.get(pool));
      if (ip) {
        this.cursors.set(pool, addressNumber(ip) + 1n); // firstFree found every address before it taken
        return { ip, pool };
      }
    }
    return null;
  }
}

/**
 * The addresses of every LoadBalancer Service of ours, conflict-free and
 * stable. Oldest Service first (compareAge). First the addresses already
 * decided: those asked for, and those held (status, previous translation)
 * that are still valid (right family, inside a pool, none asked for). Two
 * Services wanting one address: the older keeps it unless both may share
 * (canShare); the newer gets a Warning (AddressConflict) and, for an address
 * it asked for, is not served; for one it only held, it gets a new one. Then
 * the pools give each family still without an address one (allocate); none
 * left → a Warning (PoolExhausted) and the Service's load balancer is not
 * served (no family of it: its addresses go back). Every address a Service
 * did not hold before → a Normal IPAllocated.
 */
export function allocateAddresses(
  requests: readonly LbRequest[],
  pools: readonly Cidr[],
  reserved: ReadonlySet<string>,
): { allocations: Map<string, IpAddress[]>; events: KubeEvent[] } {
  const book = new AddressBook(pools, reserved);
  const events: KubeEvent[] = [];
  const got = new Map<LbRequest, IpAddress[]>();
  const failed = new Set<LbRequest>();
  for (const req of requests) {
    if (req.requested) {
      const busy = req.requested.find((ip) => !book.mayHold(ip, req));
      if (busy) {
        events.push(warning(req.key, 'AddressConflict', `${requestSource(req.service)}: ${busy.text} is held by the older Service ${book.holderNames(busy)}; the load balancer is not served`));
        failed.add(req);
        continue;
      }
      req.requested.forEach((ip) => book.hold(ip, req));
      got.set(req, [...req.requested]);
      continue;
    }
    const kept: IpAddress[] = [];
    for (const family of req.families) {
      const ip = req.held.find((h) => h.family === family && rangeOf(pools, h));
      if (!ip) continue;
      if (book.mayHold(ip, req)) {
        book.hold(ip, req);
        kept.push(ip);
      } else events.push(warning(req.key, 'AddressConflict', `${ip.text} is held by the older Service ${book.holderNames(ip)}; a new address is allocated`));
    }
    got.set(req, kept);
  }
  for (const req of requests) {
    const ips = got.get(req);
    if (!ips || req.requested || failed.has(req)) continue;
    for (const family of req.families.filter((f) => !ips.some((ip) => ip.family === f))) {
      const a = book.allocate(family, req);
      if (!a) {
        events.push(warning(req.key, 'PoolExhausted', `no pool has a free ${FAMILY_NAME[family]} address (pools: ${pools.map((p) => p.text).join(', ') || 'none'}); the load balancer is not served`));
        book.release(ips, req);
        failed.add(req);
        break;
      }
      book.hold(a.ip, req);
      ips.push(a.ip);
    }
  }
  const allocations = new Map<string, IpAddress[]>();
  for (const req of requests) {
    const ips = got.get(req);
    if (!ips || failed.has(req)) continue;
    const ordered = req.families.flatMap((f) => ips.filter((ip) => ip.family === f));
    allocations.set(req.key, ordered);
    for (const ip of ordered)
      if (!req.held.some((h) => h.text === ip.text)) events.push({ service: req.key, type: 'Normal', reason: 'IPAllocated', message: `assigned ${ip.text}${req.requested ? ` (${requestSource(req.service)})` : ` from pool ${rangeOf(pools, ip)?.text}`}` });
  }
  return { allocations, events };
}

function lbRequest(s: V1Service, requested: IpAddress[] | null, ports: readonly PortSpec[], previous: ReadonlyMap<string, readonly string[]> | undefined): LbRequest {
  const shareKey = s.metadata?.annotations?.[ALLOW_SHARED_IP_ANNOTATION];
  return {
    service: s,
    key: objectKey(s),
    families: serviceFamilies(s),
    requested,
    held: heldAddresses(s, previous),
    shareKey: shareKey === undefined || shareKey === '' ? undefined : shareKey,
    ports: new Set(ports.map((p) => `${p.protocol}/${p.port}`)),
  };
}

// ---------------------------------------------------------------- backends

/** A node that may be a backend. */
export interface EligibleNode {
  readonly name: string;
  readonly addresses: ReadonlyMap<Family, IpAddress>;
  /** Being deleted (deletionTimestamp, or the autoscaler's ToBeDeleted taint): it keeps its flows, takes no new ones. */
  readonly departing: boolean;
}

/**
 * The nodes that may be backends, sorted by name: Ready (condition Ready is
 * True), not labelled node.kubernetes.io/exclude-from-external-load-balancers,
 * selected by nodeSelector; each with its first InternalIP of each family. A
 * NotReady node is left out (the source drains it: src/k8s/departures.ts).
 */
export function eligibleNodes(nodes: readonly V1Node[], selector: LabelSelector): EligibleNode[] {
  return nodes
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .filter((n) => !Object.hasOwn(n.metadata?.labels ?? {}, EXCLUDE_LABEL) && selector.matches(n.metadata?.labels))
    .map((n) => {
      const addresses = new Map<Family, IpAddress>();
      for (const a of n.status?.addresses ?? []) {
        const ip = a.type === 'InternalIP' ? hostAddress(a.address) : null;
        if (ip && !addresses.has(ip.family)) addresses.set(ip.family, ip);
      }
      const departing = n.metadata?.deletionTimestamp !== undefined || (n.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
      return { name: n.metadata?.name ?? '', addresses, departing };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The EndpointSlices of each Service ("namespace/name", by their kubernetes.io/service-name label). */
export function slicesByService(slices: readonly V1EndpointSlice[]): Map<string, V1EndpointSlice[]> {
  const by = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const name = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (name === undefined) continue;
    const key = `${slice.metadata?.namespace ?? 'default'}/${name}`;
    by.set(key, [...(by.get(key) ?? []), slice]);
  }
  return by;
}

/**
 * Per node, what a Service's local endpoints (its EndpointSlices) ask of it:
 * active when one endpoint there is ready (conditions.ready absent counts as
 * ready, unless terminating); draining when its only serving ones are
 * terminating; nodes with neither are absent.
 */
export function localEndpointStates(slices: readonly V1EndpointSlice[]): Map<string, BackendState> {
  const states = new Map<string, BackendState>();
  for (const slice of slices)
    for (const e of slice.endpoints ?? []) {
      if (!e.nodeName) continue;
      const terminating = e.conditions?.terminating === true;
      const ready = e.conditions?.ready ?? !terminating;
      const serving = e.conditions?.serving ?? ready;
      if (ready && !terminating) states.set(e.nodeName, 'active');
      else if (serving && terminating && !states.has(e.nodeName)) states.set(e.nodeName, 'draining');
    }
  return states;
}

/** The Service's external traffic policy: Local, or Cluster (the default). */
function isLocal(s: V1Service): boolean {
  return s.spec?.externalTrafficPolicy === 'Local';
}

/** One eligible node's address of one family. */
export interface NodeAddress {
  readonly node: string;
  readonly ip: IpAddress;
  readonly departing: boolean;
}

/** The eligible nodes' addresses of each family, sorted by address: computed once, every Service's backends are a filter of it. */
export function addressesByFamily(nodes: readonly EligibleNode[]): Map<Family, NodeAddress[]> {
  const by = new Map<Family, NodeAddress[]>();
  for (const n of nodes)
    for (const [family, ip] of n.addresses) by.set(family, [...(by.get(family) ?? []), { node: n.name, ip, departing: n.departing }]);
  for (const list of by.values()) list.sort((a, b) => compareAddresses(a.ip, b.ip));
  return by;
}

/**
 * The backends of a Service for VIPs of one family, from the nodes' addresses
 * of that family: with Cluster (local null) every one, with Local only those
 * of nodes its local endpoints name, in their state. A departing node drains.
 */
export function nodeBackends(addresses: readonly NodeAddress[], local: ReadonlyMap<string, BackendState> | null): { address: string; state: BackendState }[] {
  return addresses.flatMap((a) => {
    const wanted = local ? local.get(a.node) : 'active';
    return wanted === undefined ? [] : [{ address: a.ip.text, state: a.departing ? ('draining' as const) : wanted }];
  });
}

/**
 * The health check of a Service's nodes. Cluster: kube-proxy's /healthz
 * (settings.nodeHealthCheck, port 10256 by default: KEP-3836), which fails on
 * a node whose proxy is down or that is being removed. Local: the Service's
 * healthCheckNodePort /healthz, which kube-proxy answers 200 only while the
 * node has local endpoints. A Local Service without one (not a LoadBalancer:
 * externalIPs only) falls back to kube-proxy's /healthz; its local endpoints
 * still choose the nodes.
 */
export function nodeHealthCheck(s: V1Service, check: NodeHealthCheck): ServiceInput['healthCheck'] {
  const [interval, timeout] = [`${check.interval}ms`, `${check.timeout}ms`]; // a number would be read as seconds
  const { rise, fall } = check;
  const hcPort = s.spec?.healthCheckNodePort;
  if (isLocal(s) && hcPort !== undefined && hcPort > 0) return { type: 'http', port: hcPort, path: '/healthz', interval, timeout, rise, fall };
  return { type: 'http', port: check.port, path: check.path, interval, timeout, rise, fall };
}

// ---------------------------------------------------------------- composition

/**
 * Drops every service whose (protocol, VIP, port) an older one already has:
 * the schema refuses a duplicate key, and one Service must not take the
 * whole Kubernetes source down with it. The newer gets a Warning
 * (PortConflict). The input is in age order.
 */
export function uniqueKeys(candidates: readonly { owner: string; service: ServiceInput; key: string }[]): { services: ServiceInput[]; events: KubeEvent[] } {
  const seen = new Map<string, string>();
  const services: ServiceInput[] = [];
  const events: KubeEvent[] = [];
  for (const c of candidates) {
    const other = seen.get(c.key);
    if (other !== undefined && other !== c.owner) events.push(warning(c.owner, 'PortConflict', `${c.key} is not served: the older Service ${other} has it`));
    else if (other === undefined) {
      seen.set(c.key, c.owner);
      services.push(c.service);
    }
  }
  return { services, events };
}

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The service set of a snapshot. previous: the allocations of the last
 * translation, kept like those read from status (a status write may not have
 * landed yet).
 *
 * A Service with no eligible node for a family is still served, with no
 * backends, and gets a Warning (NoEligibleNode): the VIP stays owned and
 * announced, so its traffic is dropped and counted on the director
 * (noBackend: drop) rather than routed elsewhere or answered by nobody, and
 * it flows again the moment a node qualifies, with nothing to re-announce.
 * This is what MetalLB and Cilium do: the address follows the Service, not
 * its endpoints.
 */
export function translate(snapshot: Snapshot, settings: KubernetesSettings, previous?: ReadonlyMap<string, readonly string[]>): Translation {
  const c = compileSettings(settings);
  const nodes = addressesByFamily(eligibleNodes(snapshot.nodes, c.selector));
  const slices = slicesByService(snapshot.endpointSlices);
  const services = snapshot.services.filter((s) => s.spec?.type !== 'ExternalName' && s.metadata?.deletionTimestamp === undefined).sort(compareAge);
  const events: KubeEvent[] = [];

  const plans = services.map((s) => {
    const ports = servicePorts(s);
    const external = allowedExternalIps(s, c.externalIPs);
    events.push(...ports.events, ...external.events);
    return { s, ports: ports.ports, external: external.vips };
  });

  const reserved = new Set(plans.flatMap((p) => p.external.map((ip) => ip.text)));
  const requests: LbRequest[] = [];
  for (const p of plans) {
    if (!isOurLoadBalancer(p.s, settings) || p.ports.length === 0) continue; // no port served: no address (its ports' Warnings say why)
    const requested = requestedAddresses(p.s, c.pools);
    if (requested !== null && !Array.isArray(requested)) events.push(requested.error);
    else requests.push(lbRequest(p.s, requested, p.ports, previous));
  }
  const allocated = allocateAddresses(requests, c.pools, reserved);
  events.push(...allocated.events);

  const candidates: { owner: string; service: ServiceInput; key: string }[] = [];
  /** Every Cluster Service of a family has the same backends: one array, shared (outputs are read-only). */
  const clusterBackends = new Map<Family, ReturnType<typeof nodeBackends>>();
  for (const { s, ports, external } of plans) {
    const owner = objectKey(s);
    const vips = [...external, ...(allocated.allocations.get(owner) ?? []).filter((ip) => !external.some((e) => e.text === ip.text))];
    if (vips.length === 0 || ports.length === 0) continue;
    const local = isLocal(s) ? localEndpointStates(slices.get(owner) ?? []) : null;
    const healthCheck = nodeHealthCheck(s, c.settings.nodeHealthCheck);
    const scheduler = s.spec?.sessionAffinity === 'ClientIP' ? 'maglev-source' : 'maglev';
    const backendsOf = new Map<Family, ReturnType<typeof nodeBackends>>();
    for (const vip of vips) {
      let backends = backendsOf.get(vip.family);
      if (!backends) {
        backends = local ? nodeBackends(nodes.get(vip.family) ?? [], local) : clusterBackends.get(vip.family);
        if (!backends) clusterBackends.set(vip.family, (backends = nodeBackends(nodes.get(vip.family) ?? [], null)));
        backendsOf.set(vip.family, backends);
        if (backends.length === 0)
          events.push(warning(owner, 'NoEligibleNode', `no eligible ${FAMILY_NAME[vip.family]} node${local ? ' with a ready local endpoint (externalTrafficPolicy: Local)' : ''}: served with no backends, its packets are dropped`));
      }
      for (const port of ports)
        candidates.push({
          owner,
          key: serviceKeyText(port.protocol, vip, port.port),
          service: { name: `${owner}:${port.label}/${vip.text}`, vip: vip.text, port: port.port, protocol: port.protocol, scheduler, backends, healthCheck }, // one backends array per family, shared: outputs are read-only
        });
    }
  }
  const unique = uniqueKeys(candidates);
  events.push(...unique.events);

  return {
    services: unique.services.sort((a, b) => byText(a.name, b.name)),
    events: events.sort((a, b) => byText(a.service, b.service) || byText(a.reason, b.reason) || byText(a.message, b.message)),
    allocations: new Map(
      [...allocated.allocations]
        .sort(([a], [b]) => byText(a, b))
        .map(([k, ips]) => [k, ips.map((ip) => ip.text)]),
    ),
  };
}
