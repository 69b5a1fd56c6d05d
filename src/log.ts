// Logs are data: pino, JSON lines by default, readable on a terminal. One
// child logger per component, with the component's name as a fixed key.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { native } from './dataplane/native.ts';

export type { Logger };

const level = process.env.XDPLB_LOG_LEVEL ?? 'info';
const usePretty = process.env.XDPLB_LOG_FORMAT === 'pretty' || (process.env.XDPLB_LOG_FORMAT !== 'json' && process.stderr.isTTY);

export const log: Logger = usePretty
  ? pino({ level, base: undefined }, pretty({ destination: 2, colorize: true, sync: true }))
  : pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));

export function component(name: string): Logger {
  return log.child({ component: name });
}

// libbpf's messages (a verifier rejection arrives as one whole message).
const libbpf = component('libbpf');
native.setLogger((lvl, message) => {
  if (lvl === 'warn') libbpf.warn({ libbpf: message }, 'libbpf');
  else libbpf.debug({ libbpf: message }, 'libbpf');
});
