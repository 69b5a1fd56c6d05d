// `xdplb trace`: what the XDP program would do with a packet of one flow,
// decided here from the contents of its maps, step by step as
// bpf/xdplb.bpf.c decides (the prefilter, the service lookup with its
// port-less fallback, the hash and the slot, choose_dest() with the flow
// table, the no-backend policy, XDP_TX or XDP_REDIRECT), and said in words.
// Pure: the maps are read through TraceMaps (the live pins in read.ts, a
// fake in tests); nothing is sent and nothing is written.
// test/trace/agreement.test.ts runs the same packets through the program
// (BPF_PROG_TEST_RUN) and compares.
import {
  CONSTANTS,
  decodeServiceFlags,
  hashFlow,
  hashSource,
  hashToSlot,
  serviceIndexHash,
  vipFilterBit,
  type DestInfo,
  type DestValue,
  type FlowKey,
  type FlowValue,
  type ServiceValue,
} from '../dataplane/abi.ts';
import { formatIp, formatMac, parseIp, type IpAddress } from '../model/address.ts';
import type { ServiceKey } from '../model/keys.ts';
import { IPPROTO, protocolLabel, type Protocol } from '../model/protocol.ts';

/** The flow asked about: a client's packets to VIP:PORT. */
export interface TraceQuery {
  protocol: Protocol;
  vip: IpAddress;
  port: number;
  client: IpAddress;
  clientPort: number;
  /** The frame's destination MAC; absent: the NIC's own (what a router or client on the segment sends). */
  frameTo?: Buffer;
}

/** The slot of a Maglev table: its owner and, when it changed owner, the previous one (0: none). */
export interface Slot {
  dest: number;
  prev: number;
}

/**
 * The reads trace makes, each the lookup the program makes (key in, value
 * out, null when absent). A narrow interface: read.ts serves it from the
 * pinned maps, tests from a fake.
 */
export interface TraceMaps {
  /** Slots per Maglev table (the program's maglev_size). */
  readonly maglevSize: number;
  /**
   * The MAC of the director's NIC when the program passes frames addressed
   * to any other (the destination-MAC rule); null when it checks none.
   */
  readonly nicMac: Buffer | null;
  /** The ifindex of the NIC the program is attached to (where frames arrive); null when unknown. */
  readonly ingressIfindex: number | null;
  /** Now, on the clock of the flow table's last_seen_ns (CLOCK_MONOTONIC, process.hrtime.bigint()). */
  readonly nowNs: bigint;
  /** vip_filter[word]. */
  vipFilterWord(word: number): bigint;
  /** service_index[h]: an entry number, 0 (none) or SERVICE_INDEX_COLLISION. */
  serviceIndex(h: number): number;
  /** service_entries[n]. */
  serviceEntry(n: number): { key: ServiceKey; value: ServiceValue } | null;
  /** The hash map `services`. */
  service(key: ServiceKey): ServiceValue | null;
  /** Every key of `services` for this VIP (to say why none matches). */
  servicesOfVip(vip: IpAddress): ServiceKey[];
  /** service_info[id].name (the control plane's record). */
  serviceName(id: number): string | null;
  /** maglev_tables[serviceId][index]; null when the service has no table (or the table no such slot). */
  slot(serviceId: number, index: number): Slot | null;
  /** dests[id] with its control-plane record dest_info[id]; null beyond the map. */
  dest(id: number): { value: DestValue; info: DestInfo } | null;
  /** flows[key]. */
  flow(key: FlowKey): FlowValue | null;
  /** The name of an interface of this network namespace. */
  interfaceName(ifindex: number): string | null;
}

export type DestStateName = 'active' | 'draining' | 'unused';

/** A destination as trace shows it. */
export interface BackendView {
  dest: number;
  /** The backend's address (dest_info); null when the record is gone. */
  address: string | null;
  mac: string;
  state: DestStateName;
  /** What the operator asked (dest_info.configured), the health checks' verdict, the weight. */
  configured: DestInfo['configured'] | null;
  health: DestInfo['health'] | null;
  weight: number | null;
  /** The service id it belongs to. */
  service: number;
  /** The other NIC it is reached through (XDP_REDIRECT); absent: out of the NIC it arrived on. */
  via?: string;
}

export type PacketKind = 'SYN' | 'non-SYN segment' | 'datagram' | 'ICMP error' | 'fragment';
export type Verdict = 'TX' | 'REDIRECT' | 'PASS' | 'DROP';

/** What the program does with one kind of packet of the flow. */
export interface Outcome {
  packet: PacketKind;
  verdict: Verdict;
  /** The global counter it adds to (status --stats). */
  counter: string;
  /** Where it goes (TX, REDIRECT); null when it is passed or dropped. */
  backend: BackendView | null;
  /** The rule that decided, in a sentence. */
  because: string;
  /** What the packet leaves in the flow table: a new entry for this 5-tuple naming this destination id, or nothing. */
  records: number | null;
}

export interface ServiceView {
  name: string | null;
  /** "TCP 10.240.0.201:80" (port 0: "*"). */
  key: string;
  id: number;
  portless: boolean;
  scheduler: 'maglev' | 'maglev-source';
  noBackend: 'drop' | 'pass';
  seed: number;
  /** How the program finds it: the direct-mapped index, or the hash map (a collision in the index). */
  via: 'index' | 'services map';
}

export interface FlowEntryView {
  dest: number;
  backend: BackendView | null;
  /** Seconds since a packet of the flow last passed; null when its clock is ahead (another boot's entry). */
  ageSeconds: number | null;
  /** Why the program would not use it (another service's, gone); null when it would. */
  unusable: string | null;
}

/** One path through the program: the service, hash, slot and flow state that decide, and the outcomes. */
export interface TracePath {
  service: ServiceView | null;
  /** Why no service takes the packet. */
  noService?: string;
  hash?: { over: '5-tuple' | 'client address'; seed: number; value: number };
  slot?: { index: number; of: number; owner: BackendView | null; previousOwner: BackendView | null; changed: boolean } | null;
  /** The flow table's entry for the path's key (looked up by the program only on a changed slot). */
  flowEntry?: FlowEntryView | null;
  outcomes: Outcome[];
}

export interface Trace {
  flow: { protocol: string; client: string; vip: string };
  /** When set, the frame must be addressed to this MAC (the NIC's), or it is passed to the kernel. */
  frameMustBeAddressedTo: string | null;
  prefilter: { bit: number; set: boolean };
  /** The packets of the 5-tuple: SYN and non-SYN segments (TCP) or datagrams (UDP), and ICMP errors quoting the flow. */
  packets: TracePath;
  /** IP fragments from the client to the VIP (they carry no ports). */
  fragments: TracePath;
}

const STATE_NAME: Record<number, DestStateName> = {
  [CONSTANTS.DEST_ACTIVE]: 'active',
  [CONSTANTS.DEST_DRAINING]: 'draining',
};

function hostPort(ip: string, port: number | '*'): string {
  return `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}

function serviceKeyText(key: ServiceKey): string {
  return `${protocolLabel(key.proto)} ${hostPort(formatIp(key.addr, key.family), key.port === 0 ? '*' : key.port)}`;
}

function sameKey(a: ServiceKey, b: ServiceKey): boolean {
  return a.port === b.port && a.proto === b.proto && a.family === b.family && a.addr.equals(b.addr);
}

/** lookup_service(): through the index, else the hash map when the index holds a collision or another key. */
function lookupService(maps: TraceMaps, key: ServiceKey): { value: ServiceValue; via: ServiceView['via'] } | null {
  const entry = maps.serviceIndex(serviceIndexHash(key));
  if (entry === 0) return null; // the program stops here: no service hashes to this index slot
  if (entry !== CONSTANTS.SERVICE_INDEX_COLLISION) {
    const e = maps.serviceEntry(entry);
    if (e && sameKey(e.key, key)) return { value: e.value, via: 'index' };
  }
  const value = maps.service(key);
  return value ? { value, via: 'services map' } : null;
}

function backendView(maps: TraceMaps, id: number): BackendView | null {
  if (id === 0) return null;
  const d = maps.dest(id);
  if (!d) return null;
  const recorded = d.info.service !== 0;
  const via = d.value.ifindex && d.value.ifindex !== maps.ingressIfindex ? (maps.interfaceName(d.value.ifindex) ?? `ifindex ${d.value.ifindex}`) : undefined;
  return {
    dest: id,
    address: recorded ? formatIp(d.info.addr, d.info.family) : null,
    mac: formatMac(d.value.mac),
    state: STATE_NAME[d.value.state] ?? 'unused',
    configured: recorded ? d.info.configured : null,
    health: recorded ? d.info.health : null,
    weight: recorded ? d.info.weight : null,
    service: d.value.service,
    ...(via ? { via } : {}),
  };
}

/** usable_dest(id, service, draining_ok = 1): null when the program would use it, else why not. */
function unusable(maps: TraceMaps, id: number, service: number): string | null {
  if (id === 0) return 'no destination (0)';
  const d = maps.dest(id);
  if (!d) return `no destination ${id} in the map`;
  if (d.value.service !== service) return `destination ${id} belongs to service ${d.value.service}, not to this one (${service})`;
  if (d.value.state !== CONSTANTS.DEST_ACTIVE && d.value.state !== CONSTANTS.DEST_DRAINING) return `destination ${id} is gone (state unused)`;
  return null;
}

function ageSeconds(maps: TraceMaps, lastSeenNs: bigint): number | null {
  return lastSeenNs > maps.nowNs ? null : Number(maps.nowNs - lastSeenNs) / 1e9;
}

interface Choice {
  dest: number;
  usable: boolean;
  because: string;
  records: number | null;
}

/** choose_dest() for one kind of packet. */
function chooseDest(maps: TraceMaps, kind: PacketKind, proto: number, svc: ServiceValue, slot: Slot, flow: FlowValue | null): Choice {
  const syn = kind === 'SYN';
  const icmp = kind === 'ICMP error';
  const ok = (id: number) => unusable(maps, id, svc.id) === null;
  if (!slot.prev) {
    return { dest: slot.dest, usable: ok(slot.dest), because: "the slot has not changed owner since its table was built: its owner takes every packet, without flow state", records: null };
  }
  if (syn && !icmp) {
    return {
      dest: slot.dest,
      usable: ok(slot.dest),
      because: "a SYN on a changed slot starts a new connection: the slot's owner, written into the flow table in place of any entry of this 5-tuple",
      records: slot.dest || null,
    };
  }
  if (flow && ok(flow.dest)) return { dest: flow.dest, usable: true, because: 'the flow table knows this flow: it keeps its backend (the entry is refreshed)', records: null };
  const missed = flow ? `the flow table's entry is not usable (${unusable(maps, flow.dest, svc.id)})` : 'the flow table has no entry for it';
  const stays = icmp || (proto === IPPROTO.tcp && !syn);
  let dest = slot.dest;
  let because: string;
  if (stays && ok(slot.prev)) {
    dest = slot.prev;
    const what = icmp ? 'an ICMP error belongs to a flow' : kind === 'fragment' ? 'a TCP fragment belongs to a connection' : 'a TCP segment that is not a SYN belongs to a connection';
    because = `${missed}: ${what} that started before the slot changed, and stays with its previous owner while that one exists`;
  } else if (stays) {
    because = `${missed}, and the slot's previous owner is not usable (${unusable(maps, slot.prev, svc.id)}): the slot's owner`;
  } else {
    because = `${missed}: ${proto === IPPROTO.udp ? 'UDP has no connection start, so a datagram not seen yet is a new flow' : 'a new flow'}, for the slot's owner`;
  }
  if (!icmp && dest) because += ', recorded in the flow table';
  return { dest, usable: ok(dest), because, records: icmp || !dest ? null : dest };
}

/** The verdict once a destination is chosen (or none is usable). */
function deliver(maps: TraceMaps, kind: PacketKind, svc: ServiceValue, c: Choice): Outcome {
  if (!c.usable) {
    const pass = Boolean(svc.flags & CONSTANTS.SVC_F_NO_BACKEND_PASS);
    const why = c.dest === 0 ? 'the slot has no owner (no backend can take new flows)' : `its destination is not usable (${unusable(maps, c.dest, svc.id)})`;
    return {
      packet: kind,
      verdict: pass ? 'PASS' : 'DROP',
      counter: pass ? 'pass_no_backend' : 'drop_no_backend',
      backend: null,
      because: `${c.because}; but ${why}: ${pass ? 'passed to the kernel (noBackend: pass)' : 'dropped (noBackend: drop)'}`,
      records: c.records,
    };
  }
  const backend = backendView(maps, c.dest)!;
  const d = maps.dest(c.dest)!;
  const redirect = d.value.ifindex !== 0 && d.value.ifindex !== maps.ingressIfindex;
  return { packet: kind, verdict: redirect ? 'REDIRECT' : 'TX', counter: redirect ? 'xdp_redirect' : 'xdp_tx', backend, because: c.because, records: c.records };
}

function serviceView(maps: TraceMaps, key: ServiceKey, found: { value: ServiceValue; via: ServiceView['via'] }): ServiceView {
  return {
    name: maps.serviceName(found.value.id),
    key: serviceKeyText(key),
    id: found.value.id,
    portless: key.port === 0,
    ...decodeServiceFlags(found.value.flags),
    seed: found.value.seed,
    via: found.via,
  };
}

/** The rest of the program once a service is found: the hash, the slot, choose_dest() for each kind of packet. */
function throughService(
  maps: TraceMaps,
  key: ServiceKey,
  found: { value: ServiceValue; via: ServiceView['via'] },
  flowKey: FlowKey,
  kinds: PacketKind[],
  bySource: boolean,
  notOurs: string | null,
): TracePath {
  const svc = found.value;
  const service = serviceView(maps, key, found);
  const hash = bySource ? hashSource(flowKey, svc.seed) : hashFlow(flowKey, svc.seed);
  const index = hashToSlot(hash, maps.maglevSize);
  const slot = maps.slot(svc.id, index);
  const path: TracePath = { service, hash: { over: bySource ? 'client address' : '5-tuple', seed: svc.seed, value: hash }, outcomes: [] };
  const flow = maps.flow(flowKey);
  path.flowEntry = flow && {
    dest: flow.dest,
    backend: backendView(maps, flow.dest),
    ageSeconds: ageSeconds(maps, flow.lastSeenNs),
    unusable: unusable(maps, flow.dest, svc.id),
  };
  path.slot = slot && { index, of: maps.maglevSize, owner: backendView(maps, slot.dest), previousOwner: backendView(maps, slot.prev), changed: slot.prev !== 0 };
  const outcome = (packet: PacketKind, verdict: Verdict, counter: string, because: string): Outcome => ({ packet, verdict, counter, backend: null, because, records: null });
  if (notOurs) path.outcomes = kinds.map((kind) => outcome(kind, 'PASS', 'pass_not_our_mac', notOurs)); // sent_to_us(): before the table is read
  else if (!slot) path.outcomes = kinds.map((kind) => outcome(kind, 'DROP', 'drop_no_table', `service ${svc.id} has no Maglev table in the data plane`));
  else path.outcomes = kinds.map((kind) => deliver(maps, kind, svc, chooseDest(maps, kind, flowKey.proto, svc, slot, flow)));
  return path;
}

/** Why no service takes the packet: what the VIP does serve. */
function noServiceReason(maps: TraceMaps, q: TraceQuery, proto: number): string {
  const keys = maps.servicesOfVip(q.vip);
  const label = protocolLabel(proto);
  if (keys.length === 0) return `no service has VIP ${q.vip.text} (its prefilter bit is shared with another VIP's)`;
  const same = keys.filter((k) => k.proto === proto).map((k) => (k.port === 0 ? '*' : String(k.port)));
  const other = keys.filter((k) => k.proto !== proto).map(serviceKeyText);
  if (same.length) return `${hostPort(q.vip.text, q.port)} is not a service: ${q.vip.text} serves ${label} on port${same.length > 1 ? 's' : ''} ${same.join(', ')} only`;
  return `${q.vip.text} serves no ${label} port (only ${other.join(', ')})`;
}

/** What the program would do with the packets of `q`, and why. */
export function trace(q: TraceQuery, maps: TraceMaps): Trace {
  if (q.vip.family !== q.client.family) throw new RangeError(`the client ${q.client.text} and the VIP ${q.vip.text} are of different address families`);
  const proto = IPPROTO[q.protocol];
  const bit = vipFilterBit(q.vip.bytes, q.vip.family);
  const set = ((maps.vipFilterWord(bit >> 6) >> BigInt(bit & 63)) & 1n) === 1n;
  const kinds: PacketKind[] = q.protocol === 'tcp' ? ['SYN', 'non-SYN segment', 'ICMP error'] : ['datagram', 'ICMP error'];
  const base = {
    flow: { protocol: protocolLabel(proto), client: hostPort(q.client.text, q.clientPort), vip: hostPort(q.vip.text, q.port) },
    frameMustBeAddressedTo: maps.nicMac ? formatMac(maps.nicMac) : null,
    prefilter: { bit, set },
  };
  if (!set) {
    const because = `${q.vip.text} is not in the VIP prefilter (bit ${bit} clear): not a VIP, passed to the kernel untouched`;
    const pass = (packet: PacketKind): Outcome => ({ packet, verdict: 'PASS', counter: 'pass_not_vip', backend: null, because, records: null });
    return { ...base, packets: { service: null, noService: because, outcomes: kinds.map(pass) }, fragments: { service: null, noService: because, outcomes: [pass('fragment')] } };
  }
  const key = (port: number): ServiceKey => ({ addr: q.vip.bytes, family: q.vip.family, proto, port });
  const flowKey: FlowKey = { saddr: q.client.bytes, daddr: q.vip.bytes, sport: q.clientPort, dport: q.port, proto, family: q.vip.family };
  const notOurs =
    maps.nicMac && q.frameTo && !q.frameTo.equals(maps.nicMac)
      ? `the frame is addressed to ${formatMac(q.frameTo)}, not to the NIC's ${formatMac(maps.nicMac)}: not this director's to forward, passed to the kernel untouched`
      : null;

  // find_service(): the port's service, else the port-less one of the VIP and protocol
  let packets: TracePath;
  const exact = q.port === 0 ? null : lookupService(maps, key(q.port));
  const portless = exact ? null : lookupService(maps, key(0));
  const found = exact ?? portless;
  if (found) {
    packets = throughService(maps, key(exact ? q.port : 0), found, flowKey, kinds, Boolean(found.value.flags & CONSTANTS.SVC_F_SOURCE_HASH), notOurs);
  } else {
    const because = `${noServiceReason(maps, q, proto)}, and the VIP has no port-less ${protocolLabel(proto)} service: passed to the kernel untouched`;
    packets = { service: null, noService: because, outcomes: kinds.map((packet) => ({ packet, verdict: 'PASS', counter: 'pass_not_vip', backend: null, because, records: null })) };
  }

  // the fragment policy: only the port-less service, hashed on the client address
  let fragments: TracePath;
  const whole = lookupService(maps, key(0));
  if (whole) {
    fragments = throughService(maps, key(0), whole, { ...flowKey, sport: 0, dport: 0 }, ['fragment'], true, notOurs);
  } else if (maps.servicesOfVip(q.vip).length === 0) {
    // the slow paths ask the exact VIP set (vip_set: the VIPs of the services), not the prefilter
    const because = `no service has VIP ${q.vip.text} (its prefilter bit is shared with another VIP's, and fragments are checked against the exact VIP set): not a VIP, passed to the kernel untouched`;
    fragments = { service: null, noService: because, outcomes: [{ packet: 'fragment', verdict: 'PASS', counter: 'pass_not_vip', backend: null, because, records: null }] };
  } else {
    const because = `fragments carry no ports, so only a port-less service can take them, and ${q.vip.text} has no port-less ${protocolLabel(proto)} service: dropped`;
    fragments = { service: null, noService: because, outcomes: [{ packet: 'fragment', verdict: 'DROP', counter: 'drop_fragment', backend: null, because, records: null }] };
  }
  return { ...base, packets, fragments };
}

// ---- the command line's side: parsing and text ---------------------------

/** "ADDRESS:PORT" or "[IPv6]:PORT" → { ip, port }, or what is wrong with it. */
export function parseEndpoint(text: string): { ip: IpAddress; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) {
    const bare = parseIp(text.replace(/^\[(.*)\]$/, '$1'));
    if (bare) return `${text} has no port: write ${bare.family === 6 ? `[${bare.text}]` : bare.text}:PORT`;
    return `${text} is not ADDRESS:PORT (an IPv6 address in brackets: [2001:db8::1]:80)`;
  }
  const host = m[1] ?? m[2]!;
  const ip = parseIp(host);
  if (!ip) return `${host} is not an IPv4 or IPv6 address`;
  if (m[2] !== undefined && ip.family === 6) return `an IPv6 address goes in brackets: [${ip.text}]:${m[3]}`;
  if (m[1] !== undefined && ip.family === 4) return `an IPv4 address goes without brackets: ${ip.text}:${m[3]}`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is not 0 to 65535`;
  return { ip, port };
}

function backendText(b: BackendView | null): string {
  if (!b) return 'none';
  const name = b.address ?? 'no address recorded';
  const facts = [`dest ${b.dest}`, `MAC ${b.mac}`, b.state, ...(b.health && b.health !== 'none' ? [`health ${b.health}`] : []), ...(b.weight !== null ? [`weight ${b.weight}`] : []), ...(b.via ? [`via ${b.via}`] : [])];
  return `${name} (${facts.join(', ')})`;
}

const VERDICT_TEXT: Record<Verdict, string> = { TX: 'XDP_TX', REDIRECT: 'XDP_REDIRECT', PASS: 'XDP_PASS', DROP: 'XDP_DROP' };

function pathLines(p: TracePath, indent: string): string[] {
  const lines: string[] = [];
  const s = p.service;
  if (!s) lines.push(`${indent}service: none: ${p.noService ?? ''}`);
  else lines.push(`${indent}service: ${s.name ?? '(no name recorded)'}, ${s.key}${s.portless ? ' (port-less: every port)' : ''}, id ${s.id}, found through the ${s.via}; scheduler ${s.scheduler}, no backend: ${s.noBackend}`);
  if (p.hash) lines.push(`${indent}hash: MurmurHash3 of the ${p.hash.over}, seed 0x${p.hash.seed.toString(16)}: 0x${p.hash.value.toString(16).padStart(8, '0')}`);
  if (p.slot === null) lines.push(`${indent}slot: none (the service has no table)`);
  else if (p.slot) {
    lines.push(`${indent}slot: ${p.slot.index} of ${p.slot.of}, owner ${backendText(p.slot.owner)}`);
    lines.push(
      p.slot.changed
        ? `${indent}      changed owner, previous owner ${backendText(p.slot.previousOwner)}: its packets consult the flow table`
        : `${indent}      unchanged since its table was built (no previous owner): the flow table is not consulted`,
    );
  }
  if (p.flowEntry !== undefined) {
    const f = p.flowEntry;
    const age = f && f.ageSeconds !== null ? `, last seen ${f.ageSeconds.toFixed(1)} s ago` : '';
    lines.push(f ? `${indent}flow table: an entry for this flow naming ${backendText(f.backend ?? null)}${age}${f.unusable ? `; not usable: ${f.unusable}` : ''}` : `${indent}flow table: no entry for this flow`);
  }
  for (const o of p.outcomes) {
    lines.push(`${indent}${`${o.packet}:`.padEnd(17)}${VERDICT_TEXT[o.verdict]} [${o.counter}]${o.backend ? ` → ${backendText(o.backend)}` : ''}`);
    if (s) lines.push(`${indent}${' '.repeat(17)}${o.because}`);
  }
  return lines;
}

/** The trace in words, for a terminal. */
export function renderTrace(t: Trace): string {
  const lines = [`${t.flow.protocol} ${t.flow.client} → ${t.flow.vip}`];
  if (t.frameMustBeAddressedTo)
    lines.push(`frame: must be addressed to ${t.frameMustBeAddressedTo} (the NIC's MAC): a frame for a service sent to any other MAC is passed to the kernel [pass_not_our_mac]`);
  lines.push(`prefilter: bit ${t.prefilter.bit} ${t.prefilter.set ? 'set (a VIP)' : 'clear (not a VIP)'}`);
  lines.push(...pathLines(t.packets, ''));
  if (t.prefilter.set) {
    lines.push('IP fragments of the client to the VIP (they carry no ports):');
    lines.push(...pathLines(t.fragments, '  '));
  }
  return lines.join('\n');
}
