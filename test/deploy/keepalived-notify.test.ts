// deploy/keepalived/xdplb-keepalived-notify on its own: keepalived's events
// written to a FIFO, a stand-in for `xdplb` ($XDPLB) that records each call
// and takes a while, as `xdplb role` does (a Node start). The roles must
// follow the events in order, the newest winning, and a refusal is tried again.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.ts';

const NOTIFY = fileURLToPath(new URL('../../deploy/keepalived/xdplb-keepalived-notify', import.meta.url));

/** Starts the script on a new FIFO with a fake xdplb (its calls in `calls`, one a line); `fail` makes the first N calls fail. */
function start(o: { slowMs: number; fail?: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-notify-'));
  const fifo = join(dir, 'fifo');
  const calls = join(dir, 'calls');
  const fake = join(dir, 'xdplb');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  writeFileSync(
    fake,
    `#!/bin/sh\nn=$(cat ${dir}/n 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/n\nsleep ${o.slowMs / 1000}\nif [ "$n" -lt ${o.fail ?? 0} ]; then echo "$*" refused >> ${calls}; exit 1; fi\necho "$*" >> ${calls}\necho "role: $2"\n`,
  );
  chmodSync(fake, 0o755);
  const child = spawn(NOTIFY, ['--pin-dir', '/sys/fs/bpf/xdplb/eth1', fifo], { env: { ...process.env, XDPLB: fake }, stdio: ['ignore', 'ignore', 'pipe'] });
  const writer = openSync(fifo, 'w'); // blocks until the script opens it
  return {
    event: (state: string, prio = 100) => writeSync(writer, `INSTANCE "xdplb" ${state} ${prio}\n`),
    line: (text: string) => writeSync(writer, `${text}\n`),
    calls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []),
    /** keepalived gone: the FIFO's end; resolves with the script's exit code. */
    close: () => {
      closeSync(writer);
      return new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    },
    child,
  };
}

describe('xdplb-keepalived-notify (keepalived vrrp_notify_fifo_script)', () => {
  test('MASTER → active, BACKUP, FAULT and STOP → standby, in order, with its arguments; other lines change nothing', async () => {
    const s = start({ slowMs: 50 });
    s.event('BACKUP');
    await eventually('standby', () => s.calls().length === 1);
    s.event('MASTER');
    await eventually('active', () => s.calls().length === 2);
    s.line('INSTANCE "xdplb" MASTER_PRIORITY 90');
    s.line('GROUP "g" BACKUP 0');
    s.event('FAULT');
    await eventually('standby', () => s.calls().length === 3);
    s.event('STOP');
    await eventually('standby', () => s.calls().length === 4);
    assert.equal(await s.close(), 0, 'the FIFO closed (keepalived gone) ends the script');
    assert.deepEqual(s.calls(), ['role standby --pin-dir /sys/fs/bpf/xdplb/eth1', 'role active --pin-dir /sys/fs/bpf/xdplb/eth1', 'role standby --pin-dir /sys/fs/bpf/xdplb/eth1', 'role standby --pin-dir /sys/fs/bpf/xdplb/eth1']);
  });

  test('events that come while a role is being set are folded into the newest: a start (BACKUP, then MASTER) ends active', async () => {
    const s = start({ slowMs: 600 });
    s.event('BACKUP');
    await new Promise((r) => setTimeout(r, 100)); // the standby is under way
    s.event('MASTER');
    s.event('BACKUP');
    s.event('MASTER');
    await eventually('two calls', () => s.calls().length === 2, { ms: 5000 });
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(s.calls(), ['role standby --pin-dir /sys/fs/bpf/xdplb/eth1', 'role active --pin-dir /sys/fs/bpf/xdplb/eth1'], 'the three waiting events made one call, the newest');
    await s.close();
  });

  test('a refusal (the daemon starting or hung) is tried again; a newer event takes over from the retries', async () => {
    const s = start({ slowMs: 50, fail: 3 });
    s.event('MASTER');
    await eventually('the first refusal', () => s.calls().length === 1);
    s.event('BACKUP');
    await eventually('tried again until it worked', () => s.calls().length === 4, { ms: 5000 });
    const pins = '--pin-dir /sys/fs/bpf/xdplb/eth1';
    assert.deepEqual(s.calls(), [`role active ${pins} refused`, `role standby ${pins} refused`, `role standby ${pins} refused`, `role standby ${pins}`]);
    await s.close();
  });

  test('SIGTERM (keepalived stopping) does not stop it before the STOP it was sent', async () => {
    const s = start({ slowMs: 50 });
    s.event('MASTER');
    await eventually('active', () => s.calls().length === 1);
    s.child.kill('SIGTERM');
    s.event('STOP');
    await eventually('the STOP carried out', () => s.calls().at(-1) === 'role standby --pin-dir /sys/fs/bpf/xdplb/eth1', { ms: 5000 });
    assert.equal(await s.close(), 0);
  });
});
