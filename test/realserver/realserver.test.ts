// xdplb realserver in a namespace of its own: VIPs on lo, ARP sysctls,
// idempotent, and --undo restores what was there.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const NS = 'xdplb-test-realserver';
const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const runDir = mkdtempSync(join(tmpdir(), 'xdplb-rs-'));

function inNs(...argv: string[]): string {
  return execFileSync('nsenter', [`--net=/var/run/netns/${NS}`, '--', ...argv], { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: runDir } });
}
const sysctl = (k: string) => inNs('cat', `/proc/sys/net/ipv4/conf/${k}`).trim();

before(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', NS, 'link', 'add', 'eth9', 'type', 'veth', 'peer', 'name', 'eth8']);
  inNs('sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter; echo 1 > /proc/sys/net/ipv4/conf/eth9/rp_filter');
});
after(() => void spawnSync('ip', ['netns', 'del', NS]));

test('realserver puts the VIPs on lo and sets the ARP sysctls; twice changes nothing; --undo restores', () => {
  const first = JSON.parse(inNs(XDPLB, 'realserver', '--vip', '10.240.0.201', '2001:db8::201', '--json'));
  assert.deepEqual(first.vipsAdded, ['10.240.0.201', '2001:db8::201']);
  const lo = inNs('ip', '-o', 'addr', 'show', 'dev', 'lo');
  assert.match(lo, /inet 10\.240\.0\.201\/32/);
  assert.match(lo, /inet6 2001:db8::201\/128/);
  assert.equal(sysctl('all/arp_ignore'), '1');
  assert.equal(sysctl('all/arp_announce'), '2');
  assert.equal(sysctl('all/rp_filter'), '2', 'strict rp_filter becomes loose');
  assert.equal(sysctl('eth9/rp_filter'), '2');
  const second = JSON.parse(inNs(XDPLB, 'realserver', '--vip', '10.240.0.201', '2001:db8::201', '--json'));
  assert.deepEqual(second, { vipsAdded: [], vipsRemoved: [], sysctls: {} }, 'idempotent');
  const undone = JSON.parse(inNs(XDPLB, 'realserver', '--undo', '--json'));
  assert.deepEqual(undone.vipsRemoved.sort(), ['10.240.0.201', '2001:db8::201']);
  assert.doesNotMatch(inNs('ip', '-o', 'addr', 'show', 'dev', 'lo'), /10\.240\.0\.201|2001:db8::201/);
  assert.equal(sysctl('all/arp_ignore'), '0');
  assert.equal(sysctl('all/rp_filter'), '1', 'restored');
});

test('an address that cannot be a VIP is refused, and nothing is added', () => {
  for (const bad of ['0.0.0.0', '255.255.255.255', '224.0.0.1', '::', '127.0.0.2']) {
    const r = spawnSync('nsenter', [`--net=/var/run/netns/${NS}`, '--', XDPLB, 'realserver', '--vip', bad], { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: runDir } });
    assert.equal(r.status, 2, `${bad}: bad usage (${r.stdout}${r.stderr})`);
    assert.match(r.stderr, /cannot be a VIP/);
    assert.doesNotMatch(r.stdout, /configured/, `${bad} is not reported as added`);
  }
  assert.doesNotMatch(inNs('ip', '-o', 'addr', 'show', 'dev', 'lo'), /inet 0\.0\.0\.0|255\.255\.255\.255|224\.0\.0\.1/);
});

test('--undo --vip removes only those VIPs; the sysctls come back with the last one', () => {
  inNs(XDPLB, 'realserver', '--vip', '10.240.0.201', '10.240.0.202');
  const one = JSON.parse(inNs(XDPLB, 'realserver', '--undo', '--vip', '10.240.0.201', '--json'));
  assert.deepEqual(one.vipsRemoved, ['10.240.0.201']);
  const lo = inNs('ip', '-o', 'addr', 'show', 'dev', 'lo');
  assert.doesNotMatch(lo, /10\.240\.0\.201\//);
  assert.match(lo, /10\.240\.0\.202\/32/, 'the other VIP stays');
  assert.equal(sysctl('all/arp_ignore'), '1', 'still a real server: the ARP sysctls stay');
  const rest = JSON.parse(inNs(XDPLB, 'realserver', '--undo', '--vip', '10.240.0.202', '10.9.9.9', '--json'));
  assert.deepEqual(rest.vipsRemoved, ['10.240.0.202']);
  assert.deepEqual(rest.notAdded, ['10.9.9.9'], 'a VIP it did not add is named, and left alone');
  assert.equal(sysctl('all/arp_ignore'), '0', 'restored with the last VIP');
});

test('each network namespace has its own record: an undo in one leaves another alone', () => {
  const other = `${NS}-2`;
  spawnSync('ip', ['netns', 'del', other]);
  execFileSync('ip', ['netns', 'add', other]);
  try {
    const inOther = (...argv: string[]) => execFileSync('nsenter', [`--net=/var/run/netns/${other}`, '--', ...argv], { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: runDir } });
    inOther(XDPLB, 'realserver', '--vip', '10.240.0.203');
    inNs(XDPLB, 'realserver', '--vip', '10.240.0.201');
    const here = JSON.parse(inNs(XDPLB, 'realserver', '--undo', '--json'));
    assert.deepEqual(here.vipsRemoved, ['10.240.0.201'], 'only this namespace\'s VIP');
    assert.match(inOther('ip', '-o', 'addr', 'show', 'dev', 'lo'), /10\.240\.0\.203\/32/, 'the other namespace keeps its VIP');
    const there = JSON.parse(inOther(XDPLB, 'realserver', '--undo', '--json'));
    assert.deepEqual(there.vipsRemoved, ['10.240.0.203'], 'and its record');
  } finally {
    spawnSync('ip', ['netns', 'del', other]);
  }
});
