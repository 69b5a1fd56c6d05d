// The pure rules of health: keepalived's rise and fall, and what a service's
// verdicts let in when every backend is down.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admits, INITIAL, nextHealth, nextServiceHealth, RECORDED_DOWN, startingState, type ServiceHealth } from '../../src/health/state.ts';

describe('a backend: rise and fall', () => {
  test('fall failures in a row take it out, rise successes bring it back; a result that agrees resets the streak', () => {
    let s = INITIAL;
    const step = (ok: boolean) => {
      const r = nextHealth(s, ok, 2, 3);
      s = r.state;
      return r.changed;
    };
    assert.deepEqual([step(false), step(false), step(true), step(false), step(false), step(false)], [false, false, false, false, false, true]);
    assert.equal(s.up, false);
    assert.deepEqual([step(true), step(true)], [false, true]);
    assert.equal(s.up, true);
    assert.equal(nextHealth(RECORDED_DOWN, true, 1, 1).state.up, true, 'a backend recorded down comes back after rise successes');
  });

  test('a new probe starts down if any of its services knew the address down, else up', () => {
    assert.deepEqual(startingState([]), INITIAL, 'nothing known: up (a restart must not take the whole service out)');
    assert.deepEqual(startingState([INITIAL, { up: true, streak: 2 }]), INITIAL);
    assert.deepEqual(startingState([INITIAL, RECORDED_DOWN]), RECORDED_DOWN, 'one recorded down (or down on the probe it moves from) is enough');
    assert.deepEqual(startingState([{ up: false, streak: 1 }]), RECORDED_DOWN, 'down, and a streak of another check counts nothing here');
  });
});

describe('a service: who is let in', () => {
  const set = (...a: string[]) => new Set(a);
  const health = (up: string[], lastUp: string[] | null): ServiceHealth => ({ up: set(...up), lastUp: lastUp && set(...lastUp) });

  test('while any backend is up, those up are let in, whatever the policy', () => {
    for (const policy of ['keep-last', 'remove'] as const) {
      assert.equal(admits(health(['a'], ['a', 'b']), policy, 'a'), true);
      assert.equal(admits(health(['a'], ['a', 'b']), policy, 'b'), false);
    }
  });

  test('all down: keep-last lets in those up last (all of them when none was ever up), remove none', () => {
    assert.equal(admits(health([], ['b']), 'keep-last', 'b'), true);
    assert.equal(admits(health([], ['b']), 'keep-last', 'a'), false);
    assert.equal(admits(health([], null), 'keep-last', 'a'), true, 'none seen up yet (a restart with every backend recorded down)');
    assert.equal(admits(health([], ['b']), 'remove', 'b'), false);
    assert.equal(admits(health([], null), 'remove', 'a'), false);
  });

  test('the last set up is remembered when the verdicts change, not when someone asks', () => {
    let h = nextServiceHealth(null, set('a', 'b'));
    assert.deepEqual(h, { up: set('a', 'b'), lastUp: set('a', 'b') });
    h = nextServiceHealth(h, set('b'));
    assert.deepEqual(h.lastUp, set('b'));
    h = nextServiceHealth(h, set());
    assert.deepEqual(h, { up: set(), lastUp: set('b') }, 'all down: the last set up stays');
    assert.deepEqual(nextServiceHealth(null, set()), { up: set(), lastUp: null });
  });
});
