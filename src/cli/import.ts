// `xdplb import ipvsadm|keepalived`: read the input (and keepalived's
// includes), hand the text to the pure importers in src/import/, print the
// config on stdout and the warnings on stderr.
import { closeSync, constants, fstatSync, globSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isatty } from 'node:tty';
import type { Command } from 'commander';
import { XdplbError } from '../errors.ts';
import type { Warning } from '../import/document.ts';
import type { IncludedFile } from '../import/keepalived-syntax.ts';

/** The most an input (with every file it includes) may hold: as a config file (src/config/load.ts). */
const MAX_INPUT_BYTES = 32 * 1024 * 1024;
const MAX_INCLUDED_FILES = 1000;

/** The text of a file, or of stdin for "-"; refused beyond `budget.left` bytes (read in pieces, so a pipe is capped too). */
function readInput(path: string, budget: { left: number }): string {
  let fd: number;
  try {
    // without blocking: a named pipe nobody writes to reads as empty instead of hanging the open for ever
    fd = path === '-' ? 0 : openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new XdplbError('CONFIG_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`, [], { cause: err });
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new XdplbError('CONFIG_UNREADABLE', `${path} is a directory, not a file`);
    const pieces: Buffer[] = [];
    let size = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20);
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // a pipe with nothing yet: wait, do not spin
          continue;
        }
        if ((err as NodeJS.ErrnoException).code === 'EOF') break;
        throw new XdplbError('CONFIG_UNREADABLE', `cannot read ${path === '-' ? 'stdin' : path}: ${(err as Error).message}`, [], { cause: err });
      }
      if (n === 0) break;
      size += n;
      if (size > budget.left) throw new XdplbError('CONFIG_UNREADABLE', `${path === '-' ? 'stdin' : path}: the input is larger than ${MAX_INPUT_BYTES / 1048576} MiB, the most xdplb import reads`);
      pieces.push(buf.subarray(0, n));
    }
    budget.left -= size;
    return Buffer.concat(pieces, size).toString('utf8');
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** keepalived's include: the regular files a glob pattern matches, relative to the including file's directory, in glob()'s order. */
function includeResolver(budget: { left: number }) {
  let files = 0;
  return (pattern: string, dir: string): IncludedFile[] => {
    const matches = globSync(pattern, { cwd: dir })
      .map((p) => (isAbsolute(p) ? p : join(dir, p)))
      .filter((p) => {
        try {
          return statSync(p).isFile();
        } catch {
          return false;
        }
      })
      .sort();
    files += matches.length;
    if (files > MAX_INCLUDED_FILES) throw new XdplbError('CONFIG_UNREADABLE', `include ${pattern}: more than ${MAX_INCLUDED_FILES} files included in all`);
    return matches.map((path) => ({ path, text: readInput(path, budget) }));
  };
}

/** The config on stdout (YAML with its comments, or --json: the same document as JSON), the warnings on stderr. */
async function print(result: { text: string; warnings: Warning[] }, json: boolean): Promise<void> {
  for (const w of result.warnings) process.stderr.write(`xdplb: warning: ${w.origin ? `${w.origin}: ` : ''}${w.text}\n`);
  if (!json) {
    process.stdout.write(result.text);
    return;
  }
  const { parseConfigText } = await import('../config/load.ts');
  process.stdout.write(`${JSON.stringify(parseConfigText(result.text, 'the imported config'), null, 2)}\n`);
}

export function addImportCommands(program: Command, exitHelp: string): void {
  const command = program.command('import').description('print an xdplb config equivalent to an ipvsadm or keepalived setup');
  command
    .command('ipvsadm')
    .description('an xdplb config from the rules `ipvsadm -S -n` prints')
    .argument('[file]', 'the saved rules (ipvsadm -S -n, or a file ipvsadm -R reads); - or none: stdin')
    .option('--nat-as-dr', 'import masqueraded (-m) servers as Direct Routing backends (their port must be the service\'s)')
    .option('--json', 'print the config as JSON (without the comments; the warnings still go to stderr)')
    .addHelpText(
      'after',
      `
Prints the config (YAML) on stdout; the warnings go to stderr and stay in it as comments, beside
the scheduler, persistence and weight notes. xdplb forwards by Direct Routing (-g) only: tunnelled
(-i) and masqueraded (-m) servers, firewall-mark (-f) and SCTP services are refused with their line
numbers (exit 4). Save with -n: host and port names are refused.

Example:
  ipvsadm -S -n | xdplb import ipvsadm > /etc/xdplb/config.yaml
  xdplb import ipvsadm /etc/ipvsadm.rules
${exitHelp}`,
    )
    .action(async (file: string | undefined, opts: { natAsDr?: boolean; json?: boolean }) => {
      const path = file ?? '-';
      if (path === '-' && isatty(0)) throw new XdplbError('USAGE', 'give the saved rules: xdplb import ipvsadm FILE, or ipvsadm -S -n | xdplb import ipvsadm');
      const { importIpvsadm } = await import('../import/ipvsadm.ts');
      const text = readInput(path, { left: MAX_INPUT_BYTES });
      await print(importIpvsadm(text, { source: path === '-' ? 'stdin' : path, natAsDr: Boolean(opts.natAsDr) }), Boolean(opts.json));
    });
  command
    .command('keepalived')
    .description("an xdplb config from a keepalived.conf's virtual_server blocks, health checks included")
    .argument('<file>', 'keepalived.conf (its include directives are followed)')
    .option('--config-id <id>', "keepalived's -i: which @ID lines count (keepalived's default: the host name)")
    .option('--nat-as-dr', 'import lb_kind NAT servers as Direct Routing backends (their port must be the virtual server\'s)')
    .option('--json', 'print the config as JSON (without the comments; the warnings still go to stderr)')
    .addHelpText(
      'after',
      `
Prints the config (YAML) on stdout; the warnings go to stderr and stay in it as comments. Mapped:
lb_algo, persistence_timeout, weight, and TCP_CHECK, HTTP_GET and SSL_GET (the first url's path and
status_code; delay_loop, connect_timeout, retry). Not mapped, with a warning: MISC_CHECK and the other
checkers, sorry_server, quorum, NAT and TUN servers (xdplb forwards by Direct Routing), fwmark
services. vrrp_instance blocks are pointed at xdplb's own keepalived setup (README "Redundancy").
Exit 4 when no virtual_server gives a service, with every reason.

Example:
  xdplb import keepalived /etc/keepalived/keepalived.conf > /etc/xdplb/config.yaml
  xdplb import keepalived --config-id lb1 --nat-as-dr keepalived.conf
${exitHelp}`,
    )
    .action(async (file: string, opts: { configId?: string; natAsDr?: boolean; json?: boolean }) => {
      const { importKeepalived } = await import('../import/keepalived.ts');
      const budget = { left: MAX_INPUT_BYTES };
      const text = readInput(file, budget);
      await print(
        importKeepalived(text, {
          file,
          include: includeResolver(budget),
          natAsDr: Boolean(opts.natAsDr),
          ...(opts.configId !== undefined ? { configId: opts.configId } : {}),
        }),
        Boolean(opts.json),
      );
    });
}
