// A config that validates is one the daemon can use: the schema refuses every
// value the code would fail on later (a probe Node will not send, a timer Node
// cannot wait for, an address no flow can go to), and one run of validation
// reports every problem, cross-field ones included.
import assert from 'node:assert/strict';
import { request, validateHeaderValue } from 'node:http';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { Duration, MAX_TIMER_MS, type ConfigInput, type HealthCheckConfig } from '../../src/config/schema.ts';
import { configErrors } from '../helpers/config.ts';

const errors = configErrors;

type Check = NonNullable<NonNullable<ConfigInput['services']>[number]['healthCheck']>;

/** One service with this health check. */
function withCheck(healthCheck: Check): ConfigInput {
  return { services: [{ name: 'web', vip: '10.240.0.201', port: 80, backends: [{ address: '10.240.0.101' }], healthCheck }] };
}

function check(healthCheck: Check): HealthCheckConfig {
  return validateConfig(withCheck(healthCheck)).services[0]!.healthCheck;
}

function checkErrors(healthCheck: Check): string[] {
  return errors(withCheck(healthCheck));
}

/** Whether Node's http.request takes this path (it throws synchronously when not). */
function nodeSendsPath(path: string): boolean {
  try {
    request({ host: '127.0.0.1', port: 9, path, agent: false }).on('error', () => undefined).destroy();
    return true;
  } catch {
    return false;
  }
}

function nodeSendsHost(host: string): boolean {
  try {
    validateHeaderValue('host', host);
    return true;
  } catch {
    return false;
  }
}

const CHARS = Array.from({ length: 0x180 }, (_, i) => String.fromCharCode(i));

describe('health-check path and Host header', () => {
  test('a path Node cannot send is refused; everything accepted is sent as written', () => {
    for (const path of ['/health check', '/a\tb', '/a\u0007b', '/é', '/a#frag', 'health', '', '/%zz', '/a%2', `/${'a'.repeat(2048)}`]) {
      const e = checkErrors({ type: 'http', path });
      assert.ok(e.some((m) => m.startsWith('services[0].healthCheck.path: ')), `${JSON.stringify(path)}: ${e.join('\n')}`);
    }
    for (const path of ['/', '/healthz', '/a%20b', '/a/b/', '//x', "/!$&'()*+,;=:@-._~", '/x?y=1&z=/2?', '/ready?'])
      assert.equal((check({ type: 'http', path }) as { path: string }).path, path);
    // the class, not the examples: every character, alone in a path
    for (const ch of CHARS) {
      const path = `/a${ch}b`;
      let accepted = true;
      try {
        check({ type: 'http', path });
      } catch {
        accepted = false;
      }
      if (accepted) assert.ok(nodeSendsPath(path), `${JSON.stringify(path)} validates, and Node refuses to send it`);
    }
  });

  test('a Host header Node cannot send is refused; a host name, an address, [IPv6], with a port', () => {
    for (const host of ['x\u0007y', 'a b', 'app.example:99999', 'app.example:0', 'app.example:', '[::1', '[fe80::1%eth0]', '[10.0.0.1]', 'a..b', '-a.example', 'a_b.-x', 'é.example', `${'a'.repeat(64)}.example`, '', 'a:b:c']) {
      const e = checkErrors({ type: 'http', host });
      assert.ok(e.some((m) => m.startsWith('services[0].healthCheck.host: ')), `${JSON.stringify(host)}: ${e.join('\n')}`);
    }
    for (const host of ['app.example', 'app.example:8080', 'localhost', '10.240.0.101', '10.240.0.101:80', '[2001:db8::1]', '[2001:db8::1]:8443', 'a_b.example', `${'a'.repeat(63)}.example`])
      assert.equal((check({ type: 'http', host }) as { host?: string }).host, host);
    for (const ch of CHARS) {
      const host = `a${ch}b`;
      let accepted = true;
      try {
        check({ type: 'http', host });
      } catch {
        accepted = false;
      }
      if (accepted) assert.ok(nodeSendsHost(host), `${JSON.stringify(host)} validates, and Node refuses to send it`);
    }
  });
});

describe('durations', () => {
  test('zero, negatives and anything over the timer limit are no duration at all', () => {
    const refused: unknown[] = [0, -1, '0s', '0ms', '0.4ms', '-1s', '1d', '', '2 s', 'ms', true, null, Number.NaN, MAX_TIMER_MS / 1000 + 0.001, `${MAX_TIMER_MS + 1}ms`, '597h'];
    for (const v of refused) assert.equal(Duration.safeParse(v).success, false, `${JSON.stringify(v)} is no duration`);
    const accepted: [unknown, number][] = [[0.001, 1], ['1ms', 1], ['500ms', 500], [2, 2000], ['1.5s', 1500], ['1m', 60_000], ['1h', 3_600_000], ['596h', 2_145_600_000], [`${MAX_TIMER_MS}ms`, MAX_TIMER_MS]];
    for (const [v, ms] of accepted) assert.deepEqual(Duration.safeParse(v), { success: true, data: ms }, JSON.stringify(v));
    assert.match(Duration.safeParse('0s').error!.issues[0]!.message, /from 1ms to 2147483647ms/);
  });

  test('a health check is probed every 100ms to 1h, with a timeout of 10ms up to its interval; the message names the field and the range', () => {
    const cases: [Check, RegExp][] = [
      [{ type: 'tcp', interval: '0s', timeout: '0ms' }, /^services\[0\]\.healthCheck\.interval: a duration from 100ms to 1h.*\(got "0s"\)$/],
      [{ type: 'tcp', interval: '0s', timeout: '0ms' }, /^services\[0\]\.healthCheck\.timeout: a duration from 10ms to 1h.*\(got "0ms"\)$/],
      [{ type: 'tcp', interval: '99ms' }, /^services\[0\]\.healthCheck\.interval: a duration from 100ms to 1h/],
      [{ type: 'http', interval: '25d' }, /^services\[0\]\.healthCheck\.interval: a duration from 100ms to 1h/],
      [{ type: 'http', interval: 3601 }, /^services\[0\]\.healthCheck\.interval: a duration from 100ms to 1h.*\(got 3601\)/],
      [{ type: 'http', interval: 2147484 }, /^services\[0\]\.healthCheck\.interval: /],
      [{ type: 'tcp', interval: '1s', timeout: '9ms' }, /^services\[0\]\.healthCheck\.timeout: a duration from 10ms to 1h/],
      [{ type: 'tcp', interval: '500ms', timeout: '501ms' }, /^services\[0\]\.healthCheck\.timeout: timeout \(501ms\) must not exceed interval \(500ms\)$/],
      [{ type: 'tcp', interval: '500ms' }, /^services\[0\]\.healthCheck\.timeout: timeout \(1s\) must not exceed interval \(500ms\)$/],
    ];
    for (const [hc, re] of cases) {
      const e = checkErrors(hc);
      assert.ok(e.some((m) => re.test(m)), `${JSON.stringify(hc)}: no error matching ${re} in:\n${e.join('\n')}`);
    }
    const edges = check({ type: 'tcp', interval: '100ms', timeout: '10ms' });
    assert.ok(edges.type === 'tcp' && edges.interval === 100 && edges.timeout === 10);
    const top = check({ type: 'http', interval: '1h', timeout: '1h' });
    assert.ok(top.type === 'http' && top.interval === 3_600_000 && top.timeout === 3_600_000);
    const defaults = check({ type: 'tcp' });
    assert.ok(defaults.type === 'tcp' && defaults.interval === 2000 && defaults.timeout === 1000);
  });
});

describe('expected status', () => {
  test('a range is low end first', () => {
    assert.deepEqual(checkErrors({ type: 'http', expectStatus: '399-200' }), ['services[0].healthCheck.expectStatus: a range of status codes, its low end first (like "200-399")']);
    assert.equal(checkErrors({ type: 'http', expectStatus: '600-700' }).length, 1, 'one message for a malformed range');
    for (const expectStatus of ['200-200', '200-399', '100-599', 204]) assert.equal((check({ type: 'http', expectStatus }) as { expectStatus: unknown }).expectStatus, expectStatus);
  });
});

describe('VIPs and backends', () => {
  test('an address that names no single host is refused, with why, as a VIP and as a backend', () => {
    const refused: [string, RegExp][] = [
      ['0.0.0.0', /0\.0\.0\.0\/8/],
      ['255.255.255.255', /limited broadcast/],
      ['224.0.0.5', /multicast/],
      ['239.1.1.1', /multicast/],
      ['127.0.0.1', /loopback/],
      ['127.1.2.3', /loopback/],
      ['::', /unspecified/],
      ['::1', /loopback/],
      ['ff05::2', /multicast/],
      ['::ffff:10.240.0.9', /IPv4-mapped/],
      ['fe80::1%eth0', /zone .*%eth0.* is not supported/],
    ];
    for (const [address, why] of refused) {
      const v6 = address.includes(':');
      const vip = v6 ? '2001:db8::201' : '10.240.0.201';
      const asVip = errors({ services: [{ name: 'a', vip: address, port: 80 }] });
      assert.ok(asVip.length === 1 && asVip[0]!.startsWith('services[0].vip: ') && why.test(asVip[0]!), `VIP ${address}: ${asVip.join('\n')}`);
      const asBackend = errors({ services: [{ name: 'a', vip, port: 80, backends: [{ address }] }] });
      assert.ok(asBackend.length === 1 && asBackend[0]!.startsWith('services[0].backends[0].address: ') && why.test(asBackend[0]!), `backend ${address}: ${asBackend.join('\n')}`);
    }
    const c = validateConfig({ services: [{ name: 'a', vip: '10.240.0.201', port: 80, backends: [{ address: '169.254.0.9' }, { address: '240.0.0.1' }] }, { name: 'b', vip: '2001:db8::201', port: 80, backends: [{ address: 'fe80::9' }] }] });
    assert.equal(c.services.length, 2, 'link-local and 240/4 stay usable');
  });
});

describe('every error in one run', () => {
  test('a duplicate service name and an invalid weight, in the same service, are both reported, whatever is wrong with the weight', () => {
    // zod skips a refinement after an aborting issue (a wrong type, a fraction for an int), not after a range one
    for (const weight of [-1, 2_000_000, 1.5, 'heavy', null, true]) {
      const e = errors({
        services: [
          { name: 'a', vip: '10.240.0.201', port: 80, backends: [{ address: '10.0.0.1' }] },
          { name: 'a', vip: '10.240.0.202', port: 80, backends: [{ address: '10.0.0.1', weight }] },
        ],
      });
      assert.ok(e.some((m) => m.startsWith('services[1].backends[0].weight: ')), `${JSON.stringify(weight)}:\n${e.join('\n')}`);
      assert.ok(e.includes('services[1].name: duplicate service name "a" (also services[0])'), `${JSON.stringify(weight)}:\n${e.join('\n')}`);
    }
  });

  test('whatever kind of problem another field has, the cross-field errors are still reported', () => {
    type Raw = { [k: string]: unknown; services: { [k: string]: unknown; backends: Record<string, unknown>[]; healthCheck: Record<string, unknown> }[] };
    const base = (): Raw => ({
      services: [
        { name: 'a', vip: '10.240.0.201', port: 80, backends: [{ address: '10.0.0.1' }], healthCheck: { type: 'http', interval: '2s', timeout: '1s' } },
        { name: 'a', vip: '10.240.0.202', port: 80, backends: [{ address: '10.0.0.1' }], healthCheck: { type: 'tcp' } },
      ],
    });
    const s0 = (c: Raw) => c.services[0]!;
    const breakages: [string, (c: Raw) => void][] = [
      ['a fractional weight', (c) => (s0(c).backends[0]!.weight = 1.5)],
      ['a fractional port', (c) => (s0(c).port = 80.5)],
      ['a fractional rise', (c) => (s0(c).healthCheck.rise = 1.5)],
      ['a fractional expected status', (c) => (s0(c).healthCheck.expectStatus = 200.5)],
      ['a fractional hash seed', (c) => (c.hashSeed = 0.5)],
      ['a fractional table size', (c) => (c.maglevTableSize = 16381.5)],
      ['a fractional capacity', (c) => (c.capacity = { flows: 2048.5 })],
      ['a reversed status range', (c) => (s0(c).healthCheck.expectStatus = '399-200')],
      ['a malformed status range', (c) => (s0(c).healthCheck.expectStatus = '2xx')],
      ['an unknown check type', (c) => (s0(c).healthCheck = { type: 'ping' })],
      ['an unknown protocol', (c) => (s0(c).protocol = 'sctp')],
      ['an unknown key', (c) => (s0(c).bogus = 1)],
      ['an unknown top-level key', (c) => (c.bogus = 1)],
      ['a bad VIP', (c) => (s0(c).vip = '10.240.0.999')],
      ['a loopback backend', (c) => (s0(c).backends[0]!.address = '127.0.0.1')],
      ['a bad duration', (c) => (s0(c).healthCheck.interval = '0s')],
      ['a duration of the wrong type', (c) => (s0(c).healthCheck.interval = true)],
      ['a bad path', (c) => (s0(c).healthCheck.path = '/a b')],
      ['a bad metrics address', (c) => (c.metricsAddress = 'localhost:99999')],
      ['a backend that is no object', (c) => (s0(c).backends[0] = 'x' as unknown as Record<string, unknown>)],
      ['backends that are no list', (c) => (s0(c).backends = 'x' as unknown as Record<string, unknown>[])],
    ];
    for (const [what, breakIt] of breakages) {
      const raw = base();
      breakIt(raw);
      const e = errors(raw);
      assert.ok(e.some((m) => !m.startsWith('services[1].name: ')), `${what}: its own error:\n${e.join('\n')}`);
      assert.ok(e.includes('services[1].name: duplicate service name "a" (also services[0])'), `${what}: the duplicate name is hidden:\n${e.join('\n')}`);
    }
  });

  test('each cross-field check still runs beside an invalid field elsewhere', () => {
    const e = errors({
      bogus: true,
      maglevTableSize: 16383,
      capacity: { services: 2, backends: 3 },
      services: [
        { name: 'a', vip: '10.240.0.201', port: 80, protocol: 'tcp', backends: [{ address: '10.0.0.1' }, { address: '10.0.0.1', weight: 'x' }], healthCheck: { type: 'http', path: 'bad', interval: '1s', timeout: '2s' } },
        { name: 'b', vip: '10.240.0.201', port: 80, scheduler: 'random', backends: [{ address: '2001:db8::1', state: 'gone' }] },
        { name: 'c', vip: '10.240.0.203', healthCheck: { type: 'tcp', rise: 0 }, bogus: 1 },
      ],
    });
    const want = [
      /^services\[0\]\.backends\[1\]\.weight: /,
      /^services\[0\]\.backends\[1\]\.address: duplicate backend 10\.0\.0\.1$/,
      /^services\[0\]\.healthCheck\.path: /,
      /^services\[0\]\.healthCheck\.timeout: timeout \(2s\) must not exceed interval \(1s\)$/,
      /^services\[1\]\.scheduler: /,
      /^services\[1\]\.backends\[0\]\.state: /,
      /^services\[1\]\.port: tcp\/10\.240\.0\.201:80 is already served by services\[0\]$/,
      /^services\[1\]\.backends\[0\]\.address: IPv6 backend for an IPv4 VIP$/,
      /^services\[2\]\.healthCheck\.rise: /,
      /^services\[2\]\.healthCheck\.port: a port-less service needs a health-check port$/,
      /^services\[2\]: .*bogus/,
      /^services: 3 services exceed capacity\.services - 1 \(1\)$/,
      /^capacity\.backends: 3 backends in all exceed capacity\.backends - 1 \(2\)$/,
      /^maglevTableSize: a prime number$/,
      /^\(top level\): .*bogus/,
    ];
    for (const re of want) assert.ok(e.some((m) => re.test(m)), `no error matching ${re} in:\n${e.join('\n')}`);
    assert.equal(e.length, want.length, `no more than these:\n${e.join('\n')}`);
  });

  test('a cross-field check never reads an invalid field: it has its own error, and only that', () => {
    const e = errors({
      services: [
        { name: 'a', vip: '10.240.0.999', port: 80, backends: [{ address: '10.0.0.1' }] },
        { name: 'a', vip: '10.240.0.999', port: 80, backends: [{ address: '10.0.0.x' }, { address: '10.0.0.x' }] },
        { name: '-bad', vip: '10.240.0.1', port: 80 },
        { name: '-bad', vip: '10.240.0.1', port: 'eighty', healthCheck: { type: 'tcp', interval: 'soon', timeout: '1s' } },
        42,
        { name: 'z', vip: '10.240.0.9', backends: 'none', healthCheck: { type: 'ping' } },
      ],
    });
    assert.deepEqual(
      e.filter((m) => /duplicate|already served|backend for|must not exceed|port-less/.test(m)),
      ['services[1].name: duplicate service name "a" (also services[0])'],
      e.join('\n'),
    );
    assert.ok(e.some((m) => m.startsWith('services[4]: ')), e.join('\n'));
    for (const raw of ['services: 1', 42, [], { services: 'x' }, { services: [null] }, { capacity: 'big', services: [{ name: 'a', vip: '10.0.0.1' }] }]) assert.ok(errors(raw).length > 0);
  });
});
