// The daemon's last line of defence: an error that nothing caught, in a timer
// or a callback, is a defect; it is logged with its stack and counted
// (xdplb_unexpected_errors_total), and the daemon carries on. The data plane
// forwards in the kernel either way.
import type { Logger } from './log.ts';

let unexpected = 0;

/** Errors caught by the process-wide handlers since start. */
export function unexpectedErrors(): number {
  return unexpected;
}

/** Counts a defect that was caught where it happened (and logged there), e.g. a health-check run that threw. */
export function countUnexpected(): void {
  unexpected++;
}

/** Installs the process-wide handlers (once, in the daemon). */
export function guardProcess(log: Logger): void {
  process.on('uncaughtException', (err, origin) => {
    unexpected++;
    log.error({ err, origin }, 'unexpected error (a defect in xdplb); the daemon carries on');
  });
  process.on('unhandledRejection', (reason) => {
    unexpected++;
    log.error({ err: reason instanceof Error ? reason : new Error(String(reason)) }, 'unexpected error in a promise (a defect in xdplb); the daemon carries on');
  });
}
