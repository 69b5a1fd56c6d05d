// Director redundancy in static mode, in the lab, with real traffic: two
// directors on the segment with the same static service (identical tables),
// each with real keepalived (Debian's) in its namespace, run from the shipped
// deploy/keepalived/keepalived.conf (only the NIC, the names, the priority and
// the paths changed) and driving the role through the shipped notify script;
// both daemons run the shipped config's role and vipClaimLease. The client
// resolves the VIP by ARP, as a router would (an arping every 100 ms), and
// tcpdump on the bridge records every claim of the VIP (test/helpers/failover.ts).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.ts';
import { runFile } from '../../src/paths.ts';
import { LAB, labConfig, labDirector, labDown, labUp, startDirector, stopDirector, type DirectorId } from '../../src/lab/lab.ts';
import { eventually as waitFor } from '../helpers/eventually.ts';
import { assertKeptAndSilent, assertOneHandover, captureClaims, continuousLoad, heldConnections, longestGap, startProber, type ClaimCapture } from '../helpers/failover.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLE = `${ROOT}deploy/keepalived/keepalived.conf`;
const NOTIFY = `${ROOT}deploy/keepalived/xdplb-keepalived-notify`;
const DROP_IN = `${ROOT}deploy/keepalived/keepalived.service.d/xdplb.conf`;
const PRIORITY: Record<DirectorId, number> = { 1: 110, 2: 100 };

let capture: ClaimCapture | null = null;
let prober: ChildProcess | null = null;
/** The shipped xdplb config's claim lease (ms). */
let claimLease = 0;
const keepaliveds = new Map<DirectorId, ChildProcess>();
/**
 * The process group of every keepalived started, stopped or not: a keepalived stopped with SIGTERM leaves
 * its notify script behind (it ignores TERM, and retries a role for up to 10 s), which would otherwise
 * record "standby" in the run directory after labDown, for the next lab's director to start from.
 */
const groups: number[] = [];
/** Where the log of each director's running keepalived starts (its log file is appended to). */
const logStart = new Map<DirectorId, number>();

const other = (id: DirectorId): DirectorId => (id === 1 ? 2 : 1);
const configOf = (id: DirectorId) => join(LAB.runDir, `director${id}.yaml`);
const file = (name: string) => join(LAB.runDir, name);
const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
const daemonLog = (id: DirectorId) => read(file(`${labDirector(id).name}.log`));
const keepalivedLog = (id: DirectorId) => read(file(`keepalived${id}.log`));
/** The role a director's daemon starts in next (its record in its run directory), or '' without one. */
const recordedRole = (id: DirectorId) => read(join(labDirector(id).env.XDPLB_RUN_DIR, basename(runFile(labDirector(id).pinDir, 'role'))));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const tail = (id: DirectorId) => `director ${id}:\n${daemonLog(id).slice(-1500)}\nkeepalived ${id}:\n${keepalivedLog(id).slice(-1500)}`;
  return waitFor(what, fn, { ms, context: () => `${tail(1)}\n${tail(2)}` });
}

function holdsVip(id: DirectorId): boolean {
  return execFileSync('ip', ['-n', labDirector(id).ns, '-o', 'addr', 'show', 'dev', LAB.nic], { encoding: 'utf8' }).includes(`${LAB.vip}/32`);
}

/** The VRRP state of a director's keepalived (the last one started), from its log: MASTER, BACKUP, FAULT, or null before any. */
function vrrpState(id: DirectorId): string | null {
  const states = [...keepalivedLog(id).slice(logStart.get(id) ?? 0).matchAll(/\(xdplb\) [Ee]ntering (MASTER|BACKUP|FAULT) [Ss][Tt][Aa][Tt][Ee]/g)];
  return states.at(-1)?.[1] ?? null;
}

/** The shipped keepalived.conf with this director's NIC, name, priority and paths: each must be there, once. */
function keepalivedConf(id: DirectorId): string {
  let text = readFileSync(EXAMPLE, 'utf8');
  const swap = (from: string, to: string) => {
    assert.equal(text.split(from).length, 2, `${EXAMPLE} has ${JSON.stringify(from)} once`);
    text = text.replace(from, to);
  };
  swap('router_id xdplb-a', `router_id xdplb-${id}`);
  swap('interface eth1', `interface ${LAB.nic}`);
  swap('priority 110', `priority ${PRIORITY[id]}`);
  swap('/run/keepalived-xdplb.fifo', file(`keepalived${id}.fifo`));
  swap('"/usr/local/lib/xdplb/xdplb-keepalived-notify -i eth1"', `"${NOTIFY} --pin-dir ${labDirector(id).pinDir}"`);
  return text;
}

/** Starts keepalived (VRRP only, in the foreground) in a director's namespace, with pid files and a log of its own. */
function startKeepalived(id: DirectorId): void {
  const d = labDirector(id);
  writeFileSync(file(`keepalived${id}.conf`), keepalivedConf(id));
  const check = spawnSync('nsenter', [`--net=/var/run/netns/${d.ns}`, '--', 'keepalived', '--config-test', '--use-file', file(`keepalived${id}.conf`)], { encoding: 'utf8' });
  assert.equal(check.status, 0, `keepalived --config-test of the shipped config: ${check.stdout}${check.stderr}`);
  logStart.set(id, keepalivedLog(id).length);
  const logFd = openSync(file(`keepalived${id}.log`), 'a');
  const argv = ['nsenter', `--net=/var/run/netns/${d.ns}`, '--', 'keepalived', '--vrrp', '--dont-fork', '--log-console', '--log-detail', '--use-file', file(`keepalived${id}.conf`), '--pid', file(`keepalived${id}.pid`), '--vrrp_pid', file(`keepalived${id}-vrrp.pid`)];
  // the notify script finds this director's daemon as its CLI does: XDPLB_RUN_DIR, --pin-dir
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', logFd, logFd], detached: true, env: { ...process.env, ...d.env, XDPLB: `${ROOT}bin/xdplb` } });
  keepaliveds.set(id, child);
  groups.push(child.pid!);
}

const running = (id: DirectorId) => {
  const child = keepaliveds.get(id);
  return child !== undefined && child.exitCode === null && child.signalCode === null;
};

/**
 * SIGTERM: keepalived stops as systemd stops it with the shipped drop-in: its ExecStop (this director
 * standby), then SIGTERM (a priority-0 advert, STOP to the notify script). SIGKILL: all its processes die.
 */
async function stopKeepalived(id: DirectorId, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const child = keepaliveds.get(id);
  if (!child || !running(id)) return;
  const exited = new Promise((r) => child.once('exit', r));
  if (signal === 'SIGTERM') {
    const d = labDirector(id);
    const execStop = /^ExecStop=(.*)$/m.exec(readFileSync(DROP_IN, 'utf8'))?.[1] ?? '';
    assert.ok(execStop.startsWith('/usr/local/bin/xdplb ') && execStop.endsWith(' -i eth1'), `${DROP_IN}: ExecStop=/usr/local/bin/xdplb ... -i eth1`);
    const argv = [`${ROOT}bin/xdplb`, ...execStop.slice('/usr/local/bin/xdplb '.length, -' -i eth1'.length).split(' '), '--pin-dir', d.pinDir];
    execFileSync('nsenter', [`--net=/var/run/netns/${d.ns}`, '--', ...argv], { env: { ...process.env, ...d.env }, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  // SIGKILL to its process group: keepalived, its VRRP process and the notify script die at once (else
  // the VRRP process, told of its parent's death, would stop gracefully)
  if (signal === 'SIGKILL') process.kill(-child.pid!, 'SIGKILL');
  else child.kill(signal);
  await exited;
  keepaliveds.delete(id);
}

/** The master now, once exactly one director is keepalived's MASTER with the VIP on its NIC, and the other a BACKUP without it. */
function master(): Promise<DirectorId> {
  return eventually('one director MASTER with the VIP, the other BACKUP without it', () => {
    for (const id of [1, 2] as const) if (vrrpState(id) === 'MASTER' && holdsVip(id) && vrrpState(other(id)) === 'BACKUP' && !holdsVip(other(id))) return id;
    return undefined;
  });
}

/**
 * A director back after a failover: its daemon (which must come up standby and never claim the VIP),
 * then its keepalived (FAULT until the daemon is ready, then BACKUP: nopreempt).
 */
async function restore(id: DirectorId): Promise<void> {
  const since = Date.now();
  startDirector('native', [], id, configOf(id));
  if (!running(id)) startKeepalived(id);
  assert.equal(await master(), other(id), `director ${other(id)} stays the master`);
  assert.deepEqual(capture!.claims(since).filter(([, m]) => m === labDirector(id).mac), [], `director ${id}, restarted, never claimed the VIP`);
}

before(async () => {
  const version = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) throw new Error(`keepalived is not installed (scripts/bootstrap installs Debian's package): ${version.error?.message ?? version.stderr}`);
  const shipped = await loadConfig(`${ROOT}deploy/keepalived/xdplb.yaml`);
  assert.equal(shipped.role, 'standby', 'the shipped config starts standby');
  assert.ok(shipped.vipClaimLease !== undefined, 'the shipped config sets vipClaimLease');
  claimLease = shipped.vipClaimLease;
  await labUp({ backends: 2, mode: 'native', directors: 2 });
  await stopDirector(1); // the lab's static director: replaced by two that keepalived drives
  for (const id of [1, 2] as const) writeFileSync(configOf(id), labConfig([1, 2], `role: ${shipped.role}\nvipClaimLease: ${claimLease}ms\n`));
  capture = await captureClaims();
  prober = startProber();
  startDirector('native', [], 1, configOf(1));
  startDirector('native', [], 2, configOf(2));
  startKeepalived(1);
  await eventually('director 1 MASTER with the VIP', () => vrrpState(1) === 'MASTER' && holdsVip(1));
  startKeepalived(2);
  assert.equal(await master(), 1);
});

after(async () => {
  for (const id of [1, 2] as const) await stopKeepalived(id, 'SIGKILL').catch(() => {});
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL'); // what is left of each
    } catch {
      /* gone */
    }
  }
  // keepalived runs its notify script in a session of its own: it, and an `xdplb role` it runs, are found by
  // the pin directory on their command line (this lab's own)
  for (const id of [1, 2] as const) spawnSync('pkill', ['-KILL', '-f', `--pin-dir ${labDirector(id).pinDir}`]);
  await new Promise((r) => setTimeout(r, 200));
  if (prober?.pid) process.kill(-prober.pid, 'SIGKILL'); // the loop and its arpings
  capture?.stop();
  // XDPLB_TEST_LOGS=DIR keeps the daemons' and keepalived's logs, and what the bridge saw
  const keep = process.env.XDPLB_TEST_LOGS;
  if (keep && existsSync(LAB.runDir)) {
    mkdirSync(keep, { recursive: true });
    for (const f of readdirSync(LAB.runDir)) if (f.endsWith('.log')) copyFileSync(file(f), join(keep, f));
    writeFileSync(join(keep, 'bridge-arp.txt'), `${capture?.lines.join('\n') ?? ''}\n`);
  }
  await labDown();
});

describe('two directors, keepalived (VRRPv3) in static mode: failover with real traffic', () => {
  test('a graceful stop (keepalived, then the daemon, as systemd stops them) hands over: no request fails, never two owners on the wire', async (t) => {
    const from = await master();
    const load = continuousLoad(1000);
    await sleep(1000);
    const since = Date.now();
    await stopKeepalived(from, 'SIGTERM');
    await stopDirector(from);
    const stopped = Date.now();
    await eventually(`director ${other(from)} MASTER with the VIP`, () => vrrpState(other(from)) === 'MASTER' && holdsVip(other(from)), 10_000);
    await sleep(1500);
    const r = await load.stop();
    assert.deepEqual(r.failures, [], 'no request failed');
    assert.ok(r.ok > 20, `requests went through (${r.ok})`);
    const { lastOld, firstNew } = assertOneHandover(capture!, since, from, other(from));
    t.diagnostic(`keepalived SIGTERM → both stopped ${stopped - since} ms; director ${from}'s last claim ${lastOld === null ? 'none' : `${lastOld - since} ms`}, director ${other(from)}'s first ${firstNew - since} ms; ${r.ok} requests, none failed`);
    // the notify script carries out the STOP even after keepalived is gone: recorded for the next start, if the daemon stopped first
    await eventually(`director ${from}'s role recorded standby`, () => recordedRole(from) === 'standby', 10_000);
    await restore(from);
  });

  test("the master's daemon killed (SIGKILL), keepalived alive: no request fails, within the claim lease only the new master answers ARP, established connections survive", async (t) => {
    const from = await master();
    const held = heldConnections(8);
    const before = await held.probe();
    assert.ok(before.every((p) => p.ok), 'the held connections work');
    const load = continuousLoad(1000);
    await sleep(1000);
    const since = Date.now();
    await stopDirector(from, 'SIGKILL');
    await eventually(`director ${other(from)} MASTER with the VIP`, () => vrrpState(other(from)) === 'MASTER' && holdsVip(other(from)), 10_000);
    await sleep(2000);
    const r = await load.stop();
    assert.deepEqual(r.failures, [], "no request failed: the dead daemon's program forwards as the new master's does");
    assert.equal(vrrpState(from), 'FAULT', `director ${from}'s keepalived gave up MASTER (its check failed)`);
    assert.ok(holdsVip(from), 'the dead daemon left the VIP on its NIC (nobody removed it)');
    const { lastOld, firstNew } = assertOneHandover(capture!, since, from, other(from));
    assert.ok(lastOld === null || lastOld - since <= claimLease + 50, `director ${from}'s kernel answered for the VIP until ${lastOld! - since} ms after its daemon died: longer than the claim lease (${claimLease} ms)`);
    await assertKeptAndSilent(capture!, held, before, firstNew, from); // 2 s later, still only the new owner answers
    t.diagnostic(`SIGKILL → director ${from}'s last claim ${lastOld === null ? 'none' : `${lastOld - since} ms`} (claim lease ${claimLease} ms), keepalived FAULT and director ${other(from)}'s first claim ${firstNew - since} ms; ${r.ok} requests, none failed`);
    // keepalived's FAULT could not reach the dead daemon: the notify script recorded standby for its next start
    assert.equal(recordedRole(from), 'standby');
    await restore(from);
  });

  test("the master's link cut, its daemon and keepalived killed (the machine gone): the backup serves within 2 s", async (t) => {
    const from = await master();
    const load = continuousLoad(300);
    await sleep(1000);
    const since = Date.now();
    execFileSync('ip', ['-n', LAB.bridgeNs, 'link', 'set', labDirector(from).port, 'down']);
    await stopDirector(from, 'SIGKILL');
    await stopKeepalived(from, 'SIGKILL');
    await eventually(`director ${other(from)} MASTER with the VIP`, () => vrrpState(other(from)) === 'MASTER' && holdsVip(other(from)), 10_000);
    await sleep(1500);
    const r = await load.stop();
    const gap = longestGap(r.edges);
    const { firstNew } = assertOneHandover(capture!, since, from, other(from));
    t.diagnostic(`link cut → director ${other(from)}'s first claim ${firstNew - since} ms; requests failed for ${gap} ms (${r.failures.length} failed, ${r.ok} ok)`);
    assert.ok(firstNew - since <= 2000, `director ${other(from)} claimed the VIP ${firstNew - since} ms after the cut`);
    assert.ok(gap <= 2000, `service restored within 2 s (failed for ${gap} ms)`);
    // the machine comes back from a reboot: /run (a tmpfs) holds no role record, the config's standby holds
    rmSync(join(labDirector(from).env.XDPLB_RUN_DIR, basename(runFile(labDirector(from).pinDir, 'role'))), { force: true });
    execFileSync('ip', ['-n', LAB.bridgeNs, 'link', 'set', labDirector(from).port, 'up']);
    await restore(from);
  });
});
