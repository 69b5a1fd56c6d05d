// The nodeSelector: kubectl's equality-based label selectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLabelSelector, type LabelSelector } from '../../src/model/selector.ts';

function selector(text: string): LabelSelector {
  const s = parseLabelSelector(text);
  if (typeof s === 'string') throw new Error(s);
  return s;
}

const worker = { 'node-role.kubernetes.io/worker': '', 'topology.kubernetes.io/zone': 'eu-1a' };
const control = { 'node-role.kubernetes.io/control-plane': '' };

test('each term form, alone and combined', () => {
  const cases: [string, Record<string, string> | undefined, boolean][] = [
    ['', undefined, true],
    ['node-role.kubernetes.io/worker', worker, true],
    ['node-role.kubernetes.io/worker', control, false],
    ['node-role.kubernetes.io/worker', undefined, false],
    ['!node-role.kubernetes.io/worker', control, true],
    ['!node-role.kubernetes.io/worker', undefined, true],
    ['topology.kubernetes.io/zone=eu-1a', worker, true],
    ['topology.kubernetes.io/zone==eu-1a', worker, true],
    ['topology.kubernetes.io/zone=eu-1b', worker, false],
    ['topology.kubernetes.io/zone!=eu-1b', worker, true],
    ['topology.kubernetes.io/zone!=eu-1a', worker, false],
    ['topology.kubernetes.io/zone!=eu-1a', control, true],
    ['node-role.kubernetes.io/worker=', worker, true],
    [' node-role.kubernetes.io/worker , topology.kubernetes.io/zone = eu-1a ', worker, true],
    ['node-role.kubernetes.io/worker,!node-role.kubernetes.io/worker', worker, false],
  ];
  for (const [text, labels, expected] of cases) assert.equal(selector(text).matches(labels), expected, `${JSON.stringify(text)} on ${JSON.stringify(labels)}`);
});

test('set-based and malformed selectors are refused with what was expected', () => {
  for (const [text, problem] of [
    ['zone in (a,b)', /"in" and "notin" are not supported/],
    ['!zone=a', /a term/],
    ['zone=a=b', /a label value/],
    ['-bad', /a label key/],
    ['a,,b', /a term/],
  ] as const)
    assert.match(parseLabelSelector(text) as string, problem, text);
});
