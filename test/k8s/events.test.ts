// Events: written when a decision appears (not each time it is recomputed); notes fit the server's 1024 bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventKey, newEvents, noteOf } from '../../src/k8s/events.ts';
import type { KubeEvent } from '../../src/k8s/translate.ts';

const e = (service: string, reason: string, message = 'm'): KubeEvent => ({ service, type: 'Warning', reason, message });

test('only the decisions that were not there the last time are new; one that went and came back is new again', () => {
  const first = [e('a/web', 'PoolExhausted'), e('a/db', 'ExternalIPNotAllowed')];
  assert.deepEqual(newEvents(new Set(), first), first);
  assert.deepEqual(newEvents(new Set(first.map(eventKey)), first), []);
  const second = [e('a/web', 'PoolExhausted'), e('a/db', 'ExternalIPNotAllowed', 'another address')];
  assert.deepEqual(newEvents(new Set(first.map(eventKey)), second), [second[1]]);
  assert.deepEqual(newEvents(new Set(second.slice(1).map(eventKey)), second), [second[0]], 'gone in between: written again');
});

test('a note is cut to 1024 bytes at a character boundary', () => {
  assert.equal(noteOf('short'), 'short');
  const long = 'é'.repeat(600); // 1200 bytes
  const cut = noteOf(long);
  assert.ok(Buffer.byteLength(cut) <= 1024, `${Buffer.byteLength(cut)} bytes`);
  assert.ok(cut.endsWith('...') && !cut.includes('\uFFFD'));
  assert.equal(noteOf('x'.repeat(1024)), 'x'.repeat(1024));
});
