// `xdplb lab`: a Direct-Routing lab in network namespaces. One namespace
// holds the bridge (so the root namespace is never touched); the client, the
// director and each backend have their own, each with a NIC `lab0` on the
// bridge. Addresses as in the LVS-DR write-up (SPEC §8).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { detachPins } from '../dataplane/attach.ts';
import { DataPlane } from '../dataplane/dataplane.ts';
import { XdplbError } from '../errors.ts';
import { readStatus, renderStatus, type Status } from '../status/status.ts';

/**
 * The names of the lab's namespaces, run directory and pins start with this
 * ($XDPLB_LAB_PREFIX, default xdplb-lab): a second lab with another prefix
 * can run beside it (its addresses are the same, each lab on its own bridge).
 */
const PREFIX = process.env.XDPLB_LAB_PREFIX ?? 'xdplb-lab';
if (!/^[a-z][a-z0-9-]{0,15}$/.test(PREFIX)) throw new XdplbError('USAGE', `XDPLB_LAB_PREFIX ${JSON.stringify(PREFIX)}: 1-16 lower-case letters, digits and -, starting with a letter`);

export const LAB = {
  prefix: PREFIX,
  bridgeNs: `${PREFIX}-net`,
  clientNs: `${PREFIX}-client`,
  directorNs: `${PREFIX}-director`,
  runDir: `/run/${PREFIX}`,
  pinDir: `/sys/fs/bpf/${PREFIX}/director`,
  nic: 'lab0',
  vip: '10.240.0.201',
  client: '10.240.0.10',
  director: '10.240.0.2',
  backend: (i: number) => `10.240.0.${100 + i}`,
  /** The same plan in IPv6 (SPEC §8: 2001:db8::/64). */
  vip6: '2001:db8::201',
  client6: '2001:db8::10',
  director6: '2001:db8::2',
  backend6: (i: number) => `2001:db8::${100 + i}`,
  backendNs: (i: number) => `${PREFIX}-b${i}`,
  backendName: (i: number) => `backend-${i}`,
  configPath: `/run/${PREFIX}/config.yaml`,
  /** The director's run directory (its lock, API socket, VIP record): CLI commands that talk to it need it too. */
  directorEnv: { XDPLB_RUN_DIR: `/run/${PREFIX}/director` },
} as const;

/** A director of the lab: the first (LAB.directorNs, ...) or, with `directors: 2`, a second on the same segment. */
export type DirectorId = 1 | 2;
/** With `directors: 3`, a third on the same segment too (the ECMP lab: several active directors). */
export type AnyDirectorId = DirectorId | 3;

export interface LabDirector {
  readonly ns: string;
  readonly address: string;
  readonly address6: string;
  readonly mac: string;
  readonly pinDir: string;
  /** Its run directory (lock, API socket, VIP record), as XDPLB_RUN_DIR. */
  readonly env: { readonly XDPLB_RUN_DIR: string };
  /** Its port on the bridge. */
  readonly port: string;
  /** The name of its pid and log files in LAB.runDir. */
  readonly name: string;
}

export function labDirector(id: AnyDirectorId = 1): LabDirector {
  if (id === 1) return { ns: LAB.directorNs, address: LAB.director, address6: LAB.director6, mac: mac(0x02), pinDir: LAB.pinDir, env: LAB.directorEnv, port: 'p-director', name: 'director' };
  return {
    ns: `${LAB.prefix}-director${id}`,
    address: `10.240.0.${id + 1}`,
    address6: `2001:db8::${id + 1}`,
    mac: mac(id + 1),
    pinDir: `${LAB.pinDir}${id}`,
    env: { XDPLB_RUN_DIR: `${LAB.runDir}/director${id}` },
    port: `p-director${id}`,
    name: `director${id}`,
  };
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const XDPLB = `${ROOT}bin/xdplb`;
const NODE = process.execPath;

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new XdplbError('INTERFACE', `${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);

/** argv that runs a command in a namespace's network only (keeps /sys/fs/bpf). */
export function inNs(ns: string, argv: string[]): string[] {
  return ['nsenter', `--net=/var/run/netns/${ns}`, '--', ...argv];
}

function nsExists(ns: string): boolean {
  return existsSync(`/var/run/netns/${ns}`);
}

export function labNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${LAB.prefix}-`));
}

function mac(last: number, group = 0): string {
  return `02:00:00:00:${group.toString(16).padStart(2, '0')}:${last.toString(16).padStart(2, '0')}`;
}

function startDetached(name: string, argv: string[], env: NodeJS.ProcessEnv = {}): number {
  mkdirSync(LAB.runDir, { recursive: true });
  const logFd = openSync(`${LAB.runDir}/${name}.log`, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, ...env } });
  child.unref();
  writeFileSync(`${LAB.runDir}/${name}.pid`, String(child.pid));
  return child.pid!;
}

function stopPid(name: string, signal: NodeJS.Signals = 'SIGTERM'): void {
  const file = `${LAB.runDir}/${name}.pid`;
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8'));
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
  rmSync(file, { force: true });
}

async function waitPidGone(name: string, pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new XdplbError('DAEMON', `${name} (pid ${pid}) did not stop within ${ms} ms`);
}

export interface LabOptions {
  backends: number;
  mode: 'native' | 'generic';
  /** 2 (3): a second (and third) director on the segment (not started: the test starts it, with startDirector(..., 2)). */
  directors?: 1 | 2 | 3;
  /** Backends listed in the director's config (default: all). */
  configured?: number[];
}

export function labConfig(backends: number[], extra = ''): string {
  return `# written by xdplb lab up
interface: ${LAB.nic}
maglevTableSize: 16381
services:
  - name: web
    vip: ${LAB.vip}
    port: 80
    protocol: tcp
    scheduler: maglev
    backends:
${backends.map((i) => `      - { address: ${LAB.backend(i)} }`).join('\n')}
${extra}`;
}

export function directorPid(id: AnyDirectorId = 1): number | null {
  const file = `${LAB.runDir}/${labDirector(id).name}.pid`;
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : null;
}

/** Starts backend i's HTTP server (whoami) in its namespace. */
export function startBackendServer(i: number): void {
  const file = `${LAB.runDir}/whoami-${i}.pid`;
  if (existsSync(file)) {
    try {
      process.kill(Number(readFileSync(file, 'utf8')), 0);
      return; // already running
    } catch {
      /* stale pid file */
    }
  }
  startDetached(`whoami-${i}`, inNs(LAB.backendNs(i), [NODE, `${ROOT}src/lab/whoami.ts`, LAB.backendName(i), '80']));
}

export async function stopBackendServer(i: number): Promise<void> {
  const file = `${LAB.runDir}/whoami-${i}.pid`;
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8'));
  stopPid(`whoami-${i}`);
  await waitPidGone(`whoami-${i}`, pid, 5000);
}

/** Starts a director of the lab (xdplb attach) in its namespace; `config`: another config file than the lab's. */
export function startDirector(mode: 'native' | 'generic', extraArgs: string[] = [], id: AnyDirectorId = 1, config: string = LAB.configPath): number {
  const d = labDirector(id);
  return startDetached(d.name, inNs(d.ns, [XDPLB, 'attach', '-c', config, '--pin-dir', d.pinDir, '--mode', mode, ...extraArgs]), { ...d.env, XDPLB_LOG_FORMAT: 'json' });
}

/** Stops a director of the lab (SIGTERM: in order, the data plane keeps forwarding; SIGKILL: it dies). */
export async function stopDirector(id: AnyDirectorId = 1, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const d = labDirector(id);
  const pid = directorPid(id);
  if (pid === null) return;
  stopPid(d.name, signal);
  await waitPidGone(d.name, pid, 10_000);
}

export function readLabStatus(): Status {
  return readStatus(DataPlane.openPinned(LAB.pinDir), LAB.pinDir);
}

/** Waits until the web service has `want` active backends. */
export async function waitForBackends(want: number, ms = 20_000): Promise<Status> {
  const deadline = Date.now() + ms;
  let last: Status | null = null;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      last = readLabStatus();
      if ((last.services[0]?.backends.filter((b) => b.state === 'active').length ?? 0) === want) return last;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const logTail = existsSync(`${LAB.runDir}/director.log`) ? readFileSync(`${LAB.runDir}/director.log`, 'utf8').slice(-3000) : '';
  throw new XdplbError('DAEMON', `the lab director did not reach ${want} active backends: ${last ? JSON.stringify(last.services) : lastError}\n${logTail}`);
}

export async function labUp(o: LabOptions): Promise<void> {
  if (labNamespaces().length > 0) await labDown();
  rmSync(LAB.runDir, { recursive: true, force: true }); // a new lab starts from nothing a previous one left (a role record, a lock)
  mkdirSync(LAB.runDir, { recursive: true });
  const directors = Array.from({ length: o.directors ?? 1 }, (_, k) => labDirector((k + 1) as AnyDirectorId));
  const nodes: { ns: string; addr: string; addr6: string; mac: string }[] = [
    { ns: LAB.clientNs, addr: LAB.client, addr6: LAB.client6, mac: mac(0x0a) },
    ...directors.map((d) => ({ ns: d.ns, addr: d.address, addr6: d.address6, mac: d.mac })),
    ...Array.from({ length: o.backends }, (_, k) => ({ ns: LAB.backendNs(k + 1), addr: LAB.backend(k + 1), addr6: LAB.backend6(k + 1), mac: mac(100 + k + 1, 1) })),
  ];
  try {
    run('ip', ['netns', 'add', LAB.bridgeNs]);
    ip(LAB.bridgeNs, 'link', 'set', 'lo', 'up');
    ip(LAB.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    ip(LAB.bridgeNs, 'link', 'set', 'br0', 'up');
    for (const n of nodes) {
      const port = `p-${n.ns.slice(LAB.prefix.length + 1)}`;
      run('ip', ['netns', 'add', n.ns]);
      ip(LAB.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', LAB.nic, 'netns', n.ns);
      ip(n.ns, 'link', 'set', LAB.nic, 'address', n.mac);
      ip(LAB.bridgeNs, 'link', 'set', port, 'master', 'br0', 'up');
      ip(n.ns, 'link', 'set', 'lo', 'up');
      ip(n.ns, 'addr', 'add', `${n.addr}/24`, 'dev', LAB.nic);
      ip(n.ns, '-6', 'addr', 'add', `${n.addr6}/64`, 'dev', LAB.nic, 'nodad');
      ip(n.ns, 'link', 'set', LAB.nic, 'up');
      // native XDP on veth drops partial checksums of local traffic: no offloads
      run('ip', ['netns', 'exec', n.ns, 'ethtool', '-K', LAB.nic, 'tx', 'off', 'tso', 'off']);
      run('ip', ['netns', 'exec', LAB.bridgeNs, 'ethtool', '-K', port, 'tx', 'off', 'tso', 'off']);
    }
    if (o.mode === 'native') {
      // XDP_TX in native mode on a veth needs NAPI on its peer: an XDP program there (a plain
      // XDP_PASS) or GRO on; without either every XDP_TX frame is lost, though the program counts it sent
      for (const d of directors) ip(LAB.bridgeNs, 'link', 'set', 'dev', d.port, 'xdpdrv', 'obj', `${ROOT}out/bpf/baseline_pass.bpf.o`, 'sec', 'xdp');
    }
    for (let i = 1; i <= o.backends; i++) {
      const realserver = inNs(LAB.backendNs(i), [XDPLB, 'realserver', '--vip', LAB.vip, LAB.vip6]);
      execFileSync(realserver[0]!, realserver.slice(1), { env: { ...process.env, XDPLB_RUN_DIR: `${LAB.runDir}/${LAB.backendNs(i)}` }, stdio: ['ignore', 'ignore', 'pipe'] });
      startBackendServer(i);
    }
    writeFileSync(LAB.configPath, labConfig(o.configured ?? Array.from({ length: o.backends }, (_, k) => k + 1)));
    writeFileSync(`${LAB.runDir}/lab.json`, JSON.stringify({ backends: o.backends, mode: o.mode, directors: directors.length }));
    startDirector(o.mode);
    await waitForBackends((o.configured ?? Array.from({ length: o.backends })).length);
  } catch (err) {
    await labDown();
    throw err;
  }
  process.stdout.write(
    `lab up: client ${LAB.client}, director ${LAB.director} (${o.mode} XDP), backends ${Array.from({ length: o.backends }, (_, k) => LAB.backend(k + 1)).join(', ')}\n` +
      `VIP http://${LAB.vip}/ — try: xdplb lab demo; xdplb status --pin-dir ${LAB.pinDir}\n`,
  );
}

/** Counts packets matching a tcpdump filter on a bridge port while fn runs. */
export async function countPackets<T>(port: string, filter: string, fn: () => Promise<T>): Promise<{ result: T; packets: number }> {
  const child = spawn('ip', ['netns', 'exec', LAB.bridgeNs, 'tcpdump', '-i', port, '-n', '-p', '--immediate-mode', '-w', '/dev/null', filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 5000;
  while (!err.includes('listening on') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  if (!err.includes('listening on')) {
    child.kill('SIGKILL');
    throw new XdplbError('INTERFACE', `tcpdump on ${port} did not start (is tcpdump installed?): ${err.trim()}`);
  }
  let result: T;
  try {
    result = await fn();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGINT');
    await done;
  }
  const m = /(\d+) packets? captured/.exec(err);
  if (!m) throw new XdplbError('INTERFACE', `tcpdump on ${port} printed no count: ${err.trim()}`);
  return { result, packets: Number(m[1]) };
}

/** Runs the lab client in the client namespace (n requests to url) and parses its JSON. */
export function clientRequests(n: number, url = `http://${LAB.vip}/`): { ok: boolean; backend?: string; error?: string }[] {
  const argv = inNs(LAB.clientNs, [NODE, `${ROOT}src/lab/client.ts`, 'requests', url, String(n)]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new XdplbError('DAEMON', `lab client failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { ok: boolean; backend?: string; error?: string }[];
}

export async function labDemo(o: { requests: number }): Promise<void> {
  if (!nsExists(LAB.directorNs)) throw new XdplbError('NOT_ATTACHED', 'the lab is not up: run `xdplb lab up` first');
  const replies = 'src host 10.240.0.201 and tcp src port 80';
  let onClient = 0;
  const onDirector = await countPackets('p-director', replies, async () => {
    const r = await countPackets('p-client', replies, async () => clientRequests(o.requests));
    onClient = r.packets;
    return r.result;
  });
  const results = onDirector.result;
  const per = new Map<string, number>();
  results.forEach((r, i) => {
    process.stdout.write(`request ${String(i + 1).padStart(3)} → ${r.ok ? r.backend : `FAILED: ${r.error}`}\n`);
    if (r.ok) per.set(r.backend!, (per.get(r.backend!) ?? 0) + 1);
  });
  process.stdout.write(`\nanswers per backend: ${[...per].sort().map(([b, n]) => `${b} ${n}`).join(', ')}; failed ${results.filter((r) => !r.ok).length}\n\n`);
  process.stdout.write(`${renderStatus(readLabStatus(), { stats: true, mode: 'totals' })}\n\n`);
  process.stdout.write(
    `replies (from ${LAB.vip}:80) seen on the bridge port of the client: ${onClient}, of the director: ${onDirector.packets}\n` +
      (onDirector.packets === 0 && onClient > 0 ? 'the replies went straight from the backends to the client: Direct Routing works.\n' : 'unexpected: replies crossed the director.\n'),
  );
}

export async function labDown(): Promise<void> {
  for (const id of [1, 2, 3] as const) {
    const pid = directorPid(id);
    if (pid === null) continue;
    stopPid(labDirector(id).name);
    await waitPidGone(labDirector(id).name, pid, 10_000).catch(() => process.kill(pid, 'SIGKILL'));
  }
  for (const f of existsSync(LAB.runDir) ? readdirSync(LAB.runDir) : [])
    if (f.startsWith('whoami-') && f.endsWith('.pid')) stopPid(f.slice(0, -4), 'SIGKILL');
  for (const pinDir of [LAB.pinDir, labDirector(2).pinDir, labDirector(3).pinDir]) {
    try {
      detachPins(pinDir);
    } catch {
      rmSync(pinDir, { recursive: true, force: true });
    }
  }
  rmSync(`/sys/fs/bpf/${LAB.prefix}`, { recursive: true, force: true });
  for (const ns of labNamespaces()) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(LAB.runDir, { recursive: true, force: true });
}
