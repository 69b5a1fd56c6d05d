// `xdplb trace` and `xdplb status --ipvsadm` through bin/xdplb, on a data plane
// pinned in the bpffs (no daemon): the trace read from the pins is the one
// computed from the loaded maps, its text tells the story an operator asks
// for, bad usage exits 2, nothing attached 3; status --ipvsadm prints the
// pinned services in ipvsadm's exact text.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeFlow, encodeFlowKey } from '../../src/dataplane/abi.ts';
import { detachPins } from '../../src/dataplane/attach.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { dataPlaneMaps } from '../../src/trace/read.ts';
import { trace, type TraceQuery } from '../../src/trace/trace.ts';
import { Fixture, type FixtureService } from '../helpers/dataplane-fixture.ts';
import { ethernet, ipv4, MAC, tcp } from '../helpers/packets.ts';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const PIN_DIR = `/sys/fs/bpf/xdplb-test-trace-cli-${process.pid}`;
const runDir = mkdtempSync(join(tmpdir(), 'xdplb-trace-cli-'));

function xdplb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(XDPLB, args, { encoding: 'utf8', env: { ...process.env, XDPLB_RUN_DIR: runDir } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let fx: Fixture;
const WEB: FixtureService = { id: 1, vip: '10.240.0.201', port: 80, proto: 'tcp', backends: [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }] };
const DNS: FixtureService = { id: 2, vip: '10.240.0.202', port: 0, proto: 'udp', sourceHash: true, backends: [{ n: 1, weight: 2 }, { n: 2, weight: 2 }] };

/** The control plane's records the program never reads: names, backend addresses, weights, health. */
function records(s: FixtureService, name: string, health: Record<number, 'up' | 'down'>): void {
  fx.dp.putServiceInfo(s.id, { name, entry: s.id, tableSig: 0 });
  for (const b of s.backends) {
    const addr = Buffer.alloc(16);
    mustParseIp(`10.240.0.${100 + b.n}`).bytes.copy(addr, 0, 0, 4);
    fx.dp.putDestInfo(s.id * 100 + b.n, { addr, family: 4, service: s.id, weight: b.weight ?? 1, configured: b.state === 'draining' ? 'draining' : 'active', health: health[b.n] ?? 'up' });
  }
}

before(async () => {
  rmSync(PIN_DIR, { recursive: true, force: true });
  fx = await Fixture.create(16381, 64, PIN_DIR);
  fx.setService(WEB);
  fx.setService({ ...WEB, backends: [{ n: 1 }, { n: 2 }, { n: 3, state: 'draining' }, { n: 4, state: 'gone' }] });
  records({ ...WEB, backends: [{ n: 1 }, { n: 2 }, { n: 3, state: 'draining' }, { n: 4 }] }, 'web', { 4: 'down' });
  fx.setService(DNS);
  records(DNS, 'dns', {});
});

after(() => {
  detachPins(PIN_DIR);
});

const web = (client: string, clientPort: number): TraceQuery => ({ protocol: 'tcp', vip: mustParseIp('10.240.0.201'), port: 80, client: mustParseIp(client), clientPort });

/** The trace of the loaded maps, as JSON would carry it (the ages, which move, left out). */
function inProcess(q: TraceQuery): unknown {
  const t = JSON.parse(JSON.stringify(trace(q, dataPlaneMaps(fx.dp, { ingressIfindex: null, nicMac: fx.dp.ingressMac() })))) as Record<string, unknown>;
  return withoutAges(t);
}

function withoutAges(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v), (k, x) => (k === 'ageSeconds' ? undefined : x));
}

/** A client port of 10.240.0.10 whose slot changed owner (from the draining backend 3). */
function changedSlotPort(): number {
  for (let port = 40000; port < 50000; port++) if (trace(web('10.240.0.10', port), dataPlaneMaps(fx.dp, { ingressIfindex: null, nicMac: null })).packets.slot?.previousOwner?.dest === 103) return port;
  throw new Error('no port of 10.240.0.10 lands on a slot backend 3 owned');
}

describe('xdplb trace, from the pins', () => {
  test('--json is the trace of the same maps; the text names the service, slot, owners, flow entry and each packet\u2019s backend', () => {
    const port = changedSlotPort();
    const r = xdplb('trace', '10.240.0.201:80', '--from', `10.240.0.10:${port}`, '--pin-dir', PIN_DIR, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(withoutAges(JSON.parse(r.stdout)), inProcess(web('10.240.0.10', port)));
    const text = xdplb('trace', '10.240.0.201:80', '--from', `10.240.0.10:${port}`, '--pin-dir', PIN_DIR);
    assert.equal(text.status, 0, text.stderr);
    const t = trace(web('10.240.0.10', port), dataPlaneMaps(fx.dp, { ingressIfindex: null, nicMac: null }));
    const lines = text.stdout.split('\n');
    assert.equal(lines[0], `TCP 10.240.0.10:${port} → 10.240.0.201:80`);
    assert.match(text.stdout, /^service: web, TCP 10\.240\.0\.201:80, id 1, found through the index; scheduler maglev, no backend: drop$/m);
    assert.match(text.stdout, new RegExp(`^slot: ${t.packets.slot!.index} of 16381, owner 10\\.240\\.0\\.10[12] \\(dest 10[12], MAC 02:00:00:00:01:0[12], active, health up, weight 1\\)$`, 'm'));
    assert.match(text.stdout, /^ {6}changed owner, previous owner 10\.240\.0\.103 \(dest 103, MAC 02:00:00:00:01:03, draining, health up, weight 1\): its packets consult the flow table$/m);
    assert.match(text.stdout, /^flow table: no entry for this flow$/m);
    assert.match(text.stdout, /^SYN: {13}XDP_TX \[xdp_tx\] → 10\.240\.0\.10[12] /m);
    assert.match(text.stdout, /^non-SYN segment: XDP_TX \[xdp_tx\] → 10\.240\.0\.103 \(dest 103, MAC 02:00:00:00:01:03, draining/m);
    assert.match(text.stdout, /stays with its previous owner while that one exists/);
    assert.match(text.stdout, /^ICMP error: {6}XDP_TX \[xdp_tx\] → 10\.240\.0\.103 /m);
    assert.match(text.stdout, /^ {2}service: none: fragments carry no ports, so only a port-less service can take them, and 10\.240\.0\.201 has no port-less TCP service: dropped$/m);
    assert.match(text.stdout, /^ {2}fragment: {8}XDP_DROP \[drop_fragment\]$/m);
  });

  test('a flow-table entry is shown with its backend and age; the program follows it (BPF_PROG_TEST_RUN)', async () => {
    const port = changedSlotPort();
    const client = mustParseIp('10.240.0.10');
    const key = { saddr: client.bytes, daddr: mustParseIp('10.240.0.201').bytes, sport: port, dport: 80, proto: 6, family: 4 as const };
    fx.dp.maps.flows.update(encodeFlowKey(key), encodeFlow({ dest: 102, service: 1, lastSeenNs: process.hrtime.bigint() - 5_000_000_000n }));
    try {
      const r = xdplb('trace', '10.240.0.201:80', '--from', `10.240.0.10:${port}`, '--pin-dir', PIN_DIR);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^flow table: an entry for this flow naming 10\.240\.0\.102 \(dest 102, MAC 02:00:00:00:01:02, active, health up, weight 1\), last seen 5\.\d s ago$/m);
      assert.match(r.stdout, /^non-SYN segment: XDP_TX \[xdp_tx\] → 10\.240\.0\.102 /m);
      const out = await fx.run(ethernet(ipv4('10.240.0.10', '10.240.0.201', tcp(port, 80, 'ack'))));
      assert.equal(out.packet[5], 2, 'the program sends the segment where the entry says, as trace said');
    } finally {
      fx.dp.maps.flows.delete(encodeFlowKey(key));
    }
  });

  test('port-less, maglev-source, over UDP: the service of every port, the client address hashed, fragments too', () => {
    const r = xdplb('trace', '10.240.0.202:5353', '--from', '10.1.2.3:999', '--proto', 'udp', '--pin-dir', PIN_DIR);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^service: dns, UDP 10\.240\.0\.202:\* \(port-less: every port\), id 2, found through the index; scheduler maglev-source, no backend: drop$/m);
    assert.match(r.stdout, /^hash: MurmurHash3 of the client address, seed 0x5eed: 0x[0-9a-f]{8}$/m);
    assert.match(r.stdout, /^datagram: {8}XDP_TX \[xdp_tx\] → 10\.240\.0\.10[12] \(dest 20[12]/m);
    assert.match(r.stdout, /^ {2}fragment: {8}XDP_TX \[xdp_tx\] → 10\.240\.0\.10[12] \(dest 20[12]/m);
  });

  test('why no service takes it: not a VIP, a port it does not serve, a protocol it does not serve', () => {
    const cases: [string[], RegExp][] = [
      [['10.240.0.99:80', '--from', '10.0.0.1:1'], /^service: none: 10\.240\.0\.99 is not in the VIP prefilter \(bit \d+ clear\): not a VIP, passed to the kernel untouched$/m],
      [['10.240.0.201:443', '--from', '10.0.0.1:1'], /^service: none: 10\.240\.0\.201:443 is not a service: 10\.240\.0\.201 serves TCP on port 80 only, and the VIP has no port-less TCP service: passed to the kernel untouched$/m],
      [['10.240.0.201:80', '--from', '10.0.0.1:1', '--proto', 'udp'], /^service: none: 10\.240\.0\.201 serves no UDP port \(only TCP 10\.240\.0\.201:80\), and the VIP has no port-less UDP service/m],
    ];
    for (const [args, expected] of cases) {
      const r = xdplb('trace', ...args, '--pin-dir', PIN_DIR);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, expected, args.join(' '));
      assert.match(r.stdout, /XDP_PASS \[pass_not_vip\]/);
    }
  });

  test('with the NIC\u2019s MAC set: the frame must be addressed to it; --to-mac another one is passed', () => {
    fx.dp.setIngressMac(MAC.director);
    try {
      const r = xdplb('trace', '10.240.0.201:80', '--from', '10.0.0.1:1000', '--pin-dir', PIN_DIR);
      assert.match(r.stdout, /^frame: must be addressed to 02:00:00:00:00:02 \(the NIC's MAC\): a frame for a service sent to any other MAC is passed to the kernel \[pass_not_our_mac\]$/m);
      assert.match(r.stdout, /^SYN: {13}XDP_TX/m);
      const other = xdplb('trace', '10.240.0.201:80', '--from', '10.0.0.1:1000', '--to-mac', '02:00:00:00:be:ef', '--pin-dir', PIN_DIR);
      assert.match(other.stdout, /^SYN: {13}XDP_PASS \[pass_not_our_mac\]$/m);
    } finally {
      fx.dp.setIngressMac(null);
    }
  });

  test('--help has examples; bad usage exits 2 naming the problem; nothing attached exits 3', () => {
    const help = xdplb('trace', '--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Example:\n {2}xdplb trace 10\.240\.0\.201:80 --from 10\.240\.0\.10:40000\n/);
    assert.match(help.stdout, /Exit codes: 0 success/);
    const usage: [string[], RegExp][] = [
      [['10.240.0.201:80'], /trace needs the client: --from CLIENT:PORT/],
      [['10.240.0.201', '--from', '10.0.0.1:1'], /VIP:PORT: 10\.240\.0\.201 has no port: write 10\.240\.0\.201:PORT/],
      [['2001:db8::201:80', '--from', '[2001:db8::1]:1'], /2001:db8::201:80 has no port: write \[2001:db8::201:80\]:PORT/], // an IPv6 address itself: the port goes after brackets
      [['10.240.0.201:80', '--from', '2001:db8::1:1'], /--from: 2001:db8::1:1 has no port/],
      [['10.240.0.201:99999', '--from', '10.0.0.1:1'], /port 99999 is not 0 to 65535/],
      [['10.240.0.201:80', '--from', '[2001:db8::1]:1'], /a flow has one family/],
      [['10.240.0.201:80', '--from', '10.0.0.1:1', '--to-mac', 'nope'], /--to-mac nope: not a MAC/],
      [['10.240.0.201:80', '--from', '10.0.0.1:1', '--proto', 'sctp'], /Allowed choices are tcp, udp/],
    ];
    for (const [args, message] of usage) {
      const r = xdplb('trace', ...args, '--pin-dir', PIN_DIR);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    const none = xdplb('trace', '10.240.0.201:80', '--from', '10.0.0.1:1', '--pin-dir', '/sys/fs/bpf/xdplb-test-trace-none');
    assert.equal(none.status, 3, none.stderr);
  });
});

describe('xdplb status --ipvsadm, from the pins', () => {
  test('ipvsadm -L -n exactly: the draining backend at weight 0, the gone one left out, flow-table entries as ActiveConn/InActConn', () => {
    const now = process.hrtime.bigint();
    const planted = [
      { sport: 1, dest: 101, age: 0n },
      { sport: 2, dest: 101, age: 1_000_000_000n },
      { sport: 3, dest: 102, age: 60_000_000_000n }, // older than the 30 s window: inactive
      { sport: 4, dest: 103, age: 2_000_000_000n },
    ];
    const keys = planted.map((p) => {
      const key = encodeFlowKey({ saddr: mustParseIp('10.9.0.1').bytes, daddr: mustParseIp('10.240.0.201').bytes, sport: p.sport, dport: 80, proto: 6, family: 4 });
      fx.dp.maps.flows.update(key, encodeFlow({ dest: p.dest, service: 1, lastSeenNs: now - p.age }));
      return key;
    });
    try {
      const r = xdplb('status', '--ipvsadm', '--pin-dir', PIN_DIR);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(
        r.stdout,
        [
          'IP Virtual Server version 1.2.1 (size=65536)',
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
          'TCP  10.240.0.201:80 mh (mh-port)',
          '  -> 10.240.0.101:80              Route   1      2          0         ',
          '  -> 10.240.0.102:80              Route   1      0          1         ',
          '  -> 10.240.0.103:80              Route   0      1          0         ',
          'UDP  10.240.0.202:0 mh',
          '  -> 10.240.0.101:0               Route   2      0          0         ',
          '  -> 10.240.0.102:0               Route   2      0          0         ',
          '',
        ].join('\n'),
      );
    } finally {
      for (const k of keys) fx.dp.maps.flows.delete(k);
    }
  });

  test('--stats counts what the program forwarded (InPkts, InBytes; Out* 0); --rate over a quiet second; --json with --ipvsadm is bad usage', async () => {
    const before = fx.dp.serviceTraffic(1);
    const frame = ethernet(ipv4('10.240.0.10', '10.240.0.201', tcp(41000, 80, 'syn')));
    for (let i = 0; i < 3; i++) assert.equal((await fx.run(frame)).verdict, 'TX');
    const r = xdplb('status', '--ipvsadm', '--stats', '--pin-dir', PIN_DIR);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 3), ['IP Virtual Server version 1.2.1 (size=65536)', 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes', '  -> RemoteAddress:Port']);
    const pkts = Number(before.packets) + 3;
    const bytes = Number(before.bytes) + 3 * (frame.length - 14);
    const conns = Number(before.newFlows) + 3;
    assert.equal(lines[3], `${'TCP  10.240.0.201:80'.padEnd(33)}${[conns, pkts, 0, bytes, 0].map((n) => String(n).padStart(9)).join('')}`);
    assert.equal(xdplb('status', '--ipvsadm', '--json', '--pin-dir', PIN_DIR).status, 2);
    const rate = xdplb('status', '--ipvsadm', '--rate', '--pin-dir', PIN_DIR);
    assert.equal(rate.status, 0, rate.stderr);
    assert.deepEqual(rate.stdout.split('\n').slice(1, 4), [
      'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
      '  -> RemoteAddress:Port',
      `${'TCP  10.240.0.201:80'.padEnd(33)}${'        0'.repeat(5)}`,
    ]);
  });
});

