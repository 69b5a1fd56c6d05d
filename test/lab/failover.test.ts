// Director redundancy with kubernetes.leaderElection, in the lab, with real
// traffic: two directors on the segment, each with the same static service
// (identical tables), elected by a Lease on the real API server (a relay into
// each director's namespace, that can cut it off). The client resolves the
// VIP by ARP, as a router would; `arping` asks for it every 100 ms, and
// tcpdump on the bridge records every claim on the wire (an ARP reply for
// the VIP, or a gratuitous ARP), so "never two owners" is checked on what the
// segment saw: once the new owner claims the VIP, the old one never does
// again, and the old one's last claim comes before it.
import assert from 'node:assert/strict';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { assertKeptAndSilent, assertOneHandover, captureClaims, continuousLoad, heldConnections, longestGap, startProber, type ClaimCapture } from '../helpers/failover.ts';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { relayIntoNetns, type Relay } from '../helpers/relay.ts';
import { eventually as waitFor } from '../helpers/eventually.ts';
import { inNs, LAB, labConfig, labDirector, labDown, labUp, startDirector, stopDirector, type DirectorId } from '../../src/lab/lab.ts';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LEASE = 'xdplb-director';
const TIMINGS = { leaseDuration: 1000, renewDeadline: 700, retryPeriod: 200 };

let kube: KubeCluster;
const relays = new Map<DirectorId, Relay>();
let capture: ClaimCapture | null = null;
let prober: ChildProcess | null = null;

const configOf = (id: DirectorId) => join(LAB.runDir, `director${id}.yaml`);
const logOf = (id: DirectorId) => join(LAB.runDir, `${labDirector(id).name}.log`);
const log = (id: DirectorId) => (existsSync(logOf(id)) ? readFileSync(logOf(id), 'utf8') : '');
const other = (id: DirectorId): DirectorId => (id === 1 ? 2 : 1);

function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  return waitFor(what, fn, { ms, context: () => `director 1:\n${log(1).slice(-2000)}\ndirector 2:\n${log(2).slice(-2000)}` });
}

function holdsVip(id: DirectorId): boolean {
  return execFileSync('ip', ['-n', labDirector(id).ns, '-o', 'addr', 'show', 'dev', LAB.nic], { encoding: 'utf8' }).includes(`${LAB.vip}/32`);
}

async function holder(): Promise<string | undefined> {
  return (await kube.admin.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ namespace: 'default', name: LEASE }).catch(() => null))?.spec?.holderIdentity;
}

function start(id: DirectorId): void {
  startDirector('native', [], id, configOf(id));
}

/** What a director's daemon says of the Lease (`xdplb status --json`, over its API), or null if it does not answer. */
async function election(id: DirectorId): Promise<{ holder: string | null; leading: boolean } | null> {
  const d = labDirector(id);
  const argv = inNs(d.ns, [`${ROOT}bin/xdplb`, 'status', '--pin-dir', d.pinDir, '--json']);
  try {
    // not execFileSync: this process relays the directors' API server connections, which must not stall
    const { stdout } = await execFileAsync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...d.env } });
    return (JSON.parse(stdout) as { leaderElection?: { holder: string | null; leading: boolean } }).leaderElection ?? null;
  } catch {
    return null;
  }
}

/**
 * The director that leads now, once exactly one holds the Lease and the VIP,
 * and the other holds neither and is a candidate that has read the Lease.
 */
async function leader(): Promise<DirectorId> {
  return eventually('exactly one director leading, with the VIP on its NIC, the other a candidate', async () => {
    const h = await holder();
    const id = h === 'director-1' ? 1 : h === 'director-2' ? 2 : null;
    return id !== null && holdsVip(id) && !holdsVip(other(id)) && (await election(id))?.leading === true && (await election(other(id)))?.holder === h && id;
  });
}

before(async () => {
  await labUp({ backends: 2, mode: 'native', directors: 2 });
  await stopDirector(1); // the lab's static director: replaced by two elected ones
  kube = await startKube();
  const kubeconfig = join(LAB.runDir, 'kubeconfig');
  writeFileSync(kubeconfig, kube.admin.exportConfig());
  for (const id of [1, 2] as const) {
    relays.set(id, await relayIntoNetns(labDirector(id).ns, Number(new URL(kube.server).port)));
    const election = `{ namespace: default, name: ${LEASE}, identity: director-${id}, leaseDuration: ${TIMINGS.leaseDuration}ms, renewDeadline: ${TIMINGS.renewDeadline}ms, retryPeriod: ${TIMINGS.retryPeriod}ms }`;
    writeFileSync(configOf(id), labConfig([1, 2], `kubernetes:\n  kubeconfig: ${kubeconfig}\n  leaderElection: ${election}\n`));
  }
  // every claim of the VIP on the segment, with its time and MAC
  capture = await captureClaims();
  // a router's questions: who has the VIP, every 100 ms
  prober = startProber();
  start(1);
  await eventually('director 1 leads', async () => (await holder()) === 'director-1' && holdsVip(1));
  start(2);
  assert.equal(await leader(), 1);
});

after(async () => {
  if (prober?.pid) process.kill(-prober.pid, 'SIGKILL'); // the loop and its arpings
  capture?.stop();
  for (const r of relays.values()) await r.stop();
  await labDown();
  await kube?.stop();
});

describe('two directors, one Lease: failover with real traffic', () => {
  test('`xdplb role` is refused under leader election, naming the Lease; nothing changes', async () => {
    const id = await leader();
    const d = labDirector(id);
    const argv = inNs(d.ns, [`${ROOT}bin/xdplb`, 'role', 'standby', '--pin-dir', d.pinDir]);
    const r = await execFileAsync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...d.env } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`role standby refused: the role follows the Lease default/${LEASE} \\(kubernetes.leaderElection; held by director-${id}\\)`));
    assert.equal(await leader(), id, 'still the leader, with the VIP');
  });


  test('a graceful stop (SIGTERM) hands over at once: no request fails, never two owners on the wire', async (t) => {
    const from = await leader();
    const load = continuousLoad(1000);
    await new Promise((r) => setTimeout(r, 1000));
    const since = Date.now();
    await stopDirector(from);
    await eventually(`director ${other(from)} leads`, async () => (await holder()) === `director-${other(from)}` && holdsVip(other(from)));
    await new Promise((r) => setTimeout(r, 1000));
    const r = await load.stop();
    assert.deepEqual(r.failures, [], 'no request failed');
    assert.ok(r.ok > 20, `requests went through (${r.ok})`);
    assert.equal(holdsVip(from), false, 'the stopped director let go of the VIP');
    const { firstNew } = assertOneHandover(capture!, since, from, other(from));
    t.diagnostic(`SIGTERM → director ${other(from)}'s first claim on the wire: ${firstNew - since} ms; ${r.ok} requests, none failed`);
    start(from); // back, as the standby
    assert.equal(await leader(), other(from));
  });

  test("the leader's daemon killed (SIGKILL), its machine alive: no request fails, its data plane stops claiming the VIP by itself, and established connections survive", async (t) => {
    const from = await leader();
    const held = heldConnections(8);
    const before = await held.probe();
    assert.ok(before.every((p) => p.ok), 'the held connections work');
    const load = continuousLoad(1000);
    await new Promise((r) => setTimeout(r, 1000));
    const since = Date.now();
    await stopDirector(from, 'SIGKILL');
    await eventually(`director ${other(from)} leads`, async () => (await holder()) === `director-${other(from)}` && holdsVip(other(from)), 10_000);
    await new Promise((r) => setTimeout(r, 2000));
    const r = await load.stop();
    assert.deepEqual(r.failures, [], 'no request failed: the dead daemon\'s program forwards as the new leader\'s does');
    assert.ok(holdsVip(from), 'the dead daemon left the VIP on its NIC (nobody removed it)');
    const { lastOld, firstNew } = assertOneHandover(capture!, since, from, other(from));
    await assertKeptAndSilent(capture!, held, before, firstNew, from); // 2 s later, still only the new owner answers
    t.diagnostic(`SIGKILL → director ${from}'s last claim ${lastOld === null ? 'none' : `${lastOld - since} ms`}, director ${other(from)}'s first ${firstNew - since} ms`);
    start(from); // a restarted daemon comes back as the standby, and takes the VIP off its NIC
    assert.equal(await leader(), other(from));
  });

  test('a leader cut off from the API server (its data path up) lets go before the standby takes over', async (t) => {
    const from = await leader();
    const load = continuousLoad(300);
    await new Promise((r) => setTimeout(r, 1000));
    const since = Date.now();
    await relays.get(from)!.pause();
    await eventually(`director ${other(from)} leads`, async () => (await holder()) === `director-${other(from)}` && holdsVip(other(from)), 10_000);
    await eventually(`director ${from} lets go of the VIP`, () => !holdsVip(from), 5000);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await load.stop();
    const { lastOld, firstNew } = assertOneHandover(capture!, since, from, other(from));
    const gap = longestGap(r.edges);
    t.diagnostic(`cut → director ${from}'s last claim ${lastOld === null ? 'none' : `${lastOld - since} ms`}, director ${other(from)}'s first ${firstNew - since} ms; requests failed for ${gap} ms at most (${r.failures.length} failed, ${r.ok} ok)`);
    assert.ok(gap < 2000, `requests failed for ${gap} ms: only inside the failover window`);
    await relays.get(from)!.resume();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await leader(), other(from), 'back in reach, it stays the standby');
  });

  test("the leader's link cut and its daemon killed (the machine gone): the standby serves within 2 s", async (t) => {
    const from = await leader();
    const load = continuousLoad(300);
    await new Promise((r) => setTimeout(r, 1000));
    const since = Date.now();
    execFileSync('ip', ['-n', LAB.bridgeNs, 'link', 'set', labDirector(from).port, 'down']);
    await stopDirector(from, 'SIGKILL');
    await eventually(`director ${other(from)} leads`, async () => (await holder()) === `director-${other(from)}` && holdsVip(other(from)), 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await load.stop();
    const gap = longestGap(r.edges);
    const { firstNew } = assertOneHandover(capture!, since, from, other(from));
    t.diagnostic(`link cut → director ${other(from)}'s first claim ${firstNew - since} ms; requests failed for ${gap} ms (${r.failures.length} failed, ${r.ok} ok)`);
    assert.ok(gap <= 2000, `service restored within 2 s (failed for ${gap} ms)`);
    execFileSync('ip', ['-n', LAB.bridgeNs, 'link', 'set', labDirector(from).port, 'up']);
    start(from);
    assert.equal(await leader(), other(from));
  });
});
