// Several active directors behind a router's ECMP, announced over real BGP
// (SPEC §4 scale-out, issue 16): three directors, each running xdplb with
// `routeTable` and BIRD 2 from deploy/routing/bird-director.conf (in one test
// FRR from frr-director.conf), peer with a router that runs BIRD 2 from
// deploy/routing/bird-router.conf (ECMP over the directors, BFD 3 x 100 ms)
// and hashes the 5-tuple (test/helpers/bgp-lab.ts says why with policy 3).
// The client's traffic crosses the router; the backends answer it directly.
// The router's kernel tells which director each connection takes (`ip route
// get ... sport N`, its own ECMP hash), so the tests know which connections a
// change moves, and check them on the directors' own counters. The numbers
// each test measures are printed as diagnostics (README: Scale-out with ECMP
// and BGP).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inNs, LAB, labDirector, startBackendServer, stopBackendServer } from '../../src/lab/lab.ts';
import { eventually as waitFor } from '../helpers/eventually.ts';
import { continuousLoad, heldConnections } from '../helpers/failover.ts';
import {
  announcing,
  BGP,
  bgpLabDown,
  bgpLabUp,
  birdc,
  birdLog,
  daemonLog,
  directorOf,
  directorStatus,
  DIRECTORS,
  forwarded,
  killDirector,
  nextHops,
  pacedLoad,
  publishedRoutes,
  startDirectorWithBgp,
  startFrr,
  stopBird,
  vtysh,
  type Id,
} from '../helpers/bgp-lab.ts';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HELD = 60;
/** BFD's detection time in the shipped configs: 3 x 100 ms. */
const BFD_DETECT_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const tail = (id: Id) => `director ${id}:\n${daemonLog(id).slice(-1200)}\nBIRD ${id}:\n${birdLog(labDirector(id).name).slice(-800)}`;
  return waitFor(what, fn, { ms, context: () => `router: ${nextHops().join(', ') || 'no route'}\n${birdLog('router').slice(-1500)}\n${DIRECTORS.map(tail).join('\n')}` });
}

const allAnnounce = (ids: readonly Id[]) => eventually(`the router's ECMP route over directors ${ids.join(', ')}`, () => announcing().join() === ids.join());

type Probe = { ok: boolean; backend?: string; local?: number };
const shape = (p: Probe[]) => p.map((x) => [x.ok, x.backend, x.local]);

/** Probes held connections one round after another until stop(): how many rounds, the slowest (ms), the requests that failed. */
function keepProbing(held: ReturnType<typeof heldConnections>) {
  let running = true;
  const rounds: { ms: number; failed: number }[] = [];
  const done = (async () => {
    while (running) {
      const t = Date.now();
      const r = await held.probe();
      rounds.push({ ms: Date.now() - t, failed: r.filter((p) => !p.ok).length });
      await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return { rounds: rounds.length, slowestMs: Math.max(...rounds.map((r) => r.ms)), failed: rounds.reduce((n, r) => n + r.failed, 0) };
    },
  };
}

/** What a test left running when it failed (client processes): stopped after the tests, else the file never ends. */
const leftovers = new Set<() => unknown>();

function track<T extends object>(thing: T, stop: (t: T) => unknown): T {
  leftovers.add(() => stop(thing));
  return thing;
}

/** A load whose stop() may be called again (after the tests), answering the first call's result. */
function trackLoad<R>(load: { stop(): Promise<R> }): { stop(): Promise<R> } {
  let stopped: Promise<R> | null = null;
  const stop = () => (stopped ??= load.stop());
  leftovers.add(stop);
  return { stop };
}

/** Opens HELD keep-alive connections: their first answers, and the director the router sends each to. */
async function hold(): Promise<{ held: ReturnType<typeof heldConnections>; before: Probe[]; via: (Id | null)[] }> {
  const held = track(heldConnections(HELD), (h) => h.close());
  const before = (await held.probe()) as Probe[];
  assert.ok(before.every((p) => p.ok), `all ${HELD} held connections answer: ${JSON.stringify(before.filter((p) => !p.ok))}`);
  return { held, before, via: before.map((p) => directorOf(p.local!)) };
}

/** The router's BFD session with a director is up, at 100 ms (detection 300 ms), as the shipped configs set. */
function bfdUp(id: Id): boolean {
  const address = labDirector(id).address.replaceAll('.', '\\.');
  return new RegExp(`^${address}\\s+${LAB.nic}\\s+Up\\s+\\S+\\s+0\\.100\\s+0\\.300$`, 'm').test(birdc('router', 'show', 'bfd', 'sessions'));
}

const count = (via: (Id | null)[], id: Id) => via.filter((v) => v === id).length;

/** Runs `xdplb drain-director` (or --undo) in a director's namespace. */
async function drainDirector(id: Id, ...args: string[]): Promise<string> {
  const d = labDirector(id);
  const argv = inNs(d.ns, [`${ROOT}bin/xdplb`, 'drain-director', '--pin-dir', d.pinDir, ...args]);
  const { stdout } = await execFileAsync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...d.env } });
  return stdout;
}

/**
 * Kills a director (its link, its routing daemon, its xdplb) under load: HELD held connections probed round after
 * round, and new connections. Checks that the router drops it within 1 s and that every connection survives.
 */
async function dieUnderLoad(victim: Id, speaker: string, diagnostic: (text: string) => void): Promise<void> {
  const { held, before, via } = await hold();
  const onVictim = count(via, victim);
  assert.ok(onVictim > 0, `some held connections go through director ${victim} (${onVictim})`);
  const load = trackLoad(pacedLoad(10, 900));
  const probing = keepProbing(held);
  await sleep(1000);
  const survivors = DIRECTORS.filter((id) => id !== victim);
  const survivorsBefore = survivors.map((id) => forwarded(id));
  const t0 = Date.now();
  await killDirector(victim);
  const killMs = Date.now() - t0;
  let routeMs = -1;
  while (Date.now() - t0 < 5000) {
    if (!nextHops().includes(labDirector(victim).address)) {
      routeMs = Date.now() - t0;
      break;
    }
    await sleep(10);
  }
  await sleep(2000);
  const probed = await probing.stop();
  const { attempts } = await load.stop();
  const afterKill = (await held.probe()) as Probe[];
  held.close();
  // Linux's ECMP (hash-threshold) also moves flows between the survivors when a next hop leaves
  const reshuffled = via.filter((v, i) => v !== victim && afterKill[i]!.local !== undefined && directorOf(afterKill[i]!.local!) !== v).length;
  assert.ok(routeMs >= 0 && routeMs <= 1000, `the dead director's next hop left the router's route within 1 s (${routeMs} ms; BFD detects in ${BFD_DETECT_MS} ms)`);
  assert.deepEqual(announcing(), survivors, 'the router sends to the survivors only');
  const broken = before.map((p, i) => i).filter((i) => afterKill[i]!.local !== before[i]!.local || afterKill[i]!.backend !== before[i]!.backend);
  assert.deepEqual(
    broken.map((i) => `${before[i]!.local} (${before[i]!.backend}, via ${via[i]})`),
    [],
    `all ${HELD} held connections survive, each on its backend: ${broken.length} broke, ${broken.filter((i) => via[i] === victim).length} of the ${onVictim} through the dead director`,
  );
  assert.deepEqual(shape(afterKill), shape(before));
  assert.equal(probed.failed, 0, 'no request on a held connection failed while it moved');
  // new connections, one every 10 ms: those sent while the router still chose the dead director fail (900 ms
  // timeout, before the SYN's retransmission) or are slow (a retransmitted segment); each one's start, from the kill
  const failedAt = attempts.filter(([, ok]) => !ok).map(([at]) => at - t0);
  const slowAt = attempts.filter(([, ok, ms]) => ok && ms > 150).map(([at]) => at - t0);
  const ok = attempts.filter(([, good]) => good).length;
  assert.ok(failedAt.every((ms) => ms >= -50), `no new connection failed before the kill: ${failedAt}`);
  const lastFailed = failedAt.length ? Math.max(...failedAt) : 0;
  assert.ok(lastFailed <= 1000, `new connections failed only within 1 s of the kill (the last one sent ${lastFailed} ms after)`);
  assert.ok(survivors.every((id, k) => forwarded(id) > survivorsBefore[k]!), 'the survivors forward the traffic');
  diagnostic(
    `kill (link down, SIGKILL of ${speaker} and xdplb: ${killMs} ms) → next hop out of the router's route after ${routeMs} ms; ` +
      `new connections every 10 ms: ${failedAt.length} of ${attempts.length} failed, sent ${failedAt.length ? `${Math.min(...failedAt)}-${lastFailed}` : '-'} ms after the kill, ` +
      `${slowAt.length} slow (> 150 ms, sent ${slowAt.length ? `${Math.min(...slowAt)}-${Math.max(...slowAt)}` : '-'} ms after), ${ok} ok; ` +
      `held: ${HELD}/${HELD} survived (${onVictim} via the dead director, ${reshuffled} moved between the survivors), slowest probe round ${probed.slowestMs} ms over ${probed.rounds} rounds`,
  );
}

before(async () => {
  await bgpLabUp();
  for (const id of [1, 2] as const) startDirectorWithBgp(id);
  await allAnnounce([1, 2]);
});

after(async () => {
  await Promise.allSettled([...leftovers].map(async (stop) => stop()));
  await bgpLabDown();
});

describe('several active directors behind ECMP, announced by BIRD 2 over BGP with BFD', () => {
  test('each director announces the VIP it can serve; the router installs one ECMP route, hashed on the 5-tuple, and sends each connection where its kernel says', async (t) => {
    for (const id of [1, 2] as const) assert.deepEqual(publishedRoutes(id), [LAB.vip, LAB.vip6], `director ${id} keeps the VIPs' routes in table ${BGP.table}`);
    // BFD at the shipped timings, on every session
    for (const id of [1, 2] as const) await eventually(`the router's BFD session with director ${id} up, 100 ms x 3`, () => bfdUp(id), 5000);
    // the L4 hash: connections from one client to one VIP take different directors by source port
    const ports = Array.from({ length: 32 }, (_, k) => 40_000 + k);
    const choice = new Map(ports.map((p) => [p, directorOf(p)]));
    for (const id of [1, 2] as const) assert.ok([...choice.values()].includes(id), `some source ports go to director ${id}: ${JSON.stringify([...choice])}`);
    // and the router's kernel forwards as it says: a request from a port reaches only that port's director
    for (const id of [1, 2] as const) {
      const port = ports.find((p) => choice.get(p) === id)!;
      const before = [forwarded(1), forwarded(2)];
      const curl = inNs(LAB.clientNs, ['curl', '-s', '-m', '3', '--local-port', String(port), `http://${LAB.vip}/`]);
      const reply = execFileSync(curl[0]!, curl.slice(1), { encoding: 'utf8' });
      assert.match(reply, /^Hostname: backend-\d/m, 'answered by a backend');
      const delta = [forwarded(1) - before[0]!, forwarded(2) - before[1]!];
      assert.ok(delta[id - 1]! > 0 && delta[2 - id]! === 0, `port ${port}: only director ${id} forwarded it (forwarded: ${delta.join(', ')})`);
    }
    // the IPv6 VIP the same way (BIRD's IPv6 kernel protocol and session)
    await eventually(`the router's ECMP route for ${LAB.vip6} over both directors`, () => nextHops(LAB.vip6).length === 2);
    const curl6 = inNs(LAB.clientNs, ['curl', '-s', '-m', '3', `http://[${LAB.vip6}]/`]);
    assert.match(execFileSync(curl6[0]!, curl6.slice(1), { encoding: 'utf8' }), /^Hostname: backend-\d/m, 'the IPv6 VIP answers through the router');
    t.diagnostic(`router: ${LAB.vip} via ${nextHops().join(', ')}, ${LAB.vip6} via ${nextHops(LAB.vip6).join(', ')}; ports 40000-40031 → directors ${ports.map((p) => choice.get(p)).join('')}`);
  });

  test('a director joins: new flows spread over it, the connections the router moves to it keep their backend, none breaks', async (t) => {
    const { held, before, via } = await hold();
    const load = trackLoad(continuousLoad(1000));
    await sleep(500);
    startDirectorWithBgp(3);
    const t0 = Date.now();
    await allAnnounce([1, 2, 3]);
    const joinMs = Date.now() - t0;
    await sleep(1000);
    const afterJoin = (await held.probe()) as Probe[];
    const viaNow = afterJoin.map((p) => (p.local ? directorOf(p.local) : null));
    const r = await load.stop();
    held.close();
    assert.deepEqual(shape(afterJoin), shape(before), 'every held connection answers, from the same backend, on the same connection');
    const moved = viaNow.filter((v, i) => v === 3 && via[i] !== 3).length;
    assert.ok(moved > 0, `the router moved some held connections to director 3 (${moved} of ${HELD})`);
    assert.deepEqual(r.failures, [], 'no request failed');
    const s3 = directorStatus(3).services[0]!;
    assert.ok(s3.newFlows > 0 && forwarded(3) > 0, `director 3 forwards new flows (${s3.newFlows} new flows, ${forwarded(3)} packets)`);
    t.diagnostic(`director 3 started → in the router's ECMP route after ${joinMs} ms (its daemon's start and BGP); ${moved} of ${HELD} held connections moved to it and kept their backends; ${r.ok} new connections, none failed; director 3: ${s3.newFlows} new flows`);
  });

  test('a director dies (link cut, BIRD and xdplb killed) under load: BFD moves its traffic to the others at once, and every connection survives', async (t) => {
    await dieUnderLoad(2, 'BIRD', (text) => t.diagnostic(text));
    startDirectorWithBgp(2); // back: adopts its pins, announces again
    await allAnnounce([1, 2, 3]);
  });

  test('a director drained (xdplb drain-director): its route withdrawn, its traffic moves away, no connection reset, and it reports when its traffic stopped', async (t) => {
    const drained: Id = 1;
    const { held, before, via } = await hold();
    const onDrained = count(via, drained);
    assert.ok(onDrained > 0, `some held connections go through director ${drained} (${onDrained})`);
    const load = trackLoad(continuousLoad(1000));
    const probing = keepProbing(held);
    await sleep(500);
    const t0 = Date.now();
    const drain = drainDirector(drained, '--json', '--timeout', '60');
    await eventually('the drained director withdrew its route', () => publishedRoutes(drained).length === 0, 5000);
    const t1 = Date.now();
    while (announcing().includes(drained) && Date.now() - t1 < 5000) await sleep(10);
    const [cliMs, bgpMs] = [t1 - t0, Date.now() - t1];
    assert.deepEqual(announcing(), [2, 3], 'the router sends to the others only');
    const report = JSON.parse(await drain) as { drained: boolean; trafficStoppedAfterSeconds: number };
    const quiet = forwarded(drained);
    const probed = await probing.stop();
    const r = await load.stop();
    const afterDrain = (await held.probe()) as Probe[];
    assert.equal(forwarded(drained), quiet, 'the drained director forwards nothing more');
    assert.deepEqual(shape(afterDrain), shape(before), `every held connection answers, on its backend (${onDrained} moved off director ${drained})`);
    assert.equal(probed.failed, 0, 'no request on a held connection failed');
    assert.deepEqual(r.failures, [], 'no new connection failed');
    assert.equal(report.drained, true);
    assert.ok(report.trafficStoppedAfterSeconds >= 3 && report.trafficStoppedAfterSeconds <= 10, `drain-director reported the traffic stopped after ${report.trafficStoppedAfterSeconds} s`);
    // back into service
    assert.match(await drainDirector(drained, '--undo'), /undrained/);
    await allAnnounce([1, 2, 3]);
    const afterUndo = (await held.probe()) as Probe[];
    held.close();
    assert.deepEqual(shape(afterUndo), shape(before), 'undrained: the connections the router moves back keep working');
    t.diagnostic(`drain-director → its route out of table ${BGP.table} after ${cliMs} ms (the command's start), out of the router's ${bgpMs} ms later (BIRD, BGP); it reported the traffic stopped after ${report.trafficStoppedAfterSeconds} s; ${onDrained} held connections moved off it, ${r.ok} new connections, none failed; --undo: announced again`);
  });

  test("FRR speaks for a director as BIRD does (the shipped frr-director.conf): one ECMP route with the BIRD directors, BFD at 3 x 100 ms, and its death costs no connection", async (t) => {
    const id: Id = 3;
    stopBird(labDirector(id).name); // SIGTERM: BIRD closes its session, the router withdraws at once
    await allAnnounce([1, 2]);
    await startFrr(id);
    const t0 = Date.now();
    await allAnnounce([1, 2, 3]);
    const upMs = Date.now() - t0;
    await eventually('the router has a BFD session with FRR, 100 ms x 3', () => bfdUp(id));
    const bfdMs = Date.now() - t0;
    assert.match(vtysh(id, 'show bfd peers brief'), /10\.240\.0\.1\s+up/, "FRR's bfdd has its session up");
    t.diagnostic(`FRR on director ${id}: in the router's ECMP route ${upMs} ms after its configuration was applied, BFD up after ${bfdMs} ms`);
    await dieUnderLoad(id, 'FRR (zebra, bgpd, bfdd)', (text) => t.diagnostic(text));
    startDirectorWithBgp(id); // back with BIRD
    await allAnnounce([1, 2, 3]);
  });

  test('a backend dies: every director takes it out and the VIP stays announced; with no healthy backend left, every director withdraws it', async (t) => {
    const load = trackLoad(continuousLoad(1000));
    await sleep(300);
    const t0 = Date.now();
    await stopBackendServer(1);
    const routes: string[][] = [];
    const state = (id: Id) => directorStatus(id).services[0]!.backends.find((b) => b.address === LAB.backend(1))!;
    await eventually('every director took backend 1 out', () => {
      routes.push(nextHops());
      return DIRECTORS.every((id) => state(id).state === 'down' && state(id).health === 'down');
    }, 10_000);
    const outMs = Date.now() - t0;
    await sleep(1000);
    const r = await load.stop();
    assert.ok(routes.every((hops) => hops.length === 3), `the VIP stayed announced by all three directors: ${JSON.stringify(routes)}`);
    for (const id of DIRECTORS) assert.deepEqual(publishedRoutes(id), [LAB.vip, LAB.vip6], `director ${id} still offers the VIPs`);
    const failedAt = r.edges.filter(([, ok]) => !ok).map(([at]) => at - t0);
    assert.ok(failedAt.every((ms) => ms >= 0 && ms <= outMs), `requests failed only until the directors took the backend out (${outMs} ms): ${failedAt}`);
    // the last backend dies: nothing to serve, nothing announced
    await stopBackendServer(2);
    await eventually('every director withdrew the VIP', () => DIRECTORS.every((id) => publishedRoutes(id).length === 0), 10_000);
    await eventually("the VIP left the router's table", () => nextHops().length === 0, 5000);
    startBackendServer(1);
    startBackendServer(2);
    await allAnnounce([1, 2, 3]);
    t.diagnostic(`backend 1 stopped → out of every director's table after ${outMs} ms (health check 300 ms x fall 2), the VIP announced throughout; ${failedAt.length} new connections failed meanwhile (those sent to backend 1), ${r.ok} ok; both backends down: withdrawn by all, back when they are`);
  });

  // After a change a slot remembers its previous owner, and a director sends a mid-stream packet of a flow it
  // never saw start to that owner (a flow from before the change). Behind ECMP a connection that began on another
  // director after the change, and moves here, needs the slot's owner instead: the previous owners lapse
  // flowIdleTimeout after the change, where no live flow needs them (src/director/previous-owners.ts). Before they
  // did, 10-20 of the 60 held connections broke here.
  test('a director dies after a backend left and came back: every connection still survives (every director sends a moved flow to the backend its SYN went to)', async (t) => {
    // the backend test before this one took backend 1 out and put it back on every director; its previous owners
    // lapse flowIdleTimeout later (checked every second)
    await sleep(BGP.flowIdleTimeoutMs + 1500);
    await dieUnderLoad(2, 'BIRD', (text) => t.diagnostic(text));
    startDirectorWithBgp(2);
    await allAnnounce([1, 2, 3]);
  });
});
