// Kubernetes objects for the translation's tests, built as the client's model
// types (what the informers hand over), with only the fields a rule reads.
import type { V1EndpointConditions, V1EndpointSlice, V1Node, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { DEFAULT_SETTINGS, type KubernetesSettings } from '../../src/k8s/translate.ts';

/** The settings most tests use: one externalIP range, a tiny pool per family (4 IPv4, 4 IPv6 addresses). */
export const settings: KubernetesSettings = {
  ...DEFAULT_SETTINGS,
  externalIPs: ['198.51.100.0/24'],
  pools: ['203.0.113.0/30', '2001:db8:64::/126'],
};

export interface ServiceOptions {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  externalIPs?: string[];
  ports?: V1ServicePort[];
  /** Minutes after 2026-01-01T00:00Z. */
  created?: number;
  loadBalancerClass?: string;
  loadBalancerIP?: string;
  annotations?: Record<string, string>;
  ipFamilies?: ('IPv4' | 'IPv6')[];
  externalTrafficPolicy?: 'Cluster' | 'Local';
  healthCheckNodePort?: number;
  sessionAffinity?: 'None' | 'ClientIP';
  /** status.loadBalancer.ingress IPs. */
  ingress?: string[];
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A Service "namespace/name"; a LoadBalancer of our class unless told otherwise. */
export function service(key: string, o: ServiceOptions = {}): V1Service {
  const [namespace, name] = key.split('/');
  const type = o.type ?? 'LoadBalancer';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name, creationTimestamp: new Date(T0 + (o.created ?? 0) * 60_000), ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: {
      type,
      ports: o.ports ?? [{ name: 'http', port: 80, protocol: 'TCP' }],
      ipFamilies: o.ipFamilies ?? ['IPv4'],
      ...(o.externalIPs ? { externalIPs: o.externalIPs } : {}),
      ...(type === 'LoadBalancer' ? { loadBalancerClass: o.loadBalancerClass ?? 'xdplb.io/dr' } : {}),
      ...(o.loadBalancerIP ? { loadBalancerIP: o.loadBalancerIP } : {}),
      ...(o.externalTrafficPolicy ? { externalTrafficPolicy: o.externalTrafficPolicy } : {}),
      ...(o.healthCheckNodePort ? { healthCheckNodePort: o.healthCheckNodePort } : {}),
      ...(o.sessionAffinity ? { sessionAffinity: o.sessionAffinity } : {}),
    },
    status: o.ingress ? { loadBalancer: { ingress: o.ingress.map((ip) => ({ ip, ipMode: 'VIP' })) } } : {},
  };
}

/** A classless LoadBalancer (for defaultClass). */
export function classless(s: V1Service): V1Service {
  const { loadBalancerClass: _, ...spec } = s.spec ?? {};
  return { ...s, spec };
}

export interface NodeOptions {
  ready?: boolean;
  labels?: Record<string, string>;
  deleting?: boolean;
  taints?: string[];
}

/** A node with these InternalIPs (and an ExternalIP that must never be used). */
export function node(name: string, internalIPs: string[], o: NodeOptions = {}): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, ...(o.labels ? { labels: o.labels } : {}), ...(o.deleting ? { deletionTimestamp: new Date(T0) } : {}) },
    spec: o.taints ? { taints: o.taints.map((key) => ({ key, effect: 'NoSchedule' })) } : {},
    status: {
      addresses: [{ type: 'Hostname', address: name }, { type: 'ExternalIP', address: '192.0.2.250' }, ...internalIPs.map((address) => ({ type: 'InternalIP', address }))],
      conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

/** An EndpointSlice of Service "namespace/name": one endpoint per [nodeName, conditions]. */
export function slice(key: string, endpoints: [string, V1EndpointConditions][], suffix = 'a'): V1EndpointSlice {
  const [namespace, name] = key.split('/');
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    addressType: 'IPv4',
    metadata: { namespace, name: `${name}-${suffix}`, labels: { 'kubernetes.io/service-name': name ?? '' } },
    endpoints: endpoints.map(([nodeName, conditions], i) => ({ addresses: [`10.244.${i}.10`], nodeName, conditions })),
  };
}

export const READY: V1EndpointConditions = { ready: true, serving: true, terminating: false };
export const TERMINATING: V1EndpointConditions = { ready: false, serving: true, terminating: true };
export const NOT_READY: V1EndpointConditions = { ready: false, serving: false, terminating: false };

/** Three Ready dual-stack nodes. */
export const NODES: V1Node[] = [node('node-a', ['10.0.0.1', 'fd00::1']), node('node-b', ['10.0.0.2', 'fd00::2']), node('node-c', ['10.0.0.3', 'fd00::3'])];
