// xdplb: the command line. Every command has --help with an example and exit
// codes scripts can rely on (EXIT below).
import { readdirSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from '../config/load.ts';
import { defaultPinDir, detachPins, PIN_ROOT } from '../dataplane/attach.ts';
import { ensureBpffs } from '../dataplane/bpffs.ts';
import { DataPlane } from '../dataplane/dataplane.ts';
import { native } from '../dataplane/native.ts';
import { XdplbError, type ErrorCode } from '../errors.ts';
import { log } from '../log.ts';
import { mustParseIp, parseIp } from '../model/address.ts';
import { releaseVips } from '../net/vips.ts';
import { configureRealserver, undoRealserver } from '../realserver/realserver.ts';
import { rates, readStatus, renderStatus, type DaemonState, type Status } from '../status/status.ts';
import { VERSION } from '../version.ts';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notAttached: 3,
  configInvalid: 4,
} as const;

const EXIT_OF: Partial<Record<ErrorCode, number>> = {
  USAGE: EXIT.usage,
  NOT_ATTACHED: EXIT.notAttached,
  CONFIG_INVALID: EXIT.configInvalid,
  CONFIG_UNREADABLE: EXIT.configInvalid,
};

const EXIT_HELP = `
Exit codes: 0 success, 1 failure, 2 bad usage, 3 nothing attached, 4 invalid configuration.`;

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x), 2);
}

function pinDirFor(opts: { interface?: string; pinDir?: string }): string {
  if (opts.pinDir) return opts.pinDir;
  if (opts.interface) return defaultPinDir(opts.interface);
  ensureBpffs();
  let dirs: string[] = [];
  try {
    dirs = readdirSync(PIN_ROOT);
  } catch {
    /* none */
  }
  if (dirs.length === 1) return `${PIN_ROOT}/${dirs[0]}`;
  if (dirs.length === 0) throw new XdplbError('NOT_ATTACHED', `xdplb is not attached anywhere (nothing under ${PIN_ROOT})`);
  throw new XdplbError('USAGE', `xdplb is attached to several interfaces (${dirs.join(', ')}): say which with -i IFACE`);
}

/** The daemon's state when one answers at `api` for these pins, else null. */
async function daemonState(api: string, pinDir: string): Promise<DaemonState | null> {
  try {
    const res = await fetch(`http://${api}/v1/state`, { signal: AbortSignal.timeout(1000) });
    const st = (await res.json()) as DaemonState;
    return res.ok && st.pinDir === pinDir ? st : null;
  } catch {
    return null;
  }
}

/** The daemon answering at `api`, if any (a cheap question, 1 s at most). */
async function runningDaemon(api: string): Promise<{ pid: number; pinDir: string; configPath: string } | null> {
  try {
    const res = await fetch(`http://${api}/v1/daemon`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as { pid: number; pinDir: string; configPath: string }) : null;
  } catch {
    return null;
  }
}

async function statusCommand(opts: { interface?: string; pinDir?: string; api: string; stats?: boolean; rate?: boolean; json?: boolean; watch?: string | boolean }): Promise<void> {
  const pinDir = pinDirFor(opts);
  const dp = DataPlane.openPinned(pinDir);
  const read = async (): Promise<Status> => (await daemonState(opts.api, pinDir)) ?? readStatus(dp, pinDir);
  const once = async (): Promise<string> => {
    if (opts.rate || opts.watch) {
      const a = await read();
      await new Promise((r) => setTimeout(r, 1000));
      const st = rates(a, await read(), 1);
      return opts.json ? json(st) : renderStatus(st, { stats: true, mode: 'rate' });
    }
    const st = await read();
    return opts.json ? json(st) : renderStatus(st, { stats: Boolean(opts.stats), mode: 'totals' });
  };
  if (!opts.watch) {
    process.stdout.write(`${await once()}\n`);
    return;
  }
  const every = typeof opts.watch === 'string' ? Number(opts.watch) : 2;
  if (!(every > 0)) throw new XdplbError('USAGE', `--watch takes seconds > 0, got ${opts.watch}`);
  let running = true;
  process.once('SIGINT', () => (running = false));
  while (running) {
    const text = await once();
    process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  (every ${every}s, Ctrl-C to stop)\n${text}\n`);
    await new Promise((r) => setTimeout(r, Math.max(0, every - 1) * 1000));
  }
}

export function buildProgram(): Command {
  const program = new Command('xdplb')
    .description('XDP Direct-Routing load-balancing director (LVS-DR style, Maglev consistent hashing)')
    .version(VERSION)
    .showHelpAfterError()
    .addHelpText('after', `\nExample:\n  xdplb attach -i eth1 -c /etc/xdplb/config.yaml\n  xdplb status --stats\n${EXIT_HELP}`);

  program
    .command('attach')
    .description('run the director: load or adopt the data plane, attach it, apply the config, keep it current')
    .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('-i, --interface <iface>', 'NIC to attach to (overrides the config)')
    .addOption(new Option('--mode <mode>', 'XDP mode (overrides the config; default native)').choices(['native', 'generic']))
    .option('--metrics-address <host:port>', 'where /metrics, /healthz, /readyz listen (default 127.0.0.1:9842)')
    .option('--no-metrics-per-backend', 'leave the series per backend out of /metrics, for very large fleets (overrides the config)')
    .option('--pin-dir <dir>', `bpffs directory of the pins (default ${PIN_ROOT}/IFACE)`)
    .option('--detach-on-exit', 'remove program, pins and VIPs when stopped (default: keep forwarding)')
    .option('--object <file>', 'XDP object file to load (default: the one built with this xdplb)')
    .addHelpText(
      'after',
      `\nRuns in the foreground (systemd-friendly). SIGHUP or a change of the config file reloads it;
an invalid config is refused and the running one stays. SIGTERM stops the daemon and leaves
the data plane forwarding; the next start adopts it without losing a packet or a counter.

Example:
  xdplb attach -i eth1 -c /etc/xdplb/config.yaml --mode native
${EXIT_HELP}`,
    )
    .action(async (opts: { config: string; interface?: string; mode?: string; metricsAddress?: string; metricsPerBackend: boolean; pinDir?: string; detachOnExit?: boolean; object?: string }) => {
      const { Director } = await import('../director/director.ts');
      const d = await Director.start({
        configPath: opts.config,
        // commander defaults a --no- flag to true: only an explicit flag overrides the config
        overrides: { interface: opts.interface, mode: opts.mode, metricsAddress: opts.metricsAddress, metricsPerBackend: opts.metricsPerBackend ? undefined : false },
        detachOnExit: Boolean(opts.detachOnExit),
        ...(opts.pinDir ? { pinDir: opts.pinDir } : {}),
        ...(opts.object ? { objectPath: opts.object } : {}),
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stopping');
          void d.stop().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', () => void d.reload('SIGHUP'));
      });
    });

  program
    .command('detach')
    .description('remove the XDP program, its pins and the VIPs xdplb added')
    .option('-i, --interface <iface>', 'the NIC xdplb is attached to')
    .option('--pin-dir <dir>', `bpffs directory of the pins (default ${PIN_ROOT}/IFACE)`)
    .option('--json', 'print what was removed as JSON')
    .option('--api <host:port>', "where a running daemon would answer (apiAddress in the config)", '127.0.0.1:9843')
    .option('--force', 'detach even while a daemon runs on these pins')
    .addHelpText('after', `\nStop the daemon first (or start it with --detach-on-exit): detach refuses while a daemon\nanswers for the same pins, unless --force. Detaching nothing is not an error.\n\nExample:\n  xdplb detach -i eth1\n${EXIT_HELP}`)
    .action(async (opts: { interface?: string; pinDir?: string; json?: boolean; api: string; force?: boolean }) => {
      const pinDir = pinDirFor(opts);
      const running = await runningDaemon(opts.api);
      if (running && running.pinDir === pinDir && !opts.force)
        throw new XdplbError('DAEMON', `a daemon (pid ${running.pid}, config ${running.configPath}) runs on ${pinDir}: stop it first (it keeps forwarding), or use --force`);
      let ifindex: number | null = null;
      if (opts.interface) {
        try {
          ifindex = native.interfaceInfo(opts.interface).ifindex;
        } catch {
          ifindex = null; // the interface is gone: only pins and records remain
        }
      }
      const vips = releaseVips(pinDir, ifindex);
      const removed = detachPins(pinDir);
      const result = { pinDir, detached: removed, vipsRemoved: vips };
      process.stdout.write(opts.json ? `${json(result)}\n` : removed ? `detached ${pinDir}; VIPs removed: ${vips.join(', ') || 'none'}\n` : `nothing attached at ${pinDir}\n`);
    });

  program
    .command('status')
    .description('services, schedulers and backends with MAC, weight, state and counters (like ipvsadm -L -n)')
    .option('-i, --interface <iface>', 'the NIC xdplb is attached to (default: the only one)')
    .option('--pin-dir <dir>', 'bpffs directory of the pins')
    .option('--stats', 'add new flows, flows tracked per backend and the global counters')
    .option('--rate', 'per-second rates over one second instead of totals')
    .option('--json', 'machine-readable output')
    .option('--watch [seconds]', 'refresh every few seconds (rates), until Ctrl-C')
    .option('--api <host:port>', "a running daemon's local API, asked first", '127.0.0.1:9843')
    .addHelpText('after', `\nAsks the running daemon (which adds its last reload result and overrides); with no daemon it reads the pinned
maps directly: the same table either way.\n\nExample:\n  xdplb status --stats\n  xdplb status --json | jq '.services[].backends[].packets'\n${EXIT_HELP}`)
    .action(statusCommand);

  program
    .command('realserver')
    .description('prepare this host as a backend: VIPs on lo, arp_ignore=1, arp_announce=2, loose rp_filter')
    .option('--vip <address...>', 'VIP(s) this host serves')
    .option('--undo', 'remove the VIPs and restore the sysctls xdplb changed')
    .option('--json', 'print what changed as JSON')
    .addHelpText('after', `\nIdempotent: running it twice changes nothing the second time.\n\nExample:\n  xdplb realserver --vip 10.240.0.201 2001:db8::201\n  xdplb realserver --undo\n${EXIT_HELP}`)
    .action((opts: { vip?: string[]; undo?: boolean; json?: boolean }) => {
      if (!opts.undo && !opts.vip?.length) throw new XdplbError('USAGE', 'give --vip ADDRESS... (or --undo)');
      const bad = (opts.vip ?? []).filter((v) => !parseIp(v));
      if (bad.length) throw new XdplbError('USAGE', `not an IP address: ${bad.join(', ')}`);
      const r = opts.undo ? undoRealserver() : configureRealserver((opts.vip ?? []).map(mustParseIp));
      process.stdout.write(opts.json ? `${json(r)}\n` : `${opts.undo ? 'undone' : 'configured'}: VIPs added ${r.vipsAdded.join(', ') || 'none'}, removed ${r.vipsRemoved.join(', ') || 'none'}; sysctls ${json(r.sysctls)}\n`);
    });

  program
    .command('backend')
    .description('drain, undrain or remove a backend of a service in the running daemon')
    .argument('<action>', 'drain | undrain | remove')
    .argument('<service>', 'service name')
    .argument('<address>', 'backend address')
    .option('--api <host:port>', "the daemon's local API (apiAddress in the config)", '127.0.0.1:9843')
    .addHelpText(
      'after',
      `\ndrain keeps the backend's established flows and sends it no new ones (status --stats shows the flows it
still tracks: remove it when that reaches 0); remove takes it out (its flows move); undrain restores it.
These are runtime overrides of the config, lost when the daemon restarts: make lasting changes in the config.

Example:
  xdplb backend drain web 10.240.0.101
${EXIT_HELP}`,
    )
    .action(async (action: string, service: string, address: string, opts: { api: string }) => {
      if (!['drain', 'undrain', 'remove'].includes(action)) throw new XdplbError('USAGE', `action must be drain, undrain or remove, not ${action}`);
      if (!parseIp(address)) throw new XdplbError('USAGE', `not an IP address: ${address}`);
      let res: Response;
      try {
        res = await fetch(`http://${opts.api}/v1/backends/${action}`, { method: 'POST', body: JSON.stringify({ service, address }) });
      } catch (err) {
        throw new XdplbError('DAEMON', `no daemon answers at ${opts.api}: ${(err as Error).cause ?? (err as Error).message}`);
      }
      const body = (await res.json()) as { error?: string };
      if (!res.ok) throw new XdplbError('USAGE', body.error ?? `HTTP ${res.status}`);
      process.stdout.write(`${action}: ${service} ${address}\n`);
    });

  const config = program.command('config').description('configuration tools');
  config
    .command('validate')
    .description('check a configuration file and explain every error')
    .argument('<file>', 'configuration file (YAML or JSON)')
    .option('--json', 'print the validated configuration (with defaults) as JSON')
    .addHelpText('after', `\nExample:\n  xdplb config validate /etc/xdplb/config.yaml\n${EXIT_HELP}`)
    .action(async (file: string, opts: { json?: boolean }) => {
      const c = await loadConfig(file);
      process.stdout.write(opts.json ? `${json(c)}\n` : `${file}: valid (${c.services.length} services, ${c.services.reduce((n, s) => n + s.backends.length, 0)} backends)\n`);
    });

  const lab = program.command('lab').description('a self-contained lab in network namespaces: client, director, backends on one bridge');
  lab
    .command('up')
    .description('create the lab and start the director in it')
    .option('--backends <n>', 'number of backends', '3')
    .addOption(new Option('--mode <mode>', 'XDP mode of the director').choices(['native', 'generic']).default('native'))
    .addHelpText('after', `\nNamespaces xdplb-lab-*; client 10.240.0.10, director 10.240.0.2, backends 10.240.0.101..., VIP 10.240.0.201:80.\nNothing in the root namespace is touched.\n\nExample:\n  xdplb lab up --backends 3\n${EXIT_HELP}`)
    .action(async (opts: { backends: string; mode: 'native' | 'generic' }) => {
      const n = Number(opts.backends);
      if (!Number.isInteger(n) || n < 1 || n > 50) throw new XdplbError('USAGE', `--backends takes 1 to 50, got ${opts.backends}`);
      const { labUp } = await import('../lab/lab.ts');
      await labUp({ backends: n, mode: opts.mode });
    });
  lab
    .command('demo')
    .description('send requests through the VIP, show which backend answered, the status table, and that replies bypassed the director')
    .option('--requests <n>', 'number of HTTP requests', '30')
    .addHelpText('after', `\nExample:\n  xdplb lab demo --requests 50\n${EXIT_HELP}`)
    .action(async (opts: { requests: string }) => {
      const n = Number(opts.requests);
      if (!Number.isInteger(n) || n < 1) throw new XdplbError('USAGE', `--requests takes a positive number, got ${opts.requests}`);
      const { labDemo } = await import('../lab/lab.ts');
      await labDemo({ requests: n });
    });
  lab
    .command('down')
    .description('stop the lab director and remove every namespace, pin and file of the lab')
    .addHelpText('after', `\nExample:\n  xdplb lab down\n${EXIT_HELP}`)
    .action(async () => {
      const { labDown } = await import('../lab/lab.ts');
      await labDown();
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof XdplbError) {
      process.stderr.write(`xdplb: ${err.message}\n`);
      return EXIT_OF[err.code] ?? EXIT.failure;
    }
    const e = err as { message?: string; code?: string };
    process.stderr.write(`xdplb: ${e.message ?? String(err)}\n`);
    return EXIT.failure;
  }
}

if (import.meta.main) process.exitCode = await main(process.argv);
