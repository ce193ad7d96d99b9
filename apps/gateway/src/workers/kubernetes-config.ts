import * as k8s from '@kubernetes/client-node';
import type { GatewayConfig } from '../config.js';

export type KubernetesSource = Extract<GatewayConfig['discovery'], { kind: 'kubernetes' }>;

/**
 * The API client configuration shared by discovery and scaling: the pod's service account in a cluster,
 * or an explicit server (the tests' fake API server).
 */
export function kubeConfigFor(source: KubernetesSource): k8s.KubeConfig {
  const kubeconfig = new k8s.KubeConfig();
  if (source.kubeconfig) {
    kubeconfig.loadFromOptions({
      clusters: [{ name: 'airlock', server: source.kubeconfig.server, skipTLSVerify: true }],
      users: [{ name: 'airlock' }],
      contexts: [{ name: 'airlock', cluster: 'airlock', user: 'airlock' }],
      currentContext: 'airlock',
    });
  } else {
    kubeconfig.loadFromCluster();
  }
  return kubeconfig;
}
