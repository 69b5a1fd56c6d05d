// Logs are data: an error logged under `err` keeps what a reader needs to act
// on it (its type, message, stack, and a system error's code, errno and
// syscall; an XdplbError's code and details).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const LOG = fileURLToPath(new URL('../src/log.ts', import.meta.url));
const ERRORS = fileURLToPath(new URL('../src/errors.ts', import.meta.url));

test('an error under `err` is logged with its type, message, stack and codes', () => {
  const script = `
    const { component } = await import(${JSON.stringify(LOG)});
    const { XdplbError } = await import(${JSON.stringify(ERRORS)});
    const log = component('test');
    const system = Object.assign(new Error('ENOENT: no such file or directory, open /nope'), { code: 'ENOENT', errno: -2, syscall: 'open' });
    log.error({ err: system }, 'system error');
    log.error({ err: new XdplbError('CONFIG_INVALID', 'config is invalid', ['services[0].port: a port'], { cause: system }) }, 'xdplb error');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, XDPLB_LOG_FORMAT: 'json' }, timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  const [system, xdplb] = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { component: string; err: Record<string, unknown> });
  assert.equal(system!.component, 'test');
  assert.equal(system!.err.type, 'Error');
  assert.equal(system!.err.message, 'ENOENT: no such file or directory, open /nope');
  assert.match(String(system!.err.stack), /^Error: ENOENT.*\n\s+at /);
  assert.deepEqual([system!.err.code, system!.err.errno, system!.err.syscall], ['ENOENT', -2, 'open']);
  assert.equal(xdplb!.err.type, 'XdplbError');
  assert.equal(xdplb!.err.code, 'CONFIG_INVALID');
  assert.deepEqual(xdplb!.err.details, ['services[0].port: a port']);
  assert.match(String(xdplb!.err.stack), /caused by: Error: ENOENT/, 'with its cause');
});
