// deploy/routing/: the example configs for BIRD 2 and FRR parse with the
// daemons themselves (`bird -p`, FRR's `vtysh -C`, each a dry run that reads
// the whole file and stops at the first line it cannot take), and they match
// what the director publishes: protocol 251 (RTPROT_XDPLB), table 100.
// test/lab/bgp.test.ts runs them: BIRD on a router and on every director, FRR
// on a director.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RTPROT_XDPLB } from '../../src/net/routes.ts';

const ROUTING = fileURLToPath(new URL('../../deploy/routing/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'xdplb-routing-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function dryRun(cmd: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.error, undefined, `${cmd} must be installed (Debian packages bird2 and frr: scripts/bootstrap installs them)`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const bird = (file: string) => dryRun('bird', ['-p', '-c', file]);
const frr = (file: string) => dryRun('vtysh', ['-C', '-f', file]);

/** The shipped file with one line changed, in the scratch directory. */
function broken(name: string, from: string, to: string): string {
  const text = readFileSync(join(ROUTING, name), 'utf8');
  assert.ok(text.includes(from), `${name} has ${JSON.stringify(from)}`);
  const path = join(scratch, name);
  writeFileSync(path, text.replace(from, to));
  return path;
}

test('the BIRD 2 configs (director, router) parse with bird -p; a wrong line is refused, naming it', () => {
  for (const name of ['bird-director.conf', 'bird-router.conf']) {
    const r = bird(join(ROUTING, name));
    assert.equal(r.status, 0, `bird -p -c ${name}:\n${r.output}`);
  }
  const r = bird(broken('bird-director.conf', 'kernel table 100;', 'kernel tabel 100;'));
  assert.notEqual(r.status, 0, 'bird -p refuses a misspelt option');
  assert.match(r.output, /bird-director\.conf:\d+:\d+ syntax error/);
});

test('the FRR configs (director, router) parse with vtysh -C; a wrong line is refused, naming it', () => {
  for (const name of ['frr-director.conf', 'frr-router.conf']) {
    const r = frr(join(ROUTING, name));
    assert.equal(r.status, 0, `vtysh -C -f ${name}:\n${r.output}`);
  }
  // zebra imports kernel tables 1-252, IPv4 only (FRR 8.4): what frr-director.conf's comment says
  for (const [from, to] of [
    ['ip import-table 100', 'ip import-table 300'],
    ['ip import-table 100', 'ipv6 import-table 100'],
  ] as const) {
    const r = frr(broken('frr-director.conf', from, to));
    assert.notEqual(r.status, 0, `vtysh -C refuses ${to}`);
    assert.match(r.output, /line \d+: % Unknown command/);
  }
});

test("the director configs take exactly what xdplb publishes: its routes' protocol, from the routeTable of the examples", () => {
  const birdConf = readFileSync(join(ROUTING, 'bird-director.conf'), 'utf8');
  assert.equal(birdConf.match(new RegExp(`krt_source = ${RTPROT_XDPLB}\\b`, 'g'))?.length, 2, `both kernel protocols import protocol ${RTPROT_XDPLB} only`);
  assert.equal(birdConf.match(/kernel table 100;/g)?.length, 2, 'IPv4 and IPv6 from table 100');
  const frrConf = readFileSync(join(ROUTING, 'frr-director.conf'), 'utf8');
  assert.match(frrConf, /^ip import-table 100$/m);
  assert.match(frrConf, /^ {2}redistribute table 100 route-map xdplb-vips$/m);
  assert.match(frrConf, /^ set origin igp$/m, 'origin IGP, as BIRD announces: the router merges BIRD and FRR directors into one ECMP route');
});
