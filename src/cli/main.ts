// xdplb: the command line. Every command has --help with an example and exit
// codes scripts can rely on (EXIT below).
import { readdirSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { parseApiAddress } from '../config/address.ts';
import { loadConfig } from '../config/load.ts';
import { checkPinLayout, defaultPinDir, detachPins, pinnedLinkIfindex, PIN_ROOT } from '../dataplane/attach.ts';
import { ensureBpffs, ensureBpffsFor } from '../dataplane/bpffs.ts';
import { DataPlane } from '../dataplane/dataplane.ts';
import { native } from '../dataplane/native.ts';
import { formatApiAddress, type ApiAddress } from '../director/api.ts';
import { ApiUnreachable, callApi, type ApiTarget } from '../director/api-client.ts';
import { readApiToken } from '../director/api-token.ts';
import { XdplbError, type ErrorCode } from '../errors.ts';
import { log } from '../log.ts';
import { ipSyntaxError, parseIp, parseMac, unusableAddress, type IpAddress } from '../model/address.ts';
import { interfaceNameProblem, pinDirProblem } from '../model/names.ts';
import { releaseVips } from '../net/vips.ts';
import { withdrawRoutes } from '../net/routes.ts';
import type { Director } from '../director/director.ts';
import { PinDirLock } from '../director/lock.ts';
import { forgetRole } from '../director/vip-owner.ts';
import { writeRunFile } from '../paths.ts';
import { configureRealserver, undoRealserver, type RealserverResult } from '../realserver/realserver.ts';
import { rates, readStatus, renderStatus, type DaemonState, type Status } from '../status/status.ts';
import { renderIpvsadm } from '../status/ipvsadm.ts';
import { VERSION } from '../version.ts';
import { addImportCommands } from './import.ts';
import { captureUsageErrors, checkFileFlag, checkHostPortFlag, checkInterfaceFlag, checkNodeName, checkServiceName, defaultApiSocket, pinDirUsageProblem, usageLine } from './usage.ts';
import { ROLES } from '../model/role.ts';

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

/**
 * A --pin-dir or -i given on the command line, checked (a bad one is a usage error, exit 2). Both at once only
 * where the command uses both (`both`: detach, which removes the VIPs from the NIC of -i); elsewhere -i would be ignored.
 */
function checkedPinDir(opts: { interface?: string; pinDir?: string }, both = false): string | null {
  if (opts.pinDir !== undefined) {
    if (opts.interface !== undefined && !both) throw new XdplbError('USAGE', 'give -i IFACE or --pin-dir DIR, not both');
    const problem = pinDirProblem(opts.pinDir);
    if (problem) throw new XdplbError('USAGE', `--pin-dir: ${problem}`);
    const pinDir = opts.pinDir.replace(/(.)\/+$/, '$1');
    const unusable = pinDirUsageProblem(pinDir);
    if (unusable) throw new XdplbError('USAGE', `--pin-dir: ${unusable}`);
    ensureBpffsFor(pinDir); // mounts the bpffs where there is none; refuses a directory elsewhere
    return pinDir;
  }
  if (opts.interface !== undefined) {
    const problem = interfaceNameProblem(opts.interface);
    if (problem) throw new XdplbError('USAGE', `-i ${JSON.stringify(opts.interface)}: ${problem}`);
    return defaultPinDir(opts.interface);
  }
  return null;
}

function interfaceExists(name: string): boolean {
  try {
    native.interfaceInfo(name);
    return true;
  } catch {
    return false;
  }
}

/** The pin directory of the command: --pin-dir, -i, or the only one under /sys/fs/bpf/xdplb. */
function pinDirFor(opts: { interface?: string; pinDir?: string }, both = false): string {
  const given = checkedPinDir(opts, both);
  if (given) return given;
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

/**
 * Where the daemon's local API is: --api (a socket path or HOST:PORT), else the socket of its pin directory;
 * over TCP with the token of --api-token-file.
 */
function apiFor(opts: { api?: string; apiTokenFile?: string }, pinDir: () => string): ApiTarget {
  const address = opts.api === undefined ? defaultApiSocket(pinDir()) : parseApiAddress(opts.api);
  if (typeof address === 'string') throw new XdplbError('USAGE', `--api: ${address}`);
  if (opts.apiTokenFile === undefined) return address;
  if (address.kind !== 'tcp') throw new XdplbError('USAGE', '--api-token-file goes with --api HOST:PORT (the Unix socket needs no token: its mode lets root alone in)');
  return { ...address, token: readApiToken(opts.apiTokenFile, '--api-token-file', 'USAGE', false) };
}

const API_TOKEN_FLAG = ['--api-token-file <file>', "with --api HOST:PORT: the file holding the daemon's API token (its apiTokenFile)"] as const;

const API_HELP = 'a socket path or HOST:PORT (apiAddress in its config; default: the socket of its pin directory)';

/**
 * POSTs an action to the running daemon; its refusal is a failure (exit 1) naming `what`. When no daemon
 * answers, `unreachable` (if given) decides instead: its result, or its error with the reason appended.
 */
async function postToDaemon(api: ApiAddress, path: string, body: unknown, what: string, unreachable?: () => unknown): Promise<unknown> {
  const where = formatApiAddress(api);
  let res: { status: number; body: unknown };
  try {
    // a reconcile of a large service can take a while: a short deadline would report a done change as failed
    res = await callApi(api, 'POST', path, body, 30_000);
  } catch (err) {
    if (!(err instanceof ApiUnreachable)) throw new XdplbError('DAEMON', `the daemon at ${where}: ${(err as Error).message}`);
    if (err.code === 'EACCES') throw new XdplbError('DAEMON', `cannot reach the daemon at ${where}: permission denied (its API socket is for root only)`);
    if (unreachable) {
      try {
        return unreachable();
      } catch (why) {
        throw new XdplbError('DAEMON', `no daemon answers at ${where} (${err.message}), and ${(why as Error).message}`);
      }
    }
    throw new XdplbError('DAEMON', `no daemon answers at ${where}: ${err.message}`);
  }
  const error = (res.body as { error?: unknown } | null)?.error;
  if (res.status !== 200)
    throw new XdplbError('DAEMON', typeof error === 'string' ? `${what} refused: ${error}` : `${where} answered HTTP ${res.status} without an xdplb error: is it the daemon's apiAddress?`);
  return res.body;
}

/** The daemon's state when one answers at `api` for these pins, else null. */
async function daemonState(api: ApiAddress, pinDir: string): Promise<DaemonState | null> {
  let res: { status: number; body: unknown };
  try {
    res = await callApi(api, 'GET', '/v1/state', undefined, 5000);
  } catch {
    return null;
  }
  const error = (res.body as { error?: unknown } | null)?.error;
  if (res.status === 401) throw new XdplbError('DAEMON', `the daemon at ${formatApiAddress(api)} refused: ${typeof error === 'string' ? error : 'HTTP 401'}`); // not hidden behind the pins
  const st = res.body as DaemonState | null;
  return res.status === 200 && st?.pinDir === pinDir ? st : null;
}

/** --undo: what the command line and what the Kubernetes agent (once stopped) added, both reverted. */
function undoBoth(vips: IpAddress[] | undefined): RealserverResult & { notAdded: string[] } {
  const agent = undoRealserver(vips, { by: 'agent' });
  const cli = undoRealserver(vips, { by: 'cli' });
  return {
    vipsAdded: [],
    vipsRemoved: [...agent.vipsRemoved, ...cli.vipsRemoved],
    sysctls: { ...cli.sysctls, ...agent.sysctls }, // the agent came later: its record holds what was there before it
    notAdded: cli.notAdded.filter((v) => agent.notAdded.includes(v)),
  };
}

/** `xdplb realserver --k8s`: the node agent, in the foreground until SIGTERM or SIGINT. */
async function runAgent(opts: { vip?: string[]; undo?: boolean; json?: boolean; config?: string; kubeconfig?: string; node?: string; metricsAddress?: string; undoOnExit?: boolean }): Promise<void> {
  if (opts.vip || opts.undo) throw new XdplbError('USAGE', '--k8s takes its VIPs from the cluster: no --vip or --undo with it');
  if (opts.json) throw new XdplbError('USAGE', '--k8s runs until stopped and prints nothing: no --json with it');
  if (opts.metricsAddress !== undefined) checkHostPortFlag('--metrics-address', opts.metricsAddress);
  if (opts.node !== undefined) checkNodeName(opts.node);
  const { validateConfig, loadConfig } = await import('../config/load.ts');
  const config = opts.config ? await loadConfig(opts.config, { kubeconfig: opts.kubeconfig }) : validateConfig({}, { kubeconfig: opts.kubeconfig });
  const { kubeconfig, ...settings } = config.kubernetes ?? validateConfig({ kubernetes: {} }).kubernetes!;
  const { clusterAccess } = await import('../k8s/client.ts');
  const { RealserverAgent } = await import('../realserver/agent.ts');
  const { guardProcess } = await import('../guards.ts');
  const { hostname } = await import('node:os');
  guardProcess(log);
  const agent = new RealserverAgent({
    access: clusterAccess(kubeconfig),
    settings,
    node: opts.node ?? process.env.NODE_NAME ?? hostname(),
    metricsAddress: opts.metricsAddress ?? '127.0.0.1:9843',
    undoOnExit: Boolean(opts.undoOnExit),
    log,
  });
  await agent.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      agent.stop().then(resolve, (err: unknown) => {
        log.error({ err }, 'stopping failed');
        process.exitCode = EXIT.failure;
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function statusCommand(opts: { interface?: string; pinDir?: string; api?: string; stats?: boolean; rate?: boolean; json?: boolean; watch?: string | boolean; ipvsadm?: boolean }): Promise<void> {
  const every = typeof opts.watch === 'string' ? Number(opts.watch) : 2;
  if (!(every >= 1 && every <= 3600)) throw new XdplbError('USAGE', `--watch takes 1 to 3600 seconds, got ${opts.watch}`);
  if (opts.ipvsadm && opts.json) throw new XdplbError('USAGE', '--ipvsadm prints the text of ipvsadm -L -n: not with --json');
  // as ipvsadm: --stats wins over --rate
  const ipvsadm = opts.ipvsadm ? (opts.stats ? 'stats' : opts.rate || opts.watch ? 'rate' : 'list') : null;
  const pinDir = pinDirFor(opts);
  const api = apiFor(opts, () => pinDir);
  let dp: DataPlane | null = null; // opened when no daemon answers for these pins
  const read = async (): Promise<Status> => (await daemonState(api, pinDir)) ?? readStatus((dp ??= DataPlane.openPinned(pinDir)), pinDir);
  const once = async (): Promise<string> => {
    if (ipvsadm === 'rate' || (!ipvsadm && (opts.rate || opts.watch))) {
      const a = await read();
      await new Promise((r) => setTimeout(r, 1000));
      const st = rates(a, await read(), 1);
      return opts.json ? json(st) : ipvsadm ? renderIpvsadm(st, ipvsadm) : renderStatus(st, { stats: true, mode: 'rate' });
    }
    const st = await read();
    return opts.json ? json(st) : ipvsadm ? renderIpvsadm(st, ipvsadm) : renderStatus(st, { stats: Boolean(opts.stats), mode: 'totals' });
  };
  if (!opts.watch) {
    process.stdout.write(`${await once()}\n`);
    return;
  }
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
    .option('-c, --config <file>', 'configuration file (YAML or JSON), required') // checked in the action: an unknown option is named first
    .option('-i, --interface <iface>', 'NIC to attach to (overrides the config)')
    .addOption(new Option('--mode <mode>', 'XDP mode (overrides the config; default native)').choices(['native', 'generic']))
    .option('--metrics-address <host:port>', 'where /metrics, /healthz, /readyz listen (default 127.0.0.1:9842)')
    .option('--no-metrics-per-backend', 'leave the series per backend out of /metrics, for very large fleets (overrides the config)')
    .option('--kubeconfig <file>', 'serve the Services of this cluster too (Kubernetes mode; sets kubernetes.kubeconfig, adding the section if the config has none)')
    .option('--pin-dir <dir>', `bpffs directory of the pins (default ${PIN_ROOT}/IFACE)`)
    .option('--detach-on-exit', 'remove program, pins and VIPs when stopped (default: keep forwarding)')
    .option('--object <file>', 'XDP object file to load (default: the one built with this xdplb)')
    .addHelpText(
      'after',
      `\nRuns in the foreground (systemd-friendly). SIGHUP or a change of the config file reloads it;
an invalid config is refused and the running one stays. SIGTERM stops the daemon and leaves
the data plane forwarding; the next start adopts it without losing a packet or a counter.

Kubernetes mode (a kubernetes: section in the config, or --kubeconfig): the director also
serves the cluster's Services (externalIPs in kubernetes.externalIPs, LoadBalancers of its
class), their backends the Ready nodes. Without a kubeconfig it uses the in-cluster
ServiceAccount, then $KUBECONFIG. See SPEC §7 and the README.

Example:
  xdplb attach -i eth1 -c /etc/xdplb/config.yaml --mode native
  xdplb attach -i eth1 -c /etc/xdplb/config.yaml --kubeconfig /etc/xdplb/kubeconfig
${EXIT_HELP}`,
    )
    .action(async (opts: { config?: string; interface?: string; mode?: string; metricsAddress?: string; metricsPerBackend: boolean; kubeconfig?: string; pinDir?: string; detachOnExit?: boolean; object?: string }) => {
      // Signals are handled from the first moment: during start-up they are logged and wait for it
      // (a stop then stops what was started, a reload re-reads the config once it is up).
      let started: Promise<Director> | null = null;
      let director: Director | null = null;
      let stopping = false;
      let reloadWanted = false;
      let stoppedNow = () => {};
      const stopped = new Promise<void>((resolve) => (stoppedNow = resolve));
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal, starting: director === null }, 'stopping');
        void (async () => {
          try {
            await (started ? await started.catch(() => null) : null)?.stop();
          } catch (err) {
            log.error({ err }, 'stopping failed');
            process.exitCode = EXIT.failure;
          } finally {
            stoppedNow();
          }
        })();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => {
        if (stopping) log.info('SIGHUP while stopping: ignored');
        else if (director) void director.reload('SIGHUP');
        else {
          reloadWanted = true;
          log.info('SIGHUP during start-up: the configuration is read again once start-up is complete');
        }
      });
      if (opts.config === undefined) throw new XdplbError('USAGE', "attach needs a configuration: -c FILE (see xdplb attach --help)");
      // the flags checked before the file is read: a bad one is named as the flag it is (exit 2), not as the file
      if (opts.interface !== undefined) checkInterfaceFlag(opts.interface);
      if (opts.metricsAddress !== undefined) checkHostPortFlag('--metrics-address', opts.metricsAddress);
      if (opts.object !== undefined) checkFileFlag('--object', opts.object);
      const pinDir = opts.pinDir === undefined ? undefined : checkedPinDir({ pinDir: opts.pinDir });
      if (pinDir) checkPinLayout(pinDir, 'not attached'); // new pins among others' could not be told apart from them
      const { Director } = await import('../director/director.ts');
      const { guardProcess } = await import('../guards.ts');
      guardProcess(log);
      started = Director.start({
        configPath: opts.config,
        // commander defaults a --no- flag to true: only an explicit flag overrides the config
        overrides: { interface: opts.interface, mode: opts.mode, metricsAddress: opts.metricsAddress, metricsPerBackend: opts.metricsPerBackend ? undefined : false, kubeconfig: opts.kubeconfig },
        detachOnExit: Boolean(opts.detachOnExit),
        ...(pinDir ? { pinDir } : {}),
        ...(opts.object ? { objectPath: opts.object } : {}),
      });
      director = await started;
      if (reloadWanted && !stopping) void director.reload('SIGHUP during start-up');
      await stopped;
    });

  program
    .command('detach')
    .description('remove the XDP program, its pins and the VIPs xdplb added')
    .option('-i, --interface <iface>', 'the NIC xdplb is attached to')
    .option('--pin-dir <dir>', `bpffs directory of the pins (default ${PIN_ROOT}/IFACE)`)
    .option('--json', 'print what was removed as JSON')
    .option('--force', 'detach even while a daemon runs on these pins')
    .addHelpText(
      'after',
      `\nStop the daemon first (or start it with --detach-on-exit): detach refuses while a daemon holds
the pin directory's lock, unless --force. It removes only an xdplb pin layout on a bpffs, and the
VIPs xdplb recorded adding, from the NIC it added them to. Detaching nothing is not an error.

Example:
  xdplb detach -i eth1
${EXIT_HELP}`,
    )
    .action((opts: { interface?: string; pinDir?: string; json?: boolean; force?: boolean }) => {
      const pinDir = pinDirFor(opts, true);
      checkPinLayout(pinDir); // a directory that is not xdplb's is refused before even the lock file is made
      const taken = PinDirLock.tryAcquire(pinDir, 'detach');
      if ('holder' in taken && !opts.force)
        throw new XdplbError('DAEMON', `${taken.holder ? `a daemon (pid ${taken.holder.pid}, ${taken.holder.what})` : 'another xdplb process'} holds ${pinDir}: stop it first (the data plane keeps forwarding), or use --force`);
      try {
        checkPinLayout(pinDir); // before anything is removed
        const pinnedIfindex = pinnedLinkIfindex(pinDir);
        let named: number | null = null; // the ifindex of -i, while it exists
        if (opts.interface !== undefined) {
          try {
            named = native.interfaceInfo(opts.interface).ifindex;
          } catch {
            /* gone: only the pins and records remain */
          }
        }
        if (named !== null && pinnedIfindex && named !== pinnedIfindex)
          throw new XdplbError('USAGE', `${pinDir} holds the attachment of ifindex ${pinnedIfindex}, not of ${opts.interface} (ifindex ${named}): nothing was removed`);
        const routes = withdrawRoutes(pinDir);
        const vips = releaseVips(pinDir, pinnedIfindex ?? named);
        forgetRole(pinDir);
        const removed = detachPins(pinDir);
        const result = { pinDir, detached: removed, vipsRemoved: vips, routesWithdrawn: routes };
        process.stdout.write(opts.json ? `${json(result)}\n` : removed ? `detached ${pinDir}; VIPs removed: ${vips.join(', ') || 'none'}\n` : `nothing attached at ${pinDir}\n`);
      } finally {
        if ('lock' in taken) taken.lock.release();
      }
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
    .option('--api <socket|host:port>', `a running daemon's local API, asked first: ${API_HELP}`)
    .option(...API_TOKEN_FLAG)
    .option('--ipvsadm', 'print exactly what ipvsadm -L -n prints (with --stats or --rate: their columns), for scripts written for LVS')
    .addHelpText('after', `\nAsks the running daemon (which adds its last reload result and overrides); with no daemon it reads the pinned
maps directly: the same table either way.

--ipvsadm: ipvsadm 1.31's text. Scheduler mh (mh-port) for maglev, mh for maglev-source; Forward Route;
Weight 0 while draining; down backends are not listed; ActiveConn/InActConn count the flow table's
entries (flows on slots that changed owner) seen in the last 30 s / not since; OutPkts and OutBytes are
0 (direct routing: replies bypass the director); size= is the flow table's capacity.\n\nExample:\n  xdplb status --stats\n  xdplb status --json | jq '.services[].backends[].packets'\n  xdplb status --ipvsadm --stats\n${EXIT_HELP}`)
    .action(statusCommand);

  program
    .command('trace')
    .description('explain, from the live maps, which service, slot and backend the packets of a flow get, and why (nothing is sent)')
    .argument('<vip:port>', 'where the client sends: VIP:PORT, [IPv6]:PORT')
    .option('--from <client:port>', 'the client: ADDRESS:PORT, [IPv6]:PORT (required)')
    .addOption(new Option('--proto <protocol>', 'the protocol').choices(['tcp', 'udp']).default('tcp'))
    .option('--to-mac <mac>', "the frame's destination MAC (default: the director NIC's own, as a router sends it)")
    .option('-i, --interface <iface>', 'the NIC xdplb is attached to (default: the only one)')
    .option('--pin-dir <dir>', 'bpffs directory of the pins')
    .option('--json', 'the trace as JSON')
    .addHelpText(
      'after',
      `\nReads the pinned maps (no daemon needed) and decides as the XDP program does: the prefilter, the
service (the port's, else the VIP's port-less one), the hash and the Maglev slot, the slot's owner and
previous owner, the flow table's entry for this 5-tuple, and for each kind of packet (a SYN and a
segment of an established connection, or a UDP datagram; an ICMP error quoting the flow; a fragment)
the verdict and the backend, with its MAC, state and health. Nothing is sent and nothing is written:
a SYN that would replace a flow-table entry is only said to. Exit 0 whatever the verdict.

Example:
  xdplb trace 10.240.0.201:80 --from 10.240.0.10:40000
  xdplb trace [2001:db8::201]:53 --from [2001:db8::10]:5353 --proto udp --json
${EXIT_HELP}`,
    )
    .action(async (target: string, opts: { from?: string; proto: 'tcp' | 'udp'; toMac?: string; interface?: string; pinDir?: string; json?: boolean }) => {
      const { parseEndpoint, renderTrace, trace } = await import('../trace/trace.ts');
      const { dataPlaneMaps } = await import('../trace/read.ts');
      if (opts.from === undefined) throw new XdplbError('USAGE', 'trace needs the client: --from CLIENT:PORT (see xdplb trace --help)');
      const vip = parseEndpoint(target);
      if (typeof vip === 'string') throw new XdplbError('USAGE', `VIP:PORT: ${vip}`);
      const client = parseEndpoint(opts.from);
      if (typeof client === 'string') throw new XdplbError('USAGE', `--from: ${client}`);
      if (vip.ip.family !== client.ip.family) throw new XdplbError('USAGE', `--from ${client.ip.text} is IPv${client.ip.family}, the VIP ${vip.ip.text} IPv${vip.ip.family}: a flow has one family`);
      const frameTo = opts.toMac === undefined ? undefined : parseMac(opts.toMac);
      if (frameTo === null) throw new XdplbError('USAGE', `--to-mac ${opts.toMac}: not a MAC (aa:bb:cc:dd:ee:ff)`);
      const pinDir = pinDirFor(opts);
      const dp = DataPlane.openPinned(pinDir);
      let ingressIfindex: number | null = null;
      try {
        ingressIfindex = pinnedLinkIfindex(pinDir);
      } catch {
        /* no link pinned (or a defunct one): where frames arrive is unknown */
      }
      const t = trace(
        { protocol: opts.proto, vip: vip.ip, port: vip.port, client: client.ip, clientPort: client.port, ...(frameTo ? { frameTo } : {}) },
        dataPlaneMaps(dp, { ingressIfindex, nicMac: dp.ingressMac() }),
      );
      process.stdout.write(`${opts.json ? json(t) : renderTrace(t)}\n`);
    });

  program
    .command('realserver')
    .description('prepare this host as a backend: VIPs on lo, arp_ignore=1, arp_announce=2, loose rp_filter')
    .option('--vip <address...>', 'VIP(s) this host serves')
    .option('--undo', 'remove the VIPs xdplb added (only those of --vip, when given) and, once none is left, restore the sysctls it changed')
    .option('--json', 'print what changed as JSON')
    .option('--k8s', 'run as the Kubernetes node agent: keep lo\'s VIPs equal to those the cluster\'s Services send to this node, until stopped')
    .option('-c, --config <file>', 'with --k8s: the config whose kubernetes: section the director uses (the same settings give the same VIPs)')
    .option('--kubeconfig <file>', 'with --k8s: the cluster (default: the in-cluster ServiceAccount, then $KUBECONFIG)')
    .option('--node <name>', 'with --k8s: this node\'s Node name (default: $NODE_NAME, then the host name)')
    .option('--metrics-address <host:port>', 'with --k8s: where /metrics, /healthz and /readyz listen (default 127.0.0.1:9843)')
    .option('--undo-on-exit', 'with --k8s: on SIGTERM, remove the VIPs the agent added and restore the sysctls')
    .addHelpText(
      'after',
      `\nIdempotent: running it twice changes nothing the second time. What it changed is recorded per\nnetwork namespace; --undo reverts only that.\n\nWith --k8s it runs in the foreground (a DaemonSet) and follows the cluster: a VIP is added when a\nService starts sending this node traffic, and removed (drainTimeout later) when it stops; an\naddress it did not add is never touched. It reports a kube-proxy in IPVS mode without strictARP.\n\nExample:\n  xdplb realserver --vip 10.240.0.201 2001:db8::201\n  xdplb realserver --undo\n  xdplb realserver --k8s -c /etc/xdplb/config.yaml --undo-on-exit\n${EXIT_HELP}`,
    )
    .action(async (opts: { vip?: string[]; undo?: boolean; json?: boolean; k8s?: boolean; config?: string; kubeconfig?: string; node?: string; metricsAddress?: string; undoOnExit?: boolean }) => {
      if (opts.k8s) return runAgent(opts);
      for (const k8sOnly of ['config', 'kubeconfig', 'node', 'metricsAddress', 'undoOnExit'] as const)
        if (opts[k8sOnly] !== undefined) throw new XdplbError('USAGE', `--${k8sOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} goes with --k8s`);
      if (!opts.undo && !opts.vip?.length) throw new XdplbError('USAGE', 'give --vip ADDRESS... (or --undo, or --k8s)');
      const vips = (opts.vip ?? []).map((text) => {
        const ip = parseIp(text);
        if (!ip) throw new XdplbError('USAGE', `--vip ${text}: not ${ipSyntaxError(text)}`);
        const why = unusableAddress(ip);
        if (why) throw new XdplbError('USAGE', `--vip ${why}: it cannot be a VIP`);
        return ip;
      });
      const r: RealserverResult & { notAdded?: string[] } = opts.undo ? undoBoth(opts.vip ? vips : undefined) : configureRealserver(vips);
      const notOurs = r.notAdded?.length ? `; not added by xdplb, left alone: ${r.notAdded.join(', ')}` : '';
      process.stdout.write(
        opts.json ? `${json(r)}\n` : `${opts.undo ? 'undone' : 'configured'}: VIPs added ${r.vipsAdded.join(', ') || 'none'}, removed ${r.vipsRemoved.join(', ') || 'none'}${notOurs}; sysctls ${json(r.sysctls)}\n`,
      );
    });

  program
    .command('backend')
    .description('drain, undrain or remove a backend of a service in the running daemon')
    .argument('<action>', 'drain | undrain | remove')
    .argument('<service>', 'service name')
    .argument('<address>', 'backend address')
    .option('-i, --interface <iface>', "the NIC the daemon is attached to, to find its API socket (default: the only one)")
    .option('--pin-dir <dir>', "bpffs directory of the daemon's pins, to find its API socket")
    .option('--api <socket|host:port>', `the daemon's local API: ${API_HELP}`)
    .option(...API_TOKEN_FLAG)
    .addHelpText(
      'after',
      `\ndrain keeps the backend's established flows and sends it no new ones (status --stats shows the flows it
still tracks: remove it when that reaches 0); remove takes it out (its flows move); undrain restores it.
These are runtime overrides of the config, lost when the daemon restarts: make lasting changes in the config.

Example:
  xdplb backend drain web 10.240.0.101
${EXIT_HELP}`,
    )
    .action(async (action: string, service: string, address: string, opts: { interface?: string; pinDir?: string; api?: string }) => {
      if (!['drain', 'undrain', 'remove'].includes(action)) throw new XdplbError('USAGE', `action must be drain, undrain or remove, not ${action}`);
      if (!parseIp(address)) throw new XdplbError('USAGE', `not an IP address: ${address}`);
      checkServiceName(service);
      await postToDaemon(apiFor(opts, () => pinDirFor(opts)), `/v1/backends/${action}`, { service, address }, `${action} ${service} ${address}`);
      process.stdout.write(`${action}: ${service} ${address}\n`);
    });

  program
    .command('role')
    .description("set the running director's role: active owns and announces the VIPs, standby owns none")
    .argument('<role>', 'active | standby')
    .option('-i, --interface <iface>', 'the NIC the daemon is attached to, to find its API socket (default: the only one)')
    .option('--pin-dir <dir>', "bpffs directory of the daemon's pins, to find its API socket")
    .option('--api <socket|host:port>', `the daemon's local API: ${API_HELP}`)
    .option(...API_TOKEN_FLAG)
    .option('--json', 'print the role and the one it had as JSON')
    .addHelpText(
      'after',
      `\nFor keepalived's notify scripts (notify_master / notify_backup / notify_fault), or by hand. A standby keeps
its maps filled, so a takeover is only the VIPs being added and announced (gratuitous ARP / unsolicited NA for
every VIP, again 0.2 s and 1 s later, and every 10 s while active). Refused (exit 1, naming the Lease) by a
director under kubernetes.leaderElection, where the Lease decides. The role is recorded in the run directory and kept when the daemon restarts (a standby that
restarts stays standby); without a record (first start, after detach or a reboot) the config's role holds.
With no daemon running on the pins (it died), the role is only recorded, for its next start: a daemon
that died active and is restarted after keepalived made the other director active comes back standby.

Example:
  xdplb role standby
${EXIT_HELP}`,
    )
    .action(async (role: string, opts: { interface?: string; pinDir?: string; api?: string; json?: boolean }) => {
      if (!(ROLES as readonly string[]).includes(role)) throw new XdplbError('USAGE', `the role is ${ROLES.join(' or ')}, not ${role}`);
      // the pins whose daemon this is: found as the API is (with --api alone they are unknown, and nothing is recorded)
      const pinDir = opts.api === undefined ? pinDirFor(opts) : checkedPinDir(opts);
      const recordForNextStart = () => {
        if (pinDir === null) throw new Error('with --api alone the pin directory is unknown: give --pin-dir or -i to record the role for its next start');
        if (opts.interface !== undefined && !interfaceExists(opts.interface)) throw new Error(`there is no interface ${opts.interface}: not recorded`); // a typo in a notify script must not pass as done
        const taken = PinDirLock.tryAcquire(pinDir, `xdplb role ${role}`);
        if (!('lock' in taken)) throw new Error(`a process holds ${pinDir}${taken.holder ? ` (pid ${taken.holder.pid}, ${taken.holder.what})` : ''}: not recorded`);
        try {
          writeRunFile(pinDir, 'role', role);
        } finally {
          taken.lock.release();
        }
        return { role, recorded: true };
      };
      const body = (await postToDaemon(apiFor(opts, () => pinDir!), '/v1/role', { role }, `role ${role}`, recordForNextStart)) as { role: string; was?: string; recorded?: true };
      const text = body.recorded ? `role: ${body.role} (no daemon running: recorded for its next start)` : `role: ${body.role} (was ${body.was})`;
      process.stdout.write(opts.json ? `${json(body)}\n` : `${text}\n`);
    });

  program
    .command('drain-director')
    .description('withdraw every route of this director (routeTable) for maintenance, keep forwarding, and report when its traffic has stopped')
    .option('-i, --interface <iface>', 'the NIC the daemon is attached to (default: the only one)')
    .option('--pin-dir <dir>', "bpffs directory of the daemon's pins")
    .option('--api <socket|host:port>', `the daemon's local API: ${API_HELP}`)
    .option(...API_TOKEN_FLAG)
    .option('--undo', 'publish the routes again (the director takes traffic again)')
    .option('--no-wait', 'return once the routes are withdrawn, without waiting for the traffic to stop')
    .option('--timeout <seconds>', 'how long to wait for the traffic to stop', '300')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `\nFor directors behind ECMP (routeTable in the config, announced by BIRD or FRR): the routing daemon
withdraws the VIPs, the routers stop sending new flows here, and the program keeps forwarding what still
arrives (established connections) until it stops. Then the director can be stopped or upgraded without
resetting a connection. The drain is recorded and kept across daemon restarts, until --undo. It waits
until fewer than 1 packet a second has been forwarded for 3 seconds in a row (exit 0), or --timeout
(exit 1, naming the rate).

Example:
  xdplb drain-director -i eth1
  xdplb drain-director -i eth1 --undo
${EXIT_HELP}`,
    )
    .action(async (opts: { interface?: string; pinDir?: string; api?: string; undo?: boolean; wait: boolean; timeout: string; json?: boolean }) => {
      const timeout = Number(opts.timeout);
      if (!(timeout >= 1 && timeout <= 86_400)) throw new XdplbError('USAGE', `--timeout takes 1 to 86400 seconds, got ${opts.timeout}`);
      const pinDir = opts.api === undefined ? pinDirFor(opts) : checkedPinDir(opts);
      const drained = !opts.undo;
      const body = (await postToDaemon(apiFor(opts, () => pinDir!), '/v1/drain', { drained }, drained ? 'drain-director' : 'drain-director --undo')) as { drained: boolean; was: boolean };
      if (!drained || !opts.wait || pinDir === null) {
        process.stdout.write(opts.json ? `${json(body)}\n` : `${drained ? 'drained: every route withdrawn' : 'undrained: the routes are published again'}${body.was === drained ? ' (it already was)' : ''}\n`);
        return;
      }
      const forwarded = () => {
        const g = readStatus(DataPlane.openPinned(pinDir), pinDir).global;
        return (g.xdp_tx ?? 0) + (g.xdp_redirect ?? 0);
      };
      const started = Date.now();
      let last = forwarded();
      let quiet = 0;
      let rate = 0;
      while (quiet < 3) {
        if (Date.now() - started > timeout * 1000)
          throw new XdplbError('DAEMON', `drained, but the traffic has not stopped within ${timeout} s: ${rate} packets forwarded in the last second`);
        await new Promise((r) => setTimeout(r, 1000));
        const now = forwarded();
        rate = now - last;
        last = now;
        quiet = rate < 1 ? quiet + 1 : 0;
      }
      const seconds = Math.round((Date.now() - started) / 1000);
      process.stdout.write(opts.json ? `${json({ ...body, trafficStoppedAfterSeconds: seconds })}\n` : `drained: every route withdrawn; the traffic stopped after ${seconds} s\n`);
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
      if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new XdplbError('USAGE', `--requests takes 1 to 100000, got ${opts.requests}`);
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

  addImportCommands(program, EXIT_HELP);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const usage = captureUsageErrors(program); // every command, at every depth: one line instead of commander's error and help
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help or the version asked for: 0; anything else commander refused (a group without its command too): bad usage
      if (err.exitCode === 0) return EXIT.ok;
      process.stderr.write(`xdplb: ${usageLine(usage(), argv.slice(2))}\n`);
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
