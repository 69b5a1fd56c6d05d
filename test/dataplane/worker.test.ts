// The addon keeps per-environment state: it loads and runs in worker threads
// (and alongside the main thread) without sharing anything that crashes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

const WORKER = `
import { parentPort } from 'node:worker_threads';
import { Fixture } from ${JSON.stringify(new URL('../helpers/dataplane-fixture.ts', import.meta.url).href)};
import { ethernet, ipv4, tcp } from ${JSON.stringify(new URL('../helpers/packets.ts', import.meta.url).href)};
const fx = await Fixture.create(101);
fx.setService({ id: 1, vip: '10.240.0.201', port: 80, proto: 'tcp', backends: [{ n: 7 }] });
const r = await fx.run(ethernet(ipv4('10.240.0.10', '10.240.0.201', tcp(1, 80))));
parentPort.postMessage({ verdict: r.verdict, backend: Fixture.backendOf(r.packet), tx: Number(fx.dp.globalStats().xdp_tx) });
`;

test('two worker threads load, fill and run their own data planes', async () => {
  const run = () =>
    new Promise<{ verdict: string; backend: number; tx: number }>((resolve, reject) => {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER)}`));
      w.once('message', resolve);
      w.once('error', reject);
    });
  const results = await Promise.all([run(), run()]);
  for (const r of results) assert.deepEqual(r, { verdict: 'TX', backend: 7, tx: 1 });
});
