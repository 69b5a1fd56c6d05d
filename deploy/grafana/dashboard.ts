// The Grafana dashboard for xdplb, as code: `node deploy/grafana/dashboard.ts`
// writes deploy/grafana/xdplb.json (import that file into Grafana). It is
// built with Grafana's own typed builders (@grafana/grafana-foundation-sdk,
// generated from Grafana's schemas), so `tsc` refuses an option a panel does
// not have, a value of the wrong type, or an enum value or unit Grafana does
// not know, and the builders throw on values the schema bounds (a width over
// 24 columns). The builder lays each row's panels out left to right on the
// 24-column grid. It is the classic JSON model: the SDK marks that builder
// deprecated in favour of the v2 schema, which Grafana's docs call
// experimental (behind the dashboardNewLayouts toggle), while the import page
// and file provisioning take the classic one.
// test/deploy/deploy.test.ts checks that the JSON file is this output and has
// the panels the SPEC and the alerts need, test/deploy/grafana-schema.test.ts
// that wrong panels are refused, and the lab's Prometheus test evaluates
// every query against a real Prometheus scraping a real director.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  MappingType,
  QueryVariableBuilder,
  RowBuilder,
  VariableHide,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type ValueMapping,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';

/** A unit Grafana knows (the SDK's list of them): a misspelt unit is a type error, not a blank axis. */
export type Unit = Extract<(typeof units)[keyof typeof units], string>;

const DS = { type: 'prometheus', uid: '${datasource}' };
/** Selectors every query carries: the director(s) and VIP(s) chosen above the dashboard. */
const INSTANCE = 'instance=~"$instance"';
const VIP = `${INSTANCE},local_address=~"$vip"`;
const RATE = '[$__rate_interval]';
const SERVICE = 'instance, local_address, local_port, proto';
const TO_BACKEND = '{{local_address}}:{{local_port}} → {{remote_address}}';

/** A range query on the dashboard's Prometheus; the panel names it (A, B, …). */
export function query(expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DS).expr(expr).legendFormat(legend).range();
}

function named(queries: DataqueryBuilder[]): DataqueryBuilder[] {
  return queries.map((q, i) => q.refId(String.fromCharCode(65 + i)));
}

/** Value text for a 0/1 series: 1 → `on` (green), 0 → `off` (red). */
function states(on: string, off: string): ValueMapping[] {
  return [
    {
      type: MappingType.ValueToText,
      options: { '1': { text: on, color: 'green', index: 0 }, '0': { text: off, color: 'red', index: 1 } },
    },
  ];
}

/** Lines over time, 8 rows high, legend below, a tooltip with every series. */
export function timeseries(title: string, unit: Unit, width: number, ...queries: DataqueryBuilder[]): TimeseriesPanel {
  return new TimeseriesPanel()
    .title(title)
    .datasource(DS)
    .span(width)
    .height(8)
    .unit(unit)
    .drawStyle(common.GraphDrawStyle.Line)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .targets(named(queries));
}

/** One big number per query (its last value, with its legend), 4 rows high. */
export function stat(title: string, width: number, ...queries: DataqueryBuilder[]): StatPanel {
  return new StatPanel()
    .title(title)
    .datasource(DS)
    .span(width)
    .height(4)
    .unit(units.Short)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false))
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.None)
    .textMode(common.BigValueTextMode.ValueAndName)
    .targets(named(queries));
}

/** A 0/1 series per row over time, shown as `on`/`off`. */
function stateTimeline(title: string, width: number, on: string, off: string, ...queries: DataqueryBuilder[]): StateTimelinePanel {
  return new StateTimelinePanel()
    .title(title)
    .datasource(DS)
    .span(width)
    .height(8)
    .unit(units.Short)
    .mappings(states(on, off))
    .showValue(common.VisibilityMode.Never)
    .mergeValues(true)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(false))
    .targets(named(queries));
}

/** A multi-value selector with "All" (as `.+`), filled from the data source on each time-range change. */
function selector(name: string, label: string, labelValues: string): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(DS)
    .definition(labelValues)
    .query({ query: labelValues, refId: `${name}-variable` })
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .multi(true)
    .includeAll(true)
    .allValue('.+')
    .current({ selected: true, text: ['All'], value: ['$__all'] })
    .sort(VariableSort.AlphabeticalAsc)
    .hide(VariableHide.DontHide);
}

/** The rows, top to bottom, each with its panels left to right (fresh builders on every call: they are mutable). */
function rows(): [string, (TimeseriesPanel | StatPanel | StateTimelinePanel)[]][] {
  return [
    [
      'Overview',
      [
        stat('Directors up / attached', 4, query(`sum(up{job="xdplb",${INSTANCE}})`, 'up'), query(`sum(xdplb_xdp_attached{${INSTANCE}})`, 'attached')).description(
          'Directors whose /metrics answers (Prometheus `up`), and whose XDP program is attached to its NIC.',
        ),
        stat('Services', 4, query(`sum(xdplb_services{${INSTANCE}})`, 'services')),
        stat('Backends taking new flows', 6, query(`sum(xdplb_service_backends_up{${VIP}})`, 'up'), query(`sum(xdplb_service_backends{${VIP}})`, 'configured')),
        stat('VIPs without a healthy backend', 5, query(`count(xdplb_service_backends_healthy{${VIP}} == 0) or vector(0)`, 'VIPs')),
        stat('Last config reload', 5, query(`min(xdplb_config_last_reload_successful{${INSTANCE}})`, 'reload')).mappings(states('applied', 'REFUSED')),
      ],
    ],
    [
      'Traffic per VIP',
      [
        timeseries('Packets per VIP', units.PacketsPerSecond, 8, query(`sum by (${SERVICE}) (rate(xdplb_service_packets_total{${VIP}}${RATE}))`, '{{proto}} {{local_address}}:{{local_port}}')),
        timeseries('Bytes per VIP', units.BytesPerSecondSI, 8, query(`sum by (${SERVICE}) (rate(xdplb_service_bytes_total{${VIP}}${RATE}))`, '{{proto}} {{local_address}}:{{local_port}}')),
        timeseries('New flows per VIP', units.OpsPerSecond, 8, query(`sum by (${SERVICE}) (rate(xdplb_service_new_flows_total{${VIP}}${RATE}))`, '{{proto}} {{local_address}}:{{local_port}}')),
      ],
    ],
    [
      'Traffic per backend',
      [
        timeseries('Packets per backend', units.PacketsPerSecond, 12, query(`sum by (${SERVICE}, remote_address) (rate(xdplb_backend_packets_total{${VIP}}${RATE}))`, TO_BACKEND)),
        timeseries('Bytes per backend', units.BytesPerSecondSI, 12, query(`sum by (${SERVICE}, remote_address) (rate(xdplb_backend_bytes_total{${VIP}}${RATE}))`, TO_BACKEND)),
        timeseries(
          'Share of new flows against share of weight',
          units.PercentUnit,
          24,
          query(
            `sum by (${SERVICE}, remote_address) (rate(xdplb_backend_new_flows_total{${VIP}}${RATE})) / on (${SERVICE}) group_left sum by (${SERVICE}) (rate(xdplb_backend_new_flows_total{${VIP}}${RATE}))`,
            `${TO_BACKEND} flows`,
          ),
          query(
            `sum by (${SERVICE}, remote_address) (xdplb_backend_weight{${VIP}} * xdplb_backend_up{${VIP}}) / on (${SERVICE}) group_left sum by (${SERVICE}) (xdplb_backend_weight{${VIP}} * xdplb_backend_up{${VIP}})`,
            `${TO_BACKEND} weight`,
          ),
        ).description(
          "For each backend: its part of the VIP's new flows (solid) and its part of the weight of the backends taking new flows (what Maglev aims for). They meet over many flows; a gap that lasts points at a backend that is down, drained or unresolved, or at too few flows to judge.",
        ),
      ],
    ],
    [
      'Backend health',
      [
        stateTimeline('Backends taking new flows', 12, 'up', 'down', query(`max by (${SERVICE}, remote_address) (xdplb_backend_up{${VIP}})`, TO_BACKEND)),
        stateTimeline('Health-check verdicts', 12, 'up', 'down', query(`max by (${SERVICE}, remote_address) (xdplb_backend_health_up{${VIP}})`, TO_BACKEND)),
        timeseries(
          'Health-check latency',
          units.Seconds,
          8,
          query(`histogram_quantile(0.5, sum by (le, check) (rate(xdplb_health_check_duration_seconds_bucket{${INSTANCE}}${RATE})))`, 'p50 {{check}}'),
          query(`histogram_quantile(0.99, sum by (le, check) (rate(xdplb_health_check_duration_seconds_bucket{${INSTANCE}}${RATE})))`, 'p99 {{check}}'),
        ),
        timeseries('Slowest health checks (last probe)', units.Seconds, 8, query(`topk(10, xdplb_backend_health_check_last_duration_seconds{${VIP}})`, '{{remote_address}}:{{remote_port}} for {{local_address}}:{{local_port}}')),
        timeseries('Failed health checks', units.OpsPerSecond, 8, query(`sum by (instance, remote_address) (rate(xdplb_backend_health_checks_total{${VIP},result="failed"}${RATE}))`, '{{remote_address}}')),
        timeseries('Backend nodes by neighbour state', units.Short, 12, query(`sum by (state) (xdplb_neighbours{${INSTANCE}})`, '{{state}}')).description(
          'Whether the director knows the MAC address (ARP/NDP) of each backend node.',
        ),
        timeseries('Drained backends', units.Short, 12, query(`sum by (${SERVICE}) (xdplb_backend_draining{${VIP}})`, '{{local_address}}:{{local_port}}')),
      ],
    ],
    [
      'Data plane',
      [
        timeseries('XDP actions', units.PacketsPerSecond, 8, query(`sum by (action) (rate(xdplb_xdp_actions_total{${INSTANCE}}${RATE}))`, '{{action}}')),
        timeseries('Drops by reason', units.PacketsPerSecond, 8, query(`sum by (reason) (rate(xdplb_drops_total{${INSTANCE}}${RATE}))`, '{{reason}}')),
        timeseries(
          'Flow table',
          units.Short,
          8,
          query(`sum by (instance) (xdplb_flow_table_entries{${INSTANCE}})`, 'entries {{instance}}'),
          query(`sum by (instance) (xdplb_flow_table_capacity{${INSTANCE}})`, 'capacity {{instance}}'),
        ),
      ],
    ],
    [
      'Control plane',
      [
        timeseries(
          'Reconcile duration',
          units.Seconds,
          8,
          query(`histogram_quantile(0.99, sum by (le, instance) (rate(xdplb_reconcile_duration_seconds_bucket{${INSTANCE}}${RATE})))`, 'p99 {{instance}}'),
          query(`sum by (instance) (xdplb_reconcile_duration_seconds_count{${INSTANCE}})`, 'reconciles {{instance}}'),
        ),
        timeseries(
          'Reconcile failures and config reloads',
          units.Short,
          8,
          query(`sum by (instance) (increase(xdplb_reconcile_failures_total{${INSTANCE}}${RATE}))`, 'reconcile failures {{instance}}'),
          query(`sum by (instance, result) (increase(xdplb_config_reloads_total{${INSTANCE}}${RATE}))`, 'reloads {{result}} {{instance}}'),
        ),
        timeseries('Daemon memory', units.BytesIEC, 8, query(`process_resident_memory_bytes{job="xdplb",${INSTANCE}}`, 'RSS {{instance}}')),
      ],
    ],
  ];
}

export function dashboard(): Dashboard {
  const builder = new DashboardBuilder('xdplb')
    .uid('xdplb')
    .description('XDP Direct-Routing load balancer: traffic per VIP and backend, health, data plane and control plane.')
    .tags(['xdplb', 'load-balancer', 'xdp'])
    .timezone('browser')
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .version(1)
    .time({ from: 'now-1h', to: 'now' })
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus').hide(VariableHide.DontHide))
    .withVariable(selector('instance', 'Director', 'label_values(xdplb_build_info, instance)'))
    .withVariable(selector('vip', 'VIP', `label_values(xdplb_service_packets_total{${INSTANCE}}, local_address)`))
    .annotations([]);
  // The builder leaves panel ids to us; Grafana wants them unique (links such as ?viewPanel=N name them).
  let id = 1;
  for (const [title, panels] of rows()) {
    builder.withRow(new RowBuilder(title).id(id++));
    for (const p of panels) builder.withPanel(p.id(id++));
  }
  return builder.build();
}

/** The file's text: the builder's key order, two-space indent, final newline. */
export function dashboardJson(): string {
  return JSON.stringify(dashboard(), null, 2) + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('./xdplb.json', import.meta.url), dashboardJson());
}
