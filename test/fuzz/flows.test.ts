// The flow-state rules under random sequences of changes (fast-check): the
// real Reconciler writes a real data plane, and every packet goes through the
// real program with BPF_PROG_TEST_RUN. A TCP connection opened (SYN) on a
// backend keeps that backend for every later packet while the backend is
// active or draining, whatever else changes (backends added, removed,
// drained, undrained, reweighted, failing and passing their checks); a packet
// that finds its backend gone (removed, or down) goes to a backend there is
// (one that takes new flows, or a draining one), never nowhere while one
// takes new flows, and the connection stays there. A SYN always goes to a
// backend that takes new flows. A failure prints fast-check's seed and the shortest sequence of
// changes and packets it shrank to.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { component } from '../../src/log.ts';
import { mustParseIp } from '../../src/model/address.ts';
import type { Facts } from '../../src/model/desired.ts';
import { backendKey } from '../../src/model/keys.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { ethernet, ipv4, MAC, tcp } from '../helpers/packets.ts';

const RUNS = Number(process.env.XDPLB_PROPERTY_RUNS ?? 200);
const SIZE = 257; // small: slots change owner often
const VIP = '10.240.0.201';
const POOL = ['10.240.0.101', '10.240.0.102', '10.240.0.103', '10.240.0.104', '10.240.0.105'];
const FLOWS = 12;
const quiet = component('test').child({}, { level: 'silent' });
const macOf = (address: string) => Buffer.from([2, 0, 0, 0, 1, mustParseIp(address).bytes[3]!]);
const addressOfMac = (mac: Buffer) => POOL.find((a) => macOf(a).equals(mac)) ?? `unknown MAC ${mac.toString('hex')}`;

type Action =
  | { kind: 'add' | 'remove' | 'drain' | 'undrain' | 'down' | 'up'; backend: number }
  | { kind: 'weight'; backend: number; weight: number }
  | { kind: 'open' | 'send'; flow: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constantFrom('add', 'remove', 'drain', 'undrain', 'down', 'up'), backend: fc.nat({ max: POOL.length - 1 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('weight'), backend: fc.nat({ max: POOL.length - 1 }), weight: fc.integer({ min: 1, max: 4 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constantFrom('open', 'send', 'send'), flow: fc.nat({ max: FLOWS - 1 }) }), weight: 3 },
) as fc.Arbitrary<Action>;

interface Backend {
  weight: number;
  draining: boolean;
}

/** The director: one DataPlane and its Reconciler, reset before each run. */
let dp: DataPlane;
let r: Reconciler;
const down = new Set<string>();

before(async () => {
  dp = await DataPlane.load({ maglevSize: SIZE, maxServices: 4, maxDests: 64, maxFlows: 4096 });
  const facts: Facts = {
    macOf: (a) => macOf(a.text),
    healthy: (s, a) => !down.has(backendKey(s.name, a.text)),
    health: (s, a) => (down.has(backendKey(s.name, a.text)) ? 'down' : 'up'),
  };
  r = new Reconciler(observe(dp), {
    writer: dp,
    observe: () => observe(dp),
    context: () => ({ maglevSize: SIZE, maxServices: 4, maxDests: 64, directorMac: MAC.director, tableCache: new Map() }),
    facts,
    log: quiet,
  });
});

function apply(backends: Map<string, Backend>): void {
  const services: ConfigInput['services'] = [
    { name: 'web', vip: VIP, port: 80, backends: [...backends].map(([address, b]) => ({ address, weight: b.weight, state: b.draining ? 'draining' : 'active' })) },
  ];
  r.setConfig(validateConfig({ maglevTableSize: SIZE, hashSeed: 11, capacity: { services: 4, backends: 64 }, services }));
  r.markDirty(['web']);
  r.flush('property');
}

/** Where a packet of flow f went: a backend's address, or null (not forwarded). */
async function send(f: number, flags: 'syn' | 'ack'): Promise<string | null> {
  const frame = ethernet(ipv4(`198.51.100.${10 + f}`, VIP, tcp(40000 + 7 * f, 80, flags)));
  const res = await dp.program.testRun(frame, 1);
  return res.retval === 3 ? addressOfMac(res.packet.subarray(0, 6)) : null;
}

/** Runs one sequence; throws (with the history) where a rule is broken. */
async function run(actions: readonly Action[]): Promise<void> {
  // a fresh start: no service, no flow, every backend healthy
  down.clear();
  r.setConfig(validateConfig({ maglevTableSize: SIZE, hashSeed: 11, capacity: { services: 4, backends: 64 }, services: [] }));
  r.flush('reset');
  for (const k of [...dpFlowKeys()]) dp.maps.flows.delete(k);
  const backends = new Map<string, Backend>(POOL.slice(0, 3).map((a) => [a, { weight: 1, draining: false }]));
  apply(backends);
  /** Each open flow's backend; null: its backend was removed, the next packet reschedules it. */
  const flows = new Map<number, string | null>();
  const history: string[] = [];
  const takesNew = () => [...backends].filter(([a, b]) => !b.draining && !down.has(backendKey('web', a))).map(([a]) => a);
  /** Whether a backend can keep its connections: configured, and not failing its check (active or draining). */
  const usable = (a: string) => backends.has(a) && !down.has(backendKey('web', a));
  /** A removed backend's connections are gone with it (a backend added back later is a new one). */
  const orphan = (a: string) => {
    for (const [f, on] of flows) if (on === a) flows.set(f, null);
  };
  for (const act of actions) {
    history.push(JSON.stringify(act));
    const fail = (what: string) => assert.fail(`${what}\n  after: ${history.join(' → ')}`);
    if (act.kind === 'open' || act.kind === 'send') {
      const on = flows.get(act.flow);
      if (act.kind === 'open' || on === undefined) {
        const got = await send(act.flow, 'syn');
        const ok = takesNew();
        if (ok.length === 0) {
          if (got !== null) fail(`a SYN went to ${got} while no backend takes new flows`);
          flows.delete(act.flow);
        } else {
          if (got === null || !ok.includes(got)) fail(`a SYN of flow ${act.flow} went to ${got ?? 'nowhere'}, not to a backend that takes new flows (${ok.join(', ')})`);
          flows.set(act.flow, got);
        }
        history.push(`SYN ${act.flow} → ${got}`);
        continue;
      }
      const got = await send(act.flow, 'ack');
      history.push(`ACK ${act.flow} → ${got}`);
      if (on !== null && usable(on)) {
        if (got !== on) fail(`flow ${act.flow}, established on ${on} (${backends.get(on)!.draining ? 'draining' : 'active'}), went to ${got ?? 'nowhere'}`);
        continue;
      }
      // its backend is gone: the connection cannot be kept; the packet goes to a backend that exists (one that takes
      // new flows, or a draining one that a slot remembers), never nowhere while one takes new flows, and stays there
      const ok = [...backends.keys()].filter(usable);
      if (got === null ? takesNew().length > 0 : !ok.includes(got))
        fail(`flow ${act.flow}, whose backend is gone, went to ${got ?? 'nowhere'}, not to one of the backends there are (${ok.join(', ')})`);
      flows.set(act.flow, got);
      continue;
    }
    const a = POOL[(act as { backend: number }).backend]!;
    const b = backends.get(a);
    switch (act.kind) {
      case 'add':
        if (!b) backends.set(a, { weight: 1, draining: false });
        break;
      case 'remove':
        if (b && backends.size > 1) {
          backends.delete(a);
          orphan(a);
        }
        break;
      case 'drain':
        if (b) b.draining = true;
        break;
      case 'undrain':
        if (b) b.draining = false;
        break;
      case 'weight':
        if (b) b.weight = act.weight;
        break;
      case 'down':
        // its connections are rescheduled by their next packet while it is down; one it gets back before is kept
        if (b) down.add(backendKey('web', a));
        break;
      case 'up':
        down.delete(backendKey('web', a));
        break;
    }
    apply(backends);
  }
}

function* dpFlowKeys(): Generator<Buffer> {
  let after: Buffer | null = null;
  for (;;) {
    const keys = dp.maps.flows.nextKeys(after, 1024);
    yield* keys;
    if (keys.length < 1024) return;
    after = keys[keys.length - 1]!;
  }
}

describe('flow states under random changes', () => {
  test('established flows keep their backend while it is active or draining, and are rescheduled once when it is gone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 60, size: 'max' }), (actions) => run(actions)),
      { numRuns: RUNS },
    );
  });
});
