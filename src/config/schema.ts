// The one schema of xdplb's configuration. Files (YAML or JSON), CLI flags and
// the Kubernetes mode all produce this model; its types are inferred from the
// schema, and a validated config is frozen. It refuses what the daemon cannot
// use: a config that validates never fails later for a value in it.
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { interfaceNameProblem } from '../model/names.ts';
import { ipSyntaxError, parseIp, unusableAddress } from '../model/address.ts';
import { serviceKeyText } from '../model/keys.ts';
import { isPrime } from '../model/maglev.ts';
import { PROTOCOLS } from '../model/protocol.ts';
import { BACKEND_STATES, MAX_SERVICE_NAME, NO_BACKEND_POLICIES, SCHEDULERS, type ServiceSet } from '../model/service.ts';
import { parseApiAddress, parseHostPort, type ListenAddress } from './address.ts';
import { ROLES } from '../model/role.ts';
import { parseCidr } from '../model/cidr.ts';
import { isLabelKey, parseLabelSelector } from '../model/selector.ts';

/** Node's timers count milliseconds in a signed 32-bit integer: a longer delay (over 24.8 days) fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** "500ms", "2s", "1m", "1h" or a number of seconds → whole milliseconds (rounded); null when it is none of these. */
function parseDuration(v: number | string): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.round(v * 1000) : null;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  return m ? Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]) : null;
}

/** Milliseconds in the largest unit that divides them: 100 → "100ms", 3600000 → "1h". */
function formatDuration(ms: number): string {
  const unit = (['h', 'm', 's'] as const).find((u) => ms % UNIT_MS[u] === 0);
  return unit ? `${ms / UNIT_MS[unit]}${unit}` : `${ms}ms`;
}

/**
 * A duration from minMs to maxMs, in milliseconds. Whatever the field, a
 * duration is at least 1 ms and at most MAX_TIMER_MS: zero, negatives and
 * anything Node's timers cannot wait for are refused.
 */
export function duration(minMs: number, maxMs: number) {
  const lo = Math.max(minMs, 1);
  const hi = Math.min(maxMs, MAX_TIMER_MS);
  const expected = `a duration from ${formatDuration(lo)} to ${formatDuration(hi)}, such as "500ms", "2s" or "1m"`;
  return z.union([z.number(), z.string()], { error: expected }).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms !== null && ms >= lo && ms <= hi) return ms;
    ctx.addIssue({ code: 'custom', message: `${expected} (got ${JSON.stringify(v)})` });
    return z.NEVER;
  });
}

/** Any duration a timer can wait for: 1 ms to MAX_TIMER_MS. */
export const Duration = duration(1, MAX_TIMER_MS);

const HOUR_MS = UNIT_MS.h;

/**
 * The address of one host a flow is sent to (a VIP, a backend), turned into
 * its canonical text (so "2001:DB8::0101" and "2001:db8::101" are one
 * backend). Refused: what is no address, zones, and addresses that name no
 * single host (see unusableAddress).
 */
const HostIp = z.string().transform((s, ctx) => {
  const ip = parseIp(s);
  const problem = ip ? unusableAddress(ip) : ipSyntaxError(s);
  if (ip && problem === null) return ip.text;
  ctx.addIssue({ code: 'custom', message: problem ?? '' });
  return z.NEVER;
});
/**
 * A whole number from min to max. Not zod's .int(): its issue is an explicit
 * abort, which stops every refinement of the whole config and would hide the
 * cross-field errors (crossFieldChecks) behind one fractional port.
 */
function integer(min: number, max: number) {
  return z.number().min(min).max(max).refine(Number.isInteger, 'a whole number');
}

const Port = integer(1, 65535);
const InterfaceName = z.string().superRefine((name, ctx) => {
  const problem = interfaceNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A string its parser accepts (the string is kept; the daemon parses it again with the same function). */
function parsedBy(parse: (text: string) => ListenAddress | string) {
  return z.string().superRefine((s, ctx) => {
    const r = parse(s);
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
  });
}

/**
 * The path (and query) of a health check's GET: an origin-form request target
 * (RFC 9112 §3.2.1): "/", then letters, digits and -._~!$&'()*+,;=:@/ (and
 * ? in the query), anything else %-encoded (a space is %20).
 */
const PCHAR = "[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}";
const REQUEST_TARGET = new RegExp(`^/(?:${PCHAR}|/)*(?:\\?(?:${PCHAR}|[/?])*)?$`);
const RequestPath = z
  .string()
  .max(2048, 'a request path of at most 2048 characters')
  .regex(REQUEST_TARGET, 'a request path starting with "/", of letters, digits and -._~!$&\'()*+,;=:@/? (anything else %-encoded, e.g. %20 for a space)');

/** A DNS name: labels of letters, digits, "-" and "_" (1-63 characters, no "-" at either end), at most 253 in all. */
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;

/** Whether text is a Host header's value: a DNS name, an IPv4 address or [IPv6], then an optional :port (RFC 9110 §7.2). */
function isHostHeader(text: string): boolean {
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(text);
  const host = m?.[1] ?? '';
  const port = m?.[2];
  const hostOk = host.startsWith('[') ? !host.includes('%') && isIPv6(host.slice(1, -1)) : DNS_NAME.test(host);
  return hostOk && (port === undefined || (Number(port) >= 1 && Number(port) <= 65535));
}

const STATUS_RANGE = /^[1-5]\d\d-[1-5]\d\d$/;

/** An expected status, a code or "LOW-HIGH" (both included), as [low, high]. */
export function statusRange(expect: number | string): readonly [number, number] {
  if (typeof expect === 'number') return [expect, expect];
  const [lo = NaN, hi = NaN] = expect.split('-').map(Number);
  return [lo, hi];
}

const Backend = z.strictObject({
  /** The backend node's address on the director's L2 segment (same family as the VIP). */
  address: HostIp,
  /** Relative share of new flows. 0 drains the backend: it keeps its flows, gets no new ones. */
  weight: integer(0, 1_000_000).default(1),
  /** draining: keep established flows, take no new ones (as weight 0). */
  state: z.enum(BACKEND_STATES).default('active'),
  /**
   * The director's NIC on this backend's segment, when it is not the one the
   * program runs on: packets leave through it with XDP_REDIRECT.
   */
  interface: InterfaceName.optional(),
});

/** What every kind of check shares: how often, how patiently, and how many results in a row change a verdict. */
const CheckTiming = {
  /**
   * Time from one probe of a backend to the next, 100ms to 1h. Not under
   * 100 ms: a backend leaves after `fall` intervals, and a shorter one buys
   * little while the probes (a connection, for https a TLS handshake, to
   * every backend) become load of their own on the director and the
   * backends; not over 1h: a rarer check leaves a dead backend in for hours.
   */
  interval: duration(100, HOUR_MS).default(2000),
  /**
   * How long a probe waits for the connection (tcp) or the answer (http),
   * 10ms to the interval (one probe at a time per backend). Not under 10 ms:
   * even on the director's own segment a connection or a TLS handshake on a
   * busy host can take that long, and a healthy backend would fail.
   */
  timeout: duration(10, HOUR_MS).default(1000),
  /** Successes in a row that bring a backend (back) in. */
  rise: integer(1, 100).default(2),
  /** Failures in a row that take a backend out. */
  fall: integer(1, 100).default(3),
};

export const HealthCheck = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    type: z.literal('tcp'),
    /** Port to connect to; default: the service's port. */
    port: Port.optional(),
    ...CheckTiming,
  }),
  z.strictObject({
    type: z.enum(['http', 'https']),
    port: Port.optional(),
    path: RequestPath.default('/'),
    /** Host header: a DNS name or an address, with an optional :port; default: the backend address. */
    host: z
      .string()
      .refine(isHostHeader, 'a Host header: a host name, an IPv4 address or [IPv6], and an optional :port (e.g. app.example:8080)')
      .optional(),
    /** Expected status: a code (200) or a range ("200-399"), its low end first. */
    expectStatus: z
      .union([
        integer(100, 599),
        z
          .string()
          .regex(STATUS_RANGE, 'a status code or a range like "200-399"')
          .refine((r) => !STATUS_RANGE.test(r) || statusRange(r)[0] <= statusRange(r)[1], 'a range of status codes, its low end first (like "200-399")'),
      ])
      .default('200-399'),
    /** https only: check the backend's certificate (default: do not, most backends are self-signed). */
    verifyTls: z.boolean().default(false),
    ...CheckTiming,
  }),
]);

const SERVICE_NAME = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,${MAX_SERVICE_NAME - 1}}$`);

const Service = z.strictObject({
  /**
   * Unique name, shown by status and in metrics: up to 317 characters (a
   * Kubernetes "namespace/name:port"). The data plane records 63 bytes of a
   * longer one: its beginning and a hash (xdplb status from the pins shows
   * that; the daemon, the whole name).
   */
  name: z.string().regex(SERVICE_NAME, `a name of 1-${MAX_SERVICE_NAME} letters, digits and ._:/-, starting with a letter or digit`),
  vip: HostIp,
  /** Destination port; absent or 0: every port of this VIP and protocol. */
  port: integer(0, 65535).default(0),
  protocol: z.enum(PROTOCOLS).default('tcp'),
  /** maglev: hash of the 5-tuple; maglev-source: of the client address (client-IP affinity). */
  scheduler: z.enum(SCHEDULERS).default('maglev'),
  /** When no backend can take a packet: drop it (counted) or pass it to the director's kernel. */
  noBackend: z.enum(NO_BACKEND_POLICIES).default('drop'),
  /** When every backend fails its health check: keep the last healthy set, or take them all out. */
  allDown: z.enum(['keep-last', 'remove']).default('keep-last'),
  backends: z.array(Backend).default([]),
  healthCheck: HealthCheck.default({ type: 'none' }),
});

type Path = readonly PropertyKey[];

/**
 * Which fields of a partly invalid value may be read. shaped: no issue at the
 * field or at one of its containers (an unknown key beside it does not
 * count), so it has its type and can be walked; valid: shaped, and no issue
 * inside it either. With no issues, everything is both.
 */
function readableFields(issues: readonly z.core.$ZodRawIssue[]): { shaped(path: Path): boolean; valid(path: Path): boolean } {
  if (issues.length === 0) return { shaped: () => true, valid: () => true };
  const at = new Set<string>();
  const inside = new Set<string>();
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') continue;
    const p = (issue.path ?? []).map(String);
    at.add(p.join('.'));
    for (let i = 0; i < p.length; i++) inside.add(p.slice(0, i).join('.'));
  }
  const key = (path: Path) => path.map(String).join('.');
  const shaped = (path: Path) => {
    for (let i = 0; i <= path.length; i++) if (at.has(key(path.slice(0, i)))) return false;
    return true;
  };
  return { shaped, valid: (path) => shaped(path) && !inside.has(key(path)) };
}

/**
 * The checks that span fields: duplicates, address families, health-check
 * timing, capacity. They run even when other fields are invalid (so that one
 * run reports every problem), and each reads only fields that are themselves
 * valid: an invalid one has its own error.
 */
function crossFieldChecks(c: z.output<typeof ConfigObject>, ctx: z.RefinementCtx<z.output<typeof ConfigObject>>): void {
  const { shaped, valid } = readableFields(ctx.issues);
  if (shaped([]) && valid(['apiAddress']) && c.apiAddress !== undefined && !c.apiAddress.startsWith('/') && c.apiTokenFile === undefined)
    ctx.addIssue({ code: 'custom', path: ['apiTokenFile'], message: `the local API over TCP (apiAddress ${c.apiAddress}) needs a token file: a TCP port, even on 127.0.0.1, is open to every local user` });
  if (!shaped([]) || !shaped(['services'])) return;
  const names = new Map<string, number>();
  const keys = new Map<string, number>();
  let dests = 0;
  c.services.forEach((s, i) => {
    const at = (...p: PropertyKey[]): PropertyKey[] => ['services', i, ...p];
    if (!shaped(at())) return;
    if (valid(at('name'))) {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: at('name'), message: `duplicate service name "${s.name}" (also services[${names.get(s.name)}])` });
      names.set(s.name, i);
    }
    const vip = valid(at('vip')) ? parseIp(s.vip) : null;
    if (vip && valid(at('port')) && valid(at('protocol'))) {
      const key = serviceKeyText(s.protocol, vip, s.port);
      if (keys.has(key)) ctx.addIssue({ code: 'custom', path: at('port'), message: `${key} is already served by services[${keys.get(key)}]` });
      keys.set(key, i);
    }
    if (shaped(at('backends'))) {
      dests += s.backends.length;
      const seen = new Set<string>();
      s.backends.forEach((b, j) => {
        const ip = valid(at('backends', j, 'address')) ? parseIp(b.address) : null;
        if (!ip) return;
        if (vip && ip.family !== vip.family) ctx.addIssue({ code: 'custom', path: at('backends', j, 'address'), message: `IPv${ip.family} backend for an IPv${vip.family} VIP` });
        if (seen.has(ip.text)) ctx.addIssue({ code: 'custom', path: at('backends', j, 'address'), message: `duplicate backend ${ip.text}` });
        seen.add(ip.text);
      });
    }
    const hc = s.healthCheck;
    // an unknown type is reported at healthCheck.type, and then nothing else in it was read
    if (!shaped(at('healthCheck')) || !valid(at('healthCheck', 'type')) || hc.type === 'none') return;
    if (valid(at('healthCheck', 'timeout')) && valid(at('healthCheck', 'interval')) && hc.timeout > hc.interval)
      ctx.addIssue({ code: 'custom', path: at('healthCheck', 'timeout'), message: `timeout (${formatDuration(hc.timeout)}) must not exceed interval (${formatDuration(hc.interval)})` });
    if (valid(at('healthCheck', 'port')) && valid(at('port')) && !hc.port && s.port === 0)
      ctx.addIssue({ code: 'custom', path: at('healthCheck', 'port'), message: 'a port-less service needs a health-check port' });
  });
  if (valid(['vipClaimLease']) && c.vipClaimLease !== undefined && shaped(['kubernetes']) && c.kubernetes?.leaderElection)
    ctx.addIssue({ code: 'custom', path: ['vipClaimLease'], message: 'not with kubernetes.leaderElection, whose Lease bounds the claim on the VIPs (renewDeadline)' });
  if (valid(['capacity', 'services']) && c.services.length > c.capacity.services - 1)
    ctx.addIssue({ code: 'custom', path: ['services'], message: `${c.services.length} services exceed capacity.services - 1 (${c.capacity.services - 1})` });
  if (valid(['capacity', 'backends']) && dests > c.capacity.backends - 1)
    ctx.addIssue({ code: 'custom', path: ['capacity', 'backends'], message: `${dests} backends in all exceed capacity.backends - 1 (${c.capacity.backends - 1})` });
}

/** A CIDR ("198.51.100.0/24", "2001:db8::/64"; a bare address is its /32 or /128), kept as written. */
const Cidr = z.string().superRefine((text, ctx) => {
  const c = parseCidr(text);
  if (typeof c === 'string') ctx.addIssue({ code: 'custom', message: c });
});

/** A DNS-1123 label (a namespace) or subdomain (a Lease's name). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const LEADER_ELECTION_DEFAULTS = { name: 'xdplb-director', leaseDuration: 1000, renewDeadline: 700, retryPeriod: 200 } as const;

const LeaderElection = z
  .strictObject({
    /** The Lease's namespace; absent: the ServiceAccount's in a pod, else the kubeconfig context's, else default. */
    namespace: z.string().regex(DNS_LABEL, 'a namespace: lower-case letters, digits and -, at most 63').optional(),
    name: z.string().regex(DNS_SUBDOMAIN, "a Lease's name: lower-case letters, digits, - and .").default(LEADER_ELECTION_DEFAULTS.name),
    /** This director in the Lease; absent: $NODE_NAME, else the host name. Unique among the candidates. */
    identity: z.string().min(1).max(253).optional(),
    /** How long an unchanged Lease stays its holder's: whole seconds (the Lease's leaseDurationSeconds). */
    leaseDuration: duration(1000, HOUR_MS)
      .refine((ms) => !Number.isFinite(ms) || ms % 1000 === 0, 'whole seconds (a Lease holds leaseDurationSeconds), such as "1s" or "2s"')
      .default(LEADER_ELECTION_DEFAULTS.leaseDuration),
    /** The leader lets go of the VIPs this long after sending its last successful renewal. */
    renewDeadline: duration(50, HOUR_MS).default(LEADER_ELECTION_DEFAULTS.renewDeadline),
    /** How often the leader renews and the others read the Lease. */
    retryPeriod: duration(10, HOUR_MS).default(LEADER_ELECTION_DEFAULTS.retryPeriod),
  })
  .superRefine((l, ctx) => {
    if (l.renewDeadline >= l.leaseDuration)
      ctx.addIssue({ code: 'custom', path: ['renewDeadline'], message: `renewDeadline (${formatDuration(l.renewDeadline)}) must be shorter than leaseDuration (${formatDuration(l.leaseDuration)}): the leader lets go before anyone may take over` });
    if (l.retryPeriod >= l.renewDeadline)
      ctx.addIssue({ code: 'custom', path: ['retryPeriod'], message: `retryPeriod (${formatDuration(l.retryPeriod)}) must be shorter than renewDeadline (${formatDuration(l.renewDeadline)}): the leader renews more than once before it lets go` });
  });

/** The Kubernetes mode (SPEC §7): where the cluster is, and which of its Services this director serves. */
const Kubernetes = z.strictObject({
  /** The kubeconfig file; absent: the in-cluster ServiceAccount, then $KUBECONFIG. */
  kubeconfig: z.string().min(1).optional(),
  /** spec.externalIPs are served only inside these ranges (CVE-2020-8554); empty: none are. */
  externalIPs: z.array(Cidr).default([]),
  /** type LoadBalancer Services of this spec.loadBalancerClass are ours. */
  loadBalancerClass: z
    .string()
    .refine(isLabelKey, 'a load balancer class: a label-style name with a domain prefix, such as xdplb.io/dr')
    .default('xdplb.io/dr'),
  /** Also serve type LoadBalancer Services that name no class. */
  defaultClass: z.boolean().default(false),
  /** The ranges LoadBalancer addresses are allocated from, tried in this order. */
  pools: z.array(Cidr).default([]),
  /** Label selector ("key", "!key", "key=value", "key!=value", comma-separated) of the nodes that may be backends; "": all. */
  nodeSelector: z
    .string()
    .superRefine((text, ctx) => {
      const s = parseLabelSelector(text);
      if (typeof s === 'string') ctx.addIssue({ code: 'custom', message: s.replace(/^nodeSelector: /, '') });
    })
    .default(''),
  /**
   * How long a node that leaves a Service's backends (NotReady, excluded, no
   * local endpoint left) keeps the flows it has, taking no new ones.
   */
  drainTimeout: duration(1, HOUR_MS).default(60_000),
  /**
   * How nodes are checked: kube-proxy's /healthz on 10256 (KEP-3836) for
   * externalTrafficPolicy Cluster, and the timing of the healthCheckNodePort
   * checks of Local Services.
   */
  nodeHealthCheck: z
    .strictObject({ port: Port.default(10256), path: RequestPath.default('/healthz'), ...CheckTiming, fall: integer(1, 100).default(2) })
    .refine((c) => c.timeout <= c.interval, { message: 'timeout must not exceed interval', path: ['timeout'] })
    .default({ port: 10256, path: '/healthz', interval: 2000, timeout: 1000, rise: 2, fall: 2 }),
  /**
   * One active director among those with this section: the holder of a
   * coordination.k8s.io Lease (src/k8s/lease.ts says why these timings never
   * give two owners). Absent: the role is the config's and `xdplb role`'s.
   */
  leaderElection: LeaderElection.optional(),
});

const ConfigObject = z.strictObject({
  /** The NIC the director's XDP program attaches to. */
  interface: InterfaceName.optional(),
  /** native (driver) XDP, or generic (SKB) XDP where the driver has none. */
  mode: z.enum(['native', 'generic']).default('native'),
  /** Slots per Maglev table: a prime, at least 100 times the backends of the largest service for ±2% balance. */
  maglevTableSize: integer(7, 1_000_003).refine((n) => !Number.isInteger(n) || isPrime(n), 'a prime number').default(16381),
  /** Hash seed: directors that must agree (ECMP, failover) use the same one. */
  hashSeed: integer(0, 0xffffffff).default(0),
  capacity: z
    .strictObject({
      services: integer(1, 1_000_000).default(4096),
      /** Destinations: the sum over services of their backends. */
      backends: integer(1, 4_000_000).default(65536),
      flows: integer(1024, 64_000_000).default(262144),
    })
    .default({ services: 4096, backends: 65536, flows: 262144 }),
  /**
   * How long a flow may stay silent and still keep its backend after its
   * slot's owner changed: a slot's previous owner lapses this long after the
   * change unless a live flow on it still needs it (15 min: IPVS's TCP
   * timeout). Behind ECMP, shorter: until it lapses, a flow that began on
   * another director after the change and moves here goes to the old owner.
   */
  flowIdleTimeout: duration(1000, HOUR_MS).default(900_000),
  /** Add each VIP to the interface and announce it (gratuitous ARP / unsolicited NA). */
  ownVips: z.boolean().default(true),
  /**
   * The role the daemon starts in: active owns and announces the VIPs;
   * standby keeps its maps filled and owns nothing (keepalived or the
   * Kubernetes Lease then set it: `xdplb role active|standby`).
   */
  role: z.enum(ROLES).default('active'),
  /**
   * For directors made redundant outside Kubernetes (keepalived): how long the
   * data plane goes on letting the kernel answer ARP/NDP for the VIPs after
   * the daemon last renewed its claim (every third of it, while active). A
   * daemon that died (SIGKILL, a crash) with the machine alive stops claiming
   * them by itself this long after, so the standby that keepalived makes
   * active is the only owner. Absent: never lapses (a single director, whose
   * program keeps forwarding while it restarts). Under leaderElection the
   * Lease bounds the claim instead.
   */
  vipClaimLease: duration(100, HOUR_MS).optional(),
  /**
   * Scale-out behind ECMP: the kernel routing table (a number of its own, not
   * 253-255) where the director keeps a route per VIP it can serve, for a
   * routing daemon (BIRD, FRR) to announce (src/net/routes.ts). Absent: none.
   */
  routeTable: integer(1, 0xffffffff)
    .refine((n) => !Number.isInteger(n) || n < 253 || n > 255, 'a table of its own: not 253 (default), 254 (main) or 255 (local)')
    .optional(),
  /** HOST:PORT of /metrics, /healthz, /readyz: host an IPv4 address, [IPv6] or localhost (parseHostPort). */
  metricsAddress: parsedBy(parseHostPort).default('127.0.0.1:9842'),
  /** Per-backend series in /metrics; turn off for very large fleets (per-service series stay). */
  metricsPerBackend: z.boolean().default(true),
  /**
   * The daemon's local API (used by status and backend commands): an absolute
   * Unix socket path, or HOST:PORT (parseApiAddress). Absent: a socket the
   * daemon names after its pin directory.
   */
  apiAddress: parsedBy(parseApiAddress).optional(),
  /**
   * The file holding the token every request to the local API over TCP must
   * carry (Authorization: Bearer TOKEN; 32 to 4096 visible ASCII characters,
   * e.g. `openssl rand -hex 32`), root's and mode 0600. Required when
   * apiAddress is HOST:PORT; the Unix socket needs none (its mode is the
   * boundary). Read when the daemon starts (src/director/api-token.ts).
   */
  apiTokenFile: z.string().min(1).refine((p) => p.startsWith('/'), 'an absolute path').optional(),
  /** Services from a Kubernetes API server (SPEC §7), beside the static ones. */
  kubernetes: Kubernetes.optional(),
  services: z.array(Service).default([]),
});

// when: the cross-field checks run whatever other issues there are (by default zod skips a
// refinement after a wrong type or an unknown key), but for an explicit abort, which integer() avoids
export const ConfigSchema = ConfigObject.superRefine(crossFieldChecks, { when: () => true });

export type ConfigInput = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type ServiceConfig = Config['services'][number];
// a validated config is a set of services as desired() reads them (src/model/service.ts)
true satisfies Config extends ServiceSet ? true : false;
export type BackendConfig = ServiceConfig['backends'][number];
export type HealthCheckConfig = ServiceConfig['healthCheck'];
export type KubernetesConfig = NonNullable<Config['kubernetes']>;
