// Faults under load (issue 17, item 3): each test breaks one thing while the
// client sends new-connection HTTP requests through the VIP without pause,
// then counts the requests that failed and how long it took until they
// succeeded again (t.diagnostic). Covered elsewhere, not repeated here
// (test/lab/director.test.ts): a restart under load (SIGTERM, rebuilt
// program), a reload refused for one bad field (SIGHUP), the program
// detached and its pins removed under the daemon (detach --force); a
// backend's new MAC: test/lab/neighbours.test.ts.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeServiceKey, u32Key } from '../../src/dataplane/abi.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { clientRequests, directorPid, inNs, LAB, labConfig, labDown, labUp, readLabStatus, startBackendServer, startDirector, stopBackendServer, stopDirector, waitForBackends } from '../../src/lab/lab.ts';
import { eventually } from '../helpers/eventually.ts';
import { continuousLoad, longestGap } from '../helpers/failover.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MODE = 'native' as const;
const LOG = `${LAB.runDir}/director.log`;

before(async () => {
  await labUp({ backends: 3, mode: MODE });
});
after(async () => {
  await labDown();
});

/** Lines of the running director's log (its pid) that contain text. */
function logLines(text: string): string[] {
  const pid = `"pid":${directorPid()},`;
  return readFileSync(LOG, 'utf8')
    .split('\n')
    .filter((l) => l.includes(pid) && l.includes(text));
}

const logTail = () => readFileSync(LOG, 'utf8').slice(-3000);

function xdplb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, ...args, '--pin-dir', LAB.pinDir]);
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } });
}

/** Services and their backends' address:state, as the pins hold them. */
const shape = () => readLabStatus().services.map((s) => [s.name, s.vip, s.port, s.backends.map((b) => `${b.address}:${b.state}`)]);

/**
 * Runs fault() under continuous load (each request 1 s at most), then waits
 * settleMs; reports the failed requests and the longest run of failures
 * (from the first failed request's start to the next good one's).
 */
async function underLoad(t: TestContext, name: string, fault: () => Promise<void>, settleMs = 1500): Promise<{ ok: number; failed: number; recoverS: number }> {
  const load = continuousLoad(1000);
  await new Promise((r) => setTimeout(r, 1000));
  let result: Awaited<ReturnType<typeof load.stop>>;
  try {
    await fault();
    await new Promise((r) => setTimeout(r, settleMs));
  } finally {
    result = await load.stop();
  }
  const gap = longestGap(result.edges);
  const m = { ok: result.ok, failed: result.failures.length, recoverS: gap / 1000 };
  t.diagnostic(`${name}: ${m.failed} failed of ${m.ok + m.failed} requests; ${m.failed === 0 ? 'no failure' : `failing for ${m.recoverS.toFixed(2)} s`}${m.failed ? ` (${[...new Set(result.failures)].join(', ')})` : ''}`);
  assert.ok(result.ok > 10, `the client kept sending (${result.ok} requests answered)`);
  return m;
}

describe('faults under load', () => {
  test('kill -9 of the daemon mid-reconcile (a change of many services): the restart adopts the pins and completes the change; traffic never stops', async (t) => {
    const N = 400;
    const bulk = Array.from({ length: N }, (_, i) => `  - name: bulk-${i}\n    vip: ${LAB.vip}\n    port: ${10_000 + i}\n    backends:\n${[1, 2, 3].map((b) => `      - { address: ${LAB.backend(b)} }`).join('\n')}\n`).join('');
    const good = readFileSync(LAB.configPath, 'utf8');
    const dp = DataPlane.openPinned(LAB.pinDir);
    const web = dp.listServices();
    assert.equal(web.length, 1, 'one service before the change');
    const webId = web[0]!.value.id;
    // the new services take the lowest free ids, in config order: the tables of the first and the last
    const ids = Array.from({ length: N + 1 }, (_, i) => i + 1).filter((id) => id !== webId).slice(0, N);
    const hasTable = (id: number) => (dp.maps.maglev_tables.lookup(u32Key(id))?.readUInt32LE(0) ?? 0) !== 0;
    assert.ok(!hasTable(ids[0]!) && !hasTable(ids.at(-1)!), 'no table yet for the new services');
    let m: Awaited<ReturnType<typeof underLoad>>;
    try {
      m = await underLoad(
        t,
        `kill -9 mid-reconcile (${N} services added)`,
        async () => {
          const pid = directorPid()!;
          writeFileSync(LAB.configPath, good + bulk);
          // the window: the new tables are in (one batch swap), the last new service not yet (the services come
          // after every table)
          const vip = mustParseIp(LAB.vip);
          const lastService = encodeServiceKey({ addr: vip.bytes, family: vip.family, proto: 6, port: 10_000 + N - 1 });
          const deadline = Date.now() + 30_000;
          while (!(hasTable(ids[0]!) && !dp.maps.services.lookup(lastService)) && Date.now() < deadline);
          process.kill(pid, 'SIGKILL');
          const killedAt = Date.now();
          const tables = ids.filter(hasTable).length;
          const services = dp.listServices().length - 1;
          t.diagnostic(`killed with ${tables} of ${N} new tables and ${services} of ${N} new services written`);
          await stopDirector(1, 'SIGKILL'); // the pid file; the process is gone
          startDirector(MODE); // before any assertion: a failed one must not leave the lab without its daemon
          assert.ok(services < N, `the kill landed mid-apply (${tables} tables, ${services} services of ${N})`);
          await eventually('the restarted daemon ready', () => logLines('"msg":"ready"').length > 0, { ms: 60_000, context: logTail });
          t.diagnostic(`kill -9 → restarted daemon ready, the change complete: ${((Date.now() - killedAt) / 1000).toFixed(2)} s (the data plane forwarded throughout)`);
        },
        500,
      );
      assert.equal(m.failed, 0, 'no request failed across the kill and the restart');
      assert.match(logLines('adopting the pinned data plane')[0] ?? '', /"adopting":true/, 'the restart adopted the pins');
      const after = readLabStatus();
      const want = ['web', ...Array.from({ length: N }, (_, i) => `bulk-${i}`)].sort();
      assert.deepEqual(after.services.map((s) => s.name).sort(), want, 'exactly the services of the config');
      const used = [...dp.usedDests()];
      assert.equal(used.length, 3 * (N + 1), `exactly the destinations of the config (${used.length} in use, ${3 * (N + 1)} configured): none left over from the killed apply`);
      const byService = new Map<number, number[]>();
      for (const d of used) byService.set(d.info.service, [...(byService.get(d.info.service) ?? []), d.id]);
      for (const { key, value } of dp.listServices()) {
        const owners = [...dp.tableShares(value.id).keys()].sort((a, b) => a - b);
        assert.deepEqual(owners, (byService.get(value.id) ?? []).sort((a, b) => a - b), `the table of service ${value.id} (port ${key.port}) names its three backends and nothing else`);
      }
    } finally {
      // and back: the bulk removed
      writeFileSync(LAB.configPath, good);
      await eventually('the bulk removed', () => dp.listServices().length === 1, { ms: 30_000, context: logTail });
    }
    // the removed services' destinations are freed by the apply after (an RCU grace period later): awaited, not raced
    await eventually('three destinations left', () => [...dp.usedDests()].length === 3, { ms: 10_000, context: logTail });
    assert.ok(clientRequests(10).every((r) => r.ok));
  });

  test('the config replaced by garbage, by an empty file, by a file with one bad service: nothing applied, the error names the cause, traffic unaffected', async (t) => {
    const good = readFileSync(LAB.configPath, 'utf8');
    const bad = good + '  - name: broken\n    vip: 10.240.0.202\n    port: 70000\n    backends:\n      - { address: 10.240.0.101 }\n';
    const cases: [string, string, RegExp][] = [
      ['garbage', '}{ this is: [not, a config\n\u0000\u0001', /config|YAML|JSON|parse|line/i],
      ['an empty file', '', /empty|interface/i],
      ['one bad service', bad, /services\[1\]\.port/],
    ];
    const before = shape();
    try {
      for (const [what, text, names] of cases) {
        const refused = logLines('reload refused').length;
        const reloaded = logLines('configuration reloaded').length;
        await underLoad(t, `config replaced by ${what}`, async () => {
          writeFileSync(LAB.configPath, text);
          await eventually(`the reload of ${what} refused`, () => logLines('reload refused').length > refused, { ms: 10_000, context: logTail });
        }, 500).then((m) => assert.equal(m.failed, 0, `no request failed (${what})`));
        const line = logLines('reload refused').at(-1)!;
        assert.match(line, names, `the log says why (${what}): ${line}`);
        assert.equal(logLines('configuration reloaded').length, reloaded, 'nothing was applied');
        const st = xdplb('status');
        assert.equal(st.status, 0, st.stderr);
        const reload = st.stdout.slice(st.stdout.indexOf('last reload')); // its error may span lines (the parser's detail)
        assert.match(reload, /REFUSED: /, `status shows the refused reload: ${reload}`);
        assert.match(reload, names, `and why (${what}): ${reload}`);
        t.diagnostic(`${what}: ${reload.slice(reload.indexOf('REFUSED'), reload.indexOf('\n', reload.indexOf('\n') + 1)).replace('\n', ' ')}`);
        assert.deepEqual(shape(), before, 'the data plane holds the previous config');
      }
    } finally {
      writeFileSync(LAB.configPath, good);
    }
    await eventually('the good config reloaded', () => /last reload [^\n]*: ok$/m.test(xdplb('status').stdout), { ms: 10_000, context: logTail });
  });

  test("the director's own address removed and re-added under load", async (t) => {
    const before = shape();
    const m = await underLoad(t, `ip addr del/add ${LAB.director}/24 (3 s without it)`, async () => {
      execFileSync('ip', ['-n', LAB.directorNs, 'addr', 'del', `${LAB.director}/24`, 'dev', LAB.nic]);
      await new Promise((r) => setTimeout(r, 3000));
      t.diagnostic(`without its address: ${JSON.stringify(readLabStatus().services[0]!.backends.map((b) => `${b.address}:${b.state}`))}`);
      execFileSync('ip', ['-n', LAB.directorNs, 'addr', 'add', `${LAB.director}/24`, 'dev', LAB.nic]);
    }, 3000);
    assert.match(execFileSync('ip', ['-n', LAB.directorNs, 'addr', 'show', LAB.nic], { encoding: 'utf8' }), /10\.240\.0\.201\/32/, 'the VIP stayed on the NIC');
    await waitForBackends(3);
    assert.deepEqual(shape(), before, 'every backend active again');
    assert.equal(m.failed, 0, 'no request failed');
  });

  test('a backend that accepts and never answers: the HTTP check takes it out after its timeout; the requests sent to it meanwhile fail', async (t) => {
    const good = readFileSync(LAB.configPath, 'utf8');
    const check = '    healthCheck: { type: http, path: /, interval: 500ms, timeout: 300ms, rise: 2, fall: 2 }\n';
    const b3 = () => readLabStatus().services[0]!.backends.find((b) => b.address === LAB.backend(3))!;
    let silent: ChildProcess | null = null;
    let outS = Infinity;
    try {
      writeFileSync(LAB.configPath, labConfig([1, 2, 3], check));
      await eventually('health checks up on every backend', () => readLabStatus().services[0]!.backends.every((b) => b.health === 'up'), { ms: 10_000, context: logTail });
      const m = await underLoad(t, 'backend 3 accepts and never answers (check interval 500 ms, timeout 300 ms, fall 2)', async () => {
        await stopBackendServer(3);
        // accepts every connection and never reads or answers
        const argv = inNs(LAB.backendNs(3), [process.execPath, '-e', "const s = []; require('node:net').createServer((c) => s.push(c)).listen(80, () => console.log('listening'))"]);
        silent = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
        await new Promise((r) => silent!.stdout!.once('data', r));
        const from = Date.now();
        await eventually('backend 3 out', () => b3().state === 'down' && b3().health === 'down', { ms: 10_000, context: logTail });
        outS = (Date.now() - from) / 1000;
        t.diagnostic(`the silent backend left the table ${outS.toFixed(2)} s after it stopped answering`);
      }, 2000);
      assert.ok(outS <= 0.5 * 2 + 0.5 + 0.3 + 1, `out within interval x fall + interval + timeout (+1 s): ${outS} s`);
      assert.ok(m.recoverS <= outS + 1.5, `requests failed only until it was out (failing for ${m.recoverS} s)`);
      const after = clientRequests(40);
      assert.deepEqual(after.filter((r) => !r.ok), [], 'no request fails once it is out');
    } finally {
      (silent as ChildProcess | null)?.kill();
      startBackendServer(3);
      writeFileSync(LAB.configPath, good);
    }
    await waitForBackends(3);
  });

  test('the neighbour table flushed under load: no request fails, the daemon asks again', async (t) => {
    const before = shape();
    const m = await underLoad(t, 'ip neigh flush dev lab0 (director)', async () => {
      // under load the kernel re-learns entries while ip flushes: it gives up after 10 rounds, the table flushed as often
      const flush = spawnSync('ip', ['-n', LAB.directorNs, 'neigh', 'flush', 'dev', LAB.nic], { encoding: 'utf8' });
      assert.ok(flush.status === 0 || /Flush not complete/.test(flush.stdout), `ip neigh flush: ${flush.stdout}${flush.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
      t.diagnostic(`200 ms after the flush: ${JSON.stringify(readLabStatus().services[0]!.backends.map((b) => `${b.address}:${b.state}`))}`);
    }, 3000);
    assert.equal(m.failed, 0, 'no request failed');
    assert.deepEqual(shape(), before, 'every backend active, with its MAC');
    const neigh = execFileSync('ip', ['-n', LAB.directorNs, 'neigh', 'show', 'dev', LAB.nic], { encoding: 'utf8' });
    for (let i = 1; i <= 3; i++) assert.match(neigh, new RegExp(`${LAB.backend(i).replaceAll('.', '\\.')} lladdr`), `the director's kernel knows backend ${i} again`);
  });
});
