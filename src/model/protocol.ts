// The L4 protocols xdplb balances, in each of the forms they take: the
// config's name ("tcp"), the IP protocol number a packet and the data plane
// carry (6), and the label ipvsadm and node_exporter show ("TCP"). Pure.

/** The config's protocol names. */
export const PROTOCOLS = ['tcp', 'udp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** IP protocol numbers (IANA; IPPROTO_TCP, IPPROTO_UDP). */
export const IPPROTO: Readonly<Record<Protocol, number>> = { tcp: 6, udp: 17 };

/** The protocol of an IP protocol number, or null for one xdplb does not balance. */
export function protocolOf(ipproto: number): Protocol | null {
  return PROTOCOLS.find((p) => IPPROTO[p] === ipproto) ?? null;
}

/** The protocol's name for a number read back from the data plane: "tcp", or the number itself when unknown. */
export function protocolName(ipproto: number): string {
  return protocolOf(ipproto) ?? String(ipproto);
}

/** The label ipvsadm and node_exporter's IPVS collector use: "TCP", or the number itself when unknown. */
export function protocolLabel(ipproto: number): string {
  return protocolOf(ipproto)?.toUpperCase() ?? String(ipproto);
}
