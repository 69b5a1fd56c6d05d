// The local API's token: what a client over TCP must show (Authorization:
// Bearer TOKEN), since a TCP port, even on 127.0.0.1, is open to every local
// user and to every process sharing the host's network namespace, where the
// default Unix socket is root's only. The token lives in a file (apiTokenFile)
// that only its owner may read, as ssh insists for its keys; the CLI reads the
// same file (--api-token-file).
import { createHash, timingSafeEqual } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { errorMessage, XdplbError, type ErrorCode } from '../errors.ts';

/** The shortest token taken: 32 characters (`openssl rand -hex 32` makes 64). */
export const MIN_TOKEN_CHARS = 32;
const MAX_TOKEN_BYTES = 4096;

/**
 * The token in `path`: its text without the trailing newline, 32 to 4096
 * visible ASCII characters (what an HTTP header carries as it is). `strict`
 * (the daemon): also a regular file that its owner (root, or the daemon's
 * user) alone may read or write. Errors name `what` (the config key or the
 * flag) with `code`: CONFIG_INVALID for the daemon, USAGE for the CLI.
 */
export function readApiToken(path: string, what: string, code: ErrorCode, strict: boolean): string {
  const fail = (why: string) => new XdplbError(code, `${what} ${path}: ${why}`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK); // a named pipe cannot hang the start
  } catch (err) {
    throw fail(errorMessage(err));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail('not a regular file');
    if (strict && st.uid !== 0 && st.uid !== process.geteuid?.()) throw fail(`owned by uid ${st.uid}: the token file must be root's (or the daemon's user's)`);
    if (strict && (st.mode & 0o077) !== 0) throw fail(`mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: others could read or replace the token: chmod 600 it`);
    if (st.size > MAX_TOKEN_BYTES) throw fail(`${st.size} bytes: a token has at most ${MAX_TOKEN_BYTES}`);
    const buf = Buffer.alloc(MAX_TOKEN_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const token = buf.subarray(0, n).toString('latin1').replace(/\r?\n$/, '');
    if (!/^[\x21-\x7e]*$/.test(token)) throw fail('a token is one line of visible ASCII characters (no spaces)');
    if (token.length < MIN_TOKEN_CHARS) throw fail(`a token of ${token.length} characters is too short: at least ${MIN_TOKEN_CHARS} (e.g. openssl rand -hex 32)`);
    return token;
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether an Authorization header carries the token (scheme Bearer, any
 * case). Compared as SHA-256 digests with timingSafeEqual: the time taken
 * tells nothing about the token, not even its length.
 */
export function tokenMatches(authorization: string | undefined, token: string): boolean {
  const m = /^bearer +(\S+) *$/i.exec(authorization ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'latin1').digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}
