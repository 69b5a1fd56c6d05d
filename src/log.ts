// Logs are data: pino, JSON lines by default, readable on a terminal. One
// child logger per component, with the component's name as a fixed key; an
// error goes under `err` as the Error itself (pino's serializer keeps its
// type, message, stack and code). libbpf's messages come in through the
// addon (src/dataplane/native.ts).
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

const level = process.env.XDPLB_LOG_LEVEL ?? 'info';
const usePretty = process.env.XDPLB_LOG_FORMAT === 'pretty' || (process.env.XDPLB_LOG_FORMAT !== 'json' && process.stderr.isTTY);

export const log: Logger = usePretty
  ? pino({ level, base: undefined }, pretty({ destination: 2, colorize: true, sync: true }))
  : pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));

export function component(name: string): Logger {
  return log.child({ component: name });
}
