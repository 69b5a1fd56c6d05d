import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfigText, validateConfig } from '../../src/config/load.ts';
import { XdplbError } from '../../src/errors.ts';
import { configErrors } from '../helpers/config.ts';

const errors = configErrors;

describe('config', () => {
  test('the SPEC example is valid, with defaults filled in', () => {
    const c = validateConfig(
      parseConfigText(
        `interface: eth1
services:
  - name: whoami
    vip: 10.240.0.201
    port: 80
    protocol: tcp
    scheduler: maglev
    backends:
      - { address: 10.240.0.101, weight: 1 }
      - { address: 10.240.0.102 }
    healthCheck: { type: http, port: 80, path: /, interval: 2s, timeout: 1s, rise: 2, fall: 3 }
`,
        'spec.yaml',
      ),
    );
    assert.equal(c.maglevTableSize, 16381);
    assert.equal(c.services[0]!.backends[1]!.weight, 1);
    const hc = c.services[0]!.healthCheck;
    assert.ok(hc.type === 'http' && hc.interval === 2000 && hc.timeout === 1000);
    assert.ok(Object.isFrozen(c.services[0]!.backends[0]), 'a validated config is frozen');
  });

  test('every error names the field path and what was expected', () => {
    const e = errors({
      maglevTableSize: 16383,
      services: [
        { name: 'a', vip: '10.240.0.999', port: 80, backends: [{ address: '2001:db8::1' }] },
        { name: 'b', vip: '10.240.0.201', port: 70000, protocol: 'sctp', backends: [{ address: '10.0.0.1', weight: -1 }] },
        { name: 'a', vip: '2001:db8::201', backends: [{ address: '10.0.0.1' }], bogus: 1 },
      ],
    });
    const want = [
      /^maglevTableSize: a prime number$/,
      /^services\[0\]\.vip: an IPv4 or IPv6 address$/,
      /^services\[1\]\.port: .*65535/,
      /^services\[1\]\.protocol: .*"tcp"\|"udp"|^services\[1\]\.protocol: .*tcp.*udp/,
      /^services\[1\]\.backends\[0\]\.weight: .*0/,
      /^services\[2\]: .*bogus/,
    ];
    for (const re of want) assert.ok(e.some((m) => re.test(m)), `no error matching ${re} in:\n${e.join('\n')}`);
  });

  test('cross-field checks: duplicates and families', () => {
    const e = errors({
      services: [
        { name: 'a', vip: '10.240.0.201', port: 80, backends: [{ address: '10.0.0.1' }, { address: '10.0.0.1' }] },
        { name: 'a', vip: '10.240.0.201', port: 80, backends: [{ address: '2001:db8::1' }] },
      ],
    });
    assert.ok(e.includes('services[0].backends[1].address: duplicate backend 10.0.0.1'), e.join('\n'));
    assert.ok(e.some((m) => m.startsWith('services[1].name: duplicate service name "a"')), e.join('\n'));
    assert.ok(e.some((m) => m.startsWith('services[1].port: tcp/10.240.0.201:80 is already served')), e.join('\n'));
    assert.ok(e.includes('services[1].backends[0].address: IPv6 backend for an IPv4 VIP'), e.join('\n'));
  });

  test('JSON and YAML give the same document; duplicate keys are errors; a date-like name stays a string', () => {
    const yaml = 'interface: eth1\nservices:\n  - { name: 2026-01-01, vip: 10.240.0.201, port: 80, backends: [{ address: 10.240.0.101 }] }\n';
    const json = JSON.stringify({ interface: 'eth1', services: [{ name: '2026-01-01', vip: '10.240.0.201', port: 80, backends: [{ address: '10.240.0.101' }] }] });
    assert.deepEqual(parseConfigText(yaml, 'a.yaml'), parseConfigText(json, 'a.json'));
    assert.throws(() => parseConfigText('interface: a\ninterface: b\n', 'dup.yaml'), (err: XdplbError) => /line 2, column \d+: duplicated mapping key/.test(err.message));
    assert.throws(() => parseConfigText('{"interface": "a",\n "services": [}', 'bad.json'), (err: XdplbError) => err.code === 'CONFIG_UNREADABLE' && /line 2/.test(err.message));
  });

  test('YAML syntax errors name the line', () => {
    assert.throws(() => parseConfigText('services:\n  - name: a\n   vip: x\n', 'bad.yaml'), (err: XdplbError) => err.code === 'CONFIG_UNREADABLE' && /line \d+/.test(err.message));
  });

  test('a backend behind another NIC names it; a bad name is refused with its path', () => {
    const c = validateConfig({ services: [{ name: 'w', vip: '10.240.0.201', port: 80, backends: [{ address: '10.240.0.105', interface: 'eth2' }] }] });
    assert.equal(c.services[0]!.backends[0]!.interface, 'eth2');
    assert.throws(
      () => validateConfig({ services: [{ name: 'w', vip: '10.240.0.201', port: 80, backends: [{ address: '10.240.0.105', interface: 'a name far too long' }] }] }),
      (err: XdplbError) => err.details.some((d) => d.startsWith('services[0].backends[0].interface:')),
    );
  });

  test('addresses are kept in their canonical text (one backend, one health check, one series)', () => {
    const c = validateConfig({ services: [{ name: 'w6', vip: '2001:DB8::0201', port: 80, backends: [{ address: '2001:0db8:0:0::101' }] }] });
    assert.equal(c.services[0]!.vip, '2001:db8::201');
    assert.equal(c.services[0]!.backends[0]!.address, '2001:db8::101');
    assert.throws(() => validateConfig({ services: [{ name: 'w6', vip: '2001:db8::201', port: 80, backends: [{ address: '2001:DB8::101' }, { address: '2001:db8::101' }] }] }), /duplicate backend 2001:db8::101/);
  });

  test('flags override the file through the same schema', () => {
    assert.equal(validateConfig({ interface: 'eth1' }, { interface: 'eth2' }).interface, 'eth2');
    assert.throws(() => validateConfig({}, { mode: 'turbo' }), (err: XdplbError) => err.details.some((d) => d.startsWith('mode:')));
    assert.equal(validateConfig({ metricsPerBackend: true }, { metricsPerBackend: false }).metricsPerBackend, false, '--no-metrics-per-backend');
    assert.equal(validateConfig({ metricsPerBackend: false }, { metricsPerBackend: undefined }).metricsPerBackend, false, 'no flag: the file decides');
  });
});

describe('the kubernetes section', () => {
  test('every bad key is named, with what was expected', () => {
    const got = errors({
      kubernetes: {
        externalIPs: ['198.51.100.0/24', '198.51.100.65/26', 'nonsense'],
        pools: ['2001:db8::/129'],
        loadBalancerClass: 'Not A Class',
        nodeSelector: 'role in (a,b)',
        nodeHealthCheck: { port: 0, interval: '1s', timeout: '2s' },
        drainTimeout: '0s',
        leaderElection: { name: 'Bad_Name', leaseDuration: '1500ms' },
        leaderElections: {},
      },
    });
    const at = (prefix: string) => got.filter((e) => e.startsWith(prefix));
    assert.equal(at('kubernetes.externalIPs[1]: 198.51.100.65/26 has bits set past its /26').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.externalIPs[2]: a CIDR').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.pools[0]: a prefix length from 0 to 128').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.loadBalancerClass: a load balancer class').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.nodeSelector: a term').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.nodeHealthCheck.port').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.nodeHealthCheck.timeout: timeout must not exceed interval').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.drainTimeout').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.leaderElection.name: a Lease\'s name').length, 1, got.join('\n'));
    assert.equal(at('kubernetes.leaderElection.leaseDuration: whole seconds').length, 1, got.join('\n'));
    assert.equal(at('kubernetes: Unrecognized key').length + at('kubernetes: unrecognized key').length, 1, got.join('\n'));
  });

  test('leaderElection: its defaults; timings that could give two owners are refused, naming why', () => {
    assert.deepEqual(validateConfig({ kubernetes: { leaderElection: {} } }).kubernetes!.leaderElection, { name: 'xdplb-director', leaseDuration: 1000, renewDeadline: 700, retryPeriod: 200 });
    const got = errors({ kubernetes: { leaderElection: { leaseDuration: '1s', renewDeadline: '1s', retryPeriod: '1s' } } });
    assert.ok(got.some((e) => e.startsWith('kubernetes.leaderElection.renewDeadline: renewDeadline (1s) must be shorter than leaseDuration (1s)')), got.join('\n'));
    assert.ok(got.some((e) => e.startsWith('kubernetes.leaderElection.retryPeriod: retryPeriod (1s) must be shorter than renewDeadline (1s)')), got.join('\n'));
    assert.deepEqual(validateConfig({ kubernetes: { leaderElection: { namespace: 'xdplb-system', identity: 'node-1', leaseDuration: '2s', renewDeadline: '1200ms', retryPeriod: '300ms' } } }).kubernetes!.leaderElection, {
      namespace: 'xdplb-system',
      name: 'xdplb-director',
      identity: 'node-1',
      leaseDuration: 2000,
      renewDeadline: 1200,
      retryPeriod: 300,
    });
  });

  test('an empty section means every default; --kubeconfig adds a section or sets its kubeconfig', () => {
    assert.deepEqual(validateConfig({ kubernetes: {} }).kubernetes, {
      externalIPs: [],
      loadBalancerClass: 'xdplb.io/dr',
      defaultClass: false,
      pools: [],
      nodeSelector: '',
      drainTimeout: 60_000,
      nodeHealthCheck: { port: 10256, path: '/healthz', interval: 2000, timeout: 1000, rise: 2, fall: 2 },
    });
    assert.equal(validateConfig({}, { kubeconfig: '/etc/kc' }).kubernetes?.kubeconfig, '/etc/kc');
    assert.deepEqual(validateConfig({ kubernetes: { pools: ['203.0.113.0/24'] } }, { kubeconfig: '/etc/kc' }).kubernetes?.pools, ['203.0.113.0/24']);
    assert.equal(validateConfig({}).kubernetes, undefined, 'no section, no flag: no Kubernetes mode');
  });
});
