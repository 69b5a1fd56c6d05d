// The BPF filesystem that holds xdplb's pins. A fresh machine may have none
// at /sys/fs/bpf: xdplb mounts it there itself (as cilium-agent does), in the
// machine's mount namespace, where every later process sees it. In a mount
// namespace of its own (`ip netns exec` makes one per command, with a fresh
// /sys) a mount would vanish with the process, and with it the pins and the
// attachment: there it refuses. So it does in a container, where pid 1 is
// the container's own and a bpffs mounted there is the container's, gone with
// it: the host must have one (SPEC §8; the chart can mount it on the host).
// Every command that reads or writes pins comes through here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage, XdplbError } from '../errors.ts';
import { component } from '../log.ts';

export const BPFFS = '/sys/fs/bpf';
const BPF_FS_MAGIC = 0xcafe4a11;

const log = component('bpffs');

function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** The id of the mount at / as process `pid` sees it (the topmost one), or null. */
function rootMountId(pid: number | 'self'): string | null {
  try {
    const lines = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n');
    return lines.filter((l) => l.split(' ')[4] === '/').at(-1)?.split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether this process shares the mount namespace of pid 1 (the machine's,
 * or its container's). Mount ids are unique machine-wide and a new mount
 * namespace gets copies with new ids, so the ids of / tell; /proc/1/ns/mnt
 * itself is not always readable, even by root.
 */
function inInitMountNamespace(): boolean {
  const own = rootMountId('self');
  return own !== null && own === rootMountId(1);
}

/**
 * What says that this process runs in a container whose mounts are its own,
 * or null. Kubernetes puts KUBERNETES_SERVICE_HOST in every container's
 * environment, Podman writes /run/.containerenv. Not /.dockerenv: build
 * and CI sandboxes carry it in the machine's own mount namespace, where a
 * bpffs mounted is the machine's.
 */
function containerSign(): string | null {
  if (process.env.KUBERNETES_SERVICE_HOST) return 'a Kubernetes pod (KUBERNETES_SERVICE_HOST is set)';
  if (existsSync('/run/.containerenv')) return 'a Podman container (/run/.containerenv)';
  return null;
}

/** The nearest existing ancestor of path (or path itself). */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p)) p = dirname(p);
  return p;
}

/**
 * Makes sure a bpffs is mounted at /sys/fs/bpf, mounting one when it is not
 * (logged). Refuses, naming the fix, where the mount would be private to this
 * process. Returns whether it mounted one.
 */
export function ensureBpffs(): boolean {
  if (isBpffs(BPFFS)) return false;
  const container = containerSign();
  if (container)
    throw new XdplbError(
      'BPFFS',
      `${BPFFS} is not a bpffs, and this process runs in ${container}, where a bpffs mounted now would be the container's own and vanish with it (and the pins and the attachment with it): mount one on the host (mount -t bpf -o mode=0700 bpf ${BPFFS}) and give the container the host's ${BPFFS}; the Helm chart does both with director.mountBpffs=true`,
    );
  if (!inInitMountNamespace())
    throw new XdplbError(
      'BPFFS',
      `${BPFFS} is not a bpffs, and this process runs in a mount namespace of its own, where a bpffs mounted now would vanish with it (and the pins and the attachment with it); under \`ip netns exec\`, which remounts /sys, use \`nsenter --net=/var/run/netns/NS\` instead, or mount it in the machine's namespace: mount -t bpf -o mode=0700 bpf ${BPFFS}`,
    );
  try {
    // mode 0700, as systemd mounts it: a bpffs root of mode 1777 (the kernel's default) lets any user make
    // /sys/fs/bpf/xdplb before the director does, and then remove or move its pins
    execFileSync('mount', ['-t', 'bpf', '-o', 'mode=0700', 'bpf', BPFFS], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new XdplbError('BPFFS', `${BPFFS} is not a bpffs, and mounting one failed: ${e.stderr?.toString().trim() || errorMessage(err)}`, [], { cause: err });
  }
  log.info({ path: BPFFS }, 'mounted a bpffs (none was mounted)');
  return true;
}

/**
 * Makes sure pinDir can hold pins: mounts the bpffs when pinDir is under
 * /sys/fs/bpf, and refuses a directory that is not on a bpffs, naming it
 * (a usage error: the pin directory named is wrong, exit 2).
 */
export function ensureBpffsFor(pinDir: string): void {
  if (pinDir === BPFFS || pinDir.startsWith(`${BPFFS}/`)) ensureBpffs();
  const existing = nearestExisting(pinDir);
  if (!isBpffs(existing)) throw new XdplbError('USAGE', `${pinDir} is not on a bpffs (${existing} is not one): pins live on a bpffs, e.g. under ${BPFFS}`);
}

/**
 * Makes the pin directory (and its parents), one level at a time: a level
 * that cannot be made fails at once, naming it. (A recursive mkdirSync on a
 * directory that is not a bpffs but refuses new entries with ENOENT, as a
 * sysfs does, retries forever.)
 */
export function ensurePinDir(pinDir: string): void {
  ensureBpffsFor(pinDir);
  const missing: string[] = [];
  for (let p = pinDir; !existsSync(p); p = dirname(p)) missing.unshift(p);
  checkPinDirOwners(missing.length > 0 ? dirname(missing[0]!) : pinDir);
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (err) {
      throw new XdplbError('BPFFS', `cannot make the pin directory ${p}: ${errorMessage(err)}`, [], { cause: err });
    }
  }
}

/**
 * Refuses pins under a directory that another user could change: each level
 * from the bpffs's root down to `dir` must be root's (or this process's
 * user's) and writable by nobody else, but for a sticky root's (the bpffs
 * root, mode 1777 as the kernel mounts it). Whoever can write a level can
 * unlink or rename the pins under it (deleting the maps' names, not the
 * maps: a restart would then build a new data plane and reset every
 * counter), though not open them (bpf() needs CAP_BPF).
 */
export function checkPinDirOwners(dir: string): void {
  const levels: string[] = [];
  for (let p = dir; ; p = dirname(p)) {
    levels.unshift(p);
    if (!isBpffs(dirname(p)) || dirname(p) === p) break; // p is the mount's root
  }
  const uid = process.geteuid?.() ?? 0;
  for (const p of levels) {
    const st = statSync(p);
    const stickyRoot = (st.mode & 0o1000) !== 0 && st.uid === 0;
    if (st.uid !== 0 && st.uid !== uid)
      throw new XdplbError('BPFFS', `${p} belongs to uid ${st.uid}: that user could remove or move the pins under it; remove it, or chown it to root`);
    if ((st.mode & 0o022) !== 0 && !stickyRoot)
      throw new XdplbError('BPFFS', `${p} is writable by others (mode ${(st.mode & 0o7777).toString(8)}): they could remove or move the pins under it; chmod go-w it`);
  }
}
