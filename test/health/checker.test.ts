// The checker with real TCP probes on 127.0.0.1: backends whose port is
// closed go down, the all-down policy decides what stays in, and nothing a
// run throws stops a check or escapes it.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { HealthChecker } from '../../src/health/checker.ts';
import { log, type Logger } from '../../src/log.ts';
import { mustParseIp } from '../../src/model/address.ts';
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
function recordingLog(): { logger: Logger; lines: () => { msg: string; runErrors?: number; service?: string; err?: { type: string; stack: string } }[] } {
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
    const failed = lines().filter((l) => l.msg === 'recording a probe failed (a bug); its verdict stands' || l.msg === 'health check run failed; the check goes on');
    assert.equal(failed.length, 2, JSON.stringify(lines()));
    assert.deepEqual(failed.map((l) => [l.service, l.runErrors]), [['web', 1], ['web', 2]]);
    assert.deepEqual(failed.map((l) => [l.err?.type, /^Error: (metrics|reconcile) exploded\n\s+at /.test(l.err?.stack ?? '')]), [['Error', true], ['Error', true]], 'logged with the error itself: its stack');
  } finally {
    checker.stop();
  }
});
