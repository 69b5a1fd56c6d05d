// One health probe: a TCP connect, or an HTTP(S) GET with an expected status.
// Resolves with the outcome; never rejects. A timeout is decided one turn of
// the event loop late (setImmediate): if the loop was held up (a large
// reload, a scrape), a connection or answer that arrived meanwhile is read
// first, and a healthy backend is not failed for the daemon's own stall.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

export interface ProbeResult {
  ok: boolean;
  durationMs: number;
  detail: string;
}

/** Runs fn after the I/O callbacks the event loop has ready now. */
function afterPendingIo(fn: () => void): void {
  setImmediate(fn);
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let settled = false;
    const done = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ok, durationMs: performance.now() - started, detail });
    };
    const timer = setTimeout(() => afterPendingIo(() => done(false, `no connection within ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => done(true, 'connected'));
    s.once('error', (e) => done(false, e.message));
  });
}

/** "200-399" or 200 → a predicate on the status code. */
export function statusMatcher(expect: number | string): (status: number) => boolean {
  if (typeof expect === 'number') return (s) => s === expect;
  const [lo, hi] = expect.split('-').map(Number) as [number, number];
  return (s) => s >= lo && s <= hi;
}

export interface HttpProbe {
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
  hostHeader?: string;
  expect: number | string;
  verifyTls: boolean;
  timeoutMs: number;
}

export function httpProbe(p: HttpProbe): Promise<ProbeResult> {
  const started = performance.now();
  const matches = statusMatcher(p.expect);
  const request = p.scheme === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      resolve({ ok, durationMs: performance.now() - started, detail });
    };
    const req = request(
      {
        host: p.host,
        port: p.port,
        path: p.path,
        method: 'GET',
        agent: false,
        timeout: p.timeoutMs,
        headers: { host: p.hostHeader ?? p.host, 'user-agent': 'xdplb-health-check', connection: 'close' },
        ...(p.scheme === 'https' ? { rejectUnauthorized: p.verifyTls } : {}),
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        done(matches(status), `HTTP ${status}`);
      },
    );
    const timer = setTimeout(
      () =>
        afterPendingIo(() => {
          if (settled) return;
          done(false, `no answer within ${p.timeoutMs} ms`);
          req.destroy();
        }),
      p.timeoutMs,
    );
    req.once('close', () => clearTimeout(timer));
    req.once('error', (e) => done(false, e.message));
    req.end();
  });
}
