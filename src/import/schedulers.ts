// IPVS's schedulers (the kernel's ip_vs_*.c, ipvsadm(8)) and what each
// becomes in xdplb, which has two: maglev (a consistent hash of the 5-tuple)
// and maglev-source (of the client address: client-IP affinity). Used by both
// importers: ipvsadm's -s and keepalived's lb_algo name the same ones. Pure.
import type { Scheduler } from '../model/service.ts';
import { note, warning, type Note } from './document.ts';

/** The IPVS scheduler flags (-b, keepalived's sh-port etc.) that change the mapping. */
export interface SchedulerFlags {
  /** sh-port / mh-port: the client's port is hashed too. */
  readonly port: boolean;
  /** sh-fallback / mh-fallback. */
  readonly fallback: boolean;
}

export interface SchedulerMapping {
  readonly scheduler: Scheduler;
  /** IPVS's scheduler shares flows equally whatever the weights (only 0 counts): the weights become 1. */
  readonly equalShares: boolean;
  readonly notes: readonly Note[];
}

/** The schedulers IPVS ships (ipvsadm 1.31's list, and keepalived's "twos"). */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos'] as const;

const LOAD_AWARE: Readonly<Record<string, string>> = {
  lc: 'least-connection',
  wlc: 'weighted least-connection',
  lblc: 'locality-based least-connection',
  lblcr: 'locality-based least-connection with replication',
  sed: 'shortest expected delay',
  nq: 'never queue',
  twos: 'weighted random of two choices by connections',
};

const CONSISTENT = 'maglev is consistent hashing: every packet of a flow meets the same backend, on every director with the same hashSeed';

/**
 * What IPVS's scheduler `name` (with its flags, and persistence) becomes.
 * null: not an IPVS scheduler. Persistence (-p, persistence_timeout) makes
 * it maglev-source whatever the scheduler: IPVS then picks a backend per
 * client, not per connection, and so does a hash of the client address.
 */
export function mapScheduler(name: string, flags: SchedulerFlags, persistent: boolean): SchedulerMapping | null {
  const notes: Note[] = [];
  let scheduler: Scheduler = 'maglev';
  let equalShares = false;
  switch (name) {
    case 'rr':
      equalShares = true;
      notes.push(note(`rr (round robin) gave each backend an equal share, whatever its weight: every weight is 1 here, but 0 (which rr skipped) stays 0; ${CONSISTENT}, shares within ±2%.`));
      break;
    case 'wrr':
      notes.push(note(`wrr (weighted round robin): maglev gives each backend a share of the flows proportional to its weight, by hashing rather than in turn; ${CONSISTENT}.`));
      break;
    case 'dh':
      equalShares = true;
      notes.push(warning('dh (destination hashing) hashed the destination address, which for one VIP is always the same: every flow went to one backend. maglev spreads the flows over all of them (weights 1, as dh ignored them).'));
      break;
    case 'sh':
    case 'mh': {
      const what = name === 'sh' ? 'sh (source hashing) hashed' : 'mh (IPVS\'s Maglev) hashed';
      scheduler = flags.port && !persistent ? 'maglev' : 'maglev-source';
      if (flags.port && persistent) notes.push(note(`${name}-port with persistence: IPVS's persistence kept each client on one backend whatever ${name} hashed: maglev-source (client-IP affinity).`));
      else if (flags.port) notes.push(note(`${name} with ${name}-port hashed the client address and port: maglev hashes the whole 5-tuple, so the connections of one client spread as they did.`));
      else notes.push(note(`${what} the client address: maglev-source does the same (client-IP affinity), on its own table, so clients meet other backends than under IPVS once, at the switch.`));
      break;
    }
    case 'fo':
      notes.push(warning('fo (weighted failover) sent every new flow to the one available backend of the highest weight, the others standing by; maglev spreads the flows over every backend by weight. For a standby, give it weight 0 (it keeps no share) and raise it when needed.'));
      break;
    case 'ovf':
      notes.push(warning("ovf (weighted overflow) filled the backend of the highest weight up to its weight in active connections before the next; maglev spreads the flows over every backend by weight from the start, and knows nothing of connection counts."));
      break;
    default: {
      const what = LOAD_AWARE[name];
      if (!what) return null;
      notes.push(note(`${name} (${what}) chose by the backends' connection counts; maglev does not look at load: shares follow the weights, and a slow backend is not relieved. ${CONSISTENT}.`));
    }
  }
  if (flags.fallback && (name === 'sh' || name === 'mh'))
    notes.push(note(`${name}-fallback: xdplb always does this: a backend out of the table (weight 0, failing its check, gone) has its share of the slots taken by the others.`));
  if (persistent) scheduler = 'maglev-source';
  return { scheduler, equalShares, notes };
}

/**
 * The comment on persistence: IPVS kept a client on its backend for
 * `timeout` seconds after its last connection (per netmask-sized group of
 * clients); maglev-source hashes the client address, with no timer.
 */
export function persistenceNote(timeout: number, granularity: string | null, engine: string | null): Note[] {
  const notes: Note[] = [
    note(
      `Persistence (${timeout} s): IPVS kept each client on its backend until ${timeout} s after its last connection. maglev-source hashes the client address instead: a client always meets the same backend while the set of backends stays the same, with no timeout; when the set changes, about 1/N of the clients move to another backend for their new connections (established TCP connections stay where they are).`,
    ),
  ];
  if (granularity !== null && granularity !== '255.255.255.255' && granularity !== '128')
    notes.push(warning(`Persistence granularity ${granularity}: IPVS kept a whole network of clients on one backend; maglev-source hashes each client address on its own, so clients of one network may meet different backends.`));
  if (engine !== null) notes.push(warning(`Persistence engine ${engine} (IPVS's SIP Call-ID affinity): xdplb has none; maglev-source keeps a client address on one backend instead.`));
  return notes;
}
