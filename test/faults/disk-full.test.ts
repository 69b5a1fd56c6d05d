// A full disk when a run-time file is written (src/paths.ts writeRunFile: the
// VIPs added, the routes published, the role, the Kubernetes services kept):
// on a tmpfs of 64 KiB in a mount namespace of the test's own (unshare -m),
// filled to the last byte. The write fails with an error naming the file and
// ENOSPC, the previous version stays whole, no part-written file is left, and
// once there is room again the next write succeeds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const SCRIPT = `
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
const { writeRunFile, runFile } = await import(process.env.ROOT + '/src/paths.ts');
const out = {};
writeRunFile('/sys/fs/bpf/xdplb/eth1', 'role', 'active');
const path = runFile('/sys/fs/bpf/xdplb/eth1', 'role');
// fill the disk to the last byte
let filler = 0;
try { for (;;) writeFileSync(process.env.XDPLB_RUN_DIR + '/filler' + filler++, Buffer.alloc(4096)); } catch {}
try { writeFileSync(process.env.XDPLB_RUN_DIR + '/last', Buffer.alloc(1)); } catch {}
try { writeRunFile('/sys/fs/bpf/xdplb/eth1', 'role', 'standby'.repeat(2000)); out.failed = null; } catch (err) { out.failed = String(err.message); out.code = err.code; }
out.kept = readFileSync(path, 'utf8');
out.files = readdirSync(process.env.XDPLB_RUN_DIR).filter((f) => !f.startsWith('filler') && f !== 'last');
for (let i = 0; i < filler; i++) rmSync(process.env.XDPLB_RUN_DIR + '/filler' + i, { force: true });
writeRunFile('/sys/fs/bpf/xdplb/eth1', 'role', 'standby');
out.after = readFileSync(path, 'utf8');
console.log(JSON.stringify(out));
`;

test('a full disk: the write fails naming the file and ENOSPC, the previous version stays whole, and the next write after room is made succeeds', () => {
  const text = execFileSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && XDPLB_RUN_DIR="$d/run" "$NODE" --input-type=module -e "$SCRIPT"; rc=$?; umount "$d"; rmdir "$d"; exit $rc'],
    { env: { ...process.env, ROOT, NODE: process.execPath, SCRIPT }, encoding: 'utf8' },
  );
  const out = JSON.parse(text.trim().split('\n').at(-1)!) as { failed: string | null; code: string; kept: string; files: string[]; after: string };
  assert.ok(out.failed, 'the write on a full disk failed');
  assert.match(out.failed, /_sys_fs_bpf_xdplb_eth1\.role could not be written \(ENOSPC\): its previous version stays/);
  assert.equal(out.code, 'DAEMON');
  assert.equal(out.kept, 'active', 'the previous version is whole');
  assert.deepEqual(out.files, ['_sys_fs_bpf_xdplb_eth1.role'], 'no part-written file is left');
  assert.equal(out.after, 'standby', 'once there is room, the write succeeds');
});
