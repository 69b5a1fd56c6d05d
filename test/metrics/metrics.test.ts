// /metrics counters are exact: packets sent through the real program with
// BPF_PROG_TEST_RUN show up, to the packet and byte, per service and backend.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { CONSTANTS, LAYOUT } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { labelValue } from '../../src/metrics/exposition.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { desired } from '../../src/model/desired.ts';
import { apply } from '../../src/reconcile/apply.ts';
import { appliedAfter, plan } from '../../src/reconcile/plan.ts';
import { emptyApplied } from '../../src/reconcile/state.ts';
import { ethernet, ipv4, MAC, tcp } from '../helpers/packets.ts';

function series(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) out.set(m[1] ?? '', Number(m[2]));
  }
  return out;
}

test('per-service and per-backend counters move by exactly what was sent; the switch drops backend series', async () => {
  const dp = await DataPlane.load({ maglevSize: 1009, maxServices: 16, maxDests: 64, maxFlows: 1024 });
  const config = validateConfig({
    maglevTableSize: 1009,
    capacity: { services: 16, backends: 64 },
    services: [{ name: 'web', vip: '10.240.0.201', port: 80, backends: [{ address: '10.240.0.101' }, { address: '10.240.0.102', weight: 3 }] }],
  });
  const empty = emptyApplied(CONSTANTS.VIP_FILTER_WORDS);
  const p = plan(empty, desired(config, { macOf: (a) => Buffer.from([2, 0, 0, 0, 1, a.bytes[3]!]), healthy: () => true, health: () => 'none' }), {
    maglevSize: 1009,
    maxServices: 16,
    maxDests: 64,
    directorMac: MAC.director,
  });
  apply(dp, p.ops);
  const next = appliedAfter(empty, p);
  const sent = new Map<string, { packets: number; bytes: number }>();
  for (let i = 0; i < 200; i++) {
    const ip = ipv4('10.240.0.10', '10.240.0.201', tcp(30000 + i, 80, 'ack', Buffer.alloc(i % 50)));
    const r = await dp.program.testRun(ethernet(ip), 1);
    const backend = `10.240.0.${r.packet[5]}`;
    const s = sent.get(backend) ?? { packets: 0, bytes: 0 };
    s.packets++;
    s.bytes += ip.length;
    sent.set(backend, s);
  }
  for (let i = 0; i < 5; i++) await dp.program.testRun(ethernet(ipv4('10.240.0.10', '10.240.0.2', tcp(1, 22))), 1);

  for (let i = 0; i < 3; i++) dp.maps.flows.update(Buffer.alloc(LAYOUT.flow_key.size, i + 1), Buffer.alloc(LAYOUT.flow.size));

  const metrics = new Metrics(
    {
      dp,
      applied: () => next,
      perBackend: () => true,
      healthChecks: () => [{ service: 'web', address: '10.240.0.102', lastDurationMs: 1.5, ok: 7, failed: 2 }],
      neighbours: () => [
        { address: '10.240.0.101', resolved: true },
        { address: '10.240.0.102', resolved: false },
      ],
    },
    'test',
  );
  metrics.healthCheckDuration.observe({ check: 'tcp', result: 'ok' }, 0.0015);
  const text = (await metrics.exposition()).join('');
  const labels = (addr: string) => `{local_address="10.240.0.201",local_port="80",proto="TCP",remote_address="${addr}",remote_port="80"}`;
  for (const [addr, s] of sent) {
    assert.equal(series(text, 'xdplb_backend_packets_total').get(labels(addr)), s.packets, `packets to ${addr}`);
    assert.equal(series(text, 'xdplb_backend_bytes_total').get(labels(addr)), s.bytes, `bytes to ${addr}`);
    assert.equal(series(text, 'xdplb_backend_up').get(labels(addr)), 1);
  }
  assert.equal(series(text, 'xdplb_backend_weight').get(labels('10.240.0.102')), 3);
  assert.equal(series(text, 'xdplb_service_packets_total').get('{name="web",local_address="10.240.0.201",local_port="80",proto="TCP"}'), 200);
  assert.equal(series(text, 'xdplb_xdp_actions_total').get('{action="tx"}'), 200);
  assert.equal(series(text, 'xdplb_xdp_actions_total').get('{action="pass"}'), 5);
  assert.equal(series(text, 'xdplb_drops_total').get('{reason="malformed"}'), 0);
  const svc = '{name="web",local_address="10.240.0.201",local_port="80",proto="TCP"}';
  assert.equal(series(text, 'xdplb_service_backends').get(svc), 2);
  assert.equal(series(text, 'xdplb_service_backends_up').get(svc), 2);
  assert.equal(series(text, 'xdplb_service_backends_healthy').get(svc), 2, 'health "none" in the applied state counts as healthy');
  assert.equal(series(text, 'xdplb_config_last_reload_successful').get(''), 1);
  metrics.reloadResult(false);
  assert.match((await metrics.exposition()).join(''), /^xdplb_config_last_reload_successful 0$/m, 'a refused reload shows');
  assert.equal(series(text, 'xdplb_backend_health_checks_total').get(labels('10.240.0.102').replace('}', ',result="ok"}')), 7);
  assert.equal(series(text, 'xdplb_backend_health_checks_total').get(labels('10.240.0.102').replace('}', ',result="failed"}')), 2);
  assert.equal(series(text, 'xdplb_backend_health_check_last_duration_seconds').get(labels('10.240.0.102')), 0.0015);
  assert.equal(series(text, 'xdplb_backend_health_check_last_duration_seconds').get(labels('10.240.0.101')), undefined, 'no check, no series');
  assert.equal(series(text, 'xdplb_health_check_duration_seconds_count').get('{check="tcp",result="ok"}'), 1);
  assert.equal(series(text, 'xdplb_neighbours').get('{state="resolved"}'), 1);
  assert.equal(series(text, 'xdplb_neighbours').get('{state="unresolved"}'), 1);
  assert.equal(series(text, 'xdplb_neighbour_resolved').get('{remote_address="10.240.0.102"}'), 0);
  assert.equal(series(text, 'xdplb_flow_table_entries').get(''), 3, 'the flows written');
  assert.equal(series(text, 'xdplb_flow_table_capacity').get(''), 1024);
  assert.equal(series(text, 'xdplb_config_reloads_total').get('{result="refused"}'), 0, 'reload results exist from the start');
  assert.ok(series(text, 'process_resident_memory_bytes').get('')! > 0, 'process metrics');
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(lint.error, undefined, 'promtool (Debian package prometheus) must be installed');
  // prom-client's own nodejs_*_total gauges draw a naming complaint; ours must draw none.
  const ours = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.startsWith('xdplb_') || /error|fail/i.test(l));
  assert.deepEqual(ours, [], 'promtool check metrics finds nothing wrong with the xdplb_ families');
  assert.match(text, /^xdplb_build_info\{version="test",abi_version="\d+"\} 1$/m);
  assert.equal((await metrics.exposition()).join('').match(/^xdplb_backend_packets_total\{/gm)?.length, 2, 'a second scrape gives the same series, not doubled');

  const lean = new Metrics({ dp, applied: () => next, perBackend: () => false, neighbours: () => [{ address: '10.240.0.101', resolved: true }] }, 'test');
  const leanText = (await lean.exposition()).join('');
  assert.doesNotMatch(leanText, /^xdplb_backend_packets_total\{/m, 'no per-backend series');
  assert.doesNotMatch(leanText, /^xdplb_neighbour_resolved\{/m, 'no per-node series');
  assert.match(leanText, /^xdplb_service_packets_total\{.*\} 200$/m, 'per-service series stay');
  assert.match(leanText, /^xdplb_neighbours\{state="resolved"\} 1$/m, 'the neighbour summary stays');
});

test('label values are escaped as the text format requires', () => {
  assert.equal(labelValue('plain-name'), 'plain-name');
  assert.equal(labelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});
