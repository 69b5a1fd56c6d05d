// The network namespace this process runs in, as the kernel names it
// ("net:[4026531840]"): ifindexes, addresses and sysctls are per namespace,
// so records of what xdplb changed say which one they belong to.
import { readlinkSync } from 'node:fs';

export function currentNetns(): string {
  return readlinkSync('/proc/self/ns/net');
}
