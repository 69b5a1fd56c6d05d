// The data plane fuzzed: 1,000,000 generated frames (valid, mutated, cut)
// through the real program with BPF_PROG_TEST_RUN, each checked against the
// reference model (test/fuzz/model.ts, written from SPEC §2 and the README):
// never XDP_ABORTED, the verdict the model gives, a forwarded frame sent to
// the destination the model names with exactly the bytes it predicts (only
// the MACs changed), every other frame untouched; after every batch of
// 10,000 the counters (global by reason, per service and per destination)
// moved as the model counted, and the kernel's flow table equals the
// model's. The maps are filled by the real Reconciler and change between
// batches. One process per core, in a network namespace of their own with a
// veth pair (a backend behind "another NIC": XDP_REDIRECT).
//
// XDPLB_FUZZ_SEED replays a run (it is printed); XDPLB_FUZZ_CASES changes
// the count. A failure prints the seed, each disagreement's frame in hex and
// how to replay it.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { FuzzReport } from './fuzz.ts';

const NS = 'xdplb-test-fuzz';
const NIC = 'other0';
const RUNNER = fileURLToPath(new URL('./run.ts', import.meta.url));
const CASES = Number(process.env.XDPLB_FUZZ_CASES ?? 1_000_000);
const SEED = Number(process.env.XDPLB_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BATCH = 10_000;
const WORKERS = Math.max(1, Math.min(availableParallelism(), 4));

before(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', NS, 'link', 'add', NIC, 'type', 'veth', 'peer', 'name', 'other1']);
  execFileSync('ip', ['-n', NS, 'link', 'set', NIC, 'up']);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'other1', 'up']);
});
after(() => void spawnSync('ip', ['netns', 'del', NS]));

function worker(seed: number, cases: number): Promise<FuzzReport> {
  return new Promise((resolve, reject) => {
    execFile(
      'nsenter',
      [`--net=/var/run/netns/${NS}`, '--', process.execPath, RUNNER, String(seed), String(cases), String(BATCH), NIC],
      { maxBuffer: 64 << 20, env: process.env },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`fuzzer ${seed} failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as FuzzReport);
        } catch (e) {
          reject(new Error(`fuzzer ${seed} printed no report: ${String(e)}\n${stdout.slice(0, 2000)}\n${stderr}`));
        }
      },
    );
  });
}

// the defects it found are test/dataplane/fuzz-found.test.ts, A-H
test(`${CASES.toLocaleString('en')} fuzzed frames: the program agrees with the model on every one`, async (t) => {
  const started = performance.now();
  const share = Math.ceil(CASES / WORKERS);
  const reports = await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(SEED + w, Math.min(share, CASES - w * share))));
  const seconds = (performance.now() - started) / 1000;
  const cases = reports.reduce((n, r) => n + r.cases, 0);
  const sum = (pick: (r: FuzzReport) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(pick(r))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  t.diagnostic(
    `seed ${SEED} (workers ${reports.map((r) => r.seed).join(', ')}): ${cases} frames in ${seconds.toFixed(1)} s, ` +
      `${Math.round(cases / seconds)} frames/s (${reports.map((r) => `${r.casesPerSecond}/s`).join(' + ')}); ${reports.reduce((n, r) => n + r.changes, 0)} changes between batches`,
  );
  t.diagnostic(`verdicts ${JSON.stringify(sum((r) => r.verdicts))}`);
  t.diagnostic(`reasons ${JSON.stringify(sum((r) => r.reasons))}`);
  const disagreements = reports.reduce((n, r) => n + r.disagreements, 0);
  const lines: string[] = [];
  if (disagreements > 0) {
    lines.push(`${disagreements} frames the program and the model disagree on, by kind and the model's reason:`);
    for (const [k, v] of Object.entries(sum((r) => r.byCause)).sort((a, b) => b[1] - a[1])) lines.push(`  ${v}  ${k}`);
    lines.push(
      `the first of each (replay: XDPLB_FUZZ_SEED=${SEED} node --test test/fuzz/dataplane.test.ts; one worker: ` +
        `node test/fuzz/run.ts SEED ${share} ${BATCH} ${NIC}, in a network namespace with a veth named ${NIC}):`,
    );
    for (const d of reports.flatMap((r) => r.first).slice(0, 30))
      lines.push(`  seed ${d.seed} batch ${d.batch} frame ${d.index}: ${d.what}\n    model: ${d.expected.why}\n    frame ${d.frame}${d.got.out ? `\n    out   ${d.got.out}` : ''}`);
  }
  const counters = reports.flatMap((r) => r.counterMismatches.map((m) => `seed ${r.seed} ${m}`));
  if (counters.length > 0) lines.push(`counters that did not add up (${counters.length}):`, ...counters.slice(0, 20).map((c) => `  ${c}`));
  const flows = reports.flatMap((r) => r.flowMismatches.map((m) => `seed ${r.seed} ${m}`));
  if (flows.length > 0) lines.push('flow tables that differ:', ...flows.map((f) => `  ${f}`));
  assert.equal(lines.length, 0, lines.join('\n'));
  assert.equal(cases, CASES, 'every frame was run');
  assert.equal(sum((r) => r.verdicts).ABORTED ?? 0, 0, 'never XDP_ABORTED');
});
