// One daemon per pin directory: an exclusive flock on a file named after the
// pin directory (in the run directory), taken before anything else is
// touched. The kernel drops it however the holder ends (SIGKILL included),
// so a stale lock cannot outlive its daemon. The file says who holds it, so
// that a second `attach` and `detach` can name the daemon.
import { readFileSync, writeFileSync } from 'node:fs';
import { native } from '../dataplane/native.ts';
import { XdplbError } from '../errors.ts';
import { ensureRunDir, runFile } from '../paths.ts';

export interface LockHolder {
  pid: number;
  /** What holds it: the daemon's config file, or the command ("detach"). */
  what: string;
}

export class PinDirLock {
  private fd: number | null;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Takes the lock of pinDir for `what`; throws DAEMON naming the holder when another process has it. */
  static acquire(pinDir: string, what: string): PinDirLock {
    const r = PinDirLock.tryAcquire(pinDir, what);
    if ('lock' in r) return r.lock;
    const who = r.holder ? ` (pid ${r.holder.pid}, ${r.holder.what})` : '';
    throw new XdplbError('DAEMON', `another xdplb process holds ${pinDir}${who}: one daemon per pin directory; stop it first, or use another --pin-dir`);
  }

  /** Takes the lock of pinDir for `what`, or says who holds it (null when the file does not say). */
  static tryAcquire(pinDir: string, what: string): { lock: PinDirLock } | { holder: LockHolder | null } {
    ensureRunDir();
    const path = runFile(pinDir, 'lock');
    let fd: number;
    try {
      fd = native.lockFile(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') throw err;
      return { holder: readHolder(path) };
    }
    writeFileSync(path, JSON.stringify({ pid: process.pid, what } satisfies LockHolder));
    return { lock: new PinDirLock(fd) };
  }

  release(): void {
    if (this.fd === null) return;
    native.unlockFile(this.fd);
    this.fd = null;
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    return typeof h.pid === 'number' && typeof h.what === 'string' ? { pid: h.pid, what: h.what } : null;
  } catch {
    return null;
  }
}
