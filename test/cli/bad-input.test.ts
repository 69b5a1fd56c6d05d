// Bad input to every command of bin/xdplb: missing, malformed and out-of-range
// arguments and flags, conflicting flags, unreadable and garbage files, an
// --api with nothing or the wrong thing behind it. Each row is the argv, the
// exit code (EXIT of src/cli/main.ts) and what the one line on stderr says:
// "xdplb: " and what was wrong (a config's errors may follow, one indented
// line each), nothing on stdout, never a stack trace, and nothing changed: the
// run directory stays empty, no pin directory appears, lo and its sysctls and
// the files named are as they were.
//
// The commands come from commander's own tree (buildProgram): a command with
// no row, or an option of a command that no row of it uses, fails the test,
// so nothing can be added to the command line without its bad input. Every
// command also gets two generated rows: an unknown option, and one argument
// too many.
//
// Nothing real is touched: interfaces that do not exist, pin directories of
// this test's own under /sys/fs/bpf, a run directory per row (XDPLB_RUN_DIR),
// --api at 127.0.0.1:1 (nobody listens) or at servers of this test.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram, EXIT } from '../../src/cli/main.ts';
import { commandPath, commandTree } from '../../src/cli/usage.ts';
import { ensureBpffs } from '../../src/dataplane/bpffs.ts';

const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-bad-input-'));
const f = (name: string) => join(dir, name);

/** Interfaces that do not exist (checked before any row runs). */
const NIC = 'xdplb-bi-none0';
const NIC2 = 'xdplb-bi-none1';
/** Pin directories of this test's own: one that never exists, one that holds something else's. */
const PIN_NONE = `/sys/fs/bpf/xdplb-badinput-${process.pid}-none`;
const PIN_FOREIGN = `/sys/fs/bpf/xdplb-badinput-${process.pid}-foreign`;
const PIN_LONG = `/sys/fs/bpf/xdplb-badinput-${'x'.repeat(300)}`;
/** Replaced, when a row runs, by the address of a server of this test: one answering HTML, one JSON without an xdplb error. */
const HTML_API = '@html-api@';
const JSON_API = '@json-api@';

const { good, kube, tcpNoToken, tcpOpenToken, badService, openToken } = {
  good: f('good.yaml'),
  kube: f('kube.yaml'),
  tcpNoToken: f('tcp-no-token.yaml'),
  tcpOpenToken: f('tcp-open-token.yaml'),
  badService: f('bad-service.yaml'),
  openToken: f('open.token'),
};
const garbage = f('garbage.yaml');
const empty = f('empty.yaml');
const truncated = f('truncated.yaml');
const dupJson = f('dup.json');
const bigYaml = f('big.yaml');
const fifo = f('fifo');
const aDir = f('a-dir');
const missing = f('missing.yaml');
const garbageKubeconfig = f('garbage.kubeconfig');

interface Row {
  argv: string[];
  exit: number;
  /** What the first (the one) line of stderr says, after "xdplb: ". */
  line: RegExp;
  /** A config's errors: indented lines after the first, one each. */
  details?: true;
}

const usage = (argv: string[], line: RegExp): Row => ({ argv, exit: EXIT.usage, line });
const failure = (argv: string[], line: RegExp): Row => ({ argv, exit: EXIT.failure, line });
const notAttached = (argv: string[], line: RegExp): Row => ({ argv, exit: EXIT.notAttached, line });
const config = (argv: string[], line: RegExp, details?: true): Row => ({ argv, exit: EXIT.configInvalid, line, ...(details ? { details } : {}) });

const NOTHING_PINNED = /nothing is pinned in \/sys\/fs\/bpf\/xdplb-badinput-\d+-none: is xdplb attached there\?/;
const NOT_ON_BPFFS = /is not on a bpffs \(.* is not one\): pins live on a bpffs/;
const NO_DAEMON = (where: string) => new RegExp(`no daemon answers at ${where.replace(/[.[\]]/g, '\\$&')}`);
const BAD_API = [
  ['api.sock', /--api: neither an absolute Unix socket path .* nor HOST:PORT/],
  ['999.0.0.1:1', /--api: "999\.0\.0\.1" is not an IPv4 address, \[IPv6\] or localhost/],
  ['127.0.0.1:0', /--api: port "0" is not a number from 1 to 65535/],
  ['::1:1', /--api: an IPv6 address goes in brackets: \[::1\]:PORT/],
  ['[fe80::1%eth0]:1', /--api: a zone \(%eth0\) is not supported/],
  ['/tmp/', /--api: a socket path names a file, not a directory/],
] as const;

/** -i and --pin-dir values every command that takes them refuses the same way (exit 2). */
const BAD_PIN_FLAGS: [string[], RegExp][] = [
  [['-i', 'a/b'], /-i "a\/b": an interface name has only letters, digits and \. _ @ -/],
  [['-i', ''], /-i "": an interface name has 1 to 15 characters/],
  [['-i', 'abcdefghijklmnop'], /-i "abcdefghijklmnop": an interface name has 1 to 15 characters/],
  [['--pin-dir', 'relative/dir'], /--pin-dir: a pin directory is an absolute path/],
  [['--pin-dir', '/sys/fs/bpf/xdplb/../..'], /--pin-dir: a pin directory is written without \. or \.\. parts/],
  [['--pin-dir', '/sys/fs/bpf'], /--pin-dir: \/sys\/fs\/bpf is the bpffs itself, not a pin directory/],
  [['--pin-dir', aDir], NOT_ON_BPFFS],
  [['--pin-dir', PIN_LONG], /--pin-dir: a pin directory of \d+ bytes is too long: the run files named after it/],
  [['-i', NIC, '--pin-dir', PIN_NONE], /give -i IFACE or --pin-dir DIR, not both/],
];

const ROWS: Row[] = [
  // xdplb itself
  usage([], /^xdplb: give a command: attach, detach, status, .*\(see xdplb --help\)$/),
  usage(['bogus'], /unknown command 'bogus' \(see xdplb --help\)$/),
  usage(['stauts'], /unknown command 'stauts' \(did you mean status\?\)/),
  usage(['help', 'bogus'], /no command bogus: there are attach, detach/),

  // attach: each flag, the file, the NIC
  usage(['attach'], /attach needs a configuration: -c FILE/),
  usage(['attach', '-c'], /option '-c, --config <file>' argument missing \(see xdplb attach --help\)/),
  config(['attach', '-c', missing], /cannot read .*missing\.yaml: ENOENT/),
  config(['attach', '-c', ''], /no config file: its path is empty/),
  config(['attach', '-c', aDir], /a-dir is a directory, not a config file/),
  config(['attach', '-c', fifo], /fifo is not valid YAML or JSON:$/, true), // a named pipe nobody writes to: it hung for ever, SIGTERM too
  config(['attach', '-c', '/dev/zero'], /\/dev\/zero is larger than 32 MiB/),
  config(['attach', '-c', garbage], /garbage\.yaml is not valid YAML or JSON:$/, true),
  config(['attach', '-c', badService], /bad-service\.yaml is invalid:$/, true),
  usage(['attach', '-c', good, '-i', 'a/b'], /-i "a\/b": an interface name has only/), // was exit 4, blaming the file
  usage(['attach', '-c', good, '-i', 'abcdefghijklmnop'], /-i "abcdefghijklmnop": an interface name has 1 to 15 characters/),
  failure(['attach', '-c', good, '-i', NIC2, '--pin-dir', PIN_NONE], new RegExp(`interface ${NIC2}: .*No such device`)), // left a lock file behind
  failure(['attach', '-c', good], new RegExp(`interface ${NIC}: .*No such device`)),
  usage(['attach', '-c', good, '--mode', 'turbo'], /option '--mode <mode>' argument 'turbo' is invalid\. Allowed choices are native, generic\./),
  usage(['attach', '-c', good, '--metrics-address', '999.1.1.1:80'], /--metrics-address 999\.1\.1\.1:80: "999\.1\.1\.1" is not an IPv4 address/), // was exit 4, blaming the file
  usage(['attach', '-c', good, '--metrics-address', 'localhost:99999'], /--metrics-address localhost:99999: port "99999" is not a number from 1 to 65535/),
  usage(['attach', '-c', good, '--no-metrics-per-backend=3'], /unknown option '--no-metrics-per-backend=3' \(did you mean --no-metrics-per-backend\?\)/),
  config(['attach', '-c', good, '--kubeconfig', missing], /kubernetes: cannot read the kubeconfig .*missing\.yaml/),
  config(['attach', '-c', kube, '--kubeconfig', garbageKubeconfig], /kubeconfig/),
  usage(['attach', '-c', good, '--object', missing], /--object .*missing\.yaml: no such file/),
  usage(['attach', '-c', good, '--object', aDir], /--object .*a-dir: not a regular file/),
  usage(['attach', '-c', good, '--pin-dir', '/sys/fs/bpf'], /--pin-dir: \/sys\/fs\/bpf is the bpffs itself/), // would have pinned beside the bpffs root's own
  usage(['attach', '-c', good, '--pin-dir', PIN_FOREIGN], /xdplb-badinput-\d+-foreign is not an xdplb pin directory \(it holds other\): not attached/),
  usage(['attach', '-c', good, '--pin-dir', aDir, '--detach-on-exit'], NOT_ON_BPFFS), // was exit 1, after the lock
  usage(['attach', '-c', good, '--pin-dir', PIN_LONG], /too long/),
  config(['attach', '-c', tcpNoToken], /tcp-no-token\.yaml is invalid:$/, true),
  config(['attach', '-c', tcpOpenToken], /apiTokenFile .*open\.token: mode 0644: others could read or replace the token/),

  // detach
  ...BAD_PIN_FLAGS.filter(([flags]) => flags.length === 2).map(([flags, line]) => usage(['detach', ...flags], line)),
  usage(['detach', '--pin-dir', PIN_FOREIGN, '--force'], /is not an xdplb pin directory \(it holds other\): nothing was removed/),
  usage(['detach', '--pin-dir', PIN_FOREIGN, '-i', NIC, '--json'], /is not an xdplb pin directory/),

  // status
  ...BAD_PIN_FLAGS.map(([flags, line]) => usage(['status', ...flags], line)),
  ...['0', '-1', '1e9', 'x', ''].map((w) => usage(['status', '--pin-dir', PIN_NONE, '--watch', w], /--watch takes 1 to 3600 seconds/)),
  ...BAD_API.map(([api, line]) => usage(['status', '--pin-dir', PIN_NONE, '--api', api], line)),
  notAttached(['status', '--pin-dir', PIN_NONE, '--api', '127.0.0.1:1'], NOTHING_PINNED), // no daemon: the pins, of which there are none
  notAttached(['status', '--pin-dir', PIN_NONE, '--api', HTML_API, '--stats', '--rate', '--json'], NOTHING_PINNED),
  usage(['status', '--pin-dir', PIN_NONE, '--ipvsadm', '--json'], /--ipvsadm prints the text of ipvsadm -L -n: not with --json/),
  usage(['status', '--pin-dir', PIN_NONE, '--api-token-file', openToken], /--api-token-file goes with --api HOST:PORT/),
  usage(['status', '--pin-dir', PIN_NONE, '--api', '127.0.0.1:1', '--api-token-file', missing], /--api-token-file .*missing\.yaml: ENOENT/),

  // trace
  usage(['trace'], /missing required argument 'vip:port'/),
  usage(['trace', '10.240.0.201:80'], /trace needs the client: --from CLIENT:PORT/),
  usage(['trace', '10.240.0.201', '--from', '10.0.0.1:1'], /VIP:PORT: 10\.240\.0\.201 has no port/),
  usage(['trace', '10.240.0.201:99999', '--from', '10.0.0.1:1'], /VIP:PORT: port 99999 is not 0 to 65535/),
  usage(['trace', 'x:80', '--from', '10.0.0.1:1'], /VIP:PORT: /),
  usage(['trace', '10.240.0.201:80', '--from', '10.0.0.1'], /--from: 10\.0\.0\.1 has no port/),
  usage(['trace', '10.240.0.201:80', '--from', '[2001:db8::1]:1'], /a flow has one family/),
  usage(['trace', '10.240.0.201:80', '--from', '10.0.0.1:1', '--proto', 'sctp'], /argument 'sctp' is invalid\. Allowed choices are tcp, udp/),
  usage(['trace', '10.240.0.201:80', '--from', '10.0.0.1:1', '--to-mac', 'zz'], /--to-mac zz: not a MAC/),
  ...BAD_PIN_FLAGS.map(([flags, line]) => usage(['trace', '10.240.0.201:80', '--from', '10.0.0.1:1', ...flags], line)),
  notAttached(['trace', '10.240.0.201:80', '--from', '10.0.0.1:1', '--pin-dir', PIN_NONE, '--json'], NOTHING_PINNED),

  // realserver: all refused before lo or a sysctl is touched
  usage(['realserver'], /give --vip ADDRESS\.\.\. \(or --undo, or --k8s\)/),
  usage(['realserver', '--json'], /give --vip ADDRESS/),
  usage(['realserver', '--vip'], /option '--vip <address\.\.\.>' argument missing/),
  usage(['realserver', '--vip', '10.0.0.999'], /--vip 10\.0\.0\.999: not an IPv4 or IPv6 address/),
  usage(['realserver', '--vip', '10.240.0.201', '127.0.0.1'], /--vip 127\.0\.0\.1 is a loopback address .*it cannot be a VIP/),
  usage(['realserver', '--vip', '0.0.0.0'], /it cannot be a VIP/),
  usage(['realserver', '--vip', '224.0.0.1'], /is a multicast address/),
  usage(['realserver', '--vip', 'fe80::1%eth0'], /the zone of fe80::1%eth0 \(%eth0\) is not supported/),
  usage(['realserver', '--undo', '--vip', 'x'], /--vip x: not an IPv4 or IPv6 address/),
  usage(['realserver', '--k8s', '--vip', '10.240.0.201'], /--k8s takes its VIPs from the cluster: no --vip or --undo with it/),
  usage(['realserver', '--k8s', '--undo'], /--k8s takes its VIPs from the cluster/),
  usage(['realserver', '--k8s', '--json'], /no --json with it/),
  usage(['realserver', '-c', good], /--config goes with --k8s/),
  usage(['realserver', '--kubeconfig', good], /--kubeconfig goes with --k8s/),
  usage(['realserver', '--node', 'n1'], /--node goes with --k8s/),
  usage(['realserver', '--metrics-address', '127.0.0.1:1'], /--metrics-address goes with --k8s/),
  usage(['realserver', '--undo-on-exit'], /--undo-on-exit goes with --k8s/),
  usage(['realserver', '--k8s', '--metrics-address', 'bad', '--kubeconfig', missing], /--metrics-address bad: not HOST:PORT/), // was exit 4, after the kubeconfig
  usage(['realserver', '--k8s', '--node', 'Not_A_Node', '--kubeconfig', missing], /--node "Not_A_Node": a Node name is a DNS subdomain/),
  usage(['realserver', '--k8s', '--node', '', '--undo-on-exit'], /--node "": a Node name is a DNS subdomain/),
  config(['realserver', '--k8s', '-c', missing], /cannot read .*missing\.yaml: ENOENT/),
  config(['realserver', '--k8s', '-c', fifo], /fifo is not valid YAML or JSON:$/, true),
  config(['realserver', '--k8s', '-c', good, '--kubeconfig', missing], /kubernetes: cannot read the kubeconfig/),

  // backend
  usage(['backend'], /missing required argument 'action'/),
  usage(['backend', 'drain', 'web'], /missing required argument 'address'/),
  usage(['backend', 'pause', 'web', '10.0.0.1', '--api', '127.0.0.1:1'], /action must be drain, undrain or remove, not pause/),
  usage(['backend', 'drain', 'web', '10.0.0.999', '--api', '127.0.0.1:1'], /not an IP address: 10\.0\.0\.999/),
  usage(['backend', 'drain', '', '10.0.0.1', '--api', '127.0.0.1:1'], /a service name has 1 to 317 characters, not 0/), // was sent to the daemon
  usage(['backend', 'drain', 'x'.repeat(400), '10.0.0.1', '--api', '127.0.0.1:1'], /a service name has 1 to 317 characters, not 400/),
  ...BAD_PIN_FLAGS.map(([flags, line]) => usage(['backend', 'drain', 'web', '10.0.0.1', ...flags], line)),
  ...BAD_API.map(([api, line]) => usage(['backend', 'undrain', 'web', '10.0.0.1', '--api', api], line)),
  failure(['backend', 'drain', 'web', '10.0.0.1', '--api', '127.0.0.1:1'], NO_DAEMON('127.0.0.1:1')),
  failure(['backend', 'drain', 'web', '10.0.0.1', '--api', '[::1]:1'], NO_DAEMON('[::1]:1')),
  failure(['backend', 'remove', 'web', '10.0.0.1', '--api', good], /no daemon answers at .*good\.yaml: connect ECONNREFUSED/),
  failure(['backend', 'remove', 'web', '10.0.0.1', '--api', HTML_API], /the daemon at 127\.0\.0\.1:\d+: the answer from 127\.0\.0\.1:\d+ is not JSON \(HTTP 404\): "<html>/), // its HTML spread over lines
  failure(['backend', 'remove', 'web', '10.0.0.1', '--api', JSON_API], /127\.0\.0\.1:\d+ answered HTTP 404 without an xdplb error: is it the daemon's apiAddress\?/),
  failure(['backend', 'drain', 'web', '10.0.0.1', '-i', NIC], /no daemon answers at .*_sys_fs_bpf_xdplb_xdplb-bi-none0\.api\.sock/),
  usage(['backend', 'drain', 'web', '10.0.0.1', '--api', '127.0.0.1:1', '--api-token-file', f('short.token')], /--api-token-file .*short\.token: a token of 3 characters is too short/),

  // role
  usage(['role'], /missing required argument 'role'/),
  usage(['role', 'leader'], /the role is active or standby, not leader/),
  ...BAD_PIN_FLAGS.map(([flags, line]) => usage(['role', 'standby', ...flags], line)),
  ...BAD_API.map(([api, line]) => usage(['role', 'active', '--api', api], line)),
  failure(['role', 'active', '--api', '127.0.0.1:1', '--json'], /no daemon answers at 127\.0\.0\.1:1 .*the pin directory is unknown/),
  failure(['role', 'standby', '-i', NIC], new RegExp(`there is no interface ${NIC}: not recorded`)), // recorded a role for a NIC that does not exist, exit 0
  usage(['role', 'standby', '--api', '/run/x.sock', '--api-token-file', openToken], /--api-token-file goes with --api HOST:PORT/),

  // drain-director
  ...['0', 'x', '1e9', '', '-5'].map((t) => usage(['drain-director', '--timeout', t, '--api', '127.0.0.1:1'], /--timeout takes 1 to 86400 seconds/)),
  usage(['drain-director', '--timeout'], /option '--timeout <seconds>' argument missing/),
  ...BAD_PIN_FLAGS.map(([flags, line]) => usage(['drain-director', ...flags], line)),
  ...BAD_API.map(([api, line]) => usage(['drain-director', '--api', api], line)),
  failure(['drain-director', '--api', '127.0.0.1:1', '--json'], NO_DAEMON('127.0.0.1:1')),
  failure(['drain-director', '--undo', '--no-wait', '--api', '127.0.0.1:1'], NO_DAEMON('127.0.0.1:1')),
  failure(['drain-director', '--pin-dir', PIN_NONE], NO_DAEMON('')),
  usage(['drain-director', '--api', 'localhost:1', '--api-token-file', aDir], /--api-token-file .*a-dir: not a regular file/),

  // config
  usage(['config'], /config needs a command: validate \(see xdplb config --help\)/),
  usage(['config', 'bogus'], /unknown command 'bogus' \(see xdplb config --help\)/),
  usage(['config', 'help', 'bogus'], /no command config bogus: there are validate/),
  usage(['config', 'validate'], /missing required argument 'file'/),
  config(['config', 'validate', missing], /cannot read .*missing\.yaml: ENOENT/),
  config(['config', 'validate', ''], /no config file: its path is empty/),
  config(['config', 'validate', aDir], /is a directory, not a config file/),
  config(['config', 'validate', fifo], /fifo is not valid YAML or JSON:$/, true),
  config(['config', 'validate', garbage], /is not valid YAML or JSON:$/, true),
  config(['config', 'validate', empty], /empty\.yaml is not valid YAML or JSON:$/, true),
  config(['config', 'validate', truncated], /truncated\.yaml is not valid YAML or JSON:$/, true),
  config(['config', 'validate', dupJson], /dup\.json is not valid YAML or JSON:$/, true),
  config(['config', 'validate', bigYaml], /big\.yaml is over 16 MiB of YAML/),
  config(['config', 'validate', '/dev/zero'], /larger than 32 MiB/),
  config(['config', 'validate', badService, '--json'], /bad-service\.yaml is invalid:$/, true),
  config(['config', 'validate', tcpNoToken], /is invalid:$/, true),

  // lab: refused before any namespace is made (a lab of someone else's may be up: never a valid row here)
  usage(['lab'], /lab needs a command: up, demo, down/),
  usage(['lab', 'bogus'], /unknown command 'bogus' \(see xdplb lab --help\)/),
  ...['0', '51', 'x', '1.5', ''].map((n) => usage(['lab', 'up', '--backends', n], /--backends takes 1 to 50/)),
  usage(['lab', 'up', '--mode', 'turbo'], /argument 'turbo' is invalid/),
  ...['0', 'x', '1e12', '-1'].map((n) => usage(['lab', 'demo', '--requests', n], /--requests takes 1 to 100000/)), // 1e12 was taken
  usage(['lab', 'down', 'now'], /too many arguments for 'down'/),

  // import
  usage(['import'], /import needs a command: ipvsadm, keepalived/),
  usage(['import', 'bogus'], /unknown command 'bogus'/),
  config(['import', 'ipvsadm'], /stdin: nothing to import:$/, true), // stdin is /dev/null here
  config(['import', 'ipvsadm', missing], /cannot read .*missing\.yaml: ENOENT/),
  config(['import', 'ipvsadm', aDir, '--nat-as-dr'], /a-dir is a directory, not a file/),
  config(['import', 'ipvsadm', fifo], /fifo: nothing to import:$/, true), // hung for ever
  config(['import', 'ipvsadm', garbage, '--json'], /is not ipvsadm -S -n output:$/, true),
  config(['import', 'ipvsadm', '/dev/zero'], /the input is larger than 32 MiB/),
  usage(['import', 'keepalived'], /missing required argument 'file'/),
  config(['import', 'keepalived', missing], /cannot read .*missing\.yaml: ENOENT/),
  config(['import', 'keepalived', fifo, '--nat-as-dr'], /fifo: nothing to import:$/, true),
  config(['import', 'keepalived', aDir], /a-dir is a directory, not a file/),
  usage(['import', 'keepalived', good, '--config-id'], /option '--config-id <id>' argument missing/),
  config(['import', 'keepalived', empty, '--config-id', 'lb1', '--json'], /nothing to import:$/, true),
];

const program = buildProgram();
const COMMANDS = commandTree(program);

/** The command a row's argv runs: the longest run of leading words that names commands. */
function commandOf(argv: readonly string[]): Command {
  let c = program;
  for (const word of argv) {
    const sub = c.commands.find((s) => s.name() === word);
    if (!sub) break;
    c = sub;
  }
  return c;
}

/** Generated rows: an unknown option for every command, and one argument too many for every command that runs. */
function generatedRows(): Row[] {
  const rows: Row[] = [];
  for (const c of COMMANDS) {
    const words = commandPath(c).split(' ').slice(1);
    rows.push(usage([...words, '--no-such-flag'], new RegExp(`unknown option '--no-such-flag' \\(see ${commandPath(c)} --help\\)$`)));
    if (c.commands.length > 0 || c.registeredArguments.some((a) => a.variadic)) continue;
    const args = c.registeredArguments.map(() => 'x');
    rows.push(usage([...words, ...args, 'extra'], new RegExp(`too many arguments for '${c.name()}'\\. Expected ${args.length} arguments? but got ${args.length + 1}`)));
  }
  return rows;
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const servers: Record<string, string> = {};
const listening: Server[] = [];

function run(argv: string[], runDir: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDPLB_RUN_DIR: runDir, XDPLB_LOG_FORMAT: 'json' };
  for (const k of ['KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'NODE_NAME']) delete env[k];
  const args = argv.map((a) => servers[a] ?? a);
  return new Promise((resolve) => {
    const child = spawn(XDPLB, args, { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** What the rows must leave as it was: lo's addresses and the real-server sysctls (root namespace), the fixtures. */
function snapshot(): string {
  const sysctls = ['all', 'lo', 'default'].flatMap((d) => ['arp_ignore', 'arp_announce', 'rp_filter'].map((k) => `${d}.${k}=${readFileSync(`/proc/sys/net/ipv4/conf/${d}/${k}`, 'utf8').trim()}`));
  const lo = execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }).replace(/\s+valid_lft.*$/gm, '');
  const files = readdirSync(dir)
    .filter((n) => statSync(f(n)).isFile())
    .map((n) => `${n}:${createHash('sha256').update(readFileSync(f(n))).digest('hex')}`);
  const ours = readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(`xdplb-badinput-${process.pid}-`));
  return [...sysctls, lo, ...files, `bpffs: ${ours.join(' ')}`, `foreign: ${readdirSync(PIN_FOREIGN).join(' ')}`].join('\n');
}

let before0 = '';

before(async () => {
  // the rows must not be the first to mount the bpffs (it is logged, a second line)
  ensureBpffs();
  for (const nic of [NIC, NIC2]) assert.ok(!existsSync(`/sys/class/net/${nic}`), `${nic} must not exist`);
  const iface = (name: string) => `interface: ${name}\n`;
  const service = 'services:\n  - { name: web, vip: 10.240.0.201, port: 80, backends: [{ address: 10.240.0.101 }] }\n';
  writeFileSync(good, iface(NIC) + service);
  writeFileSync(kube, `${iface(NIC)}kubernetes: { pools: [203.0.113.0/24] }\n`);
  writeFileSync(tcpNoToken, `${iface(NIC)}apiAddress: 127.0.0.1:1\n${service}`);
  writeFileSync(openToken, `${'t'.repeat(40)}\n`);
  chmodSync(openToken, 0o644);
  writeFileSync(tcpOpenToken, `${iface(NIC)}apiAddress: 127.0.0.1:1\napiTokenFile: ${openToken}\n${service}`);
  writeFileSync(f('short.token'), 'abc\n');
  writeFileSync(badService, `${iface(NIC)}services:\n  - { name: web, vip: 10.240.0.999, port: 80, backends: [{ address: 10.240.0.101, weight: -1 }] }\n`);
  writeFileSync(garbage, Buffer.from([0x67, 0x00, 0x01, 0xff, 0x3a, 0x20, 0x5b, 0x0a]));
  writeFileSync(empty, '');
  writeFileSync(truncated, 'services: [\n  { name: web\n');
  writeFileSync(dupJson, '{"interface": "a", "interface": "b"}');
  writeFileSync(bigYaml, Buffer.alloc(17 * 1024 * 1024, 'a'));
  writeFileSync(garbageKubeconfig, '\u0000\u0001 not: [a kubeconfig');
  mkdirSync(aDir);
  execFileSync('mkfifo', [fifo]);
  mkdirSync(`${PIN_FOREIGN}/other`, { recursive: true }); // a directory on the bpffs of someone else's
  const serve = (type: string, body: string) =>
    new Promise<Server>((resolve) => {
      const s = createServer((_req, res) => {
        res.writeHead(404, { 'content-type': type });
        res.end(body);
      });
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
  const html = await serve('text/html', '<html>\n<body>\nNot Found\n</body>\n</html>\n');
  const json = await serve('application/json', '{"message": "not here"}\n');
  servers[HTML_API] = `127.0.0.1:${(html.address() as AddressInfo).port}`;
  servers[JSON_API] = `127.0.0.1:${(json.address() as AddressInfo).port}`;
  listening.push(html, json);
  before0 = snapshot();
});

after(() => {
  for (const s of listening) s.close();
  rmSync(PIN_FOREIGN, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('bad input: one line, the documented exit code, nothing changed', { concurrency: 4 }, () => {
  for (const row of [...ROWS, ...generatedRows()]) {
    const name = `xdplb ${row.argv.map((a) => (a === '' ? "''" : a.length > 40 ? `${a.slice(0, 37)}...` : a)).join(' ')} -> ${row.exit}`;
    test(name, async () => {
      const runDir = mkdtempSync(join(dir, 'run-'));
      const r = await run(row.argv, runDir);
      const said = `stderr: ${JSON.stringify(r.stderr)}, stdout: ${JSON.stringify(r.stdout.slice(0, 300))}`;
      assert.equal(r.signal, null, `it ended by itself within 30 s; ${said}`);
      assert.equal(r.status, row.exit, said);
      assert.equal(r.stdout, '', `nothing on stdout; ${said}`);
      assert.doesNotMatch(r.stderr, /^\s+at .*:\d+:\d+\)?$|node:internal|\b(Type|Reference|Range|Syntax)Error\b/m, `no stack trace; ${said}`);
      assert.ok(r.stderr.endsWith('\n'), said);
      const [first = '', ...rest] = r.stderr.slice(0, -1).split('\n');
      assert.match(first, /^xdplb: \S/, said);
      assert.match(first, row.line, said);
      if (row.details) {
        assert.ok(rest.length > 0, `the errors follow, one a line; ${said}`);
        for (const l of rest) assert.match(l, /^ {2}\S/, `an indented error line; ${said}`);
      } else assert.deepEqual(rest, [], `one line; ${said}`);
      assert.deepEqual(readdirSync(runDir), [], 'nothing was written to the run directory');
      for (const p of [PIN_NONE, `/sys/fs/bpf/xdplb/${NIC}`, `/sys/fs/bpf/xdplb/${NIC2}`]) assert.ok(!existsSync(p), `no pin directory ${p}`);
      rmSync(runDir, { recursive: true });
    });
  }
});

describe('the table covers the command line', () => {
  test('every command has a row of its own (a new command needs its bad input here)', () => {
    const without = COMMANDS.filter((c) => !ROWS.some((r) => commandOf(r.argv) === c)).map(commandPath);
    assert.deepEqual(without, [], `commands without a row in ROWS: ${without.join(', ')}`);
  });

  test('every option of every command is in a row of that command (a new flag needs its bad input here)', () => {
    const uses = (r: Row, flag: string | undefined) => flag !== undefined && r.argv.some((a) => a === flag || a.startsWith(`${flag}=`));
    const without: string[] = [];
    for (const c of COMMANDS)
      for (const o of c.options) {
        if (o.long === '--version') continue;
        if (!ROWS.some((r) => commandOf(r.argv) === c && (uses(r, o.long) || uses(r, o.short)))) without.push(`${commandPath(c)} ${o.flags}`);
      }
    assert.deepEqual(without, [], `options no row uses: ${without.join('; ')}`);
  });

  test('every exit code a script relies on is in the table', () => {
    const codes = new Set(ROWS.map((r) => r.exit));
    for (const code of [EXIT.failure, EXIT.usage, EXIT.notAttached, EXIT.configInvalid]) assert.ok(codes.has(code), `exit ${code}`);
  });
});

describe('after every row', () => {
  test("lo's addresses, the real-server sysctls, the files given and this test's pins are as they were", () => {
    assert.equal(snapshot(), before0);
  });
});
