// `xdplb status --ipvsadm`: the status in exactly the text of `ipvsadm -L -n`
// (with --stats and --rate as ipvsadm prints them), so that scripts written
// for an LVS director keep working. The columns, widths, number suffixes and
// sort order are those of ipvsadm 1.31 (Debian 12's; its print_title(),
// print_service_entry() and print_largenum()). Pure.
//
// What each column holds here (xdplb is DR only, and its state differs):
// - the scheduler is IPVS's Maglev one: `mh (mh-port)` for maglev (the hash
//   covers the client's port), `mh` for maglev-source (the client address);
// - Forward is always Route (direct routing); Weight the configured weight,
//   0 for a draining backend (IPVS's quiesced weight); backends that are down
//   (gone, unresolved, failing their checks: their flows are rescheduled) are
//   not listed, as keepalived removes a failed real server;
// - ActiveConn / InActConn count the flow table's entries for the backend
//   seen in the last ACTIVE_WINDOW_S seconds / not since: xdplb keeps state
//   only for flows on slots that changed owner, so a stable service shows 0;
// - Conns is new flows, InPkts/InBytes the packets and IP bytes forwarded;
//   OutPkts/OutBytes are 0: in DR the replies bypass the director.
import type { BackendStatus, ServiceStatus, Status } from './status.ts';
import { formatIp, parseIp } from '../model/address.ts';

export type IpvsadmMode = 'list' | 'stats' | 'rate';

/** The version IPVS has reported since Linux 2.6.27 (IP_VS_VERSION_CODE 0x010201). */
const IPVS_VERSION = '1.2.1';

const PROT_TITLE = 'Prot LocalAddress:Port';
const REMOTE_TITLE = '  -> RemoteAddress:Port';

/** printf("%-Ns") / ("%Ns"): pad, never cut. */
const left = (s: string, n: number) => s.padEnd(n);
const right = (s: string, n: number) => s.padStart(n);

/** print_largenum() without --exact: 9 columns, K/M/G/T past 100 million (integer division). */
export function largenum(n: number): string {
  const i = Math.max(0, Math.floor(n));
  if (i < 100_000_000) return right(String(i), 9);
  if (i < 1_000_000_000) return `${right(String(Math.floor(i / 1_000)), 8)}K`;
  if (i < 100_000_000_000) return `${right(String(Math.floor(i / 1_000_000)), 8)}M`;
  if (i < 100_000_000_000_000) return `${right(String(Math.floor(i / 1_000_000_000)), 8)}G`;
  return `${right(String(Math.floor(i / 1_000_000_000_000)), 8)}T`;
}

/** The address as glibc's inet_ntop() writes it: RFC 5952, but IPv4-compatible and -mapped IPv6 addresses end in dotted quads. */
function inetNtop(text: string): string {
  const ip = parseIp(text);
  if (!ip || ip.family === 4) return text;
  const w = Array.from({ length: 8 }, (_, i) => ip.bytes.readUInt16BE(2 * i));
  const quad = `${ip.bytes[12]}.${ip.bytes[13]}.${ip.bytes[14]}.${ip.bytes[15]}`;
  if (w.slice(0, 6).every((x) => x === 0) && w[6] !== 0) return `::${quad}`;
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return `::ffff:${quad}`;
  return formatIp(ip.bytes, 6);
}

/** addrport_to_anyname() with -n: "a.b.c.d:port" or "[v6]:port"; a port-less service is port 0, as in IPVS. */
function addrPort(address: string, port: number): string {
  const a = inetNtop(address);
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

/** The service's name column: "%-4s %s" of the protocol and address, cut to 33 characters for IPv4 (as ipvsadm does). */
function serviceName(s: ServiceStatus): string {
  const name = `${left(s.protocol, 4)} ${addrPort(s.vip, s.port)}`;
  return s.vip.includes(':') ? name : name.slice(0, 33);
}

/** The destination column, cut to 28 characters for IPv4. */
function destName(s: ServiceStatus, b: BackendStatus): string {
  const name = addrPort(b.address, s.port);
  return s.vip.includes(':') ? name : name.slice(0, 28);
}

/** The words of an address as ntohl() gives them (1 for IPv4, 4 for IPv6). */
function words(address: string): number[] {
  const ip = parseIp(address);
  if (!ip) return [0];
  return Array.from({ length: ip.family === 4 ? 1 : 4 }, (_, i) => ip.bytes.readUInt32BE(4 * i));
}

/** ipvsadm's comparisons: the difference of two unsigned words as a C int (it wraps beyond 2^31, as ipvsadm's does). */
function cmpWords(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) {
    const r = ((a[i] ?? 0) - (b[i] ?? 0)) | 0;
    if (r !== 0) return r;
  }
  return 0;
}

const PROTO_NUMBER: Record<string, number> = { TCP: 6, UDP: 17 };

/** ipvs_cmp_services(): family (AF_INET first), protocol number, address, port. */
function cmpServices(a: ServiceStatus, b: ServiceStatus): number {
  const fa = a.vip.includes(':') ? 10 : 2;
  const fb = b.vip.includes(':') ? 10 : 2;
  return fa - fb || (PROTO_NUMBER[a.protocol] ?? 0) - (PROTO_NUMBER[b.protocol] ?? 0) || cmpWords(words(a.vip), words(b.vip)) || a.port - b.port;
}

/** ipvs_cmp_dests(): address, then port (one port per service here). */
function cmpDests(a: BackendStatus, b: BackendStatus): number {
  return cmpWords(words(a.address), words(b.address));
}

/** IPVS's scheduler name and flags for an xdplb scheduler: Maglev hashing, with the client port (mh-port) or without. */
function scheduler(s: ServiceStatus): string {
  return s.scheduler === 'maglev-source' ? 'mh' : 'mh (mh-port)';
}

/** The backends ipvsadm would list: those that take or keep flows (down ones are out of the service). */
function listed(s: ServiceStatus): BackendStatus[] {
  return s.backends.filter((b) => b.state !== 'down').sort(cmpDests);
}

/**
 * The text of `ipvsadm -L -n` (mode 'list'), `ipvsadm -L -n --stats`
 * ('stats', counter totals) or `ipvsadm -L -n --rate` ('rate': `st` holds
 * per-second rates, see rates() in status.ts).
 * `size` in the first line is the flow table's capacity (IPVS's connection
 * table size). No newline after the last line.
 */
export function renderIpvsadm(st: Status, mode: IpvsadmMode): string {
  const out: string[] = [`IP Virtual Server version ${IPVS_VERSION} (size=${st.flowTable.capacity})`];
  if (mode === 'list') out.push('Prot LocalAddress:Port Scheduler Flags', `${REMOTE_TITLE}           Forward Weight ActiveConn InActConn`);
  else {
    const cols = mode === 'stats' ? ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'] : ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'];
    out.push(`${left(PROT_TITLE, 33)} ${cols.map((c) => right(c, 8)).join(' ')}`, REMOTE_TITLE);
  }
  const int = (n: number) => Math.max(0, Math.round(n));
  for (const s of [...st.services].sort(cmpServices)) {
    if (mode === 'list') out.push(`${serviceName(s)} ${scheduler(s)}`);
    else if (mode === 'stats') out.push(`${left(serviceName(s), 33)}${[s.newFlows, s.packets, 0, s.bytes, 0].map(largenum).join('')}`);
    else out.push(`${left(serviceName(s), 33)}${[s.newFlows, s.packets, 0, s.bytes, 0].map((n) => largenum(int(n))).join('')}`);
    for (const b of listed(s)) {
      const dest = `  -> ${left(destName(s, b), 28)}`;
      if (mode === 'list') {
        const weight = b.state === 'draining' ? 0 : b.weight;
        out.push(`${dest} ${left('Route', 7)} ${left(String(weight), 6)} ${left(String(b.activeFlows), 10)} ${left(String(b.inactiveFlows ?? 0), 10)}`);
      } else if (mode === 'stats') out.push(`${dest}${[b.newFlows, b.packets, 0, b.bytes, 0].map(largenum).join('')}`);
      else out.push(`${dest} ${[b.newFlows, b.packets, 0].map((n) => right(String(int(n)), 8)).join(' ')}${[b.bytes, 0].map((n) => largenum(int(n))).join('')}`);
    }
  }
  return out.join('\n');
}
