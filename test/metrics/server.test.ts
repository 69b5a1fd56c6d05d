// The /metrics server writes the exposition chunk by chunk as it is made,
// over real HTTP: the body is the chunks in order; a failure before the first
// chunk is a 500, one after it cuts the body short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { startMetricsServer, type Exposition } from '../../src/metrics/server.ts';

async function scrape(metrics: Exposition): Promise<{ status: number; body: string; complete: boolean }> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo; // a free port (the config refuses port 0)
  await new Promise((r) => probe.close(r));
  const server = await startMetricsServer(`127.0.0.1:${port}`, metrics, () => true);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    try {
      return { status: res.status, body: await res.text(), complete: true };
    } catch {
      return { status: res.status, body: '', complete: false };
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('the body is every chunk, in order, whatever their sizes', async () => {
  const chunks = ['# HELP a x\n', 'a 1\n'.repeat(200_000), '', 'b 2\n'];
  const got = await scrape({ contentType: 'text/plain; version=0.0.4', chunks: async function* () { for (const c of chunks) { await new Promise((r) => setImmediate(r)); yield c; } } });
  assert.equal(got.status, 200);
  assert.equal(got.body, chunks.join(''));
});

test('a failure before the first chunk is a 500 naming it; one after it cuts the body short', async () => {
  const before = await scrape({ contentType: 'text/plain', chunks: async function* () { throw new Error('map read failed'); } });
  assert.equal(before.status, 500);
  assert.equal(before.body, 'scrape failed: map read failed\n');
  const after = await scrape({ contentType: 'text/plain', chunks: async function* () { yield 'a 1\n'.repeat(100_000); throw new Error('map read failed'); } });
  assert.equal(after.status, 200);
  assert.equal(after.complete, false, 'a scrape cut short is not a complete body');
});
