// Nodes leaving a Service's backends drain for drainTimeout, then go; back, they are active at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withDepartures } from '../../src/k8s/departures.ts';
import type { ServiceInput } from '../../src/k8s/translate.ts';

const svc = (name: string, ...addresses: string[]): ServiceInput => ({ name, vip: '203.0.113.1', port: 80, backends: addresses.map((address) => ({ address, state: 'active' as const })) });
const states = (s: ServiceInput) => Object.fromEntries((s.backends ?? []).map((b) => [b.address, b.state]));

test('a node that leaves drains until its deadline, then goes', () => {
  const before = [svc('a/web:http/203.0.113.1', '10.0.0.1', '10.0.0.2')];
  const left = withDepartures(before, [svc('a/web:http/203.0.113.1', '10.0.0.1')], new Map(), 1000, 60_000);
  assert.deepEqual(states(left.services[0]!), { '10.0.0.1': 'active', '10.0.0.2': 'draining' });
  assert.equal(left.nextDeadline, 61_000);
  // a later translation, before the deadline: still draining, same deadline
  const later = withDepartures(left.services, [svc('a/web:http/203.0.113.1', '10.0.0.1')], left.departures, 30_000, 60_000);
  assert.deepEqual(states(later.services[0]!), { '10.0.0.1': 'active', '10.0.0.2': 'draining' });
  assert.equal(later.nextDeadline, 61_000);
  // past it: gone, and not drained again
  const gone = withDepartures(later.services, [svc('a/web:http/203.0.113.1', '10.0.0.1')], later.departures, 61_000, 60_000);
  assert.deepEqual(states(gone.services[0]!), { '10.0.0.1': 'active' });
  assert.equal(gone.nextDeadline, null);
  assert.equal(gone.departures.size, 0);
  const after = withDepartures(gone.services, [svc('a/web:http/203.0.113.1', '10.0.0.1')], gone.departures, 62_000, 60_000);
  assert.deepEqual(states(after.services[0]!), { '10.0.0.1': 'active' });
});

test('a node that comes back while draining is active at once; a deleted service drains nothing', () => {
  const before = [svc('a/web:http/203.0.113.1', '10.0.0.1', '10.0.0.2'), svc('a/old:http/203.0.113.1', '10.0.0.1')];
  const left = withDepartures(before, [svc('a/web:http/203.0.113.1', '10.0.0.1')], new Map(), 0, 60_000);
  assert.equal(left.services.length, 1, 'a/old is deleted: nothing of it is kept');
  const back = withDepartures(left.services, [svc('a/web:http/203.0.113.1', '10.0.0.1', '10.0.0.2')], left.departures, 1000, 60_000);
  assert.deepEqual(states(back.services[0]!), { '10.0.0.1': 'active', '10.0.0.2': 'active' });
  assert.equal(back.departures.size, 0);
});

test('a terminating endpoint already draining in the translation is not a departure', () => {
  const before = [svc('a/web:http/203.0.113.1', '10.0.0.1', '10.0.0.2')];
  const next: ServiceInput = { ...svc('a/web:http/203.0.113.1', '10.0.0.1'), backends: [{ address: '10.0.0.1', state: 'active' }, { address: '10.0.0.2', state: 'draining' }] };
  const r = withDepartures(before, [next], new Map(), 0, 60_000);
  assert.equal(r.services[0], next, 'unchanged, the same object');
  assert.equal(r.nextDeadline, null);
});
