// The Grafana dashboard for xdplb, as code: `node deploy/grafana/dashboard.ts`
// writes deploy/grafana/xdplb.json (import that file into Grafana). Panels
// are laid out in rows of a 24-column grid. test/deploy/grafana.test.ts checks
// that the JSON file is this output, and the lab's Prometheus test evaluates
// every query against a real Prometheus scraping a real director.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DS = { type: 'prometheus', uid: '${datasource}' } as const;
/** Selectors every query carries: the director(s) and VIP(s) chosen above the dashboard. */
const INSTANCE = 'instance=~"$instance"';
const VIP = `${INSTANCE},local_address=~"$vip"`;
const RATE = '[$__rate_interval]';
const SERVICE = 'instance, local_address, local_port, proto';

interface Target {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  type?: 'timeseries' | 'stat' | 'state-timeline';
  unit?: string;
  width?: number;
  height?: number;
  description?: string;
  targets: Target[];
  /** Value text for a state panel (1 → first, 0 → second). */
  states?: [string, string];
}

interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

const rows: RowSpec[] = [
  {
    title: 'Overview',
    panels: [
      {
        title: 'Directors up / attached',
        type: 'stat',
        width: 4,
        height: 4,
        targets: [
          { expr: `sum(up{job="xdplb",${INSTANCE}})`, legend: 'up' },
          { expr: `sum(xdplb_xdp_attached{${INSTANCE}})`, legend: 'attached' },
        ],
        description: 'Directors whose /metrics answers (Prometheus `up`), and whose XDP program is attached to its NIC.',
      },
      { title: 'Services', type: 'stat', width: 4, height: 4, targets: [{ expr: `sum(xdplb_services{${INSTANCE}})`, legend: 'services' }] },
      {
        title: 'Backends taking new flows',
        type: 'stat',
        width: 6,
        height: 4,
        targets: [
          { expr: `sum(xdplb_service_backends_up{${VIP}})`, legend: 'up' },
          { expr: `sum(xdplb_service_backends{${VIP}})`, legend: 'configured' },
        ],
      },
      {
        title: 'VIPs without a healthy backend',
        type: 'stat',
        width: 5,
        height: 4,
        targets: [{ expr: `count(xdplb_service_backends_healthy{${VIP}} == 0) or vector(0)`, legend: 'VIPs' }],
      },
      {
        title: 'Last config reload',
        type: 'stat',
        width: 5,
        height: 4,
        states: ['applied', 'REFUSED'],
        targets: [{ expr: `min(xdplb_config_last_reload_successful{${INSTANCE}})`, legend: 'reload' }],
      },
    ],
  },
  {
    title: 'Traffic per VIP',
    panels: [
      { title: 'Packets per VIP', unit: 'pps', width: 8, targets: [{ expr: `sum by (${SERVICE}) (rate(xdplb_service_packets_total{${VIP}}${RATE}))`, legend: '{{proto}} {{local_address}}:{{local_port}}' }] },
      { title: 'Bytes per VIP', unit: 'Bps', width: 8, targets: [{ expr: `sum by (${SERVICE}) (rate(xdplb_service_bytes_total{${VIP}}${RATE}))`, legend: '{{proto}} {{local_address}}:{{local_port}}' }] },
      { title: 'New flows per VIP', unit: 'ops', width: 8, targets: [{ expr: `sum by (${SERVICE}) (rate(xdplb_service_new_flows_total{${VIP}}${RATE}))`, legend: '{{proto}} {{local_address}}:{{local_port}}' }] },
    ],
  },
  {
    title: 'Traffic per backend',
    panels: [
      { title: 'Packets per backend', unit: 'pps', width: 12, targets: [{ expr: `sum by (${SERVICE}, remote_address) (rate(xdplb_backend_packets_total{${VIP}}${RATE}))`, legend: '{{local_address}}:{{local_port}} → {{remote_address}}' }] },
      { title: 'Bytes per backend', unit: 'Bps', width: 12, targets: [{ expr: `sum by (${SERVICE}, remote_address) (rate(xdplb_backend_bytes_total{${VIP}}${RATE}))`, legend: '{{local_address}}:{{local_port}} → {{remote_address}}' }] },
      {
        title: 'Share of new flows against share of weight',
        unit: 'percentunit',
        width: 24,
        description:
          'For each backend: its part of the VIP\'s new flows (solid) and its part of the weight of the backends taking new flows (what Maglev aims for). They meet over many flows; a gap that lasts points at a backend that is down, drained or unresolved, or at too few flows to judge.',
        targets: [
          {
            expr: `sum by (${SERVICE}, remote_address) (rate(xdplb_backend_new_flows_total{${VIP}}${RATE})) / on (${SERVICE}) group_left sum by (${SERVICE}) (rate(xdplb_backend_new_flows_total{${VIP}}${RATE}))`,
            legend: '{{local_address}}:{{local_port}} → {{remote_address}} flows',
          },
          {
            expr: `sum by (${SERVICE}, remote_address) (xdplb_backend_weight{${VIP}} * xdplb_backend_up{${VIP}}) / on (${SERVICE}) group_left sum by (${SERVICE}) (xdplb_backend_weight{${VIP}} * xdplb_backend_up{${VIP}})`,
            legend: '{{local_address}}:{{local_port}} → {{remote_address}} weight',
          },
        ],
      },
    ],
  },
  {
    title: 'Backend health',
    panels: [
      { title: 'Backends taking new flows', type: 'state-timeline', width: 12, states: ['up', 'down'], targets: [{ expr: `max by (${SERVICE}, remote_address) (xdplb_backend_up{${VIP}})`, legend: '{{local_address}}:{{local_port}} → {{remote_address}}' }] },
      { title: 'Health-check verdicts', type: 'state-timeline', width: 12, states: ['up', 'down'], targets: [{ expr: `max by (${SERVICE}, remote_address) (xdplb_backend_health_up{${VIP}})`, legend: '{{local_address}}:{{local_port}} → {{remote_address}}' }] },
      {
        title: 'Health-check latency',
        unit: 's',
        width: 8,
        targets: [
          { expr: `histogram_quantile(0.5, sum by (le, check) (rate(xdplb_health_check_duration_seconds_bucket{${INSTANCE}}${RATE})))`, legend: 'p50 {{check}}' },
          { expr: `histogram_quantile(0.99, sum by (le, check) (rate(xdplb_health_check_duration_seconds_bucket{${INSTANCE}}${RATE})))`, legend: 'p99 {{check}}' },
        ],
      },
      { title: 'Slowest health checks (last probe)', unit: 's', width: 8, targets: [{ expr: `topk(10, xdplb_backend_health_check_last_duration_seconds{${VIP}})`, legend: '{{remote_address}}:{{remote_port}} for {{local_address}}:{{local_port}}' }] },
      { title: 'Failed health checks', unit: 'ops', width: 8, targets: [{ expr: `sum by (instance, remote_address) (rate(xdplb_backend_health_checks_total{${VIP},result="failed"}${RATE}))`, legend: '{{remote_address}}' }] },
      { title: 'Backend nodes by neighbour state', width: 12, targets: [{ expr: `sum by (state) (xdplb_neighbours{${INSTANCE}})`, legend: '{{state}}' }], description: 'Whether the director knows the MAC address (ARP/NDP) of each backend node.' },
      { title: 'Drained backends', width: 12, targets: [{ expr: `sum by (${SERVICE}) (xdplb_backend_draining{${VIP}})`, legend: '{{local_address}}:{{local_port}}' }] },
    ],
  },
  {
    title: 'Data plane',
    panels: [
      { title: 'XDP actions', unit: 'pps', width: 8, targets: [{ expr: `sum by (action) (rate(xdplb_xdp_actions_total{${INSTANCE}}${RATE}))`, legend: '{{action}}' }] },
      { title: 'Drops by reason', unit: 'pps', width: 8, targets: [{ expr: `sum by (reason) (rate(xdplb_drops_total{${INSTANCE}}${RATE}))`, legend: '{{reason}}' }] },
      {
        title: 'Flow table',
        width: 8,
        targets: [
          { expr: `sum by (instance) (xdplb_flow_table_entries{${INSTANCE}})`, legend: 'entries {{instance}}' },
          { expr: `sum by (instance) (xdplb_flow_table_capacity{${INSTANCE}})`, legend: 'capacity {{instance}}' },
        ],
      },
    ],
  },
  {
    title: 'Control plane',
    panels: [
      {
        title: 'Reconcile duration',
        unit: 's',
        width: 8,
        targets: [
          { expr: `histogram_quantile(0.99, sum by (le, instance) (rate(xdplb_reconcile_duration_seconds_bucket{${INSTANCE}}${RATE})))`, legend: 'p99 {{instance}}' },
          { expr: `sum by (instance) (xdplb_reconcile_duration_seconds_count{${INSTANCE}})`, legend: 'reconciles {{instance}}' },
        ],
      },
      {
        title: 'Reconcile failures and config reloads',
        width: 8,
        targets: [
          { expr: `sum by (instance) (increase(xdplb_reconcile_failures_total{${INSTANCE}}${RATE}))`, legend: 'reconcile failures {{instance}}' },
          { expr: `sum by (instance, result) (increase(xdplb_config_reloads_total{${INSTANCE}}${RATE}))`, legend: 'reloads {{result}} {{instance}}' },
        ],
      },
      { title: 'Daemon memory', unit: 'bytes', width: 8, targets: [{ expr: `process_resident_memory_bytes{job="xdplb",${INSTANCE}}`, legend: 'RSS {{instance}}' }] },
    ],
  },
];

function panel(p: PanelSpec, id: number, x: number, y: number): Record<string, unknown> {
  const type = p.type ?? 'timeseries';
  const mappings = p.states
    ? [
        {
          type: 'value',
          options: {
            '1': { text: p.states[0], color: 'green', index: 0 },
            '0': { text: p.states[1], color: 'red', index: 1 },
          },
        },
      ]
    : [];
  return {
    id,
    type,
    title: p.title,
    ...(p.description ? { description: p.description } : {}),
    datasource: DS,
    gridPos: { h: p.height ?? 8, w: p.width ?? 12, x, y },
    targets: p.targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), datasource: DS, expr: t.expr, legendFormat: t.legend, range: true })),
    fieldConfig: {
      defaults: {
        unit: p.unit ?? 'short',
        mappings,
        ...(type === 'timeseries' ? { custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never' } } : {}),
      },
      overrides: [],
    },
    options:
      type === 'stat'
        ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'value_and_name' }
        : type === 'state-timeline'
          ? { showValue: 'never', mergeValues: true, legend: { displayMode: 'list', placement: 'bottom', showLegend: false } }
          : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

function variable(name: string, label: string, query: string): Record<string, unknown> {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    definition: query,
    query: { query, refId: `${name}-variable` },
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: '.+',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
    hide: 0,
  };
}

export function dashboard(): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const w = p.width ?? 12;
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push(panel(p, id++, x, y));
      x += w;
      rowHeight = Math.max(rowHeight, p.height ?? 8);
    }
    y += rowHeight;
  }
  return {
    uid: 'xdplb',
    title: 'xdplb',
    description: 'XDP Direct-Routing load balancer: traffic per VIP and backend, health, data plane and control plane.',
    tags: ['xdplb', 'load-balancer', 'xdp'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', refresh: 1, hide: 0, current: {} },
        variable('instance', 'Director', 'label_values(xdplb_build_info, instance)'),
        variable('vip', 'VIP', `label_values(xdplb_service_packets_total{${INSTANCE}}, local_address)`),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** The file's text: stable key order, two-space indent, final newline. */
export function dashboardJson(): string {
  return JSON.stringify(dashboard(), null, 2) + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('./xdplb.json', import.meta.url), dashboardJson());
}
