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
