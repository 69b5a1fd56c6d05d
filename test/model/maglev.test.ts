import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPrime, maglevTable, nextSlots, NO_BACKEND } from '../../src/model/maglev.ts';

function shares(table: Int32Array, n: number): number[] {
  const count = new Array<number>(n).fill(0);
  for (const i of table) count[i]!++;
  return count.map((c) => c / table.length);
}

test('slots are shared within ±2% of the weights for M >= 100 N', () => {
  const cases = [
    { weights: [1, 1, 1], size: 16381 },
    { weights: [1, 2, 3, 4], size: 16381 },
    { weights: [5, 1, 1, 1, 1, 1, 1, 1, 1, 1], size: 1009 },
    { weights: Array.from({ length: 100 }, (_, i) => 1 + (i % 4)), size: 16381 },
  ];
  for (const { weights, size } of cases) {
    const backends = weights.map((weight, i) => ({ key: `10.240.0.${100 + i}`, weight }));
    const table = maglevTable(backends, size);
    const total = weights.reduce((a, b) => a + b, 0);
    // entries index the backends sorted by key; map back to weights
    const sortedWeights = [...backends].sort((a, b) => (a.key < b.key ? -1 : 1)).map((b) => b.weight);
    shares(table, weights.length).forEach((s, i) => {
      const want = sortedWeights[i]! / total;
      assert.ok(Math.abs(s - want) <= 0.02 * want, `backend ${i} of ${weights.length} (M=${size}): share ${s.toFixed(5)}, weight share ${want.toFixed(5)}`);
    });
  }
});

test('the table depends on the input, not on its order', () => {
  const a = [{ key: 'a', weight: 1 }, { key: 'b', weight: 2 }, { key: 'c', weight: 1 }];
  const t1 = maglevTable(a, 16381);
  const t2 = maglevTable([...a].reverse(), 16381);
  assert.deepEqual(Buffer.from(t1.buffer), Buffer.from(t2.buffer));
});

test('removing one of N backends moves about 1/N of the slots', () => {
  const all = Array.from({ length: 10 }, (_, i) => ({ key: `10.0.0.${i}`, weight: 1 }));
  const before = maglevTable(all, 16381);
  const after = maglevTable(all.filter((b) => b.key !== '10.0.0.3'), 16381);
  let moved = 0;
  for (let i = 0; i < before.length; i++) {
    const was = all[before[i]!]!.key;
    const now = all.filter((b) => b.key !== '10.0.0.3')[after[i]!]!.key;
    if (was !== now) moved++;
  }
  assert.ok(moved / before.length < 0.15, `moved ${moved} of ${before.length} slots`);
});

test('weight 0 and no backends', () => {
  const t = maglevTable([{ key: 'a', weight: 0 }, { key: 'b', weight: 1 }], 101);
  assert.ok(t.every((i) => i === 1), 'a weight-0 backend gets no slot');
  assert.ok(maglevTable([], 101).every((i) => i === NO_BACKEND));
  assert.throws(() => maglevTable([], 100), /prime/);
  assert.ok(isPrime(16381) && isPrime(65537) && !isPrime(16383));
});

test('nextSlots remembers the previous owner of each changed slot', () => {
  const oldDest = Uint32Array.from([1, 1, 2, 3]);
  const oldPrev = Uint32Array.from([0, 4, 0, 0]);
  const newDest = Uint32Array.from([1, 1, 3, 3]);
  assert.deepEqual([...nextSlots(oldDest, oldPrev, newDest)], [0, 4, 2, 0]);
  assert.deepEqual([...nextSlots(null, null, newDest)], [0, 0, 0, 0], 'a first table has no previous owners');
});
