// The data-plane fuzzer: frames from the seeded generator through the real
// program (BPF_PROG_TEST_RUN: one run per frame, in order, 500 frames per
// addon job), each checked against the reference model, in batches of
// 10,000 (by default). Between batches the world changes
// through the real Reconciler and the model reads the maps again. After each
// batch the program's counters (global ones by name, per service and per
// destination) must have moved exactly as the model tallied; from time to
// time the kernel's flow table must equal the model's, and both are emptied
// (a bounded table: the LRU must never have to evict, which no model could
// predict).
import { globalStatNames } from '../../src/dataplane/dataplane.ts';
import { trafficAt } from '../../src/dataplane/abi.ts';
import { FrameGen } from './frames.ts';
import { Model, type Prediction, type Verdict } from './model.ts';
import { Rng } from './rng.ts';
import { flowKeyHex, World } from './world.ts';

const VERDICTS: Verdict[] = ['ABORTED', 'DROP', 'PASS', 'TX', 'REDIRECT'];
/** Counters the model does not predict: which lookups take the hash map depends on the index's collisions. */
const NOT_MODELLED = new Set(['service_slow_lookup']);
/** Flows the model keeps before both tables are compared and emptied (well below the LRU's capacity). */
const FLOW_LIMIT = 30_000;
/** Frames per BPF_PROG_TEST_RUN job (testRunBatch: one worker round trip for them all, run in order). */
const CHUNK = 500;

interface Chunk {
  frames: Buffer[];
  wants: Prediction[];
  packed: Buffer;
  lengths: Buffer;
}

export interface FuzzOptions {
  seed: number;
  cases: number;
  batch: number;
  /** An interface of this namespace for backends reached with XDP_REDIRECT (null: none). */
  otherNic: string | null;
  /** Stop after this many disagreements (details are kept for the first ones). */
  maxFailures?: number;
  /**
   * Read the global counters after every frame and check the frame's own
   * reason (a few times slower): to find the frame behind a batch's counter
   * mismatch.
   */
  perFrameCounters?: boolean;
}

export interface Disagreement {
  seed: number;
  batch: number;
  index: number;
  what: string;
  frame: string;
  expected: { verdict: Verdict; reason: string; why: string; dest?: number; out?: string };
  got: { verdict: Verdict; out?: string };
}

export interface FuzzReport {
  seed: number;
  cases: number;
  seconds: number;
  casesPerSecond: number;
  verdicts: Record<string, number>;
  reasons: Record<string, number>;
  disagreements: number;
  /** Disagreements by kind: "expected → got". */
  kinds: Record<string, number>;
  /** Disagreements by kind and the model's reason (numbers left out); the first two of each are in `first`. */
  byCause: Record<string, number>;
  first: Disagreement[];
  counterMismatches: string[];
  flowMismatches: string[];
  changes: number;
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const world = await World.create(new Rng(Rng.derive(o.seed, 0xc0ffee)), o.otherNic);
  const model = new Model(world.view());
  const names = globalStatNames();
  const report: FuzzReport = {
    seed: o.seed,
    cases: 0,
    seconds: 0,
    casesPerSecond: 0,
    verdicts: {},
    reasons: {},
    disagreements: 0,
    kinds: {},
    byCause: {},
    first: [],
    counterMismatches: [],
    flowMismatches: [],
    changes: 0,
  };
  const maxFailures = o.maxFailures ?? 1000;
  const batches = Math.ceil(o.cases / o.batch);
  for (let batch = 0; batch < batches && report.disagreements < maxFailures; batch++) {
    const rng = new Rng(Rng.derive(o.seed, batch + 1));
    if (batch > 0) {
      const steps = 1 + rng.int(3);
      for (let i = 0; i < steps; i++) world.step(rng);
      report.changes += steps;
    }
    model.view = world.view();
    const gen = new FrameGen(rng, world.knowledge());
    const before = snapshot(world);
    const disagreementsBefore = report.disagreements;
    model.resetTallies();
    const n = Math.min(o.batch, o.cases - batch * o.batch);
    const last = { global: o.perFrameCounters ? world.dp.globalStats() : {} };
    const chunkSize = o.perFrameCounters ? 1 : CHUNK;
    const chunk = (count: number): Chunk => {
      const frames: Buffer[] = [];
      const wants: Prediction[] = [];
      const lengths = Buffer.alloc(4 * count);
      for (let i = 0; i < count; i++) {
        const f = gen.next();
        frames.push(f);
        wants.push(model.run(f));
        lengths.writeUInt32LE(f.length, 4 * i);
      }
      return { frames, wants, packed: Buffer.concat(frames), lengths };
    };
    const run = (c: Chunk) => world.dp.program.testRunBatch(c.packed, c.lengths);
    let cur: Chunk | null = chunk(Math.min(chunkSize, n));
    let pending = run(cur);
    let done = 0;
    while (cur) {
      // the next chunk is made and predicted while this one runs; it runs once this one is done
      const made: number = done + cur.frames.length;
      const next: Chunk | null = made < n ? chunk(Math.min(chunkSize, n - made)) : null;
      const got = await pending;
      const counters = o.perFrameCounters ? counted(world, names, last) : null;
      if (next) pending = run(next);
      let at = 0;
      for (let i = 0; i < cur.frames.length; i++) {
        const len = got.lengths.readUInt32LE(4 * i);
        const out = got.packets.subarray(at, at + len);
        at += len;
        check(report, o.seed, batch, done + i, cur.frames[i]!, cur.wants[i]!, VERDICTS[got.retvals.readUInt32LE(4 * i)] ?? 'ABORTED', out, counters);
      }
      done = made;
      cur = next;
    }
    report.cases += n;
    compareCounters(world, model, before, names, report, batch);
    // after a disagreement the tables may differ by its effect: the model takes the kernel's and goes on
    const full = model.flows.size > FLOW_LIMIT;
    if (report.disagreements > disagreementsBefore) {
      if (full) {
        world.clearFlows();
        model.flows.clear();
      } else model.setFlows(world.kernelFlows().values());
    } else if (full || batch === batches - 1) compareFlows(world, model, report, batch, full);
  }
  report.seconds = (performance.now() - started) / 1000;
  report.casesPerSecond = Math.round(report.cases / report.seconds);
  return report;
}

/** The global counters one frame added to (names, sorted), from the last read. */
function counted(world: World, names: readonly string[], last: { global: Record<string, bigint> }): string[] {
  const now = world.dp.globalStats();
  const out: string[] = [];
  for (const n of names) if (!NOT_MODELLED.has(n) && now[n] !== last.global[n]) out.push(n);
  last.global = now;
  return out.sort();
}

function check(report: FuzzReport, seed: number, batch: number, index: number, frame: Buffer, want: Prediction, verdict: Verdict, out: Buffer, counters: string[] | null): void {
  report.verdicts[verdict] = (report.verdicts[verdict] ?? 0) + 1;
  report.reasons[want.reason] = (report.reasons[want.reason] ?? 0) + 1;
  let what: string | null = null;
  if (verdict === 'ABORTED') what = 'XDP_ABORTED';
  else if (verdict !== want.verdict) what = `${want.verdict} (${want.reason}) → ${verdict}`;
  else if (!out.equals(want.out)) what = verdict === 'TX' || verdict === 'REDIRECT' ? `${verdict}: other bytes (backend or rewrite)` : `${verdict}: frame changed`;
  else if (counters && counters.join(' ') !== [want.reason, ...want.also].sort().join(' ')) what = `counted ${counters.join(' ')}, not ${[want.reason, ...want.also].sort().join(' ')}`;
  if (!what) return;
  report.disagreements++;
  report.kinds[what] = (report.kinds[what] ?? 0) + 1;
  const kind = `${what} | ${want.why.replace(/[0-9a-f]{8,}|\d+/g, '#')}`;
  const seen = (report.byCause[kind] = (report.byCause[kind] ?? 0) + 1);
  if (seen <= 2 && report.first.length < 200)
    report.first.push({
      seed,
      batch,
      index,
      what,
      frame: frame.toString('hex'),
      expected: { verdict: want.verdict, reason: want.reason, why: want.why, ...(want.dest !== undefined ? { dest: want.dest } : {}), ...(want.out !== frame ? { out: want.out.toString('hex') } : {}) },
      got: { verdict, ...(out.equals(frame) ? {} : { out: out.toString('hex') }) },
    });
}

interface Snapshot {
  global: Record<string, bigint>;
  services: BigUint64Array;
  dests: BigUint64Array;
}

const TRACKED_SERVICES = 64;
const TRACKED_DESTS = 1024;

function snapshot(world: World): Snapshot {
  return { global: world.dp.globalStats(), services: world.dp.serviceTrafficAll(TRACKED_SERVICES), dests: world.dp.destTrafficAll(TRACKED_DESTS) };
}

function compareCounters(world: World, model: Model, before: Snapshot, names: readonly string[], report: FuzzReport, batch: number): void {
  const after = snapshot(world);
  for (const name of names) {
    if (NOT_MODELLED.has(name)) continue;
    const got = Number(after.global[name]! - before.global[name]!);
    const want = model.tally.get(name) ?? 0;
    if (got !== want) report.counterMismatches.push(`batch ${batch}: ${name} +${got}, the model counted +${want}`);
  }
  for (const [kind, count, a, b] of [
    ['service', TRACKED_SERVICES, after.services, before.services],
    ['dest', TRACKED_DESTS, after.dests, before.dests],
  ] as const) {
    for (let id = 0; id < count; id++) {
      const x = trafficAt(a, id);
      const y = trafficAt(b, id);
      const got = { packets: Number(x.packets - y.packets), bytes: Number(x.bytes - y.bytes), newFlows: Number(x.newFlows - y.newFlows) };
      const want = model.traffic.get(`${kind} ${id}`) ?? { packets: 0, bytes: 0, newFlows: 0 };
      if (got.packets !== want.packets || got.bytes !== want.bytes || got.newFlows !== want.newFlows)
        report.counterMismatches.push(`batch ${batch}: ${kind} ${id} +${got.packets} packets, +${got.bytes} bytes, +${got.newFlows} new flows; the model counted +${want.packets}, +${want.bytes}, +${want.newFlows}`);
    }
  }
}

/** The kernel's flow table against the model's (then both emptied, when `clear`). */
function compareFlows(world: World, model: Model, report: FuzzReport, batch: number, clear: boolean): void {
  const kernel = world.kernelFlows();
  let missing = 0;
  let differ = 0;
  for (const f of model.flows.values()) {
    const k = kernel.get(flowKeyHex(f.key));
    if (!k) missing++;
    else if (k.dest !== f.dest || k.service !== f.service) differ++;
    kernel.delete(flowKeyHex(f.key));
  }
  if (missing || differ || kernel.size)
    report.flowMismatches.push(`after batch ${batch}: of ${model.flows.size} flows the model recorded, ${missing} are not in the kernel's table and ${differ} name another destination; the kernel has ${kernel.size} the model does not`);
  if (clear) {
    world.clearFlows();
    model.flows.clear();
  }
}
