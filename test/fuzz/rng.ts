// A seeded random source for the frame generator (pure-rand's
// xoroshiro128+): the same seed gives the same frames, so a failure is
// reproduced by its seed.
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

type Generator = ReturnType<typeof xoroshiro128plus>;

export class Rng {
  private readonly g: Generator;

  constructor(seed: number) {
    this.g = xoroshiro128plus(seed | 0);
  }

  /** A seed for an independent stream (batch b of seed s). */
  static derive(seed: number, ...parts: number[]): number {
    let h = seed >>> 0;
    for (const p of parts) h = Math.imul(h ^ (p >>> 0), 0x9e3779b1) ^ (h >>> 15);
    return h >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : uniformInt(this.g, 0, n - 1);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return uniformInt(this.g, lo, hi);
  }

  u8(): number {
    return this.g.next() & 0xff;
  }

  u16(): number {
    return this.g.next() & 0xffff;
  }

  u32(): number {
    return this.g.next() >>> 0;
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return (this.g.next() >>> 0) / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from nothing');
    return items[this.int(items.length)]!;
  }

  /** One of the choices, each with its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((n, [w]) => n + w, 0);
    let r = this.int(total);
    for (const [w, v] of choices) {
      if (r < w) return v;
      r -= w;
    }
    return choices[choices.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.g.next();
      b[i] = v & 0xff;
      if (i + 1 < n) b[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) b[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) b[i + 3] = (v >>> 24) & 0xff;
    }
    return b;
  }
}
