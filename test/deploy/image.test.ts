// deploy/image: the container image. deploy/image/build makes it (podman, on a Debian base that
// debootstrap makes from Debian's archive; cached by the hash of its inputs) and this checks what
// the README says of it: `xdplb --version` runs in it, by its entry point and by the command line
// the chart gives, and prints package.json's version; it holds no compiler, no -dev package and no
// npm; its addon, libbpf and XDP object load the program and forward a packet (BPF_PROG_TEST_RUN)
// with only the capabilities the chart gives the director, a read-only root and no network; a
// second build with the same inputs builds nothing; its size; and no interface appeared in the
// root network namespace meanwhile. Where podman cannot build or run, every test fails with the
// build's error.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/dataplane/native.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version;
/** A cold build took ~3 minutes here (debootstrap ~1, the builder stage ~2). */
const BUILD_TIMEOUT_MS = 20 * 60_000;

/** The capabilities deploy/helm/xdplb/templates/director.yaml adds (after dropping ALL). */
function directorCapabilities(): string[] {
  const text = readFileSync(`${ROOT}deploy/helm/xdplb/templates/director.yaml`, 'utf8');
  const lines = text.slice(text.indexOf('drop: [ALL]')).split('\n').slice(2); // from the line after `add:`
  const caps: string[] = [];
  for (const line of lines.map((l) => l.trim())) {
    if (line.startsWith('#')) continue;
    const m = /^- ([A-Z_]+)$/.exec(line);
    if (!m) break;
    caps.push(m[1]!);
  }
  assert.ok(caps.includes('BPF'), `director.yaml's capabilities, read: ${caps.join(', ')}`);
  return caps;
}

function interfaces(): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ip -o link show: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!)
    .sort();
}

function build(): { image: string; seconds: number } {
  const start = Date.now();
  const r = spawnSync(`${ROOT}deploy/image/build`, [], { encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  if (r.status !== 0)
    throw new Error(`deploy/image/build failed (${r.error?.message ?? (r.signal ? `signal ${r.signal}` : `exit ${r.status}`)}):\n${r.stderr.trim()}`);
  return { image: r.stdout.trim(), seconds: (Date.now() - start) / 1000 };
}

function podman(args: string[]): SpawnSyncReturns<string> {
  return spawnSync('podman', args, { encoding: 'utf8', timeout: 120_000 });
}

/** A command in the image with no network at all (and podman's defaults but for `flags`). */
function inImage(args: string[], flags: string[] = []): string {
  const image = theImage();
  const r = podman(['run', '--rm', '--network=none', ...flags, image, ...args]);
  assert.equal(r.status, 0, `podman run ${[...flags, image, ...args].join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The image, built once (or found cached) for all the tests here; a failed build fails each of them. */
let built: { image: string; seconds: number } | Error | null = null;
function theImage(): string {
  if (built === null) {
    try {
      built = build();
    } catch (err) {
      built = err as Error;
    }
  }
  if (built instanceof Error) throw built;
  return built.image;
}

// every test may be the one that builds (a cold build takes minutes)
describe('the container image (deploy/image)', { timeout: BUILD_TIMEOUT_MS + 60_000 }, () => {
  const rootInterfaces = interfaces();

  test("deploy/image/build builds it, or finds it cached, as the chart's default image", (t) => {
    const image = theImage();
    t.diagnostic(`deploy/image/build: ${image} in ${(built as { seconds: number }).seconds.toFixed(1)} s`);
    assert.equal(image, `localhost/xdplb:${VERSION}`, "image.repository xdplb, tag: the chart's appVersion, which is package.json's version");
  });

  test("`xdplb --version` in the image prints package.json's version, by its entry point and as the chart runs it", () => {
    assert.equal(inImage(['--version']).trim(), VERSION);
    // the chart's `command: [xdplb, ...]` replaces the entry point: xdplb must be on PATH
    assert.equal(inImage(['--version'], ['--entrypoint', 'xdplb']).trim(), VERSION);
    assert.match(inImage(['realserver', '--help'], ['--entrypoint', 'xdplb']), /--k8s/, "the agent's command is there too");
  });

  test('the image holds no compiler, no -dev package and no npm', () => {
    const tools = ['cc', 'gcc', 'c++', 'g++', 'cpp', 'clang', 'clang-14', 'ld', 'as', 'make', 'npm', 'npx', 'python3', 'node-gyp'];
    const found = inImage(['-c', `for c in node xdplb mount ${tools.join(' ')}; do command -v "$c" || true; done`], ['--entrypoint', 'sh'])
      .split('\n')
      .filter(Boolean);
    // what it must have, found by the same lookup
    for (const c of ['node', 'xdplb', 'mount']) assert.ok(found.some((p) => p.endsWith(`/${c}`)), `${c} is on PATH in the image: ${found.join(' ')}`);
    const unwanted = found.filter((p) => !/\/(node|xdplb|mount)$/.test(p));
    assert.deepEqual(unwanted, [], 'no compiler, linker, build tool or npm in the final stage');
    const packages = inImage(['-W', '-f', '${Package}\n'], ['--entrypoint', 'dpkg-query']).split('\n').filter(Boolean);
    assert.ok(packages.includes('libbpf1') && packages.includes('libelf1'), `the addon's libraries are installed: ${packages.join(' ')}`);
    const build = packages.filter((p) => /^(gcc|g\+\+|cpp|clang|llvm)(-\d+)?$|^binutils|-dev$|^(make|npm|nodejs|python3)$/.test(p));
    assert.deepEqual(build, [], 'no build package among the Debian packages of the final stage');
  });

  test("the image's addon and XDP object load and forward a packet, with the director's capabilities only, a read-only root and no network", () => {
    const caps = directorCapabilities();
    // the packet helpers of the tests, mounted read-only; everything else is the image's
    const script = `
      const { Fixture } = await import('/opt/xdplb/app/test/helpers/dataplane-fixture.ts');
      const { ethernet, ipv4, tcp } = await import('/opt/xdplb/app/test/helpers/packets.ts');
      const { native } = await import('/opt/xdplb/app/src/dataplane/native.ts');
      const f = await Fixture.create(1009, 16);
      f.setService({ id: 1, vip: '10.240.0.201', port: 80, proto: 'tcp', backends: [{ n: 7 }] });
      const toVip = await f.run(ethernet(ipv4('10.1.2.3', '10.240.0.201', tcp(40000, 80, 'syn'))));
      const other = await f.run(ethernet(ipv4('10.1.2.3', '10.240.0.9', tcp(40000, 80, 'syn'))));
      const abi = native.abi();
      console.log(JSON.stringify({ toVip: toVip.verdict, backend: Fixture.backendOf(toVip.packet), other: other.verdict, layout: abi.layout, constants: abi.constants }));`;
    const flags = [
      '--read-only',
      '--cap-drop=all',
      `--cap-add=${caps.join(',')}`,
      '--security-opt=no-new-privileges',
      '--volume',
      `${ROOT}test/helpers:/opt/xdplb/app/test/helpers:ro`,
      '--entrypoint',
      'node',
    ];
    const out = JSON.parse(inImage(['--input-type=module', '-e', script], flags)) as Record<string, unknown>;
    assert.equal(out.toVip, 'TX', 'a SYN to the VIP is sent to its backend');
    assert.equal(out.backend, 7, 'with the backend MAC as destination');
    assert.equal(out.other, 'PASS', 'a packet to another address goes to the kernel');
    const host = native.abi();
    assert.deepEqual({ layout: out.layout, constants: out.constants }, { layout: host.layout, constants: host.constants }, "the image's addon has this checkout's ABI");
  });

  test('a second build with the same inputs builds nothing, in seconds', (t) => {
    const image = theImage();
    const inspect = (): string => podman(['image', 'inspect', '--format', '{{.Id}} {{index .Labels "io.xdplb.inputs"}}', image]).stdout.trim();
    const [id, inputs] = inspect().split(' ');
    const again = build();
    assert.equal(again.image, image);
    const [idAgain, inputsAgain] = inspect().split(' ');
    assert.equal(inputsAgain, inputs, 'the inputs changed between the two builds: files of the build context were edited while this test ran');
    assert.equal(idAgain, id, 'the same image');
    assert.ok(again.seconds < 30, `a cached build took ${again.seconds} s`);
    t.diagnostic(`cached build: ${again.seconds.toFixed(1)} s`);
  });

  test('its size', (t) => {
    const image = theImage();
    const size = Number(podman(['image', 'inspect', '--format', '{{.Size}}', image]).stdout.trim());
    const mb = Math.round(size / 1e6);
    t.diagnostic(`${image}: ${mb} MB`);
    // README: ~256 MB (base 79, Node 127, node_modules 55); much more means something else got in
    assert.ok(mb > 150 && mb < 320, `the image is ${mb} MB (README: ~256 MB)`);
  });

  test('no interface appeared in the root network namespace', () => {
    assert.deepEqual(interfaces(), rootInterfaces, 'podman made no bridge or veth (every container had --network=host or none)');
  });
});
