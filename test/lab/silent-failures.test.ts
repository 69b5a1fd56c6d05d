// Environments that fail silently, detected: native XDP on a veth whose peer
// has neither GRO nor an XDP program drops every XDP_TX frame while the
// program counts it sent. The driver counts the drops; the daemon reads them,
// says so with the fix (log, status, metric), and stops saying it once they
// stop.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.ts';
import { clientRequests, inNs, LAB, labDirector, labDown, labUp } from '../../src/lab/lab.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

before(async () => {
  await labUp({ backends: 1, mode: 'native' });
});
after(async () => {
  await labDown();
});

function status(): string {
  const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'status', '--pin-dir', LAB.pinDir]);
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } }).stdout;
}

function metric(name: string): string | undefined {
  const argv = inNs(LAB.directorNs, [process.execPath, '-e', "fetch('http://127.0.0.1:9842/metrics').then(async (r) => process.stdout.write(await r.text()))"]);
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).stdout.split('\n').find((l) => l.startsWith(`${name} `));
}

test("native XDP on a veth whose peer drops XDP_TX: the daemon reads the driver's counters and says so, with the fix", async () => {
  assert.ok(clientRequests(3).every((r) => r.ok), 'the lab works (its peer has an XDP program)');
  assert.doesNotMatch(status(), /NIC FAILS TO SEND/);
  // the peer loses its XDP program (and has no GRO): every XDP_TX frame is dropped there
  execFileSync('ip', ['-n', LAB.bridgeNs, 'link', 'set', 'dev', labDirector(1).port, 'xdp', 'off']);
  const failed = clientRequests(3, `http://${LAB.vip}/`);
  assert.ok(failed.every((r) => !r.ok), 'no request gets through');
  await eventually('the warning', () => readFileSync(`${LAB.runDir}/director.log`, 'utf8').includes('frames the program sends are not leaving'), { ms: 5000 });
  const log = readFileSync(`${LAB.runDir}/director.log`, 'utf8');
  assert.match(log, /"driver":"veth".*lab0 is a veth in native XDP mode, and its peer drops every XDP_TX frame unless it has an XDP program of its own \(a plain XDP_PASS\) or GRO/);
  assert.match(status(), /NIC FAILS TO SEND: \d+ XDP frames dropped by the veth driver since the daemon started; lab0 is a veth/);
  assert.ok(Number(metric('xdplb_nic_xdp_tx_errors')?.split(' ')[1]) > 0, 'counted in the metrics');
  // the fix: an XDP program on the peer again; frames leave
  execFileSync('ip', ['-n', LAB.bridgeNs, 'link', 'set', 'dev', labDirector(1).port, 'xdpdrv', 'obj', `${ROOT}out/bpf/baseline_pass.bpf.o`, 'sec', 'xdp']);
  await eventually('requests through again', () => clientRequests(3).every((r) => r.ok), { ms: 10_000 });
});
