// A backend's health as keepalived counts it: `fall` failures in a row take
// it out, `rise` successes in a row bring it back. Pure.
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

export function nextHealth(s: HealthState, ok: boolean, rise: number, fall: number): { state: HealthState; changed: boolean } {
  if (ok === s.up) return { state: { up: s.up, streak: 0 }, changed: false };
  const streak = s.streak + 1;
  if (streak >= (s.up ? fall : rise)) return { state: { up: !s.up, streak: 0 }, changed: true };
  return { state: { up: s.up, streak }, changed: false };
}
