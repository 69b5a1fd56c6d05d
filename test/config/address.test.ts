// Listen addresses (metricsAddress, apiAddress, --api): one parser, pure, and
// the schema refuses what it refuses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_SOCKET_PATH_BYTES, parseApiAddress, parseHostPort } from '../../src/config/address.ts';
import { validateConfig } from '../../src/config/load.ts';
import { XdplbError } from '../../src/errors.ts';

function details(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof XdplbError, String(err));
    return [...err.details];
  }
  assert.fail('expected the config to be refused');
}

describe('HOST:PORT', () => {
  test('an IPv4 address, [IPv6] or localhost, and a port 1-65535', () => {
    const good: [string, string, number][] = [
      ['127.0.0.1:9842', '127.0.0.1', 9842],
      ['0.0.0.0:1', '0.0.0.0', 1],
      ['10.1.2.3:65535', '10.1.2.3', 65535],
      ['[::1]:9842', '::1', 9842],
      ['[::]:80', '::', 80],
      ['[2001:db8::1]:443', '2001:db8::1', 443],
      ['localhost:9842', 'localhost', 9842],
    ];
    for (const [text, host, port] of good) assert.deepEqual(parseHostPort(text), { kind: 'tcp', host, port }, text);
  });

  test('anything else is refused with what was wrong', () => {
    const bad: [string, RegExp][] = [
      ['999.1.1.1:80', /"999\.1\.1\.1" is not an IPv4 address, \[IPv6\] or localhost/],
      ['01.2.3.4:80', /not an IPv4 address/],
      ['example.com:80', /not an IPv4 address/],
      ['localhost:99999', /port "99999" is not a number from 1 to 65535/],
      ['localhost:0', /port "0"/],
      ['127.0.0.1:-1', /port "-1"/],
      ['127.0.0.1:', /port ""/],
      ['127.0.0.1:80x', /port "80x"/],
      ['127.0.0.1', /^not HOST:PORT/],
      [':80', /no host before the port/],
      ['::1:80', /an IPv6 address goes in brackets: \[::1\]:PORT/],
      ['[::1]', /^not HOST:PORT/],
      ['[10.0.0.1]:80', /\[10\.0\.0\.1\] is not an IPv6 address/],
      ['[fe80::1%eth0]:80', /a zone \(%eth0\) is not supported/],
      ['', /^not HOST:PORT/],
      [' 127.0.0.1:80', /not an IPv4 address/],
    ];
    for (const [text, why] of bad) {
      const r = parseHostPort(text);
      assert.equal(typeof r, 'string', `${JSON.stringify(text)} should be refused`);
      assert.match(r as string, why, text);
    }
  });
});

describe('the API address', () => {
  test('an absolute socket path of at most 107 bytes, or HOST:PORT', () => {
    assert.deepEqual(parseApiAddress('/run/xdplb/api.sock'), { kind: 'unix', path: '/run/xdplb/api.sock' });
    assert.deepEqual(parseApiAddress('127.0.0.1:9843'), { kind: 'tcp', host: '127.0.0.1', port: 9843 });
    const longest = `/${'a'.repeat(MAX_SOCKET_PATH_BYTES - 1)}`;
    assert.deepEqual(parseApiAddress(longest), { kind: 'unix', path: longest });
    assert.match(parseApiAddress(`${longest}a`) as string, /108 bytes is too long: at most 107/);
    assert.match(parseApiAddress(`/${'é'.repeat(54)}`) as string, /109 bytes/, 'bytes, not characters');
    assert.match(parseApiAddress('/run/a\0b') as string, /NUL/);
    assert.match(parseApiAddress('/run/xdplb/') as string, /not a directory/);
    assert.match(parseApiAddress('run/api.sock') as string, /neither an absolute Unix socket path .* nor HOST:PORT/);
    assert.match(parseApiAddress('localhost:99999') as string, /port "99999"/);
  });
});

describe('in the config', () => {
  test('metricsAddress is checked, and keeps its default', () => {
    assert.equal(validateConfig({}).metricsAddress, '127.0.0.1:9842');
    assert.equal(validateConfig({ metricsAddress: '[::]:9842' }).metricsAddress, '[::]:9842');
    for (const metricsAddress of ['999.1.1.1:80', 'localhost:99999', '/run/metrics.sock']) {
      const e = details(() => validateConfig({ metricsAddress }));
      assert.ok(e.length === 1 && e[0]!.startsWith('metricsAddress: '), `${metricsAddress}: ${e.join('\n')}`);
    }
  });

  test('apiAddress is a socket path or HOST:PORT, with no default (the daemon derives its socket from its pin directory)', () => {
    assert.equal(validateConfig({}).apiAddress, undefined);
    assert.equal(validateConfig({ apiAddress: '/run/xdplb/api.sock' }).apiAddress, '/run/xdplb/api.sock');
    assert.equal(validateConfig({ apiTokenFile: '/etc/xdplb/api.token' }, { apiAddress: '127.0.0.1:9843' }).apiAddress, '127.0.0.1:9843', '--api goes through the same schema');
    for (const apiAddress of ['999.1.1.1:80', 'localhost:99999', 'api.sock', `/${'x'.repeat(200)}`]) {
      const e = details(() => validateConfig({ apiAddress }));
      assert.ok(e.length === 1 && e[0]!.startsWith('apiAddress: '), `${apiAddress}: ${e.join('\n')}`);
    }
  });
});
