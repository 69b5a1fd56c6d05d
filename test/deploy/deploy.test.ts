// deploy/: the Prometheus files pass promtool (syntax, and unit tests of
// every alert), and the Grafana dashboard is the generator's output, well
// formed, with its data source and selectors. (test/lab/prometheus.test.ts
// runs both against a real Prometheus and a real director.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
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

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string; datasource: { uid: string } }[];
}

test('deploy/grafana/xdplb.json is the generator output: data source and selectors, every panel on them, no overlap', () => {
  assert.equal(readFileSync(`${ROOT}deploy/grafana/xdplb.json`, 'utf8'), dashboardJson(), 'xdplb.json is stale: run node deploy/grafana/dashboard.ts');
  const d = dashboard() as { uid: string; schemaVersion: number; templating: { list: { name: string; type: string; query: unknown }[] }; panels: Panel[] };
  const vars = new Map(d.templating.list.map((v) => [v.name, v]));
  assert.equal(vars.get('datasource')?.type, 'datasource');
  assert.equal(vars.get('datasource')?.query, 'prometheus');
  assert.equal(vars.get('instance')?.type, 'query');
  assert.equal(vars.get('vip')?.type, 'query');
  const ids = new Set<number>();
  const cells = new Set<string>();
  for (const p of d.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `"${p.title}" fits the 24-column grid`);
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `"${p.title}" overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `"${p.title}" uses the data source variable`);
    assert.ok(p.targets && p.targets.length > 0, `"${p.title}" has queries`);
    for (const t of p.targets) {
      assert.equal(t.datasource.uid, '${datasource}');
      assert.match(t.expr, /instance=~"\$instance"/, `"${p.title}" follows the director selector: ${t.expr}`);
    }
  }
  const vipPanels = d.panels.filter((p) => p.targets?.some((t) => t.expr.includes('local_address=~"$vip"')));
  assert.ok(vipPanels.length >= 8, `per-VIP and per-backend panels follow the VIP selector (${vipPanels.length})`);
});
