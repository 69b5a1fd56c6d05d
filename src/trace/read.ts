// The reads of `xdplb trace` (TraceMaps, trace.ts) from a data plane: each one
// lookup in a map, as the program makes it. Nothing is written.
import {
  decodeDest,
  decodeDestInfo,
  decodeFlow,
  decodeService,
  decodeServiceInfo,
  decodeServiceKey,
  encodeFlowKey,
  encodeServiceKey,
  LAYOUT,
  u32Key,
} from '../dataplane/abi.ts';
import { allKeys, type DataPlane } from '../dataplane/dataplane.ts';
import { native } from '../dataplane/native.ts';
import type { IpAddress } from '../model/address.ts';
import type { ServiceKey } from '../model/keys.ts';
import type { Slot, TraceMaps } from './trace.ts';

export interface TraceContext {
  /** The ifindex of the NIC the program is attached to (pinnedLinkIfindex); null when unknown. */
  ingressIfindex: number | null;
  /** The NIC's own MAC when the program checks frames against it; null when it does not. */
  nicMac: Buffer | null;
}

/** TraceMaps over a data plane's maps (opened from its pins, or loaded). */
export function dataPlaneMaps(dp: DataPlane, ctx: TraceContext): TraceMaps {
  const m = dp.maps;
  let names: Map<number, string> | null = null;
  return {
    maglevSize: dp.capacities.maglevSize,
    nicMac: ctx.nicMac,
    ingressIfindex: ctx.ingressIfindex,
    nowNs: process.hrtime.bigint(),
    vipFilterWord: (word) => m.vip_filter.lookup(u32Key(word))?.readBigUInt64LE(0) ?? 0n,
    serviceIndex: (h) => m.service_index.lookup(u32Key(h))?.readUInt32LE(0) ?? 0,
    serviceEntry: (n) => {
      const e = m.service_entries.lookup(u32Key(n));
      if (!e) return null;
      const o = LAYOUT.service_entry.offsets;
      return { key: decodeServiceKey(e.subarray(o.key, o.key + LAYOUT.service_key.size)), value: decodeService(e.subarray(o.service, o.service + LAYOUT.service.size)) };
    },
    service: (key) => {
      const v = m.services.lookup(encodeServiceKey(key));
      return v && decodeService(v);
    },
    servicesOfVip: (vip: IpAddress) => {
      const out: ServiceKey[] = [];
      for (const k of allKeys(m.services)) {
        const key = decodeServiceKey(k);
        if (key.family === vip.family && key.addr.equals(vip.bytes)) out.push(key);
      }
      return out;
    },
    serviceName: (id) => {
      const v = m.service_info.lookup(u32Key(id));
      return v ? decodeServiceInfo(v).name || null : null;
    },
    slot: (serviceId, index): Slot | null => {
      const inner = m.maglev_tables.lookup(u32Key(serviceId));
      if (!inner) return null;
      const table = native.mapFromId(inner.readUInt32LE(0));
      try {
        const v = table.lookup(u32Key(index));
        return v && { dest: v.readUInt32LE(LAYOUT.slot.offsets.dest), prev: v.readUInt32LE(LAYOUT.slot.offsets.prev_dest) };
      } finally {
        table.close();
      }
    },
    dest: (id) => {
      const value = m.dests.lookup(u32Key(id));
      const info = m.dest_info.lookup(u32Key(id));
      return value && info ? { value: decodeDest(value), info: decodeDestInfo(info) } : null;
    },
    flow: (key) => {
      const v = m.flows.lookup(encodeFlowKey(key));
      return v && decodeFlow(v);
    },
    interfaceName: (ifindex) => {
      if (!names) {
        names = new Map();
        for (const name of native.listInterfaces()) {
          try {
            names.set(native.interfaceInfo(name).ifindex, name);
          } catch {
            /* gone meanwhile */
          }
        }
      }
      return names.get(ifindex) ?? null;
    },
  };
}
