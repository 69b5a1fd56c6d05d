// The local API's client (src/director/api-client.ts), against the real
// server with fake handlers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseApiAddress } from '../../src/config/address.ts';
import { formatApiAddress, startApi, type ApiAddress } from '../../src/director/api.ts';
import { ApiUnreachable, callApi, type ApiTarget } from '../../src/director/api-client.ts';
import { fakeHandlers, recordingLog, TOKEN } from './api-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'xdplb-api-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('formatApiAddress writes what parseApiAddress reads (the CLI names the address it tried)', () => {
  for (const text of ['/run/xdplb/_sys_fs_bpf_xdplb_eth1.api.sock', '127.0.0.1:9843', '[::1]:9843', 'localhost:1']) {
    const a = parseApiAddress(text);
    assert.notEqual(typeof a, 'string', text);
    assert.equal(formatApiAddress(a as ApiAddress), text);
  }
});

describe('callApi', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => (s.closeAllConnections(), s.close())));

  async function serve(kind: 'unix' | 'tcp'): Promise<{ at: ApiTarget; fake: ReturnType<typeof fakeHandlers> }> {
    const fake = fakeHandlers();
    const address: ApiAddress = kind === 'unix' ? { kind, path: join(dir, `${kind}.sock`) } : { kind, host: '127.0.0.1', port: 0 };
    const server = await startApi({ address, pinDir: '/x', log: recordingLog(), token: TOKEN }, fake.h);
    servers.push(server);
    return { at: kind === 'unix' ? address : { kind, host: '127.0.0.1', port: (server.address() as AddressInfo).port, token: TOKEN }, fake };
  }

  for (const kind of ['unix', 'tcp'] as const) {
    test(`asks and acts over ${kind}`, async () => {
      const { at, fake } = await serve(kind);
      const who = await callApi(at, 'GET', '/v1/daemon');
      assert.equal(who.status, 200);
      assert.equal((who.body as { pid: number }).pid, process.pid);
      const done = await callApi(at, 'POST', '/v1/backends/drain', { service: 'web', address: '10.0.0.1' });
      assert.deepEqual(done, { status: 200, body: { ok: true } });
      assert.deepEqual(fake.calls, [['web', '10.0.0.1', 'drain']]);
      const refused = await callApi(at, 'POST', '/v1/backends/remove', { service: 'nosuch', address: '10.0.0.1' });
      assert.deepEqual(refused, { status: 404, body: { error: 'no service nosuch' } });
    });
  }

  test('nothing there: ApiUnreachable with the system error', async () => {
    const code = async (at: ApiAddress) => {
      const err = await callApi(at, 'GET', '/v1/daemon').then(
        () => assert.fail('answered'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ApiUnreachable, String(err));
      return err.code;
    };
    assert.equal(await code({ kind: 'unix', path: join(dir, 'missing.sock') }), 'ENOENT');
    const notSocket = join(dir, 'plain-file');
    writeFileSync(notSocket, '');
    assert.equal(await code({ kind: 'unix', path: notSocket }), 'ECONNREFUSED');
    assert.equal(await code({ kind: 'tcp', host: '127.0.0.1', port: 1 }), 'ECONNREFUSED');
  });

  test('a server that never answers: ETIMEDOUT once the deadline passes', async () => {
    const mute = createServer(() => {}).listen(join(dir, 'mute.sock'));
    await new Promise((r) => mute.once('listening', r));
    try {
      const t0 = Date.now();
      await assert.rejects(callApi({ kind: 'unix', path: join(dir, 'mute.sock') }, 'GET', '/v1/daemon', undefined, 300), (e: unknown) => e instanceof ApiUnreachable && e.code === 'ETIMEDOUT');
      assert.ok(Date.now() - t0 < 2000, 'within the deadline');
    } finally {
      mute.close();
    }
  });
});
