// One fuzzer process: `node test/fuzz/run.ts SEED CASES BATCH [OTHER_NIC]`,
// printing its report as one JSON line. dataplane.test.ts runs one per core,
// in a network namespace of their own; run it by hand to replay a seed.
// XDPLB_FUZZ_PER_FRAME=1 checks the global counters after every frame (to
// find the frame behind a batch's counter mismatch); XDPLB_FUZZ_MAX_FAILURES
// stops after that many disagreements (default 1000).
import { fuzz } from './fuzz.ts';

const [seed = '1', cases = '100000', batch = '10000', otherNic] = process.argv.slice(2);
const report = await fuzz({
  seed: Number(seed),
  cases: Number(cases),
  batch: Number(batch),
  otherNic: otherNic ?? null,
  perFrameCounters: process.env.XDPLB_FUZZ_PER_FRAME === '1',
  maxFailures: Number(process.env.XDPLB_FUZZ_MAX_FAILURES ?? 1000),
});
process.stdout.write(`${JSON.stringify(report)}\n`);
