// One health probe: a TCP connect, or an HTTP(S) GET with an expected status.
// Resolves with the outcome; never rejects, never throws: whatever Node
// refuses to even start (a bad port, a character it will not send) is a
// failed probe that says so. A timeout is decided one turn of
// the event loop late (setImmediate): if the loop was held up (a large
// reload, a scrape), a connection or answer that arrived meanwhile is read
// first, and a healthy backend is not failed for the daemon's own stall.
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { statusRange } from '../config/schema.ts';

export interface ProbeResult {
  ok: boolean;
  durationMs: number;
  detail: string;
}

/** Runs fn after the I/O callbacks the event loop has ready now. */
function afterPendingIo(fn: () => void): void {
  setImmediate(fn);
}

/** An error Node threw at once instead of emitting it later, as a probe's detail: its code and message. */
function notStarted(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return `probe not started: ${typeof code === 'string' ? `${code}: ` : ''}${message}`;
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let s: Socket | undefined;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s?.destroy();
      resolve({ ok, durationMs: performance.now() - started, detail });
    };
    try {
      s = connect({ host, port });
      timer = setTimeout(() => afterPendingIo(() => done(false, `no connection within ${timeoutMs} ms`)), timeoutMs);
      s.once('connect', () => done(true, 'connected'));
      s.on('error', (e) => done(false, e.message)); // on, not once: a second error must find a listener too
    } catch (err) {
      done(false, notStarted(err));
    }
  });
}

/** "200-399" or 200 → a predicate on the status code. */
export function statusMatcher(expect: number | string): (status: number) => boolean {
  const [lo, hi] = statusRange(expect);
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
  const request = p.scheme === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let req: ClientRequest | undefined;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      resolve({ ok, durationMs: performance.now() - started, detail });
    };
    try {
      const matches = statusMatcher(p.expect);
      req = request(
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
          const status = res.statusCode ?? 0;
          done(matches(status), `HTTP ${status}`);
          // the status is all a check needs: the body is not read, and the connection ends here (a backend
          // streaming an endless body kept one open, and read, per check)
          res.destroy();
        },
      );
      const sent = req;
      timer = setTimeout(
        () =>
          afterPendingIo(() => {
            if (settled) return;
            done(false, `no answer within ${p.timeoutMs} ms`);
            sent.destroy();
          }),
        p.timeoutMs,
      );
      sent.once('close', () => clearTimeout(timer));
      sent.on('error', (e) => done(false, e.message)); // on, not once: a second error must find a listener too
      sent.end();
    } catch (err) {
      clearTimeout(timer);
      req?.on('error', () => undefined).destroy();
      done(false, notStarted(err));
    }
  });
}
