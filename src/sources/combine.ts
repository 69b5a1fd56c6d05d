// The services of every source, as one set: each source's services are valid
// on their own (the schema checked them); here they are checked against each
// other. Two sources that claim the same service name, or the same VIP,
// protocol and port, are refused with an error that names both; so is a set
// larger than the data plane's capacity. Pure.
import type { Config, ServiceConfig } from '../config/schema.ts';
import { XdplbError } from '../errors.ts';
import { mustParseIp } from '../model/address.ts';
import { serviceKeyText } from '../model/keys.ts';
import type { ServiceSource } from './source.ts';

export function combineServices(sources: readonly ServiceSource[], capacity: Config['capacity']): readonly ServiceConfig[] {
  if (sources.length === 1) return sources[0]!.services(); // checked whole by the schema already
  const byName = new Map<string, string>();
  const byKey = new Map<string, { source: string; name: string }>();
  const problems: string[] = [];
  const all: ServiceConfig[] = [];
  let backends = 0;
  for (const source of sources)
    for (const s of source.services()) {
      const sameName = byName.get(s.name);
      if (sameName !== undefined) problems.push(`service ${s.name} is defined by ${sameName} and by ${source.name}`);
      byName.set(s.name, source.name);
      const key = serviceKeyText(s.protocol, mustParseIp(s.vip), s.port);
      const other = byKey.get(key);
      if (other) problems.push(`${key} is claimed by ${other.source} (service ${other.name}) and by ${source.name} (service ${s.name})`);
      else byKey.set(key, { source: source.name, name: s.name });
      backends += s.backends.length;
      all.push(s);
    }
  if (all.length > capacity.services - 1) problems.push(`${all.length} services from ${sources.map((s) => s.name).join(' and ')} exceed capacity.services - 1 (${capacity.services - 1})`);
  if (backends > capacity.backends - 1) problems.push(`${backends} backends in all exceed capacity.backends - 1 (${capacity.backends - 1})`);
  if (problems.length > 0) throw new XdplbError('CONFIG_INVALID', `the services of ${sources.map((s) => s.name).join(' and ')} conflict:\n  ${problems.join('\n  ')}`, problems);
  return all;
}
