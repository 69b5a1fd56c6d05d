// The Kubernetes services stay the same objects from one translation to the next where nothing changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StableServices } from '../../src/k8s/stable.ts';
import type { ServiceInput } from '../../src/k8s/translate.ts';

const CAPACITY = { services: 4096, backends: 65536, flows: 262144 };
const nodes = (...n: number[]) => n.map((i) => ({ address: `10.0.0.${i}`, state: 'active' as const }));
const svc = (name: string, backends: ServiceInput['backends'], port = 80): ServiceInput => ({ name, vip: '203.0.113.1', port, backends, healthCheck: { type: 'http', port: 10256, path: '/healthz' } });

test('equal services (new objects, equal content) are the same objects and configs as before; a changed one is new', () => {
  const stable = new StableServices();
  const shared = nodes(1, 2, 3);
  assert.equal(stable.accept([svc('a/x:http/203.0.113.1', shared), svc('a/y:http/203.0.113.1', shared, 81)], CAPACITY), true);
  const first = stable.current();
  assert.equal(first.configs[0]!.backends.length, 3);
  // the next translation: all new objects, one service's backends changed
  assert.equal(stable.accept([svc('a/x:http/203.0.113.1', nodes(1, 2, 3)), svc('a/y:http/203.0.113.1', nodes(1, 2), 81)], CAPACITY), true);
  const second = stable.current();
  assert.equal(second.inputs[0], first.inputs[0], 'x unchanged: the same input');
  assert.equal(second.configs[0], first.configs[0], 'and the same validated config');
  assert.notEqual(second.configs[1], first.configs[1], 'y changed: validated anew');
  assert.deepEqual(second.configs[1]!.backends.map((b) => b.address), ['10.0.0.1', '10.0.0.2']);
  // nothing changed at all: reported so
  assert.equal(stable.accept([svc('a/x:http/203.0.113.1', nodes(1, 2, 3)), svc('a/y:http/203.0.113.1', nodes(1, 2), 81)], CAPACITY), false);
  // a field other than the backends changed: new
  assert.equal(stable.accept([svc('a/x:http/203.0.113.1', nodes(1, 2, 3), 8080), svc('a/y:http/203.0.113.1', nodes(1, 2), 81)], CAPACITY), true);
  assert.equal(stable.current().configs[0]!.port, 8080);
  assert.equal(stable.current().configs[1], second.configs[1]);
});

test('a service the schema refuses changes nothing', () => {
  const stable = new StableServices();
  stable.accept([svc('a/x:http/203.0.113.1', nodes(1))], CAPACITY);
  const before = stable.current();
  assert.throws(() => stable.accept([svc('a/x:http/203.0.113.1', [{ address: 'not-an-address' }])], CAPACITY), /not-an-address|address/);
  assert.deepEqual(stable.current(), before);
});
