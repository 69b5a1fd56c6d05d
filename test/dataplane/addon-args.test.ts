// The addon checks the type of every argument, `this` included: a wrong type
// or a missing argument throws a TypeError naming the callee and the
// argument, never undefined behaviour (a crash, or a Link read as a Map).
// The bad calls run in child processes, so that one that brings the process
// down fails its own case and the others still run. The children run in a
// network namespace of their own (unshare --net: only a down lo, gone with
// the child), where a generic XDP attachment to lo gives them a Link.
// Netlink requests answer, or fail with a system error, without hanging.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { native } from '../../src/dataplane/native.ts';

const url = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);

// Reads [name, code] pairs on stdin; for each prints {start} and then its
// outcome, so that the parent knows which call took the process down.
const CHILD = `
import { writeSync, readFileSync, unlinkSync } from 'node:fs';
import { native } from ${url('../../src/dataplane/native.ts')};
import { DataPlane, DEFAULT_OBJECT } from ${url('../../src/dataplane/dataplane.ts')};
const dp = await DataPlane.load({ maglevSize: 251, maxServices: 4, maxDests: 16, maxFlows: 64 });
const map = dp.maps.services, outer = dp.maps.maglev_tables, stats = dp.maps.service_stats, prog = dp.program;
const array = native.createArrayMap(8, 2, Buffer.alloc(16));
const link = await prog.attachXdp(native.interfaceInfo('lo').ifindex, 'generic');
const object = await native.loadObject(DEFAULT_OBJECT, { maxEntries: { flows: 64 } });
const key = Buffer.alloc(20), u32 = Buffer.alloc(4), frame = Buffer.alloc(64);
const vip = Buffer.alloc(16); vip.set([10, 255, 0, 1]); // (0.0.0.0 on a missing ifindex is "added" by Linux 6.18)
// Pins obj for the call on its path, then removes it (the bpffs is the host's).
const pinned = (obj, call) => { const p = '/sys/fs/bpf/xdplb-test-addon-args-' + process.pid; obj.pin(p); try { return call(p); } finally { unlinkSync(p); } };
const scope = { native, dp, map, outer, stats, prog, array, link, object, key, u32, frame, vip, pinned, DEFAULT_OBJECT };
const say = (o) => writeSync(1, JSON.stringify(o) + '\\n');
for (const [name, code] of JSON.parse(readFileSync(0, 'utf8'))) {
  say({ start: name });
  const t0 = Date.now();
  let outcome, v;
  try {
    v = new Function(...Object.keys(scope), 'return ' + code)(...Object.values(scope));
  } catch (e) {
    outcome = { threw: e?.constructor?.name, typeError: e instanceof TypeError, message: e?.message, code: e?.code, syscall: e?.syscall, errno: e?.errno };
  }
  if (!outcome) { // (outside the try: what is made of the value must not pass for what the call threw)
    if (v instanceof Promise) v = await v.then(() => ({ resolved: true }), (e) => ({ rejected: e.message }));
    const text = v === undefined ? 'undefined' : JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));
    outcome = { returned: (text ?? typeof v).slice(0, 80) };
  }
  say({ name, outcome: { ...outcome, ms: Date.now() - t0 } });
}
`;

interface Outcome {
  threw?: string;
  typeError?: boolean;
  message?: string;
  code?: string;
  syscall?: string;
  errno?: number;
  returned?: string;
  crashed?: string;
  ms?: number;
}

/** Runs the calls, restarting the child after any that kills it. */
function run(cases: (readonly [string, string])[]): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  let todo = cases;
  while (todo.length > 0) {
    const r = spawnSync('unshare', ['--net', '--', process.execPath, '--input-type=module', '-e', CHILD], {
      input: JSON.stringify(todo),
      encoding: 'utf8',
      timeout: 60_000,
    });
    let started: string | null = null;
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const m = JSON.parse(line) as { start?: string; name?: string; outcome?: Outcome };
      if (m.start !== undefined) started = m.start;
      else if (m.name !== undefined && m.outcome) {
        out.set(m.name, m.outcome);
        started = null;
      }
    }
    if (started === null) {
      assert.ok(r.status === 0 && out.size > 0, `the child failed outside the calls (${r.signal ?? r.status}): ${r.error?.message ?? ''} ${r.stderr}`);
      break;
    }
    const how = r.signal ?? `exit ${r.status}`;
    const fatal = /FATAL ERROR[^\n]*/.exec(r.stderr)?.[0] ?? r.stderr.trim().split('\n')[0] ?? '';
    out.set(started, { crashed: `${how} ${fatal}`.trim() });
    todo = todo.slice(todo.findIndex(([n]) => n === started) + 1);
  }
  return out;
}

// [call, argument named in the message]: each must throw a TypeError.
const TYPE_ERRORS: Record<string, (readonly [string, string])[]> = {
  'top-level functions': [
    ['native.loadObject()', 'needs 2 arguments'],
    ['native.loadObject(42, {})', 'path must be a string, got a number'],
    ['native.loadObject(DEFAULT_OBJECT)', 'needs 2 arguments, got 1'],
    ["native.loadObject(DEFAULT_OBJECT, 'options')", 'options must be an object, got a string'],
    ['native.loadObject(DEFAULT_OBJECT, { rodata: { maglev_size: 251 } })', 'options.rodata.maglev_size must be a Buffer, got a number'],
    ["native.loadObject(DEFAULT_OBJECT, { maxEntries: { flows: '64' } })", 'options.maxEntries.flows must be a number, got a string'],
    ['native.loadObject(DEFAULT_OBJECT, { innerMaxEntries: 5 })', 'options.innerMaxEntries must be an object'],
    ['native.loadObject(DEFAULT_OBJECT, { pinDir: 5 })', 'options.pinDir must be a string'],
    ['native.openPinnedMap()', 'openPinnedMap: needs 1 argument, got 0'],
    ['native.openPinnedMap(5)', 'path must be a string'],
    ['native.openPinnedLink({})', 'path must be a string, got an object'],
    ["native.mapFromId('1')", 'id must be a number'],
    ['native.interfaceInfo()', 'interfaceInfo: needs 1 argument'],
    ['native.interfaceInfo(1)', 'name must be a string, got a number'],
    ['native.addresses()', 'addresses: needs 1 argument'],
    ["native.addresses('lo')", 'ifindex must be a number, got a string'],
    ['native.neighbours(null)', 'ifindex must be a number, got null'],
    ["native.addAddress(1, 4, '10.0.0.1', 32)", 'address must be a Buffer, got a string'],
    ["native.addAddress('1', 4, Buffer.alloc(16), 32)", 'ifindex must be a number'],
    ['native.addAddress(1, 4, Buffer.alloc(16))', 'addAddress: needs 4 arguments, got 3'],
    ['native.deleteAddress(1, 4, Buffer.alloc(16), null)', 'prefixLength must be a number, got null'],
    ["native.announce(1, 'mac', 4, Buffer.alloc(16))", 'mac must be a Buffer'],
    ["native.announce(1, Buffer.alloc(6), '4', Buffer.alloc(16))", 'family must be a number'],
    ['native.announce(1, Buffer.alloc(6), 4)', 'announce: needs 4 arguments'],
    ['native.lockFile()', 'lockFile: needs 1 argument'],
    ['native.lockFile(5)', 'path must be a string'],
    ["native.unlockFile('3')", 'fd must be a number'],
    ['native.setLogger(5)', 'logger must be a function or null'],
    ["native.createArrayMap('8', 2, Buffer.alloc(16))", 'valueSize must be a number'],
    ['native.createArrayMap(8, 2, [0, 0])', 'data must be a Buffer, got an array'],
    ['native.createArrayMap(8, 2)', 'createArrayMap: needs 3 arguments'],
    ['native.readArrayMap()', 'readArrayMap: needs 1 argument'],
    ['native.readArrayMap({ info: () => array.info() })', 'map must be a Map, got an object'],
    ['native.readArrayMap(link)', 'map must be a Map, got a Link'],
    ['native.patchArrayMap(prog, Buffer.alloc(16))', 'map must be a Map, got a Program'],
    ["native.patchArrayMap(array, 'data')", 'data must be a Buffer'],
    ['native.patchArrayMap(array)', 'patchArrayMap: needs 2 arguments'],
  ],
  'Map methods': [
    ['map.lookup()', 'map.lookup: needs 1 argument, got 0'],
    ["map.lookup('key')", 'map.lookup: key must be a Buffer, got a string'],
    ['stats.lookupPerCpu(5)', 'map.lookupPerCpu: key must be a Buffer'],
    ['outer.update(u32, link)', 'map.update: value must be a Buffer or a Map, got a Link'],
    ['outer.update(u32, prog)', 'value must be a Buffer or a Map, got a Program'],
    ['map.update(key, array)', 'value must be a Buffer (not a map-in-map), got a Map'],
    ["map.update(key, 'value')", 'value must be a Buffer or a Map, got a string'],
    ["map.update(key, Buffer.alloc(16), 'BPF_ANY')", 'flags must be a number'],
    ['map.update(key)', 'map.update: needs 2 arguments, got 1'],
    ['map.delete(5)', 'key must be a Buffer'],
    ["map.updateBatch(key, Buffer.alloc(16), '1')", 'count must be a number'],
    ['map.updateBatch(key, Buffer.alloc(16))', 'map.updateBatch: needs 3 arguments'],
    ['map.updateBatch([key], Buffer.alloc(16), 1)', 'keys must be a Buffer, got an array'],
    ['map.updateBatch(key, 16, 1)', 'values must be a Buffer, got a number'],
    ['map.nextKeys(null)', 'map.nextKeys: needs 2 arguments'],
    ['map.nextKeys(5, 10)', 'after must be a Buffer or null, got a number'],
    ["map.nextKeys(null, '10')", 'max must be a number'],
    ['stats.sumPerCpu()', 'map.sumPerCpu: needs 1 argument'],
    ["stats.sumPerCpu('4')", 'count must be a number'],
    ['dp.maps.dests.lookupAll(null)', 'count must be a number'],
    ['map.pin(5)', 'path must be a string'],
    ['map.lookup.call(link, key)', 'map.lookup: this must be a Map, got a Link'],
    ['map.info.call({})', 'map.info: this must be a Map, got an object'],
    ['map.countEntries.call(object)', 'this must be a Map, got a BpfObject'],
  ],
  'Link, Program and BpfObject methods': [
    ['link.update(map)', 'link.update: program must be a Program, got a Map'],
    ['link.update({ fd: 3 })', 'program must be a Program, got an object'],
    ['link.update()', 'link.update: needs 1 argument'],
    ['link.pin(5)', 'link.pin: path must be a string'],
    ['link.info.call(map)', 'link.info: this must be a Link, got a Map'],
    ["prog.testRun('frame', 1)", 'program.testRun: packet must be a Buffer'],
    ["prog.testRun(frame, '1')", 'repeat must be a number'],
    ['prog.testRunVaried(frame)', 'program.testRunVaried: needs 3 arguments'],
    ['prog.testRunVaried(frame, 10, null)', 'offset must be a number'],
    ['prog.testRunBatch(frame)', 'program.testRunBatch: needs 2 arguments'],
    ['prog.testRunBatch(frame, [64])', 'lengths must be a Buffer'],
    ["prog.attachXdp('1', 'generic')", 'ifindex must be a number'],
    ['prog.attachXdp(1, 5)', 'mode must be a string'],
    ["prog.attachXdp(1, 'turbo')", "mode must be 'native' or 'generic'"],
    ['prog.info.call(map)', 'program.info: this must be a Program, got a Map'],
    ["prog.testRun.call(link, frame, 1)", 'this must be a Program, got a Link'],
    ['object.map(5)', 'object.map: name must be a string'],
    ['object.program()', 'object.program: needs 1 argument'],
    ["object.map.call(map, 'services')", 'object.map: this must be a BpfObject, got a Map'],
  ],
};

// Not type errors, and not crashes either.
const OTHERS: (readonly [string, string, Partial<Outcome>])[] = [
  ['a wrong-sized key', 'map.lookup(Buffer.alloc(3))', { threw: 'RangeError', message: 'map.lookup: key must be 20 bytes, got 3' }],
  ['updateBatch sizes that do not match count', 'map.updateBatch(key, Buffer.alloc(16), 2)', { threw: 'RangeError', message: 'map.updateBatch: keys must be 40 bytes, got 20' }],
  ['sumPerCpu past max_entries (before it allocates)', 'stats.sumPerCpu(2 ** 32 - 1)', { threw: 'RangeError', message: 'map.sumPerCpu: count 4294967295 exceeds max_entries 4' }],
  ['testRunBatch lengths that are not u32s', 'prog.testRunBatch(frame, Buffer.alloc(3))', { threw: 'RangeError', message: 'program.testRunBatch: lengths must be u32 values (a multiple of 4 bytes)' }],
  ['testRunBatch lengths that do not add up to the frames', 'prog.testRunBatch(frame, Buffer.from([63, 0, 0, 0]))', { threw: 'RangeError', message: 'program.testRunBatch: lengths add up to 63 bytes, frames has 64' }],
  ['lookupAll past max_entries (before it allocates)', 'dp.maps.dests.lookupAll(2 ** 32 - 1)', { threw: 'RangeError', message: 'map.lookupAll: count 4294967295 exceeds max_entries 16' }],
  ['openPinnedLink of a pinned map', 'pinned(map, (p) => native.openPinnedLink(p).info())', { threw: 'Error', code: 'EINVAL', syscall: 'bpf_obj_get' }],
  ['openPinnedMap of a pinned link', 'pinned(link, (p) => native.openPinnedMap(p).info())', { threw: 'Error', code: 'EINVAL', syscall: 'bpf_obj_get' }],
  ['a BpfObject made from JS holds nothing', "new object.constructor().map('services')", { threw: 'Error', code: 'EBADF', syscall: 'bpf_object' }],
  ['a Map made from JS is closed', 'new map.constructor().lookup(Buffer.alloc(0))', { threw: 'Error', code: 'EBADF', syscall: 'bpf_map' }],
  ['the good calls still work: lookup', 'map.lookup(key)', { returned: 'null' }],
  ['the good calls still work: nextKeys', 'map.nextKeys(null, 10)', { returned: '[]' }],
  ['the good calls still work: update of a map-in-map', 'outer.update(u32, native.createArrayMap(8, 251, Buffer.alloc(8 * 251)))', { returned: 'undefined' }],
  ['the good calls still work: readArrayMap', 'native.readArrayMap(array).length', { returned: '16' }],
  ['the good calls still work: patchArrayMap', 'native.patchArrayMap(array, Buffer.alloc(16, 1))', { returned: '2' }],
  ['the good calls still work: link.update', 'link.update(prog)', { returned: 'undefined' }],
  ['the good calls still work: setLogger(null)', 'native.setLogger(null)', { returned: 'undefined' }],
  ['netlink: RTM_NEWADDR on a missing interface', 'native.addAddress(999, 4, vip, 32)', { threw: 'Error', code: 'ENODEV', syscall: 'RTM_NEWADDR', errno: -19 }],
  ['netlink: RTM_DELADDR on a missing interface', 'native.deleteAddress(999, 4, vip, 32)', { threw: 'Error', code: 'ENODEV', syscall: 'RTM_DELADDR', errno: -19 }],
];

const all = [...Object.values(TYPE_ERRORS).flat().map(([code]) => [code, code] as const), ...OTHERS.map(([name, code]) => [name, code] as const)];
const outcomes = run(all);
const show = (o: Outcome | undefined) => JSON.stringify(o);

// One test per kind of entry point, naming every case that failed (a
// hundred small tests lose results under --test-force-exit: the runner's
// output is cut off when it exits).
const check = (cases: string[], why: (name: string, o: Outcome) => string | null) => {
  const failed = cases.flatMap((name) => {
    const o = outcomes.get(name);
    const problem = !o ? 'no outcome' : o.crashed ? 'took the process down' : why(name, o);
    return problem ? [`${name}: ${problem}: ${show(o)}`] : [];
  });
  assert.deepEqual(failed, [], `${failed.length} of ${cases.length} cases failed:\n${failed.join('\n')}`);
};

for (const [kind, cases] of Object.entries(TYPE_ERRORS)) {
  test(`${kind}: wrong types and missing arguments throw a TypeError naming the argument (${cases.length} calls)`, () => {
    const message = new Map(cases);
    check([...message.keys()], (name, o) =>
      o.typeError !== true || o.threw !== 'TypeError' ? 'no TypeError' : o.message?.includes(message.get(name)!) ? null : `message lacks ${JSON.stringify(message.get(name))}`,
    );
  });
}

test(`other bad calls fail cleanly, good calls still work (${OTHERS.length} calls)`, () => {
  const want = new Map(OTHERS.map(([name, , w]) => [name, w]));
  check([...want.keys()], (name, o) => {
    const bad = Object.entries(want.get(name)!).filter(([k, v]) => o[k as keyof Outcome] !== v);
    return bad.length ? `want ${JSON.stringify(Object.fromEntries(bad))}` : null;
  });
});

test('a netlink request on a missing interface fails at once with a system error (no timeout)', () => {
  check(['netlink: RTM_NEWADDR on a missing interface', 'netlink: RTM_DELADDR on a missing interface'], (_name, o) =>
    (o.ms ?? Infinity) < 1000 ? null : 'too slow',
  );
});

test('netlink dumps in this namespace answer', async (t) => {
  const lo = native.interfaceInfo('lo').ifindex;
  await t.test('addresses(lo), with 127.0.0.1/8, in well under the reply timeout', () => {
    const t0 = Date.now();
    const list = native.addresses(lo);
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(
      list.some((a) => a.family === 4 && a.prefixLength === 8 && a.address.subarray(0, 4).equals(Buffer.from([127, 0, 0, 1]))),
      JSON.stringify(list),
    );
  });
  await t.test('neighbours(lo)', () => {
    assert.ok(Array.isArray(native.neighbours(lo)));
  });
  await t.test('a dump for an ifindex that does not exist: empty, not an error', () => {
    assert.deepEqual(native.addresses(0x7ffffff0), []);
  });
});
