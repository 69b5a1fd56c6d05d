// npm run bench:lab [-- --json] [-- --pairs N] [-- --seconds S] [-- --cases base,churn,vips,scaling]
// Packets per second through a real director (the xdplb daemon), in network
// namespaces of its own, in a routed two-NIC topology (no bridge: a Linux
// bridge caps the path near 3 Mpps):
//
//   gen ─ g-s ══ s-s ─────────────────────────────────── sink   S: the sink alone
//   gen ─ g-n ══ dn-in [xdplb native]  dn-out ══ s-n ─── sink   A: xdplb, native XDP
//   gen ─ g-g ══ dg-in [xdplb generic] dg-out ══ s-g ─── sink   A: xdplb, generic XDP
//   gen ─ g-k ══ dk-in [kernel forwarding] dk-out ══ s-k ─ sink B: a route, or ECMP with an L4 hash
//
// The generator is lab_gen.bpf.c on BPF_PROG_RUN with live frames (64-byte
// TCP and UDP frames to the VIPs, many flows); the sink counts what arrives
// with lab_sink.bpf.c (XDP drop). The directors' backends 10.2.0.101-104 sit
// behind their second NIC (`interface:` in xdplb's config: XDP_REDIRECT), all
// of them the sink's NIC of that path (permanent neighbour entries). One pair
// runs every path once, one after the other, for the same time; pairs
// repeat, so a neighbour's burst on this shared machine hits one pair, not
// one path.
//
// Everything of a pair runs on one vCPU (the generator pinned with taskset;
// a veth has no interrupt, so its receiver runs on the sender's CPU): the
// time per packet of the whole path is then 1e9/pps, and the director's
// share is 1e9/A - 1e9/S. The scaling case gives the directors' receiving
// NIC two queues with threaded NAPI (one thread per queue, pinned to a vCPU
// each) and runs one generator, then one per vCPU.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { detachPins } from '../src/dataplane/attach.ts';
import { DataPlane } from '../src/dataplane/dataplane.ts';
import { inNs } from '../src/lab/lab.ts';
import { readStatus } from '../src/status/status.ts';
import type { GenRequest } from './lab-agent.ts';

// ---- options ------------------------------------------------------------------

const ALL_CASES = ['base', 'churn', 'vips', 'scaling'] as const;
type CaseName = (typeof ALL_CASES)[number];

function options() {
  const argv = process.argv.slice(2);
  const o = { json: false, pairs: 5, seconds: 10, cases: [...ALL_CASES] as CaseName[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const positive = (v: string, what: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} ${JSON.stringify(v)}: a positive number`);
      return n;
    };
    if (a === '--json') o.json = true;
    else if (a === '--pairs') o.pairs = Math.round(positive(value(), '--pairs'));
    else if (a === '--seconds') o.seconds = positive(value(), '--seconds');
    else if (a === '--cases') {
      const cs = value().split(',');
      const bad = cs.filter((c) => !(ALL_CASES as readonly string[]).includes(c));
      if (bad.length) throw new Error(`--cases: unknown ${bad.join(', ')} (known: ${ALL_CASES.join(', ')})`);
      o.cases = cs as CaseName[];
    } else throw new Error(`unknown option ${a} (known: --json, --pairs N, --seconds S, --cases ${ALL_CASES.join(',')})`);
  }
  return o;
}

const OPT = options();
const PREFIX = process.env.XDPLB_LAB_PREFIX ?? 'xdplb-bench';
const NS = { gen: `${PREFIX}-gen`, sink: `${PREFIX}-sink`, dn: `${PREFIX}-dn`, dg: `${PREFIX}-dg`, dk: `${PREFIX}-dk` };
const RUN_DIR = `/run/${PREFIX}`;
const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const XDPLB = `${ROOT}bin/xdplb`;
const VIP_BASE = '10.200.0.1';
const BACKENDS = ['10.2.0.101', '10.2.0.102', '10.2.0.103', '10.2.0.104'];
/** Backends the churn case starts with, so that every slot changes owner when it moves to BACKENDS. */
const OLD_BACKENDS = ['10.2.0.105', '10.2.0.106', '10.2.0.107', '10.2.0.108'];
const FLOWS = 65_536;
const MAX_VIPS = 10_000;
const CPUS = 2;

type PathName = 'sink' | 'native' | 'generic' | 'kernel' | 'kernel_ecmp';
/** Each path: the generator's NIC, the NIC its frames are addressed to (ns, name), the sink NIC it ends at. */
const PATHS: Record<PathName, { gen: string; to: [string, string]; sink: string }> = {
  sink: { gen: 'g-s', to: [NS.sink, 's-s'], sink: 's-s' },
  native: { gen: 'g-n', to: [NS.dn, 'dn-in'], sink: 's-n' },
  generic: { gen: 'g-g', to: [NS.dg, 'dg-in'], sink: 's-g' },
  kernel: { gen: 'g-k', to: [NS.dk, 'dk-in'], sink: 's-k' },
  kernel_ecmp: { gen: 'g-k', to: [NS.dk, 'dk-in'], sink: 's-k' },
};

// ---- processes ------------------------------------------------------------------

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}
const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
/** A command that needs the namespace's /sys or /proc/sys (ethtool, sysctl, the threaded switch). */
const nsExec = (ns: string, ...argv: string[]) => run('ip', ['netns', 'exec', ns, ...argv]);

const children: ChildProcess[] = [];

/** A lab-agent.ts process in a namespace, on the given CPUs. */
class Agent {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 1;
  readonly ready: Promise<void>;
  private stderr = '';

  constructor(role: 'gen' | 'sink', ns: string, cpus: string) {
    const argv = ['taskset', '-c', cpus, ...inNs(ns, [process.execPath, `${ROOT}bench/lab-agent.ts`, role])];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(this.child);
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-4000)));
    const lines = createInterface({ input: this.child.stdout! });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => {
        const e = new Error(`the ${role} agent in ${ns} exited (${code}): ${this.stderr.trim()}`);
        reject(e);
        for (const w of this.waiting.values()) w.reject(e);
      });
      lines.on('line', (line) => {
        const m = JSON.parse(line) as { ready?: boolean; id?: number; result?: unknown; error?: string };
        if (m.ready) return resolve();
        const w = this.waiting.get(m.id!);
        this.waiting.delete(m.id!);
        if (m.error !== undefined) w?.reject(new Error(`${role} agent: ${m.error}`));
        else w?.resolve(m.result);
      });
    });
  }

  async call<T>(req: Record<string, unknown>): Promise<T> {
    await this.ready;
    const id = this.next++;
    const p = new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    this.child.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    return p;
  }

  close(): void {
    this.child.stdin!.end();
  }
}

// ---- the lab ----------------------------------------------------------------------

function mac(ns: string, nic: string): string {
  return (JSON.parse(ip(ns, '-j', 'link', 'show', 'dev', nic)) as { address: string }[])[0]!.address;
}

/** A veth pair, one end in each namespace, both with two queues, offloads off (PLATFORM.md). */
function veth(nsA: string, a: string, nsB: string, b: string): void {
  ip(nsA, 'link', 'add', a, 'numtxqueues', '2', 'numrxqueues', '2', 'type', 'veth', 'peer', 'name', b, 'netns', nsB, 'numtxqueues', '2', 'numrxqueues', '2');
  for (const [ns, nic] of [[nsA, a], [nsB, b]] as const) {
    nsExec(ns, 'ethtool', '-K', nic, 'tx', 'off', 'tso', 'off');
    ip(ns, 'link', 'set', nic, 'up');
  }
}

function labUp(): void {
  labDown();
  mkdirSync(RUN_DIR, { recursive: true });
  for (const ns of Object.values(NS)) {
    run('ip', ['netns', 'add', ns]);
    ip(ns, 'link', 'set', 'lo', 'up');
  }
  veth(NS.gen, 'g-s', NS.sink, 's-s');
  for (const d of ['n', 'g', 'k'] as const) {
    const ns = NS[`d${d}`];
    veth(NS.gen, `g-${d}`, ns, `d${d}-in`);
    veth(ns, `d${d}-out`, NS.sink, `s-${d}`);
    // frames redirected into a veth need NAPI on it: GRO (the kernel's and generic XDP's only way in)
    nsExec(ns, 'ethtool', '-K', `d${d}-in`, 'gro', 'on');
    ip(ns, 'addr', 'add', '10.1.255.254/16', 'dev', `d${d}-in`);
    ip(ns, 'addr', 'add', '10.2.0.1/24', 'dev', `d${d}-out`);
    const sinkMac = mac(NS.sink, `s-${d}`);
    for (const b of [...BACKENDS, ...OLD_BACKENDS]) ip(ns, 'neigh', 'replace', b, 'lladdr', sinkMac, 'dev', `d${d}-out`, 'nud', 'permanent');
    for (const k of ['all', 'default', `d${d}-in`]) nsExec(ns, 'sysctl', '-qw', `net.ipv4.conf.${k.replace('.', '/')}.rp_filter=0`);
  }
  nsExec(NS.dk, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  // ECMP with an L4 hash: this namespace only
  nsExec(NS.dk, 'sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=1');
  kernelRoute('single');
}

function kernelRoute(kind: 'single' | 'ecmp'): void {
  const nexthops = kind === 'single' ? ['via', BACKENDS[0]!, 'dev', 'dk-out'] : BACKENDS.flatMap((b) => ['nexthop', 'via', b, 'dev', 'dk-out']);
  ip(NS.dk, 'route', 'replace', '10.200.0.0/16', ...nexthops);
}

function labDown(): void {
  for (const c of children) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
  for (const d of ['dn', 'dg']) {
    try {
      detachPins(`${PIN_ROOT}/${d}`);
    } catch {
      /* not there, or half made: removed below */
    }
  }
  rmSync(PIN_ROOT, { recursive: true, force: true });
  const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const ns of listed.split('\n').map((l) => l.split(' ')[0]!))
    if (Object.values(NS).includes(ns)) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(RUN_DIR, { recursive: true, force: true });
}

// ---- the directors ------------------------------------------------------------------

interface Director {
  ns: string;
  nic: string;
  mode: 'native' | 'generic';
  pinDir: string;
  configPath: string;
  child?: ChildProcess;
}

const DIRECTORS: Director[] = (['native', 'generic'] as const).map((mode) => {
  const d = mode === 'native' ? 'dn' : 'dg';
  return { ns: NS[d], nic: `${d}-in`, mode, pinDir: `${PIN_ROOT}/${d}`, configPath: `${RUN_DIR}/${d}.yaml` };
});

const vipOf = (i: number) => {
  const base = VIP_BASE.split('.').reduce((n, o) => n * 256 + Number(o), 0) + i;
  return [base >>> 24, (base >> 16) & 255, (base >> 8) & 255, base & 255].join('.');
};

/** The director's config: `vips` VIPs, each with a TCP (80) and a UDP (53) service on the backends behind the second NIC. */
function directorConfig(d: Director, vips: number, backends: string[]): string {
  const out = d.nic.replace('-in', '-out');
  const bs = backends.map((b) => `      - { address: ${b}, interface: ${out} }`).join('\n');
  const lines = [
    `# written by bench/lab.ts`,
    `interface: ${d.nic}`,
    `mode: ${d.mode}`,
    `ownVips: false`,
    // the same in every config (a reload cannot resize the maps): room for the 10,000-VIP case, which needs one more than it uses
    `capacity: { services: ${2 * MAX_VIPS + 2}, backends: ${2 * MAX_VIPS * BACKENDS.length + 2} }`,
    `services:`,
  ];
  for (let i = 0; i < vips; i++)
    for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) lines.push(`  - name: v${i}-${proto}`, `    vip: ${vipOf(i)}`, `    port: ${port}`, `    protocol: ${proto}`, `    backends:`, bs);
  return `${lines.join('\n')}\n`;
}

/** Writes each director's config and starts it, or has it reload; returns when every one has applied it. */
async function configureDirectors(vips: number, backends: string[]): Promise<void> {
  for (const d of DIRECTORS) {
    writeFileSync(d.configPath, directorConfig(d, vips, backends));
    if (d.child && d.child.exitCode === null) d.child.kill('SIGHUP');
    else {
      const log = openSync(`${RUN_DIR}/${d.ns}.log`, 'a');
      const argv = inNs(d.ns, [XDPLB, 'attach', '-c', d.configPath, '--pin-dir', d.pinDir, '--mode', d.mode]);
      d.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log], env: { ...process.env, XDPLB_RUN_DIR: `${RUN_DIR}/${d.ns}`, XDPLB_LOG_FORMAT: 'json' } });
      children.push(d.child);
    }
  }
  for (const d of DIRECTORS) await applied(d, vips, backends);
}

async function applied(d: Director, vips: number, backends: string[]): Promise<void> {
  const want = [...backends].sort().join(',');
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    if (d.child?.exitCode !== null) break;
    try {
      const st = readStatus(DataPlane.openPinned(d.pinDir), d.pinDir);
      const ok =
        st.services.length === 2 * vips &&
        st.services.every((s) => s.backends.filter((b) => b.state === 'active' && b.mac !== '').map((b) => b.address).sort().join(',') === want);
      if (ok) return;
      last = `${st.services.length} services, the first with ${JSON.stringify(st.services[0]?.backends.map((b) => [b.address, b.state, b.mac]))}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const log = existsSync(`${RUN_DIR}/${d.ns}.log`) ? readFileSync(`${RUN_DIR}/${d.ns}.log`, 'utf8').slice(-2000) : '';
  throw new Error(`the ${d.mode} director did not apply ${2 * vips} services on ${want}: ${last}\n${log}`);
}

// ---- measuring ------------------------------------------------------------------------

interface Traffic {
  flows: number;
  vips: number;
}

interface Measured {
  offered: number;
  delivered: number;
  /** Delivered frames counted on each CPU of the sink. */
  perCpu: number[];
}

const dstMacs = new Map<PathName, string>();

/** Runs the generators (one per agent, at once) into a path for `seconds`; the sink's count over the same time. */
async function measure(gens: Agent[], sink: Agent, path: PathName, t: Traffic, seconds: number): Promise<Measured> {
  const p = PATHS[path];
  if (path === 'kernel' || path === 'kernel_ecmp') kernelRoute(path === 'kernel' ? 'single' : 'ecmp');
  const dstMac = dstMacs.get(path) ?? mac(...p.to);
  dstMacs.set(path, dstMac);
  const before = await sink.call<Record<string, number[]>>({ cmd: 'count' });
  const req: GenRequest = { nic: p.gen, dstMac, flows: t.flows, vipBase: VIP_BASE, vips: t.vips, seconds, ncpus: gens.length };
  const sent = await Promise.all(gens.map((g) => g.call<{ sent: number; ns: number }>({ cmd: 'run', ...req })));
  await new Promise((r) => setTimeout(r, 50)); // the last batch's way to the sink
  const after = await sink.call<Record<string, number[]>>({ cmd: 'count' });
  const perCpu = after[p.sink]!.map((n, i) => n - before[p.sink]![i]!);
  const elsewhere = Object.keys(after).filter((k) => k !== p.sink).reduce((n, k) => n + after[k]!.reduce((a, b) => a + b, 0) - before[k]!.reduce((a, b) => a + b, 0), 0);
  if (elsewhere > 0) throw new Error(`${path}: ${elsewhere} frames arrived at another sink NIC than ${p.sink}: the lab is wired wrong`);
  const ns = Math.max(...sent.map((s) => s.ns));
  const offered = sent.reduce((n, s) => n + s.sent, 0);
  const delivered = perCpu.reduce((a, b) => a + b, 0);
  return { offered: (offered * 1e9) / ns, delivered: (delivered * 1e9) / ns, perCpu };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mpps = (n: number) => (n / 1e6).toFixed(2);

interface PairRow {
  case: string;
  pair: number;
  path: PathName;
  offered_pps: number;
  delivered_pps: number;
}

interface CaseSummary {
  case: string;
  pairs: number;
  seconds: number;
  delivered_mpps: Record<string, number>;
  /** 1e9/A - 1e9/S per pair, median. */
  director_ns_per_packet: Record<string, number>;
  /** A/B per pair, median (native over each kernel path). */
  ratio: Record<string, number>;
  per_pair: { ns: Record<string, number>; ratio: Record<string, number> }[];
}

async function runCase(name: string, gen: Agent, sink: Agent, t: Traffic): Promise<{ rows: PairRow[]; summary: CaseSummary }> {
  const paths: PathName[] = ['sink', 'native', 'generic', 'kernel', 'kernel_ecmp'];
  const rows: PairRow[] = [];
  const perPair: CaseSummary['per_pair'] = [];
  for (let pair = 1; pair <= OPT.pairs; pair++) {
    const got = {} as Record<PathName, Measured>;
    for (const path of paths) {
      got[path] = await measure([gen], sink, path, t, OPT.seconds);
      rows.push({ case: name, pair, path, offered_pps: Math.round(got[path].offered), delivered_pps: Math.round(got[path].delivered) });
    }
    const ns = (a: PathName) => 1e9 / got[a].delivered - 1e9 / got.sink.delivered;
    perPair.push({
      ns: { native: ns('native'), generic: ns('generic'), kernel: ns('kernel'), kernel_ecmp: ns('kernel_ecmp') },
      ratio: { native_vs_kernel: got.native.delivered / got.kernel.delivered, native_vs_kernel_ecmp: got.native.delivered / got.kernel_ecmp.delivered, generic_vs_kernel: got.generic.delivered / got.kernel.delivered },
    });
    if (!OPT.json) process.stderr.write(`${name} pair ${pair}: ${paths.map((p) => `${p} ${mpps(got[p].delivered)}`).join(', ')} Mpps\n`);
  }
  const of = (path: PathName) => median(rows.filter((r) => r.path === path).map((r) => r.delivered_pps)) / 1e6;
  const med = (pick: (p: CaseSummary['per_pair'][number]) => number) => +median(perPair.map(pick)).toFixed(2);
  return {
    rows,
    summary: {
      case: name,
      pairs: OPT.pairs,
      seconds: OPT.seconds,
      delivered_mpps: Object.fromEntries(paths.map((p) => [p, +of(p).toFixed(3)])),
      director_ns_per_packet: Object.fromEntries(['native', 'generic', 'kernel', 'kernel_ecmp'].map((k) => [k, med((p) => p.ns[k]!)])),
      ratio: Object.fromEntries(['native_vs_kernel', 'native_vs_kernel_ecmp', 'generic_vs_kernel'].map((k) => [k, med((p) => p.ratio[k]!)])),
      per_pair: perPair,
    },
  };
}

// ---- scaling: one vCPU, then two ------------------------------------------------------

/** Threaded NAPI on a director's receiving NIC, its threads (one per queue, by NAPI id) pinned to `cpus` in order. */
function threadedNapi(ns: string, nic: string, cpus: number[]): number[] {
  nsExec(ns, 'sh', '-c', `echo 1 > /sys/class/net/${nic}/threaded`);
  const threads = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((pid) => {
      try {
        return { pid: Number(pid), comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() };
      } catch {
        return { pid: 0, comm: '' };
      }
    })
    .filter((t) => t.comm.startsWith(`napi/${nic}-`))
    .sort((a, b) => Number(a.comm.split('-').pop()) - Number(b.comm.split('-').pop()));
  if (threads.length === 0) throw new Error(`threaded NAPI on ${nic} (${ns}) made no napi/${nic}-* thread`);
  threads.forEach((t, i) => run('taskset', ['-pc', String(cpus[i % cpus.length]), String(t.pid)]));
  return threads.map((t) => t.pid);
}

interface ScalingRow {
  path: PathName;
  vcpus: number;
  pair: number;
  delivered_pps: number;
  per_cpu: number[];
}

async function runScaling(gens: Agent[], sink: Agent, t: Traffic): Promise<{ rows: ScalingRow[]; threads: Record<string, number> }> {
  const threads: Record<string, number> = {};
  for (const [ns, nic] of [[NS.dn, 'dn-in'], [NS.dk, 'dk-in']] as const) threads[nic] = threadedNapi(ns, nic, [0, 1]).length;
  const rows: ScalingRow[] = [];
  for (let pair = 1; pair <= OPT.pairs; pair++)
    for (const path of ['native', 'kernel_ecmp'] as const)
      for (const n of [1, 2]) {
        const m = await measure(gens.slice(0, n), sink, path, t, OPT.seconds);
        rows.push({ path, vcpus: n, pair, delivered_pps: Math.round(m.delivered), per_cpu: m.perCpu });
        if (!OPT.json) process.stderr.write(`scaling pair ${pair}: ${path} on ${n} vCPU: ${mpps(m.delivered)} Mpps (sink per CPU: ${m.perCpu.join(', ')})\n`);
      }
  for (const [ns, nic] of [[NS.dn, 'dn-in'], [NS.dk, 'dk-in']] as const) nsExec(ns, 'sh', '-c', `echo 0 > /sys/class/net/${nic}/threaded`);
  return { rows, threads };
}

// ---- where the vCPUs sit ---------------------------------------------------------------

/** lscpu's summary, and a cache line's round trip between vCPU 0 and 1 (bench/pingpong.c). */
function placement(): { lscpu: Record<string, string>; pingpong_ns: number | null; pingpong_note?: string } {
  const lscpu: Record<string, string> = {};
  for (const line of run('lscpu', []).split('\n')) {
    const m = /^([^:]+):\s+(.*)$/.exec(line);
    if (m && ['Model name', 'CPU(s)', 'Thread(s) per core', 'Core(s) per socket', 'Socket(s)', 'NUMA node(s)', 'Hypervisor vendor', 'L3 cache', 'Vulnerability Spec rstack overflow'].includes(m[1]!)) lscpu[m[1]!] = m[2]!;
  }
  const bin = `${ROOT}out/bench/pingpong`;
  try {
    if (!existsSync(bin)) {
      mkdirSync(`${ROOT}out/bench`, { recursive: true });
      run('cc', ['-O2', '-pthread', '-o', bin, `${ROOT}bench/pingpong.c`]);
    }
    return { lscpu, pingpong_ns: Number(run(bin, ['0', '1']).trim()) };
  } catch (err) {
    return { lscpu, pingpong_ns: null, pingpong_note: (err as Error).message };
  }
}

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const where = placement();
  labUp();
  const sink = new Agent('sink', NS.sink, '0-1');
  await sink.call({ cmd: 'attach', nics: ['s-s', 's-n', 's-g', 's-k'] });
  const gens = [new Agent('gen', NS.gen, '0'), new Agent('gen', NS.gen, '1')];
  await Promise.all(gens.map((g) => g.ready));
  const rows: PairRow[] = [];
  const summaries: CaseSummary[] = [];
  let scaling: Awaited<ReturnType<typeof runScaling>> | null = null;
  const base = { flows: FLOWS, vips: 1 };

  await configureDirectors(1, BACKENDS);
  if (OPT.cases.includes('base')) {
    const r = await runCase('base', gens[0]!, sink, base);
    rows.push(...r.rows);
    summaries.push(r.summary);
  }
  if (OPT.cases.includes('scaling')) scaling = await runScaling(gens, sink, base);
  if (OPT.cases.includes('churn')) {
    // every slot changes owner (to backends that were not there), and every frame is a new flow: each one
    // is written into the flow table, full after the first 262,144
    await configureDirectors(1, OLD_BACKENDS);
    await configureDirectors(1, BACKENDS);
    const r = await runCase('churn', gens[0]!, sink, { flows: 0, vips: 1 });
    rows.push(...r.rows);
    summaries.push(r.summary);
    const st = readStatus(DataPlane.openPinned(DIRECTORS[0]!.pinDir), DIRECTORS[0]!.pinDir);
    (r.summary as CaseSummary & { flow_table?: unknown }).flow_table = st.flowTable;
  }
  if (OPT.cases.includes('vips')) {
    await configureDirectors(10_000, BACKENDS);
    const r = await runCase('vips10k', gens[0]!, sink, { flows: FLOWS, vips: 10_000 });
    rows.push(...r.rows);
    summaries.push(r.summary);
  }
  for (const g of gens) g.close();
  sink.close();
  report(where, rows, summaries, scaling);
}

const TARGET_RATIO = 2.7;
const TARGET_NS = 45;

function report(where: ReturnType<typeof placement>, rows: PairRow[], summaries: CaseSummary[], scaling: Awaited<ReturnType<typeof runScaling>> | null): void {
  const targets = summaries.map((s) => ({
    case: s.case,
    ratio_vs_kernel: { target: TARGET_RATIO, got: s.ratio.native_vs_kernel!, met: s.ratio.native_vs_kernel! >= TARGET_RATIO },
    ratio_vs_kernel_ecmp: { target: TARGET_RATIO, got: s.ratio.native_vs_kernel_ecmp!, met: s.ratio.native_vs_kernel_ecmp! >= TARGET_RATIO },
    director_ns: { target: TARGET_NS, got: s.director_ns_per_packet.native!, met: s.director_ns_per_packet.native! <= TARGET_NS },
  }));
  const scaleSummary = scaling
    ? (['native', 'kernel_ecmp'] as const).map((path) => {
        const one = median(scaling.rows.filter((r) => r.path === path && r.vcpus === 1).map((r) => r.delivered_pps));
        const two = median(scaling.rows.filter((r) => r.path === path && r.vcpus === 2).map((r) => r.delivered_pps));
        const split = scaling.rows.filter((r) => r.path === path && r.vcpus === 2).map((r) => r.per_cpu);
        return { path, one_vcpu_mpps: +(one / 1e6).toFixed(3), two_vcpus_mpps: +(two / 1e6).toFixed(3), scaling: +(two / one).toFixed(2), sink_per_cpu_two_vcpus: split };
      })
    : null;
  if (OPT.json) {
    console.log(JSON.stringify({ placement: where }));
    for (const r of rows) console.log(JSON.stringify(r));
    for (const s of summaries) console.log(JSON.stringify({ summary: s }));
    if (scaling) {
      for (const r of scaling.rows) console.log(JSON.stringify({ scaling: r }));
      console.log(JSON.stringify({ scaling_summary: scaleSummary, napi_threads: scaling.threads }));
    }
    console.log(JSON.stringify({ targets }));
    return;
  }
  console.log(`xdplb through a real director, routed two-NIC lab in namespaces (${PREFIX}-*): ${OPT.pairs} pairs x ${OPT.seconds} s per path, 64-byte TCP+UDP frames`);
  console.log(`vCPUs: ${Object.entries(where.lscpu).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  console.log(`cache-line round trip vCPU0<->vCPU1: ${where.pingpong_ns === null ? `not measured (${where.pingpong_note})` : `${where.pingpong_ns.toFixed(0)} ns`}`);
  console.log('one pair = every path one after the other, all on vCPU 0; medians over the pairs (this machine is shared: pairs vary)');
  const cols = ['case', 'sink S', 'native A', 'generic A', 'kernel B', 'ecmp B', 'ns/pkt nat', 'ns/pkt gen', 'ns/pkt krn', 'A/B', 'A/B ecmp'];
  console.log(cols.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(10))).join(' '));
  for (const s of summaries) {
    const d = s.delivered_mpps;
    const n = s.director_ns_per_packet;
    console.log(
      [s.case.padEnd(8), ...[d.sink, d.native, d.generic, d.kernel, d.kernel_ecmp].map((x) => x!.toFixed(2).padStart(10)), ...[n.native, n.generic, n.kernel].map((x) => x!.toFixed(1).padStart(10)), ...[s.ratio.native_vs_kernel, s.ratio.native_vs_kernel_ecmp].map((x) => `${x!.toFixed(2)}x`.padStart(10))].join(' '),
    );
  }
  console.log('(Mpps delivered to the sink; offered and every pair: --json)');
  for (const s of summaries)
    console.log(`${s.case}: per pair ns/pkt native ${s.per_pair.map((p) => p.ns.native!.toFixed(1)).join(' ')}; A/B ${s.per_pair.map((p) => p.ratio.native_vs_kernel!.toFixed(2)).join(' ')}; A/B ecmp ${s.per_pair.map((p) => p.ratio.native_vs_kernel_ecmp!.toFixed(2)).join(' ')}`);
  const churn = summaries.find((s) => s.case === 'churn') as (CaseSummary & { flow_table?: { entries: number; capacity: number } }) | undefined;
  if (churn?.flow_table) console.log(`churn: flow table after the run ${churn.flow_table.entries} of ${churn.flow_table.capacity}`);
  if (scaleSummary) {
    console.log(`scaling (directors' receiving NIC: 2 queues, threaded NAPI, a thread per queue pinned to vCPU 0 and 1; one generator, then one per vCPU):`);
    for (const s of scaleSummary)
      console.log(`  ${s.path.padEnd(12)} 1 vCPU ${s.one_vcpu_mpps.toFixed(2)} Mpps, 2 vCPUs ${s.two_vcpus_mpps.toFixed(2)} Mpps (x${s.scaling.toFixed(2)}); sink frames per CPU with 2: ${s.sink_per_cpu_two_vcpus.map((c) => c.join('/')).join(', ')}`);
  }
  console.log(`targets: delivered >= ${TARGET_RATIO}x the kernel's forwarding, <= ${TARGET_NS} ns of director per packet (native)`);
  for (const t of targets)
    console.log(
      `  ${t.case}: A/B ${t.ratio_vs_kernel.got.toFixed(2)}x ${t.ratio_vs_kernel.met ? 'met' : 'NOT met'}, A/B ecmp ${t.ratio_vs_kernel_ecmp.got.toFixed(2)}x ${t.ratio_vs_kernel_ecmp.met ? 'met' : 'NOT met'}, ${t.director_ns.got.toFixed(1)} ns ${t.director_ns.met ? 'met' : 'NOT met'}`,
    );
}

let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  labDown();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
try {
  await main();
} finally {
  cleanup();
}
