// The test control plane leaves nothing behind.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { startKube } from '../helpers/kube.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('stop() ends etcd and kube-apiserver and removes their files', async () => {
  const kube = await startKube();
  const pids = (await import('node:child_process'))
    .execFileSync('pgrep', ['-f', kube.dir], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map(Number);
  assert.equal(pids.length, 2, 'etcd and kube-apiserver run with files in the temporary directory');
  await kube.stop();
  assert.equal(existsSync(kube.dir), false, 'the temporary directory is gone');
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is gone`);
});
