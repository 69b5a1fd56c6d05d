// putTables(): whole tables swapped in from a lazily built iterable, more of
// them than one batch update takes (TABLES_PER_SWAP, 4,096), each read back
// from the kernel as written; a table that does not fit is refused before the
// rest of its batch is swapped in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataPlane } from '../../src/dataplane/dataplane.ts';

const SIZE = 7;
const TABLES = 4100;

/** Service i's table: slot s owned by destination 1 + (i + s) % 50, remembered owner i % 3. */
function tableOf(i: number): { dest: Uint32Array; prev: Uint32Array } {
  return { dest: Uint32Array.from({ length: SIZE }, (_, s) => 1 + ((i + s) % 50)), prev: new Uint32Array(SIZE).fill(i % 3) };
}

test('4,100 tables built one at a time go in whole, across two batch updates, each as written', async () => {
  const dp = await DataPlane.load({ maglevSize: SIZE, maxServices: TABLES + 16, maxDests: 64, maxFlows: 1024 });
  let built = 0;
  function* tables() {
    // one reused pair of arrays: the writer must copy each table before it takes the next
    const dest = new Uint32Array(SIZE);
    const prev = new Uint32Array(SIZE);
    for (let i = 1; i <= TABLES; i++) {
      const t = tableOf(i);
      dest.set(t.dest);
      prev.set(t.prev);
      built++;
      yield { serviceId: i, dest, prev };
    }
  }
  dp.putTables(tables());
  assert.equal(built, TABLES);
  for (const i of [1, 2, 4095, 4096, 4097, 4098, TABLES]) assert.deepEqual(dp.readTable(i), tableOf(i), `service ${i}`);
  assert.equal(dp.readTable(TABLES + 1), null);
});

test('a table of the wrong size is refused, and the tables before it in its batch are not swapped in', async () => {
  const dp = await DataPlane.load({ maglevSize: SIZE, maxServices: 64, maxDests: 64, maxFlows: 1024 });
  const bad = { serviceId: 3, dest: new Uint32Array(SIZE + 1), prev: new Uint32Array(SIZE + 1) };
  assert.throws(() => dp.putTables([{ serviceId: 1, ...tableOf(1) }, { serviceId: 2, ...tableOf(2) }, bad]), /a table has 7 slots, got 8/);
  assert.equal(dp.readTable(1), null);
  assert.equal(dp.readTable(2), null);
});
