// `xdplb import keepalived`: the virtual_server blocks of a keepalived.conf
// (keepalived 2.2's keywords: keepalived/check/check_parser.c and the
// checkers' own) as an xdplb config, their health checks mapped:
//   TCP_CHECK → tcp; HTTP_GET → http; SSL_GET → https (path, status_code,
//   virtualhost of the first url); delay_loop → interval; connect_timeout →
//   timeout; retry (nb_get_retry) → fall = retry + 1, rise 1 (keepalived
//   takes a server out after a failure and `retry` failed retries, and puts
//   it back after one success); connect_port → port.
// Each setting is inherited as keepalived does: checker, then real_server,
// then virtual_server, then keepalived's default. What xdplb cannot do is
// said in a comment, and the worst of it also on stderr: MISC_CHECK scripts,
// sorry_server, quorum, NAT and TUN servers (xdplb forwards by Direct
// Routing), firewall marks. vrrp_instance blocks are not imported: they are
// pointed at xdplb's own keepalived setup (README "Redundancy"). Pure.
import { HealthCheck } from '../config/schema.ts';
import { parseIp, type IpAddress } from '../model/address.ts';
import { addressNumber, numberAddress } from '../model/cidr.ts';
import type { Protocol } from '../model/protocol.ts';
import { count, finishImport, note, warning, type Entry, type HealthCheckInput, type ImportedBackend, type ImportedConfig, type Note, type Setting, type Warning } from './document.ts';
import { capacitySettings, importedServiceName, natAsDrWarning } from './ipvsadm.ts';
import { parseKeepalivedSyntax, type Statement, type SyntaxOptions } from './keepalived-syntax.ts';
import { IPVS_SCHEDULERS, mapScheduler, persistenceNote } from './schedulers.ts';

export interface KeepalivedImportOptions extends SyntaxOptions {
  /**
   * Import lb_kind NAT servers as Direct Routing backends, where their port
   * is the virtual server's (DR cannot change ports): a migration from
   * LVS-NAT, whose backends must then be set up for DR (xdplb realserver).
   */
  readonly natAsDr?: boolean;
}

/** keepalived's defaults (check_data.c alloc_vs, check_api.c, check_http.c). */
const DEFAULT_DELAY_LOOP = 60_000;
const DEFAULT_CONNECT_TIMEOUT = 5_000;
const HTTP_DEFAULT_STATUS: readonly [number, number] = [200, 299];

const CHECKERS = ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'SMTP_CHECK', 'MISC_CHECK', 'UDP_CHECK', 'PING_CHECK', 'DNS_CHECK', 'FILE_CHECK', 'BFD_CHECK'] as const;

/** Why a checker has no xdplb equivalent. */
const UNMAPPED_CHECKERS: Readonly<Record<string, string>> = {
  MISC_CHECK: 'runs a script, which xdplb does not: its result decided whether the server was up',
  UDP_CHECK: 'sends a UDP datagram; xdplb checks with TCP connects and HTTP(S) GETs only',
  PING_CHECK: 'sends ICMP echo requests; xdplb checks with TCP connects and HTTP(S) GETs only',
  DNS_CHECK: 'sends a DNS query; xdplb checks with TCP connects and HTTP(S) GETs only',
  FILE_CHECK: 'reads a file that something else writes; xdplb checks the backend itself',
  BFD_CHECK: 'follows a BFD session; xdplb checks with TCP connects and HTTP(S) GETs only',
};

/** keepalived's <TIMER>: seconds, fractions allowed (microsecond resolution), as milliseconds; null: not a timer. */
function timer(text: string | undefined): number | null {
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return null;
  return Math.round(Number(text) * 1000);
}

/** Milliseconds as a config duration, in the largest unit that divides them: "6s", "500ms", "1m", "2h". */
function duration(ms: number): string {
  const unit = ([['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const).find(([, n]) => ms > 0 && ms % n === 0);
  return unit ? `${ms / unit[1]}${unit[0]}` : `${ms}ms`;
}

function wholeNumber(text: string | undefined, max: number): number | null {
  return text !== undefined && /^\d+$/.test(text) && Number(text) <= max ? Number(text) : null;
}

const kw = (s: Statement): string => s.words[0] ?? '';
/** A note about a statement, with its place. */
const placed = (s: Statement, n: Note): Note => ({ ...n, text: `${s.origin}: ${n.text}` });
const said = (s: Statement): string => s.words.join(' ');

/** Timing settings that checkers inherit from their real server, and real servers from their virtual server. */
interface Timing {
  delayLoop?: number;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  virtualhost?: string;
}

/** Reads a timing keyword into t; false when s is none. Notes go to notes. */
function timingKeyword(s: Statement, t: Timing, notes: Note[]): boolean {
  const value = s.words[1];
  switch (kw(s)) {
    case 'delay_loop':
    case 'connect_timeout':
    case 'delay_before_retry': {
      const ms = timer(value);
      if (ms === null) notes.push(warning(`${s.origin}: ${said(s)}: not a time in seconds; ignored (as keepalived does)`));
      else if (kw(s) === 'delay_loop') t.delayLoop = ms;
      else if (kw(s) === 'connect_timeout') t.connectTimeout = ms;
      else t.delayBeforeRetry = ms;
      return true;
    }
    case 'retry':
    case 'nb_get_retry': {
      const n = wholeNumber(value, 0xffffffff);
      if (n === null) notes.push(warning(`${s.origin}: ${said(s)}: not a number; ignored (as keepalived does)`));
      else t.retry = n;
      return true;
    }
    case 'virtualhost':
      if (value !== undefined) t.virtualhost = value;
      return true;
    case 'warmup':
      notes.push(note(`${said(s)}: xdplb fires each backend's first check at a random point of its first interval (not imported)`));
      return true;
    default:
      return false;
  }
}

/** The xdplb check of one keepalived checker, with what could not be carried over; check null: none. */
interface MappedCheck {
  check: HealthCheckInput | null;
  notes: Note[];
}

/** A backend's check as mapped (null: its real server had no checker), and how many checkers it had. */
interface ServerCheck {
  readonly address: string;
  readonly mapped: MappedCheck | null;
  readonly checkers: number;
}

/** The set of HTTP status codes a url accepts, as keepalived reads status_code ("200-299 503"); null: a word it would reject. */
function statusCodes(words: readonly string[]): { codes: Set<number>; bad: string[] } {
  const codes = new Set<number>();
  const bad: string[] = [];
  for (const w of words) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(w);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo < 100 || hi > 599 || lo > hi) bad.push(w);
    else for (let c = lo; c <= hi; c++) codes.add(c);
  }
  return { codes, bad };
}

/** Runs of consecutive codes: [[200, 299], [503, 503]]. */
function runs(codes: ReadonlySet<number>): [number, number][] {
  const sorted = [...codes].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === c - 1) last[1] = c;
    else out.push([c, c]);
  }
  return out;
}

const runText = ([lo, hi]: [number, number]) => (lo === hi ? `${lo}` : `${lo}-${hi}`);

/** A request path the schema accepts: "/" first, anything outside its characters %-encoded. */
function requestPath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.replace(/%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/gu, (c) => encodeURIComponent(c));
}

interface CheckContext {
  readonly vs: Timing;
  readonly rs: Timing;
  /** The real server's port as written (0: none); where keepalived's checks connect when no connect_port says otherwise. */
  readonly rsPort: number;
  readonly servicePort: number;
}

/** One checker block as an xdplb health check. */
function mapChecker(c: Statement, ctx: CheckContext): MappedCheck {
  const type = kw(c);
  const notes: Note[] = [];
  const unmapped = UNMAPPED_CHECKERS[type];
  if (unmapped) return { check: null, notes: [warning(`${c.origin}: ${type} ${unmapped}; not imported`)] };
  const http = type === 'HTTP_GET' || type === 'SSL_GET';
  const t: Timing = {};
  let port: number | undefined;
  const urls: Statement[] = [];
  const ignored: string[] = [];
  for (const s of c.block ?? []) {
    if (timingKeyword(s, t, notes)) continue;
    switch (kw(s)) {
      case 'connect_port': {
        const p = wholeNumber(s.words[1], 65535);
        if (p === null || p === 0) notes.push(warning(`${s.origin}: ${said(s)}: not a port; ignored (as keepalived does)`));
        else port = p;
        break;
      }
      case 'connect_ip':
        notes.push(warning(`${s.origin}: ${said(s)}: keepalived checked another address than the server's; xdplb checks the backend's own address`));
        break;
      case 'url':
        if (http) urls.push(s);
        else ignored.push(kw(s));
        break;
      case 'host':
        if (type === 'SMTP_CHECK') notes.push(warning(`${s.origin}: SMTP_CHECK host block (${(s.block ?? []).map(said).join('; ')}): other hosts were checked too; xdplb checks the backend only`));
        else ignored.push(kw(s));
        break;
      case 'helo_name':
        if (type !== 'SMTP_CHECK') ignored.push(kw(s));
        break;
      default:
        ignored.push(kw(s));
    }
  }
  if (ignored.length > 0) notes.push(note(`${c.origin}: ${type}: ${[...new Set(ignored)].join(', ')}: not imported (xdplb has no such setting)`));
  const defaultDelayBeforeRetry = http ? 3000 : 1000;
  const interval = t.delayLoop ?? ctx.rs.delayLoop ?? ctx.vs.delayLoop ?? DEFAULT_DELAY_LOOP;
  const connectTimeout = t.connectTimeout ?? ctx.rs.connectTimeout ?? ctx.vs.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const retry = t.retry ?? ctx.rs.retry ?? ctx.vs.retry ?? 1;
  const delayBeforeRetry = t.delayBeforeRetry ?? ctx.rs.delayBeforeRetry ?? ctx.vs.delayBeforeRetry ?? defaultDelayBeforeRetry;
  const every = Math.min(Math.max(interval, 100), 3_600_000);
  const byDefault = (given: number | undefined) => (given === undefined ? " (keepalived's default)" : '');
  if (every !== interval) notes.push(warning(`delay_loop ${duration(interval)}${byDefault(t.delayLoop ?? ctx.rs.delayLoop ?? ctx.vs.delayLoop)}: xdplb checks every 100ms to 1h: ${duration(every)}`));
  const timeout = Math.min(Math.max(connectTimeout, 10), every);
  if (timeout !== connectTimeout)
    notes.push(warning(`connect_timeout ${duration(connectTimeout)}${byDefault(t.connectTimeout ?? ctx.rs.connectTimeout ?? ctx.vs.connectTimeout)}: xdplb waits 10ms to the interval (${duration(every)}): ${duration(timeout)}`));
  const fall = Math.min(retry + 1, 100);
  if (fall !== retry + 1) notes.push(warning(`retry ${retry}: xdplb takes a backend out after at most 100 failures in a row: fall 100`));
  notes.push(
    note(
      `keepalived checked every ${duration(interval)}, took a server out after ${count(retry + 1, 'failure')} in a row (${retry === 0 ? 'no retries' : `the retries ${duration(delayBeforeRetry)} apart`}) and back after 1 success; here: every ${duration(every)}, out after ${count(fall, 'failure')} (about ${duration(every * fall)}), back after 1 success.`,
    ),
  );
  if (port === undefined && ctx.rsPort !== 0 && ctx.rsPort !== ctx.servicePort) port = ctx.rsPort;
  const timing = { interval: duration(every), timeout: duration(timeout), rise: 1, fall };
  if (type === 'TCP_CHECK' || type === 'SMTP_CHECK') {
    if (type === 'SMTP_CHECK') {
      port ??= ctx.rsPort || 25;
      notes.push(warning(`${c.origin}: SMTP_CHECK's dialogue (banner, HELO, QUIT) is not checked: a TCP connect to port ${port} instead`));
    }
    return { check: { type: 'tcp', ...(port !== undefined ? { port } : {}), ...timing }, notes };
  }
  // HTTP_GET / SSL_GET
  const first = urls[0];
  if (!first) return { check: null, notes: [...notes, warning(`${c.origin}: ${type} without a url block: keepalived ignores it too`)] };
  let path: string | undefined;
  let urlHost: string | undefined;
  let codes: Set<number> | null = null;
  const urlIgnored: string[] = [];
  for (const s of first.block ?? []) {
    switch (kw(s)) {
      case 'path':
        path = s.words.slice(1).join(' ');
        break;
      case 'status_code': {
        const r = statusCodes(s.words.slice(1));
        if (r.bad.length) notes.push(warning(`${s.origin}: status_code ${r.bad.join(' ')}: not a code or range from 100 to 599; ignored (as keepalived does)`));
        codes = new Set([...(codes ?? []), ...r.codes]);
        break;
      }
      case 'virtualhost':
        urlHost = s.words[1];
        break;
      case 'digest':
        notes.push(warning(`${s.origin}: digest ${s.words[1] ?? ''}: keepalived compared the page's MD5 digest; xdplb checks the status only`));
        break;
      default:
        urlIgnored.push(kw(s));
    }
  }
  if (urlIgnored.length > 0) notes.push(warning(`${first.origin}: url ${[...new Set(urlIgnored)].join(', ')}: not imported (xdplb checks the status only)`));
  if (path === undefined) return { check: null, notes: [...notes, warning(`${first.origin}: url without a path: keepalived ignores it too`)] };
  if (urls.length > 1)
    notes.push(warning(`${urls.slice(1).map((u) => u.origin).join(', ')}: ${urls.length - 1} more url block${urls.length > 2 ? 's' : ''}: keepalived fetched every url; xdplb fetches one path, the first url's (${path})`));
  const accepted = codes !== null && (codes as Set<number>).size > 0 ? runs(codes) : [[HTTP_DEFAULT_STATUS[0], HTTP_DEFAULT_STATUS[1]] as [number, number]];
  const lo = accepted[0]![0];
  const hi = accepted[accepted.length - 1]![1];
  if (accepted.length > 1)
    notes.push(warning(`status_code ${accepted.map(runText).join(' ')}: xdplb takes one range: ${lo}-${hi}, which also accepts ${runs(new Set(Array.from({ length: hi - lo + 1 }, (_, i) => lo + i).filter((x) => !accepted.some(([a, b]) => x >= a && x <= b)))).map(runText).join(' ')}`));
  const expectStatus = lo === hi ? lo : `${lo}-${hi}`;
  const host = urlHost ?? t.virtualhost ?? ctx.rs.virtualhost ?? ctx.vs.virtualhost;
  const target = requestPath(path);
  if (target !== path) notes.push(note(`path ${path} sent as ${target} (a request path: "/" first, other characters %-encoded)`));
  const check: HealthCheckInput = { type: type === 'SSL_GET' ? 'https' : 'http', ...(port !== undefined ? { port } : {}), path: target, ...(host !== undefined ? { host } : {}), expectStatus, ...timing };
  if (host !== undefined && !HealthCheck.safeParse(check).success) {
    notes.push(warning(`virtualhost ${host}: not a Host header xdplb can send (a host name or address, and an optional :port); the backend's address is sent instead`));
    delete (check as { host?: string }).host;
  }
  if (type === 'SSL_GET') notes.push(note("SSL_GET: https without checking the backend's certificate (verifyTls: false), as keepalived did without a CA"));
  return { check, notes };
}

/** The effective forwarding of a real server: its lvs_method, else the virtual server's lb_kind, else keepalived's default NAT. */
type Forwarding = 'DR' | 'NAT' | 'TUN';

interface VirtualTarget {
  readonly ip: IpAddress;
  readonly port: number;
  /** How the virtual server named it: "10.0.0.1 80", "group VSG_1: 10.0.0.2 80". */
  readonly text: string;
}

/** The addresses of one virtual_server_group entry ("10.0.0.1 80", "192.168.200.3-10 80", "ae00::2-9 80"); a string: why it gives none. */
function groupEntry(s: Statement): VirtualTarget[] | string {
  const [addr = '', portText] = s.words;
  if (addr === 'fwmark') return `fwmark ${portText ?? ''}: a firewall-mark service (see below)`;
  const port = portText === undefined ? 0 : wholeNumber(portText, 65535);
  if (port === null) return `${said(s)}: the port is not a number`;
  const ip = parseIp(addr);
  if (ip) return [{ ip, port, text: said(s) }];
  const range = /^(.+)-([0-9A-Fa-f]+)$/.exec(addr);
  const base = range ? parseIp(range[1]!) : null;
  if (!range || !base) return `${said(s)}: ${addr.includes('/') ? 'address/prefix entries are not imported: list the addresses' : 'not an address or a range of the last part of one'}`;
  const last = base.family === 4 ? Number(range[1]!.split('.').pop()) : parseInt(range[1]!.split(':').pop() || '0', 16);
  const end = base.family === 4 ? Number(range[2]) : parseInt(range[2]!, 16);
  if (!(end >= last) || end > (base.family === 4 ? 255 : 0xffff) || end - last >= 256) return `${said(s)}: a range of more than 256 addresses, or one that ends before it starts`;
  const first = addressNumber(base);
  return Array.from({ length: end - last + 1 }, (_, i) => ({ ip: numberAddress(first + BigInt(i), base.family), port, text: said(s) }));
}

const FWMARK_REASON =
  'IPVS matched packets by a mark that iptables or nft put on them, which an XDP program never sees (it runs before the firewall). Give each address and port the mark covered a virtual_server of its own (xdplb serves a VIP and protocol on every port with port 0).';

interface RealServer {
  readonly st: Statement;
  readonly ip: IpAddress | null;
  readonly port: number;
  readonly forwarding: Forwarding;
  /** Where the forwarding came from: "lvs_method NAT", "lb_kind NAT", "keepalived's default". */
  readonly forwardingText: string;
  readonly weight: number | null;
  readonly timing: Timing;
  readonly checkers: readonly Statement[];
  readonly notes: readonly Note[];
}

/** Real server keywords xdplb has nothing for, and what to say about each. */
const RS_NOTES: Readonly<Record<string, (s: Statement) => Note>> = {
  inhibit_on_failure: () => note('inhibit_on_failure: keepalived set a failed server\'s weight to 0 (keeping its connections); xdplb takes it out of the table and its flows are rescheduled'),
  notify_up: (s) => warning(`${said(s)}: xdplb runs no scripts (it logs every health transition, and exports xdplb_backend_up)`),
  notify_down: (s) => warning(`${said(s)}: xdplb runs no scripts (it logs every health transition, and exports xdplb_backend_up)`),
  uthreshold: (s) => warning(`${said(s)} (a connection threshold): xdplb counts no connections per backend; not imported`),
  lthreshold: (s) => warning(`${said(s)} (a connection threshold): xdplb counts no connections per backend; not imported`),
  alpha: () => note('alpha: keepalived started the server down until a check passed; xdplb starts backends up (a restart must not empty a service) unless the pins record them down'),
  smtp_alert: () => note('smtp_alert: xdplb sends no mail (see its alert rules, deploy/prometheus/)'),
  snmp_name: () => note('snmp_name: not imported'),
};

function realServer(st: Statement, vsKind: Forwarding | null, vsKindText: string): RealServer {
  const ip = parseIp(st.words[1] ?? '');
  const port = st.words[2] === undefined ? 0 : (wholeNumber(st.words[2], 65535) ?? -1);
  const notes: Note[] = [];
  const timing: Timing = {};
  const checkers: Statement[] = [];
  let forwarding: Forwarding | null = null;
  let forwardingText = '';
  let weight: number | null = null;
  for (const s of st.block ?? []) {
    if (timingKeyword(s, timing, notes)) continue;
    const k = kw(s);
    if ((CHECKERS as readonly string[]).includes(k)) checkers.push(s);
    else if (k === 'weight') {
      weight = wholeNumber(s.words[1], 0xffffffff);
      if (weight === null) notes.push(warning(`${s.origin}: ${said(s)}: not a weight; ignored (as keepalived does)`));
    } else if (k === 'lvs_method') {
      const m = s.words[1];
      if (m === 'DR' || m === 'NAT' || m === 'TUN') {
        forwarding = m;
        forwardingText = said(s);
      }
      else notes.push(warning(`${s.origin}: ${said(s)}: unknown method; ignored (as keepalived does)`));
    } else if (RS_NOTES[k]) notes.push(placed(s, RS_NOTES[k]!(s)));
    else notes.push(warning(`${s.origin}: ${said(s)}: not a real_server keyword of keepalived 2.2; ignored`));
  }
  return { st, ip, port, forwarding: forwarding ?? vsKind ?? 'NAT', forwardingText: forwardingText || vsKindText || "keepalived's default", weight, timing, checkers, notes };
}

/** Virtual server keywords xdplb has nothing for, and what to say about each. */
const VS_NOTES: Readonly<Record<string, (s: Statement) => Note>> = {
  sorry_server: (s) => warning(`${said(s)}: xdplb has no sorry server: when no backend can take a packet, noBackend: drop (the default) drops it, pass hands it to the director's own kernel`),
  sorry_server_inhibit: () => note('sorry_server_inhibit: no sorry server in xdplb'),
  sorry_server_lvs_method: () => note('sorry_server_lvs_method: no sorry server in xdplb'),
  quorum: (s) => warning(`${said(s)}: xdplb has no quorum: a service is served while any backend is up (allDown: keep-last keeps the last healthy set when all fail)`),
  hysteresis: (s) => note(`${said(s)}: no quorum in xdplb`),
  quorum_up: (s) => warning(`${said(s)}: xdplb runs no scripts, and has no quorum`),
  quorum_down: (s) => warning(`${said(s)}: xdplb runs no scripts, and has no quorum`),
  alpha: () => note('alpha: keepalived started every server down until a check passed; xdplb starts backends up (a restart must not empty a service) unless the pins record them down'),
  omega: () => note('omega: no quorum scripts in xdplb'),
  ha_suspend: () => note('ha_suspend: xdplb checks the backends on standby directors too, so that a takeover finds them known'),
  inhibit_on_failure: () => note('inhibit_on_failure: keepalived set a failed server\'s weight to 0 (keeping its connections); xdplb takes it out of the table and its flows are rescheduled'),
  smtp_alert: () => note('smtp_alert: xdplb sends no mail (see its alert rules, deploy/prometheus/)'),
  snmp_name: () => note('snmp_name: not imported'),
  hashed: () => note('hashed: not imported'),
  'flag-1': () => note('flag-1: a scheduler flag xdplb does not have; not imported'),
  'flag-2': () => note('flag-2: a scheduler flag xdplb does not have; not imported'),
  'flag-3': () => note('flag-3: a scheduler flag xdplb does not have; not imported'),
  ops: () => warning('ops (one-packet scheduling): IPVS chose a backend for every datagram; xdplb hashes the 5-tuple, so every datagram of one client address and port goes to the same backend'),
};

interface VirtualServer {
  algo: string | null;
  kind: Forwarding | null;
  kindText: string;
  persistence: number | null;
  granularity: string | null;
  engine: string | null;
  protocol: string;
  weight: number | null;
  ipFamily: 4 | 6 | null;
  flags: Set<string>;
  timing: Timing;
  realServers: Statement[];
  notes: Note[];
}

function virtualServer(st: Statement): VirtualServer {
  const v: VirtualServer = { algo: null, kind: null, kindText: '', persistence: null, granularity: null, engine: null, protocol: 'TCP', weight: null, ipFamily: null, flags: new Set(), timing: {}, realServers: [], notes: [] };
  for (const s of st.block ?? []) {
    if (timingKeyword(s, v.timing, v.notes)) continue;
    const k = kw(s);
    const value = s.words[1];
    switch (k) {
      case 'lb_algo':
      case 'lvs_sched':
        if (value !== undefined && (IPVS_SCHEDULERS as readonly string[]).includes(value)) v.algo = value;
        else v.notes.push(warning(`${s.origin}: ${said(s)}: not an IPVS scheduler; ignored (as keepalived does)`));
        break;
      case 'lb_kind':
      case 'lvs_method':
        if (value === 'DR' || value === 'NAT' || value === 'TUN') {
          v.kind = value;
          v.kindText = said(s);
        } else v.notes.push(warning(`${s.origin}: ${said(s)}: unknown method; ignored (as keepalived does)`));
        break;
      case 'persistence_timeout':
        v.persistence = value === undefined ? 300 : wholeNumber(value, 86400 * 31);
        if (v.persistence === null) v.notes.push(warning(`${s.origin}: ${said(s)}: not a number of seconds; ignored (as keepalived does)`));
        break;
      case 'persistence_granularity':
        v.granularity = value ?? null;
        v.persistence ??= 300;
        break;
      case 'persistence_engine':
        v.engine = value ?? null;
        break;
      case 'protocol':
        if (value && ['TCP', 'UDP', 'SCTP'].includes(value.toUpperCase())) v.protocol = value.toUpperCase();
        else v.notes.push(warning(`${s.origin}: ${said(s)}: unknown protocol; TCP (as keepalived does)`));
        break;
      case 'weight':
        v.weight = wholeNumber(value, 0xffffffff);
        break;
      case 'ip_family':
        v.ipFamily = value === 'inet' ? 4 : value === 'inet6' ? 6 : null;
        break;
      case 'real_server':
        v.realServers.push(s);
        break;
      case 'sh-port':
      case 'mh-port':
      case 'sh-fallback':
      case 'mh-fallback':
        v.flags.add(k);
        break;
      default:
        if (VS_NOTES[k]) v.notes.push(placed(s, VS_NOTES[k]!(s)));
        else v.notes.push(warning(`${s.origin}: ${said(s)}: not a virtual_server keyword of keepalived 2.2; ignored`));
    }
  }
  return v;
}

/** A service's health check from its backends' checkers: the first real server's, the others compared with it. */
function serviceCheck(checks: ServerCheck[], servicePort: number): { check: HealthCheckInput; notes: Note[] } {
  const notes: Note[] = [];
  const first = checks.find((c) => c.mapped?.check);
  if (!first) {
    const unmapped = checks.flatMap((c) => c.mapped?.notes ?? []);
    notes.push(...dedupe(unmapped));
    notes.push(
      checks.some((c) => c.checkers > 0)
        ? warning('no health check xdplb can run: healthCheck none, every backend is taken to be up (add a tcp or http one, README "Configuration")')
        : note('no checker in keepalived (its servers were always up): healthCheck none'),
    );
    return { check: { type: 'none' }, notes };
  }
  let check = first.mapped!.check!;
  notes.push(...first.mapped!.notes);
  // the warnings of the others' checkers too (each names its line): what they did is as lost as the first's
  for (const c of checks) if (c !== first) notes.push(...(c.mapped?.notes ?? []).filter((n) => n.warning));
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const c of checks) {
    if (c === first) continue;
    if (!c.mapped?.check) {
      notes.push(warning(`${c.address}: ${c.checkers === 0 ? 'had no checker (always up in keepalived)' : 'has no check xdplb can run'}; xdplb checks every backend of a service alike: with ${first.address}'s check`));
      continue;
    }
    if (!same(c.mapped.check, check)) notes.push(warning(`${c.address}'s check differs from ${first.address}'s (${differences(check, c.mapped.check)}); xdplb checks every backend of a service alike: with ${first.address}'s`));
  }
  if (servicePort === 0 && check.type !== 'none' && (check as { port?: number }).port === undefined) {
    notes.push(warning('the service has every port (port 0) and its check names none: healthCheck none (give it a port)'));
    check = { type: 'none' };
  }
  return { check, notes: dedupe(notes) };
}

/** How two checks differ: "host www.example.com, not none; timeout 1s, not 2s". */
function differences(a: HealthCheckInput, b: HealthCheckInput): string {
  const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>];
  const shown = (v: unknown) => (v === undefined ? 'none' : String(v));
  return [...new Set([...Object.keys(x), ...Object.keys(y)])]
    .filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]))
    .map((k) => `${k} ${shown(y[k])}, not ${shown(x[k])}`)
    .join('; ');
}

function dedupe(notes: readonly Note[]): Note[] {
  const seen = new Set<string>();
  return notes.filter((n) => !seen.has(n.text) && (seen.add(n.text), true));
}

/** Adjacent entries skipped for the same reasons from the same line (the addresses of one group range) as one. */
function mergeSkipped(entries: Entry[]): void {
  for (let i = entries.length - 1; i > 0; i--) {
    const [a, b] = [entries[i - 1]!, entries[i]!];
    if (a.kind === 'skipped' && b.kind === 'skipped' && a.skipped.origin === b.skipped.origin && a.skipped.source === b.skipped.source && JSON.stringify(a.skipped.notes) === JSON.stringify(b.skipped.notes))
      entries.splice(i, 1);
  }
}

interface Vrrp {
  readonly name: string;
  readonly origin: string;
  readonly iface: string | null;
  /** Address text (without a prefix) → the interface that holds it. */
  readonly addresses: ReadonlyMap<string, string | null>;
}

function vrrpInstance(st: Statement): Vrrp {
  let iface: string | null = null;
  const addresses = new Map<string, string | null>();
  for (const s of st.block ?? []) {
    if (kw(s) === 'interface') iface = s.words[1] ?? null;
    if (kw(s) === 'virtual_ipaddress' || kw(s) === 'virtual_ipaddress_excluded') {
      for (const a of s.block ?? []) {
        const ip = parseIp((a.words[0] ?? '').split('/')[0]!);
        const dev = a.words.indexOf('dev');
        if (ip) addresses.set(ip.text, dev >= 0 ? (a.words[dev + 1] ?? null) : null);
      }
    }
  }
  for (const [a, dev] of addresses) if (dev === null) addresses.set(a, iface);
  return { name: st.words[1] ?? '', origin: st.origin, iface, addresses };
}

/** The backends of one virtual address from its real servers, the reasons others are left out, and their checks. */
function backendsFor(
  target: VirtualTarget,
  rss: readonly RealServer[],
  v: VirtualServer,
  equalShares: boolean,
  algo: string,
  natAsDr: boolean,
): { backends: ImportedBackend[]; refusedBy: Map<string, string[]>; checks: ServerCheck[]; fromNat: string[] } {
  const backends: ImportedBackend[] = [];
  /** Real servers left out, by reason: "REASON: FILE:LINE real_server A P, ..." */
  const refusedBy = new Map<string, string[]>();
  const refuse = (where: string, reason: string) => refusedBy.set(reason, [...(refusedBy.get(reason) ?? []), where]);
  const checks: ServerCheck[] = [];
  const seen = new Set<string>();
  const fromNat: string[] = [];
  for (const rs of rss) {
    const where = `${said(rs.st)} (${rs.st.origin})`;
    if (!rs.ip || rs.port < 0) {
      refuse(where, `${!rs.ip ? 'not an IP address' : 'not a port'} (keepalived skips it too)`);
      continue;
    }
    if (rs.ip.family !== target.ip.family && rs.forwarding !== 'TUN') {
      refuse(where, `IPv${rs.ip.family} for an IPv${target.ip.family} VIP (keepalived skips it too)`);
      continue;
    }
    if (rs.forwarding === 'TUN') {
      refuse(where, `TUN (${rs.forwardingText}, tunnelling): xdplb is Direct Routing only: it rewrites the Ethernet header, so a backend must be on the director's L2 segment and hold the VIP on lo`);
      continue;
    }
    if (rs.forwarding === 'NAT' && !natAsDr) {
      refuse(where, `NAT (${rs.forwardingText}): xdplb is Direct Routing only: it never rewrites addresses or ports, and replies go from the backend to the client directly. To migrate to DR, set the servers up with \`xdplb realserver\` and import with --nat-as-dr`);
      continue;
    }
    const port = rs.port === 0 ? target.port : rs.port;
    if (rs.forwarding === 'NAT' && target.port !== 0 && port !== target.port) {
      refuse(where, `NAT to port ${port} of a VIP on port ${target.port}: Direct Routing cannot change the port (--nat-as-dr needs the same port)`);
      continue;
    }
    const weight = rs.weight ?? v.weight ?? 1;
    if (weight > 1_000_000) {
      refuse(where, `weight ${weight}: xdplb takes weights up to 1000000`);
      continue;
    }
    if (seen.has(rs.ip.text)) {
      refuse(where, `${rs.ip.text} is already a backend of this service (DR sends to one port per address)`);
      continue;
    }
    seen.add(rs.ip.text);
    const bnotes: Note[] = [...rs.notes];
    let w = weight;
    if (equalShares && w > 0) {
      if (w !== 1) bnotes.push(note(`weight ${w} (${algo} ignored it): weight 1`));
      w = 1;
    }
    if (weight === 0) bnotes.push(note('weight 0: keeps its established flows, takes no new ones'));
    if (rs.forwarding === 'NAT') fromNat.push(rs.ip.text);
    if (rs.forwarding === 'DR' && rs.port !== 0 && target.port !== 0 && rs.port !== target.port)
      bnotes.push(note(`port ${rs.port}: Direct Routing delivers to the VIP's port ${target.port} (keepalived reset it too); the check goes to ${rs.port}, as keepalived's did`));
    const mappedChecks = rs.checkers.map((c) => mapChecker(c, { vs: v.timing, rs: rs.timing, rsPort: rs.port, servicePort: target.port }));
    const usable = mappedChecks.find((m) => m.check);
    if (usable && rs.checkers.length > 1) {
      const others = rs.checkers.filter((_, i) => mappedChecks[i] !== usable).map((c) => kw(c));
      usable.notes.push(warning(`keepalived required every checker of a server to pass (${rs.checkers.map(kw).join(', ')}); xdplb runs one: the ${kw(rs.checkers[mappedChecks.indexOf(usable)]!)} (${others.join(', ')} not imported)`));
    }
    checks.push({ address: rs.ip.text, mapped: usable ?? (mappedChecks[0] ? { check: null, notes: mappedChecks.flatMap((m) => m.notes) } : null), checkers: rs.checkers.length });
    backends.push({ backend: { address: rs.ip.text, weight: w }, notes: bnotes });
  }
  return { backends, refusedBy, checks, fromNat };
}

/**
 * The xdplb config of a keepalived.conf: its YAML text (validated) and the
 * warnings to print. CONFIG_UNREADABLE for what keepalived's parser would
 * not read; CONFIG_INVALID when no virtual_server gives a service (with
 * every reason).
 */
export function importKeepalived(text: string, options: KeepalivedImportOptions): { text: string; warnings: Warning[] } {
  const syntax = parseKeepalivedSyntax(text, options);
  const natAsDr = options.natAsDr ?? false;
  const groups = new Map<string, Statement>();
  const vrrps: Vrrp[] = [];
  const others = new Map<string, string>();
  for (const st of syntax.statements) {
    if (kw(st) === 'virtual_server_group') groups.set(st.words[1] ?? '', st);
    else if (kw(st) === 'vrrp_instance') vrrps.push(vrrpInstance(st));
    else if (kw(st) !== 'virtual_server' && !others.has(kw(st))) others.set(kw(st), st.origin);
  }

  const entries: Entry[] = [];
  const taken = new Map<string, string>();
  let backendsInAll = 0;
  const vips = new Set<string>();
  for (const st of syntax.statements) {
    if (kw(st) !== 'virtual_server') continue;
    const skip = (...notes: Note[]) => entries.push({ kind: 'skipped', skipped: { origin: st.origin, source: said(st), notes } });
    const [, a = '', b] = st.words;
    if (st.block === null) {
      skip(warning('no { } block after it'));
      continue;
    }
    let targets: VirtualTarget[] = [];
    const groupNotes: Note[] = [];
    if (a === 'fwmark') {
      skip(warning(`a firewall-mark service: ${FWMARK_REASON}`));
      continue;
    }
    if (a === 'group') {
      const g = groups.get(b ?? '');
      if (!g) {
        skip(warning(`no virtual_server_group ${b ?? ''} in the file`));
        continue;
      }
      for (const e of g.block ?? []) {
        const r = groupEntry(e);
        if (typeof r === 'string') groupNotes.push(warning(`${e.origin}: virtual_server_group ${b}: not imported: ${r.startsWith('fwmark') ? `${r.replace(' (see below)', '')}. ${FWMARK_REASON}` : r}`));
        else targets.push(...r.map((t) => ({ ...t, text: `group ${b}: ${t.text}` })));
      }
      if (targets.length === 0) {
        skip(...groupNotes, warning(`virtual_server_group ${b} gives no address xdplb can serve`));
        continue;
      }
    } else {
      const ip = parseIp(a);
      const port = b === undefined ? 0 : wholeNumber(b, 65535);
      if (!ip || port === null) {
        skip(warning(`${!ip ? `${a}: not an IP address` : `${b}: not a port`} (keepalived skips it too)`));
        continue;
      }
      targets = [{ ip, port, text: `${a} ${port}` }];
    }
    const v = virtualServer(st);
    if (v.protocol === 'SCTP') {
      skip(...v.notes, warning('protocol SCTP: xdplb balances TCP and UDP only'));
      continue;
    }
    const protocol = v.protocol.toLowerCase() as Protocol;
    const flags = { port: v.flags.has('sh-port') || v.flags.has('mh-port'), fallback: v.flags.has('sh-fallback') || v.flags.has('mh-fallback') };
    const algo = v.algo ?? 'wlc';
    const mapping = mapScheduler(algo, flags, v.persistence !== null)!;
    const rss = v.realServers.map((r) => realServer(r, v.kind, v.kindText));
    for (const target of targets) {
      const notes: Note[] = [...groupNotes, ...mapping.notes];
      if (v.algo === null) notes.push(note('no lb_algo: keepalived used wlc'));
      if (v.kind === null) notes.push(note('no lb_kind: keepalived used NAT'));
      if (v.persistence !== null) notes.push(...persistenceNote(v.persistence, v.granularity, v.engine));
      notes.push(...v.notes);
      const key = `${protocol} ${target.ip.text} ${target.port}`;
      const name = importedServiceName(protocol, target.ip, target.port);
      const earlier = taken.get(key);
      if (earlier) {
        entries.push({ kind: 'skipped', skipped: { origin: st.origin, source: `virtual_server ${target.text}`, notes: [warning(`the same VIP, protocol and port as ${earlier}`)] } });
        continue;
      }
      const { backends, refusedBy, checks, fromNat } = backendsFor(target, rss, v, mapping.equalShares, algo, natAsDr);
      const refused = [...refusedBy].map(([reason, wheres]) => warning(`${wheres.join(', ')}: ${backends.length > 0 ? 'left out: ' : ''}${reason}`));
      if (backends.length === 0 && refused.length > 0) {
        entries.push({ kind: 'skipped', skipped: { origin: st.origin, source: `virtual_server ${target.text}`, notes: [...refused, warning('no real server xdplb can forward to')] } });
        continue;
      }
      if (rss.length === 0) notes.push(warning('no real_server: the service has no backends'));
      const hc = serviceCheck(checks, target.port);
      if (fromNat.length > 0) notes.push(natAsDrWarning(fromNat, target.ip.text));
      notes.push(...refused, ...hc.notes);
      taken.set(key, `${st.origin} (${target.text})`);
      vips.add(target.ip.text);
      backendsInAll += backends.length;
      entries.push({
        kind: 'service',
        imported: {
          origin: st.origin,
          source: `virtual_server ${target.text}`,
          service: { name, vip: target.ip.text, port: target.port, protocol, scheduler: mapping.scheduler, healthCheck: hc.check },
          backends,
          notes: dedupe(notes),
        },
      });
    }
  }

  mergeSkipped(entries);
  const globalNotes: { origin: string; note: Note }[] = syntax.remarks.map((r) => ({ origin: r.origin, note: r.warning ? warning(r.text) : note(r.text) }));
  if (!syntax.statements.some((st) => kw(st) === 'virtual_server'))
    globalNotes.push({ origin: options.file, note: warning(`no virtual_server block: nothing that IPVS balanced${vrrps.length > 0 ? ' (this configuration runs VRRP only: for redundant xdplb directors see README "Redundancy" and deploy/keepalived/)' : ''}`) });
  const settings: Setting[] = [];
  const ifaces = new Set<string>();
  const holders: string[] = [];
  for (const vip of vips) {
    const holder = vrrps.find((r) => r.addresses.has(vip));
    if (holder) {
      holders.push(`${vip} (${holder.name})`);
      const i = holder.addresses.get(vip);
      if (i) ifaces.add(i);
    } else ifaces.add('');
  }
  const iface = ifaces.size === 1 ? [...ifaces][0]! : '';
  if (iface) settings.push({ key: 'interface', value: iface, comment: 'the interface of the vrrp_instance that held the VIPs', commentedOut: false });
  else settings.push({ key: 'interface', value: 'eth1', comment: "the director's NIC on the VIPs' segment (or xdplb attach -i)", commentedOut: true });
  if (vrrps.length > 0)
    globalNotes.push({
      origin: vrrps[0]!.origin,
      note: warning(
        `${vrrps.map((r) => `vrrp_instance ${r.name}${r === vrrps[0] ? '' : ` (${r.origin})`}`).join(', ')}: VRRP is not imported. keepalived goes on electing the active director, but no longer holds the VIPs: xdplb adds and announces them on the active one. Run both directors with role: standby and vipClaimLease (below), and keepalived with deploy/keepalived/keepalived.conf and its notify script (README "Redundancy").`,
      ),
    });
  if (holders.length > 0) globalNotes.push({ origin: options.file, note: warning(`VIPs held by keepalived's virtual_ipaddress: ${holders.join(', ')}: take them out of keepalived's config once xdplb serves them (two owners of a VIP split its traffic)`) });
  if (vrrps.length > 0) {
    settings.push({ key: 'role', value: 'standby', comment: "with keepalived's VRRP choosing the active director (xdplb role active|standby)", commentedOut: true });
    settings.push({ key: 'vipClaimLease', value: '500ms', comment: 'a dead daemon stops claiming the VIPs this long after (README "Redundancy")', commentedOut: true });
  }
  const left = [...others].filter(([k]) => k !== '');
  if (left.length > 0) globalNotes.push({ origin: options.file, note: note(`not imported (no load balancing in them): ${left.map(([k, o]) => `${k} (${o})`).join(', ')}`) });
  settings.push(...capacitySettings(entries.filter((e) => e.kind === 'service').length, backendsInAll));
  const services = entries.filter((e) => e.kind === 'service').length;
  const config: ImportedConfig = {
    header: [
      `xdplb config imported by \`xdplb import keepalived\` from ${options.file}${options.configId !== undefined ? ` (config id ${options.configId})` : ''}${natAsDr ? ', NAT imported as Direct Routing' : ''}: ${count(services, 'service')}, ${count(backendsInAll, 'backend')}.`,
      'Read every comment (WARNING: marks what behaves differently), check interface, then check it with `xdplb config validate FILE`.',
    ],
    settings,
    entries,
    notes: globalNotes,
  };
  return finishImport(config, options.file);
}
