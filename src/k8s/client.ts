// Where the API server is and who the director is to it: the kubeconfig
// named in the settings (or by --kubeconfig), else the in-cluster
// ServiceAccount (a director running as a Pod), else $KUBECONFIG. Nothing
// else is guessed: ~/.kube/config and localhost:8080, which the client would
// fall back to, are refused, so a daemon never serves a cluster nobody named.
import { existsSync, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { errorMessage, XdplbError } from '../errors.ts';

/** The ServiceAccount token a Pod is given: its presence (with KUBERNETES_SERVICE_HOST) means "in a cluster". */
export const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** The namespace of that ServiceAccount (the Pod's). */
const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface ClusterAccess {
  readonly kubeconfig: KubeConfig;
  /** Where it came from, for logs and status ("/etc/xdplb/kubeconfig", "in-cluster ServiceAccount", "$KUBECONFIG"). */
  readonly from: string;
  /** The API server's URL. */
  readonly server: string;
  /** The namespace this access works in by default: the Pod's in a cluster, else the kubeconfig context's, else default. */
  readonly namespace: string;
}

/** Loads the cluster's access; throws CONFIG_INVALID naming the kubeconfig and what is wrong with it. */
export function clusterAccess(path: string | undefined, env: NodeJS.ProcessEnv = process.env, inCluster = existsSync(IN_CLUSTER_TOKEN)): ClusterAccess {
  const kc = new KubeConfig();
  let from: string;
  try {
    if (path !== undefined) {
      from = path;
      kc.loadFromFile(path);
    } else if (env.KUBERNETES_SERVICE_HOST && inCluster) {
      from = 'in-cluster ServiceAccount';
      kc.loadFromCluster();
    } else if (env.KUBECONFIG) {
      from = `$KUBECONFIG (${env.KUBECONFIG})`;
      kc.loadFromDefault(); // reads $KUBECONFIG (a ':'-separated list), first
    } else {
      throw new XdplbError(
        'CONFIG_INVALID',
        'kubernetes: no cluster to watch: set kubernetes.kubeconfig (or give --kubeconfig), run the director in the cluster (a ServiceAccount token at ' + IN_CLUSTER_TOKEN + '), or set $KUBECONFIG',
      );
    }
  } catch (err) {
    if (err instanceof XdplbError) throw err;
    // the YAML parser's message ends in a drawing of where it stopped: its first line says what was wrong
    throw new XdplbError('CONFIG_INVALID', `kubernetes: cannot read the kubeconfig ${from!}: ${errorMessage(err).split('\n')[0]}`, [], { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server) throw new XdplbError('CONFIG_INVALID', `kubernetes: the kubeconfig ${from} has no current context with a cluster and server`);
  const own = from === 'in-cluster ServiceAccount' && existsSync(IN_CLUSTER_NAMESPACE) ? readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() : kc.getContextObject(kc.getCurrentContext())?.namespace;
  return { kubeconfig: kc, from, server: cluster.server, namespace: own || 'default' };
}
