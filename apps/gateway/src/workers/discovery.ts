import type { Logger } from '@airlock/telemetry';
import type { GatewayConfig } from '../config.js';
import { UnsupportedScaler, type ReplicaScaler } from './replica-scaler.js';
import type { WorkerPool } from './worker-pool.js';

/** Where workers come from, and what can scale them (Kubernetes only). */
export interface Discovery {
  readonly scaler: ReplicaScaler;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Feeds the pool its workers: a fixed list, or the EndpointSlices of the labelled worker Services. Built
 * before the HTTP app (the admin API needs the scaler), started after it listens.
 */
export async function createDiscovery(
  config: GatewayConfig,
  pool: WorkerPool,
  logger: Logger,
): Promise<Discovery> {
  const discovery = config.discovery;
  if (discovery.kind === 'static') {
    return {
      scaler: new UnsupportedScaler(),
      start: () => {
        pool.setEndpoints(discovery.workers.map((address) => ({ address })));
        return Promise.resolve();
      },
      stop: () => Promise.resolve(),
    };
  }
  // Loaded only when used: the Kubernetes client is large and static setups never need it.
  const [{ kubeConfigFor }, { KubernetesDiscovery }, { KubernetesReplicaScaler }] = await Promise.all([
    import('./kubernetes-config.js'),
    import('./kubernetes-discovery.js'),
    import('./kubernetes-scaler.js'),
  ]);
  const kubeconfig = kubeConfigFor(discovery);
  const kubernetes = new KubernetesDiscovery(discovery, pool, logger, kubeconfig);
  return {
    scaler: new KubernetesReplicaScaler(kubeconfig, discovery.namespace, () => kubernetes.deployments()),
    start: () => kubernetes.start(),
    stop: () => kubernetes.stop(),
  };
}
