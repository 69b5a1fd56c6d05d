// The director with real traffic in the lab: a client, a native-XDP director
// and four backends (three configured at first) on one bridge, all in
// network namespaces that this file creates and always removes.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ANNOUNCE_BURST_MS } from '../../src/director/vip-owner.ts';
import { allKeys, DataPlane } from '../../src/dataplane/dataplane.ts';
import { native } from '../../src/dataplane/native.ts';
import {
  clientRequests,
  countPackets,
  directorPid,
  inNs,
  LAB,
  labConfig,
  labDown,
  labNamespaces,
  labUp,
  readLabStatus,
  startBackendServer,
  startDirector,
  stopBackendServer,
  stopDirector,
  waitForBackends,
} from '../../src/lab/lab.ts';
import type { Status } from '../../src/status/status.ts';
import { mapIds } from '../helpers/dataplane-fixture.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLIENT = `${ROOT}src/lab/client.ts`;
const URL_ = `http://${LAB.vip}/`;
const MODE = 'native' as const;

type Reply = { ok: true; backend: string; local: number } | { ok: false; error: string };

function backendsOf(st: Status): Map<string, Status['services'][number]['backends'][number]> {
  return new Map(st.services[0]!.backends.map((b) => [b.address, b]));
}

/** A client in the client namespace holding n keep-alive connections. */
class Holder {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  constructor(n: number) {
    const argv = inNs(LAB.clientNs, [process.execPath, CLIENT, 'hold', URL_, String(n)]);
    this.child = spawn(argv[0]!, argv.slice(1));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async next(): Promise<Reply[]> {
    const r = await this.lines.next();
    if (r.done) throw new Error('the holding client ended');
    return JSON.parse(r.value) as Reply[];
  }
  async probe(): Promise<Reply[]> {
    this.child.stdin.write('probe\n');
    return this.next();
  }
  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

/** Waits for a line of the running director (its pid) that contains text. */
async function waitForLog(text: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const pid = `"pid":${directorPid()},`;
    if (readFileSync(`${LAB.runDir}/director.log`, 'utf8').split('\n').some((l) => l.includes(pid) && l.includes(text))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the director never logged "${text}"`);
}

before(async () => {
  await labUp({ backends: 4, mode: MODE, configured: [1, 2, 3] });
});
after(async () => {
  await labDown();
});

describe('Direct Routing through the lab director', () => {
  test('HTTP reaches every backend near its weight; replies bypass the director; counters match the wire', async () => {
    const before = backendsOf(readLabStatus());
    const requests = 'dst host 10.240.0.201 and tcp dst port 80';
    const replies = 'src host 10.240.0.201 and tcp src port 80';
    const seen: Record<string, number> = {};
    let results: Reply[] = [];
    const onDirector = await countPackets('p-director', replies, async () => {
      const b1 = await countPackets('p-b1', requests, async () => {
        const b2 = await countPackets('p-b2', requests, async () => {
          const b3 = await countPackets('p-b3', requests, async () => {
            results = clientRequests(300) as Reply[];
          });
          seen[LAB.backend(3)] = b3.packets;
        });
        seen[LAB.backend(2)] = b2.packets;
      });
      seen[LAB.backend(1)] = b1.packets;
    });
    const failed = results.filter((r) => !r.ok);
    assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 3))}`);
    const per: Record<string, number> = {};
    for (const r of results) if (r.ok) per[r.backend] = (per[r.backend] ?? 0) + 1;
    for (let i = 1; i <= 3; i++) {
      const n = per[LAB.backendName(i)] ?? 0;
      assert.ok(n >= 60 && n <= 140, `backend ${i} answered ${n} of 300 connections (equal weights: about 100)`);
    }
    assert.equal(per[LAB.backendName(4)], undefined, 'the unconfigured backend gets nothing');
    assert.equal(onDirector.packets, 0, 'no reply crossed the director’s bridge port');
    const after = backendsOf(readLabStatus());
    for (let i = 1; i <= 3; i++) {
      const addr = LAB.backend(i);
      assert.equal(after.get(addr)!.packets - before.get(addr)!.packets, seen[addr], `packets forwarded to ${addr} (status) = packets that reached its port (tcpdump)`);
    }
  });

  test('a backend reaches the VIP itself (node-local)', () => {
    const argv = inNs(LAB.backendNs(1), [process.execPath, CLIENT, 'requests', URL_, '5']);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    const replies = JSON.parse(r.stdout) as Reply[];
    assert.deepEqual(replies.map((x) => (x.ok ? x.backend : x.error)), Array(5).fill(LAB.backendName(1)), 'answered by itself, through its lo VIP');
  });

  test('IPv6: a v6 VIP is owned and announced, HTTP reaches every backend near its weight, replies bypass the director', async () => {
    const good = readFileSync(LAB.configPath, 'utf8');
    const web6 = `  - name: web6\n    vip: ${LAB.vip6}\n    port: 80\n    backends:\n${[1, 2, 3].map((i) => `      - { address: ${LAB.backend6(i)} }`).join('\n')}\n`;
    try {
      writeFileSync(LAB.configPath, good + web6);
      const deadline = Date.now() + 15_000;
      let v6: Status['services'][number] | undefined;
      while (Date.now() < deadline) {
        v6 = readLabStatus().services.find((s) => s.vip === LAB.vip6);
        if (v6?.backends.filter((b) => b.state === 'active').length === 3) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(v6?.backends.filter((b) => b.state === 'active').length, 3, `three v6 backends resolved over NDP and active: ${JSON.stringify(v6)}`);
      const directorV6 = () => execFileSync('ip', ['-n', LAB.directorNs, '-6', 'addr', 'show', 'dev', LAB.nic], { encoding: 'utf8' });
      assert.match(directorV6(), new RegExp(`inet6 ${LAB.vip6}/128 scope global (?!.*tentative)`), 'the director holds the v6 VIP, usable at once (no DAD)');
      let replies: Reply[] = [];
      const onDirector = await countPackets('p-director', `ip6 and src host ${LAB.vip6} and tcp src port 80`, async () => {
        replies = clientRequests(150, `http://[${LAB.vip6}]/`) as Reply[];
      });
      assert.deepEqual(replies.filter((r) => !r.ok), [], 'every v6 request answered');
      const per: Record<string, number> = {};
      for (const r of replies) if (r.ok) per[r.backend] = (per[r.backend] ?? 0) + 1;
      for (let i = 1; i <= 3; i++) {
        const n = per[LAB.backendName(i)] ?? 0;
        assert.ok(n >= 25 && n <= 75, `backend ${i} answered ${n} of 150 v6 connections (about 50)`);
      }
      assert.equal(onDirector.packets, 0, 'no v6 reply crossed the director’s bridge port');
      const after = readLabStatus().services.find((s) => s.vip === LAB.vip6)!;
      assert.ok(after.packets >= 150 * 5, `the v6 service counted its packets (${after.packets})`);
    } finally {
      writeFileSync(LAB.configPath, good);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && readLabStatus().services.some((s) => s.vip === LAB.vip6)) await new Promise((r) => setTimeout(r, 200));
      assert.doesNotMatch(execFileSync('ip', ['-n', LAB.directorNs, '-6', 'addr', 'show', 'dev', LAB.nic], { encoding: 'utf8' }), new RegExp(LAB.vip6), 'the v6 VIP left with its service');
    }
  });

  test('adding and removing a backend in the config keeps every established connection but the removed backend’s', async () => {
    const holder = new Holder(40);
    try {
      const initial = await holder.next();
      assert.ok(initial.every((r) => r.ok), 'all 40 connections open');
      writeFileSync(LAB.configPath, labConfig([1, 2, 3, 4]));
      await waitForBackends(4);
      const afterAdd = await holder.probe();
      afterAdd.forEach((r, i) => {
        const was = initial[i] as Extract<Reply, { ok: true }>;
        assert.ok(r.ok, `connection ${i} broke when a backend was added: ${JSON.stringify(r)}`);
        assert.equal(r.backend, was.backend, `connection ${i} moved`);
        assert.equal(r.local, was.local, `connection ${i} was re-opened`);
      });
      const fresh = clientRequests(80);
      assert.ok(fresh.some((r) => r.ok && r.backend === LAB.backendName(4)), 'new connections reach the added backend');

      writeFileSync(LAB.configPath, labConfig([1, 3, 4]));
      await waitForBackends(3);
      const afterRemove = await holder.probe();
      let onRemoved = 0;
      afterRemove.forEach((r, i) => {
        const was = initial[i] as Extract<Reply, { ok: true }>;
        if (was.backend === LAB.backendName(2)) {
          onRemoved++;
          return; // these may break: their backend is gone
        }
        assert.ok(r.ok, `connection ${i} on ${was.backend} broke when backend 2 was removed: ${JSON.stringify(r)}`);
        assert.equal(r.backend, was.backend);
        assert.equal(r.local, was.local, `connection ${i} was re-opened`);
      });
      assert.ok(onRemoved > 0, 'some connections were on the removed backend (the test covers that case)');
      const later = clientRequests(60);
      assert.ok(later.every((r) => r.ok && r.backend !== LAB.backendName(2)), 'new connections avoid the removed backend');
    } finally {
      holder.close();
    }
  });

  test('restarting the daemon with a rebuilt program under continuous load: no failed request, counters continue, maps adopted', async () => {
    // a rebuild of the program, loaded from its own file by the new daemon
    const rebuilt = join(mkdtempSync(join(tmpdir(), 'xdplb-upgrade-')), 'xdplb.bpf.o');
    execFileSync('clang', ['-O2', '-g', '-mcpu=v3', '-target', 'bpf', `-I/usr/include/${process.arch === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu`, '-c', `${ROOT}bpf/xdplb.bpf.c`, '-o', rebuilt]);
    const progBefore = native.openPinnedLink(`${LAB.pinDir}/link`).info().progId;
    const dpBefore = DataPlane.openPinned(LAB.pinDir);
    const idsBefore = mapIds(dpBefore);
    const packetsBefore = readLabStatus().services[0]!.packets;
    const argv = inNs(LAB.clientNs, [process.execPath, CLIENT, 'continuous', URL_]);
    const client = spawn(argv[0]!, argv.slice(1));
    let out = '';
    client.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise((r) => setTimeout(r, 1000));
    const oldPid = directorPid();
    await stopDirector();
    await new Promise((r) => setTimeout(r, 500)); // forwarding with no daemon at all
    startDirector(MODE, ['--object', rebuilt]);
    assert.notEqual(directorPid(), oldPid);
    await waitForLog('"outcome":"replaced"');
    await new Promise((r) => setTimeout(r, 1000));
    const done = new Promise<void>((r) => client.once('exit', () => r()));
    client.kill('SIGTERM');
    await done;
    const result = JSON.parse(out) as { ok: number; failures: string[] };
    assert.deepEqual(result.failures, [], 'no request failed across the restart');
    assert.ok(result.ok > 20, `the client kept sending (${result.ok} requests)`);
    assert.ok(readLabStatus().services[0]!.packets > packetsBefore, 'counters continue from where they were');
    assert.deepEqual(mapIds(DataPlane.openPinned(LAB.pinDir)), idsBefore, 'the restarted daemon adopted the same maps');
    assert.notEqual(native.openPinnedLink(`${LAB.pinDir}/link`).info().progId, progBefore, 'the link runs the rebuilt program');
  });

  test('a bad config on reload is refused; the previous one keeps forwarding', async () => {
    const good = readFileSync(LAB.configPath, 'utf8');
    const statusBefore = readLabStatus();
    try {
      writeFileSync(LAB.configPath, good.replace(`vip: ${LAB.vip}`, 'vip: 10.240.0.999'));
      process.kill(directorPid()!, 'SIGHUP');
      await waitForLog('reload refused');
      assert.match(readFileSync(`${LAB.runDir}/director.log`, 'utf8'), /services\[0\]\.vip: an IPv4 or IPv6 address/);
      const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'status', '--pin-dir', LAB.pinDir, '--json']);
      const viaDaemon = JSON.parse(spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } }).stdout);
      assert.equal(viaDaemon.lastReload.ok, false, 'status (from the daemon) shows the refused reload');
      assert.match(viaDaemon.lastReload.error, /services\[0\]\.vip/);
      assert.equal(viaDaemon.services[0].backends.length, 3, 'and the services, as from the pins');
      const replies = clientRequests(20);
      assert.ok(replies.every((r) => r.ok), 'still forwarding');
      assert.deepEqual(
        readLabStatus().services.map((s) => [s.vip, s.backends.map((b) => `${b.address}:${b.state}`)]),
        statusBefore.services.map((s) => [s.vip, s.backends.map((b) => `${b.address}:${b.state}`)]),
        'the data plane still holds the previous config',
      );
    } finally {
      writeFileSync(LAB.configPath, good);
    }
  });

  test('a config replaced by renaming a new file over it (editors, Ansible, ConfigMaps) is reloaded every time', async () => {
    const good = readFileSync(LAB.configPath, 'utf8');
    const backendsIn = (text: string) => (text.match(/- \{ address: 10\.240\.0\.\d+ \}/g) ?? []).length;
    const replace = (text: string) => {
      writeFileSync(`${LAB.configPath}.new`, text);
      renameSync(`${LAB.configPath}.new`, LAB.configPath);
    };
    try {
      replace(labConfig([1, 2, 3, 4]));
      await waitForBackends(4);
      replace(labConfig([1, 2]));
      await waitForBackends(2, 10_000); // a watch on the replaced file itself would never see this one
    } finally {
      replace(good);
      await waitForBackends(backendsIn(good));
    }
  });

  test('a daemon that cannot start its metrics server exits with the reason (not a half-started daemon); forwarding goes on', async () => {
    await stopDirector();
    const blockArgv = inNs(LAB.directorNs, [process.execPath, '-e', "require('node:net').createServer().listen(9842, '127.0.0.1', () => console.log('listening'))"]);
    const blocker = spawn(blockArgv[0]!, blockArgv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => blocker.stdout!.once('data', r));
      const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'attach', '-c', LAB.configPath, '--pin-dir', LAB.pinDir, '--mode', MODE]);
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...LAB.directorEnv } });
      assert.equal(r.signal, null, 'it ends by itself');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /EADDRINUSE.*127\.0\.0\.1:9842/);
      assert.ok(clientRequests(20).every((x) => x.ok), 'the attached program keeps forwarding');
    } finally {
      blocker.kill();
      startDirector(MODE);
      await waitForLog('"msg":"ready"');
    }
  });

  test('health checks: a stopped backend leaves within interval x fall + interval, comes back after rise', async () => {
    const good = readFileSync(LAB.configPath, 'utf8');
    const check = '    healthCheck: { type: http, path: /, interval: 500ms, timeout: 300ms, rise: 2, fall: 2 }\n';
    const configured = [1, 3, 4];
    const state = (i: number) => readLabStatus().services[0]!.backends.find((b) => b.address === LAB.backend(i))!;
    const until = async (what: string, ok: () => boolean, ms: number) => {
      const t0 = Date.now();
      while (!ok()) {
        if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return Date.now() - t0;
    };
    try {
      writeFileSync(LAB.configPath, labConfig(configured, check));
      await until('health checks on every backend', () => configured.every((i) => state(i).health === 'up'), 10_000);
      await stopBackendServer(3);
      const outMs = await until('backend 3 out', () => state(3).state === 'down' && state(3).health === 'down', 5000);
      // interval x fall + interval = 1500 ms, + one probe timeout, + 1 s for this test's
      // own polling and a loaded 2-core machine
      assert.ok(outMs <= 500 * 2 + 500 + 300 + 1000, `left the table after ${outMs} ms (interval x fall + interval = 1500 ms)`);
      const replies = clientRequests(60);
      assert.deepEqual(replies.filter((r) => !r.ok), [], 'no failed request once it is out');
      assert.ok(replies.every((r) => r.backend !== LAB.backendName(3)));
      assert.match(readFileSync(`${LAB.runDir}/director.log`, 'utf8'), /"backend":"10\.240\.0\.103",[^\n]*"health":"down"[^\n]*"msg":"backend down"/, 'one log line per transition');
      // a daemon restart meanwhile: the dead backend stays out (its verdict is in the pins), not back for fall x interval
      await stopDirector();
      startDirector(MODE);
      await waitForLog('"outcome":"replaced"');
      assert.deepEqual([state(3).state, state(3).health], ['down', 'down'], 'still out right after the restart');
      const afterRestart = clientRequests(40);
      assert.deepEqual(afterRestart.filter((r) => !r.ok), [], 'no request failed after the restart');
      startBackendServer(3);
      const backMs = await until('backend 3 back', () => state(3).state === 'active' && state(3).health === 'up', 5000);
      assert.ok(backMs <= 500 * 2 + 500 + 1000, `back after ${backMs} ms (rise 2 x 500 ms, + server start)`);
      assert.ok(clientRequests(60).some((r) => r.ok && r.backend === LAB.backendName(3)), 'it takes new connections again');
      // a daemon started with checks in its config records their verdicts from its first apply
      await stopDirector();
      startDirector(MODE);
      await waitForLog('"outcome":"replaced"');
      assert.deepEqual(configured.map((i) => state(i).health), ['up', 'up', 'up'], 'health shown right after a start');
    } finally {
      writeFileSync(LAB.configPath, good);
      startBackendServer(3);
    }
  });

  test('a backend that stops answering ARP is taken out (not black-holed) and comes back when it answers', async () => {
    // the lab director's neighbour timers, shortened so the kernel gives up on a silent backend in seconds
    const neigh = (key: string) => `/proc/sys/net/ipv4/neigh/${LAB.nic}/${key}`;
    const inDirector = (script: string) => {
      const a = inNs(LAB.directorNs, ['sh', '-c', script]);
      return execFileSync(a[0]!, a.slice(1), { encoding: 'utf8' });
    };
    const keys = ['base_reachable_time_ms', 'delay_first_probe_time', 'retrans_time_ms'];
    const saved = inDirector(keys.map((k) => `cat ${neigh(k)}`).join('; ')).trim().split('\n');
    const b = (i: number) => readLabStatus().services[0]!.backends.find((x) => x.address === LAB.backend(i))!;
    const until = async (what: string, ok: () => boolean, ms = 20_000) => {
      const t0 = Date.now();
      while (!ok()) {
        if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      inDirector(`echo 1000 > ${neigh('base_reachable_time_ms')}; echo 1 > ${neigh('delay_first_probe_time')}; echo 200 > ${neigh('retrans_time_ms')}`);
      assert.equal(b(3).state, 'active');
      execFileSync('ip', ['-n', LAB.backendNs(3), 'link', 'set', LAB.nic, 'down']); // silent on the wire, MAC unchanged
      // as if its entry had aged (15-45 s): stale, so the next probe asks again
      execFileSync('ip', ['-n', LAB.directorNs, 'neigh', 'change', LAB.backend(3), 'lladdr', b(3).mac, 'nud', 'stale', 'dev', LAB.nic]);
      await until('backend 3 unresolved and out', () => b(3).state === 'down');
      assert.match(readFileSync(`${LAB.runDir}/director.log`, 'utf8'), /"backends":\["10\.240\.0\.103"\],"how":"(notice|poll)","msg":"backend MACs resolved, changed or lost"/);
      const replies = clientRequests(30);
      assert.deepEqual(replies.filter((r) => !r.ok), [], 'no new connection goes to the silent backend');
      execFileSync('ip', ['-n', LAB.backendNs(3), 'link', 'set', LAB.nic, 'up']);
      await until('backend 3 back', () => b(3).state === 'active');
    } finally {
      execFileSync('ip', ['-n', LAB.backendNs(3), 'link', 'set', LAB.nic, 'up']);
      inDirector(keys.map((k, i) => `echo ${saved[i]} > ${neigh(k)}`).join('; '));
    }
  });

  test('draining a backend under long-lived connections keeps them; new ones avoid it; undrain restores it', async () => {
    const backend = (...args: string[]) => {
      const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'backend', ...args, '--pin-dir', LAB.pinDir]);
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } });
      assert.equal(r.status, 0, r.stderr);
    };
    const state = () => readLabStatus().services[0]!.backends.find((b) => b.address === LAB.backend(1))!;
    const holder = new Holder(30);
    try {
      const initial = await holder.next();
      assert.ok(initial.some((r) => r.ok && r.backend === LAB.backendName(1)), 'some connections are on backend 1');
      backend('drain', 'web', LAB.backend(1));
      assert.equal(state().state, 'draining');
      const probed = await holder.probe();
      probed.forEach((r, i) => {
        const was = initial[i] as Extract<Reply, { ok: true }>;
        assert.ok(r.ok && r.backend === was.backend && r.local === was.local, `connection ${i} survives the drain: ${JSON.stringify(r)}`);
      });
      const onOne = initial.filter((r) => r.ok && r.backend === LAB.backendName(1)).length;
      // its live connections, plus any other flow pinned to it in the last 30 s by earlier tests
      assert.ok(state().activeFlows >= onOne, `status shows the ${onOne} connections still on the draining backend (${state().activeFlows})`);
      assert.ok(clientRequests(60).every((r) => r.ok && r.backend !== LAB.backendName(1)), 'new connections avoid it');
      backend('undrain', 'web', LAB.backend(1));
      assert.equal(state().state, 'active');
      assert.ok(clientRequests(60).some((r) => r.ok && r.backend === LAB.backendName(1)), 'undrained: it takes new connections');
    } finally {
      holder.close();
    }
  });

  test('a backend behind another NIC of the director is reached with XDP_REDIRECT; its replies bypass the director', async () => {
    // A second segment: bridge br1, the director's NIC lab1 on it, and backend 5 with lab0 on br1
    // (10.240.0.105/32, where the director reaches it) and up0 on the first bridge for its replies.
    const sh = (ns: string, ...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
    const b5 = LAB.backendNs(5);
    const good = readFileSync(LAB.configPath, 'utf8');
    execFileSync('ip', ['netns', 'add', b5]);
    sh(LAB.bridgeNs, 'link', 'add', 'br1', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    sh(LAB.bridgeNs, 'link', 'set', 'br1', 'up');
    const wire = (port: string, ns: string, nic: string, bridge: string) => {
      sh(LAB.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', nic, 'netns', ns);
      sh(LAB.bridgeNs, 'link', 'set', port, 'master', bridge, 'up');
      sh(ns, 'link', 'set', nic, 'up');
      execFileSync('ip', ['netns', 'exec', ns, 'ethtool', '-K', nic, 'tx', 'off', 'tso', 'off']);
      execFileSync('ip', ['netns', 'exec', LAB.bridgeNs, 'ethtool', '-K', port, 'tx', 'off', 'tso', 'off']);
    };
    wire('p-director1', LAB.directorNs, 'lab1', 'br1');
    // XDP_REDIRECT into a veth needs an XDP program on its peer (as XDP_TX does)
    sh(LAB.bridgeNs, 'link', 'set', 'dev', 'p-director1', 'xdpdrv', 'obj', `${ROOT}out/bpf/baseline_pass.bpf.o`, 'sec', 'xdp');
    sh(LAB.directorNs, 'route', 'add', `${LAB.backend(5)}/32`, 'dev', 'lab1');
    sh(b5, 'link', 'set', 'lo', 'up');
    wire('p-b5', b5, LAB.nic, 'br1');
    wire('p-b5up', b5, 'up0', 'br0');
    sh(b5, 'addr', 'add', `${LAB.backend(5)}/32`, 'dev', LAB.nic);
    sh(b5, 'addr', 'add', '10.240.0.115/24', 'dev', 'up0');
    const realserver = inNs(b5, [`${ROOT}bin/xdplb`, 'realserver', '--vip', LAB.vip]);
    execFileSync(realserver[0]!, realserver.slice(1), { env: { ...process.env, XDPLB_RUN_DIR: `${LAB.runDir}/${b5}` } });
    startBackendServer(5);
    try {
      writeFileSync(LAB.configPath, labConfig([1, 2, 3], `      - { address: ${LAB.backend(5)}, interface: lab1 }\n`));
      await waitForBackends(4);
      const before = readLabStatus();
      const requests = 'dst host 10.240.0.201 and tcp dst port 80';
      const replies = 'src host 10.240.0.201 and tcp src port 80';
      let results: Reply[] = [];
      let onSegment = 0;
      let viaLab1 = 0;
      const onDirector = await countPackets('p-director', replies, async () => {
        viaLab1 = (
          await countPackets('p-director1', replies, async () => {
            onSegment = (
              await countPackets('p-b5', requests, async () => {
                results = clientRequests(200) as Reply[];
              })
            ).packets;
          })
        ).packets;
      });
      assert.deepEqual(results.filter((r) => !r.ok), [], 'every request answered');
      const fromB5 = results.filter((r) => r.ok && r.backend === LAB.backendName(5)).length;
      assert.ok(fromB5 >= 25, `backend 5 (behind lab1) answered ${fromB5} of 200 (about 50)`);
      assert.ok(onSegment > 0, 'requests crossed the second segment');
      assert.equal(onDirector.packets + viaLab1, 0, 'no reply crossed either NIC of the director');
      const after = readLabStatus();
      const b = after.services[0]!.backends.find((x) => x.address === LAB.backend(5))!;
      const inDirector = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'status', '--json', '--pin-dir', LAB.pinDir]);
      const shown = JSON.parse(execFileSync(inDirector[0]!, inDirector.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } })) as Status;
      assert.equal(shown.services[0]!.backends.find((x) => x.address === LAB.backend(5))?.via, 'lab1', 'status on the director names the NIC it is reached through');
      assert.equal(b.packets - (before.services[0]!.backends.find((x) => x.address === LAB.backend(5))?.packets ?? 0), onSegment, 'its counter = the packets seen on its segment');
      assert.equal(after.global.xdp_redirect! - before.global.xdp_redirect!, onSegment, 'each of them left through XDP_REDIRECT');
      // a NIC that does not exist refuses the config, naming it; forwarding goes on
      writeFileSync(LAB.configPath, labConfig([1, 2, 3], `      - { address: ${LAB.backend(5)}, interface: nosuch0 }\n`));
      await waitForLog('backend 10.240.0.105: interface nosuch0'); // in the "reload refused" line
      assert.ok(clientRequests(20).every((r) => r.ok), 'the running config still forwards');
      const txPorts = () => [...allKeys(DataPlane.openPinned(LAB.pinDir).maps.tx_ports)].length;
      assert.equal(txPorts(), 1, 'lab1 is in the redirect map');
      writeFileSync(LAB.configPath, good);
      await waitForBackends(3);
      await waitForLog('NICs no longer used for XDP_REDIRECT');
      assert.equal(txPorts(), 0, 'and leaves it with its last backend');
    } finally {
      writeFileSync(LAB.configPath, good);
      await stopBackendServer(5);
      spawnSync('ip', ['netns', 'del', b5]);
      spawnSync('ip', ['-n', LAB.bridgeNs, 'link', 'del', 'br1']);
      spawnSync('ip', ['-n', LAB.directorNs, 'link', 'del', 'lab1']);
      await waitForBackends(3);
    }
  });

  test('the daemon serves /metrics, /healthz and /readyz; its counters are those of status', async () => {
    const good = readFileSync(LAB.configPath, 'utf8');
    writeFileSync(LAB.configPath, good.replace(`vip: ${LAB.vip}`, 'vip: not-an-address'));
    await waitForLog('reload refused');
    writeFileSync(LAB.configPath, good);
    await waitForLog('configuration reloaded');
    clientRequests(20);
    const fetchInNs = (path: string) => {
      const argv = inNs(LAB.directorNs, [process.execPath, '-e', `fetch('http://127.0.0.1:9842${path}').then(async (r) => process.stdout.write(r.status + '\\n' + (await r.text())))`]);
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const [code, ...body] = r.stdout.split('\n');
      return { code: Number(code), body: body.join('\n') };
    };
    assert.equal(fetchInNs('/healthz').code, 200);
    assert.equal(fetchInNs('/readyz').code, 200);
    const metrics = fetchInNs('/metrics');
    assert.equal(metrics.code, 200);
    const st = readLabStatus().services[0]!;
    const m = /^xdplb_service_packets_total\{name="web",local_address="10\.240\.0\.201",local_port="80",proto="TCP"\} (\d+)$/m.exec(metrics.body);
    assert.ok(m, 'the service series is there');
    assert.equal(Number(m[1]), st.packets, 'the same count as status (no traffic in between)');
    for (const b of st.backends) assert.match(metrics.body, new RegExp(`^xdplb_backend_packets_total\\{[^}]*remote_address="${b.address.replaceAll('.', '\\.')}"[^}]*\\} ${b.packets}$`, 'm'));
    assert.match(metrics.body, /^xdplb_config_reloads_total\{result="refused"\} [1-9]\d*$/m, 'the refused reload was counted');
    assert.match(metrics.body, /^xdplb_config_reloads_total\{result="ok"\} [1-9]\d*$/m, 'and the good one');
  });

  test('role: standby gives up the VIPs and keeps the maps; active takes them back, announcing each (ARP and NA seen on the wire)', async () => {
    const xdplb = (...args: string[]) => {
      const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, ...args, '--pin-dir', LAB.pinDir]);
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const good = readFileSync(LAB.configPath, 'utf8');
    const web6 = `  - name: web6\n    vip: ${LAB.vip6}\n    port: 80\n    backends:\n${[1, 2, 3].map((i) => `      - { address: ${LAB.backend6(i)} }`).join('\n')}\n`;
    const onDirector = () => spawnSync('ip', ['-n', LAB.directorNs, 'addr', 'show', LAB.nic], { encoding: 'utf8' }).stdout;
    const holdsVips = () => onDirector().includes(`${LAB.vip}/32`) && onDirector().includes(`${LAB.vip6}/128`);
    try {
      writeFileSync(LAB.configPath, good + web6);
      const deadline = Date.now() + 15_000;
      while (!holdsVips() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.ok(holdsVips(), 'active: the director holds both VIPs');
      const idsBefore = mapIds(DataPlane.openPinned(LAB.pinDir));
      const tables = () => readLabStatus().services.map((s) => s.backends.map((b) => `${b.address}:${b.share}`));
      const tablesBefore = tables();
      assert.deepEqual(JSON.parse(xdplb('role', 'standby', '--json')), { role: 'standby', was: 'active' });
      assert.ok(!onDirector().includes(`${LAB.vip}/32`) && !onDirector().includes(`${LAB.vip6}/128`), 'standby: the VIPs left the NIC');
      assert.equal(JSON.parse(xdplb('status', '--json')).role, 'standby', 'status shows the role');
      assert.deepEqual(tables(), tablesBefore, 'the maps stay filled');
      await stopDirector();
      startDirector(MODE);
      await waitForLog('"msg":"ready"');
      assert.equal(JSON.parse(xdplb('status', '--json')).role, 'standby', 'a restarted standby stays standby (it must not take the VIPs back)');
      assert.ok(!onDirector().includes(`${LAB.vip}/32`), 'and holds no VIP');
      // gratuitous ARP: sender and target protocol address both the VIP (arp[14:4], arp[24:4]); unsolicited NA: ICMPv6 136 for the v6 VIP
      const vipHex = `0x${LAB.vip.split('.').map((n) => Number(n).toString(16).padStart(2, '0')).join('')}`;
      const garp = `arp and arp[14:4] = ${vipHex} and arp[24:4] = ${vipHex}`;
      const na = `icmp6 and ip6[40] == 136`;
      let arps = 0;
      const nas = await countPackets('p-director', na, async () => {
        arps = (await countPackets('p-director', garp, async () => xdplb('role', 'active'))).packets;
      });
      assert.ok(arps >= 1, `the takeover announced the v4 VIP (${arps} gratuitous ARPs)`);
      assert.ok(nas.packets >= 1, `and the v6 VIP (${nas.packets} unsolicited NAs)`);
      assert.ok(holdsVips(), 'active again: both VIPs are back');
      assert.deepEqual(mapIds(DataPlane.openPinned(LAB.pinDir)), idsBefore, 'a role change touched no map');
      assert.ok(clientRequests(10).every((r) => r.ok), 'and traffic flows');
      // the takeover's burst (ANNOUNCE_BURST_MS) over, a second `role active` is no takeover: no VIP added or announced
      await new Promise((r) => setTimeout(r, ANNOUNCE_BURST_MS.at(-1)! + 300));
      const takeovers = () => readFileSync(`${LAB.runDir}/director.log`, 'utf8').split('\n').filter((l) => l.includes('"msg":"VIPs on the interface"')).length;
      const before = takeovers();
      assert.deepEqual(JSON.parse(xdplb('role', 'active', '--json')), { role: 'active', was: 'active' });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(takeovers(), before, 'already active: no takeover, nothing added or announced');
    } finally {
      writeFileSync(LAB.configPath, good);
      await waitForBackends(3);
    }
  });

  test('detach and lab down leave no program, pin, address or namespace behind', async () => {
    const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'detach', '-i', LAB.nic, '--pin-dir', LAB.pinDir, '--json']);
    const refused = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } });
    assert.equal(refused.status, 1, 'refused while the daemon runs on these pins');
    assert.match(refused.stderr, /a daemon \(pid \d+, attach -c .*\) holds .*: stop it first/);
    assert.ok(existsSync(LAB.pinDir) && clientRequests(10).every((r) => r.ok), 'nothing was detached');
    assert.match(spawnSync('ip', ['-n', LAB.directorNs, 'addr', 'show', LAB.nic], { encoding: 'utf8' }).stdout, /10\.240\.0\.201\/32/, 'the director held the VIP');
    // --force detaches under the running daemon, which notices: not ready, xdplb_xdp_attached 0
    const detach = spawnSync(argv[0]!, [...argv.slice(1), '--force'], { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } });
    assert.equal(detach.status, 0, detach.stderr);
    const get = (path: string) => {
      const a = inNs(LAB.directorNs, [process.execPath, '-e', `fetch('http://127.0.0.1:9842${path}').then(async (r) => process.stdout.write(r.status + ' ' + (await r.text())))`]);
      return spawnSync(a[0]!, a.slice(1), { encoding: 'utf8' }).stdout;
    };
    assert.match(get('/readyz'), /^503 /, 'the daemon is no longer ready');
    assert.match(get('/metrics'), /^xdplb_xdp_attached 0$/m);
    await stopDirector();
    assert.deepEqual(JSON.parse(detach.stdout).vipsRemoved, [LAB.vip]);
    assert.equal(existsSync(LAB.pinDir), false, 'pins removed');
    assert.doesNotMatch(spawnSync('ip', ['-n', LAB.directorNs, 'addr', 'show', LAB.nic], { encoding: 'utf8' }).stdout, /10\.240\.0\.201/, 'the VIP it added is gone');
    assert.match(spawnSync('ip', ['-n', LAB.directorNs, 'addr', 'show', LAB.nic], { encoding: 'utf8' }).stdout, /10\.240\.0\.2\/24/, 'what it did not add stays');
    const link = spawnSync('ip', ['-n', LAB.directorNs, 'link', 'show', LAB.nic], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(link, /\sxdp(drv|generic|offload)?\s|prog\/xdp/, 'no XDP program on the director NIC');
    await labDown();
    assert.deepEqual(labNamespaces(), [], 'no lab namespace');
    assert.equal(existsSync(`/sys/fs/bpf/${LAB.prefix}`), false, 'no lab pins');
    assert.equal(existsSync(LAB.runDir), false, 'no lab files');
    const procs = spawnSync('pgrep', ['-f', `${ROOT}src/lab/`], { encoding: 'utf8' }).stdout.trim();
    assert.equal(procs, '', 'no lab process');
  });
});
