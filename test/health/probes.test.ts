// Health-check probes against real servers on 127.0.0.1, and the rise/fall
// state machine. A probe never throws and never rejects.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpProbe, tcpProbe } from '../../src/health/probes.ts';
import { INITIAL, nextHealth } from '../../src/health/state.ts';

describe('rise and fall', () => {
  test('fall failures in a row take a backend out, rise successes bring it back', () => {
    let s = INITIAL;
    const feed = (ok: boolean) => {
      const r = nextHealth(s, ok, 2, 3);
      s = r.state;
      return r.changed;
    };
    assert.deepEqual([false, false, true].map(() => feed(false)), [false, false, true], 'down on the third failure');
    assert.equal(s.up, false);
    assert.deepEqual([feed(true), feed(false), feed(true), feed(true)], [false, false, false, true], 'a failure resets the rise count');
    assert.equal(s.up, true);
  });
});

describe('probes', () => {
  let http: ReturnType<typeof createHttp>;
  let https: ReturnType<typeof createHttps>;
  let httpPort = 0;
  let httpsPort = 0;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xdplb-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=backend', '-days', '1', '-keyout', join(dir, 'k'), '-out', join(dir, 'c')], { stdio: 'ignore' });
    http = createHttp((req, res) => {
      res.writeHead(req.url === '/broken' ? 503 : req.headers.host === 'app.example' ? 204 : 200);
      res.end();
    });
    https = createHttps({ key: readFileSync(join(dir, 'k')), cert: readFileSync(join(dir, 'c')) }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as AddressInfo).port;
    httpsPort = (https.address() as AddressInfo).port;
  });
  after(() => {
    http.close();
    https.close();
  });
  const base = { host: '127.0.0.1', path: '/', expect: '200-399', verifyTls: false, timeoutMs: 1000 } as const;

  test('tcp: a listening port is up, a closed one down', async () => {
    assert.equal((await tcpProbe('127.0.0.1', httpPort, 1000)).ok, true);
    const closed = await tcpProbe('127.0.0.1', 1, 1000);
    assert.equal(closed.ok, false);
    assert.match(closed.detail, /ECONNREFUSED/);
  });

  test('http: expected status or range, path and Host header', async () => {
    assert.equal((await httpProbe({ ...base, scheme: 'http', port: httpPort })).ok, true);
    const broken = await httpProbe({ ...base, scheme: 'http', port: httpPort, path: '/broken' });
    assert.equal(broken.ok, false);
    assert.equal(broken.detail, 'HTTP 503');
    assert.equal((await httpProbe({ ...base, scheme: 'http', port: httpPort, path: '/broken', expect: '500-599' })).ok, true);
    assert.equal((await httpProbe({ ...base, scheme: 'http', port: httpPort, expect: 204, hostHeader: 'app.example' })).ok, true);
    assert.equal((await httpProbe({ ...base, scheme: 'http', port: httpPort, expect: 204 })).ok, false);
  });

  test('https: a self-signed certificate passes unless verification is asked for', async () => {
    assert.equal((await httpProbe({ ...base, scheme: 'https', port: httpsPort })).ok, true);
    const verified = await httpProbe({ ...base, scheme: 'https', port: httpsPort, verifyTls: true });
    assert.equal(verified.ok, false);
    assert.match(verified.detail, /self[- ]signed/i);
  });

  test('a stall of the daemon longer than the timeout does not fail a backend that answered meanwhile', async () => {
    // the server runs in another process and answers 50 ms after a request: while this one is stalled
    const server = spawn(process.execPath, ['-e', "const s = require('node:http').createServer((q, r) => setTimeout(() => r.end('ok'), 50)).listen(0, '127.0.0.1', () => console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    // the event loop held up 4 x the timeout (a huge reload, say), from an I/O-side callback: the next
    // turn of the loop then finds the probes' timers due before it reads what arrived meanwhile
    const stall = () =>
      new Promise<void>((r) =>
        setImmediate(() => {
          const until = Date.now() + 400;
          while (Date.now() < until);
          r();
        }),
      );
    try {
      const port = Number(await new Promise<string>((r) => server.stdout!.once('data', (d: Buffer) => r(d.toString()))));
      const tcp = tcpProbe('127.0.0.1', port, 100); // connects during the stall
      await stall();
      const t = await tcp;
      assert.equal(t.ok, true, `tcp: ${t.detail}`);
      const web = httpProbe({ ...base, scheme: 'http', port, timeoutMs: 100 });
      await new Promise((r) => setTimeout(r, 20)); // connected, request sent; the answer comes during the stall
      await stall();
      const h = await web;
      assert.equal(h.ok, true, `http: ${h.detail}`);
    } finally {
      server.kill();
    }
  });

  test('a backend that streams an endless body: the probe passes on the status and closes the connection (one stayed open, read, per check)', async () => {
    let streamed = 0;
    const endless = createHttp((_req, res) => {
      res.writeHead(200);
      const t = setInterval(() => (streamed += res.write(Buffer.alloc(64 * 1024)) ? 64 * 1024 : 0), 5);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await httpProbe({ ...base, scheme: 'http', port: (endless.address() as AddressInfo).port, timeoutMs: 300 })).ok, true);
      await new Promise((r) => setTimeout(r, 500)); // past the timeout
      const open = await new Promise<number>((r) => endless.getConnections((_e, n) => r(n)));
      assert.equal(open, 0, `connections the probes left open (${(streamed / 1e6).toFixed(1)} MB streamed)`);
    } finally {
      endless.closeAllConnections();
      endless.close();
    }
  });

  test('a server that never answers fails within the timeout', async () => {
    const silent = createHttp(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const started = Date.now();
    const r = await httpProbe({ ...base, scheme: 'http', port: (silent.address() as AddressInfo).port, timeoutMs: 300 });
    silent.closeAllConnections();
    silent.close();
    assert.equal(r.ok, false);
    assert.ok(Date.now() - started < 1500, 'gave up near the timeout');
  });

  test('what Node refuses to even start is a failed probe that names the error, not a throw or a rejection', async () => {
    const http = (over: Partial<Parameters<typeof httpProbe>[0]>) => httpProbe({ ...base, scheme: 'http', port: httpPort, ...over });
    const cases: [string, () => Promise<{ ok: boolean; detail: string }>, RegExp][] = [
      ['a space in the path', () => http({ path: '/health check' }), /^probe not started: ERR_UNESCAPED_CHARACTERS: /],
      ['a control character in the path', () => http({ path: '/a\u0007' }), /^probe not started: ERR_UNESCAPED_CHARACTERS: /],
      ['a control character in the Host header', () => http({ hostHeader: 'x\u0007y' }), /^probe not started: ERR_INVALID_CHAR: .*host/],
      ['a port out of range (http)', () => http({ port: 70000 }), /^probe not started: ERR_SOCKET_BAD_PORT: /],
      ['a port out of range (https)', () => httpProbe({ ...base, scheme: 'https', port: -1 }), /^probe not started: ERR_SOCKET_BAD_PORT: /],
      ['an expectation that is not one', () => http({ expect: undefined as unknown as string }), /^probe not started: /],
      ['a port out of range (tcp)', () => tcpProbe('127.0.0.1', 70000, 1000), /^probe not started: ERR_SOCKET_BAD_PORT: /],
      ['a host that is not a string (tcp)', () => tcpProbe(42 as unknown as string, httpPort, 1000), /^probe not started: ERR_INVALID_ARG_TYPE: /],
    ];
    for (const [what, probe, detail] of cases) {
      let r: { ok: boolean; detail: string };
      try {
        r = await probe();
      } catch (err) {
        assert.fail(`${what}: the probe threw or rejected: ${String(err)}`);
      }
      assert.equal(r.ok, false, what);
      assert.match(r.detail, detail, what);
    }
  });
});

