// Previous slot owners that lapse (src/director/previous-owners.ts), through
// the real Reconciler and the real program (BPF_PROG_TEST_RUN). After a
// change, a mid-stream packet the program has no entry for goes to the slot's
// previous owner (a flow from before the change), and is recorded. Once the
// flow idle timeout has passed since the change, the previous owners that no
// live flow needs lapse: such a packet then goes to the slot's owner, where a
// flow that began on another director after the change (behind ECMP) has its
// backend. A flow that kept sending keeps its backend until it goes quiet.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { hashFlow, hashToSlot, type FlowKey } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { PreviousOwners } from '../../src/director/previous-owners.ts';
import { component } from '../../src/log.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { lapsedPrev } from '../../src/model/maglev.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { ethernet, ipv4, MAC, tcp } from '../helpers/packets.ts';

const SIZE = 251;
const IDLE_MS = 400;
const VIP = '10.240.0.201';
const POOL = ['10.240.0.101', '10.240.0.102', '10.240.0.103'];
const quiet = component('test').child({}, { level: 'silent' });
const macOf = (address: string) => Buffer.from([2, 0, 0, 0, 1, mustParseIp(address).bytes[3]!]);
const addressOfMac = (mac: Buffer) => POOL.find((a) => macOf(a).equals(mac)) ?? `unknown MAC ${mac.toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dp: DataPlane;
let r: Reconciler;
let owners: PreviousOwners;

before(async () => {
  dp = await DataPlane.load({ maglevSize: SIZE, maxServices: 4, maxDests: 64, maxFlows: 4096 });
  owners = new PreviousOwners({ dp, applied: () => r.state, idleMs: () => IDLE_MS, log: quiet });
  r = new Reconciler(observe(dp), {
    writer: dp,
    observe: () => observe(dp),
    context: () => ({ maglevSize: SIZE, maxServices: 4, maxDests: 64, directorMac: MAC.director, tableCache: new Map() }),
    facts: { macOf: (a) => macOf(a.text), healthy: () => true, health: () => 'up' },
    log: quiet,
    onTablesPatched: (ids) => owners.changed(ids),
  });
});

function configure(draining: string | null): void {
  const backends = POOL.map((address) => ({ address, state: address === draining ? ('draining' as const) : ('active' as const) }));
  r.setConfig(validateConfig({ maglevTableSize: SIZE, hashSeed: 5, capacity: { services: 4, backends: 64 }, services: [{ name: 'web', vip: VIP, port: 80, backends }] }));
  r.flush('test');
}

const flowKey = (n: number): FlowKey => ({ saddr: mustParseIp(`198.51.100.${n}`).bytes, daddr: mustParseIp(VIP).bytes, sport: 40000 + n, dport: 80, proto: 6, family: 4 });
/** Where the program sends a mid-stream segment of client n. */
async function ack(n: number): Promise<string | null> {
  const res = await dp.program.testRun(ethernet(ipv4(`198.51.100.${n}`, VIP, tcp(40000 + n, 80, 'ack'))), 1);
  return res.retval === 3 ? addressOfMac(res.packet.subarray(0, 6)) : null;
}

test('lapsedPrev: a previous owner lapses unless a live flow on its slot goes elsewhere than the owner (pure)', () => {
  const dest = Uint32Array.from([1, 2, 2, 3]);
  const prev = Uint32Array.from([0, 1, 1, 1]);
  assert.deepEqual([...lapsedPrev(dest, prev, [])!], [0, 0, 0, 0]);
  assert.deepEqual([...lapsedPrev(dest, prev, [{ slot: 1, dest: 1 }, { slot: 2, dest: 2 }])!], [0, 1, 0, 0], 'a flow that goes to the owner anyway needs nothing');
  assert.equal(lapsedPrev(dest, Uint32Array.from([0, 1, 0, 0]), [{ slot: 1, dest: 1 }]), null, 'nothing lapses');
});

test('after a change, previous owners lapse once the idle timeout has passed, except where a live flow still needs them', async () => {
  configure(null);
  const svc = [...r.state.services.values()][0]!;
  const before = dp.readTable(svc.id)!;
  const destOf = (a: string) => svc.dests.get(a)!;
  const slotOf = (n: number) => hashToSlot(hashFlow(flowKey(n), svc.seed), SIZE);
  // clients whose slots the first backend owns: they move when it drains
  const onFirst = Array.from({ length: 250 }, (_, i) => i + 1).filter((n) => before.dest[slotOf(n)] === destOf(POOL[0]!));
  const [old, moved] = [onFirst[0]!, onFirst.find((n) => slotOf(n) !== slotOf(onFirst[0]!))!];
  assert.ok(old && moved, 'two clients on different slots of the first backend');

  configure(POOL[0]!); // drained: its slots change owner, and remember it
  const changed = dp.readTable(svc.id)!;
  assert.equal(changed.prev[slotOf(moved)], destOf(POOL[0]!));
  assert.equal(owners.pending, 1, 'the Reconciler reported the table it changed in place');
  // a connection from before the change keeps its backend (recorded on its first segment since)
  assert.equal(await ack(old), POOL[0]);
  assert.equal(owners.sweep(), null, 'nothing is due before the idle timeout');
  // the segment of a connection the director never saw start goes to the previous owner, for now
  const owner = [...svc.dests].find(([, id]) => id === changed.dest[slotOf(moved)])![0];
  assert.notEqual(owner, POOL[0]);

  // the old connection keeps sending; the idle timeout passes
  const until = performance.now() + IDLE_MS + 100;
  while (performance.now() < until) {
    assert.equal(await ack(old), POOL[0]);
    await sleep(50);
  }
  const first = owners.sweep();
  assert.ok(first && first.lapsed > 0, `previous owners lapsed: ${JSON.stringify(first)}`);
  assert.equal(first.kept, 1, 'the old connection\'s slot keeps its previous owner');
  const lapsed = dp.readTable(svc.id)!;
  assert.equal(lapsed.prev[slotOf(old)], destOf(POOL[0]!));
  assert.equal(lapsed.prev.filter((p) => p !== 0).length, 1);
  assert.deepEqual([...lapsed.dest], [...changed.dest], 'the owners are untouched');
  assert.equal(await ack(moved), owner, 'a mid-stream segment the director never saw start goes to the slot\'s owner (where its SYN went on another director)');
  assert.equal(await ack(old), POOL[0], 'the live old connection keeps its backend');

  // the old connection goes quiet: its slot lapses too, and nothing is left to look at
  await sleep(IDLE_MS + 50);
  assert.equal(owners.sweep(), null, 'a table that kept a previous owner is looked at again only after a pause');
  await sleep(1000);
  const second = owners.sweep();
  assert.deepEqual(second && { lapsed: second.lapsed, kept: second.kept }, { lapsed: 1, kept: 0 });
  assert.equal(owners.pending, 0);
  assert.equal(dp.readTable(svc.id)!.prev.filter((p) => p !== 0).length, 0, 'every slot is back on the fast path');
  assert.equal(owners.sweep(), null);
});
