// The lab's client, run inside the client namespace. Prints JSON on stdout.
//   requests URL N        N requests, each on a new TCP connection
//   continuous URL [MS]   new-connection requests until SIGTERM (or stdin closes),
//                         each with a timeout of MS (default 2000); prints the
//                         counts and each failure's start (Unix ms) and error
//   hold URL N            N long-lived keep-alive connections; each line on
//                         stdin ("probe") sends one request on every one of them
//   paced URL MS [T]      a new-connection request every MS ms, not waiting for
//                         the one before, each with a timeout of T (default 900:
//                         a lost SYN fails, its retransmission comes at 1 s), until
//                         SIGTERM (or stdin closes); prints each one's start (Unix
//                         ms), whether it succeeded, and how long it took
//   datagrams HOST:PORT R R UDP datagrams a second until SIGTERM; prints how many
import { createSocket } from 'node:dgram';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';

type Reply = { ok: true; backend: string; local: number } | { ok: false; error: string };

function get(url: string, agent: Agent | false, timeoutMs = 3000): Promise<Reply> {
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: timeoutMs, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ ok: true, backend: String(res.headers['x-backend'] ?? '?'), local: req.socket?.localPort ?? 0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ ok: false, error: e.message }));
    req.end();
  });
}

const [mode, url = 'http://10.240.0.201/', arg] = process.argv.slice(2);

if (mode === 'requests') {
  const n = Number(arg ?? 10);
  const replies: Reply[] = [];
  for (let i = 0; i < n; i++) replies.push(await get(url, false));
  process.stdout.write(`${JSON.stringify(replies)}\n`);
} else if (mode === 'continuous') {
  let running = true;
  process.on('SIGTERM', () => (running = false));
  process.stdin.on('end', () => (running = false));
  process.stdin.resume();
  let ok = 0;
  const failures: string[] = [];
  /** [start (Unix ms), ok] of every request that failed, and of the first one that did not after each failure. */
  const edges: [number, boolean][] = [];
  while (running) {
    const at = Date.now();
    const r = await get(url, false, Number(arg ?? 2000));
    if (r.ok) ok++;
    else failures.push(r.error);
    if (!r.ok || edges.at(-1)?.[1] === false) edges.push([at, r.ok]);
  }
  process.stdout.write(`${JSON.stringify({ ok, failures, edges })}\n`);
  process.stdin.destroy(); // an open stdin would keep the process alive
} else if (mode === 'hold') {
  const n = Number(arg ?? 10);
  // one agent per connection: each keeps exactly one socket alive
  const agents = Array.from({ length: n }, () => new Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 1000 }));
  const probe = async () => Promise.all(agents.map((a) => get(url, a)));
  process.stdout.write(`${JSON.stringify(await probe())}\n`);
  for await (const _line of createInterface({ input: process.stdin })) process.stdout.write(`${JSON.stringify(await probe())}\n`);
  for (const a of agents) a.destroy();
} else if (mode === 'paced') {
  const timeoutMs = Number(process.argv[5] ?? 900);
  const attempts: Promise<[number, boolean, number]>[] = [];
  const timer = setInterval(() => {
    const at = Date.now();
    attempts.push(get(url, false, timeoutMs).then((r) => [at, r.ok, Date.now() - at]));
  }, Number(arg ?? 20));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    process.stdout.write(`${JSON.stringify({ attempts: await Promise.all(attempts) })}\n`);
    process.stdin.destroy();
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
} else if (mode === 'datagrams') {
  const [host, port] = [url.slice(0, url.lastIndexOf(':')), Number(url.slice(url.lastIndexOf(':') + 1))];
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let sent = 0;
  const timer = setInterval(() => socket.send(`datagram ${sent++}`, port, host), 1000 / Number(arg ?? 100));
  process.on('SIGTERM', () => {
    clearInterval(timer);
    process.stdout.write(`${JSON.stringify({ sent })}\n`);
    socket.close();
  });
} else {
  process.stderr.write('usage: client.ts requests|continuous|hold URL [N] | paced URL MS [TIMEOUT] | datagrams HOST:PORT RATE\n');
  process.exitCode = 2;
}
