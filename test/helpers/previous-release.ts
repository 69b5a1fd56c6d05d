// The data plane of the previous release, built from git, for upgrade tests:
// its XDP object compiled by its own bpf/Makefile, and loaded with pins as
// its DataPlane.load() did. A daemon of this build must adopt those pins
// without a reset (SPEC §2, "hitless life cycle").
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { u32Key } from '../../src/dataplane/abi.ts';
import { native, type NativeObject } from '../../src/dataplane/native.ts';

/**
 * The release whose pins this build must adopt: the last commit before the
 * maps added since ABI 1 (owned_vips, vip_owner, global_ext), pinned as it
 * is deployed. Move it forward when a release ships.
 */
export const PREVIOUS_RELEASE = {
  commit: 'a777faf7da18051727a2282407960feca3ee162e',
  abiVersion: 1,
  /** The maps it pins, by name. */
  maps: ['xdplb_abi', 'vip_filter', 'service_index', 'service_entries', 'services', 'maglev_tables', 'dests', 'dest_info', 'service_info', 'flows', 'tx_ports', 'service_stats', 'dest_stats', 'global_stats'],
} as const;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function git(args: string[]): Buffer {
  return execFileSync('git', ['-C', ROOT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/**
 * Compiles bpf/ of `commit` with that commit's Makefile (its clang flags)
 * into a temporary directory; returns the object's path and a cleanup. The
 * compile takes well under a second, so nothing is cached. Throws, naming
 * the fix, when this checkout cannot give the commit (no git, a shallow
 * clone, a tarball).
 */
export function buildReleaseObject(commit: string = PREVIOUS_RELEASE.commit): { path: string; remove: () => void } {
  try {
    git(['cat-file', '-e', `${commit}^{commit}`]);
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    throw new Error(
      `the upgrade test builds the previous release (commit ${commit}) from git, and ${ROOT} cannot give it (${why}): ` +
        'it needs a git clone with that history (in a shallow clone: `git fetch --unshallow`)',
      { cause: err },
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-release-'));
  try {
    execFileSync('tar', ['-x', '-C', dir], { input: git(['archive', '--format=tar', commit, 'bpf']) });
    execFileSync('make', ['-s', '-C', join(dir, 'bpf'), '../out/bpf/xdplb.bpf.o'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`building bpf/ of ${commit} failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? (err as Error).message}`, { cause: err });
  }
  return { path: join(dir, 'out/bpf/xdplb.bpf.o'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ReleaseCapacities {
  maglevSize: number;
  maxServices: number;
  maxDests: number;
  maxFlows: number;
}

/**
 * Loads the previous release's object with its maps pinned in pinDir (and
 * adopted from there), with the options its DataPlane.load() gave the addon
 * (`git show <commit>:src/dataplane/dataplane.ts`), and records its ABI
 * version as it did.
 */
export async function loadRelease(objectPath: string, pinDir: string, cap: ReleaseCapacities): Promise<NativeObject> {
  const maglevSize = Buffer.alloc(4);
  maglevSize.writeUInt32LE(cap.maglevSize);
  const object = await native.loadObject(objectPath, {
    rodata: { maglev_size: maglevSize },
    maxEntries: {
      services: cap.maxServices,
      service_entries: 2 * cap.maxServices,
      maglev_tables: cap.maxServices,
      service_stats: cap.maxServices,
      dests: cap.maxDests,
      dest_info: cap.maxDests,
      service_info: cap.maxServices,
      dest_stats: cap.maxDests,
      flows: cap.maxFlows,
    },
    innerMaxEntries: { maglev_tables: cap.maglevSize },
    pinDir,
  });
  object.map('xdplb_abi').update(u32Key(0), u32Key(PREVIOUS_RELEASE.abiVersion));
  return object;
}
