// The daemon's local API (127.0.0.1 by default): what the CLI uses to act on
// a running daemon. JSON in and out; nothing here decides anything.
//   GET  /v1/daemon                      who answers: pid, pin directory, config (cheap)
//   GET  /v1/state                       reload/reconcile results, overrides
//   POST /v1/backends/{drain,undrain,remove}  { "service": NAME, "address": IP }
import { createServer, type Server } from 'node:http';
import type { BackendOverride } from '../model/desired.ts';

export interface ApiHandlers {
  daemon(): { pid: number; pinDir: string; configPath: string };
  state(): unknown;
  /** Returns an error message, or null when done. */
  setOverride(service: string, address: string, override: BackendOverride | null): string | null;
}

const ACTIONS: Record<string, BackendOverride | null> = { drain: 'drain', undrain: null, remove: 'remove' };

export function parseAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`not host:port: ${address}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export async function startApi(address: string, h: ApiHandlers): Promise<Server> {
  const { host, port } = parseAddress(address);
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/v1/daemon') return send(200, h.daemon());
    if (req.method === 'GET' && req.url === '/v1/state') return send(200, h.state());
    const action = /^\/v1\/backends\/(drain|undrain|remove)$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'POST' || !action) return send(404, { error: `no ${req.method} ${req.url}` });
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      let args: { service?: unknown; address?: unknown };
      try {
        args = JSON.parse(body) as typeof args;
      } catch {
        return send(400, { error: 'the body must be JSON: {"service": NAME, "address": IP}' });
      }
      if (typeof args.service !== 'string' || typeof args.address !== 'string') return send(400, { error: 'service and address are required' });
      const error = h.setOverride(args.service, args.address, ACTIONS[action]!);
      return error ? send(404, { error }) : send(200, { ok: true });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
