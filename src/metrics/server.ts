// /metrics (Prometheus text format), /healthz (the process answers) and
// /readyz (the data plane is attached and the config applied).
import { createServer, type Server } from 'node:http';
import { parseHostPort } from '../config/address.ts';
import { XdplbError } from '../errors.ts';

/** What the server serves at /metrics: the text, in chunks written out as they come, and its content type. */
export interface Exposition {
  chunks(): AsyncIterable<string>;
  readonly contentType: string;
}

export async function startMetricsServer(address: string, metrics: Exposition, ready: () => boolean): Promise<Server> {
  const hp = parseHostPort(address);
  if (typeof hp === 'string') throw new XdplbError('CONFIG_INVALID', `metricsAddress ${address}: ${hp}`);
  const { host, port } = hp;
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      // each chunk goes to the socket as it is made (waiting for it to drain), so a
      // scrape holds a chunk, not the whole text; a failure before the first chunk is a 500,
      // one after it cuts the response short (the scraper sees a truncated body)
      (async () => {
        let started = false;
        try {
          for await (const chunk of metrics.chunks()) {
            if (!started) res.writeHead(200, { 'content-type': metrics.contentType });
            started = true;
            if (res.destroyed) return;
            if (!res.write(chunk)) await new Promise((r) => res.once('drain', r).once('close', r));
          }
          if (!started) res.writeHead(200, { 'content-type': metrics.contentType });
          res.end();
        } catch (err) {
          if (started) return void res.destroy();
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`scrape failed: ${(err as Error).message}\n`);
        }
      })();
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
