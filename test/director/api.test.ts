// The daemon's local API (src/director/api.ts) with fake handlers: every
// request is validated and size-capped, none can throw out of a handler, and
// the default Unix socket is for root only. No network namespace needed: a
// socket in a temporary directory, and TCP on 127.0.0.1.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { ApiAddress } from '../../src/director/api.ts';
import type { ApiTarget } from '../../src/director/api-client.ts';
import { fakeHandlers, postHuge, recordingLog, send, TOKEN, type Fake } from './api-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'xdplb-api-'));
// the default socket is runFile(pinDir, 'api.sock'): in a run directory of this test (paths.ts reads it once)
const runDir = join(dir, 'run');
process.env.XDPLB_RUN_DIR = runDir;
const { MAX_BODY_BYTES, startApi } = await import('../../src/director/api.ts');
after(() => rmSync(dir, { recursive: true, force: true }));

const TEN_MB = 10 * 1024 * 1024;
let seq = 0;

interface Running {
  server: Server;
  at: ApiTarget;
  fake: Fake;
  log: ReturnType<typeof recordingLog>;
  /** The server side of every connection it took, to see how much it read. */
  sockets: Socket[];
}

async function start(kind: 'unix' | 'tcp'): Promise<Running> {
  const fake = fakeHandlers();
  const log = recordingLog();
  const address: ApiAddress = kind === 'unix' ? { kind, path: join(dir, `api-${++seq}.sock`) } : { kind, host: '127.0.0.1', port: 0 };
  const server = await startApi({ address, pinDir: '/sys/fs/bpf/xdplb/test0', log, ...(kind === 'tcp' ? { token: TOKEN } : {}) }, fake.h);
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => sockets.push(s));
  const at: ApiTarget = kind === 'unix' ? address : { kind, host: '127.0.0.1', port: (server.address() as AddressInfo).port, token: TOKEN };
  return { server, at, fake, log, sockets };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

async function stillAnswers(r: Running): Promise<void> {
  const a = await send(r.at, 'GET', '/v1/daemon');
  assert.equal(a.status, 200, 'the server still answers');
  assert.equal((a.body as { pid: number }).pid, process.pid);
}

function errorOf(a: { body: unknown }): string {
  const e = (a.body as { error?: unknown }).error;
  assert.equal(typeof e, 'string', `an error message in ${JSON.stringify(a.body)}`);
  return e as string;
}

for (const kind of ['unix', 'tcp'] as const) {
  describe(`requests over ${kind === 'unix' ? 'the Unix socket' : 'TCP'}`, () => {
    let r: Running;
    before(async () => (r = await start(kind)));
    after(() => close(r.server));

    test('a body that is JSON but not an object (null killed the daemon) is 400; the server lives on', async () => {
      for (const body of ['null', '[]', '"drain"', '42', 'true', '[{"service":"web","address":"10.0.0.1"}]', '['.repeat(30_000) + ']'.repeat(30_000)]) {
        const a = await send(r.at, 'POST', '/v1/backends/drain', body);
        assert.equal(a.status, 400, `${body.slice(0, 40)} -> ${JSON.stringify(a.body)}`);
        assert.match(errorOf(a), /expected a JSON object \{"service": NAME, "address": IP\}/);
      }
      await stillAnswers(r);
      assert.deepEqual(r.fake.calls, [], 'no handler saw any of them');
    });

    test('a body that is not JSON, or empty, is 400 saying so', async () => {
      let a = await send(r.at, 'POST', '/v1/backends/remove', '{"service": "web",');
      assert.equal(a.status, 400);
      assert.match(errorOf(a), /not JSON/);
      a = await send(r.at, 'POST', '/v1/backends/remove', '');
      assert.equal(a.status, 400);
      assert.match(errorOf(a), /expected a JSON object/);
      await stillAnswers(r);
      assert.deepEqual(r.fake.calls, []);
    });

    test('wrong types, missing and extra fields are 400 naming the field', async () => {
      const cases: [unknown, RegExp][] = [
        [{ service: 1, address: '10.0.0.1' }, /service: .*expected string, received number/],
        [{ service: 'web', address: ['10.0.0.1'] }, /address: .*expected string/],
        [{ service: 'web' }, /address: .*expected string, received undefined/],
        [{ address: '10.0.0.1' }, /service: /],
        [{ service: '', address: '10.0.0.1' }, /service: /],
        [{ service: 'web', address: '10.0.0.999' }, /address: an IPv4 or IPv6 address/],
        [{ service: 'web', address: '10.0.0.1', weight: 0 }, /Unrecognized key: "weight"/],
      ];
      for (const [body, error] of cases) {
        const a = await send(r.at, 'POST', '/v1/backends/drain', JSON.stringify(body));
        assert.equal(a.status, 400, JSON.stringify(body));
        assert.match(errorOf(a), error, JSON.stringify(body));
      }
      const proto = await send(r.at, 'POST', '/v1/backends/drain', '{"service":"web","address":"10.0.0.1","__proto__":{"admin":true}}');
      assert.equal(proto.status, 400);
      assert.match(errorOf(proto), /Unrecognized key: "__proto__"/);
      assert.deepEqual(r.fake.calls, []);
      await stillAnswers(r);
    });

    test('a valid body reaches the handler; its refusal is 404 with its message', async () => {
      r.fake.calls.length = 0;
      for (const action of ['drain', 'undrain', 'remove']) {
        const a = await send(r.at, 'POST', `/v1/backends/${action}`, JSON.stringify({ service: 'web', address: '2001:db8::101' }));
        assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.deepEqual(a.body, { ok: true });
      }
      assert.deepEqual(r.fake.calls, [
        ['web', '2001:db8::101', 'drain'],
        ['web', '2001:db8::101', null],
        ['web', '2001:db8::101', 'remove'],
      ]);
      const refused = await send(r.at, 'POST', '/v1/backends/drain', JSON.stringify({ service: 'nosuch', address: '10.0.0.1' }));
      assert.equal(refused.status, 404);
      assert.equal(errorOf(refused), 'no service nosuch');
    });

    test('a POST whose body is not declared JSON is 415 (a browser form cannot post here)', async () => {
      const calls = r.fake.calls.length;
      for (const type of ['application/x-www-form-urlencoded', 'text/plain', '']) {
        const a = await send(r.at, 'POST', '/v1/backends/drain', JSON.stringify({ service: 'web', address: '10.0.0.1' }), { 'content-type': type });
        assert.equal(a.status, 415, type);
      }
      assert.equal(r.fake.calls.length, calls, 'the handler was not asked');
      await stillAnswers(r);
    });

    test('GET endpoints take no body', async () => {
      const a = await send(r.at, 'GET', '/v1/state', '{"x":1}');
      assert.equal(a.status, 400);
      assert.match(errorOf(a), /takes no body/);
      assert.equal((await send(r.at, 'GET', '/v1/state')).status, 200);
    });

    test('a wrong method on a known path is 405 with Allow; an unknown path is 404', async () => {
      const cases: [string, string, string][] = [
        ['GET', '/v1/backends/drain', 'POST'],
        ['PUT', '/v1/backends/remove', 'POST'],
        ['POST', '/v1/state', 'GET'],
        ['DELETE', '/v1/daemon', 'GET'],
        ['OPTIONS', '/v1/backends/undrain', 'POST'],
      ];
      for (const [method, path, allow] of cases) {
        const a = await send(r.at, method, path);
        assert.equal(a.status, 405, `${method} ${path}`);
        assert.equal(a.headers.allow, allow, `${method} ${path}`);
        assert.match(errorOf(a), new RegExp(`takes ${allow}`));
      }
      for (const path of ['/', '/v1/backends/pause', '/v1/state/', '/v2/state', '/metrics']) {
        const a = await send(r.at, 'GET', path);
        assert.equal(a.status, 404, path);
      }
      await stillAnswers(r);
    });

    test('a handler that throws is a 500, logged; the server lives on', async () => {
      try {
        r.fake.stateFails = new Error('pins vanished');
        let a = await send(r.at, 'GET', '/v1/state');
        assert.equal(a.status, 500);
        assert.match(errorOf(a), /pins vanished/);
        const text = (obj: object) => JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v));
        assert.ok(r.log.lines.some((l) => l.level === 'error' && text(l.obj).includes('pins vanished') && text(l.obj).includes('"stack"')), 'logged, with its stack');
        r.fake.stateFails = 'bigint'; // JSON.stringify throws on it
        a = await send(r.at, 'GET', '/v1/state');
        assert.equal(a.status, 500);
      } finally {
        r.fake.stateFails = null;
      }
      await stillAnswers(r);
    });

    for (const framing of ['content-length', 'chunked'] as const) {
      test(`a 10 MB body (${framing}) is 413, read no further than the cap, and its connection closed`, async () => {
        const before = r.sockets.length;
        const { statusLine, answer } = await postHuge(r.at, TEN_MB, framing);
        assert.equal(statusLine, 'HTTP/1.1 413 Payload Too Large', answer.slice(0, 300));
        assert.match(answer, /connection: close/i);
        const conn = r.sockets.slice(before);
        assert.equal(conn.length, 1);
        const read = conn[0]!.bytesRead;
        assert.ok(read < 1024 * 1024, `the server read ${read} bytes of a ${TEN_MB}-byte body (the cap is ${MAX_BODY_BYTES})`);
        await stillAnswers(r);
        const t0 = Date.now();
        while (!conn[0]!.destroyed && Date.now() - t0 < 3000) await new Promise((w) => setTimeout(w, 50));
        assert.ok(conn[0]!.destroyed, 'the server destroyed the connection soon after answering');
      });
    }

    test('a client that waits for "100 Continue" with a 10 MB Content-Length gets 413 at once', async () => {
      const { statusLine } = await postHuge(r.at, TEN_MB, 'content-length', true);
      assert.equal(statusLine, 'HTTP/1.1 413 Payload Too Large');
      await stillAnswers(r);
    });
  });
}

describe('memory', () => {
  test("10 MB bodies, with and without Content-Length, do not grow the server's memory", async () => {
    // in a process of its own, whose peak memory (maxRSS) this test alone drives
    const path = join(dir, 'memory.sock');
    const child = spawn(process.execPath, [new URL('./api-fixture.ts', import.meta.url).pathname, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve, reject) => {
        child.stdout.once('data', resolve);
        child.once('exit', (code) => reject(new Error(`the fixture exited (${code})`)));
      });
      const at: ApiAddress = { kind: 'unix', path };
      const memory = async () => (await send(at, 'GET', '/v1/state')).body as { maxRssKiB: number; heapUsed: number };
      for (let i = 0; i < 3; i++) await postHuge(at, 256 * 1024, i % 2 ? 'chunked' : 'content-length'); // warm up
      const base = await memory();
      for (let i = 0; i < 3; i++)
        for (const framing of ['content-length', 'chunked'] as const) assert.match((await postHuge(at, TEN_MB, framing)).statusLine, / 413 /);
      const now = await memory();
      const grew = (now.maxRssKiB - base.maxRssKiB) / 1024;
      assert.ok(grew < 5, `peak RSS grew by ${grew.toFixed(1)} MiB over six 10 MB bodies (heap ${(base.heapUsed / 2 ** 20).toFixed(1)} -> ${(now.heapUsed / 2 ** 20).toFixed(1)} MiB)`);
    } finally {
      child.kill();
    }
  });
});

describe('the access boundary', () => {
  const asNobody = promisify(execFile);
  const CONNECT = "const s = require('node:net').connect(process.argv[1]); s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('error', (e) => console.log(e.code));";
  const tryConnect = async (path: string, nobody: boolean): Promise<string> => {
    const argv = [process.execPath, '-e', CONNECT, path];
    const { stdout } = nobody ? await asNobody('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv]) : await asNobody(argv[0]!, argv.slice(1));
    return stdout.trim();
  };

  test('by default a 0600 socket at runFile(pinDir, "api.sock"), in a run directory created 0700; removed on stop', async () => {
    assert.ok(!existsSync(runDir));
    const log = recordingLog();
    const server = await startApi({ pinDir: '/sys/fs/bpf/xdplb/test0', log }, fakeHandlers().h);
    const path = join(runDir, '_sys_fs_bpf_xdplb_test0.api.sock');
    try {
      assert.ok(lstatSync(path).isSocket(), `a socket at ${path}`);
      assert.equal(statSync(path).mode & 0o777, 0o600, 'socket mode');
      assert.equal(statSync(runDir).mode & 0o777, 0o700, 'run directory mode');
      assert.equal((await send({ kind: 'unix', path }, 'GET', '/v1/daemon')).status, 200);
      assert.ok(!log.lines.some((l) => l.level === 'warn'), 'no warning');
    } finally {
      await close(server);
    }
    assert.ok(!existsSync(path), 'the socket is removed when the server stops');
  });

  test('a process running as nobody cannot connect (EACCES); root can', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
    const open = mkdtempSync(join(tmpdir(), 'xdplb-api-open-')); // beside `dir`, which nobody cannot enter
    t.after(() => rmSync(open, { recursive: true, force: true }));
    chmodSync(open, 0o755); // only the socket's own mode stands in the way
    const path = join(open, 'api.sock');
    const server = await startApi({ address: path, pinDir: '/x', log: recordingLog() }, fakeHandlers().h);
    const control = createServer().listen(join(open, 'open.sock'));
    try {
      chmodSync(join(open, 'open.sock'), 0o666);
      assert.equal(await tryConnect(join(open, 'open.sock'), true), 'connected', 'control: nobody reaches a 0666 socket in the same directory');
      assert.equal(await tryConnect(path, true), 'EACCES', 'nobody is refused by the API socket');
      assert.equal(await tryConnect(path, false), 'connected', 'root connects');
    } finally {
      control.close();
      await close(server);
    }
  });

  test("a dead daemon's socket is replaced", async () => {
    const path = join(dir, 'stale.sock');
    const dead = spawn(process.execPath, ['-e', "require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))", path]);
    await new Promise((r) => dead.once('exit', r));
    assert.ok(lstatSync(path).isSocket(), 'the killed process left its socket behind');
    const log = recordingLog();
    const server = await startApi({ address: path, pinDir: '/x', log }, fakeHandlers().h);
    try {
      assert.equal((await send({ kind: 'unix', path }, 'GET', '/v1/daemon')).status, 200);
      assert.ok(log.lines.some((l) => /stale/.test(l.msg)), 'logged');
    } finally {
      await close(server);
    }
  });

  test('a file that is not a socket is never replaced: refused, naming the path', async () => {
    const path = join(dir, 'precious');
    writeFileSync(path, 'not a socket\n');
    await assert.rejects(startApi({ address: path, pinDir: '/x', log: recordingLog() }, fakeHandlers().h), (err: Error) => err.message.includes(`${path} exists and is not a socket`));
    assert.equal(readFileSync(path, 'utf8'), 'not a socket\n');
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    await assert.rejects(startApi({ address: sub, pinDir: '/x', log: recordingLog() }, fakeHandlers().h), /exists and is not a socket/);
  });

  test('a socket another process listens on is left alone: refused', async () => {
    const path = join(dir, 'live.sock');
    const other = createServer().listen(path);
    await new Promise((r) => other.once('listening', r));
    try {
      await assert.rejects(startApi({ address: path, pinDir: '/x', log: recordingLog() }, fakeHandlers().h), /another process listens on it/);
      assert.ok(lstatSync(path).isSocket(), 'still there');
    } finally {
      other.close();
    }
  });

  test('TCP only as configured, and only with a token (test/director/api-token.test.ts); a Host that is a name (DNS rebinding) is refused', async () => {
    await assert.rejects(startApi({ address: `127.0.0.1:${await freePort()}`, pinDir: '/x', log: recordingLog() }, fakeHandlers().h), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && /needs apiTokenFile/.test(err.message));
    const log = recordingLog();
    const server = await startApi({ address: `127.0.0.1:${await freePort()}`, token: TOKEN, pinDir: '/x', log }, fakeHandlers().h);
    try {
      assert.ok(log.lines.some((l) => l.level === 'info' && /listens on TCP: every request must carry the token/.test(l.msg)), 'logged');
      const at: ApiTarget = { kind: 'tcp', host: '127.0.0.1', port: (server.address() as AddressInfo).port, token: TOKEN };
      assert.equal((await send(at, 'GET', '/v1/daemon', undefined, { host: 'evil.example:80' })).status, 403);
      for (const host of [`127.0.0.1:${at.port}`, `localhost:${at.port}`, '[::1]:1']) assert.equal((await send(at, 'GET', '/v1/daemon', undefined, { host })).status, 200, host);
    } finally {
      await close(server);
    }
  });

  test('an apiAddress that is neither a socket path nor HOST:PORT, or a default socket path too long, is a config error', async () => {
    await assert.rejects(startApi({ address: 'api.sock', pinDir: '/x', log: recordingLog() }, fakeHandlers().h), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && /apiAddress: neither an absolute Unix socket path/.test(err.message));
    await assert.rejects(startApi({ pinDir: `/sys/fs/bpf/${'x'.repeat(100)}`, log: recordingLog() }, fakeHandlers().h), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && /the API socket \(set apiAddress\): .*too long/.test(err.message));
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
