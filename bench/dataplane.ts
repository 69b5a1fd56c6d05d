// npm run bench:dataplane [-- --json] [-- --quick]
// ns/packet of the XDP program through BPF_PROG_TEST_RUN, next to two
// baselines measured in the same run: an empty XDP_PASS program and a minimal
// parse + MAC rewrite + XDP_TX. net_ns = case - empty baseline (same mode).
// "repeat" mode runs one frame `repeat` times in the kernel; "varied" mode runs
// one frame per syscall with a different client address each time (a new flow
// per packet), and is compared with the baselines run the same way.
import { fileURLToPath } from 'node:url';
import { addVipBit, CONSTANTS } from '../src/dataplane/abi.ts';
import { DataPlane } from '../src/dataplane/dataplane.ts';
import { native, type NativeProgram } from '../src/dataplane/native.ts';
import { mustParseIp } from '../src/model/address.ts';
import { maglevTable } from '../src/model/maglev.ts';
import { IPPROTO } from '../src/model/protocol.ts';
import { putServiceIndexed } from '../test/helpers/dataplane-fixture.ts';
import { ethernet, icmp4Error, ipv4, MAC, tcp, udp } from '../test/helpers/packets.ts';

const args = new Set(process.argv.slice(2));
const JSON_OUT = args.has('--json');
const QUICK = args.has('--quick');
const REPEAT = QUICK ? 200_000 : 1_000_000;
const VARIED = QUICK ? 100_000 : 1_000_000;
const RUNS = 5;
const MAGLEV = 16381;
const SERVICES = QUICK ? [1, 10_000] : [1, 100, 10_000];
const BACKENDS = QUICK ? [2, 1000] : [2, 100, 1000];
const SADDR_OFFSET = 14 + 12;

interface Row {
  case: string;
  services: number;
  backends: number;
  median_ns: number;
  min_ns: number;
  max_ns: number;
  net_ns: number;
}

type Mode = 'repeat' | 'varied';

async function measure(prog: NativeProgram, frame: Buffer, mode: Mode, expect: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (mode === 'repeat') {
      const r = await prog.testRun(frame, REPEAT);
      if (r.retval !== expect) throw new Error(`benchmark frame got verdict ${r.retval}, expected ${expect}`);
      out.push(r.durationNs);
    } else {
      const r = await prog.testRunVaried(frame, VARIED, SADDR_OFFSET);
      if (r.verdicts[expect] !== VARIED) throw new Error(`varied frames got verdicts ${r.verdicts}, expected all ${expect}`);
      out.push(r.meanNs);
    }
  }
  return out.sort((a, b) => a - b);
}

const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;

async function loadBaseline(name: string): Promise<NativeProgram> {
  const path = fileURLToPath(new URL(`../out/bpf/${name}.bpf.o`, import.meta.url));
  return (await native.loadObject(path, {})).program(name);
}

/**
 * A director with `services` VIPs, each with a TCP and a UDP service (sharing
 * one id, each with its own entry), and `backends` destinations belonging to
 * the last (measured) one; all services share one table, which only the
 * measured one really uses.
 */
async function director(services: number, backends: number, changedSlots: boolean): Promise<DataPlane> {
  const dp = await DataPlane.load({ maglevSize: MAGLEV, maxServices: 2 * services + 2, maxDests: backends + 1, maxFlows: 1 << 20 });
  // Every backend has the director's MAC: `repeat` reuses one buffer, so each repeat runs on the frame
  // the last one sent, and only a frame addressed to the director is forwarded (bpf/lib/ingress_mac.h,
  // the MAC set below as the daemon sets it). The rewrite costs the same whatever the MAC.
  for (let d = 1; d <= backends; d++)
    dp.putDest(d, { ifindex: 0, mac: MAC.director, srcMac: MAC.director, state: CONSTANTS.DEST_ACTIVE, service: services });
  const table = maglevTable(Array.from({ length: backends }, (_, i) => ({ key: `b${i}`, weight: 1 })), MAGLEV);
  const dest = Uint32Array.from(table, (i) => i + 1);
  const prev = changedSlots ? Uint32Array.from(dest, (d) => (d % backends) + 1) : new Uint32Array(MAGLEV);
  const slots = Buffer.alloc(MAGLEV * 8);
  for (let i = 0; i < MAGLEV; i++) {
    slots.writeUInt32LE(dest[i]!, i * 8);
    slots.writeUInt32LE(prev[i]!, i * 8 + 4);
  }
  const inner = native.createArrayMap(8, MAGLEV, slots);
  const ids = Buffer.alloc(4 * services);
  const fds = Buffer.alloc(4 * services);
  const filter = new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS);
  for (let s = 0; s < services; s++) {
    const vip = mustParseIp(`10.${100 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`);
    for (const [proto, port, id] of [[IPPROTO.tcp, 80, s + 1], [IPPROTO.udp, 53, s + 1]] as const) {
      const key = { addr: vip.bytes, family: 4 as const, proto, port };
      const value = { id, flags: 0, seed: 1 };
      putServiceIndexed(dp, key, value, proto === IPPROTO.tcp ? 2 * s + 1 : 2 * s + 2);
    }
    ids.writeUInt32LE(s + 1, 4 * s);
    fds.writeUInt32LE(inner.info().fd, 4 * s);
    addVipBit(filter, vip.bytes, 4);
    dp.putVip(vip);
  }
  dp.maps.maglev_tables.updateBatch(ids, fds, services); // one RCU wait for all
  inner.close();
  dp.writeVipFilter(filter, new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS));
  dp.setIngressMac(MAC.director); // as the daemon does: the check on the forwarding path is measured
  return dp;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const empty = await loadBaseline('baseline_pass');
  const rewrite = await loadBaseline('baseline_rewrite');
  const vip = (services: number) => `10.${100 + ((services - 1) >> 16)}.${((services - 1) >> 8) & 255}.${(services - 1) & 255}`;
  const frames = (services: number) => ({
    established: ethernet(ipv4('10.240.0.10', vip(services), tcp(40000, 80, 'ack', Buffer.alloc(20)))),
    syn: ethernet(ipv4('10.240.0.10', vip(services), tcp(40000, 80, 'syn'))),
    udp: ethernet(ipv4('10.240.0.10', vip(services), udp(40000, 53, Buffer.alloc(20)))),
    notVip: ethernet(ipv4('10.240.0.10', '10.240.0.2', tcp(40000, 22, 'ack', Buffer.alloc(20)))),
    icmp: ethernet(ipv4('10.240.0.1', vip(services), icmp4Error(ipv4(vip(services), '10.240.0.10', tcp(80, 40000, 'ack', Buffer.alloc(1400)))))),
  });
  const f1 = frames(1);
  const base = {
    repeat: median(await measure(empty, f1.established, 'repeat', 2)),
    varied: median(await measure(empty, f1.established, 'varied', 2)),
  };
  const push = (c: string, services: number, backends: number, xs: number[], mode: Mode) =>
    rows.push({ case: c, services, backends, median_ns: median(xs), min_ns: xs[0]!, max_ns: xs[xs.length - 1]!, net_ns: +(median(xs) - base[mode]).toFixed(2) });
  push('baseline_empty_pass', 0, 0, await measure(empty, f1.established, 'repeat', 2), 'repeat');
  push('baseline_rewrite_tx', 0, 0, await measure(rewrite, f1.established, 'repeat', 3), 'repeat');
  push('baseline_empty_pass_varied', 0, 0, await measure(empty, f1.established, 'varied', 2), 'varied');
  push('baseline_rewrite_tx_varied', 0, 0, await measure(rewrite, f1.established, 'varied', 3), 'varied');

  for (const services of SERVICES)
    for (const backends of BACKENDS) {
      const f = frames(services);
      let dp = await director(services, backends, false);
      push('tcp_established', services, backends, await measure(dp.program, f.established, 'repeat', 3), 'repeat');
      push('tcp_new_flow', services, backends, await measure(dp.program, f.syn, 'varied', 3), 'varied');
      push('udp', services, backends, await measure(dp.program, f.udp, 'repeat', 3), 'repeat');
      push('not_vip', services, backends, await measure(dp.program, f.notVip, 'repeat', 2), 'repeat');
      push('icmp_error', services, backends, await measure(dp.program, f.icmp, 'repeat', 3), 'repeat');
      dp = await director(services, backends, true);
      push('tcp_established_changed_slot', services, backends, await measure(dp.program, f.established, 'repeat', 3), 'repeat');
      push('tcp_new_flow_changed_slot', services, backends, await measure(dp.program, f.syn, 'varied', 3), 'varied');
      if (dp.globalStats().service_slow_lookup !== 0n) throw new Error('a measured packet took the slow service lookup: the benchmark setup is wrong');
      if (!JSON_OUT) process.stderr.write(`measured ${services} services x ${backends} backends\n`);
    }

  if (JSON_OUT) {
    for (const r of rows) console.log(JSON.stringify(r));
    return;
  }
  console.log(`xdplb data plane, BPF_PROG_TEST_RUN: ${RUNS} runs of ${REPEAT} repeats (varied: ${VARIED} frames), Maglev ${MAGLEV}`);
  console.log(`baselines: empty ${base.repeat.toFixed(1)} ns (repeat), ${base.varied.toFixed(1)} ns (varied, one syscall per frame)`);
  console.log(['case'.padEnd(30), 'services'.padStart(8), 'backends'.padStart(8), 'median'.padStart(8), 'min'.padStart(8), 'max'.padStart(8), 'net'.padStart(8)].join(' '));
  for (const r of rows)
    console.log([r.case.padEnd(30), String(r.services).padStart(8), String(r.backends).padStart(8), ...[r.median_ns, r.min_ns, r.max_ns, r.net_ns].map((n) => n.toFixed(1).padStart(8))].join(' '));
}

await main();
