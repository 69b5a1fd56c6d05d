// What identifies a service (its key in the data plane, and that key as
// text) and one backend of a service (in the daemon's records: health
// checks, overrides, metrics). Pure.
import type { Family, IpAddress } from './address.ts';

/** A service in the data plane: (VIP, L4 protocol, destination port). */
export interface ServiceKey {
  /** The VIP: 16 bytes, network order; IPv4 in the first 4. */
  addr: Buffer;
  family: Family;
  /** IP protocol number (IPPROTO, see protocol.ts). */
  proto: number;
  /** Host order; 0: every port of the VIP and protocol. */
  port: number;
}

/** A service key as text, the daemon's key of a service: "tcp/10.240.0.201:80", "udp/[2001:db8::201]:53". */
export function serviceKeyText(protocol: string, vip: IpAddress, port: number): string {
  return `${protocol}/${vip.family === 6 ? `[${vip.text}]` : vip.text}:${port}`;
}

/**
 * The key of one backend of one service: "web 10.240.0.101". The address is
 * its canonical text (IpAddress.text; a validated config holds canonical
 * addresses). Unambiguous: a service name has no space.
 */
export function backendKey(service: string, address: string): string {
  return `${service} ${address}`;
}
