// The dashboard is checked against Grafana's schema when it is built: the
// SDK's types (generated from Grafana's schemas) make `tsc` refuse a wrong
// panel, and its builders throw on values the schema bounds. Shown, not
// asserted: tsc runs over a file of wrong panels written next to right ones,
// and must refuse exactly the wrong lines, each for its reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { query, stat, timeseries } from '../../deploy/grafana/dashboard.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Source lines; a wrong one ends in `// TSnnnn <what the message must say>`. */
const PANELS = [
  `import { BigValueGraphMode, GraphDrawStyle, VisibilityMode } from '@grafana/grafana-foundation-sdk/common';`,
  `import { DashboardBuilder } from '@grafana/grafana-foundation-sdk/dashboard';`,
  `import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';`,
  `import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';`,
  `import * as units from '@grafana/grafana-foundation-sdk/units';`,
  `import { query, stat, timeseries } from ${JSON.stringify(`${ROOT}deploy/grafana/dashboard.ts`)};`,
  `const q = query('sum(up)', 'up');`,
  `timeseries('right', units.PacketsPerSecond, 8, q);`,
  `timeseries('right', 'pps', 8, q);`,
  `timeseries('a unit Grafana does not know', 'packets/s', 8, q); // TS2345 '"packets/s"' is not assignable to parameter of type 'Unit'`,
  `new TimeseriesPanel().lineWidth(1).showPoints(VisibilityMode.Never);`,
  `new TimeseriesPanel().lineWidth('1'); // TS2345 'string' is not assignable to parameter of type 'number'`,
  `new TimeseriesPanel().showPoints('sometimes'); // TS2345 '"sometimes"' is not assignable to parameter of type 'VisibilityMode'`,
  `stat('right', 4, q).graphMode(BigValueGraphMode.None);`,
  `stat('an enum value for another option', 4, q).graphMode(VisibilityMode.Never); // TS2345 'VisibilityMode.Never' is not assignable to parameter of type 'BigValueGraphMode'`,
  `new StatPanel().drawStyle(GraphDrawStyle.Line); // TS2339 Property 'drawStyle' does not exist on type 'PanelBuilder'`,
  `new TimeseriesPanel().withTarget(new StatPanel()); // TS2345 'PanelBuilder' is not assignable to parameter of type 'Builder<Dataquery>'`,
  `new DashboardBuilder('d').withPanel(q); // TS2345 'DataqueryBuilder' is not assignable to parameter of type 'Builder<Panel>'`,
  `new DashboardBuilder('d').withPanel(timeseries('right', units.Seconds, 8, q)).refresh('30s');`,
];

test('tsc refuses panels that do not fit Grafana\'s schema, each for its reason, and accepts the right ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-grafana-'));
  try {
    symlinkSync(`${ROOT}node_modules`, join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(join(dir, 'panels.ts'), PANELS.join('\n') + '\n');
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: `${ROOT}tsconfig.json`, include: [], files: ['panels.ts'] }));
    const r = spawnSync(`${ROOT}node_modules/.bin/tsc`, ['-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.error, undefined, `tsc (npm devDependency typescript) runs: ${r.error?.message}`);
    // Errors by line of panels.ts; the first line of each (the rest are its explanation).
    const refused = new Map<number, string>();
    for (const m of r.stdout.matchAll(/^(.*?)\((\d+),\d+\): error (TS\d+: .*)$/gm)) {
      assert.match(m[1]!, /panels\.ts$/, `only panels.ts has errors, not ${m[1]}:\n${r.stdout}`);
      if (!refused.has(Number(m[2]))) refused.set(Number(m[2]), m[3]!);
    }
    PANELS.forEach((line, i) => {
      const want = /\/\/ (TS\d+) (.*)$/.exec(line);
      const got = refused.get(i + 1);
      if (!want) return assert.equal(got, undefined, `tsc accepts line ${i + 1}: ${line}`);
      assert.ok(got, `tsc refuses line ${i + 1}: ${line}\n${r.stdout}`);
      assert.ok(got.startsWith(`${want[1]}:`) && got.includes(want[2]!), `line ${i + 1} is refused with ${want[1]} "${want[2]}", not: ${got}`);
    });
    assert.notEqual(r.status, 0, 'tsc fails on the file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the builders throw on values the schema bounds, before any JSON is written', () => {
  const q = query('sum(up)', 'up');
  assert.throws(() => timeseries('wider than the grid', units.Short, 25, q), /w must be <= 24/);
  assert.throws(() => stat('no width', 0, q), /w must be > 0/);
  assert.throws(() => new StateTimelinePanel().fillOpacity(101), /fillOpacity must be <= 100/);
  assert.throws(() => new StateTimelinePanel().lineWidth(11), /lineWidth must be <= 10/);
});
