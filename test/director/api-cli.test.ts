// The CLI as the local API's client (bin/xdplb backend), against the
// real API server with fake handlers on a socket of a temporary run
// directory. Nothing is attached: no pins, no interface, no namespace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fakeHandlers, recordingLog, type Fake } from './api-helpers.ts';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-api-cli-'));
const runDir = join(dir, 'run');
process.env.XDPLB_RUN_DIR = runDir; // the CLI's default socket is runFile(pinDir, 'api.sock'), in this run directory
const { startApi } = await import('../../src/director/api.ts');
const { runFile } = await import('../../src/paths.ts');
/** A pin directory that does not exist (the socket's name is made from it). */
const PIN_DIR = '/sys/fs/bpf/xdplb-api-cli-test-none';

/** bin/xdplb, without blocking this process's event loop (the fake daemon answers in it). */
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

describe('the CLI asks the daemon through its socket', () => {
  let server: Server;
  let fake: Fake;
  before(async () => {
    fake = fakeHandlers(PIN_DIR);
    server = await startApi({ pinDir: PIN_DIR, log: recordingLog() }, fake.h);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('backend: by default the socket of the pin directory; done is exit 0', async () => {
    const r = await xdplb('backend', 'drain', 'web', '10.240.0.101', '--pin-dir', PIN_DIR);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'drain: web 10.240.0.101\n');
    assert.deepEqual(fake.calls.at(-1), ['web', '10.240.0.101', 'drain']);
  });

  test("backend: the daemon's refusal is a failure (exit 1) with its message, not bad usage", async () => {
    const r = await xdplb('backend', 'remove', 'nosuch', '10.240.0.101', '--api', runFile(PIN_DIR, 'api.sock'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /refused: no service nosuch/);
  });

  test('backend: no daemon at the socket is exit 1, naming it; a bad --api is exit 2', async () => {
    const missing = join(dir, 'nobody-here.sock');
    const r = await xdplb('backend', 'undrain', 'web', '10.240.0.101', '--api', missing);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`no daemon answers at ${missing}`));
    const bad = await xdplb('backend', 'undrain', 'web', '10.240.0.101', '--api', 'api.sock');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--api: neither an absolute Unix socket path/);
  });
});
