// Where the daemon listens: HOST:PORT for /metrics, and for its local API
// either the same or a Unix socket path. One parser for the schema, the daemon
// and the CLI, pure: it says what is wrong instead of throwing.
import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  readonly kind: 'tcp';
  /** An IPv4 or IPv6 literal (IPv6 without its brackets), or "localhost": what net.Server.listen() takes. */
  readonly host: string;
  readonly port: number;
}

export interface SocketPath {
  readonly kind: 'unix';
  readonly path: string;
}

export type ListenAddress = HostPort | SocketPath;

/** sun_path holds 108 bytes, the last of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

const HOST_PORT = 'HOST:PORT (an IPv4 address, [IPv6] or localhost, then a port 1-65535, e.g. 127.0.0.1:9842 or [::1]:9842)';

/** A port number in decimal, 1..65535, or null. */
function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/** HOST:PORT → {kind: 'tcp', host, port}, or a message saying what is wrong. */
export function parseHostPort(text: string): HostPort | string {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (!m) {
    const bare = text.replace(/:\d+$/, '');
    return isIPv6(bare) ? `an IPv6 address goes in brackets: [${bare}]:PORT` : `not ${HOST_PORT}`;
  }
  const [, v6, host = '', portText = ''] = m;
  if (v6 !== undefined) {
    if (v6.includes('%')) return `a zone (%${v6.slice(v6.indexOf('%') + 1)}) is not supported in a listen address`;
    if (!isIPv6(v6)) return `[${v6}] is not an IPv6 address`;
  } else if (!host) return `no host before the port: ${HOST_PORT}`;
  else if (host !== 'localhost' && !isIPv4(host)) return `"${host}" is not an IPv4 address, [IPv6] or localhost`;
  const port = parsePort(portText);
  if (port === null) return `port "${portText}" is not a number from 1 to 65535`;
  return { kind: 'tcp', host: v6 ?? host, port };
}

/** An absolute path of a Unix socket → {kind: 'unix', path}, or a message saying what is wrong. */
export function parseSocketPath(text: string): SocketPath | string {
  if (!text.startsWith('/')) return `a socket path must be absolute: ${text}`;
  if (text.includes('\0')) return 'a socket path cannot contain a NUL byte';
  if (text.endsWith('/')) return `a socket path names a file, not a directory: ${text}`;
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_SOCKET_PATH_BYTES) return `a socket path of ${bytes} bytes is too long: at most ${MAX_SOCKET_PATH_BYTES} fit in a Unix socket address`;
  return { kind: 'unix', path: text };
}

/**
 * The local API's address: an absolute Unix socket path (it starts with "/")
 * or HOST:PORT. Returns {kind: 'unix', path} or {kind: 'tcp', host, port}, or a
 * message saying what is wrong.
 */
export function parseApiAddress(text: string): ListenAddress | string {
  if (text.startsWith('/')) return parseSocketPath(text);
  const hp = parseHostPort(text);
  if (typeof hp === 'string' && !text.includes(':')) return `neither an absolute Unix socket path (e.g. /run/xdplb/api.sock) nor ${HOST_PORT}`;
  return hp;
}
