// The local API over TCP needs a token (src/director/api-token.ts): the
// daemon refuses to listen on HOST:PORT without apiTokenFile, reads the file
// only when it is its owner's alone, and answers a request without the token
// 401 before anything else; the CLI sends it from --api-token-file. A TCP
// port on 127.0.0.1 is open to every local user: these tests connect as root,
// and one as nobody, to show what the token stops.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startApi } from '../../src/director/api.ts';
import type { ApiTarget } from '../../src/director/api-client.ts';
import { MIN_TOKEN_CHARS, readApiToken, tokenMatches } from '../../src/director/api-token.ts';
import { validateConfig } from '../../src/config/load.ts';
import { fakeHandlers, postHuge, recordingLog, send, TOKEN, type Fake } from './api-helpers.ts';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-api-token-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tokenFile(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const failure = (re: RegExp) => (err: Error & { code?: string }) => {
  assert.match(err.message, re);
  return true;
};

describe('the token file', () => {
  test('its text without the trailing newline; root-owned, mode 0600', () => {
    assert.equal(readApiToken(tokenFile('good', `${TOKEN}\n`), 'apiTokenFile', 'CONFIG_INVALID', true), TOKEN);
    assert.equal(readApiToken(tokenFile('crlf', `${TOKEN}\r\n`), 'apiTokenFile', 'CONFIG_INVALID', true), TOKEN);
    assert.equal(readApiToken(tokenFile('bare', TOKEN, 0o400), 'apiTokenFile', 'CONFIG_INVALID', true), TOKEN);
  });

  test('refused, naming the key and the file: readable or writable by others, not root\'s, not a file, missing, too short, not one line', () => {
    const cases: [string, RegExp][] = [
      [tokenFile('world', TOKEN, 0o644), /apiTokenFile .*world: mode 0644: others could read or replace the token: chmod 600 it/],
      [tokenFile('group', TOKEN, 0o640), /mode 0640/],
      [tokenFile('short', 'x'.repeat(MIN_TOKEN_CHARS - 1)), new RegExp(`a token of ${MIN_TOKEN_CHARS - 1} characters is too short`)],
      [tokenFile('spaces', `${TOKEN} ${TOKEN}`), /one line of visible ASCII/],
      [tokenFile('lines', `${TOKEN}\n${TOKEN}\n`), /one line of visible ASCII/],
      [tokenFile('empty', ''), /a token of 0 characters is too short/],
      [tokenFile('huge', 'x'.repeat(5000)), /5000 bytes: a token has at most 4096/],
      [join(dir, 'missing'), /ENOENT/],
      [dir, /not a regular file/],
    ];
    for (const [path, re] of cases) assert.throws(() => readApiToken(path, 'apiTokenFile', 'CONFIG_INVALID', true), failure(re), path);
    const nobodys = tokenFile('nobodys', TOKEN);
    chownSync(nobodys, 65534, 65534);
    assert.throws(() => readApiToken(nobodys, 'apiTokenFile', 'CONFIG_INVALID', true), failure(/owned by uid 65534/));
    // the CLI's side (not strict): a file it can read is enough, the format still checked, as a usage error
    assert.equal(readApiToken(tokenFile('world2', TOKEN, 0o644), '--api-token-file', 'USAGE', false), TOKEN);
    assert.throws(() => readApiToken(tokenFile('short2', 'abc'), '--api-token-file', 'USAGE', false), (e: Error & { code?: string }) => e.code === 'USAGE' && /^--api-token-file /.test(e.message));
  });

  test('a named pipe nobody writes to is refused at once (it would hang the start)', async () => {
    const fifo = join(dir, 'fifo');
    await promisify(execFile)('mkfifo', [fifo]);
    assert.throws(() => readApiToken(fifo, 'apiTokenFile', 'CONFIG_INVALID', true), failure(/not a regular file/));
  });

  test('the schema: apiAddress HOST:PORT needs apiTokenFile (an absolute path); a Unix socket needs none', () => {
    assert.throws(() => validateConfig({ apiAddress: '127.0.0.1:9843' }), failure(/apiTokenFile: the local API over TCP \(apiAddress 127\.0\.0\.1:9843\) needs a token file/));
    assert.throws(() => validateConfig({ apiAddress: '127.0.0.1:9843', apiTokenFile: 'api.token' }), failure(/apiTokenFile: an absolute path/));
    assert.equal(validateConfig({ apiAddress: '[::1]:9843', apiTokenFile: '/etc/xdplb/api.token' }).apiTokenFile, '/etc/xdplb/api.token');
    assert.equal(validateConfig({ apiAddress: '/run/xdplb/api.sock' }).apiTokenFile, undefined);
  });
});

describe('tokenMatches', () => {
  test('Bearer (any case) and exactly the token', () => {
    for (const h of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN} `]) assert.ok(tokenMatches(h, TOKEN), h);
    for (const h of [undefined, '', TOKEN, `Basic ${TOKEN}`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, `Bearer x${TOKEN}`, `Bearer ${TOKEN} ${TOKEN}`, 'Bearer '])
      assert.ok(!tokenMatches(h, TOKEN), String(h));
  });
});

describe('the API over TCP', () => {
  let server: Server;
  let fake: Fake;
  let at: ApiTarget;
  let bare: ApiTarget; // the same address, without the token
  before(async () => {
    fake = fakeHandlers();
    server = await startApi({ address: { kind: 'tcp', host: '127.0.0.1', port: 0 }, token: TOKEN, pinDir: '/x', log: recordingLog() }, fake.h);
    const port = (server.address() as AddressInfo).port;
    bare = { kind: 'tcp', host: '127.0.0.1', port };
    at = { ...bare, token: TOKEN };
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('refuses to listen without a token', async () => {
    await assert.rejects(startApi({ address: { kind: 'tcp', host: '127.0.0.1', port: 0 }, pinDir: '/x', log: recordingLog() }, fake.h), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /needs apiTokenFile/.test(e.message));
  });

  test('a request without the token, or with another, is 401 before anything else (not even 404), and no handler runs', async () => {
    const calls = fake.calls.length;
    for (const [target, extra] of [
      [bare, {}],
      [bare, { authorization: `Bearer ${TOKEN.slice(1)}` }],
      [bare, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }],
      [{ ...bare, token: 'wrong-token-wrong-token-wrong-token' }, {}],
    ] as [ApiTarget, Record<string, string>][]) {
      for (const [method, path, body] of [
        ['GET', '/v1/state', undefined],
        ['GET', '/no/such/path', undefined],
        ['POST', '/v1/backends/remove', JSON.stringify({ service: 'web', address: '10.0.0.1' })],
        ['POST', '/v1/role', JSON.stringify({ role: 'standby' })],
      ] as [string, string, string | undefined][]) {
        const a = await send(target, method, path, body, extra);
        assert.equal(a.status, 401, `${method} ${path} ${JSON.stringify(extra)}`);
        assert.equal(a.headers['www-authenticate'], 'Bearer realm="xdplb"');
        assert.match((a.body as { error: string }).error, /needs its token \(apiTokenFile\).*--api-token-file/);
      }
    }
    assert.equal(fake.calls.length, calls, 'no handler was asked');
    assert.equal(fake.role, 'active', 'the role did not change');
  });

  test('a 10 MB body without the token is 401 at once, not read', async () => {
    const { statusLine } = await postHuge(bare, 10 * 1024 * 1024, 'content-length');
    assert.equal(statusLine, 'HTTP/1.1 401 Unauthorized');
  });

  test('with the token: answered; the Host check still applies', async () => {
    assert.equal((await send(at, 'GET', '/v1/daemon')).status, 200);
    assert.equal((await send(at, 'POST', '/v1/backends/drain', JSON.stringify({ service: 'web', address: '10.0.0.1' }))).status, 200);
    assert.deepEqual(fake.calls.at(-1), ['web', '10.0.0.1', 'drain']);
    assert.equal((await send(at, 'GET', '/no/such/path')).status, 404);
    assert.equal((await send(at, 'GET', '/v1/daemon', undefined, { host: 'evil.example' })).status, 403);
  });

  test('a local user who is not root cannot drain a backend over 127.0.0.1 without the token (the socket would not let them in at all)', async () => {
    const script = `fetch('http://127.0.0.1:${bare.kind === 'tcp' ? bare.port : 0}/v1/backends/remove', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'web', address: '10.0.0.9' }) }).then((r) => console.log(r.status))`;
    const { stdout } = await promisify(execFile)('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script]);
    assert.equal(stdout.trim(), '401');
    assert.ok(!fake.calls.some((c) => c[1] === '10.0.0.9'), 'nothing removed');
  });

  test('a token configured, the Unix socket needs none (its mode is the boundary)', async () => {
    const path = join(dir, 'api.sock');
    const unix = await startApi({ address: path, token: TOKEN, pinDir: '/x', log: recordingLog() }, fakeHandlers().h);
    try {
      assert.equal((await send({ kind: 'unix', path }, 'GET', '/v1/daemon')).status, 200);
    } finally {
      unix.close();
    }
  });
});

describe('the CLI over TCP', () => {
  let server: Server;
  let fake: Fake;
  let api: string;
  const good = tokenFile('cli-token', `${TOKEN}\n`);
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { recursive: true });
  before(async () => {
    fake = fakeHandlers('/sys/fs/bpf/xdplb-api-token-test-none');
    server = await startApi({ address: { kind: 'tcp', host: '127.0.0.1', port: 0 }, token: TOKEN, pinDir: '/x', log: recordingLog() }, fake.h);
    api = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /** bin/xdplb, without blocking this process's event loop (the API answers in it). */
  function xdplb(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(XDPLB, args, { env: { ...process.env, XDPLB_RUN_DIR: runDir } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  test('--api-token-file sends the token: done', async () => {
    const r = await xdplb('backend', 'drain', 'web', '10.240.0.101', '--api', api, '--api-token-file', good);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fake.calls.at(-1), ['web', '10.240.0.101', 'drain']);
    const role = await xdplb('role', 'standby', '--api', api, '--api-token-file', good, '--json');
    assert.equal(role.status, 0, role.stderr);
    assert.deepEqual(JSON.parse(role.stdout), { role: 'standby', was: 'active' });
  });

  test('without it: exit 1, saying the token is missing and how to give it; nothing done', async () => {
    const calls = fake.calls.length;
    const r = await xdplb('backend', 'remove', 'web', '10.240.0.101', '--api', api);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^xdplb: remove web 10\.240\.0\.101 refused: over TCP the API needs its token \(apiTokenFile\).*--api-token-file FILE\n$/);
    assert.equal(fake.calls.length, calls);
    // status does not hide the refusal behind the pins it would read when no daemon answers
    const st = await xdplb('status', '--api', api, '--pin-dir', '/sys/fs/bpf/xdplb-api-token-test-none');
    assert.equal(st.status, 1, st.stderr);
    assert.match(st.stderr, /^xdplb: the daemon at 127\.0\.0\.1:\d+ refused: over TCP the API needs its token/);
  });

  test('a bad --api-token-file is bad usage (exit 2): with a socket, missing, too short', async () => {
    const cases: [string[], RegExp][] = [
      [['--api', join(runDir, 'x.sock'), '--api-token-file', good], /--api-token-file goes with --api HOST:PORT/],
      [['--pin-dir', '/sys/fs/bpf/xdplb-api-token-test-none', '--api-token-file', good], /--api-token-file goes with --api HOST:PORT/],
      [['--api', api, '--api-token-file', join(dir, 'missing')], /--api-token-file .*missing: ENOENT/],
      [['--api', api, '--api-token-file', tokenFile('cli-short', 'abc')], /--api-token-file .*cli-short: a token of 3 characters is too short/],
    ];
    for (const [flags, re] of cases) {
      const r = await xdplb('backend', 'drain', 'web', '10.240.0.101', ...flags);
      assert.equal(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });
});
