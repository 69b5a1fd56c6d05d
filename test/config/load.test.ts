// Reading a config file: JSON refuses duplicate keys as YAML does, and a file
// over the size cap is refused before it is parsed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CORE_SCHEMA, load } from 'js-yaml';
import { duplicateJsonKey, loadConfig, MAX_CONFIG_BYTES, MAX_YAML_BYTES, parseConfigText } from '../../src/config/load.ts';
import { XdplbError } from '../../src/errors.ts';

function unreadable(text: string): string {
  try {
    parseConfigText(text, 'c.json');
  } catch (err) {
    assert.ok(err instanceof XdplbError && err.code === 'CONFIG_UNREADABLE', String(err));
    return err.details.join('\n');
  }
  assert.fail(`expected ${text} to be refused`);
}

describe('duplicate keys in JSON', () => {
  test('are refused with the line, the column and the path of their object', () => {
    assert.equal(unreadable('{"interface": "a", "interface": "b"}'), 'line 1, column 20: duplicated key "interface" in (top level)');
    const nested = JSON.stringify({ services: [{ name: 'a', backends: [] }, { name: 'b', backends: [{ address: '10.0.0.1', weight: 1 }] }] }, null, 2).replace('"weight": 1', '"weight": 1,\n          "address": "10.0.0.2"');
    assert.equal(unreadable(nested), 'line 13, column 11: duplicated key "address" in services[1].backends[0]');
    assert.match(unreadable('{"a": {"b": [[1, {"c": 1, "c": 2}]]}}'), /duplicated key "c" in a\.b\[0\]\[1\]$/);
    assert.match(unreadable('{"a": 1, "\\u0061": 2}'), /duplicated key "a"/, 'keys are compared as JSON reads them');
    assert.match(unreadable('{"services": [], "x": {}, "services": []}'), /duplicated key "services" in \(top level\)/);
    assert.match(unreadable('{"a": {"__proto__": 1, "__proto__": 2}}'), /duplicated key "__proto__" in a$/, 'JSON.parse makes __proto__ an own key, counted as any other');
  });

  test('the same key in different objects, and keys inside strings, are not duplicates', () => {
    const text = JSON.stringify({
      interface: 'eth1',
      services: [
        { name: 'a,"name":{', vip: '10.0.0.1', backends: [{ address: '10.0.0.2' }, { address: '10.0.0.3' }] },
        { name: 'b\\', vip: '10.0.0.4', backends: [{ address: '10.0.0.2' }], healthCheck: { type: 'http', path: '/"}],"name":"a"' } },
      ],
    });
    assert.deepEqual(parseConfigText(text, 'c.json'), JSON.parse(text));
    const tricky = '{"a": "\\"", "b": "\\\\", "c": ["a", "a"], "d": {"a": 1}, "e": ":", "f": " :x", "g": {"__proto__": {"a": 1}}}';
    assert.equal(duplicateJsonKey(tricky, JSON.parse(tricky)), null);
  });

  test('agrees with the YAML parser on random JSON documents', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n);
    };
    const keys = ['a', 'b', 'c', 'x\\"y', 'ü', 'a b'];
    const value = (depth: number): string => {
      const kind = depth > 3 ? random(3) : random(5);
      if (kind === 0) return String(random(100));
      if (kind === 1) return JSON.stringify(keys[random(keys.length)]!.replace('\\"', '"') + ',{}[]:');
      if (kind === 2) return random(2) ? 'true' : 'null';
      if (kind === 3) return `[${Array.from({ length: random(3) }, () => value(depth + 1)).join(', ')}]`;
      return `{${Array.from({ length: random(6) }, () => `"${keys[random(keys.length)]}":${random(2) ? '\n ' : ' '}${value(depth + 1)}`).join(', ')}}`;
    };
    let duplicates = 0;
    for (let i = 0; i < 2000; i++) {
      const text = `{"top": ${value(0)}}`;
      let yamlRefuses = false;
      try {
        load(text, { schema: CORE_SCHEMA });
      } catch (err) {
        yamlRefuses = /duplicated mapping key/.test(String(err));
      }
      const dup = duplicateJsonKey(text, JSON.parse(text));
      assert.equal(dup !== null, yamlRefuses, text);
      if (dup) duplicates++;
    }
    assert.ok(duplicates > 100 && duplicates < 1900, `both kinds of document were tried (${duplicates} with a duplicate)`);
  });
});

describe('the size cap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test(`a file of ${MAX_CONFIG_BYTES} bytes is read, one byte more is refused, with the cap in the message`, async () => {
    const at = join(dir, 'at.json');
    writeFileSync(at, `{"interface": "eth1"}${' '.repeat(MAX_CONFIG_BYTES - 21)}`);
    assert.equal((await loadConfig(at)).interface, 'eth1');
    const over = join(dir, 'over.yaml');
    writeFileSync(over, `interface: eth1\n${'#'.repeat(MAX_CONFIG_BYTES - 15)}`);
    await assert.rejects(loadConfig(over), (err: XdplbError) => err.code === 'CONFIG_UNREADABLE' && err.message === `${over} is larger than 32 MiB, the most a config file may be (10,000 services of 10 backends take under 20 MiB)`);
  });

  test(`YAML, which costs three times the memory of JSON, is parsed up to ${MAX_YAML_BYTES} bytes`, () => {
    const yaml = (bytes: number) => `interface: eth1\n${'#'.repeat(bytes - 16)}`;
    assert.deepEqual(parseConfigText(yaml(MAX_YAML_BYTES), 'at.yaml'), { interface: 'eth1' });
    assert.throws(
      () => parseConfigText(yaml(MAX_YAML_BYTES + 1), 'over.yaml'),
      (err: XdplbError) => err.code === 'CONFIG_UNREADABLE' && err.message === 'over.yaml is over 16 MiB of YAML, the most xdplb parses as YAML: write a config this large as JSON (up to 32 MiB)',
    );
    assert.deepEqual(parseConfigText(`{"interface": "eth1"}${' '.repeat(MAX_YAML_BYTES)}`, 'big.json'), { interface: 'eth1' }, 'JSON is not held to it');
    assert.throws(
      () => parseConfigText(`{"interface": "eth1",${' '.repeat(MAX_YAML_BYTES)}}`, 'bad.json'),
      (err: XdplbError) => err.code === 'CONFIG_UNREADABLE' && /^bad\.json is not valid YAML or JSON:\n  .*JSON/.test(err.message),
      'a large JSON document with an error gets the JSON parser\'s message',
    );
  });

  test('a missing file is unreadable, not a crash', async () => {
    await assert.rejects(loadConfig(join(dir, 'missing.yaml')), (err: XdplbError) => err.code === 'CONFIG_UNREADABLE' && /cannot read .*missing\.yaml: ENOENT/.test(err.message));
  });
});
