// Backend MACs from the kernel's neighbour table of the director's NIC. The
// director's kernel never sends to backends itself (XDP forwards around it),
// so entries go stale and may be collected: the last MAC seen stays known,
// and resolution is triggered (a UDP datagram to the discard port) for
// backends that are missing, stale or failed. A backend is unresolved only
// until its first MAC is seen; a MAC change is picked up on the next poll.
import { createSocket, type Socket } from 'node:dgram';
import { native } from '../dataplane/native.ts';
import { formatIp, type IpAddress } from '../model/address.ts';

const NUD = { INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20, NOARP: 0x40, PERMANENT: 0x80 };
const USABLE = NUD.REACHABLE | NUD.STALE | NUD.DELAY | NUD.PROBE | NUD.NOARP | NUD.PERMANENT;
const FRESH = NUD.REACHABLE | NUD.PERMANENT | NUD.NOARP;

export interface NeighbourView {
  macOf(address: IpAddress): Buffer | null;
}

export class Neighbours implements NeighbourView {
  private readonly ifindex: number;
  private known = new Map<string, Buffer>();
  private wanted = new Map<string, IpAddress>();
  private readonly sockets: { 4?: Socket; 6?: Socket } = {};

  constructor(ifindex: number) {
    this.ifindex = ifindex;
  }

  /** The addresses to resolve and keep current. */
  want(addresses: readonly IpAddress[]): void {
    this.wanted = new Map(addresses.map((a) => [a.text, a]));
  }

  /** A MAC known from elsewhere (the pins of a running data plane). */
  seed(address: IpAddress, mac: Buffer): void {
    if (!this.known.has(address.text)) this.known.set(address.text, Buffer.from(mac));
  }

  macOf(address: IpAddress): Buffer | null {
    return this.known.get(address.text) ?? null;
  }

  /** Every wanted address and whether its MAC is known. */
  resolution(): Array<{ address: string; resolved: boolean }> {
    return [...this.wanted.keys()].map((address) => ({ address, resolved: this.known.has(address) }));
  }

  /**
   * Reads the neighbour table; returns the addresses whose MAC appeared or
   * changed. Probes every wanted address that is not freshly resolved.
   */
  poll(): string[] {
    const changed: string[] = [];
    const seen = new Map<string, number>();
    for (const n of native.neighbours(this.ifindex)) {
      const text = formatIp(n.address, n.family);
      seen.set(text, n.state);
      if (!this.wanted.has(text) || !n.mac || !(n.state & USABLE)) continue;
      const before = this.known.get(text);
      if (!before || !before.equals(n.mac)) {
        this.known.set(text, Buffer.from(n.mac));
        changed.push(text);
      }
    }
    for (const [text, addr] of this.wanted) if (!((seen.get(text) ?? 0) & FRESH)) this.probe(addr);
    return changed;
  }

  private probe(addr: IpAddress): void {
    const family = addr.family;
    let s = this.sockets[family];
    if (!s) {
      s = createSocket(family === 4 ? 'udp4' : 'udp6');
      s.on('error', () => undefined); // ICMP unreachable answers are expected
      s.unref();
      this.sockets[family] = s;
    }
    s.send(Buffer.alloc(0), 9, addr.text, () => undefined);
  }

  close(): void {
    this.sockets[4]?.close();
    this.sockets[6]?.close();
  }
}
