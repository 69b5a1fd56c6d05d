// Weighted Maglev (Eisenbud et al., NSDI '16) with the weight extension: each
// backend fills table slots in the order of its own permutation, and takes
// turns in proportion to its weight. The result depends only on the backends'
// keys, weights and the table size (never on input order), so every director
// fed the same input builds a byte-identical table.
import { createHash } from 'node:crypto';

export interface MaglevBackend {
  /** Stable identity, the same on every director (e.g. "10.240.0.101"). */
  key: string;
  /** Relative share of new flows; 0 takes none. */
  weight: number;
}

export const NO_BACKEND = -1;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function permutation(key: string, size: number): { offset: number; skip: number } {
  const h = createHash('sha256').update(key).digest();
  return { offset: h.readUInt32LE(0) % size, skip: (h.readUInt32LE(4) % (size - 1)) + 1 };
}

/** Sorts backends by key: table entries are indexes into this order. */
export function canonicalOrder<T extends MaglevBackend>(backends: readonly T[]): T[] {
  return [...backends].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Builds a table of `size` slots (a prime). Entry i is the index of its
 * backend in canonicalOrder(backends), or NO_BACKEND when no backend has a
 * positive weight.
 */
export function maglevTable(backends: readonly MaglevBackend[], size: number): Int32Array {
  if (!isPrime(size)) throw new RangeError(`Maglev table size must be a prime, got ${size}`);
  const sorted = canonicalOrder(backends);
  const table = new Int32Array(size).fill(NO_BACKEND);
  const live = sorted.map((b, index) => ({ index, weight: b.weight, ...permutation(b.key, size) })).filter((b) => b.weight > 0);
  if (live.length === 0) return table;
  // typed arrays and no division in the probe loop: this is the hot part of a cold start
  const n = live.length;
  const index = Int32Array.from(live, (b) => b.index);
  const weight = Float64Array.from(live, (b) => b.weight);
  const next = Int32Array.from(live, (b) => b.offset);
  const skip = Int32Array.from(live, (b) => b.skip);
  const maxWeight = Math.max(...weight);
  const credit = new Float64Array(n);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      credit[i]! += weight[i]!;
      while (credit[i]! >= maxWeight) {
        credit[i]! -= maxWeight;
        const step = skip[i]!;
        let slot = next[i]!;
        while (table[slot] !== NO_BACKEND) {
          slot += step;
          if (slot >= size) slot -= size;
        }
        table[slot] = index[i]!;
        slot += step;
        next[i] = slot >= size ? slot - size : slot;
        if (++filled === size) return table;
      }
    }
  }
}

/**
 * The next table of a service, given the previous one. A slot whose owner
 * changes remembers the owner it had before its first change (prev), so that
 * the data plane keeps the flows that were running on it then (those begun
 * since are in the flow table: a SYN on a changed slot is recorded); a slot
 * that changes again, or keeps its owner, keeps what it remembered (a second
 * change must not hand the first one's flows to an owner they never had:
 * draining and undraining a backend moved every idle connection on it, found
 * by the property tests). 0 means "no destination" in both arrays.
 */
export function nextSlots(
  oldDest: Uint32Array | null,
  oldPrev: Uint32Array | null,
  newDest: Uint32Array,
): Uint32Array {
  const prev = new Uint32Array(newDest.length);
  if (!oldDest || !oldPrev || oldDest.length !== newDest.length) return prev;
  for (let i = 0; i < newDest.length; i++) prev[i] = oldPrev[i] !== 0 ? oldPrev[i]! : oldDest[i] !== newDest[i] ? oldDest[i]! : 0;
  return prev;
}

/**
 * A table's previous owners once the live flows on it are known: a slot's
 * previous owner lapses (0: the slot is back on the fast path, which reads no
 * flow state and sends to the owner) unless a live flow on that slot goes to
 * another destination than the slot's owner; only such a flow still needs the
 * flow-table path. Behind ECMP this is what lets a flow that began on another
 * director after the change, and moved here, reach the backend its SYN went
 * to. Returns null when no slot lapses.
 */
export function lapsedPrev(dest: Uint32Array, prev: Uint32Array, liveFlows: Iterable<{ slot: number; dest: number }>): Uint32Array | null {
  const needed = new Uint8Array(prev.length);
  for (const f of liveFlows) if (f.dest !== dest[f.slot]) needed[f.slot] = 1;
  let next: Uint32Array | null = null;
  for (let i = 0; i < prev.length; i++) if (prev[i] !== 0 && !needed[i]) (next ??= prev.slice())[i] = 0;
  return next;
}
