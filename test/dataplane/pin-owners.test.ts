// Pins only where no other user can change them (src/dataplane/bpffs.ts):
// the bpffs root as the kernel mounts it is mode 1777, so any user can make
// /sys/fs/bpf/xdplb before the director does and then unlink or move the
// pins under it. xdplb mounts it 0700 (as systemd does), and refuses a pin
// directory under a level that is not root's or that others may write.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureBpffs, ensurePinDir } from '../../src/dataplane/bpffs.ts';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const base = `/sys/fs/bpf/xdplb-pin-owners-${process.pid}`;
ensureBpffs();
after(() => rmSync(base, { recursive: true, force: true }));

describe('a pin directory under a level another user can change is refused', () => {
  test("another user's directory (made before the director's first start): refused, naming the owner; nothing made in it", () => {
    const squat = `${base}-squat`;
    mkdirSync(squat, { mode: 0o755 });
    chownSync(squat, 65534, 65534);
    try {
      assert.throws(() => ensurePinDir(`${squat}/eth1`), /xdplb-pin-owners-\d+-squat belongs to uid 65534: that user could remove or move the pins under it/);
      assert.ok(!existsSync(`${squat}/eth1`), 'no pin directory made');
      assert.throws(() => ensurePinDir(squat), /belongs to uid 65534/, 'the directory itself, adopted, too');
    } finally {
      rmSync(squat, { recursive: true, force: true });
    }
  });

  test("root's, but writable by others: refused", () => {
    const open = `${base}-open`;
    mkdirSync(open);
    chmodSync(open, 0o777);
    try {
      assert.throws(() => ensurePinDir(`${open}/eth1`), /xdplb-pin-owners-\d+-open is writable by others \(mode 777\)/);
      assert.ok(!existsSync(`${open}/eth1`));
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  test("root's, 0700 levels: made (the bpffs root's sticky 1777 is allowed)", () => {
    ensurePinDir(`${base}/a/eth1`);
    assert.ok(existsSync(`${base}/a/eth1`));
  });
});

test('where none is mounted, xdplb mounts the bpffs mode 0700 (only root may make entries in it), as systemd does', () => {
  // a mount and pid namespace of its own with /sys/fs/bpf unmounted: its shell is pid 1, as init is on a machine
  const script = `while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done; ${XDPLB} status --pin-dir /sys/fs/bpf/xdplb-pin-owners-none >/dev/null 2>&1; stat -c %a /sys/fs/bpf; setpriv --reuid=65534 --regid=65534 --clear-groups mkdir /sys/fs/bpf/xdplb 2>&1; true`;
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const [mode, mkdir] = r.stdout.split('\n');
  assert.equal(Number.parseInt(mode ?? '', 8) & 0o777, 0o700, `mode ${mode}`); // the kernel keeps its sticky bit: 1700
  assert.match(mkdir ?? '', /Permission denied/, 'another user cannot make /sys/fs/bpf/xdplb');
});
