// A director whose frames never leave: native XDP on a veth whose peer has
// neither GRO nor an XDP program drops every XDP_TX frame, while the program
// counts it sent (PLATFORM.md; found by trying). The driver counts what it
// dropped (veth: rx_queue_N_xdp_tx_errors, tx_queue_N_xdp_xmit_errors; other
// drivers name theirs alike), so the daemon reads the NIC's own counters and
// says so, with the fix. Pure: the counters in, the verdict out.

/** The driver counters that count XDP_TX / XDP_REDIRECT frames the NIC failed to send. */
const XDP_TX_ERROR = /xdp.*(?:tx|xmit).*err/i;

/** The sum of the NIC's counters of XDP frames it failed to send. */
export function xdpTxErrors(stats: Readonly<Record<string, number>>): number {
  let sum = 0;
  for (const [name, value] of Object.entries(stats)) if (XDP_TX_ERROR.test(name)) sum += value;
  return sum;
}

/** What to do about it, for this driver and mode. */
export function xdpTxAdvice(nic: string, driver: string, mode: 'native' | 'generic'): string {
  if (driver === 'veth' && mode === 'native')
    return `${nic} is a veth in native XDP mode, and its peer drops every XDP_TX frame unless it has an XDP program of its own (a plain XDP_PASS) or GRO (\`ethtool -K PEER gro on\`, set before the traffic starts) in its namespace; or attach with mode: generic`;
  return `the ${driver} driver of ${nic} failed to send XDP frames (its ethtool -S counters): check its TX queues and ring sizes, or attach with mode: ${mode === 'native' ? 'generic' : 'native'}`;
}
