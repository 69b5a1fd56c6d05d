// The TypeScript side of bpf/xdplb_abi.h must agree with it: the layout with
// what the C compiler made of the header (the addon compiles the same header
// and reports it), every constant with the header's #define, and with the
// addon's export for those it exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  ABI_VERSION,
  CONFIGURED,
  CONSTANTS,
  decodeDest,
  decodeDestInfo,
  decodeService,
  decodeServiceFlags,
  decodeServiceInfo,
  decodeServiceKey,
  decodeIngressMac,
  decodeVipKey,
  decodeVipOwner,
  encodeDest,
  encodeDestInfo,
  encodeService,
  encodeServiceFlags,
  encodeServiceInfo,
  encodeServiceKey,
  encodeIngressMac,
  encodeVipKey,
  encodeVipOwner,
  HEALTH,
  LAYOUT,
  pinnedServiceName,
  SERVICE_NAME_LEN,
  VIP_OWNER_FOREVER,
} from '../../src/dataplane/abi.ts';
import { globalStatLists, globalStatNames } from '../../src/dataplane/dataplane.ts';
import { native } from '../../src/dataplane/native.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { NO_BACKEND_POLICIES, SCHEDULERS } from '../../src/model/service.ts';

const HEADER = new URL('../../bpf/xdplb_abi.h', import.meta.url);

/**
 * The value of a #define's body when it is a constant expression of integer
 * literals (decimal or hex, with U/L suffixes), parentheses, << and |; null
 * otherwise (a function-like macro, a string, nothing).
 */
function constantValue(body: string): number | null {
  const tokens = body.match(/0x[0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|<<|\||\(|\)|\S/g) ?? [];
  let at = 0;
  const primary = (): number | null => {
    const t = tokens[at++];
    if (t === '(') {
      const v = expression();
      return tokens[at++] === ')' ? v : null;
    }
    return t !== undefined && /^(0x[0-9a-fA-F]+|\d+)[uUlL]*$/.test(t) ? Number(t.replace(/[uUlL]+$/, '')) : null;
  };
  const shift = (): number | null => {
    let v = primary();
    while (v !== null && tokens[at] === '<<') {
      at++;
      const by = primary();
      v = by === null ? null : v * 2 ** by;
    }
    return v;
  };
  const expression = (): number | null => {
    let v = shift();
    while (v !== null && tokens[at] === '|') {
      at++;
      const w = shift();
      v = w === null ? null : Number(BigInt(v) | BigInt(w));
    }
    return v;
  };
  if (tokens.length === 0) return null;
  const v = expression();
  return at === tokens.length ? v : null;
}

/** Every object-like #define of the header whose body is an integer constant, by name. */
function headerConstants(): Map<string, number> {
  const text = readFileSync(HEADER, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/.*$/gm, '')
    .replace(/\\\n/g, ' ');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^\s*#\s*define\s+([A-Za-z_]\w*)(\(?)(.*)$/gm)) {
    if (m[2] === '(') continue; // function-like
    const v = constantValue(m[3]!.trim());
    if (v !== null) out.set(m[1]!, v);
  }
  return out;
}

/** Each constant this side holds, under the name of its #define. */
const MIRRORED: Record<string, number> = {
  XDPLB_ABI_VERSION: ABI_VERSION,
  XDPLB_SERVICE_NAME_LEN: SERVICE_NAME_LEN,
  ...Object.fromEntries(Object.entries(CONSTANTS).map(([k, v]) => [`XDPLB_${k}`, v])),
  ...Object.fromEntries(Object.entries(CONFIGURED).map(([k, v]) => [`XDPLB_DEST_CONFIGURED_${k.toUpperCase()}`, v])),
  ...Object.fromEntries(Object.entries(HEALTH).map(([k, v]) => [`XDPLB_HEALTH_${k.toUpperCase()}`, v])),
  // a Family (4 | 6, src/model/address.ts) is written to the maps as it is
  XDPLB_FAMILY_IPV4: 4,
  XDPLB_FAMILY_IPV6: 6,
};

describe('the ABI against the C header', () => {
  test('the header parser reads what C would', () => {
    assert.equal(constantValue('(1U << 1)'), 2);
    assert.equal(constantValue('0xffffffffU'), 0xffffffff);
    assert.equal(constantValue('16381'), 16381);
    assert.equal(constantValue('(1U << 0) | (1U << 3)'), 9);
    assert.equal(constantValue('static_assert'), null);
    assert.equal(constantValue(''), null);
  });

  test('every constant has the value of its #define in bpf/xdplb_abi.h', () => {
    const header = headerConstants();
    for (const [name, value] of Object.entries(MIRRORED)) assert.equal(header.get(name), value, `#define ${name} in bpf/xdplb_abi.h`);
  });

  test('every integer #define of the header has its value on this side', () => {
    const missing = [...headerConstants().keys()].filter((name) => !(name in MIRRORED));
    assert.deepEqual(missing, [], 'constants of the header that src/dataplane/abi.ts does not hold (add them there, and here)');
  });

  test('XDPLB_VIP_OWNER_FOREVER (not an integer literal, so not among the constants above) is UINT64_MAX on both sides', () => {
    assert.match(readFileSync(HEADER, 'utf8'), /^#define XDPLB_VIP_OWNER_FOREVER \(~0ULL\)/m);
    assert.equal(VIP_OWNER_FOREVER, 2n ** 64n - 1n);
  });

  test('the name field is SERVICE_NAME_LEN bytes, before the entry', () => {
    assert.equal(LAYOUT.service_info.offsets.name, 0);
    assert.equal(LAYOUT.service_info.offsets.entry, SERVICE_NAME_LEN);
  });
});

describe('the ABI against the addon (the same header, compiled)', () => {
  test('every struct has the size and field offsets the C compiler gave it', () => {
    const c = native.abi();
    for (const [name, ts] of Object.entries(LAYOUT)) {
      const cl = c.layout[name];
      assert.ok(cl, `C layout has no struct ${name}`);
      assert.equal(ts.size, cl.size, `sizeof(struct xdplb_${name})`);
      assert.deepEqual(ts.offsets, cl.offsets, `field offsets of struct xdplb_${name}`);
    }
    assert.deepEqual(Object.keys(LAYOUT).sort(), Object.keys(c.layout).sort(), 'both sides describe the same structs');
    assert.equal(c.layout.global!.size, c.globalStats.length * 8, 'global_stats: one u64 per name of XDPLB_GLOBAL_STATS');
    assert.equal(c.layout.global_ext!.size, CONSTANTS.GLOBAL_EXT_SLOTS * 8, 'global_ext: GLOBAL_EXT_SLOTS u64 slots');
    assert.ok(c.globalExtStats.length <= CONSTANTS.GLOBAL_EXT_SLOTS, 'global_ext: a slot for every name of XDPLB_GLOBAL_EXT_STATS');
  });

  test('the constants the addon exports are those of this side', () => {
    const c = native.abi();
    assert.equal(ABI_VERSION, c.version);
    assert.deepEqual({ ...CONSTANTS }, c.constants);
  });

  test('global counter names come from the C header, in enum order, one namespace for both maps', () => {
    const names = globalStatNames();
    assert.equal(names[0], 'xdp_tx');
    assert.ok(names.includes('drop_malformed') && names.includes('icmp_error_steered'));
    assert.equal(new Set(names).size, names.length, 'names are unique across global_stats and global_ext');
    assert.deepEqual(names, [...native.abi().globalStats, ...native.abi().globalExtStats]);
  });

  // A counter's slot is its identity in the pins: a daemon of another build
  // reads the slot under the name its own header gives it.
  test('global_stats holds the counters of ABI 1, in their order (frozen: a new counter goes to global_ext)', () => {
    assert.deepEqual(globalStatLists().stats, [
      'xdp_tx', 'xdp_redirect', 'pass_not_vip', 'pass_no_backend', 'pass_unsupported', 'drop_no_backend', 'drop_malformed',
      'drop_fragment', 'drop_no_table', 'aborted', 'flow_hit', 'flow_miss', 'flow_insert_failed', 'icmp_error_steered',
      'fragment', 'ipv6_ext_unknown', 'service_slow_lookup',
    ]);
  });

  test('global_ext is append-only: the released counters keep their slots', () => {
    const released = ['pass_neigh_owned', 'drop_neigh_expired', 'pass_not_our_mac']; // append a new counter here and at the end of XDPLB_GLOBAL_EXT_STATS
    assert.deepEqual(globalStatLists().ext.slice(0, released.length), released, 'a released counter was removed, renamed or moved in XDPLB_GLOBAL_EXT_STATS');
    assert.deepEqual(globalStatLists().ext, released, 'XDPLB_GLOBAL_EXT_STATS has counters this test does not list: add them to `released`, in order');
  });
});

describe('codecs', () => {
  test('round-trip', () => {
    const vip = mustParseIp('2001:db8::201');
    const key = { addr: vip.bytes, family: 6 as const, proto: 6, port: 443 };
    assert.deepEqual(decodeServiceKey(encodeServiceKey(key)), key);
    assert.equal(encodeServiceKey(key).readUInt16BE(LAYOUT.service_key.offsets.port), 443, 'port is in network order');
    const svc = { id: 7, flags: 3, seed: 0xdeadbeef };
    assert.deepEqual(decodeService(encodeService(svc)), svc);
    const dest = { ifindex: 9, mac: Buffer.from('020000000101', 'hex'), srcMac: Buffer.from('020000000002', 'hex'), state: 2, service: 7 };
    assert.deepEqual(decodeDest(encodeDest(dest)), dest);
    for (const health of ['none', 'up', 'down'] as const)
      for (const configured of ['active', 'draining'] as const) {
        const info = { addr: Buffer.from(mustParseIp('10.240.0.101').bytes), family: 4 as const, service: 7, weight: 3, configured, health };
        const b = encodeDestInfo(info);
        assert.deepEqual(decodeDestInfo(b), info);
        assert.equal(b[LAYOUT.dest_info.offsets.health], HEALTH[health]);
        assert.equal(b[LAYOUT.dest_info.offsets.configured], CONFIGURED[configured]);
      }
  });

  test('owned-VIP keys spell addresses as service keys do; the owner deadline is a host-order u64', () => {
    for (const text of ['10.240.0.201', '2001:db8::201']) {
      const ip = mustParseIp(text);
      const key = encodeVipKey(ip);
      assert.deepEqual(key.subarray(0, 16), encodeServiceKey({ addr: ip.bytes, family: ip.family, proto: 6, port: 80 }).subarray(0, 16), text);
      assert.equal(key[LAYOUT.vip_key.offsets.family], ip.family);
      assert.deepEqual(decodeVipKey(key), { bytes: ip.bytes, family: ip.family });
    }
    const dirty = Buffer.alloc(16, 0xee);
    dirty.set([10, 0, 0, 1]);
    assert.deepEqual(encodeVipKey({ bytes: dirty, family: 4 }).subarray(4, 16), Buffer.alloc(12), 'an IPv4 key is zero after its 4 bytes');
    for (const ns of [0n, 123456789012345n, VIP_OWNER_FOREVER]) assert.equal(decodeVipOwner(encodeVipOwner(ns)), ns);
    assert.equal(encodeVipOwner(1n)[0], 1, 'host (little-endian) order');
  });

  test('the ingress MAC is its 6 bytes as on the wire, then zero; all zero is unset', () => {
    const mac = Buffer.from('02000000abcd', 'hex');
    const value = encodeIngressMac(mac);
    assert.deepEqual(value, Buffer.from('02000000abcd0000', 'hex'));
    assert.deepEqual(decodeIngressMac(value), mac);
    assert.deepEqual(encodeIngressMac(null), Buffer.alloc(LAYOUT.ingress_mac.size), 'null: all zero');
    assert.equal(decodeIngressMac(Buffer.alloc(8)), null, 'all zero: unset');
  });

  test("a service's flags say its scheduler and its no-backend policy", () => {
    for (const scheduler of SCHEDULERS)
      for (const noBackend of NO_BACKEND_POLICIES) assert.deepEqual(decodeServiceFlags(encodeServiceFlags({ scheduler, noBackend })), { scheduler, noBackend });
    assert.equal(encodeServiceFlags({ scheduler: 'maglev-source', noBackend: 'pass' }), CONSTANTS.SVC_F_SOURCE_HASH | CONSTANTS.SVC_F_NO_BACKEND_PASS);
    assert.equal(encodeServiceFlags({ scheduler: 'maglev', noBackend: 'drop' }), 0);
  });
});

describe('service names in service_info', () => {
  const info = (name: string) => decodeServiceInfo(encodeServiceInfo({ name, entry: 3, tableSig: 9 }));

  test('a name that fits is recorded as it is', () => {
    const name = 'n'.repeat(SERVICE_NAME_LEN - 1);
    assert.equal(pinnedServiceName(name), name);
    assert.deepEqual(info(name), { name, entry: 3, tableSig: 9 });
    assert.equal(info('web').name, 'web');
  });

  test('a longer one: its beginning, "~" and a hash of the whole, in 63 bytes; names that share their beginning stay apart', () => {
    const base = `${'team-a'.padEnd(60, 'x')}/`;
    const a = `${base}checkout:https`;
    const b = `${base}checkout:http`;
    const pa = pinnedServiceName(a);
    const pb = pinnedServiceName(b);
    assert.equal(Buffer.byteLength(pa), SERVICE_NAME_LEN - 1);
    assert.match(pa, /^team-axxx+~[0-9a-f]{16}$/);
    assert.ok(a.startsWith(pa.slice(0, pa.indexOf('~'))), 'it starts as the name does');
    assert.notEqual(pa, pb);
    assert.equal(pinnedServiceName(a), pa, 'the same name, the same form');
    assert.equal(info(a).name, pa, 'what the map holds');
    assert.equal(pinnedServiceName(pa), pa, 'the pinned form is its own');
  });

  test('a name is never cut inside a UTF-8 character', () => {
    const name = `${'a'.repeat(45)}${'é'.repeat(20)}`;
    const p = pinnedServiceName(name);
    assert.ok(Buffer.byteLength(p) <= SERVICE_NAME_LEN - 1);
    assert.ok(!p.includes('\ufffd'), p);
    assert.equal(info(name).name, p);
  });
});
