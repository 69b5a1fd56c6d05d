// Where xdplb keeps its run-time files: /run/xdplb, or $XDPLB_RUN_DIR (the
// lab and the tests give each of their directors and hosts one of its own).
// A director's files are named after its pin directory: the VIPs it added,
// its lock, its API socket.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { XdplbError } from './errors.ts';

export const RUN_DIR = process.env.XDPLB_RUN_DIR ?? '/run/xdplb';

/** Makes the run directory (root only) when missing. */
export function ensureRunDir(): void {
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
}

/**
 * A run-time file of the director whose pins are in pinDir, e.g.
 * runFile(pinDir, 'lock'): "/" becomes "_" (and "%", "_" are %-escaped, so
 * that /a/b_c and /a_b/c do not share a file; a pin directory without them
 * keeps the name it had).
 */
export function runFile(pinDir: string, suffix: string): string {
  return `${RUN_DIR}/${pinDir.replaceAll('%', '%25').replaceAll('_', '%5F').replaceAll('/', '_')}.${suffix}`;
}

/**
 * Writes a run-time file of the director whose pins are in pinDir (the run
 * directory made first): whole or not at all (a new file renamed over the
 * old), so a daemon killed mid-write leaves the last version readable, and a
 * write that fails (a full disk) leaves it as it was, and no part-written
 * file, with an error that names the file and the reason.
 */
export function writeRunFile(pinDir: string, suffix: string, text: string): void {
  ensureRunDir();
  const path = runFile(pinDir, suffix);
  try {
    writeFileSync(`${path}.new`, text);
    renameSync(`${path}.new`, path);
  } catch (err) {
    rmSync(`${path}.new`, { force: true });
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new XdplbError('DAEMON', `${path} could not be written (${why}): its previous version stays`, [], { cause: err });
  }
}
