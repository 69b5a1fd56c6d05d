// `xdplb status`: what the data plane holds and has counted, read from its
// pins (no daemon needed), in the shape of `ipvsadm -L -n`.
import { CONSTANTS, decodeFlow, decodeServiceFlags, trafficAt, type Traffic } from '../dataplane/abi.ts';
import { allKeys, type DataPlane } from '../dataplane/dataplane.ts';
import { native } from '../dataplane/native.ts';
import { formatIp, formatMac } from '../model/address.ts';
import type { Health } from '../model/health.ts';
import { protocolLabel } from '../model/protocol.ts';
import type { NoBackendPolicy, Scheduler } from '../model/service.ts';
import { observe } from '../reconcile/observe.ts';
import { idLimits, type Applied } from '../reconcile/state.ts';
import type { Role } from '../model/role.ts';
import type { KubernetesView } from '../k8s/source.ts';
import type { ElectionView } from '../k8s/lease.ts';
import type { ReconcileResult, ServiceResult } from '../reconcile/reconciler.ts';

export interface BackendStatus {
  address: string;
  mac: string;
  /** The other NIC of the director it is reached through (XDP_REDIRECT), named as this process's network namespace sees it; absent: the program's own NIC. */
  via?: string;
  weight: number;
  /** What the data plane does with it. */
  state: 'active' | 'draining' | 'down';
  /** The health checks' verdict ('none': no check). */
  health: Health;
  /** Share of the service's table slots (new flows it gets). */
  share: number;
  packets: number;
  bytes: number;
  newFlows: number;
  /**
   * Flows pinned to it in the flow table and seen in the last ACTIVE_WINDOW_S
   * seconds. Every flow of a draining backend is pinned there, so at 0 it is
   * safe to remove.
   */
  activeFlows: number;
  /** Flows pinned to it in the flow table and not seen for ACTIVE_WINDOW_S seconds (until the LRU table evicts them): ipvsadm's InActConn. */
  inactiveFlows: number;
}

export interface ServiceStatus {
  /** The whole name from a daemon; from the pins, the form they hold (a long name cut: pinnedServiceName). */
  name: string;
  /** "TCP", "UDP" (as ipvsadm shows them). */
  protocol: string;
  vip: string;
  port: number;
  scheduler: Scheduler;
  noBackend: NoBackendPolicy;
  packets: number;
  bytes: number;
  newFlows: number;
  /** Hash of the table's slots by owner address (DataPlane.tableSummary): equal on directors that agree. */
  tableFingerprint?: string;
  backends: BackendStatus[];
}

/** The status as a running daemon serves it (GET /v1/state). */
export interface DaemonState extends Status {
  daemon: { pid: number; configPath: string };
  lastReload: { ok: boolean; at: string; error?: string };
  lastReconcile: ReconcileResult | null;
  overrides: Record<string, string>;
  /** Services whose last reconcile failed, and why (retried by the daemon). */
  failedServices: Record<string, ServiceResult>;
  /** Whether this director owns and announces the VIPs (active) or only keeps its maps filled (standby). */
  role: Role;
  /** The NIC failed to send XDP frames since the daemon started (its driver's counters): what to do. */
  nicTxErrors?: { driver: string; sinceStart: number; advice: string };
  /** `xdplb drain-director`: no route published, forwarding kept. */
  drained?: boolean;
  /** routeTable: the table, and the VIPs whose routes it holds now (only with it). */
  routes?: { table: number; announced: string[] };
  /** kubernetes.leaderElection: the Lease, its holder and age (only with it). */
  leaderElection?: ElectionView;
  /** The Kubernetes mode's watches and decisions (only in that mode). */
  kubernetes?: KubernetesView;
  /** The last change of the Kubernetes services the daemon applied, or refused (null before the first). */
  lastSourceUpdate?: { ok: boolean; at: string; error?: string } | null;
}

export interface Status {
  pinDir: string;
  services: ServiceStatus[];
  global: Record<string, number>;
  flowTable: { entries: number; capacity: number };
  /** The MAC whose frames the program forwards (the NIC's, set by the daemon); null: unset, frames for a VIP are forwarded whatever their destination. */
  ingressMac: string | null;
}

const STATE_NAME: Record<number, BackendStatus['state']> = {
  [CONSTANTS.DEST_ACTIVE]: 'active',
  [CONSTANTS.DEST_DRAINING]: 'draining',
  [CONSTANTS.DEST_UNUSED]: 'down',
};

function num(t: Traffic): { packets: number; bytes: number; newFlows: number } {
  return { packets: Number(t.packets), bytes: Number(t.bytes), newFlows: Number(t.newFlows) };
}

export const ACTIVE_WINDOW_S = 30;

/**
 * Counts flow-table entries, and per destination those seen in the last
 * ACTIVE_WINDOW_S seconds and the others (the program stamps them with the
 * coarse monotonic clock, the clock of process.hrtime). A bounded read of the LRU map.
 */
function flowsPerDest(dp: DataPlane, limit = 1_000_000): { perDest: Map<number, number>; idlePerDest: Map<number, number>; entries: number } {
  const perDest = new Map<number, number>();
  const idlePerDest = new Map<number, number>();
  const since = process.hrtime.bigint() - BigInt(ACTIVE_WINDOW_S) * 1_000_000_000n;
  let entries = 0;
  for (const k of allKeys(dp.maps.flows)) {
    const v = dp.maps.flows.lookup(k);
    if (!v) continue; // expired since it was listed
    const flow = decodeFlow(v);
    const counts = flow.lastSeenNs >= since ? perDest : idlePerDest;
    counts.set(flow.dest, (counts.get(flow.dest) ?? 0) + 1);
    if (++entries >= limit) break;
  }
  return { perDest, idlePerDest, entries };
}

/**
 * The status of the data plane, read from its maps. `known`: what a daemon
 * applied (its own record, with the whole names of services whose names the
 * pins hold cut short); absent, the names are those the pins hold.
 */
export function readStatus(dp: DataPlane, pinDir: string, known?: Applied): Status {
  const applied = observe(dp);
  const flows = flowsPerDest(dp);
  const nicNames = new Map<number, string>();
  const nicName = (ifindex: number): string => {
    if (nicNames.size === 0)
      for (const name of native.listInterfaces()) {
        try {
          nicNames.set(native.interfaceInfo(name).ifindex, name);
        } catch {
          /* gone meanwhile */
        }
      }
    return nicNames.get(ifindex) ?? `ifindex ${ifindex}`;
  };
  const services: ServiceStatus[] = [];
  const limits = idLimits(applied);
  const serviceTraffic = dp.serviceTrafficAll(limits.services);
  const destTraffic = dp.destTrafficAll(limits.dests);
  for (const s of applied.services.values()) {
    const table = dp.tableSummary(s.id, (id) => applied.dests.get(id)?.address.text);
    const slots = table.shares;
    const size = dp.capacities.maglevSize;
    const backends: BackendStatus[] = [...s.dests.values()].map((id) => {
      const d = applied.dests.get(id)!;
      return {
        address: d.address.text,
        mac: formatMac(d.value.mac),
        ...(d.value.ifindex ? { via: nicName(d.value.ifindex) } : {}),
        weight: d.info.weight,
        state: STATE_NAME[d.value.state] ?? 'down',
        health: d.info.health,
        share: (slots.get(id) ?? 0) / size,
        ...num(trafficAt(destTraffic, id)),
        activeFlows: flows.perDest.get(id) ?? 0,
        inactiveFlows: flows.idlePerDest.get(id) ?? 0,
      };
    });
    backends.sort((a, b) => (a.address < b.address ? -1 : 1));
    const self = known?.services.get(s.keyText);
    services.push({
      name: self?.id === s.id ? self.name : s.name,
      protocol: protocolLabel(s.key.proto),
      vip: formatIp(s.key.addr, s.key.family),
      port: s.key.port,
      ...decodeServiceFlags(s.flags),
      ...num(trafficAt(serviceTraffic, s.id)),
      ...(table.fingerprint ? { tableFingerprint: table.fingerprint } : {}),
      backends,
    });
  }
  services.sort((a, b) => (a.vip + a.port < b.vip + b.port ? -1 : 1));
  const ingressMac = dp.ingressMac();
  return {
    pinDir,
    services,
    global: Object.fromEntries(Object.entries(dp.globalStats()).map(([n, v]) => [n, Number(v)])),
    flowTable: { entries: flows.entries, capacity: dp.capacities.maxFlows },
    ingressMac: ingressMac ? formatMac(ingressMac) : null,
  };
}

/** Per-second rates between two readings of the same data plane. */
export function rates(before: Status, after: Status, seconds: number): Status {
  const rate = (a: number, b: number) => Math.max(0, (a - b) / seconds);
  const prevSvc = new Map(before.services.map((s) => [`${s.protocol}${s.vip}:${s.port}`, s]));
  return {
    ...after,
    services: after.services.map((s) => {
      const p = prevSvc.get(`${s.protocol}${s.vip}:${s.port}`);
      const prevB = new Map(p?.backends.map((b) => [b.address, b]) ?? []);
      return {
        ...s,
        packets: rate(s.packets, p?.packets ?? s.packets),
        bytes: rate(s.bytes, p?.bytes ?? s.bytes),
        newFlows: rate(s.newFlows, p?.newFlows ?? s.newFlows),
        backends: s.backends.map((b) => {
          const q = prevB.get(b.address);
          return { ...b, packets: rate(b.packets, q?.packets ?? b.packets), bytes: rate(b.bytes, q?.bytes ?? b.bytes), newFlows: rate(b.newFlows, q?.newFlows ?? b.newFlows) };
        }),
      };
    }),
    global: Object.fromEntries(Object.entries(after.global).map(([k, v]) => [k, rate(v, before.global[k] ?? v)])),
  };
}

function hostPort(vip: string, port: number): string {
  const host = vip.includes(':') ? `[${vip}]` : vip;
  return `${host}:${port === 0 ? '*' : port}`;
}

/** The ipvsadm-like table. `mode` says whether counters are totals or rates. */
/** The routes' line: the table, what it announces, and whether the director is drained. */
export function routesLine(r: { table: number; announced: string[] } | null, drained: boolean): string {
  const shown = r ? `${r.announced.slice(0, 8).join(', ')}${r.announced.length > 8 ? `, … (${r.announced.length} in all)` : ''}` : '';
  const what = r ? `routes in table ${r.table}: ${r.announced.length ? `${r.announced.length} VIPs announced (${shown})` : 'none announced'}` : 'no routeTable';
  return `${what}${drained ? '; DRAINED (xdplb drain-director --undo to publish them again)' : ''}`;
}

/** The leader election's line: the Lease, who holds it, and how long ago it last changed. */
export function leaseLine(e: ElectionView): string {
  const holder = e.holder === null ? 'not read yet' : e.holder === '' ? 'released (nobody holds it)' : `held by ${e.holder}${e.leading ? ' (this director)' : ''}`;
  const age = e.ageSeconds === null ? '' : `, changed ${e.ageSeconds.toFixed(1)} s ago`;
  return `leader election: Lease ${e.lease} ${holder}${age}; ${e.transitions} transitions${e.errors ? `, ${e.errors} failed requests` : ''}; this director is ${e.identity}`;
}

/** The Kubernetes mode's part of status: where, whether synced, each watch, what is refused. */
function kubernetesLines(k: KubernetesView, last: DaemonState['lastSourceUpdate']): string[] {
  const watches = k.watches.map((w) => `${w.kind} ${w.up ? 'up' : `DOWN (${w.lastError ?? 'not listed yet'})`} ${w.objects} objects${w.relists ? `, ${w.relists} relists` : ''}`);
  const refused = Object.entries(k.refusals).map(([reason, n]) => `${reason} ${n}`);
  return [
    `kubernetes ${k.server} (${k.from}): ${k.synced ? 'synced' : 'NOT SYNCED (serving what was kept)'}; ${k.servedServices} Services served; ${watches.join('; ')}`,
    ...(refused.length ? [`kubernetes refuses (see the Services' Events): ${refused.join(', ')}`] : []),
    ...(last && !last.ok ? [`kubernetes change REFUSED at ${last.at}: ${last.error}`] : []),
  ];
}

export function renderStatus(st: Status, opts: { stats: boolean; mode: 'totals' | 'rate' }): string {
  const lines: string[] = [];
  const unit = opts.mode === 'rate' ? ['Pkt/s', 'Byte/s', 'Flow/s'] : ['Packets', 'Bytes', 'NewFlows'];
  const fmt = (n: number) => (opts.mode === 'rate' ? n.toFixed(1) : String(n));
  lines.push(`xdplb data plane at ${st.pinDir}`);
  const d = st as Partial<DaemonState>;
  if (d.daemon && d.lastReload) {
    lines.push(`daemon pid ${d.daemon.pid}, config ${d.daemon.configPath}; role ${d.role ?? 'active'}; last reload ${d.lastReload.at}: ${d.lastReload.ok ? 'ok' : `REFUSED: ${d.lastReload.error}`}`);
    const o = Object.entries(d.overrides ?? {});
    if (o.length) lines.push(`overrides: ${o.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (d.leaderElection) lines.push(leaseLine(d.leaderElection));
    if (d.routes || d.drained) lines.push(routesLine(d.routes ?? null, Boolean(d.drained)));
    if (d.nicTxErrors) lines.push(`NIC FAILS TO SEND: ${d.nicTxErrors.sinceStart} XDP frames dropped by the ${d.nicTxErrors.driver} driver since the daemon started; ${d.nicTxErrors.advice}`);
    if (d.kubernetes) lines.push(...kubernetesLines(d.kubernetes, d.lastSourceUpdate ?? null));
    const failed = Object.entries(d.failedServices ?? {});
    if (failed.length) lines.push(`NOT APPLIED (retried): ${failed.map(([name, r]) => `${name}: ${r.error}`).join('; ')}`);
  } else {
    lines.push('read from the pins (no daemon API reached from here)');
  }
  lines.push(`Prot LocalAddress:Port Scheduler Flags`);
  const cols = ['  -> RemoteAddress:Port'.padEnd(34), 'MAC'.padEnd(17), 'Weight'.padStart(6), 'State'.padEnd(8), 'Health'.padEnd(6), 'Share'.padStart(6), unit[0]!.padStart(12), unit[1]!.padStart(14)];
  if (opts.stats) cols.push(unit[2]!.padStart(10), 'Active'.padStart(8));
  lines.push(cols.join(' '));
  for (const s of st.services) {
    const flags = [s.noBackend === 'pass' ? 'no-backend:pass' : ''].filter(Boolean).join(',');
    const head = [`${s.protocol}  ${hostPort(s.vip, s.port)}`.padEnd(34), s.scheduler.padEnd(17), flags];
    if (opts.stats) head.push(`(${s.name}) ${unit[0]} ${fmt(s.packets)} ${unit[1]} ${fmt(s.bytes)} ${unit[2]} ${fmt(s.newFlows)}`);
    else head.push(`(${s.name})`);
    lines.push(head.filter(Boolean).join(' '));
    for (const b of s.backends) {
      const row = [
        `  -> ${hostPort(b.address, s.port)}${b.via ? ` (${b.via})` : ''}`.padEnd(34),
        b.mac.padEnd(17),
        String(b.weight).padStart(6),
        b.state.padEnd(8),
        b.health.padEnd(6),
        `${(b.share * 100).toFixed(1)}%`.padStart(6),
        fmt(b.packets).padStart(12),
        fmt(b.bytes).padStart(14),
      ];
      if (opts.stats) row.push(fmt(b.newFlows).padStart(10), String(b.activeFlows).padStart(8));
      lines.push(row.join(' '));
    }
  }
  if (opts.stats) {
    lines.push('');
    lines.push(`flow table: ${st.flowTable.entries} of ${st.flowTable.capacity}`);
    lines.push(`forwards frames sent to ${st.ingressMac ?? 'any MAC (unset: no daemon of this version has attached it)'}`);
    const g = Object.entries(st.global).filter(([, v]) => v !== 0);
    lines.push(`global: ${g.map(([k, v]) => `${k}=${fmt(v)}`).join(' ') || '(all zero)'}`);
  }
  return lines.join('\n');
}
