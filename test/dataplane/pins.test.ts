// Pinned maps: adoption keeps maps and counters; another ABI version is
// refused before anything is touched.
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { u32Key } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { native } from '../../src/dataplane/native.ts';
import { XdplbError } from '../../src/errors.ts';
import { mapIds, putServiceIndexed, putTable } from '../helpers/dataplane-fixture.ts';

const PIN = '/sys/fs/bpf/xdplb-test-pins';
const caps = { maglevSize: 101, maxServices: 16, maxDests: 64, maxFlows: 1024 };
after(() => rmSync(PIN, { recursive: true, force: true }));

test('a second load adopts the pinned maps, contents and counters', async () => {
  rmSync(PIN, { recursive: true, force: true });
  const first = await DataPlane.load({ ...caps, pinDir: PIN });
  first.putDestInfo(5, { addr: Buffer.alloc(16, 1), family: 4, service: 3, weight: 7, configured: 'active', health: 'up' });
  const ids = mapIds(first);
  const second = await DataPlane.load({ ...caps, pinDir: PIN });
  assert.deepEqual(mapIds(second), ids, 'same maps');
  assert.equal([...second.usedDests()].find((d) => d.id === 5)?.info.weight, 7, 'same contents');
  await assert.rejects(DataPlane.load({ ...caps, maxFlows: 2048, pinDir: PIN }), (e: XdplbError) => e.code === 'PIN_INCOMPATIBLE' && /flows/.test(e.message));
});

test('pins of another ABI version are refused with a migration hint, and nothing changes', async () => {
  const abi = native.openPinnedMap(`${PIN}/xdplb_abi`);
  abi.update(u32Key(0), u32Key(999));
  abi.close();
  const before = readdirSync(PIN).sort();
  const dests = native.openPinnedMap(`${PIN}/dest_info`);
  const snapshot = dests.lookup(u32Key(5));
  await assert.rejects(
    DataPlane.load({ ...caps, pinDir: PIN }),
    (e: XdplbError) => e.code === 'ABI_MISMATCH' && /ABI version 999/.test(e.message) && /To migrate/.test(e.message),
  );
  assert.deepEqual(readdirSync(PIN).sort(), before, 'no pin added or removed');
  assert.deepEqual(dests.lookup(u32Key(5)), snapshot, 'no map written');
  assert.throws(() => DataPlane.openPinned(PIN), (e: XdplbError) => e.code === 'ABI_MISMATCH', 'status refuses too');
  dests.close();
});

test('status from the pins reads the table size they were made with (not the default)', async () => {
  rmSync(PIN, { recursive: true, force: true });
  const dp = await DataPlane.load({ ...caps, pinDir: PIN });
  const dest = new Uint32Array(caps.maglevSize).map((_, i) => (i % 2 ? 7 : 8));
  putTable(dp, 3, dest, new Uint32Array(caps.maglevSize));
  putServiceIndexed(dp, { addr: Buffer.from([10, 240, 0, 201, ...Array(12).fill(0)]), family: 4, proto: 6, port: 80 }, { id: 3, seed: 1, flags: 0 }, 3);
  const pinned = DataPlane.openPinned(PIN);
  assert.equal(pinned.capacities.maglevSize, caps.maglevSize, 'the size of the pinned tables');
  const shares = pinned.tableShares(3);
  assert.equal((shares.get(7) ?? 0) + (shares.get(8) ?? 0), caps.maglevSize, 'every slot counted once');
});
