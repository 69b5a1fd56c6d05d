// Bad usage, said in one line. commander's own errors (an unknown option, a
// missing argument, a command group named without its command) become one
// line as xdplb's own are ("xdplb: what was wrong (see xdplb CMD --help)"),
// never the whole help; and the checks of command-line values that more than
// one command shares. test/cli/bad-input.test.ts holds the table of bad
// inputs every command must refuse this way.
import { statSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { parseHostPort, parseSocketPath, type SocketPath } from '../config/address.ts';
import { BPFFS } from '../dataplane/bpffs.ts';
import { errorMessage, XdplbError } from '../errors.ts';
import { interfaceNameProblem } from '../model/names.ts';
import { MAX_SERVICE_NAME } from '../model/service.ts';
import { runFile } from '../paths.ts';

/** Every command of the tree under c, c first (for the program: the program itself, then each command and subcommand). */
export function commandTree(c: Command): Command[] {
  return [c, ...c.commands.flatMap(commandTree)];
}

/** The command as typed: "xdplb config validate". */
export function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/** What commander reported, and on which command: `message` null when it showed a help for an error (no subcommand given). */
export interface CommanderUsage {
  command: Command;
  message: string | null;
}

/**
 * Makes every command of the program throw instead of exiting and keep its
 * error to itself; returns what the last failing parse reported, for
 * usageLine(). Run on the whole tree, so that a command added later is
 * covered without a word.
 */
export function captureUsageErrors(program: Command): () => CommanderUsage | null {
  let seen: CommanderUsage | null = null;
  for (const c of commandTree(program)) {
    c.exitOverride()
      .showHelpAfterError(false)
      .configureOutput({
        outputError: (text) => void (seen ??= { command: c, message: text }),
        // help written as an error: a command group without its command (`xdplb config`), `xdplb help NOSUCH`
        writeErr: () => void (seen ??= { command: c, message: null }),
      });
  }
  return () => seen;
}

/** The one line (without "xdplb: ") for a usage error commander reported; `args` are the command line's words after "xdplb". */
export function usageLine(u: CommanderUsage | null, args: readonly string[]): string {
  if (u === null) return 'bad usage (see xdplb --help)';
  const path = commandPath(u.command);
  if (u.message === null) {
    const words = path.split(' ').slice(1);
    const asked = args[words.length] === 'help' ? args[words.length + 1] : undefined;
    const names = u.command.commands.map((c) => c.name()).join(', ');
    if (asked !== undefined && !u.command.commands.some((c) => c.name() === asked)) return `no command ${[...words, asked].join(' ')}: there are ${names} (see ${path} --help)`;
    return `${words.length ? `${words.join(' ')} needs a command` : 'give a command'}: ${names} (see ${path} --help)`;
  }
  const text = u.message
    .replace(/^error: /, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ')
    .replace('(Did you mean', '(did you mean');
  return `${text} (see ${path} --help)`;
}

/**
 * Why a pin directory named on the command line (absolute, no . or ..:
 * pinDirProblem of model/names.ts) cannot be used, or null: the bpffs root
 * itself (whose other pins are not xdplb's), or a path too long for the
 * names of its run files (runFile of paths.ts: 255 bytes a name).
 */
export function pinDirUsageProblem(pinDir: string): string | null {
  if (pinDir === BPFFS) return `${BPFFS} is the bpffs itself, not a pin directory (e.g. ${BPFFS}/xdplb/eth1)`;
  const name = Buffer.byteLength(basename(runFile(pinDir, 'kubernetes.json.new'))); // the longest of them
  if (name > 255) return `a pin directory of ${Buffer.byteLength(pinDir)} bytes is too long: the run files named after it would have names of ${name} bytes, more than the 255 a file name holds`;
  return null;
}

/** The default API socket of a daemon on pinDir, checked: a path too long for a Unix socket address is a usage error naming --api. */
export function defaultApiSocket(pinDir: string): SocketPath {
  const a = parseSocketPath(runFile(pinDir, 'api.sock'));
  if (typeof a === 'string') throw new XdplbError('USAGE', `the API socket of ${pinDir} cannot be reached (${a}): give --api, the daemon's apiAddress`);
  return a;
}

/** A service name given on the command line: as the config's (1 to MAX_SERVICE_NAME characters). */
export function checkServiceName(name: string): void {
  if (name.length === 0 || name.length > MAX_SERVICE_NAME) throw new XdplbError('USAGE', `a service name has 1 to ${MAX_SERVICE_NAME} characters, not ${name.length}`);
}

/** -i IFACE: a name the kernel could have (model/names.ts). */
export function checkInterfaceFlag(name: string): void {
  const problem = interfaceNameProblem(name);
  if (problem) throw new XdplbError('USAGE', `-i ${JSON.stringify(name)}: ${problem}`);
}

/** A HOST:PORT flag (--metrics-address): named in the error, not left to the config's schema to blame the file. */
export function checkHostPortFlag(flag: string, text: string): void {
  const hp = parseHostPort(text);
  if (typeof hp === 'string') throw new XdplbError('USAGE', `${flag} ${text}: ${hp}`);
}

/** A file a flag names (--object): one that exists and is a regular file. */
export function checkFileFlag(flag: string, path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw new XdplbError('USAGE', `${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err)}`);
  }
  if (!st.isFile()) throw new XdplbError('USAGE', `${flag} ${path}: not a regular file`);
}

/** A Kubernetes Node name (--node): a DNS subdomain (RFC 1123), as the API server requires. */
export function checkNodeName(name: string): void {
  if (name.length === 0 || name.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name))
    throw new XdplbError('USAGE', `--node ${JSON.stringify(name)}: a Node name is a DNS subdomain (lower-case letters, digits, - and ., at most 253)`);
}
