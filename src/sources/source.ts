// Where the director's services come from: the config file's `services:`,
// and (with the Kubernetes mode) the API server. Each source validates its
// services with the one schema; combineServices() checks them against each
// other.
import type { ServiceConfig } from '../config/schema.ts';

export interface ServiceSource {
  /** Names the source in errors and logs ("config /etc/xdplb/config.yaml", "kubernetes"). */
  readonly name: string;
  /** The services it holds now, each valid on its own. */
  services(): readonly ServiceConfig[];
}
