// The checker with real TCP and HTTP probes on 127.0.0.1: backends whose
// port is closed go down, the all-down policy decides what stays in, nothing
// a run throws stops a check or escapes it, and services that check one
// backend in the same way share one probe (counted on a real server).
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { HealthChecker } from '../../src/health/checker.ts';
import { log, type Logger } from '../../src/log.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { backendKey } from '../../src/model/keys.ts';
import { desired, type Facts } from '../../src/model/desired.ts';

async function settle(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * A validated config whose backends are moved to 127.0.0.x: the schema
 * refuses loopback backends (the data plane cannot send a flow there), the
 * checker probes whatever address it is given.
 */
function onLoopback(config: Config): Config {
  return { ...config, services: config.services.map((s) => ({ ...s, backends: s.backends.map((b, i) => ({ ...b, address: `127.0.0.${i + 1}` })) })) };
}

test('a backend with a closed port goes down; all down: keep-last keeps the last healthy set, remove keeps none', async () => {
  const open = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => open.once('listening', r));
  const port = (open.address() as AddressInfo).port;
  const config = (allDown: string) =>
    onLoopback(validateConfig({
      services: [
        {
          name: 'web',
          vip: '10.240.0.201',
          port,
          allDown,
          backends: [{ address: '10.240.0.101' }, { address: '10.240.0.102' }],
          healthCheck: { type: 'tcp', interval: '100ms', timeout: '50ms', rise: 1, fall: 1 },
        },
      ],
    }));
  let changes = 0;
  const checker = new HealthChecker(() => changes++, log);
  try {
    const keep = config('keep-last');
    checker.sync(keep);
    const svc = keep.services[0]!;
    const a = mustParseIp('127.0.0.1');
    const b = mustParseIp('127.0.0.2'); // nothing listens there: refused
    await settle(400);
    assert.equal(checker.health('web', a), 'up');
    assert.equal(checker.health('web', b), 'down');
    assert.ok(changes >= 1, 'a transition asked for a reconcile');
    assert.equal(checker.healthy(svc.name, a), true);
    assert.equal(checker.healthy(svc.name, b), false);
    open.close();
    await settle(400);
    assert.equal(checker.health('web', a), 'down', 'its port closed');
    assert.equal(checker.healthy(svc.name, a), true, 'keep-last: the last healthy set stays');
    assert.equal(checker.healthy(svc.name, b), false, 'keep-last: a backend down before stays out');
    const remove = config('remove');
    checker.sync(remove);
    assert.equal(checker.healthy(remove.services[0]!.name, a), false, 'remove: nothing stays');
  } finally {
    checker.stop();
    open.close();
  }
});

/** A TCP server listening on host:port (port 0: any). */
async function listening(host: string, port = 0) {
  const server = createServer().listen(port, host);
  await new Promise((r) => server.once('listening', r));
  return { server, port: (server.address() as AddressInfo).port };
}

test('desired() only reads the checker: the all-down memory is kept where verdicts change, whoever asks and however often', async () => {
  const a = await listening('127.0.0.1');
  const b = await listening('127.0.0.2', a.port);
  const config = onLoopback(validateConfig({
    services: [
      {
        name: 'web',
        vip: '10.240.0.201',
        port: a.port,
        allDown: 'keep-last',
        backends: [{ address: '10.240.0.101' }, { address: '10.240.0.102' }],
        healthCheck: { type: 'tcp', interval: '100ms', timeout: '50ms', rise: 1, fall: 1 },
      },
    ],
  }));
  const factsOf = (checker: HealthChecker): Facts => ({
    macOf: () => Buffer.from('020000000101', 'hex'),
    healthy: (s, ip) => checker.healthy(s.name, ip),
    health: (s, ip) => checker.health(s.name, ip),
  });
  // one checker is asked at every change (as a reconcile does), the other never
  let asking: Facts | null = null;
  const asked = new HealthChecker(() => asking && desired(config, asking), log);
  const silent = new HealthChecker(() => undefined, log);
  asking = factsOf(asked);
  const quiet = factsOf(silent);
  const states = (f: Facts) => desired(config, f).services.values().next().value!.backends.map((x) => `${x.address.text} ${x.state} ${x.health}`);
  const ip = (t: string) => mustParseIp(t);
  const verdicts = (c: HealthChecker) => [c.health('web', ip('127.0.0.1')), c.health('web', ip('127.0.0.2'))];
  try {
    asked.sync(config);
    silent.sync(config);
    await settle(400);
    assert.deepEqual(verdicts(silent), ['up', 'up']);
    a.server.close();
    await settle(400);
    assert.deepEqual(verdicts(silent), ['down', 'up']);
    b.server.close();
    await settle(400);
    assert.deepEqual(verdicts(silent), ['down', 'down']);
    const once = desired(config, quiet);
    const twice = desired(config, quiet);
    assert.deepEqual(twice, once, 'the same input, the same output');
    assert.deepEqual(states(quiet), ['127.0.0.1 down down', '127.0.0.2 active down'], 'keep-last: 127.0.0.2 was up last, though nobody asked meanwhile');
    assert.deepEqual(desired(config, asking), once, 'a checker asked at every change says the same as one never asked');
    assert.deepEqual([asked.healthy('web', ip('127.0.0.1')), asked.healthy('web', ip('127.0.0.2'))], [false, true]);
  } finally {
    asked.stop();
    silent.stop();
    a.server.close();
    b.server.close();
  }
});

/** Rejections no one handled while fn ran (the daemon would die of the first). */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', record);
  try {
    await fn();
    await settle(50);
  } finally {
    process.off('unhandledRejection', record);
  }
  return seen;
}

/** A logger that keeps its lines. */
function recordingLog(): { logger: Logger; lines: () => { msg: string; runErrors?: number; service?: string; backend?: string; err?: { type: string; stack: string } }[] } {
  const out: string[] = [];
  const logger = pino({ level: 'info', base: undefined }, { write: (line: string) => void out.push(line) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as { msg: string }) };
}

test('a probe Node refuses to start fails the backend; nothing escapes the checker', async () => {
  const open = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => open.once('listening', r));
  const port = (open.address() as AddressInfo).port;
  const valid = onLoopback(validateConfig({ services: [{ name: 'web', vip: '10.240.0.201', port, backends: [{ address: '10.240.0.101' }], healthCheck: { type: 'http', interval: '100ms', timeout: '50ms', rise: 1, fall: 1 } }] }));
  // what the schema now refuses, as a config that got past an older one would have it
  const svc = valid.services[0]!;
  const config: Config = { ...valid, services: [{ ...svc, healthCheck: { ...svc.healthCheck, path: '/health check' } as typeof svc.healthCheck }] };
  const probes: string[] = [];
  const checker = new HealthChecker(() => undefined, log, (_check, r) => probes.push(r.detail));
  try {
    const unhandled = await unhandledDuring(async () => {
      checker.sync(config);
      await settle(350);
    });
    assert.deepEqual(unhandled, [], 'no rejection escaped');
    assert.equal(checker.health('web', mustParseIp('127.0.0.1')), 'down');
    assert.ok(probes.length >= 2, `the check went on (${probes.length} probes)`);
    assert.match(probes[0]!, /^probe not started: ERR_UNESCAPED_CHARACTERS/);
    assert.equal(checker.errors(), 0, 'a failed probe is no error of the checker');
  } finally {
    checker.stop();
    open.close();
  }
});

test('a run that throws is logged and counted, the check goes on, no rejection escapes', async () => {
  const config = onLoopback(validateConfig({ services: [{ name: 'web', vip: '10.240.0.201', port: 1, backends: [{ address: '10.240.0.101' }], healthCheck: { type: 'tcp', interval: '100ms', timeout: '50ms', rise: 1, fall: 1 } }] }));
  const { logger, lines } = recordingLog();
  let probes = 0;
  let changes = 0;
  const checker = new HealthChecker(
    () => {
      changes++;
      throw new Error('reconcile exploded');
    },
    logger,
    () => {
      probes++;
      if (probes === 1) throw new Error('metrics exploded');
    },
  );
  try {
    const unhandled = await unhandledDuring(async () => {
      checker.sync(config);
      await settle(450);
    });
    assert.deepEqual(unhandled, [], 'no rejection escaped');
    assert.ok(probes >= 3, `the check went on after its callbacks threw (${probes} probes)`);
    assert.equal(changes, 1, 'the verdict changed once (down), and stays down');
    assert.equal(checker.health('web', mustParseIp('127.0.0.1')), 'down');
    assert.equal(checker.errors(), 2, 'onProbe once, onChange once');
    const failed = lines().filter((l) => l.msg === 'recording a probe failed (a bug); its verdict stands' || l.msg === 'asking for a reconcile failed (a bug); the other services are still told');
    assert.equal(failed.length, 2, JSON.stringify(lines()));
    assert.deepEqual(failed.map((l) => [l.backend, l.service, l.runErrors]), [['127.0.0.1', undefined, 1], ['127.0.0.1', 'web', 2]], 'a probe is of a backend; a reconcile, of a service');
    assert.deepEqual(failed.map((l) => [l.err?.type, /^Error: (metrics|reconcile) exploded\n\s+at /.test(l.err?.stack ?? '')]), [['Error', true], ['Error', true]], 'logged with the error itself: its stack');
  } finally {
    checker.stop();
  }
});

/** An HTTP server on 127.0.0.1 that counts the requests to each path and answers each path's status (200 unless set). */
async function countingHttp() {
  const requests = new Map<string, number>();
  const statuses = new Map<string, number>();
  const server = createHttpServer((req, res) => {
    const path = req.url ?? '';
    requests.set(path, (requests.get(path) ?? 0) + 1);
    res.writeHead(statuses.get(path) ?? 200).end();
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests: (path: string) => requests.get(path) ?? 0,
    answer: (path: string, status: number) => void statuses.set(path, status),
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

/** Waits until ok() holds, at most ms; returns whether it did. */
async function until(ok: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await settle(10);
  }
  return true;
}

const INTERVAL = 100;

/**
 * Services of one backend (127.0.0.1) each checked by HTTP as given, every
 * check by default kube-proxy's as a Kubernetes node has it (GET /healthz,
 * here on the test server's port), every INTERVAL ms, one result a verdict.
 */
function sharing(port: number, checks: readonly Record<string, unknown>[], allDown = 'keep-last'): Config {
  return onLoopback(validateConfig({
    services: checks.map((check, i) => ({
      name: `svc-${i}`,
      vip: '10.240.0.201',
      port: 1000 + i,
      allDown,
      backends: [{ address: '10.240.0.101' }],
      healthCheck: { type: 'http', port, path: '/healthz', interval: `${INTERVAL}ms`, timeout: '50ms', rise: 1, fall: 1, ...check },
    })),
  }));
}

const node = mustParseIp('127.0.0.1');

test('services with the same check of one backend share one probe: one request per interval, and every one of them is told of its verdict', async () => {
  const http = await countingHttp();
  const n = 50;
  const config = sharing(http.port, Array.from({ length: n }, () => ({})));
  const changes = new Map<string, number>();
  let probes = 0;
  const checker = new HealthChecker((s) => void changes.set(s, (changes.get(s) ?? 0) + 1), log, () => probes++);
  try {
    checker.sync(config);
    await settle(50);
    const from = http.requests('/healthz');
    const started = Date.now();
    await settle(1000);
    const sent = http.requests('/healthz') - from;
    const intervals = (Date.now() - started) / INTERVAL;
    assert.ok(sent >= 3 && sent <= intervals + 1, `one probe for ${n} services: ${sent} requests in ${intervals.toFixed(1)} intervals (a probe per service: about ${Math.round(n * intervals)})`);
    assert.ok(http.requests('/healthz') - probes <= 1, `onProbe once per probe run: ${probes} calls, ${http.requests('/healthz')} requests (one may be under way)`);
    const views = [...checker.views()];
    assert.equal(views.length, n, 'one view per service and backend');
    assert.ok(views.every((v) => v.ok === views[0]!.ok && v.ok > 0), 'every view counts the shared probe');
    assert.deepEqual([...changes.keys()], [], 'no verdict changed yet');

    http.answer('/healthz', 503);
    assert.ok(await until(() => changes.size === n), `every service was told (${changes.size} of ${n})`);
    await settle(3 * INTERVAL);
    for (const s of config.services) {
      assert.equal(checker.health(s.name, node), 'down', s.name);
      assert.equal(changes.get(s.name), 1, `${s.name}: onChange once`);
      assert.equal(checker.healthy(s.name, node), true, `${s.name}: keep-last, its all-down memory updated: the last up stays`);
    }
  } finally {
    checker.stop();
    http.close();
  }
});

test('checks that differ in port, path or timing are separate probes, each with its own verdict', async () => {
  const http = await countingHttp();
  const other = await countingHttp();
  const config = sharing(http.port, [{}, { path: '/other' }, { port: other.port }, { fall: 10 }]);
  const checker = new HealthChecker(() => undefined, log);
  try {
    checker.sync(config);
    assert.ok(await until(() => http.requests('/other') > 0 && other.requests('/healthz') > 0), 'the check of another path and the one of another port each probe');
    http.answer('/healthz', 503);
    assert.ok(await until(() => checker.health('svc-0', node) === 'down'), 'fall 1: down after one failure');
    const [, otherPath, otherPort, patient] = config.services.map((s) => checker.health(s.name, node));
    assert.deepEqual([otherPath, otherPort], ['up', 'up'], 'what the other path and port answer');
    assert.equal(patient, 'up', 'fall 10: its own probe, up until ten failures in a row');
    assert.ok(await until(() => checker.health('svc-3', node) === 'down', 20 * INTERVAL), 'fall 10: down after ten');
  } finally {
    checker.stop();
    http.close();
    other.close();
  }
});

test('a service that joins a running probe takes its verdict at once, and adds no probe', async () => {
  const http = await countingHttp();
  const checks = [{}, {}, {}];
  const checker = new HealthChecker(() => undefined, log);
  try {
    checker.sync(sharing(http.port, checks.slice(0, 1), 'remove'));
    http.answer('/healthz', 503);
    assert.ok(await until(() => checker.health('svc-0', node) === 'down'));
    checker.sync(sharing(http.port, checks, 'remove'));
    for (const name of ['svc-1', 'svc-2']) {
      assert.equal(checker.health(name, node), 'down', `${name}: the probe's verdict, not a new one's first "up"`);
      assert.equal(checker.healthy(name, node), false, `${name}: its all-down memory counted at once (remove: nothing stays)`);
    }
    const from = http.requests('/healthz');
    const started = Date.now();
    await settle(1000);
    const intervals = (Date.now() - started) / INTERVAL;
    assert.ok(http.requests('/healthz') - from <= intervals + 1, `still one probe: ${http.requests('/healthz') - from} requests in ${intervals.toFixed(1)} intervals`);
  } finally {
    checker.stop();
    http.close();
  }
});

test('a new probe starts down if the data plane recorded any of its services down', async () => {
  const http = await countingHttp();
  const config = sharing(http.port, [{}, {}, {}]);
  const checker = new HealthChecker(() => undefined, log);
  try {
    checker.sync(config, new Set([backendKey('svc-1', '127.0.0.1')]));
    assert.deepEqual(config.services.map((s) => checker.health(s.name, node)), ['down', 'down', 'down'], 'one probe, one verdict');
    assert.ok(await until(() => checker.health('svc-0', node) === 'up'), 'back after rise successes');
  } finally {
    checker.stop();
    http.close();
  }
});

test('a probe whose last service leaves stops', async () => {
  const http = await countingHttp();
  const config = sharing(http.port, [{}, {}]);
  const checker = new HealthChecker(() => undefined, log);
  try {
    checker.sync(config);
    assert.ok(await until(() => http.requests('/healthz') >= 2));
    checker.sync({ ...config, services: config.services.slice(1) });
    const from = http.requests('/healthz');
    await settle(3 * INTERVAL);
    assert.ok(http.requests('/healthz') > from, 'one service left: the probe goes on');
    checker.sync({ ...config, services: [] });
    await settle(INTERVAL / 2); // a request under way may still arrive
    const last = http.requests('/healthz');
    await settle(5 * INTERVAL);
    assert.equal(http.requests('/healthz'), last, 'no service left: no more requests');
    assert.equal(checker.health('svc-1', node), 'none');
    assert.deepEqual([...checker.views()], []);
  } finally {
    checker.stop();
    http.close();
  }
});

test('a service whose check changes moves to another probe; the others keep theirs, its state and its counts', async () => {
  const http = await countingHttp();
  const changes: string[] = [];
  const checker = new HealthChecker((s) => void changes.push(s), log);
  const before = sharing(http.port, [{}, {}, {}]);
  const after = sharing(http.port, [{}, {}, { path: '/other' }]);
  const viewOf = (name: string) => [...checker.views()].find((v) => v.service === name)!;
  try {
    checker.sync(before);
    http.answer('/healthz', 503);
    http.answer('/other', 503);
    assert.ok(await until(() => changes.length === 3), 'all three down');
    const probed = viewOf('svc-0').ok + viewOf('svc-0').failed;
    checker.sync(after);
    assert.deepEqual(after.services.map((s) => checker.health(s.name, node)), ['down', 'down', 'down'], 'svc-2 brings what its old probe said to the new one');
    assert.ok(viewOf('svc-0').ok + viewOf('svc-0').failed >= probed, 'the same probe goes on counting');
    assert.equal(viewOf('svc-2').ok + viewOf('svc-2').failed, 0, 'svc-2: a new probe');
    http.answer('/other', 200);
    assert.ok(await until(() => checker.health('svc-2', node) === 'up'), 'svc-2: its new probe, its own verdict');
    await settle(3 * INTERVAL);
    assert.deepEqual(['svc-0', 'svc-1'].map((s) => checker.health(s, node)), ['down', 'down'], 'the others: their probe, still down');
    assert.deepEqual(changes.slice(3), ['svc-2'], 'only svc-2 was told of a change');
    assert.ok(http.requests('/other') > 0 && http.requests('/healthz') > 0);
  } finally {
    checker.stop();
    http.close();
  }
});
