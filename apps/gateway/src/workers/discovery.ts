import type { Logger } from '@airlock/telemetry';
import type { GatewayConfig } from '../config.js';
import type { WorkerPool } from './worker-pool.js';

export interface Discovery {
  stop(): Promise<void>;
}

/** Feeds the pool its workers: a fixed list, or the EndpointSlices of the labelled worker Services. */
export async function startDiscovery(
  config: GatewayConfig,
  pool: WorkerPool,
  logger: Logger,
): Promise<Discovery> {
  const discovery = config.discovery;
  if (discovery.kind === 'static') {
    pool.setEndpoints(discovery.workers.map((address) => ({ address })));
    return { stop: () => Promise.resolve() };
  }
  // Loaded only when used: the Kubernetes client is large and static setups never need it.
  const { KubernetesDiscovery } = await import('./kubernetes-discovery.js');
  const kubernetes = new KubernetesDiscovery(discovery, pool, logger);
  await kubernetes.start();
  return kubernetes;
}
