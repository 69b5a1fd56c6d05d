// The two processes of `npm run bench:lab` that must live inside a lab
// namespace (bench/lab.ts starts them with nsenter and taskset): the
// generator (bench/lab_gen.bpf.c through BPF_PROG_RUN with live frames: its
// bpf_redirect resolves the interface in this process's namespace) and the
// sink (bench/lab_sink.bpf.c attached to the sink's NICs, its links held by
// this process). One JSON request per line on stdin, one answer per line on
// stdout: { id, result } or { id, error }.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { native, type NativeLink, type NativeMap, type NativeProgram } from '../src/dataplane/native.ts';

const role = process.argv[2];
const obj = (name: string) => fileURLToPath(new URL(`../out/bpf/${name}.bpf.o`, import.meta.url));

export interface GenRequest {
  /** The generator's NIC the frames leave through. */
  nic: string;
  dstMac: string;
  /** Flows cycled through; 0: every frame a new flow (churn). */
  flows: number;
  vipBase: string;
  vips: number;
  seconds: number;
  /** CPUs generating at once (frames are numbered across them). */
  ncpus: number;
}

const ipNum = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const macBytes = (m: string) => Buffer.from(m.split(':').map((h) => parseInt(h, 16)));

async function gen(): Promise<(req: Record<string, unknown>) => Promise<unknown>> {
  const o = await native.loadObject(obj('lab_gen'), {});
  const prog: NativeProgram = o.program('lab_gen');
  const config: NativeMap = o.map('config');
  const frame = Buffer.alloc(60);
  return async (req) => {
    if (req.cmd === 'info') return native.interfaceInfo(String(req.nic)).mac.toString('hex').match(/../g)!.join(':');
    const r = req as unknown as GenRequest & { cmd: string };
    const nic = native.interfaceInfo(r.nic);
    const c = Buffer.alloc(32);
    c.writeUInt32LE(nic.ifindex, 0);
    c.writeUInt32LE(r.flows, 4);
    c.writeUInt32LE(ipNum(r.vipBase), 8);
    c.writeUInt32LE(r.vips, 12);
    macBytes(r.dstMac).copy(c, 16);
    nic.mac.copy(c, 22);
    c.writeUInt32LE(r.ncpus, 28);
    config.update(Buffer.alloc(4), c);
    const until = process.hrtime.bigint() + BigInt(Math.round(r.seconds * 1e9));
    const chunk = 1 << 19;
    let sent = 0;
    let ns = 0;
    while (process.hrtime.bigint() < until) {
      const res = await prog.testRunLive(frame, chunk, 64);
      sent += chunk;
      ns += res.wallNs;
    }
    return { sent, ns };
  };
}

async function sink(): Promise<(req: Record<string, unknown>) => Promise<unknown>> {
  const o = await native.loadObject(obj('lab_sink'), {});
  const prog = o.program('lab_sink');
  const counts = o.map('counts');
  const links: NativeLink[] = [];
  const slots = new Map<string, number>();
  return async (req) => {
    if (req.cmd === 'attach') {
      for (const name of req.nics as string[]) {
        const { ifindex } = native.interfaceInfo(name);
        if ([...slots.values()].includes(ifindex % 64)) throw new Error(`${name}: ifindex ${ifindex} shares a counter with another sink NIC`);
        links.push(await prog.attachXdp(ifindex, 'native'));
        slots.set(name, ifindex % 64);
      }
      return null;
    }
    if (req.cmd === 'count') {
      // per slot, the frames each CPU counted
      const key = Buffer.alloc(4);
      return Object.fromEntries(
        [...slots].map(([name, k]) => {
          key.writeUInt32LE(k);
          return [name, (counts.lookupPerCpu(key) ?? []).map((v) => Number(v.readBigUInt64LE(0)))];
        }),
      );
    }
    throw new Error(`unknown request ${String(req.cmd)}`);
  };
}

const handle = role === 'gen' ? await gen() : role === 'sink' ? await sink() : null;
if (!handle) {
  process.stderr.write('usage: lab-agent.ts gen|sink\n');
  process.exit(2);
}
process.stdout.write('{"ready":true}\n');
for await (const line of createInterface({ input: process.stdin })) {
  const req = JSON.parse(line) as Record<string, unknown>;
  try {
    process.stdout.write(`${JSON.stringify({ id: req.id, result: await handle(req) })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ id: req.id, error: (err as Error).message })}\n`);
  }
}
