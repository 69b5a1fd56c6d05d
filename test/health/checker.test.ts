// The checker with real TCP probes on 127.0.0.1: backends whose port is
// closed go down, and the all-down policy decides what stays in.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { HealthChecker } from '../../src/health/checker.ts';
import { log } from '../../src/log.ts';
import { mustParseIp } from '../../src/model/address.ts';

async function settle(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

test('a backend with a closed port goes down; all down: keep-last keeps the last healthy set, remove keeps none', async () => {
  const open = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => open.once('listening', r));
  const port = (open.address() as AddressInfo).port;
  const config = (allDown: string) =>
    validateConfig({
      services: [
        {
          name: 'web',
          vip: '10.240.0.201',
          port,
          allDown,
          backends: [{ address: '127.0.0.1' }, { address: '127.0.0.2' }],
          healthCheck: { type: 'tcp', interval: '100ms', timeout: '50ms', rise: 1, fall: 1 },
        },
      ],
    });
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
    assert.equal(checker.healthy(svc, a), true);
    assert.equal(checker.healthy(svc, b), false);
    open.close();
    await settle(400);
    assert.equal(checker.health('web', a), 'down', 'its port closed');
    assert.equal(checker.healthy(svc, a), true, 'keep-last: the last healthy set stays');
    assert.equal(checker.healthy(svc, b), false, 'keep-last: a backend down before stays out');
    const remove = config('remove');
    checker.sync(remove);
    assert.equal(checker.healthy(remove.services[0]!, a), false, 'remove: nothing stays');
  } finally {
    checker.stop();
    open.close();
  }
});
