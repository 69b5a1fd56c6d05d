// Nodes that leave a Service's backends drain: a node that goes NotReady,
// is excluded, or loses its last local endpoint keeps the flows it has (a
// connection through the director must not be cut because a label changed or
// a kubelet missed a heartbeat) and takes no new ones, for drainTimeout;
// then it goes. A node that comes back is active again at once. The
// translation itself is a function of one snapshot; this is the memory
// between two of them. Pure.
import type { ServiceInput } from './translate.ts';

/** Departed backends: by service name, each address with the time (ms) it goes. */
export type Departures = ReadonlyMap<string, ReadonlyMap<string, number>>;

type Backend = NonNullable<ServiceInput['backends']>[number];

/**
 * next with the backends that previous had and next has not added back as
 * draining, until their deadline (now + drainMs from when they left). A
 * service that is gone has nothing to drain (its VIP is gone too). Returns
 * the services, the departures still draining, and the earliest deadline
 * (null: none).
 */
export function withDepartures(
  previous: readonly ServiceInput[],
  next: readonly ServiceInput[],
  departures: Departures,
  now: number,
  drainMs: number,
): { services: ServiceInput[]; departures: Map<string, Map<string, number>>; nextDeadline: number | null } {
  const before = new Map(previous.map((s) => [s.name, s]));
  const left = new Map<string, Map<string, number>>();
  let nextDeadline: number | null = null;
  const services = next.map((s) => {
    const kept = new Set((s.backends ?? []).map((b) => b.address));
    const had = departures.get(s.name) ?? new Map<string, number>();
    const going = new Map<string, number>();
    for (const [address, deadline] of had) if (!kept.has(address) && deadline > now) going.set(address, deadline);
    for (const b of before.get(s.name)?.backends ?? []) if (!kept.has(b.address) && !had.has(b.address)) going.set(b.address, now + drainMs); // newly left
    if (going.size === 0) return s;
    left.set(s.name, going);
    for (const d of going.values()) nextDeadline = nextDeadline === null ? d : Math.min(nextDeadline, d);
    const draining: Backend[] = [...going.keys()].sort().map((address) => ({ address, state: 'draining' }));
    return { ...s, backends: [...(s.backends ?? []), ...draining] };
  });
  return { services, departures: left, nextDeadline };
}
