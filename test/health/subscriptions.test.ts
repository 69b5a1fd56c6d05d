// Which probes a configuration asks for: one per backend address and
// effective check, whoever asks for it and however its config was written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { effectiveCheck, wantedProbes } from '../../src/health/subscriptions.ts';

/** Services named svc-0, svc-1, … with the backends and checks given (port: the service's). */
function services(...specs: { port?: number; backends?: string[]; healthCheck: Record<string, unknown> }[]) {
  return validateConfig({
    services: specs.map((s, i) => ({
      name: `svc-${i}`,
      vip: '10.240.0.201',
      port: s.port ?? 80 + i,
      backends: (s.backends ?? ['10.240.0.101']).map((address) => ({ address })),
      healthCheck: s.healthCheck,
    })),
  }).services;
}

/** Each wanted probe as "address: services". */
function shared(...specs: Parameters<typeof services>) {
  return [...wantedProbes(services(...specs)).values()].map((p) => `${p.address}: ${[...p.services].join(' ')}`);
}

const kubeProxy = { type: 'http', port: 10256, path: '/healthz' };

test('the same check of the same address is one probe, however many services ask', () => {
  assert.deepEqual(shared({ healthCheck: kubeProxy, backends: ['10.240.0.101', '10.240.0.102'] }, { healthCheck: kubeProxy, backends: ['10.240.0.102', '10.240.0.101'] }, { healthCheck: kubeProxy }), [
    '10.240.0.101: svc-0 svc-1 svc-2',
    '10.240.0.102: svc-0 svc-1',
  ]);
});

test('the port that counts is the one probed: the check\'s, else the service\'s', () => {
  assert.deepEqual(shared({ port: 8080, healthCheck: { type: 'tcp' } }, { port: 9090, healthCheck: { type: 'tcp', port: 8080 } }), ['10.240.0.101: svc-0 svc-1'], 'both probe 8080');
  assert.deepEqual(shared({ port: 8080, healthCheck: { type: 'tcp' } }, { port: 9090, healthCheck: { type: 'tcp' } }), ['10.240.0.101: svc-0', '10.240.0.101: svc-1']);
});

test('a check that differs in anything that makes the probe or its verdict is another probe', () => {
  const changes: Record<string, unknown>[] = [
    { type: 'https' },
    { port: 10257 },
    { path: '/livez' },
    { host: 'node.example' },
    { expectStatus: 200 },
    { type: 'https', verifyTls: true },
    { interval: '5s' },
    { timeout: '500ms' },
    { rise: 1 },
    { fall: 1 },
  ];
  for (const change of changes) {
    const base = change.type === 'https' && 'verifyTls' in change ? { ...kubeProxy, type: 'https' } : kubeProxy;
    assert.equal(shared({ healthCheck: base }, { healthCheck: { ...base, ...change } }).length, 2, JSON.stringify(change));
  }
});

test('the order a check\'s fields were written in does not matter; no check, no probe', () => {
  const [a, b] = services({ healthCheck: { path: '/healthz', type: 'http', fall: 2, port: 10256 } }, { healthCheck: { type: 'http', port: 10256, fall: 2, path: '/healthz' } });
  assert.equal(JSON.stringify(effectiveCheck(a!)), JSON.stringify(effectiveCheck(b!)));
  assert.deepEqual(shared({ healthCheck: { type: 'none' } }), []);
});
