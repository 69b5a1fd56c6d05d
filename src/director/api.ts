// The daemon's local API: what the CLI uses to act on a running daemon. JSON
// in and out; nothing here decides anything.
//   GET  /v1/daemon                      who answers: pid, pin directory, config (cheap)
//   GET  /v1/state                       reload/reconcile results, overrides
//   POST /v1/role                        { "role": "active" | "standby" }
//   POST /v1/drain                       { "drained": true | false }
//   POST /v1/backends/{drain,undrain,remove}  { "service": NAME, "address": IP }
//
// The access boundary is the socket's file permissions: by default a Unix
// socket of mode 0600 (root only) in the run directory, runFile(pinDir,
// 'api.sock'). TCP only when apiAddress says HOST:PORT, and then only with
// a token (apiTokenFile, api-token.ts) that every request must carry: a TCP
// port, even on 127.0.0.1, is open to every local user. Every request is
// checked before a handler sees it: the token (over TCP), a known path and method, a body of at most
// MAX_BODY_BYTES (never buffered beyond that), JSON that fits the endpoint's
// schema. No request can throw out of here: a failing handler answers 500.
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, isIP, isIPv6 } from 'node:net';
import { dirname } from 'node:path';
import { z } from 'zod';
import { parseApiAddress, type ListenAddress } from '../config/address.ts';
import { tokenMatches } from './api-token.ts';
import { errorMessage, XdplbError } from '../errors.ts';
import { parseIp } from '../model/address.ts';
import type { BackendOverride } from '../model/desired.ts';
import { runFile } from '../paths.ts';
import { ROLES, type Role } from '../model/role.ts';
import { MAX_SERVICE_NAME } from '../model/service.ts';

export interface ApiHandlers {
  daemon(): { pid: number; pinDir: string; configPath: string };
  state(): unknown;
  /** Returns an error message, or null when done. */
  setOverride(service: string, address: string, override: BackendOverride | null): string | null;
  /** Makes this director active (owns and announces the VIPs) or standby (owns nothing): the role it had, or why not. */
  setRole(role: Role): { was: Role } | { error: string };
  /** Drains the director (withdraws every route, keeps forwarding) or undoes it: whether it was drained. */
  setDrained(drained: boolean): { was: boolean };
}

/** The part of a pino logger the API uses. */
export interface ApiLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Where the API listens, or where a client finds it (parseApiAddress of config/address.ts reads one). */
export type ApiAddress = ListenAddress;

/** The largest request body read; a larger one is answered 413 and its connection closed. */
export const MAX_BODY_BYTES = 64 * 1024;

export function formatApiAddress(a: ApiAddress): string {
  if (a.kind === 'unix') return a.path;
  return isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

// ---- endpoints: one body schema each ----

/** GET endpoints take no body. */
const NoBody = z.undefined({ error: 'this endpoint takes no body' });

const BackendAction = z.strictObject(
  {
    service: z.string().min(1).max(MAX_SERVICE_NAME),
    address: z.string().max(64).refine((s) => parseIp(s) !== null, 'an IPv4 or IPv6 address'),
  },
  { error: (iss) => (iss.code === 'invalid_type' ? 'expected a JSON object {"service": NAME, "address": IP}' : undefined) },
);

interface Reply {
  status: number;
  body: unknown;
}

interface Route {
  method: 'GET' | 'POST';
  body: z.ZodType;
  run(h: ApiHandlers, body: unknown): Reply;
}

/** A route whose handler gets the body its schema produced. */
function route<S extends z.ZodType>(method: Route['method'], body: S, run: (h: ApiHandlers, body: z.output<S>) => Reply): Route {
  return { method, body, run: (h, b) => run(h, b as z.output<S>) }; // serve() passes only what `body` parsed
}

const ACTIONS: Record<string, BackendOverride | null> = { drain: 'drain', undrain: null, remove: 'remove' };

const RoleChange = z.strictObject(
  { role: z.enum(ROLES) },
  { error: (iss) => (iss.code === 'invalid_type' ? 'expected a JSON object {"role": "active" | "standby"}' : undefined) },
);

const DrainChange = z.strictObject(
  { drained: z.boolean() },
  { error: (iss) => (iss.code === 'invalid_type' ? 'expected a JSON object {"drained": true | false}' : undefined) },
);

const ROUTES = new Map<string, Route>([
  [
    '/v1/role',
    route('POST', RoleChange, (h, b) => {
      const r = h.setRole(b.role);
      return 'error' in r ? { status: 409, body: { error: r.error } } : { status: 200, body: { role: b.role, was: r.was } };
    }),
  ],
  ['/v1/drain', route('POST', DrainChange, (h, b) => ({ status: 200, body: { drained: b.drained, was: h.setDrained(b.drained).was } }))],
  ['/v1/daemon', route('GET', NoBody, (h) => ({ status: 200, body: h.daemon() }))],
  ['/v1/state', route('GET', NoBody, (h) => ({ status: 200, body: h.state() }))],
  ...Object.entries(ACTIONS).map(([action, override]): [string, Route] => [
    `/v1/backends/${action}`,
    route('POST', BackendAction, (h, b) => {
      const error = h.setOverride(b.service, b.address, override);
      return error ? { status: 404, body: { error } } : { status: 200, body: { ok: true } };
    }),
  ]),
]);

// ---- serving ----

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** How long a refused connection stays open, unread, after its answer. */
const LINGER_MS = 1000;

/**
 * Answers and closes the connection without reading what is left of the
 * request body. Not res.end(): Node would destroy the socket as soon as the
 * answer is out, and a client still sending its body would often get a reset
 * instead of the answer. The connection is half-closed instead (the answer,
 * then end of stream), left unread, and destroyed LINGER_MS later.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  const socket = req.socket;
  socket.pause();
  req.pause();
  const text = `${JSON.stringify({ error })}\n`;
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), connection: 'close' });
  res.write(text);
  socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** The body, or null when it passed MAX_BODY_BYTES (reading stops there) or the client went away (answered 413 all the same). */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (body: Buffer | null) => {
      req.off('data', onData);
      resolve(body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return done(null);
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => done(Buffer.concat(chunks, size)));
    req.once('error', () => done(null));
    req.once('close', () => done(null)); // no-op after 'end': the promise is settled
  });
}

/**
 * Over TCP, only requests addressed to an IP literal or localhost: a browser
 * page whose name was rebound to 127.0.0.1 sends its own name.
 */
function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
  return name === 'localhost' || isIP(name) !== 0;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}

/**
 * Answers one request; `token`: over TCP, the token every request must carry
 * (checked first: without it, not even which paths exist is told);
 * `expectsContinue`: the client waits for "100 Continue" before it sends the body.
 */
async function serve(req: IncomingMessage, res: ServerResponse, h: ApiHandlers, log: ApiLog, token: string | null, expectsContinue: boolean): Promise<void> {
  const tcp = token !== null;
  if (tcp && !hostAllowed(req.headers.host)) return refuse(req, res, 403, 'over TCP the API answers only requests for an IP address or localhost (Host header)');
  if (tcp && !tokenMatches(req.headers.authorization, token))
    return refuse(req, res, 401, 'over TCP the API needs its token (apiTokenFile): Authorization: Bearer TOKEN; the CLI sends it with --api-token-file FILE', { 'www-authenticate': 'Bearer realm="xdplb"' });
  const path = (req.url ?? '').split('?')[0]!;
  const r = ROUTES.get(path);
  if (!r) return refuse(req, res, 404, `no endpoint ${path.slice(0, 200)}; there are ${[...ROUTES.keys()].join(', ')}`);
  if (req.method !== r.method) return refuse(req, res, 405, `${path} takes ${r.method}, not ${req.method}`, { allow: r.method });
  if (r.method === 'POST' && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? ''))
    return refuse(req, res, 415, 'the body must be JSON, sent with content-type: application/json');
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return refuse(req, res, 413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
  if (expectsContinue) res.writeContinue();
  const raw = hasBody(req) ? await readBody(req) : Buffer.alloc(0);
  if (raw === null) return refuse(req, res, 413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
  let json: unknown;
  if (raw.length > 0) {
    try {
      json = JSON.parse(raw.toString('utf8')) as unknown;
    } catch (err) {
      return send(res, 400, { error: `the body is not JSON: ${errorMessage(err)}` });
    }
  }
  const body = r.body.safeParse(json);
  if (!body.success) return send(res, 400, { error: `bad request body: ${describeIssues(body.error)}` });
  let reply: Reply;
  try {
    reply = r.run(h, body.data);
  } catch (err) {
    log.error({ method: req.method, path, err }, 'API handler failed');
    return send(res, 500, { error: `internal error: ${errorMessage(err)}` });
  }
  send(res, reply.status, reply.body);
}

export interface ApiOptions {
  /** apiAddress of the config: an absolute socket path or HOST:PORT; absent: runFile(pinDir, 'api.sock'). */
  address?: string | ApiAddress | undefined;
  /** The token of apiTokenFile (readApiToken): required over TCP, where every request must carry it; unused on a Unix socket. */
  token?: string | undefined;
  pinDir: string;
  log: ApiLog;
}

/**
 * Starts the API. A Unix socket is created with mode 0600 (its directory, if
 * missing, 0700), replaces a stale socket of a dead daemon, never another
 * file, and is removed when the server closes.
 */
export async function startApi(options: ApiOptions, h: ApiHandlers): Promise<Server> {
  const { log } = options;
  const address = typeof options.address === 'object' ? options.address : parseApiAddress(options.address ?? runFile(options.pinDir, 'api.sock'));
  if (typeof address === 'string') throw new XdplbError('CONFIG_INVALID', `${options.address === undefined ? 'the API socket (set apiAddress)' : 'apiAddress'}: ${address}`);
  const where = formatApiAddress(address);
  if (address.kind === 'tcp' && options.token === undefined)
    throw new XdplbError('CONFIG_INVALID', `apiAddress ${where}: the API over TCP needs apiTokenFile (a TCP port, even on 127.0.0.1, is open to every local user)`);
  const token = address.kind === 'tcp' ? options.token! : null;
  const handle = (expectsContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    serve(req, res, h, log, token, expectsContinue).catch((err: unknown) => {
      log.error({ method: req.method, url: req.url?.slice(0, 200), err }, 'API request failed');
      if (res.headersSent) res.destroy();
      else refuse(req, res, 500, 'internal error');
    });
  };
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, handle(false));
  server.on('checkContinue', handle(true)); // a body too large is refused before the client sends it
  if (address.kind === 'unix') await prepareSocketPath(address.path, log);
  else log.info({ address: where }, 'the local API listens on TCP: every request must carry the token of apiTokenFile');
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new XdplbError('DAEMON', `the local API cannot listen on ${where}: ${err.message}`, [], { cause: err })));
    if (address.kind === 'tcp') return server.listen(address.port, address.host, () => resolve());
    const umask = process.umask(0o177); // the socket is created 0600: no moment at which others may connect
    try {
      server.listen(address.path, () => resolve()); // binds now; only the callback waits
    } finally {
      process.umask(umask);
    }
  });
  server.on('error', (err) => log.error({ address: where, err }, 'local API'));
  if (address.kind === 'unix') {
    const path = address.path;
    try {
      chmodSync(path, 0o600);
      const ino = statSync(path).ino;
      server.once('close', () => removeSocket(path, ino));
    } catch (err) {
      server.close();
      throw err;
    }
  }
  log.info({ address: where }, 'local API listening');
  return server;
}

/**
 * Makes way for a socket at `path`: creates its directory (0700) when
 * missing, removes a socket nobody listens on (a dead daemon's), and refuses
 * anything else that is there.
 */
async function prepareSocketPath(path: string, log: ApiLog): Promise<void> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const d = statSync(dir);
  if ((d.mode & 0o022) !== 0 && (d.mode & 0o1000) === 0)
    log.warn({ dir, mode: (d.mode & 0o7777).toString(8) }, 'the API socket directory is writable by others: they could replace the socket');
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new XdplbError('DAEMON', `${path} exists and is not a socket: refusing to replace it with the API socket (move it away, or set apiAddress)`);
  const answer = await probeSocket(path);
  if (answer === 'connected') throw new XdplbError('DAEMON', `${path}: another process listens on it (another daemon with the same apiAddress?)`);
  if (answer !== 'ECONNREFUSED') throw new XdplbError('DAEMON', `${path}: cannot tell whether the socket is in use (${answer}): not replaced`);
  unlinkSync(path);
  log.info({ path }, 'removed the stale API socket of a daemon that is gone');
}

/** 'connected', or the error code of the connect (ECONNREFUSED: nobody listens). */
function probeSocket(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.setTimeout(1000, () => s.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Removes the server's socket file, if it is still the one it made. */
function removeSocket(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch {
    /* gone already: closing a listening Unix socket removes it */
  }
}
