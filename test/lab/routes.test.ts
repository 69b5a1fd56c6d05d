// The announcement interface for a routing daemon (routeTable), through the
// lab's director: a route per VIP it can serve in a table of its own, gone
// when no backend of the VIP is healthy, on `xdplb drain-director` (back with
// --undo; the drain survives a restart) and on detach; the director's own
// forwarding never uses that table.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.ts';
import { clientRequests, inNs, LAB, labDown, labUp, startBackendServer, startDirector, stopBackendServer, stopDirector, waitForBackends } from '../../src/lab/lab.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TABLE = 1001;
const SOLO_VIP = '10.240.0.202'; // one backend only: its VIP goes when that backend does

const CONFIG = `# written by test/lab/routes.test.ts
interface: ${LAB.nic}
routeTable: ${TABLE}
services:
  - name: web
    vip: ${LAB.vip}
    port: 80
    backends: [{ address: ${LAB.backend(1)} }, { address: ${LAB.backend(2)} }]
    healthCheck: { type: http, port: 80, path: /, interval: 200ms, timeout: 100ms, rise: 1, fall: 1 }
  - name: web6
    vip: ${LAB.vip6}
    port: 80
    backends: [{ address: ${LAB.backend6(1)} }, { address: ${LAB.backend6(2)} }]
  - name: solo
    vip: ${SOLO_VIP}
    port: 80
    backends: [{ address: ${LAB.backend(2)} }]
    healthCheck: { type: http, port: 80, path: /, interval: 200ms, timeout: 100ms, rise: 1, fall: 1 }
`;

/** The routes of the table in the director's namespace, as `ip route` shows them. */
function routes(): string[] {
  // a table with no route of a family does not exist for it: ip says so, and that is "none"
  const out = (family: '-4' | '-6') => (spawnSync('ip', ['-n', LAB.directorNs, family, 'route', 'show', 'table', String(TABLE)], { encoding: 'utf8' }).stdout ?? '').trim().split('\n').filter(Boolean);
  return [...out('-4'), ...out('-6')].map((l) => l.trim()).sort();
}

const route = (vip: string) => `${vip} dev ${LAB.nic} proto 251 scope link`;
const route6 = (vip: string) => `${vip} dev ${LAB.nic} proto 251 metric 1024 pref medium`;

function xdplb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, ...args, '--pin-dir', LAB.pinDir]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  await labUp({ backends: 2, mode: 'native' });
  await stopDirector();
  writeFileSync(LAB.configPath, CONFIG);
  startDirector('native');
  await waitForBackends(2);
});

after(async () => {
  await labDown();
});

describe('routes for a routing daemon (routeTable)', () => {
  test('a route per VIP it can serve, in its own table, both families; the main table untouched', async () => {
    await eventually('the routes', () => routes().length === 3 && routes(), { ms: 10_000 });
    assert.deepEqual(routes(), [route(LAB.vip), route(SOLO_VIP), route6(LAB.vip6)].sort());
    const main = execFileSync('ip', ['-n', LAB.directorNs, 'route', 'show'], { encoding: 'utf8' });
    assert.ok(!main.includes(LAB.vip) && !main.includes(SOLO_VIP), 'nothing in the main table');
    assert.match(xdplb('status').stdout, new RegExp(`routes in table ${TABLE}: 3 VIPs announced`));
  });

  test('a route deleted under the daemon is back within a second; one of another protocol is left alone', async () => {
    execFileSync('ip', ['-n', LAB.directorNs, 'route', 'del', `${LAB.vip}/32`, 'table', String(TABLE)]);
    execFileSync('ip', ['-n', LAB.directorNs, 'route', 'add', '198.51.100.1/32', 'dev', LAB.nic, 'table', String(TABLE), 'proto', 'static']);
    await eventually('the route back', () => routes().includes(route(LAB.vip)), { ms: 3000 });
    assert.ok(routes().some((r) => r.startsWith('198.51.100.1 ')), "another protocol's route stays");
    execFileSync('ip', ['-n', LAB.directorNs, 'route', 'del', '198.51.100.1/32', 'table', String(TABLE)]);
  });

  test('a VIP whose every backend fails its health check is withdrawn, and comes back with one; one with another healthy backend stays', async () => {
    await stopBackendServer(2);
    await eventually('the solo VIP withdrawn', () => !routes().includes(route(SOLO_VIP)), { ms: 10_000 });
    assert.ok(routes().includes(route(LAB.vip)), 'web keeps its route: backend 1 is healthy');
    assert.ok(clientRequests(5).every((r) => r.ok && r.backend === LAB.backendName(1)), 'and serves from backend 1');
    startBackendServer(2);
    await eventually('the solo VIP back', () => routes().includes(route(SOLO_VIP)), { ms: 10_000 });
  });

  test('drain-director withdraws every route and keeps forwarding, reports when the traffic stopped; it survives a restart; --undo publishes them again', async () => {
    const r = xdplb('drain-director', '--timeout', '30');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /drained: every route withdrawn; the traffic stopped after \d+ s/);
    assert.deepEqual(routes(), []);
    assert.ok(clientRequests(5).every((x) => x.ok), 'still forwarding what arrives');
    assert.match(xdplb('status').stdout, /DRAINED/);
    await stopDirector();
    startDirector('native');
    await waitForBackends(2);
    await new Promise((res) => setTimeout(res, 1500));
    assert.deepEqual(routes(), [], 'a restarted drained director stays drained');
    const undo = xdplb('drain-director', '--undo');
    assert.equal(undo.status, 0, undo.stderr);
    await eventually('the routes back', () => routes().length === 3, { ms: 5000 });
  });

  test('detach withdraws the routes with the VIPs', async () => {
    await stopDirector();
    const r = xdplb('detach', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { routesWithdrawn: string[] }).routesWithdrawn.sort(), [LAB.vip, LAB.vip6, SOLO_VIP].sort());
    assert.deepEqual(routes(), []);
  });
});
