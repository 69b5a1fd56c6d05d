// The daemon's process-wide rule: an error nothing caught, in a timer or a
// promise, is logged with its stack and counted, and the process lives on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const GUARDS = fileURLToPath(new URL('../src/guards.ts', import.meta.url));
const LOG = fileURLToPath(new URL('../src/log.ts', import.meta.url));

test('a throw in a timer and a rejected promise are logged with their stack and counted; the process carries on', () => {
  const script = `
    const { guardProcess, unexpectedErrors } = await import(${JSON.stringify(GUARDS)});
    const { log } = await import(${JSON.stringify(LOG)});
    guardProcess(log);
    setTimeout(() => { throw new Error('boom in a timer'); }, 10);
    setTimeout(() => void Promise.reject(new Error('boom in a promise')), 20);
    setTimeout(() => { process.stdout.write('alive ' + unexpectedErrors()); }, 200);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, XDPLB_LOG_FORMAT: 'json' }, timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'alive 2', 'both counted, and the process went on');
  assert.match(r.stderr, /"msg":"unexpected error \(a defect in xdplb\); the daemon carries on"/);
  assert.match(r.stderr, /boom in a timer.*"stack":"Error: boom in a timer\\n\s+at /s, 'with its stack');
  assert.match(r.stderr, /boom in a promise/);
});
