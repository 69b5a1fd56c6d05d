// The test API server listens on 127.0.0.1 of the root network namespace,
// which a director in a namespace of its own cannot reach (and nothing may
// be added to the root namespace to route to it). A relay makes the same
// 127.0.0.1:PORT answer inside the namespace: a process there accepts on it
// and hands each connection to a Unix socket (a file: reachable from every
// network namespace), which this process passes on to the server. TLS goes
// through untouched, so the server's certificate for 127.0.0.1 still holds.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Relay {
  /** Stops passing connections on (as if the server had gone: connections inside fail). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

function pipe(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

const INSIDE = `
const net = require('node:net');
const [port, path] = process.argv.slice(1);
net.createServer((c) => {
  const up = net.connect(path);
  c.pipe(up).pipe(c);
  for (const [x, y] of [[c, up], [up, c]]) { x.on('error', () => y.destroy()); x.on('close', () => y.destroy()); }
}).listen(Number(port), '127.0.0.1', () => console.log('ready'));
`;

/** Makes 127.0.0.1:port of the root namespace reachable at 127.0.0.1:port inside netns ns (its lo must be up). */
export async function relayIntoNetns(ns: string, port: number): Promise<Relay> {
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-relay-'));
  const path = join(dir, 'api.sock');
  const open = new Set<Socket>();
  let server: Server | null = null;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((c) => {
        open.add(c);
        c.on('close', () => open.delete(c));
        pipe(c, connect(port, '127.0.0.1'));
      });
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const c of open) c.destroy();
      if (server) server.close(() => resolve());
      else resolve();
      server = null;
    });
  await listen();
  const inside: ChildProcess = spawn('nsenter', [`--net=/var/run/netns/${ns}`, '--', process.execPath, '-e', INSIDE, String(port), path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    inside.stdout!.once('data', () => resolve());
    inside.once('exit', (code) => reject(new Error(`the relay inside ${ns} exited with ${code}`)));
  });
  return {
    pause: close,
    resume: listen,
    async stop() {
      await close();
      inside.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TcpRelay extends Relay {
  readonly port: number;
}

/**
 * A relay on 127.0.0.1 to 127.0.0.1:port, for cutting one client's way to a
 * server: pause() blackholes it (open connections go quiet and new ones are
 * accepted and never answered, as on a partition: the client's requests hang
 * until its own timeouts), resume() passes connections on again.
 */
export async function tcpRelay(port: number): Promise<TcpRelay> {
  const open = new Set<Socket>();
  let cut = false;
  const server = createServer((c) => {
    open.add(c);
    c.on('close', () => open.delete(c));
    c.on('error', () => c.destroy());
    if (cut) return; // accepted, never answered
    const up = connect(port, '127.0.0.1');
    up.on('error', () => c.destroy());
    c.on('data', (d) => void (cut || up.write(d)));
    up.on('data', (d) => void (cut || c.write(d)));
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    async pause() {
      cut = true;
    },
    async resume() {
      cut = false;
      for (const c of open) c.destroy(); // the quiet ones: the client reconnects
    },
    async stop() {
      for (const c of open) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
