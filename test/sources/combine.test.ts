// Two sources of services combined: side by side when they agree; refused,
// naming both, when they claim the same name or the same VIP, port and
// protocol, or more than the data plane holds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { XdplbError } from '../../src/errors.ts';
import { combineServices } from '../../src/sources/combine.ts';
import type { ServiceSource } from '../../src/sources/source.ts';

const capacity = { services: 16, backends: 64, flows: 262144 };
function source(name: string, services: ConfigInput['services']): ServiceSource {
  const valid = validateConfig({ capacity, services }).services; // each source's services pass the one schema
  return { name, services: () => valid };
}
const svc = (name: string, vip: string, port = 80, protocol: 'tcp' | 'udp' = 'tcp') => ({ name, vip, port, protocol, backends: [{ address: '10.240.0.101' }, { address: '10.240.0.102' }] });

test('static services next to Kubernetes ones: one set, in source order', () => {
  const file = source('config /etc/xdplb/config.yaml', [svc('web', '10.240.0.201')]);
  const kube = source('kubernetes', [svc('shop/frontend:http', '198.51.100.64'), svc('shop/dns:53', '198.51.100.64', 53, 'udp')]);
  assert.deepEqual(
    combineServices([file, kube], capacity).map((s) => s.name),
    ['web', 'shop/frontend:http', 'shop/dns:53'],
  );
});

test('the same VIP, port and protocol from two sources is refused, naming both sources and services', () => {
  const file = source('config /etc/xdplb/config.yaml', [svc('web', '10.240.0.201')]);
  const kube = source('kubernetes', [svc('shop/frontend:http', '10.240.0.201'), svc('shop/other:http', '10.240.0.201', 8080)]);
  assert.throws(
    () => combineServices([file, kube], capacity),
    (e: XdplbError) =>
      e.code === 'CONFIG_INVALID' &&
      e.details.length === 1 &&
      e.details[0] === 'tcp/10.240.0.201:80 is claimed by config /etc/xdplb/config.yaml (service web) and by kubernetes (service shop/frontend:http)',
  );
  assert.doesNotThrow(() => combineServices([file, source('kubernetes', [svc('shop/dns:53', '10.240.0.201', 80, 'udp')])], capacity), 'another protocol is another service');
});

test('the same name from two sources, and more services than capacity, are refused', () => {
  const file = source('config a.yaml', [svc('web', '10.240.0.201')]);
  const other = source('config b.yaml', [svc('web', '10.240.0.202')]);
  assert.throws(() => combineServices([file, other], capacity), /service web is defined by config a\.yaml and by config b\.yaml/);
  const many = (prefix: string, n: number, net: number) => source(prefix, Array.from({ length: n }, (_, i) => svc(`${prefix}-${i}`, `10.${net}.0.${i + 1}`)));
  assert.throws(() => combineServices([many('a', 8, 1), many('b', 8, 2)], capacity), /16 services from a and b exceed capacity\.services - 1 \(15\)/);
});
