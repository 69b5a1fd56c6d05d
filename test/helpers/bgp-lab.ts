// The ECMP lab: several active directors behind a router, announced over real
// BGP (SPEC §4, scale-out). It is the lab of src/lab/lab.ts (one bridge for
// the segment, SPEC §8's addresses) with three directors and two changes:
//
//   client 10.240.0.10/32 ── router ── segment (bridge) ── directors 10.240.0.2, .3, .4 (xdplb + BIRD 2)
//          (lab0)    (client0) 10.240.0.1 (lab0)        └── backends 10.240.0.101, .102 (VIP on lo)
//
// The client leaves the bridge for a link of its own to the router, and the
// backends reach it through the router (a /32 route; their replies still go
// straight back, never through a director). The router runs BIRD 2 from
// deploy/routing/bird-router.conf (ECMP over the directors' next hops, BFD),
// with an L4 hash; each director runs xdplb with `routeTable` and
// BIRD 2 from deploy/routing/bird-director.conf. Only the NIC's name changes
// in the shipped files. A frame the bridge floods for a director that left
// reaches the others, whose programs pass it (not addressed to their NIC:
// pass_not_our_mac) to a kernel that drops it: it cannot hide the failover.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { inNs, LAB, labConfig, labDirector, labDown, labUp, startDirector, stopDirector, type AnyDirectorId } from '../../src/lab/lab.ts';
import { readStatus, type Status } from '../../src/status/status.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ROUTING = `${ROOT}deploy/routing`;
const CLIENT = `${ROOT}src/lab/client.ts`;

export const BGP = {
  routerNs: `${LAB.prefix}-router`,
  /** The router's address on the segment: the directors' BGP and BFD peer, the backends' way back to the client. */
  router: '10.240.0.1',
  router6: '2001:db8::1',
  /** The router's address on the client's link (the client's default route). */
  routerClientSide: '10.240.255.1',
  /** xdplb's routeTable in the lab (the shipped BIRD config's `kernel table`). */
  table: 100,
  /** flowIdleTimeout of every director: short, as behind ECMP (README), so that previous slot owners lapse within a test. */
  flowIdleTimeoutMs: 2000,
  /** The health check every director runs (a dead backend leaves within ~1 s). */
  healthCheck: '    healthCheck: { type: http, path: /, interval: 300ms, timeout: 200ms, rise: 2, fall: 2 }\n',
} as const;

export const DIRECTORS = [1, 2, 3] as const;
export type Id = AnyDirectorId;

const file = (name: string) => join(LAB.runDir, name);
const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
const sh = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ip = (ns: string, ...args: string[]) => sh(['ip', '-n', ns, ...args]);
const ethtoolOff = (ns: string, nic: string) => sh(inNs(ns, ['ethtool', '-K', nic, 'tx', 'off', 'tso', 'off']));

export const configOf = (id: Id) => file(`director${id}.yaml`);
export const daemonLog = (id: Id) => read(file(`${labDirector(id).name}.log`));
export const birdLog = (name: string) => read(file(`bird-${name}.log`));

/** The shipped BIRD config with the lab's NIC for eth1 (each occurrence) and a log file of its own. */
function birdConf(shipped: string, name: string): string {
  const text = readFileSync(`${ROUTING}/${shipped}`, 'utf8');
  assert.ok(text.includes('interface "eth1"'), `${shipped} names the NIC eth1`);
  return `log "${file(`bird-${name}.log`)}" all;\n${text.replaceAll('interface "eth1"', `interface "${LAB.nic}"`)}`;
}

/** Starts BIRD 2 (foreground, its own control socket) in a namespace; `name`: router or director{id}. */
function startBird(ns: string, name: string, shipped: string): void {
  const conf = file(`bird-${name}.conf`);
  writeFileSync(conf, birdConf(shipped, name));
  sh(['bird', '-p', '-c', conf]);
  const logFd = openSync(file(`bird-${name}.stderr`), 'a');
  const child = spawn('nsenter', [`--net=/var/run/netns/${ns}`, '--', 'bird', '-f', '-c', conf, '-s', file(`bird-${name}.ctl`), '-P', file(`bird-${name}.pid`)], { stdio: ['ignore', logFd, logFd], detached: true });
  child.unref();
  writeFileSync(file(`bird-${name}.spawned`), String(child.pid));
}

/** Stops a BIRD this lab started (its pid, from nsenter, which execs bird): SIGTERM, or SIGKILL for a crash. */
export function stopBird(name: string, signal: NodeJS.Signals = 'SIGTERM'): void {
  const f = file(`bird-${name}.spawned`);
  if (!existsSync(f)) return;
  const pid = Number(readFileSync(f, 'utf8'));
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
  rmSync(f, { force: true });
}

/** birdc on a lab BIRD's control socket. */
export function birdc(name: string, ...command: string[]): string {
  return sh(['birdc', '-s', file(`bird-${name}.ctl`), ...command]);
}

const FRR_DAEMONS = ['zebra', 'bfdd', 'bgpd'] as const;
const frrDir = (id: Id) => file(`frr-director${id}`);

/**
 * Starts FRR (zebra, bgpd, bfdd, each in the foreground) in a director's namespace instead of BIRD, with the
 * shipped deploy/routing/frr-director.conf (only the router id changed) applied as `vtysh -b` applies frr.conf.
 * Its own socket directory; the daemons run as Debian's user frr (root is not in the vty group frrvty).
 */
export async function startFrr(id: Id): Promise<void> {
  const d = labDirector(id);
  const dir = frrDir(id);
  mkdirSync(dir, { recursive: true });
  let conf = readFileSync(`${ROUTING}/frr-director.conf`, 'utf8');
  assert.equal(conf.split('bgp router-id 10.240.0.2\n').length, 2, 'frr-director.conf has the router id 10.240.0.2 once');
  conf = conf.replace('bgp router-id 10.240.0.2\n', `bgp router-id ${d.address}\n`);
  writeFileSync(join(dir, 'frr.conf'), conf);
  writeFileSync(join(dir, 'vtysh.conf'), '');
  sh(['chown', '-R', 'frr:frr', dir]);
  // one after the other, as FRR's own init does: zebra first (the others connect to it), bfdd before bgpd (started
  // together, bgpd's BFD registrations were lost now and then, and the router's BFD session never came up)
  for (const daemon of FRR_DAEMONS) {
    const logFd = openSync(join(dir, `${daemon}.out`), 'a');
    const argv = [`/usr/lib/frr/${daemon}`, '-f', '/dev/null', '--vty_socket', dir, '-z', join(dir, 'zserv.api'), '-i', join(dir, `${daemon}.pid`), '-u', 'frr', '-g', 'frr', '--log', `file:${join(dir, `${daemon}.log`)}`];
    const child = spawn('nsenter', [`--net=/var/run/netns/${d.ns}`, '--', ...argv], { stdio: ['ignore', logFd, logFd], detached: true });
    child.unref();
    writeFileSync(join(dir, `${daemon}.spawned`), String(child.pid));
    const deadline = Date.now() + 10_000;
    while (!existsSync(join(dir, `${daemon}.vty`))) {
      if (Date.now() > deadline) throw new Error(`FRR's ${daemon} did not start in ${d.ns}: ${read(join(dir, `${daemon}.out`))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  sh(['vtysh', '--vty_socket', dir, '--config_dir', dir, '-b']);
}

/** Stops the FRR daemons this lab started in a director's namespace (by their pids). */
export function stopFrr(id: Id, signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const daemon of FRR_DAEMONS) {
    const f = join(frrDir(id), `${daemon}.spawned`);
    if (!existsSync(f)) continue;
    try {
      process.kill(Number(readFileSync(f, 'utf8')), signal);
    } catch {
      /* already gone */
    }
    rmSync(f, { force: true });
  }
}

/** vtysh on a lab director's FRR. */
export function vtysh(id: Id, ...commands: string[]): string {
  return sh(['vtysh', '--vty_socket', frrDir(id), ...commands.flatMap((c) => ['-c', c])]);
}

/** The lab with three directors (none started), a router (BIRD running) and the client behind it. */
export async function bgpLabUp(o: { backends: number } = { backends: 2 }): Promise<void> {
  stopBirds(); // a previous run's (labUp removes its run directory, and the pid files with it)
  await labUp({ backends: o.backends, mode: 'native', directors: 3 });
  await stopDirector(1); // the lab's own director: replaced by the three of this lab
  const r = BGP.routerNs;
  try {
    // the client off the bridge, onto a link of its own to the router
    ip(LAB.bridgeNs, 'link', 'del', 'p-client');
    sh(['ip', 'netns', 'add', r]);
    ip(r, 'link', 'set', 'lo', 'up');
    ip(r, 'link', 'add', 'client0', 'type', 'veth', 'peer', 'name', LAB.nic, 'netns', LAB.clientNs);
    ip(LAB.clientNs, 'addr', 'add', `${LAB.client}/32`, 'dev', LAB.nic);
    ip(LAB.clientNs, '-6', 'addr', 'add', `${LAB.client6}/128`, 'dev', LAB.nic, 'nodad');
    ip(LAB.clientNs, 'link', 'set', LAB.nic, 'up');
    ip(r, 'addr', 'add', `${BGP.routerClientSide}/32`, 'dev', 'client0');
    ip(r, '-6', 'addr', 'add', 'fe80::1/64', 'dev', 'client0', 'nodad');
    ip(r, 'link', 'set', 'client0', 'up');
    ip(r, 'route', 'add', `${LAB.client}/32`, 'dev', 'client0', 'scope', 'link');
    ip(r, '-6', 'route', 'add', `${LAB.client6}/128`, 'dev', 'client0');
    ip(LAB.clientNs, 'route', 'add', `${BGP.routerClientSide}/32`, 'dev', LAB.nic, 'scope', 'link');
    ip(LAB.clientNs, 'route', 'add', 'default', 'via', BGP.routerClientSide, 'dev', LAB.nic);
    ip(LAB.clientNs, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', LAB.nic);
    // the router's leg on the segment
    ip(LAB.bridgeNs, 'link', 'add', 'p-router', 'type', 'veth', 'peer', 'name', LAB.nic, 'netns', r);
    ip(r, 'link', 'set', LAB.nic, 'address', '02:00:00:00:00:01');
    ip(LAB.bridgeNs, 'link', 'set', 'p-router', 'master', 'br0', 'up');
    ip(r, 'addr', 'add', `${BGP.router}/24`, 'dev', LAB.nic);
    ip(r, '-6', 'addr', 'add', `${BGP.router6}/64`, 'dev', LAB.nic, 'nodad');
    ip(r, 'link', 'set', LAB.nic, 'up');
    // native XDP on veth drops partial checksums: none from anything that sends into the segment
    for (const [ns, nic] of [[LAB.clientNs, LAB.nic], [r, 'client0'], [r, LAB.nic], [LAB.bridgeNs, 'p-router']] as const) ethtoolOff(ns, nic);
    // a router: forwarding, and ECMP hashed on the 5-tuple (L4), not only on the addresses. Not with policy 1, as
    // on a real router: a packet that crossed a veth still carries its sender's socket hash (skb->l4_hash), which
    // policy 1 takes as it is instead of hashing the 5-tuple, and which TCP draws anew at every retransmission
    // timeout, so the lab's router would pick a random director per connection and move connections by itself.
    // Policy 3 hashes the fields given, always: 0x37 = addresses, protocol, ports (what policy 1 hashes on a packet
    // that brings no hash of its own).
    sh(inNs(r, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', ...['ipv4', 'ipv6'].flatMap((v) => [`net.${v}.fib_multipath_hash_policy=3`, `net.${v}.fib_multipath_hash_fields=0x37`])]));
    // the backends answer the client through the router (Direct Routing: not through a director)
    for (let i = 1; i <= o.backends; i++) {
      ip(LAB.backendNs(i), 'route', 'add', `${LAB.client}/32`, 'via', BGP.router, 'dev', LAB.nic);
      ip(LAB.backendNs(i), '-6', 'route', 'add', `${LAB.client6}/128`, 'via', BGP.router6, 'dev', LAB.nic);
    }
    // every director the same config: the lab's service, its IPv6 twin, routeTable; no VIP on the NIC (the
    // router routes the VIPs to the directors' own addresses, nobody needs to resolve them)
    const web6 = `  - name: web6\n    vip: ${LAB.vip6}\n    port: 80\n    protocol: tcp\n    backends:\n${[1, 2].map((i) => `      - { address: ${LAB.backend6(i)} }\n`).join('')}${BGP.healthCheck}`;
    for (const id of DIRECTORS) writeFileSync(configOf(id), labConfig([1, 2], `${BGP.healthCheck}${web6}routeTable: ${BGP.table}\nownVips: false\nflowIdleTimeout: ${BGP.flowIdleTimeoutMs}ms\n`));
    startBird(r, 'router', 'bird-router.conf');
  } catch (err) {
    await bgpLabDown();
    throw err;
  }
}

/** Starts a director: xdplb (with routeTable) and its BIRD; its link up if it was cut. */
export function startDirectorWithBgp(id: Id): void {
  ip(LAB.bridgeNs, 'link', 'set', labDirector(id).port, 'up');
  startDirector('native', [], id, configOf(id));
  startBird(labDirector(id).ns, labDirector(id).name, 'bird-director.conf');
}

/** The machine gone: its link cut, its routing daemon (BIRD or FRR) and its xdplb killed. */
export async function killDirector(id: Id): Promise<void> {
  ip(LAB.bridgeNs, 'link', 'set', labDirector(id).port, 'down');
  stopBird(labDirector(id).name, 'SIGKILL');
  stopFrr(id, 'SIGKILL');
  await stopDirector(id, 'SIGKILL');
}

function stopBirds(): void {
  stopBird('router');
  for (const id of DIRECTORS) {
    stopBird(labDirector(id).name);
    stopFrr(id);
  }
}

export async function bgpLabDown(): Promise<void> {
  stopBirds();
  await labDown(); // every namespace of the prefix, the router's too
}

/** New connections from the client at a steady pace (src/lab/client.ts paced), each with a timeout, until stopped. */
export function pacedLoad(everyMs: number, timeoutMs: number): { stop(): Promise<{ attempts: [number, boolean, number][] }> } {
  const argv = inNs(LAB.clientNs, [process.execPath, CLIENT, 'paced', `http://${LAB.vip}/`, String(everyMs), String(timeoutMs)]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  return {
    async stop() {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out) as { attempts: [number, boolean, number][] };
    },
  };
}

/** The router's next hops for a VIP now (its kernel's route: one per director that announces it), sorted. */
export function nextHops(vip: string = LAB.vip): string[] {
  const family = vip.includes(':') ? ['-6', `${vip}/128`] : ['-4', `${vip}/32`];
  const routes = JSON.parse(ip(BGP.routerNs, '-j', family[0]!, 'route', 'show', family[1]!)) as { gateway?: string; nexthops?: { gateway: string }[] }[];
  const hops = routes.flatMap((r) => (r.nexthops ? r.nexthops.map((n) => n.gateway) : r.gateway ? [r.gateway] : []));
  return hops.sort();
}

/** The directors whose addresses are the router's next hops for the VIP. */
export function announcing(vip: string = LAB.vip): Id[] {
  const hops = new Set(nextHops(vip));
  return DIRECTORS.filter((id) => hops.has(labDirector(id).address));
}

/** The director the router's kernel sends a client's TCP connection from `port` to (its ECMP choice), or null. */
export function directorOf(port: number): Id | null {
  const route = JSON.parse(ip(BGP.routerNs, '-j', 'route', 'get', LAB.vip, 'from', LAB.client, 'iif', 'client0', 'ipproto', 'tcp', 'sport', String(port), 'dport', '80')) as { gateway?: string }[];
  return DIRECTORS.find((id) => labDirector(id).address === route[0]?.gateway) ?? null;
}

/** What a director's pins say (its data plane, with or without its daemon). */
export function directorStatus(id: Id): Status {
  const d = labDirector(id);
  return readStatus(DataPlane.openPinned(d.pinDir), d.pinDir);
}

/** Packets a director's program has sent on to a backend (XDP_TX), from its pins. */
export function forwarded(id: Id): number {
  return directorStatus(id).global.xdp_tx ?? 0;
}

/** xdplb's routes in a director's routeTable (`ip route show table N proto 251`): the VIPs it offers now, IPv4 first. */
export function publishedRoutes(id: Id): string[] {
  return ['-4', '-6'].flatMap((family) => {
    const routes = JSON.parse(ip(labDirector(id).ns, '-j', family, 'route', 'show', 'table', String(BGP.table), 'proto', '251')) as { dst: string }[];
    return routes.map((r) => r.dst).sort();
  });
}

/** The state of a BIRD's protocol (birdc show protocols NAME), e.g. "Established", or null if it has none. */
export function bgpState(name: string, protocol: string): string | null {
  const line = birdc(name, 'show', 'protocols', protocol)
    .split('\n')
    .find((l) => l.startsWith(`${protocol} `));
  return line?.trim().split(/\s+/).at(-1) ?? null;
}
