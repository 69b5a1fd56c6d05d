// `xdplb import ipvsadm|keepalived` through bin/xdplb: the config on stdout
// (which `xdplb config validate` accepts), the warnings on stderr, the exit
// codes of EXIT_HELP, keepalived's includes read from disk.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-import-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function xdplb(args: string[], options: { input?: string; cwd?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(XDPLB, args, { encoding: 'utf8', input: options.input ?? '', cwd: options.cwd, env: { ...process.env, XDPLB_RUN_DIR: dir } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `xdplb config validate` on a text: its exit status and output. */
function validate(yaml: string): { status: number | null; stdout: string; stderr: string } {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return xdplb(['config', 'validate', file]);
}

describe('xdplb import', () => {
  test('--help of each shows an example and the exit codes; `xdplb import` alone is bad usage', () => {
    for (const c of ['ipvsadm', 'keepalived']) {
      const r = xdplb(['import', c, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Example:\\n  .*xdplb import ${c} `));
      assert.match(r.stdout, /Exit codes: 0 success, 1 failure, 2 bad usage, 3 nothing attached, 4 invalid configuration\./);
    }
    assert.equal(xdplb(['import']).status, 2);
    assert.equal(xdplb(['import', 'keepalived']).status, 2, 'keepalived needs its file');
    assert.equal(xdplb(['import', 'ipvsadm', '--bogus']).status, 2);
  });

  test('ipvsadm -S -n output on stdin: the config on stdout, valid, the warnings on stderr with their lines (exit 0)', () => {
    const r = xdplb(['import', 'ipvsadm'], { input: readFileSync(join(FIXTURES, 'ipvsadm/dr.rules'), 'utf8') });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(join(FIXTURES, 'ipvsadm/dr.yaml'), 'utf8').replace('from rules (', 'from stdin ('));
    assert.match(r.stderr, /^xdplb: warning: line 8: Persistence granularity 255\.255\.255\.0: /m);
    assert.match(r.stderr, /^xdplb: warning: line 11: -o \(one-packet scheduling\)/m);
    const v = validate(r.stdout);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /valid \(7 services, 13 backends\)/);
  });

  test('ipvsadm rules xdplb cannot serve: exit 4, every line named, nothing on stdout', () => {
    const r = xdplb(['import', 'ipvsadm', join(FIXTURES, 'ipvsadm/tunnel.rules')]);
    assert.equal(r.status, 4);
    assert.equal(r.stdout, '');
    for (const line of [2, 4, 5, 6, 7]) assert.match(r.stderr, new RegExp(`^  line ${line}: tunnelled \\(-i\\): `, 'm'));
    const names = xdplb(['import', 'ipvsadm', '-'], { input: readFileSync(join(FIXTURES, 'ipvsadm/names.rules'), 'utf8') });
    assert.equal(names.status, 4);
    assert.match(names.stderr, /stdin is not ipvsadm -S -n output:\n {2}line 1: .*save the rules with numbers, `ipvsadm -S -n`/);
    const nat = xdplb(['import', 'ipvsadm', '--nat-as-dr'], { input: '-A -t 192.0.2.1:80 -s wrr\n-a -t 192.0.2.1:80 -r 192.0.2.2:80 -m -w 1\n' });
    assert.equal(nat.status, 0, nat.stderr);
    assert.match(nat.stderr, /NAT servers imported as Direct Routing backends/);
    assert.equal(xdplb(['import', 'ipvsadm', join(dir, 'missing.rules')]).status, 4);
    const json = xdplb(['import', 'ipvsadm', '--json', join(FIXTURES, 'ipvsadm/dr.rules')]);
    assert.equal(json.status, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { services: { name: string; backends: unknown[] }[] };
    assert.deepEqual(doc.services[0], { name: 'tcp-10.240.0.201-80', vip: '10.240.0.201', port: 80, protocol: 'tcp', scheduler: 'maglev', backends: [{ address: '10.240.0.101', weight: 3 }, { address: '10.240.0.102', weight: 1 }, { address: '10.240.0.103', weight: 0 }], healthCheck: { type: 'none' } });
  });

  test('keepalived.conf with includes on disk (relative to the including file, from any directory): exit 0, valid', () => {
    const etc = join(dir, 'etc', 'keepalived');
    mkdirSync(join(etc, 'conf.d'), { recursive: true });
    writeFileSync(join(etc, 'keepalived.conf'), 'global_defs {\n  router_id lb1\n}\ninclude conf.d/*.conf\n');
    writeFileSync(join(etc, 'conf.d', 'web.conf'), 'virtual_server 192.0.2.1 80 {\n  lb_algo wrr\n  lb_kind DR\n  real_server 192.0.2.2 80 {\n    weight 2\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n}\n');
    mkdirSync(join(etc, 'conf.d', 'not-a-file.conf'));
    const r = xdplb(['import', 'keepalived', join(etc, 'keepalived.conf')], { cwd: '/' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp(`# ${join(etc, 'conf.d', 'web.conf').replaceAll('.', '\\.')}:1: virtual_server 192\\.0\\.2\\.1 80\\n`));
    assert.match(r.stdout, /healthCheck: \{type: tcp, interval: 1m, timeout: 1s, rise: 1, fall: 2\}/);
    const v = validate(r.stdout);
    assert.equal(v.status, 0, v.stderr);
  });

  test("keepalived: a sample of Debian's package that runs VRRP only, or a file that is not there: exit 4, saying why", () => {
    const vrrp = xdplb(['import', 'keepalived', '/usr/share/doc/keepalived/samples/keepalived.conf.vrrp']);
    assert.equal(vrrp.status, 4, vrrp.stderr);
    assert.match(vrrp.stderr, /nothing to import:\n {2}.*no virtual_server block: nothing that IPVS balanced \(this configuration runs VRRP only/);
    const nat = xdplb(['import', 'keepalived', '/usr/share/doc/keepalived/samples/keepalived.conf.sample', '--nat-as-dr']);
    assert.equal(nat.status, 0, nat.stderr);
    assert.match(nat.stderr, /^xdplb: warning: .*keepalived\.conf\.sample:33: sorry_server 192\.168\.200\.200 1358: xdplb has no sorry server/m);
    const missing = xdplb(['import', 'keepalived', join(dir, 'none.conf')]);
    assert.equal(missing.status, 4);
    assert.match(missing.stderr, /cannot read .*none\.conf: ENOENT/);
    const broken = xdplb(['import', 'keepalived', '-'], { input: 'virtual_server 192.0.2.1 80 {\n' });
    assert.equal(broken.status, 4);
    assert.match(broken.stderr, /-:1: the block of "virtual_server 192\.0\.2\.1 80" is not closed/);
  });
});
