// What the director-redundancy lab tests watch, whatever elects the active
// director (a Lease, keepalived): every claim of the VIP on the segment
// (tcpdump on the lab's bridge: an ARP reply for the VIP, or a gratuitous
// ARP), a router's questions (`arping` from the client every 100 ms),
// continuous new-connection HTTP load and held keep-alive connections from
// the client (src/lab/client.ts). "Never two owners" is checked on what the
// segment saw: once the new owner claims the VIP, the old one never does
// again, and the old one's last claim comes before it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inNs, LAB, labDirector, type DirectorId } from '../../src/lab/lab.ts';

const CLIENT = fileURLToPath(new URL('../../src/lab/client.ts', import.meta.url));
const URL_ = `http://${LAB.vip}/`;

/** tcpdump on the lab's bridge, recording every ARP frame with its time and MACs. */
export interface ClaimCapture {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Every claim of the VIP on the wire since `since` (Unix ms): [time, MAC]. */
  claims(since: number): [number, string][];
  stop(): void;
}

/** Starts the capture; resolves once tcpdump listens. */
export async function captureClaims(): Promise<ClaimCapture> {
  const child = spawn('nsenter', [`--net=/var/run/netns/${LAB.bridgeNs}`, '--', 'tcpdump', '-i', 'br0', '-n', '-e', '-l', '-tt', '--immediate-mode', 'arp'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (c: Buffer) => {
    const text = partial + c.toString();
    const split = text.split('\n');
    partial = split.pop()!;
    lines.push(...split);
  });
  await new Promise((r) => child.stderr!.once('data', r)); // "listening on br0"
  const reply = new RegExp(`Reply ${LAB.vip.replaceAll('.', '\\.')} is-at ([0-9a-f:]{17})`);
  return {
    child,
    lines,
    claims(since) {
      const out: [number, string][] = [];
      for (const line of lines) {
        const at = Number(line.slice(0, line.indexOf(' '))) * 1000;
        if (!(at >= since)) continue;
        const src = / ([0-9a-f:]{17}) > /.exec(line)?.[1];
        const gratuitous = line.includes(`Request who-has ${LAB.vip} tell ${LAB.vip}`) ? src : undefined;
        const mac = reply.exec(line)?.[1] ?? gratuitous;
        if (mac) out.push([at, mac]);
      }
      return out;
    },
    stop() {
      child.kill('SIGKILL');
    },
  };
}

/**
 * A router's questions: who has the VIP, every 100 ms, from the client (arping takes whole seconds between
 * its own requests). A process group of its own: stop it with process.kill(-pid), the loop and its arpings.
 */
export function startProber(): ChildProcess {
  const argv = inNs(LAB.clientNs, ['sh', '-c', `while :; do arping -c 1 -w 1 -b -q -I ${LAB.nic} ${LAB.vip} & sleep 0.1; done`]);
  return spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true });
}

/** The claims since `since` show one handover from `from` to `to`, never both: every claim by `from` comes before every claim by `to`. */
export function assertOneHandover(capture: ClaimCapture, since: number, from: DirectorId, to: DirectorId): { lastOld: number | null; firstNew: number } {
  const [fromMac, toMac] = [labDirector(from).mac, labDirector(to).mac];
  const seen = capture.claims(since);
  const olds = seen.filter(([, m]) => m === fromMac).map(([t]) => t);
  const news = seen.filter(([, m]) => m === toMac).map(([t]) => t);
  const strangers = seen.filter(([, m]) => m !== fromMac && m !== toMac);
  assert.deepEqual(strangers, [], 'no other MAC claims the VIP');
  assert.ok(news.length > 0, `director ${to} claims the VIP on the wire`);
  const earlier = capture.claims(since - 1000).filter(([t, m]) => t < since && m === fromMac);
  assert.ok(earlier.length >= 3, `the prober's questions were answered by director ${from} before (${earlier.length} replies in the last second)`);
  const lastOld = olds.length ? Math.max(...olds) : null;
  const firstNew = Math.min(...news);
  assert.ok(lastOld === null || lastOld < firstNew, `director ${from} claimed the VIP at ${lastOld}, after director ${to} did at ${firstNew}: two owners`);
  return { lastOld, firstNew };
}

export interface Load {
  stop(): Promise<{ ok: number; failures: string[]; edges: [number, boolean][] }>;
}

/** New-connection HTTP requests from the client until stopped, each with a timeout of timeoutMs. */
export function continuousLoad(timeoutMs: number): Load {
  const argv = inNs(LAB.clientNs, [process.execPath, CLIENT, 'continuous', URL_, String(timeoutMs)]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  return {
    async stop() {
      const done = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out) as { ok: number; failures: string[]; edges: [number, boolean][] };
    },
  };
}

/** The longest time requests failed: from the start of a first failure to the start of the next request that succeeded. */
export function longestGap(edges: [number, boolean][]): number {
  let longest = 0;
  let from: number | null = null;
  for (const [at, ok] of edges) {
    if (!ok && from === null) from = at;
    if (ok && from !== null) {
      longest = Math.max(longest, at - from);
      from = null;
    }
  }
  return from === null ? longest : Infinity;
}

/** N keep-alive connections from the client; probe() sends a request on each. */
export function heldConnections(n: number): { probe(): Promise<{ ok: boolean; backend?: string; local?: number }[]>; close(): void } {
  const argv = inNs(LAB.clientNs, [process.execPath, CLIENT, 'hold', URL_, String(n)]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  child.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  const next = () => new Promise<string>((r) => waiting.push(r));
  const first = next();
  let started = false;
  return {
    async probe() {
      if (!started) {
        started = true;
        return JSON.parse(await first);
      }
      const line = next();
      child.stdin!.write('probe\n');
      return JSON.parse(await line);
    },
    close() {
      child.stdin!.end();
      child.kill('SIGTERM');
    },
  };
}

type Probe = { ok: boolean; backend?: string; local?: number }[];

/**
 * After a handover to the owner that first claimed at firstNew: every held connection answers as before (the
 * same backend, on the same connection), and the old owner (`from`) claims the VIP no more.
 */
export async function assertKeptAndSilent(capture: ClaimCapture, held: ReturnType<typeof heldConnections>, before: Probe, firstNew: number, from: DirectorId): Promise<void> {
  const after = await held.probe();
  held.close();
  assert.deepEqual(
    after.map((p) => [p.ok, p.backend, p.local]),
    before.map((p) => [p.ok, p.backend, p.local]),
    'every held connection still answers, from the same backend, on the same connection',
  );
  const late = capture.claims(firstNew + 1).filter(([, m]) => m === labDirector(from).mac);
  assert.deepEqual(late, [], `director ${from}'s kernel no longer answers ARP for the VIP`);
}
