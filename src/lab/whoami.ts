// The lab's backend: answers every HTTP request like the `whoami` container
// (its name, its addresses, the client's address, the request line).
// Usage: node src/lab/whoami.ts NAME [PORT]
import { createServer } from 'node:http';
import { networkInterfaces } from 'node:os';

const name = process.argv[2] ?? 'backend';
const port = Number(process.argv[3] ?? 80);

const server = createServer((req, res) => {
  const ips = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal)
    .map((a) => a!.address);
  const lo = networkInterfaces().lo?.filter((a) => a.address !== '127.0.0.1' && a.address !== '::1').map((a) => a.address) ?? [];
  const body = [
    `Hostname: ${name}`,
    ...[...ips, ...lo].map((ip) => `IP: ${ip}`),
    `RemoteAddr: ${req.socket.remoteAddress}:${req.socket.remotePort}`,
    `${req.method} ${req.url} HTTP/${req.httpVersion}`,
    `Host: ${req.headers.host ?? ''}`,
    '',
  ].join('\n');
  res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
server.listen(port, '::', () => process.stderr.write(`${name} listening on ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
