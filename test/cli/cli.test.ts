// Every command's --help and the exit codes scripts rely on, through bin/xdplb.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-cli-'));

function xdplb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(XDPLB, args, { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: dir } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('--help', () => {
  const commands = [[], ['attach'], ['detach'], ['status'], ['backend'], ['role'], ['realserver'], ['config', 'validate'], ['lab', 'up'], ['lab', 'demo'], ['lab', 'down']];
  for (const c of commands) {
    test(`xdplb ${c.join(' ')} --help shows an example and the exit codes`, () => {
      const r = xdplb(...c, '--help');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Example:\n  xdplb /);
      assert.match(r.stdout, /Exit codes: 0 success/);
    });
  }
});

describe('exit codes', () => {
  test('2: unknown command, unknown option, missing required option, bad choice', () => {
    assert.equal(xdplb('bogus').status, 2);
    assert.equal(xdplb('status', '--bogus').status, 2);
    assert.equal(xdplb('attach').status, 2, 'attach needs -c');
    assert.equal(xdplb('attach', '-c', 'x.yaml', '--mode', 'turbo').status, 2);
    const r = xdplb('realserver');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /give --vip/);
    assert.equal(xdplb('realserver', '--vip', '10.0.0.999').status, 2);
    assert.equal(xdplb('lab', 'up', '--backends', '0').status, 2);
    assert.equal(xdplb('backend', 'pause', 'web', '10.0.0.1').status, 2);
  });

  test('2: a command group without its subcommand (it used to exit 0), and the unknown option named before a missing -c', () => {
    for (const c of [['config'], ['lab'], []]) assert.equal(xdplb(...c).status, 2, `xdplb ${c.join(' ')}`);
    assert.equal(xdplb('config', '--help').status, 0, 'help asked for is not an error');
    const r = xdplb('attach', '--bogus');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option '--bogus'/);
    assert.match(xdplb('attach').stderr, /attach needs a configuration: -c FILE/);
  });

  test('2: status --watch outside 1..3600 s (a timer past 24.8 days fires every millisecond)', () => {
    for (const w of ['1e9', '0', '-1', 'x']) {
      const r = xdplb('status', '--watch', w, '--pin-dir', '/sys/fs/bpf/xdplb-cli-test-none');
      assert.equal(r.status, 2, `--watch ${w}: ${r.stderr}`);
      assert.match(r.stderr, /--watch takes 1 to 3600 seconds/);
    }
  });

  test('4: an invalid or unreadable config, every error explained', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'services:\n  - name: web\n    vip: 10.240.0.999\n    port: 80\n    backends: [{ address: 10.0.0.1, weight: -2 }]\n');
    const r = xdplb('config', 'validate', bad);
    assert.equal(r.status, 4);
    assert.match(r.stderr, /services\[0\]\.vip: an IPv4 or IPv6 address/);
    assert.match(r.stderr, /services\[0\]\.backends\[0\]\.weight:/);
    assert.equal(xdplb('config', 'validate', join(dir, 'missing.yaml')).status, 4);
  });

  test('0: a valid config, with --json giving the defaults', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'interface: eth1\nservices:\n  - { name: web, vip: 10.240.0.201, port: 80, backends: [{ address: 10.240.0.101 }] }\n');
    assert.equal(xdplb('config', 'validate', good).status, 0);
    const r = xdplb('config', 'validate', good, '--json');
    assert.equal(JSON.parse(r.stdout).maglevTableSize, 16381);
  });

  test('3: status or lab demo with nothing attached; detach of nothing is 0', () => {
    const r = xdplb('status', '--pin-dir', '/sys/fs/bpf/xdplb-cli-test-none');
    assert.equal(r.status, 3);
    assert.match(r.stderr, /nothing is pinned/);
    assert.equal(xdplb('detach', '--pin-dir', '/sys/fs/bpf/xdplb-cli-test-none').status, 0);
    assert.equal(xdplb('lab', 'demo').status, 3);
  });

  test('1: backend with no daemon to ask', () => {
    const r = xdplb('backend', 'drain', 'web', '10.0.0.1', '--api', '127.0.0.1:1');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no daemon answers at 127\.0\.0\.1:1/);
  });

  test('role with no daemon running on the pins: 0, recorded for its next start (keepalived\'s FAULT after the daemon died); 1 while a process holds the pins, or with --api alone', async () => {
    const pins = '/sys/fs/bpf/xdplb-cli-test-role';
    const record = join(dir, '_sys_fs_bpf_xdplb-cli-test-role.role');
    const r = xdplb('role', 'standby', '--pin-dir', pins);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'role: standby (no daemon running: recorded for its next start)\n');
    assert.equal(readFileSync(record, 'utf8'), 'standby', 'the record a daemon starts from');
    assert.deepEqual(JSON.parse(xdplb('role', 'active', '--pin-dir', pins, '--json').stdout), { role: 'active', recorded: true });
    assert.equal(readFileSync(record, 'utf8'), 'active');
    const alone = xdplb('role', 'standby', '--api', '127.0.0.1:1');
    assert.equal(alone.status, 1);
    assert.match(alone.stderr, /no daemon answers at 127\.0\.0\.1:1 .*the pin directory is unknown/);
    // a daemon starting (its API not up yet) or hung holds the pins' lock: nothing is recorded
    const lock = fileURLToPath(new URL('../../src/director/lock.ts', import.meta.url));
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `const { PinDirLock } = await import(${JSON.stringify(lock)}); PinDirLock.acquire(${JSON.stringify(pins)}, 'attach'); console.log('held'); setInterval(() => {}, 1000);`], { env: { ...process.env, XDPLB_RUN_DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((ok) => holder.stdout.once('data', ok));
      const held = xdplb('role', 'standby', '--pin-dir', pins);
      assert.equal(held.status, 1);
      assert.match(held.stderr, new RegExp(`a process holds ${pins} \\(pid ${holder.pid}, attach\\): not recorded`));
      assert.equal(readFileSync(record, 'utf8'), 'active', 'the record is unchanged');
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('1: attach without a bpffs (ip netns exec remounts /sys) fails at once, naming the fix', () => {
    const ns = 'xdplb-cli-test-nobpffs';
    spawnSync('ip', ['netns', 'del', ns]);
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    try {
      const r = spawnSync('ip', ['netns', 'exec', ns, XDPLB, 'attach', '-c', join(dir, 'good.yaml'), '-i', 'veth0', '--pin-dir', '/sys/fs/bpf/xdplb-cli-test-nobpffs'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.signal, null, 'it ends by itself (it used to spin in mkdir forever)');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /not a bpffs.*mount namespace of its own.*nsenter/s);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });

  test('1: in a container (a Kubernetes pod) with no bpffs at /sys/fs/bpf: it refuses to mount one of its own, naming the fix', () => {
    // as on a fresh machine (pid 1 shares the mount namespace: it would mount), but with a pod's environment
    const script = `while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done; KUBERNETES_SERVICE_HOST=10.96.0.1 ${XDPLB} status --pin-dir /sys/fs/bpf/xdplb-cli-test-pod; echo "rc=$?"; mountpoint /sys/fs/bpf; true`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /rc=1\n/);
    assert.match(r.stderr, /not a bpffs.*runs in a Kubernetes pod.*vanish with it.*director\.mountBpffs=true/s);
    assert.match(r.stdout, /\/sys\/fs\/bpf is not a mountpoint/, 'nothing was mounted');
  });

  test('a fresh machine: with nothing at /sys/fs/bpf, status mounts the bpffs itself and says so', () => {
    // A mount and pid namespace of its own, where /sys/fs/bpf is unmounted: its shell is pid 1, as init is on a machine.
    const script = `while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done; XDPLB_LOG_FORMAT=json ${XDPLB} status --pin-dir /sys/fs/bpf/xdplb-cli-test-none; echo "rc=$?"; mountpoint /sys/fs/bpf; true`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /"component":"bpffs".*"msg":"mounted a bpffs/, 'the mount is logged');
    assert.match(r.stdout, /rc=3\n/, 'then nothing is pinned there: exit 3');
    assert.match(r.stdout, /\/sys\/fs\/bpf is a mountpoint/);
  });

  test('1: where a mount would be private to the process (a mount namespace of its own), it refuses', () => {
    const script = `while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done; ${XDPLB} status --pin-dir /sys/fs/bpf/xdplb-cli-test-none; echo "rc=$?"; mountpoint /sys/fs/bpf; true`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    assert.match(r.stdout, /rc=1\n/, r.stderr);
    assert.match(r.stderr, /\/sys\/fs\/bpf is not a bpffs, and this process runs in a mount namespace of its own/);
    assert.match(r.stdout, /is not a mountpoint/, 'nothing was mounted');
  });

  test('1: attach to an interface that does not exist', () => {
    const good = join(dir, 'good.yaml');
    const r = xdplb('attach', '-c', good, '-i', 'nosuchif0', '--pin-dir', '/sys/fs/bpf/xdplb-cli-test-none');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /interface nosuchif0/);
  });
});

describe('attach in Kubernetes mode, with a kubeconfig that cannot be used', () => {
  const pinDir = '/sys/fs/bpf/xdplb-cli-test-kube';
  const configPath = join(dir, 'kube.yaml');
  // a NIC that does not exist: were the kubeconfig accepted, the start would still stop before touching anything
  writeFileSync(configPath, 'interface: xdplb-none0\nkubernetes: { pools: [203.0.113.0/24] }\n');

  test('a missing kubeconfig file: refused as a config error naming it, nothing touched', () => {
    const r = spawnSync(XDPLB, ['attach', '-c', configPath, '--pin-dir', pinDir, '--kubeconfig', join(dir, 'no-such.kubeconfig')], { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: dir, KUBECONFIG: '' } });
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /cannot read the kubeconfig .*no-such\.kubeconfig/);
    assert.ok(!existsSync(pinDir), 'no pin directory made');
  });

  test('no kubeconfig anywhere: refused, saying where one can come from', () => {
    const r = spawnSync(XDPLB, ['attach', '-c', configPath, '--pin-dir', pinDir], { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: dir, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' } });
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /no cluster to watch: set kubernetes\.kubeconfig \(or give --kubeconfig\)/);
    assert.ok(!existsSync(pinDir));
  });

  test('a kubeconfig without a current cluster: refused', () => {
    const kc = join(dir, 'empty.kubeconfig');
    writeFileSync(kc, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
    const r = spawnSync(XDPLB, ['attach', '-c', configPath, '--pin-dir', pinDir, '--kubeconfig', kc], { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: dir } });
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /has no current context with a cluster and server/);
  });
});
