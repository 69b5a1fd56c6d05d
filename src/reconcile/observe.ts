// observe(): the applied state read back from a pinned data plane, so that a
// restarted daemon continues where the last one stopped (no rewrite, no
// counter reset). Tables are kept as they are; tableInput is unknown (""),
// but the pins record what each table was built from (tableSig), so the
// first plan builds and writes only the tables whose input changed. A long
// service name comes back in the form the pins hold (pinnedServiceName).
import { CONSTANTS, serviceIndexHash } from '../dataplane/abi.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import { formatIp } from '../model/address.ts';
import { serviceKeyText } from '../model/keys.ts';
import { protocolName } from '../model/protocol.ts';
import { emptyApplied, type Applied } from './state.ts';

export function observe(dp: DataPlane): Applied {
  const applied = emptyApplied(CONSTANTS.VIP_FILTER_WORDS);
  applied.filter = dp.readVipFilter();
  const byService = new Map<number, Map<string, number>>();
  for (const { id, value, info } of dp.usedDests()) {
    const address = { text: formatIp(info.addr, info.family), family: info.family, bytes: info.addr };
    applied.dests.set(id, { id, address, value, info });
    if (!byService.has(info.service)) byService.set(info.service, new Map());
    byService.get(info.service)!.set(address.text, id);
  }
  for (const { key, value } of dp.listServices()) {
    const vip = { text: formatIp(key.addr, key.family), family: key.family, bytes: key.addr };
    const keyText = serviceKeyText(protocolName(key.proto), vip, key.port);
    const info = dp.readServiceInfo(value.id);
    applied.services.set(keyText, {
      id: value.id,
      entry: info.entry,
      keyText,
      key,
      name: info.name,
      flags: value.flags,
      seed: value.seed,
      tableInput: '',
      tableSig: info.tableSig,
      signature: '',
      dests: byService.get(value.id) ?? new Map(),
    });
    const h = serviceIndexHash(key);
    const at = dp.readServiceIndex(h);
    if (at !== 0) applied.index.set(h, at);
    // a service the index does not lead to (a write cut short): rebuild it
    if (at !== info.entry && at !== CONSTANTS.SERVICE_INDEX_COLLISION) applied.indexStale = true;
  }
  return applied;
}
