// The one schema of xdplb's configuration. Files (YAML or JSON), CLI flags and
// the Kubernetes mode all produce this model; its types are inferred from the
// schema, and a validated config is frozen.
import { z } from 'zod';
import { parseIp } from '../model/address.ts';
import { isPrime } from '../model/maglev.ts';

/** "2s", "500ms", "1m" or a number of seconds; the result is milliseconds. */
export const Duration = z
  .union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?(ms|s|m)$/, 'a duration such as "500ms", "2s" or "1m"')])
  .transform((v) => {
    if (typeof v === 'number') return v * 1000;
    const n = parseFloat(v);
    return v.endsWith('ms') ? n : v.endsWith('m') ? n * 60_000 : n * 1000;
  });

/** An IP address, turned into its canonical text (so "2001:DB8::0101" and "2001:db8::101" are one backend). */
const IpText = z.string().transform((s, ctx) => {
  const ip = parseIp(s);
  if (ip) return ip.text;
  ctx.addIssue({ code: 'custom', message: 'an IPv4 or IPv6 address' });
  return z.NEVER;
});
const Port = z.number().int().min(1).max(65535);
const InterfaceName = z.string().regex(/^[A-Za-z0-9._@-]{1,15}$/, 'an interface name (at most 15 characters)');

const Backend = z.strictObject({
  /** The backend node's address on the director's L2 segment (same family as the VIP). */
  address: IpText,
  /** Relative share of new flows. 0 drains the backend: it keeps its flows, gets no new ones. */
  weight: z.number().int().min(0).max(1_000_000).default(1),
  /** draining: keep established flows, take no new ones (as weight 0). */
  state: z.enum(['active', 'draining']).default('active'),
  /**
   * The director's NIC on this backend's segment, when it is not the one the
   * program runs on: packets leave through it with XDP_REDIRECT.
   */
  interface: InterfaceName.optional(),
});

export const HealthCheck = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    type: z.literal('tcp'),
    /** Port to connect to; default: the service's port. */
    port: Port.optional(),
    interval: Duration.default(2000),
    timeout: Duration.default(1000),
    /** Successes in a row that bring a backend (back) in. */
    rise: z.number().int().min(1).max(100).default(2),
    /** Failures in a row that take a backend out. */
    fall: z.number().int().min(1).max(100).default(3),
  }),
  z.strictObject({
    type: z.enum(['http', 'https']),
    port: Port.optional(),
    path: z.string().startsWith('/').default('/'),
    /** Host header; default: the backend address. */
    host: z.string().optional(),
    /** Expected status: a code (200) or a range ("200-399"). */
    expectStatus: z
      .union([z.number().int().min(100).max(599), z.string().regex(/^[1-5]\d\d-[1-5]\d\d$/, 'a status code or a range like "200-399"')])
      .default('200-399'),
    /** https only: check the backend's certificate (default: do not, most backends are self-signed). */
    verifyTls: z.boolean().default(false),
    interval: Duration.default(2000),
    timeout: Duration.default(1000),
    rise: z.number().int().min(1).max(100).default(2),
    fall: z.number().int().min(1).max(100).default(3),
  }),
]);

const Service = z.strictObject({
  /** Unique name, shown by status and in metrics. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,62}$/, 'a name of 1-63 letters, digits and ._:/-'),
  vip: IpText,
  /** Destination port; absent or 0: every port of this VIP and protocol. */
  port: z.number().int().min(0).max(65535).default(0),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  /** maglev: hash of the 5-tuple; maglev-source: of the client address (client-IP affinity). */
  scheduler: z.enum(['maglev', 'maglev-source']).default('maglev'),
  /** When no backend can take a packet: drop it (counted) or pass it to the director's kernel. */
  noBackend: z.enum(['drop', 'pass']).default('drop'),
  /** When every backend fails its health check: keep the last healthy set, or take them all out. */
  allDown: z.enum(['keep-last', 'remove']).default('keep-last'),
  backends: z.array(Backend).default([]),
  healthCheck: HealthCheck.default({ type: 'none' }),
});

export const ConfigSchema = z
  .strictObject({
    /** The NIC the director's XDP program attaches to. */
    interface: InterfaceName.optional(),
    /** native (driver) XDP, or generic (SKB) XDP where the driver has none. */
    mode: z.enum(['native', 'generic']).default('native'),
    /** Slots per Maglev table: a prime, at least 100 times the backends of the largest service for ±2% balance. */
    maglevTableSize: z.number().int().min(7).max(1_000_003).refine(isPrime, { message: 'a prime number' }).default(16381),
    /** Hash seed: directors that must agree (ECMP, failover) use the same one. */
    hashSeed: z.number().int().min(0).max(0xffffffff).default(0),
    capacity: z
      .strictObject({
        services: z.number().int().min(1).max(1_000_000).default(4096),
        /** Destinations: the sum over services of their backends. */
        backends: z.number().int().min(1).max(4_000_000).default(65536),
        flows: z.number().int().min(1024).max(64_000_000).default(262144),
      })
      .default({ services: 4096, backends: 65536, flows: 262144 }),
    /** Add each VIP to the interface and announce it (gratuitous ARP / unsolicited NA). */
    ownVips: z.boolean().default(true),
    /** host:port of /metrics, /healthz, /readyz. */
    metricsAddress: z.string().default('127.0.0.1:9842'),
    /** Per-backend series in /metrics; turn off for very large fleets (per-service series stay). */
    metricsPerBackend: z.boolean().default(true),
    /** host:port of the daemon's local API (used by status and backend commands). */
    apiAddress: z.string().default('127.0.0.1:9843'),
    services: z.array(Service).default([]),
  })
  .superRefine((c, ctx) => {
    const names = new Map<string, number>();
    const keys = new Map<string, number>();
    c.services.forEach((s, i) => {
      const where = ['services', i];
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: [...where, 'name'], message: `duplicate service name "${s.name}" (also services[${names.get(s.name)}])` });
      names.set(s.name, i);
      const vip = parseIp(s.vip);
      const key = `${s.protocol}/${vip?.text}:${s.port}`;
      if (keys.has(key)) ctx.addIssue({ code: 'custom', path: [...where, 'port'], message: `${key} is already served by services[${keys.get(key)}]` });
      keys.set(key, i);
      const seen = new Set<string>();
      s.backends.forEach((b, j) => {
        const ip = parseIp(b.address);
        if (vip && ip && ip.family !== vip.family)
          ctx.addIssue({ code: 'custom', path: [...where, 'backends', j, 'address'], message: `IPv${ip.family} backend for an IPv${vip.family} VIP` });
        if (ip && seen.has(ip.text)) ctx.addIssue({ code: 'custom', path: [...where, 'backends', j, 'address'], message: `duplicate backend ${ip.text}` });
        if (ip) seen.add(ip.text);
      });
      if (s.healthCheck.type !== 'none' && s.healthCheck.timeout > s.healthCheck.interval)
        ctx.addIssue({ code: 'custom', path: [...where, 'healthCheck', 'timeout'], message: 'timeout must not exceed interval' });
      if (s.healthCheck.type !== 'none' && !s.healthCheck.port && s.port === 0)
        ctx.addIssue({ code: 'custom', path: [...where, 'healthCheck', 'port'], message: 'a port-less service needs a health-check port' });
    });
    const dests = c.services.reduce((n, s) => n + s.backends.length, 0);
    if (c.services.length > c.capacity.services - 1)
      ctx.addIssue({ code: 'custom', path: ['services'], message: `${c.services.length} services exceed capacity.services - 1 (${c.capacity.services - 1})` });
    if (dests > c.capacity.backends - 1)
      ctx.addIssue({ code: 'custom', path: ['capacity', 'backends'], message: `${dests} backends in all exceed capacity.backends - 1 (${c.capacity.backends - 1})` });
  });

export type ConfigInput = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type ServiceConfig = Config['services'][number];
export type BackendConfig = ServiceConfig['backends'][number];
export type HealthCheckConfig = ServiceConfig['healthCheck'];
