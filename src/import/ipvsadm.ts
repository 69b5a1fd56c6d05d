// `xdplb import ipvsadm`: the rules of `ipvsadm -S -n` (what `ipvsadm -R`
// reads back) as an xdplb config. The save format is ipvsadm's own
// (ipvsadm.c, print_service_entry with FMT_RULE): one `-A` line per virtual
// service, then one `-a` line per real server:
//   -A -t 10.0.0.1:80 -s wlc -p 300 -M 255.255.255.0 --pe sip -o -b sh-port
//   -a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1
//   -a -t 10.0.0.1:80 -r 10.0.0.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
// The rest of what -R accepts is read too (-E/-e, -D/-d, -C, a leading
// "ipvsadm", long options, -x/-y thresholds), so that hand-kept rules files
// import as ipvsadm would restore them. xdplb forwards by Direct Routing
// only: tunnelled (-i) and masqueraded (-m) servers and firewall-mark
// services (-f) are refused with their line numbers, as is SCTP. Pure.
import { parseIp, type IpAddress } from '../model/address.ts';
import type { Protocol } from '../model/protocol.ts';
import { XdplbError } from '../errors.ts';
import { count, finishImport, note, warning, type Entry, type ImportedBackend, type ImportedConfig, type Note, type Setting, type Warning } from './document.ts';
import { mapScheduler, persistenceNote } from './schedulers.ts';

export interface IpvsadmImportOptions {
  /** The input's name in messages and in the header ("rules.txt", "stdin"). */
  readonly source: string;
  /**
   * Import masqueraded (-m) servers as Direct Routing backends, where their
   * port is the service's (DR cannot change ports). For a migration from
   * LVS-NAT: the backends must then be set up for DR (xdplb realserver).
   */
  readonly natAsDr?: boolean;
}

/** Options of ipvsadm's command line (its popt table), by long name; `arg`: takes a value ('optional': -p). */
interface OptionSpec {
  readonly long: string;
  readonly short?: string;
  readonly arg: boolean | 'optional';
}

const OPTIONS: readonly OptionSpec[] = [
  ...(
    [
      ['add-service', 'A'],
      ['edit-service', 'E'],
      ['delete-service', 'D'],
      ['clear', 'C'],
      ['list', 'L'],
      ['list', 'l'],
      ['zero', 'Z'],
      ['add-server', 'a'],
      ['edit-server', 'e'],
      ['delete-server', 'd'],
      ['help', 'h'],
      ['version', 'v'],
      ['restore', 'R'],
      ['save', 'S'],
      ['masquerading', 'm'],
      ['ipip', 'i'],
      ['gatewaying', 'g'],
      ['numeric', 'n'],
      ['connection', 'c'],
      ['exact', 'X'],
      ['ipv6', '6'],
      ['ops', 'o'],
    ] as const
  ).map(([long, short]) => ({ long, short, arg: false })),
  ...(
    [
      ['tcp-service', 't'],
      ['udp-service', 'u'],
      ['fwmark-service', 'f'],
      ['scheduler', 's'],
      ['netmask', 'M'],
      ['real-server', 'r'],
      ['weight', 'w'],
      ['u-threshold', 'x'],
      ['l-threshold', 'y'],
      ['sched-flags', 'b'],
    ] as const
  ).map(([long, short]) => ({ long, short, arg: true })),
  { long: 'persistent', short: 'p', arg: 'optional' },
  ...['set', 'timeout', 'daemon', 'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'sort', 'tun-info', 'tun-nocsum', 'tun-csum', 'tun-remcsum'].map((long) => ({ long, arg: false })),
  ...['start-daemon', 'stop-daemon', 'sctp-service', 'mcast-interface', 'syncid', 'pe', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen', 'tun-type', 'tun-port'].map((long) => ({ long, arg: true })),
];

const BY_LONG = new Map(OPTIONS.map((o) => [o.long, o]));
const BY_SHORT = new Map(OPTIONS.filter((o) => o.short).map((o) => [o.short!, o]));

const COMMANDS: Readonly<Record<string, string>> = {
  'add-service': '-A',
  'edit-service': '-E',
  'delete-service': '-D',
  clear: '-C',
  'add-server': '-a',
  'edit-server': '-e',
  'delete-server': '-d',
  set: '--set',
  'start-daemon': '--start-daemon',
  'stop-daemon': '--stop-daemon',
  zero: '-Z',
  list: '-L',
  save: '-S',
  restore: '-R',
  help: '-h',
  version: '-v',
};

/** A line's options: each long name with its value ('' for a flag), in order, and the words that are no option. */
interface ParsedLine {
  readonly options: readonly { readonly name: string; readonly value: string }[];
  readonly rest: readonly string[];
}

class LineError extends Error {}

/** The options of one line, as popt reads them: -x V, -xV, --long V, --long=V; -p takes the next word unless it starts with "-". */
function parseOptions(words: readonly string[]): ParsedLine {
  const options: { name: string; value: string }[] = [];
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      spec = BY_LONG.get(eq >= 0 ? w.slice(2, eq) : w.slice(2));
      if (eq >= 0) inline = w.slice(eq + 1);
      if (!spec) throw new LineError(`unknown option ${w}`);
    } else if (w.startsWith('-') && w.length > 1) {
      spec = BY_SHORT.get(w[1]!);
      if (!spec) throw new LineError(`unknown option ${w}`);
      if (w.length > 2) {
        if (!spec.arg) throw new LineError(`unknown option ${w}`);
        inline = w.slice(2);
      }
    } else {
      rest.push(w);
      continue;
    }
    let value = '';
    if (inline !== undefined) {
      if (!spec.arg) throw new LineError(`${w}: --${spec.long} takes no value`);
      value = inline;
    } else if (spec.arg === true) {
      const next = words[i + 1];
      if (next === undefined) throw new LineError(`${w} needs a value`);
      value = next;
      i++;
    } else if (spec.arg === 'optional' && words[i + 1] !== undefined && !words[i + 1]!.startsWith('-')) {
      value = words[++i]!;
    }
    options.push({ name: spec.long, value });
  }
  return { options, rest };
}

interface Address {
  readonly ip: IpAddress;
  /** null: none given. */
  readonly port: number | null;
}

/** host[:port] as ipvsadm's parse_service reads it, numeric only: "10.0.0.1:80", "[2001:db8::1]:80", "10.0.0.1", "2001:db8::1". */
function parseAddress(text: string, what: string): Address {
  let host = text;
  let port: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') throw new LineError(`${what} ${text}: expected [IPv6]:PORT`);
    host = text.slice(1, close);
    port = text.slice(close + 2);
  } else if (!parseIp(text)) {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      port = text.slice(colon + 1);
    }
  }
  const ip = parseIp(host);
  if (!ip) throw new LineError(`${what} ${text}: ${/^[0-9.:]*$/.test(host) ? 'not an IP address' : 'a host name, not an address: save the rules with numbers, `ipvsadm -S -n`'}`);
  if (port === null) return { ip, port: null };
  if (!/^\d+$/.test(port)) throw new LineError(`${what} ${text}: the port ${JSON.stringify(port)} is ${port === '' ? 'empty' : 'a service name: save the rules with numbers, `ipvsadm -S -n`'}`);
  const n = Number(port);
  if (n > 65535) throw new LineError(`${what} ${text}: port ${port} is over 65535`);
  return { ip, port: n };
}

/** A whole number from min to max, or a LineError naming the option. */
function wholeNumber(text: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new LineError(`${what} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`);
  return Number(text);
}

type Forwarding = 'gatewaying' | 'ipip' | 'masquerading';

interface Dest {
  line: number;
  text: string;
  ip: IpAddress;
  port: number;
  forwarding: Forwarding;
  weight: number;
  thresholds: string[];
  tunnel: string[];
}

interface VirtualService {
  line: number;
  text: string;
  key: string;
  protocol: Protocol | 'sctp' | null;
  ip: IpAddress | null;
  port: number;
  fwmark: number | null;
  scheduler: string;
  persistence: number | null;
  netmask: string | null;
  pe: string | null;
  onePacket: boolean;
  schedFlags: string[];
  dests: Dest[];
}

/** How a service is named in the rules: "-t 10.0.0.1:80", "-f 1 -6". */
function serviceText(s: { protocol: string | null; ip: IpAddress | null; port: number; fwmark: number | null; v6fwmark?: boolean }): string {
  if (s.fwmark !== null) return `-f ${s.fwmark}${s.v6fwmark ? ' -6' : ''}`;
  const flag = s.protocol === 'tcp' ? '-t' : s.protocol === 'udp' ? '-u' : '--sctp-service';
  return `${flag} ${s.ip!.family === 6 ? `[${s.ip!.text}]` : s.ip!.text}:${s.port}`;
}

/** One line's virtual service: -t/-u/--sctp-service ADDRESS or -f MARK [-6]. */
function lineService(opts: ParsedLine['options']): { key: string; protocol: VirtualService['protocol']; ip: IpAddress | null; port: number; fwmark: number | null } {
  const given = opts.filter((o) => ['tcp-service', 'udp-service', 'sctp-service', 'fwmark-service'].includes(o.name));
  if (given.length === 0) throw new LineError('no virtual service (-t, -u, --sctp-service or -f)');
  if (given.length > 1) throw new LineError('more than one virtual service');
  const g = given[0]!;
  if (g.name === 'fwmark-service') {
    const mark = wholeNumber(g.value, 1, 0xffffffff, '-f');
    const v6 = opts.some((o) => o.name === 'ipv6');
    return { key: `fwmark ${mark}${v6 ? ' ipv6' : ''}`, protocol: null, ip: null, port: 0, fwmark: mark };
  }
  if (opts.some((o) => o.name === 'ipv6')) throw new LineError('-6 is for firewall-mark services (-f) only');
  const protocol = g.name === 'tcp-service' ? 'tcp' : g.name === 'udp-service' ? 'udp' : 'sctp';
  const a = parseAddress(g.value, `-${g.name === 'tcp-service' ? 't' : g.name === 'udp-service' ? 'u' : '-sctp-service'}`);
  const port = a.port ?? 0;
  return { key: `${protocol} ${a.ip.text} ${port}`, protocol, ip: a.ip, port, fwmark: null };
}

const SCHED_FLAGS = ['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'];

/** The state that the rules build, line by line, as ipvsadm -R would. */
class Rules {
  readonly services = new Map<string, VirtualService>();
  readonly notes: { origin: string; note: Note }[] = [];

  apply(line: number, text: string, words: readonly string[]): void {
    const parsed = parseOptions(words);
    const commands = parsed.options.filter((o) => o.name in COMMANDS);
    if (commands.length !== 1) throw new LineError(commands.length === 0 ? 'no command (-A, -a, ...)' : `more than one command (${commands.map((c) => COMMANDS[c.name]).join(', ')})`);
    const command = commands[0]!.name;
    const opts = parsed.options.filter((o) => o !== commands[0]);
    const origin = `line ${line}`;
    if (parsed.rest.length > 0 && command !== 'set') throw new LineError(`unexpected ${JSON.stringify(parsed.rest.join(' '))}`);
    switch (command) {
      case 'add-service':
      case 'edit-service':
        return this.service(line, text, command === 'edit-service', opts);
      case 'delete-service': {
        const s = lineService(opts);
        if (!this.services.delete(s.key)) throw new LineError(`no service ${serviceText(s)} to delete`);
        return;
      }
      case 'clear':
        this.services.clear();
        return;
      case 'add-server':
      case 'edit-server':
        return this.dest(line, text, command === 'edit-server', opts);
      case 'delete-server': {
        const s = this.existing(opts);
        const r = opts.find((o) => o.name === 'real-server');
        if (!r) throw new LineError('no real server (-r)');
        const a = parseAddress(r.value, '-r');
        const i = s.dests.findIndex((d) => d.ip.text === a.ip.text && (a.port === null || d.port === a.port || d.forwarding !== 'masquerading'));
        if (i < 0) throw new LineError(`no real server ${r.value} in ${serviceText(s)} to delete`);
        s.dests.splice(i, 1);
        return;
      }
      case 'set':
        this.notes.push({ origin, note: note(`--set ${parsed.rest.join(' ')} (IPVS connection timeouts) not imported: xdplb keeps no connection state to time out on unchanged slots; its flow table is an LRU (README "How the data plane works").`) });
        return;
      case 'start-daemon':
      case 'stop-daemon':
        this.notes.push({ origin, note: note(`--${command} (IPVS's connection synchronisation daemon) not imported: xdplb directors need none, since directors with the same config and hashSeed build identical Maglev tables and send a flow to the same backend (README "Redundancy").`) });
        return;
      case 'zero':
        return;
      default:
        throw new LineError(`${COMMANDS[command]} is not a rule (ipvsadm -R would not restore it)`);
    }
  }

  private existing(opts: ParsedLine['options']): VirtualService {
    const k = lineService(opts);
    const s = this.services.get(k.key);
    if (!s) throw new LineError(`no virtual service ${serviceText(k)}: its -A line must come first`);
    return s;
  }

  private service(line: number, text: string, edit: boolean, opts: ParsedLine['options']): void {
    const k = lineService(opts);
    let s = this.services.get(k.key);
    if (edit && !s) throw new LineError(`no virtual service ${serviceText(k)} to edit`);
    if (!edit && s) throw new LineError(`virtual service ${serviceText(k)} already added (line ${s.line})`);
    if (!s) {
      s = { line, text, ...k, scheduler: 'wlc', persistence: null, netmask: null, pe: null, onePacket: false, schedFlags: [], dests: [] };
      this.services.set(k.key, s);
    } else {
      s.text = `${s.text} (edited on line ${line}: ${text})`;
      // -E sets what its line gives; the rest returns to ipvsadm's defaults (ipvsadm builds the whole service from the line)
      Object.assign(s, { scheduler: 'wlc', persistence: null, netmask: null, pe: null, onePacket: false, schedFlags: [] });
    }
    let flagsText: string | null = null;
    for (const o of opts) {
      switch (o.name) {
        case 'tcp-service':
        case 'udp-service':
        case 'sctp-service':
        case 'fwmark-service':
        case 'ipv6':
          break;
        case 'scheduler':
          s.scheduler = o.value;
          break;
        case 'persistent':
          s.persistence = o.value === '' ? 300 : wholeNumber(o.value, 1, 86400 * 31, '-p');
          break;
        case 'netmask':
          s.netmask = o.value;
          break;
        case 'pe':
          s.pe = o.value;
          break;
        case 'ops':
          s.onePacket = true;
          break;
        case 'sched-flags':
          flagsText = o.value;
          break;
        default:
          throw new LineError(`--${o.name} does not belong on a service (-A/-E) line`);
      }
    }
    if (flagsText !== null) {
      const flags = flagsText.split(',').filter(Boolean);
      for (const f of flags) {
        if (!SCHED_FLAGS.includes(f)) throw new LineError(`-b ${flagsText}: unknown scheduler flag ${f}`);
        const owner = f.startsWith('sh-') ? 'sh' : f.startsWith('mh-') ? 'mh' : null;
        if (owner && owner !== s.scheduler) throw new LineError(`-b ${f} is a flag of the ${owner} scheduler, not of ${s.scheduler}`);
      }
      s.schedFlags = flags;
    }
    if (s.netmask !== null && s.persistence === null) throw new LineError('-M (the persistence netmask) without -p');
    if (s.fwmark === null && s.port === 0 && s.persistence === null) throw new LineError('port 0 (every port) on a service that is not persistent: ipvsadm refuses it ("Zero port specified for non-persistent service")');
  }

  private dest(line: number, text: string, edit: boolean, opts: ParsedLine['options']): void {
    const s = this.existing(opts);
    const r = opts.find((o) => o.name === 'real-server');
    if (!r) throw new LineError('no real server (-r)');
    const a = parseAddress(r.value, '-r');
    const forwardings = opts.filter((o) => o.name === 'gatewaying' || o.name === 'ipip' || o.name === 'masquerading');
    const forwarding = (forwardings[forwardings.length - 1]?.name ?? 'gatewaying') as Forwarding;
    // ipvsadm gives a gatewayed or tunnelled server of an address service the service's port, whatever -r says
    const port = s.fwmark === null && forwarding !== 'masquerading' ? s.port : (a.port ?? s.port);
    const i = s.dests.findIndex((d) => d.ip.text === a.ip.text && d.port === port);
    if (edit && i < 0) throw new LineError(`no real server ${r.value} in ${serviceText(s)} to edit`);
    if (!edit && i >= 0) throw new LineError(`real server ${r.value} already in ${serviceText(s)} (line ${s.dests[i]!.line})`);
    const d: Dest = { line, text, ip: a.ip, port, forwarding, weight: 1, thresholds: [], tunnel: [] };
    for (const o of opts) {
      switch (o.name) {
        case 'weight':
          d.weight = wholeNumber(o.value, 0, 2147483647, '-w');
          break;
        case 'u-threshold':
        case 'l-threshold':
          wholeNumber(o.value, 0, 2147483647, o.name === 'u-threshold' ? '-x' : '-y');
          d.thresholds.push(`${o.name === 'u-threshold' ? '-x' : '-y'} ${o.value}`);
          break;
        case 'tun-type':
        case 'tun-port':
          d.tunnel.push(`--${o.name} ${o.value}`);
          break;
        case 'tun-nocsum':
        case 'tun-csum':
        case 'tun-remcsum':
          d.tunnel.push(`--${o.name}`);
          break;
        case 'real-server':
        case 'gatewaying':
        case 'ipip':
        case 'masquerading':
        case 'tcp-service':
        case 'udp-service':
        case 'sctp-service':
        case 'fwmark-service':
        case 'ipv6':
          break;
        default:
          throw new LineError(`--${o.name} does not belong on a real-server (-a/-e) line`);
      }
    }
    if (d.tunnel.length > 0 && forwarding !== 'ipip') throw new LineError(`${d.tunnel.join(' ')}: tunnel options without -i`);
    if (s.ip && a.ip.family !== s.ip.family && forwarding !== 'ipip') throw new LineError(`${r.value}: another address family than the service's (ipvsadm allows that for tunnels only)`);
    if (i >= 0) s.dests[i] = d;
    else s.dests.push(d);
  }
}

/** A service's name in the config: "tcp-10.0.0.1-80", "udp-2001:db8::1-53". */
export function importedServiceName(protocol: string, ip: IpAddress, port: number): string {
  return `${protocol}-${ip.text}-${port}`;
}

/** Why a kind of rule is refused: said once, after the lines that have it. */
const REFUSED_BECAUSE: Readonly<Record<string, string>> = {
  '-f': 'firewall-mark services (-f): IPVS matched packets by a mark that iptables or nft put on them, which an XDP program never sees (it runs before the firewall). Give each address, protocol and port the mark covered its own -A line (xdplb serves a VIP and protocol on every port with port 0).',
  '-i': "tunnelled servers (-i: IP-in-IP, GUE or GRE): xdplb is Direct Routing only (-g): it rewrites the Ethernet header, so a backend must be on the director's L2 segment and hold the VIP on lo.",
  '-m': 'masquerading servers (-m, NAT): xdplb is Direct Routing only (-g): it never rewrites addresses or ports, and replies go from the backend to the client directly. To migrate them to DR, set them up with `xdplb realserver` and import with --nat-as-dr.',
  sctp: 'SCTP services: xdplb balances TCP and UDP only.',
};

interface Refusal {
  readonly line: number;
  readonly text: string;
  /** What is wrong, in a few words. */
  readonly what: string;
  /** A key of REFUSED_BECAUSE, explained once. */
  readonly because?: string;
}

/** What a virtual service becomes: an entry of the config, or the reasons it cannot be one (refusals). */
function convert(s: VirtualService, natAsDr: boolean): { entry: Entry | null; refusals: Refusal[] } {
  const refusals: Refusal[] = [];
  const at = (line: number) => `line ${line}`;
  if (s.fwmark !== null) {
    refusals.push({ line: s.line, text: s.text, what: `firewall mark ${s.fwmark}`, because: '-f' });
    return { entry: null, refusals };
  }
  if (s.protocol === 'sctp') {
    refusals.push({ line: s.line, text: s.text, what: 'SCTP', because: 'sctp' });
    return { entry: null, refusals };
  }
  const flags = { port: s.schedFlags.some((f) => f.endsWith('-port')), fallback: s.schedFlags.some((f) => f.endsWith('-fallback')) };
  const mapping = mapScheduler(s.scheduler, flags, s.persistence !== null);
  if (!mapping) refusals.push({ line: s.line, text: s.text, what: `unknown scheduler ${JSON.stringify(s.scheduler)}` });
  for (const d of s.dests) {
    if (d.forwarding === 'ipip') refusals.push({ line: d.line, text: d.text, what: 'tunnelled (-i)', because: '-i' });
    else if (d.forwarding === 'masquerading' && !natAsDr) refusals.push({ line: d.line, text: d.text, what: 'masquerading (-m, NAT)', because: '-m' });
    else if (d.forwarding === 'masquerading' && s.port !== 0 && d.port !== s.port)
      refusals.push({ line: d.line, text: d.text, what: `-m to port ${d.port} of a service on port ${s.port}: Direct Routing cannot change the port (--nat-as-dr needs the same port)` });
    else if (d.weight > 1_000_000) refusals.push({ line: d.line, text: d.text, what: `weight ${d.weight}: xdplb takes weights up to 1000000` });
  }
  if (refusals.length > 0 || !mapping) return { entry: null, refusals };

  const notes: Note[] = [...mapping.notes];
  if (s.persistence !== null) notes.push(...persistenceNote(s.persistence, s.netmask, s.pe));
  else if (s.pe !== null) notes.push(warning(`--pe ${s.pe} without -p: IPVS ignores a persistence engine on a service that is not persistent; not imported.`));
  if (s.onePacket)
    notes.push(warning('-o (one-packet scheduling): IPVS chose a backend for every datagram; xdplb hashes the 5-tuple, so every datagram of one client address and port goes to the same backend.'));
  if (s.schedFlags.some((f) => f.startsWith('flag-'))) notes.push(note(`-b ${s.schedFlags.filter((f) => f.startsWith('flag-')).join(',')}: flags of a scheduler xdplb does not have; not imported.`));
  if (s.port === 0) notes.push(note('Port 0: every port of the VIP and protocol (IPVS allowed this for persistent services only).'));

  const backends: ImportedBackend[] = s.dests.map((d) => {
    const bnotes: Note[] = [];
    let weight = d.weight;
    if (mapping.equalShares && weight > 0) {
      if (weight !== 1) bnotes.push(note(`-w ${weight} (${s.scheduler} ignored it): weight 1.`));
      weight = 1;
    }
    if (d.weight === 0) bnotes.push(note('weight 0 (quiescent in IPVS): keeps its established flows, takes no new ones.'));
    if (d.thresholds.length > 0) bnotes.push(warning(`${d.thresholds.join(' ')} (connection thresholds) not imported: xdplb counts no connections per backend.`));
    return { backend: { address: d.ip.text, weight }, notes: bnotes };
  });
  const ip = s.ip!;
  const protocol = s.protocol as Protocol;
  const fromNat = s.dests.filter((d) => d.forwarding === 'masquerading').map((d) => d.ip.text);
  if (fromNat.length > 0) notes.push(natAsDrWarning(fromNat, ip.text));
  return {
    entry: {
      kind: 'service',
      imported: {
        origin: at(s.line),
        source: s.text,
        service: { name: importedServiceName(protocol, ip, s.port), vip: ip.text, port: s.port, protocol, scheduler: mapping.scheduler, healthCheck: { type: 'none' } },
        backends,
        notes,
      },
    },
    refusals,
  };
}

/** The warning on backends that were NAT servers, imported as Direct Routing ones (--nat-as-dr). */
export function natAsDrWarning(addresses: readonly string[], vip: string): Note {
  return warning(
    `${addresses.join(', ')}: NAT servers imported as Direct Routing backends (--nat-as-dr): each must hold the VIP on lo and not answer ARP for it (\`xdplb realserver --vip ${vip}\` there), and reply to clients through its own route, not via the director.`,
  );
}

/** Settings a large import needs: capacities above the defaults (a service takes a slot, every backend one). */
export function capacitySettings(services: number, backends: number): Setting[] {
  const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n + 1));
  const out: Setting[] = [];
  if (services > 4095 || backends > 65535)
    out.push({ key: 'capacity', value: { services: Math.max(4096, pow2(services)), backends: Math.max(65536, pow2(backends)), flows: 262144 }, comment: 'above the defaults, for this many services and backends', commentedOut: false });
  return out;
}

/**
 * The xdplb config of `ipvsadm -S -n` output: its YAML text (validated) and
 * the warnings to print. Throws CONFIG_UNREADABLE for a line that is not
 * ipvsadm's, CONFIG_INVALID for rules xdplb cannot serve (each with its
 * line), as one error listing them all.
 */
export function importIpvsadm(text: string, options: IpvsadmImportOptions): { text: string; warnings: Warning[] } {
  const rules = new Rules();
  const unreadable: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    // ipvsadm -R drops the word "ipvsadm" wherever it stands (config_stream.c)
    const words = line.split(/\s+/).filter((w) => w !== 'ipvsadm');
    if (words.length === 0) return;
    try {
      rules.apply(i + 1, words.join(' '), words);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      unreadable.push(`line ${i + 1}: ${err.message}: ${line}`);
    }
  });
  if (unreadable.length > 0) throw new XdplbError('CONFIG_UNREADABLE', `${options.source} is not ipvsadm -S -n output:\n  ${unreadable.join('\n  ')}`, unreadable);

  const services = [...rules.services.values()].sort((a, b) => a.line - b.line);
  const entries: Entry[] = [];
  const refusals: Refusal[] = [];
  for (const s of services) {
    const c = convert(s, options.natAsDr ?? false);
    refusals.push(...c.refusals);
    if (c.entry) entries.push(c.entry);
  }
  if (refusals.length > 0) {
    refusals.sort((a, b) => a.line - b.line);
    const details = [
      ...refusals.map((r) => `line ${r.line}: ${r.what}: ${r.text}`),
      ...Object.entries(REFUSED_BECAUSE)
        .filter(([k]) => refusals.some((r) => r.because === k))
        .map(([, why]) => `Refused: ${why}`),
    ];
    throw new XdplbError('CONFIG_INVALID', `${options.source}: cannot import:\n  ${details.join('\n  ')}`, details);
  }
  const backends = entries.reduce((n, e) => n + (e.kind === 'service' ? e.imported.backends.length : 0), 0);
  const config: ImportedConfig = {
    header: [
      `xdplb config imported by \`xdplb import ipvsadm\` from ${options.source} (ipvsadm -S -n): ${count(entries.length, 'service')}, ${count(backends, 'backend')}.`,
      'Read every comment (WARNING: marks what behaves differently), set interface, then check it with `xdplb config validate FILE`.',
    ],
    settings: [{ key: 'interface', value: 'eth1', comment: "the director's NIC on the VIPs' segment (or xdplb attach -i)", commentedOut: true }, ...capacitySettings(entries.length, backends)],
    entries,
    notes: [{ origin: '', note: note('ipvsadm has no health checks (keepalived or a script did them): add a healthCheck to each service (README "Configuration"), else every backend is always taken to be up.') }, ...rules.notes],
  };
  return finishImport(config, options.source);
}
