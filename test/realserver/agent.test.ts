// The node agent's decisions: which VIPs a node holds, how long a leaving one stays, kube-proxy's strictARP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mustParseIp } from '../../src/model/address.ts';
import { ipvsWithoutStrictArp, nodeVips, withLeaving } from '../../src/realserver/agent.ts';
import type { EligibleNode } from '../../src/k8s/translate.ts';

const svc = (vip: string) => ({ name: `a/x:http/${vip}`, vip, port: 80, backends: [] });
const node = (...families: (4 | 6)[]): EligibleNode => ({ name: 'n1', departing: false, addresses: new Map(families.map((f) => [f, mustParseIp(f === 4 ? '10.0.0.1' : '2001:db8::1')])) });

test('an eligible node holds every served VIP of its families, once each; an ineligible one none', () => {
  const services = [svc('203.0.113.2'), svc('203.0.113.1'), svc('203.0.113.1'), svc('2001:db8:64::1')];
  assert.deepEqual(nodeVips(services, node(4)), ['203.0.113.1', '203.0.113.2']);
  assert.deepEqual(nodeVips(services, node(4, 6)), ['2001:db8:64::1', '203.0.113.1', '203.0.113.2']);
  assert.deepEqual(nodeVips(services, undefined), []);
});

test('a VIP the node stops holding stays for drainMs, then goes; one wanted again stays without a deadline', () => {
  const a = withLeaving(['203.0.113.1', '203.0.113.2'], ['203.0.113.1'], new Map(), 1000, 5000);
  assert.deepEqual(a.vips, ['203.0.113.1', '203.0.113.2']);
  assert.equal(a.nextDeadline, 6000);
  const b = withLeaving(a.vips, ['203.0.113.1'], a.leaving, 3000, 5000);
  assert.deepEqual([b.vips, b.nextDeadline], [['203.0.113.1', '203.0.113.2'], 6000], 'the deadline is not pushed back');
  const c = withLeaving(b.vips, ['203.0.113.1'], b.leaving, 6000, 5000);
  assert.deepEqual([c.vips, c.nextDeadline], [['203.0.113.1'], null]);
  const back = withLeaving(a.vips, ['203.0.113.1', '203.0.113.2'], a.leaving, 2000, 5000);
  assert.deepEqual([back.vips, back.leaving.size], [['203.0.113.1', '203.0.113.2'], 0]);
});

test("kube-proxy's config: IPVS without strictARP is reported; with it, iptables, nftables or no ConfigMap are not", () => {
  assert.equal(ipvsWithoutStrictArp('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  strictARP: false\n'), true);
  assert.equal(ipvsWithoutStrictArp('mode: ipvs\n'), true);
  assert.equal(ipvsWithoutStrictArp('mode: ipvs\nipvs: { strictARP: true }\n'), false);
  assert.equal(ipvsWithoutStrictArp('mode: iptables\n'), false);
  assert.equal(ipvsWithoutStrictArp('mode: nftables\n'), false);
  assert.equal(ipvsWithoutStrictArp(undefined), null);
});
