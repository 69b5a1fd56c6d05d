// /metrics (Prometheus text format), /healthz (the process answers) and
// /readyz (the data plane is attached and the config applied).
import { createServer, type Server } from 'node:http';
import { parseHostPort } from '../config/address.ts';
import { XdplbError } from '../errors.ts';

/** What the server serves at /metrics: the text, in pieces, and its content type. */
export interface Exposition {
  exposition(): Promise<string[]>;
  readonly contentType: string;
}

export async function startMetricsServer(address: string, metrics: Exposition, ready: () => boolean): Promise<Server> {
  const hp = parseHostPort(address);
  if (typeof hp === 'string') throw new XdplbError('CONFIG_INVALID', `metricsAddress ${address}: ${hp}`);
  const { host, port } = hp;
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics
        .exposition()
        .then(async (pieces) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          for (const piece of pieces) if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
          res.end();
        })
        .catch((err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`scrape failed: ${err.message}\n`);
        });
      return;
    }
    if (req.url === '/healthz') return void res.end('ok\n');
    if (req.url === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      return void res.end(ok ? 'ready\n' : 'not ready\n');
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: /metrics, /healthz, /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
