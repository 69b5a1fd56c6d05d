// Leader election on a Lease (src/k8s/lease.ts): the pure steps, then
// candidates against the real API server, each through a relay of its own
// that can cut it off (a partition: its requests hang). Every candidate
// reports leading and letting go on the one clock of this process, so "never
// two owners" is checked as the order of those moments: one lets go before
// the next leads.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { tcpRelay, type TcpRelay } from '../helpers/relay.ts';
import { eventually } from '../helpers/eventually.ts';
import { LeaseElector, leaseStep, sightingAfter, type LeaseRecord, type LeaseTimings } from '../../src/k8s/lease.ts';
import { component } from '../../src/log.ts';

const record = (holder: string, resourceVersion: string, durationMs = 1000): LeaseRecord => ({ holder, resourceVersion, durationMs, transitions: 0, renewTime: null });

describe('the steps of a candidate (pure)', () => {
  test('no Lease: create it; its own: renew; released: acquire at once', () => {
    assert.equal(leaseStep('a', null, null, 0), 'create');
    assert.equal(leaseStep('a', record('a', '5'), null, 0), 'renew');
    assert.equal(leaseStep('a', record('', '5'), null, 0), 'acquire');
  });

  test("another's Lease is taken only once it has not changed for its duration since first seen, by the candidate's own clock", () => {
    const r = record('b', '7', 1000);
    const seen = sightingAfter(null, r, 5000);
    assert.deepEqual(seen, { resourceVersion: '7', at: 5000 });
    assert.equal(leaseStep('a', r, seen, 5999), 'wait');
    assert.equal(leaseStep('a', r, seen, 6000), 'acquire');
    assert.equal(sightingAfter(seen, r, 5500), seen, 'unchanged: the first sighting counts');
    const renewed = record('b', '8', 1000);
    const again = sightingAfter(seen, renewed, 5900);
    assert.deepEqual(again, { resourceVersion: '8', at: 5900 }, 'renewed: the wait starts again');
    assert.equal(leaseStep('a', renewed, again, 6000), 'wait');
    assert.equal(leaseStep('a', r, null, 1e9), 'wait', 'never seen before: wait a whole duration first');
  });
});

const TIMINGS: LeaseTimings = { leaseDuration: 1000, renewDeadline: 700, retryPeriod: 200 };
let kube: KubeCluster;
const live: { elector: LeaseElector; relay: TcpRelay }[] = [];

before(async () => {
  kube = await startKube();
});
after(async () => {
  for (const c of live) {
    await c.elector.stop();
    await c.relay.stop();
  }
  await kube?.stop();
});

interface Candidate {
  readonly name: string;
  readonly elector: LeaseElector;
  readonly relay: TcpRelay;
  /** [leading, at] as reported, on this process's monotonic clock. */
  readonly changes: [boolean, number][];
  /** The last `until` reported while leading. */
  until: number;
}

/** A kubeconfig of the admin that reaches the API server through this relay. */
function through(relay: TcpRelay): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kube.admin.exportConfig());
  const cluster = kc.getCurrentCluster()!;
  kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${relay.port}` } : c));
  return kc;
}

async function candidate(name: string, lease: string, timings: LeaseTimings = TIMINGS): Promise<Candidate> {
  const relay = await tcpRelay(Number(new URL(kube.server).port));
  const c: Candidate = {
    name,
    relay,
    changes: [],
    until: 0,
    elector: new LeaseElector({
      kubeconfig: through(relay),
      namespace: 'default',
      name: lease,
      identity: name,
      timings,
      log: component(`lease-${name}`),
      onLeading(leading, until) {
        const last = c.changes.at(-1);
        if (!last || last[0] !== leading) c.changes.push([leading, performance.now()]);
        c.until = until;
      },
    }),
  };
  live.push(c);
  return c;
}

/** The leading intervals of all candidates never overlap. */
function assertNeverTwo(cs: readonly Candidate[]): void {
  const intervals = cs.flatMap((c) => {
    const out: [number, number, string][] = [];
    let from: number | null = null;
    for (const [leading, at] of c.changes) {
      if (leading) from = at;
      else if (from !== null) {
        out.push([from, at, c.name]);
        from = null;
      }
    }
    if (from !== null) out.push([from, Infinity, c.name]);
    return out;
  });
  intervals.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < intervals.length; i++)
    assert.ok(intervals[i - 1]![1] <= intervals[i]![0], `${intervals[i - 1]![2]} led until ${intervals[i - 1]![1]}, ${intervals[i]![2]} from ${intervals[i]![0]}: two owners`);
}

const leader = (cs: readonly Candidate[]) => {
  const l = cs.filter((c) => c.elector.isLeading);
  return l.length === 1 ? l[0] : undefined;
};

async function holderOf(lease: string): Promise<string | undefined> {
  return (await kube.admin.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ namespace: 'default', name: lease })).spec?.holderIdentity;
}

describe('candidates against the real API server', () => {
  test('two candidates that start together: exactly one leads, and the Lease names it', async (t) => {
    const cs = [await candidate('a1', 'race'), await candidate('b1', 'race')];
    for (const c of cs) c.elector.start();
    const l = await eventually('one leader', () => leader(cs), { ms: 5000 });
    await new Promise((r) => setTimeout(r, 1500)); // several renewals: it stays the leader
    assert.equal(leader(cs), l);
    assert.equal(await holderOf('race'), l.name);
    assertNeverTwo(cs);
    const other = cs.find((c) => c !== l)!;
    assert.equal(other.elector.view().holder, l.name, 'the standby sees who holds it');
    t.diagnostic(`leader ${l.name}; Lease transitions ${l.elector.view().transitions}`);
  });

  test('the leader cut off from the API server lets go before the standby takes over; then the standby leads', async (t) => {
    const cs = [await candidate('a2', 'cut'), await candidate('b2', 'cut')];
    cs[0]!.elector.start();
    await eventually('a2 leads', () => cs[0]!.elector.isLeading, { ms: 5000 });
    cs[1]!.elector.start();
    await new Promise((r) => setTimeout(r, 1000));
    const [a, b] = cs as [Candidate, Candidate];
    const cutAt = performance.now();
    await a.relay.pause();
    await eventually('b2 leads', () => b.elector.isLeading, { ms: 5000 });
    assert.equal(a.elector.isLeading, false);
    assertNeverTwo(cs);
    const letGo = a.changes.at(-1)![1];
    const took = b.changes.at(-1)![1];
    assert.ok(letGo - cutAt <= TIMINGS.renewDeadline + 100, `a2 let go ${Math.round(letGo - cutAt)} ms after the cut (its last renewal was at most a retry period before)`);
    assert.equal(await holderOf('cut'), 'b2');
    t.diagnostic(`cut → a2 let go: ${Math.round(letGo - cutAt)} ms; cut → b2 leads: ${Math.round(took - cutAt)} ms; margin between them ${Math.round(took - letGo)} ms`);
    // back: a2 does not take it again (the Lease is renewed by b2)
    await a.relay.resume();
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual([a.elector.isLeading, b.elector.isLeading], [false, true]);
    assertNeverTwo(cs);
  });

  test('a graceful stop releases the Lease: the standby leads long before the Lease could have expired', async (t) => {
    // a Lease of 15 s: a standby that leads within a few seconds took a released
    // Lease, not an expired one (whatever the load on the machine)
    const long: LeaseTimings = { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 200 };
    const cs = [await candidate('a3', 'stop', long), await candidate('b3', 'stop', long)];
    cs[0]!.elector.start();
    await eventually('a3 leads', () => cs[0]!.elector.isLeading, { ms: 5000 });
    cs[1]!.elector.start();
    await new Promise((r) => setTimeout(r, 500));
    const [a, b] = cs as [Candidate, Candidate];
    assert.equal(b.elector.isLeading, false, 'b3 waits while a3 renews');
    const stopAt = performance.now();
    await a.elector.stop();
    await eventually('b3 leads', () => b.elector.isLeading, { ms: 5000 });
    const took = b.changes.at(-1)![1] - stopAt;
    assertNeverTwo(cs);
    assert.equal(await holderOf('stop'), 'b3');
    t.diagnostic(`stop → b3 leads: ${Math.round(took)} ms (retry period ${long.retryPeriod} ms; the Lease would have expired after ${long.leaseDuration} ms)`);
  });

  test('while leading, each renewal moves `until` on: renewDeadline after it was sent', async () => {
    const c = await candidate('a4', 'renew');
    c.elector.start();
    await eventually('a4 leads', () => c.elector.isLeading, { ms: 5000 });
    const first = c.until;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(c.until > first, 'renewed');
    assert.ok(c.until - performance.now() <= TIMINGS.renewDeadline && c.until > performance.now(), 'until lies within renewDeadline ahead');
    const v = c.elector.view();
    assert.equal(v.holder, 'a4');
    assert.ok(v.ageSeconds !== null && v.ageSeconds < 0.5, `the Lease was renewed ${v.ageSeconds} s ago`);
  });
});
