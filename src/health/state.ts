// A backend's health as keepalived counts it: `fall` failures in a row take
// it out, `rise` successes in a row bring it back; and what a service's
// verdicts as a whole let in when every backend is down. Pure.
import type { ServiceConfig } from '../config/schema.ts';

export interface HealthState {
  up: boolean;
  /** Results in a row that disagree with `up`. */
  streak: number;
}

/**
 * A new backend starts up (a restart must not take the whole service out);
 * one the data plane recorded as down (a daemon restart) starts down, so a
 * known-dead backend does not get traffic again until `rise` successes.
 */
export const INITIAL: HealthState = { up: true, streak: 0 };
export const RECORDED_DOWN: HealthState = { up: false, streak: 0 };

/**
 * The state a new probe starts from, given what its services knew of the
 * address before: the state of the probe a service moves from (its check
 * changed), or RECORDED_DOWN where the data plane recorded it down. Any of
 * them down starts it down: neither a changed check nor a restart may let a
 * dead backend in before `rise` successes. Otherwise up, as INITIAL.
 */
export function startingState(known: readonly HealthState[]): HealthState {
  return known.some((s) => !s.up) ? RECORDED_DOWN : INITIAL;
}

export function nextHealth(s: HealthState, ok: boolean, rise: number, fall: number): { state: HealthState; changed: boolean } {
  if (ok === s.up) return { state: { up: s.up, streak: 0 }, changed: false };
  const streak = s.streak + 1;
  if (streak >= (s.up ? fall : rise)) return { state: { up: !s.up, streak: 0 }, changed: true };
  return { state: { up: s.up, streak }, changed: false };
}

/** What a service's health checks say of its backends together. */
export interface ServiceHealth {
  /** Addresses of the backends whose check says up. */
  readonly up: ReadonlySet<string>;
  /** The backends up at the last moment any was; null while none has been seen up. */
  readonly lastUp: ReadonlySet<string> | null;
}

/** A service's record once the backends up are `up` (a verdict changed, a check came or went). */
export function nextServiceHealth(before: ServiceHealth | null, up: ReadonlySet<string>): ServiceHealth {
  return { up, lastUp: up.size > 0 ? up : (before?.lastUp ?? null) };
}

/**
 * Whether a backend may take traffic: it is up; or every backend is down and
 * the policy is keep-last, and it was one of those up last (every backend,
 * when none has been seen up: a restart must not take the whole service out).
 */
export function admits(h: ServiceHealth, allDown: ServiceConfig['allDown'], address: string): boolean {
  if (h.up.size > 0) return h.up.has(address);
  return allDown === 'keep-last' && (h.lastUp?.has(address) ?? true);
}
