// A backend behind another NIC: XDP_REDIRECT through the devmap. A test run's
// ingress device is lo, so this runs in a namespace of its own with a veth
// pair as "the other NIC" (nothing is created in the root namespace).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';

const NS = 'xdplb-test-redirect';
const SCRIPT = `
import { native } from ${JSON.stringify(new URL('../../src/dataplane/native.ts', import.meta.url).href)};
import { Fixture } from ${JSON.stringify(new URL('../helpers/dataplane-fixture.ts', import.meta.url).href)};
import { backendMac, ethernet, ipv4, tcp, withMacs } from ${JSON.stringify(new URL('../helpers/packets.ts', import.meta.url).href)};
const fx = await Fixture.create(101);
fx.setService({ id: 1, vip: '10.240.0.201', port: 80, proto: 'tcp', backends: [{ n: 9 }] });
const nic = native.interfaceInfo('other0');
fx.dp.putDest(109, { ifindex: nic.ifindex, mac: backendMac(9), srcMac: nic.mac, state: 1, service: 1 });
fx.dp.putTxPort(nic.ifindex);
const frame = ethernet(ipv4('10.240.0.10', '10.240.0.201', tcp(40000, 80)));
const r = await fx.run(frame);
console.log(JSON.stringify({ verdict: r.verdict, rewritten: r.packet.equals(withMacs(frame, backendMac(9), nic.mac)), redirects: Number(fx.dp.globalStats().xdp_redirect) }));
`;

before(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', NS, 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'other0', 'up']);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'other1', 'up']);
});
after(() => void spawnSync('ip', ['netns', 'del', NS]));

test('a backend on another NIC is reached with XDP_REDIRECT, source MAC = that NIC’s', () => {
  const r = spawnSync('nsenter', [`--net=/var/run/netns/${NS}`, '--', process.execPath, '--input-type=module', '-e', SCRIPT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { verdict: 'REDIRECT', rewritten: true, redirects: 1 });
});
