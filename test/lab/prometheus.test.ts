// A real Prometheus (Debian's package) scrapes the lab director while traffic
// runs: every query of the Grafana dashboard and every variable returns data,
// every metric the dashboard and the alert rules name is in /metrics, and the
// alerts that fire are exactly the right ones as a backend stops, a config is
// refused and the daemon goes away. Prometheus runs in the director's
// namespace on 127.0.0.1 (where the daemon's /metrics is), with the shipped
// deploy/prometheus files; only intervals and `for` are shortened.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dump, load } from 'js-yaml';
import { dashboard } from '../../deploy/grafana/dashboard.ts';
import { inNs, LAB, labConfig, labDown, labUp, readLabStatus, stopBackendServer, stopDirector } from '../../src/lab/lab.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROM = '127.0.0.1:9090'; // inside the director's namespace
const SOLO_VIP = '10.240.0.202';
const GHOST = '10.240.0.109'; // configured, but no such node: never resolved
const RATE_INTERVAL = '10s';

let dir = '';
let prometheus: ChildProcess | null = null;
const traffic: ChildProcess[] = [];

/** GET on the director's loopback (Prometheus or the daemon), from a process in its namespace. */
function getInDirectorNs(url: string): { status: number; body: string } {
  const argv = inNs(LAB.directorNs, [process.execPath, '-e', `fetch(${JSON.stringify(url)}).then(async (r) => process.stdout.write(r.status + '\\n' + (await r.text())), (e) => process.stdout.write('0\\n' + e.message))`]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
}

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

function promApi<T>(path: string): T {
  const r = getInDirectorNs(`http://${PROM}${path}`);
  assert.equal(r.status, 200, `Prometheus ${path}: ${r.body}`);
  const j = JSON.parse(r.body) as { status: string; data: T; error?: string };
  assert.equal(j.status, 'success', `Prometheus ${path}: ${j.error}`);
  return j.data;
}

function query(expr: string): PromResult[] {
  return promApi<{ result: PromResult[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`).result;
}

/** The dashboard's variables as Grafana would fill them: every director, every VIP. */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', RATE_INTERVAL).replaceAll('$instance', '.+').replaceAll('$vip', '.+');
}

interface Alert {
  labels: Record<string, string>;
  state: string;
}

/** Firing alerts as "name label=value…" (only the labels that tell them apart). */
function firing(): string[] {
  const keys = ['local_address', 'name', 'remote_address', 'reason'];
  return promApi<{ alerts: Alert[] }>('/api/v1/alerts')
    .alerts.filter((a) => a.state === 'firing')
    .map((a) => [a.labels.alertname, ...keys.filter((k) => a.labels[k]).map((k) => `${k}=${a.labels[k]}`)].join(' '))
    .sort();
}

async function until<T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function firingExactly(want: string[], what: string): Promise<void> {
  const sorted = [...want].sort();
  let got: string[] = [];
  try {
    await until(what, () => ((got = firing()), JSON.stringify(got) === JSON.stringify(sorted)), 40_000);
  } catch {
    assert.deepEqual(got, sorted, `firing alerts (${what})`);
  }
}

const CHECK = '    healthCheck: { type: http, path: /, interval: 500ms, timeout: 300ms, rise: 1, fall: 1 }\n';
const SOLO = `  - name: solo
    vip: ${SOLO_VIP}
    port: 53
    protocol: udp
    allDown: remove
    noBackend: drop
    healthCheck: { type: tcp, port: 80, interval: 500ms, timeout: 300ms, rise: 1, fall: 1 }
    backends:
      - { address: ${LAB.backend(3)} }
      - { address: ${GHOST} }
`;

before(async () => {
  const which = spawnSync('prometheus', ['--version']);
  assert.equal(which.error, undefined, 'prometheus (Debian package prometheus) must be installed: scripts/bootstrap installs it');
  await labUp({ backends: 3, mode: 'native', configured: [1, 2, 3] });
  dir = mkdtempSync(join(tmpdir(), 'xdplb-prometheus-'));
  // The shipped files, with second-scale intervals and `for`.
  const rules = load(readFileSync(`${ROOT}deploy/prometheus/xdplb.rules.yml`, 'utf8')) as { groups: { rules: { for?: string }[] }[] };
  for (const g of rules.groups) for (const r of g.rules) if (r.for) r.for = '2s';
  writeFileSync(join(dir, 'xdplb.rules.yml'), dump(rules));
  const config = load(readFileSync(`${ROOT}deploy/prometheus/prometheus.yml`, 'utf8')) as {
    global: Record<string, string>;
    scrape_configs: Record<string, string>[];
  };
  config.global.scrape_interval = config.global.evaluation_interval = '1s';
  for (const s of config.scrape_configs) Object.assign(s, { scrape_interval: '1s', scrape_timeout: '1s' });
  writeFileSync(join(dir, 'prometheus.yml'), dump(config));

  writeFileSync(LAB.configPath, labConfig([1, 2, 3], CHECK + SOLO));
  await until('health checks up on web and solo', () => {
    const st = readLabStatus();
    const solo = st.services.find((s) => s.vip === SOLO_VIP);
    return st.services.length === 2 && st.services[0]!.backends.every((b) => b.health === 'up') && solo?.backends.find((b) => b.address === LAB.backend(3))?.health === 'up';
  });

  const argv = inNs(LAB.directorNs, ['prometheus', `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${PROM}`, '--log.level=warn']);
  prometheus = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prometheus.stderr!.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  await until('Prometheus ready', () => prometheus!.exitCode === null && getInDirectorNs(`http://${PROM}/-/ready`).status === 200, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${log}`);
  });
  for (const args of [['continuous', `http://${LAB.vip}/`], ['datagrams', `${SOLO_VIP}:53`, '100']]) {
    const a = inNs(LAB.clientNs, [process.execPath, `${ROOT}src/lab/client.ts`, ...args]);
    traffic.push(spawn(a[0]!, a.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] }));
  }
});

after(async () => {
  for (const t of traffic) t.kill('SIGKILL');
  if (prometheus && prometheus.exitCode === null) {
    const gone = new Promise((r) => prometheus!.once('exit', r));
    prometheus.kill('SIGTERM');
    await gone;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  await labDown();
});

test('xdplb status --watch shows live per-backend rates while traffic runs, until Ctrl-C', async () => {
  const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'status', '--pin-dir', LAB.pinDir, '--watch', '1']);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...LAB.directorEnv } });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await until('three frames', () => out.split('\x1b[2J\x1b[H').length > 3, 20_000);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  assert.equal(await exited, 0, 'Ctrl-C ends it cleanly');
  const frames = out.split('\x1b[2J\x1b[H').filter(Boolean);
  const last = frames.at(-1)!;
  assert.match(last, /Pkt\/s +Byte\/s +Flow\/s/, 'rates, not totals');
  for (let i = 1; i <= 3; i++) {
    const row = new RegExp(`-> ${LAB.backend(i).replaceAll('.', '\\.')}:80 +\\S+ +\\d+ +\\S+ +\\S+ +[\\d.]+% +([\\d.]+)`).exec(last);
    assert.ok(row, `backend ${i} has a row:\n${last}`);
    assert.ok(Number(row[1]) > 0, `backend ${i} shows a packet rate (${row[1]}/s) under the running client`);
  }
});

test('a real Prometheus scrapes the lab director: dashboard queries return data, alerts fire as they should', async () => {
  await until('a dozen scrapes of the director', () => Number(query('count_over_time(up{job="xdplb"}[15s])')[0]?.value[1] ?? 0) >= 12, 40_000);
  assert.equal(query('up{job="xdplb"}')[0]?.value[1], '1', 'the target is up');

  // Every metric the dashboard and the rules name is served.
  const metrics = getInDirectorNs('http://127.0.0.1:9842/metrics');
  assert.equal(metrics.status, 200);
  const board = dashboard() as { panels: { title: string; targets?: { expr: string }[] }[]; templating: { list: { name: string; definition?: string }[] } };
  const exprs = board.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  const rulesText = readFileSync(`${ROOT}deploy/prometheus/xdplb.rules.yml`, 'utf8');
  const alertExprs = (load(rulesText) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
  const named = new Set([...exprs.map((e) => e.expr), ...alertExprs.map((r) => r.expr), ...board.templating.list.map((v) => v.definition ?? '')].flatMap((e) => e.match(/\b(?:xdplb|process)_[a-z0-9_]+/g) ?? []));
  assert.ok(named.size >= 20, `the dashboard and rules name ${named.size} metrics`);
  // the Kubernetes mode's series are served in that mode only (test/k8s/director.test.ts checks them)
  for (const name of named) if (!name.startsWith('xdplb_kubernetes_')) assert.match(metrics.body, new RegExp(`^${name}[{ ]`, 'm'), `${name} (named by the dashboard or rules) is in /metrics`);

  // Every panel query returns data, as does every variable.
  for (const { panel, expr } of exprs) assert.ok(query(substitute(expr)).length > 0, `panel "${panel}": ${expr} returned no data`);
  assert.deepEqual(promApi<string[]>(`/api/v1/label/instance/values?match[]=xdplb_build_info`), ['127.0.0.1:9842']);
  assert.deepEqual(promApi<string[]>(`/api/v1/label/local_address/values?match[]=${encodeURIComponent('xdplb_service_packets_total{instance=~".+"}')}`).sort(), [LAB.vip, SOLO_VIP]);
  // The traffic is really seen (not only zero-valued series).
  const perBackend = query(substitute(exprs.find((e) => e.panel === 'Packets per backend')!.expr));
  for (let i = 1; i <= 3; i++) assert.ok(perBackend.some((r) => r.metric.remote_address === LAB.backend(i) && Number(r.value[1]) > 0), `packets to backend ${i} have a rate`);

  // Every alert expression evaluates (those not induced below are unit-tested by promtool).
  for (const r of alertExprs) query(r.expr);

  // Alerts: the node that does not exist is down and unresolved from the start.
  const ghost = [`XdplbBackendDown local_address=${SOLO_VIP} remote_address=${GHOST}`, `XdplbBackendUnresolved remote_address=${GHOST}`];
  await firingExactly(ghost, 'the unresolvable backend');

  // Backend 3 stops: it is down for both services; solo has no healthy backend left and drops its datagrams.
  await stopBackendServer(3);
  await firingExactly(
    [
      ...ghost,
      `XdplbBackendDown local_address=${LAB.vip} remote_address=${LAB.backend(3)}`,
      `XdplbBackendDown local_address=${SOLO_VIP} remote_address=${LAB.backend(3)}`,
      `XdplbVipNoHealthyBackend local_address=${SOLO_VIP} name=solo`,
      'XdplbDropsRising reason=no_backend',
    ],
    'backend 3 stopped',
  );

  // A refused configuration fires its alert; a good one clears it.
  const good = readFileSync(LAB.configPath, 'utf8');
  writeFileSync(LAB.configPath, `${good}  - name: broken\n    vip: not-an-address\n`);
  await until('the refused reload alert', () => firing().includes('XdplbConfigReloadRefused'));
  writeFileSync(LAB.configPath, good);
  await until('the refused reload alert to clear', () => !firing().includes('XdplbConfigReloadRefused'));

  // The daemon goes away: its scrape fails and XdplbDown fires (the other alerts' series go stale).
  await stopDirector();
  await until('XdplbDown', () => firing().includes('XdplbDown'));
});
