// The client side of the daemon's local API (api.ts), for the CLI: one
// request, JSON in and out, over the Unix socket or TCP, within a deadline.
import { request } from 'node:http';
import { formatApiAddress, type ApiAddress } from './api.ts';

/** An answer larger than this is refused (a /v1/state of 10,000 services is a few MB). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** Where the API is, and over TCP the token it wants (apiTokenFile; the CLI's --api-token-file). */
export type ApiTarget = ApiAddress & { readonly token?: string };

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** No answer came: `code` is the system error (ENOENT, ECONNREFUSED, EACCES, ...) or ETIMEDOUT. */
export class ApiUnreachable extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ApiUnreachable';
    this.code = code;
  }
}

/**
 * Sends one request and reads the whole JSON answer. Rejects with
 * ApiUnreachable when nothing answers within timeoutMs, with an Error when
 * the answer is not JSON.
 */
export function callApi(address: ApiTarget, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 2000): Promise<ApiAnswer> {
  const where = formatApiAddress(address);
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request({
      ...(address.kind === 'unix' ? { socketPath: address.path } : { host: address.host, port: address.port }),
      method,
      path,
      agent: false,
      headers: {
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        ...(address.token === undefined ? {} : { authorization: `Bearer ${address.token}` }),
      },
    });
    const timer = setTimeout(() => req.destroy(new ApiUnreachable('ETIMEDOUT', `no answer from ${where} within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err instanceof ApiUnreachable || !('code' in err) ? err : new ApiUnreachable(String(err.code), err.message));
    };
    req.once('error', fail);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the answer from ${where} exceeds ${MAX_ANSWER_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.once('error', fail);
      res.once('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : null });
        } catch {
          reject(new Error(`the answer from ${where} is not JSON (HTTP ${res.statusCode}): ${JSON.stringify(text.slice(0, 100))}`)); // one line, whatever answered
        }
      });
    });
    req.end(payload ?? undefined);
  });
}
