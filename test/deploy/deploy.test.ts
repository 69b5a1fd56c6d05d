// deploy/: the Prometheus files pass promtool (syntax, and unit tests of
// every alert), and the Grafana dashboard is the generator's output, well
// formed, with its data source and selectors, the panels SPEC §6 asks for and
// a panel for what each alert fires on. (test/deploy/grafana-schema.test.ts
// shows that the SDK refuses wrong panels; test/lab/prometheus.test.ts runs
// the queries and rules against a real Prometheus and a real director.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Panel, RowPanel } from '@grafana/grafana-foundation-sdk/dashboard';
import type * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { load } from 'js-yaml';
import { dashboard, dashboardJson } from '../../deploy/grafana/dashboard.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function promtool(...args: string[]): string {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.error, undefined, 'promtool (Debian package prometheus) must be installed: scripts/bootstrap installs it');
  assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('the Prometheus config and rules pass promtool; every alert has a unit test that passes', () => {
  assert.match(promtool('check', 'config', 'deploy/prometheus/prometheus.yml'), /SUCCESS/);
  assert.match(promtool('check', 'rules', 'deploy/prometheus/xdplb.rules.yml'), /SUCCESS: \d+ rules found/);
  assert.match(promtool('test', 'rules', 'test/deploy/xdplb.rules.promtool.yml'), /SUCCESS/);
  const rules = load(readFileSync(`${ROOT}deploy/prometheus/xdplb.rules.yml`, 'utf8')) as { groups: { rules: { alert: string }[] }[] };
  const tests = load(readFileSync(`${ROOT}test/deploy/xdplb.rules.promtool.yml`, 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts?: unknown[] }[] }[] };
  const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts?.length).map((a) => a.alertname)));
  for (const r of rules.groups.flatMap((g) => g.rules)) assert.ok(fired.has(r.alert), `alert ${r.alert} has a promtool test in which it fires`);
});

/** A panel that shows data (not a row). */
function isPanel(p: Panel | RowPanel): p is Panel {
  return p.type !== 'row';
}

/** A panel's PromQL (the dashboard's queries are all Prometheus ones). */
function exprs(p: Panel): string[] {
  return ((p.targets ?? []) as prometheus.Dataquery[]).map((t) => t.expr);
}

test('deploy/grafana/xdplb.json is the generator output: data source and selectors, every panel on them, no overlap', () => {
  assert.equal(readFileSync(`${ROOT}deploy/grafana/xdplb.json`, 'utf8'), dashboardJson(), 'xdplb.json is stale: run node deploy/grafana/dashboard.ts');
  const d = dashboard();
  assert.equal(d.uid, 'xdplb');
  const vars = new Map((d.templating.list ?? []).map((v) => [v.name, v]));
  assert.equal(vars.get('datasource')?.type, 'datasource');
  assert.equal(vars.get('datasource')?.query, 'prometheus');
  assert.equal(vars.get('instance')?.type, 'query');
  assert.equal(vars.get('vip')?.type, 'query');
  const ids = new Set<number>();
  const cells = new Set<string>();
  for (const p of d.panels ?? []) {
    assert.ok(p.id !== undefined && !ids.has(p.id), `panel "${p.title}" has a unique id (${p.id})`);
    ids.add(p.id);
    const g = p.gridPos;
    assert.ok(g, `"${p.title}" has a place on the grid`);
    assert.ok(g.x >= 0 && g.x + g.w <= 24, `"${p.title}" fits the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++)
      for (let y = g.y; y < g.y + g.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `"${p.title}" overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    if (!isPanel(p)) continue;
    assert.equal(p.datasource?.uid, '${datasource}', `"${p.title}" uses the data source variable`);
    const targets = (p.targets ?? []) as prometheus.Dataquery[];
    assert.ok(targets.length > 0, `"${p.title}" has queries`);
    assert.deepEqual(
      targets.map((t) => t.refId),
      targets.map((_, i) => String.fromCharCode(65 + i)),
      `"${p.title}" names its queries A, B, …`,
    );
    for (const t of targets) {
      assert.equal(t.datasource?.uid, '${datasource}');
      assert.match(t.expr, /instance=~"\$instance"/, `"${p.title}" follows the director selector: ${t.expr}`);
    }
  }
  const vipPanels = (d.panels ?? []).filter(isPanel).filter((p) => exprs(p).some((e) => e.includes('local_address=~"$vip"')));
  assert.ok(vipPanels.length >= 8, `per-VIP and per-backend panels follow the VIP selector (${vipPanels.length})`);
});

/** What SPEC §6 asks of the dashboard, as panel title → type, unit and a PromQL fragment it must query. */
const SPEC_PANELS: [string, string, string, RegExp][] = [
  // per-VIP and per-backend rates
  ['Packets per VIP', 'timeseries', 'pps', /rate\(xdplb_service_packets_total\{/],
  ['Bytes per VIP', 'timeseries', 'Bps', /rate\(xdplb_service_bytes_total\{/],
  ['New flows per VIP', 'timeseries', 'ops', /rate\(xdplb_service_new_flows_total\{/],
  ['Packets per backend', 'timeseries', 'pps', /rate\(xdplb_backend_packets_total\{/],
  ['Bytes per backend', 'timeseries', 'Bps', /rate\(xdplb_backend_bytes_total\{/],
  // distribution across backends
  ['Share of new flows against share of weight', 'timeseries', 'percentunit', /xdplb_backend_new_flows_total[\s\S]*xdplb_backend_weight/],
  // health
  ['Backends taking new flows', 'state-timeline', 'short', /xdplb_backend_up\{/],
  ['Health-check verdicts', 'state-timeline', 'short', /xdplb_backend_health_up\{/],
  ['Health-check latency', 'timeseries', 's', /histogram_quantile\(0\.99, .*xdplb_health_check_duration_seconds_bucket/],
  // drops
  ['Drops by reason', 'timeseries', 'pps', /sum by \(reason\) \(rate\(xdplb_drops_total\{/],
  // control-plane health
  ['Reconcile duration', 'timeseries', 's', /xdplb_reconcile_duration_seconds_bucket/],
  ['Reconcile failures and config reloads', 'timeseries', 'short', /xdplb_reconcile_failures_total[\s\S]*xdplb_config_reloads_total/],
];

/** Every alert, and the panel (title, PromQL it must query) where an operator sees what it fires on, or why there is none. */
const ALERT_PANELS: Record<string, [string, RegExp] | { none: string }> = {
  XdplbDown: ['Directors up / attached', /\bup\{job="xdplb"/],
  XdplbNotAttached: ['Directors up / attached', /xdplb_xdp_attached\{/],
  XdplbVipNoHealthyBackend: ['VIPs without a healthy backend', /xdplb_service_backends_healthy\{/],
  XdplbBackendDown: ['Health-check verdicts', /xdplb_backend_health_up\{/],
  XdplbBackendUnresolved: ['Backend nodes by neighbour state', /xdplb_neighbours\{/],
  XdplbDropsRising: ['Drops by reason', /xdplb_drops_total\{/],
  XdplbReconcileFailing: ['Reconcile failures and config reloads', /xdplb_reconcile_failures_total\{/],
  XdplbConfigReloadRefused: ['Last config reload', /xdplb_config_last_reload_successful\{/],
  XdplbFlowTableNearlyFull: ['Flow table', /xdplb_flow_table_entries\{[\s\S]*xdplb_flow_table_capacity\{|xdplb_flow_table_capacity\{[\s\S]*xdplb_flow_table_entries\{/],
  XdplbKubernetesWatchDown: {
    none: 'its series exist in Kubernetes mode only, and the lab test requires every panel query to return data from a static director',
  },
};

test('the dashboard has the panels SPEC §6 asks for, and one for what every alert fires on', () => {
  const panels = new Map((dashboard().panels ?? []).filter(isPanel).map((p) => [p.title, p]));
  for (const [title, type, unit, expr] of SPEC_PANELS) {
    const p = panels.get(title);
    assert.ok(p, `the dashboard has a panel "${title}"`);
    assert.equal(p.type, type, `"${title}" is a ${type} panel`);
    assert.equal(p.fieldConfig?.defaults.unit, unit, `"${title}" is in ${unit}`);
    assert.match(exprs(p).join('\n'), expr, `"${title}" queries ${expr}`);
  }
  const rules = load(readFileSync(`${ROOT}deploy/prometheus/xdplb.rules.yml`, 'utf8')) as { groups: { rules: { alert: string }[] }[] };
  const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
  assert.deepEqual(Object.keys(ALERT_PANELS).sort(), [...alerts].sort(), 'every alert (and no other) has its panel, or the reason why not, in ALERT_PANELS');
  for (const alert of alerts) {
    const want = ALERT_PANELS[alert]!;
    if (!Array.isArray(want)) continue;
    const [title, expr] = want;
    const p = panels.get(title);
    assert.ok(p, `alert ${alert}: the dashboard has a panel "${title}"`);
    assert.match(exprs(p).join('\n'), expr, `alert ${alert}: "${title}" queries ${expr}`);
  }
});
