// Helpers of the local API tests: fake handlers that record what they were
// asked, a recording logger, and raw requests (what a hostile client sends).
import { request } from 'node:http';
import { connect } from 'node:net';
import type { ApiHandlers, ApiLog } from '../../src/director/api.ts';
import type { ApiTarget } from '../../src/director/api-client.ts';
import type { BackendOverride } from '../../src/model/desired.ts';

/** The token of the test servers over TCP (the API refuses TCP without one). */
export const TOKEN = 'test-token-0123456789abcdef0123456789';

export interface Fake {
  h: ApiHandlers;
  /** setOverride calls, in order. */
  calls: [string, string, BackendOverride | null][];
  /** The role setRole() last set. */
  role: 'active' | 'standby';
  /** Makes state() throw this (or return a BigInt, which JSON cannot hold). */
  stateFails: Error | 'bigint' | null;
}

export function fakeHandlers(pinDir = '/sys/fs/bpf/xdplb/test0'): Fake {
  const fake: Fake = {
    calls: [],
    role: 'active',
    stateFails: null,
    h: {
      daemon: () => ({ pid: process.pid, pinDir, configPath: '/etc/xdplb/test.yaml' }),
      state: () => {
        if (fake.stateFails === 'bigint') return { packets: 1n };
        if (fake.stateFails) throw fake.stateFails;
        return { pinDir, services: [] };
      },
      setOverride: (service, address, override) => {
        fake.calls.push([service, address, override]);
        return service === 'web' ? null : `no service ${service}`;
      },
      setRole: (role) => {
        const was = fake.role;
        fake.role = role;
        return { was };
      },
      setDrained: () => ({ was: false }),
    },
  };
  return fake;
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

export function recordingLog(): ApiLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (obj, msg) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj, msg }),
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** One request with exactly these headers (and the target's token, if it has one) and body (a string is sent as it is). */
export function send(to: ApiTarget, method: string, path: string, body?: string, extra: Record<string, string> = {}): Promise<Answer> {
  const headers = to.token === undefined ? extra : { authorization: `Bearer ${to.token}`, ...extra };
  return new Promise((resolve, reject) => {
    const req = request({
      ...(to.kind === 'unix' ? { socketPath: to.path } : { host: to.host, port: to.port }),
      method,
      path,
      agent: false,
      headers: body === undefined ? headers : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
    });
    req.setTimeout(5000, () => req.destroy(new Error(`no answer to ${method} ${path} within 5 s`)));
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.once('end', () => {
        try {
          resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) as unknown });
        } catch {
          reject(new Error(`not JSON (HTTP ${res.statusCode}): ${text.slice(0, 200)}`));
        }
      });
    });
    req.end(body);
  });
}

/**
 * POSTs `total` bytes of body over a raw socket, with a Content-Length or
 * chunked, honouring back-pressure; resolves with the answer once the
 * server ends the connection (write errors are expected: the server stops
 * reading). `expectContinue`: send only the
 * headers, as a client waiting for "100 Continue" does.
 */
export function postHuge(to: ApiTarget, total: number, framing: 'content-length' | 'chunked', expectContinue = false): Promise<{ statusLine: string; answer: string }> {
  const piece = Buffer.alloc(64 * 1024, 'x');
  return new Promise((resolve, reject) => {
    const s = to.kind === 'unix' ? connect(to.path) : connect(to.port, to.host);
    let answer = '';
    let sent = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the server neither answered nor closed within 10 s (sent ${sent} bytes; got ${JSON.stringify(answer.slice(0, 100))})`));
    }, 10_000);
    const done = () => {
      clearTimeout(timer);
      resolve({ statusLine: answer.split('\r\n')[0]!, answer });
    };
    s.setEncoding('latin1');
    s.on('data', (d: string) => (answer += d));
    s.once('end', () => s.destroy()); // the server ended the answer: stop sending, as a client should
    s.once('close', done);
    s.on('error', () => {}); // EPIPE/ECONNRESET while writing: the server closed, as it should
    const framingHeader = framing === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${total}`;
    const auth = to.token === undefined ? '' : `authorization: Bearer ${to.token}\r\n`;
    s.write(`POST /v1/backends/drain HTTP/1.1\r\nhost: localhost\r\n${auth}content-type: application/json\r\n${framingHeader}\r\n${expectContinue ? 'expect: 100-continue\r\n' : ''}\r\n`);
    if (expectContinue) return;
    const more = () => {
      while (sent < total && !s.destroyed) {
        sent += piece.length;
        const ok = framing === 'chunked' ? [s.write(`${piece.length.toString(16)}\r\n`), s.write(piece), s.write('\r\n')].every(Boolean) : s.write(piece);
        if (!ok) return void s.once('drain', more);
      }
      if (framing === 'chunked' && !s.destroyed) s.write('0\r\n\r\n');
    };
    more();
  });
}
