// The API access the director needs, and nothing more: the one definition
// the tests bind to a ServiceAccount, and the deployment's manifests render.
// Each rule says which behaviour needs it.

/** A rule's namespace: the one the component runs in (the chart's release namespace), whatever it is. */
export const OWN_NAMESPACE = '(own namespace)';

export interface Rule {
  /** A namespaced grant (a Role there; OWN_NAMESPACE: where the component runs); absent: cluster-wide (a ClusterRole). */
  readonly namespace?: string;
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  /** The behaviour that fails without it. */
  readonly why: string;
  /** The chart's value that turns that behaviour on, if one does (the chart grants the rule only then). */
  readonly chartValue?: string;
}

export const DIRECTOR_RULES: readonly Rule[] = [
  { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'], why: 'which Services to serve, on which addresses and ports' },
  { apiGroups: [''], resources: ['services/status'], verbs: ['patch'], why: 'write the allocated LoadBalancer address to status.loadBalancer.ingress, and release it' },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'], why: 'which nodes have ready local endpoints (externalTrafficPolicy: Local), and which are terminating' },
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'], why: 'the backends: Ready nodes, their InternalIPs and labels' },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'], why: 'tell the operator, on the Service, what was allocated or refused' },
  { namespace: OWN_NAMESPACE, apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'], why: 'leader election (kubernetes.leaderElection): read, create and renew the Lease that makes one director active', chartValue: 'leaderElection.enabled' },
];

/** The node agent (`xdplb realserver --k8s`): it reads what the director reads, and writes only Events. */
export const AGENT_RULES: readonly Rule[] = [
  { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'], why: 'which VIPs are served' },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'], why: 'the same translation as the director (its services, and so its VIPs)' },
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'], why: 'whether this node is eligible, and its address families' },
  { namespace: 'kube-system', apiGroups: [''], resources: ['configmaps'], verbs: ['get'], why: "kube-proxy's config (kube-system/kube-proxy): IPVS mode without strictARP" },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'], why: 'the strictARP Warning on the Node' },
];
