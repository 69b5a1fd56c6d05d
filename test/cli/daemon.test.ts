// The daemon's life cycle against what an operator (or a second daemon) can
// do to it, in a network namespace of its own with one veth: one daemon per
// pin directory, detach that removes only what xdplb made, pins removed
// under a running daemon, an address that cannot be used stopping the start
// before the NIC is touched, signals during start-up.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const NS = 'xdplb-cli-test-daemon';
const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-daemon-'));
const runDir = join(dir, 'run');
const PIN = '/sys/fs/bpf/xdplb-cli-test-daemon';
const VIP = '10.240.0.201';
const env = { ...process.env, XDPLB_RUN_DIR: runDir, XDPLB_LOG_FORMAT: 'json' };

const inNs = (argv: string[]) => ['nsenter', `--net=/var/run/netns/${NS}`, '--', ...argv];

function xdplb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = inNs([XDPLB, ...args]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
}

function config(extra = ''): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, `interface: veth0\nmode: generic\nownVips: true\n${extra}services:\n  - { name: web, vip: ${VIP}, port: 80, backends: [{ address: 10.240.0.101 }] }\n`);
  return path;
}

interface Daemon {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

/** Starts `xdplb attach` in the namespace; resolves once it logged `until` (or it exited). */
async function startDaemon(configPath: string, until = '"msg":"ready"', extra: string[] = []): Promise<Daemon> {
  const argv = inNs([XDPLB, 'attach', '-c', configPath, '--pin-dir', PIN, ...extra]);
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  let done = false;
  void exited.then(() => (done = true));
  while (!text.includes(until) && !done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { child, log: () => text, exited };
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.child.exitCode === null) d.child.kill('SIGTERM');
  await d.exited;
}

/** The HTTP status of a GET from inside the namespace. */
function httpStatus(url: string): string {
  const argv = inNs([process.execPath, '-e', `fetch(${JSON.stringify(url)}).then((r) => process.stdout.write(String(r.status)))`]);
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).stdout;
}

/** A process in the namespace that holds a TCP port, until killed. */
async function holdPort(port: number): Promise<ChildProcess> {
  const argv = inNs([process.execPath, '-e', `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout!.once('data', r));
  return child;
}

const xdpOnVeth = () => /xdpgeneric|prog\/xdp/.test(sh(`ip -n ${NS} link show veth0`));
const vipOnVeth = () => sh(`ip -n ${NS} -o addr show dev veth0`).includes(`${VIP}/32`);

before(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  execFileSync('ip', ['netns', 'add', NS]);
  sh(`ip -n ${NS} link set lo up && ip -n ${NS} link add veth0 type veth peer name veth1 && ip -n ${NS} link set veth0 up && ip -n ${NS} link set veth1 up`);
  mkdirSync(runDir, { recursive: true });
});

after(() => {
  spawnSync('sh', ['-c', `pkill -f 'pin-dir ${PIN}'`]);
  const d = inNs([XDPLB, 'detach', '--pin-dir', PIN, '--force']);
  spawnSync(d[0]!, d.slice(1), { env });
  rmSync(PIN, { recursive: true, force: true });
  spawnSync('ip', ['netns', 'del', NS]);
  rmSync(dir, { recursive: true, force: true });
});

describe('one daemon per pin directory', () => {
  test('a second attach on the same pins stops at once, naming the first; the first keeps its program', async () => {
    const first = await startDaemon(config());
    try {
      assert.match(first.log(), /"msg":"ready"/, first.log());
      const linkBefore = sh(`ip -n ${NS} -d link show veth0`).match(/prog\/xdp id (\d+)/)?.[1];
      const second = await startDaemon(config(`metricsAddress: 127.0.0.1:9852\napiAddress: ${join(dir, 'second.api.sock')}\n`), '\u0000');
      assert.equal(await second.exited, 1, second.log());
      assert.match(second.log(), /another xdplb process holds \/sys\/fs\/bpf\/xdplb-cli-test-daemon \(pid \d+, attach -c /);
      assert.doesNotMatch(second.log(), /XDP program in place|reconciled/, 'it touched nothing');
      assert.equal(sh(`ip -n ${NS} -d link show veth0`).match(/prog\/xdp id (\d+)/)?.[1], linkBefore, 'the first daemon still runs its program');

      const refused = xdplb('detach', '--pin-dir', PIN);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, /a daemon \(pid \d+, attach -c .*\) holds/, 'detach finds the daemon through the lock');
      assert.ok(xdpOnVeth() && vipOnVeth(), 'and removed nothing');
    } finally {
      await stopDaemon(first);
    }
  });
});

describe('detach removes only what xdplb made', () => {
  test('a directory that is not an xdplb pin layout is refused, and nothing in it is deleted', () => {
    const other = join(dir, 'somedir');
    mkdirSync(other);
    writeFileSync(join(other, 'precious.txt'), 'keep me');
    const r = xdplb('detach', '--pin-dir', other);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /not on a bpffs/);
    assert.deepEqual(readdirSync(other), ['precious.txt']);
    const root = xdplb('detach', '--pin-dir', '/sys/fs/bpf');
    assert.equal(root.status, 2, root.stderr);
    assert.match(root.stderr, /\/sys\/fs\/bpf is the bpffs itself, not a pin directory/);
    assert.ok(existsSync('/sys/fs/bpf'), 'the bpffs root is untouched');
  });

  test('bad names are usage errors: -i .., an empty --pin-dir, a relative or dotted one', () => {
    for (const args of [['-i', '..'], ['-i', 'a/b'], ['-i', ''], ['--pin-dir', ''], ['--pin-dir', 'relative/dir'], ['--pin-dir', '/sys/fs/bpf/xdplb/../..']]) {
      const r = xdplb('detach', ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  test('detach --pin-dir (no -i) removes the VIPs from the NIC they were added to; -i of another NIC is refused first', async () => {
    const d = await startDaemon(config());
    await stopDaemon(d);
    assert.ok(xdpOnVeth() && vipOnVeth(), 'the stopped daemon left the program and the VIP in place');
    const wrong = xdplb('detach', '--pin-dir', PIN, '-i', 'veth1');
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, /holds the attachment of ifindex \d+, not of veth1/);
    assert.ok(xdpOnVeth() && vipOnVeth() && existsSync(PIN), 'nothing was removed');
    const r = xdplb('detach', '--pin-dir', PIN, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).vipsRemoved, [VIP]);
    assert.equal(vipOnVeth(), false, 'the VIP is gone from veth0');
    assert.equal(xdpOnVeth(), false, 'and the program');
    assert.equal(existsSync(PIN), false, 'and the pins');
  });
});

describe('pins removed under a running daemon', () => {
  test('are made again; a program detached under it (--force) makes reloads refuse and /readyz fail', async () => {
    const cfg = config();
    const d = await startDaemon(cfg);
    try {
      for (const f of readdirSync(PIN)) rmSync(join(PIN, f));
      const deadline = Date.now() + 5000;
      while (!existsSync(join(PIN, 'link')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(existsSync(join(PIN, 'link')) && existsSync(join(PIN, 'services')), `pinned again (${readdirSync(PIN).join(', ')})`);
      assert.match(d.log(), /pins were removed under the running daemon: pinned again/);
      const st = xdplb('status', '--pin-dir', PIN, '--json');
      assert.equal(st.status, 0, st.stderr);
      assert.equal(JSON.parse(st.stdout).services.length, 1, 'status reads the same maps from the new pins');

      const forced = xdplb('detach', '--pin-dir', PIN, '--force');
      assert.equal(forced.status, 0, forced.stderr);
      assert.equal(httpStatus('http://127.0.0.1:9842/readyz'), '503', 'not ready: nothing is attached');
      d.child.kill('SIGHUP');
      const until = Date.now() + 5000;
      while (!/reload refused/.test(d.log()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.match(d.log(), /"msg":"reload refused.*|no longer attached/);
      assert.match(d.log(), /no longer attached to veth0/);
      await stopDaemon(d);
      assert.match(d.log(), /nothing keeps forwarding/, 'SIGTERM does not claim the data plane keeps forwarding');
      assert.doesNotMatch(d.log(), /the data plane keeps forwarding/);
    } finally {
      await stopDaemon(d);
    }
  });
});

describe('start-up', () => {
  test('a metrics address that cannot be used stops the start before the program or a VIP is put on the NIC', async () => {
    const blocker = await holdPort(9862);
    try {
      const d = await startDaemon(config('metricsAddress: 127.0.0.1:9862\n'), '\u0000');
      assert.equal(await d.exited, 1, d.log());
      assert.match(d.log(), /EADDRINUSE/);
      assert.equal(xdpOnVeth(), false, 'no program was attached');
      assert.equal(vipOnVeth(), false, 'no VIP was added');
    } finally {
      blocker.kill();
    }
  });

  test('attach to a loopback interface is refused', async () => {
    const r = xdplb('attach', '-c', config(), '-i', 'lo', '--pin-dir', PIN);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /interface lo is not an Ethernet interface \(it is a loopback\)/);
    assert.doesNotMatch(sh(`ip -n ${NS} -o addr show dev lo`), new RegExp(VIP));
  });

  test('SIGHUP and SIGTERM during start-up are logged and handled once start-up is complete', async () => {
    const first = await startDaemon(config(), '"component":"director"'); // its first line: the start has begun
    first.child.kill('SIGHUP');
    const until = Date.now() + 15_000;
    while (!/"why":"SIGHUP during start-up".*configuration reloaded|configuration reloaded.*"why":"SIGHUP during start-up"/.test(first.log()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.match(first.log(), /SIGHUP during start-up: the configuration is read again/);
    assert.match(first.log(), /"why":"SIGHUP during start-up"/, 'the config was read again once the start was complete');
    await stopDaemon(first);
    const d = await startDaemon(config(), '"component":"director"');
    d.child.kill('SIGTERM');
    assert.equal(await d.exited, 0, d.log());
    assert.match(d.log(), /"signal":"SIGTERM","starting":true/, 'a stop during start-up is logged');
    assert.match(d.log(), /stopped/, 'and carried out once the start is complete');
    const cleanup = xdplb('detach', '--pin-dir', PIN);
    assert.equal(cleanup.status, 0, cleanup.stderr);
  });
});
