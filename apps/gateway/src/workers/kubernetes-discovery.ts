import * as k8s from '@kubernetes/client-node';
import type { Logger } from '@airlock/telemetry';
import { kubeConfigFor, type KubernetesSource } from './kubernetes-config.js';
import type { WorkerDeployment } from './replica-scaler.js';
import type { WorkerEndpoint, WorkerPool } from './worker-pool.js';

/** The Service label that names the model its workers serve (mirrored onto its EndpointSlices). */
export const MODEL_LABEL = 'airlock.dev/model';
/** Set on every EndpointSlice by the EndpointSlice controller: the Service the slice belongs to. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** The Service port name the worker's gRPC listens on; the first port when none has this name. */
const GRPC_PORT_NAME = 'grpc';
const RESTART_DELAY_MS = 2000;

/**
 * Workers from the EndpointSlices of the labelled worker Services, kept current by a list+watch
 * informer (client-node re-lists on 410 Gone and resumes from bookmarks). Only ready endpoints are used.
 */
export class KubernetesDiscovery {
  private readonly informer: k8s.Informer<k8s.V1EndpointSlice> & k8s.ObjectCache<k8s.V1EndpointSlice>;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: KubernetesSource,
    private readonly pool: WorkerPool,
    private readonly logger: Logger,
    kubeconfig: k8s.KubeConfig = kubeConfigFor(source),
  ) {
    const api = kubeconfig.makeApiClient(k8s.DiscoveryV1Api);
    const { namespace, selector } = source;
    this.informer = k8s.makeInformer(
      kubeconfig,
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
      () => api.listNamespacedEndpointSlice({ namespace, labelSelector: selector }),
      selector,
    );
    const sync = (): void => this.sync();
    this.informer.on('add', sync);
    this.informer.on('update', sync);
    this.informer.on('delete', sync);
    this.informer.on('error', (error: unknown) => {
      if (this.stopped) return;
      this.logger.warn({ err: (error as Error)?.message }, 'endpointslice watch failed; restarting');
      this.restartTimer = setTimeout(
        () =>
          void this.informer
            .start()
            .catch((restartError: unknown) =>
              this.logger.warn(
                { err: (restartError as Error)?.message },
                'endpointslice watch restart failed',
              ),
            ),
        RESTART_DELAY_MS,
      );
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.sync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.informer.stop().catch(() => undefined);
  }

  /** The worker pools behind the watched slices, by model (for scaling and the admin model list). */
  deployments(): Map<string, WorkerDeployment> {
    return workerDeploymentsOf(this.informer.list());
  }

  private sync(): void {
    const endpoints = endpointsOf(this.informer.list());
    this.logger.info({ workers: endpoints.length }, 'worker endpoints updated');
    this.pool.setEndpoints(endpoints);
  }
}

/** Ready endpoint addresses of the slices, with the model from the slice's (mirrored Service) label. */
export function endpointsOf(slices: readonly k8s.V1EndpointSlice[]): WorkerEndpoint[] {
  const found = new Map<string, WorkerEndpoint>();
  for (const slice of slices) {
    const model = slice.metadata?.labels?.[MODEL_LABEL];
    const port = (slice.ports ?? []).find((p) => p.name === GRPC_PORT_NAME) ?? slice.ports?.[0];
    if (!port?.port) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      for (const ip of endpoint.addresses.slice(0, 1)) {
        const host = ip.includes(':') ? `[${ip}]` : ip;
        const address = `${host}:${port.port}`;
        found.set(address, { address, ...(model ? { model } : {}) });
      }
    }
  }
  return [...found.values()].sort((a, b) => a.address.localeCompare(b.address));
}

/**
 * Model → worker Deployment, from the slices' labels: the chart names a pool's Deployment like its Service.
 * Placeholder slices (a Service with no pods) keep a pool scaled to zero visible. Ready replicas are the
 * ready endpoints across the Service's slices.
 */
export function workerDeploymentsOf(slices: readonly k8s.V1EndpointSlice[]): Map<string, WorkerDeployment> {
  const pools = new Map<string, WorkerDeployment>();
  const sorted = [...slices].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  for (const slice of sorted) {
    const model = slice.metadata?.labels?.[MODEL_LABEL];
    const deployment = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!model || !deployment) continue;
    const pool = pools.get(model) ?? { model, deployment, readyReplicas: 0 };
    // Two Services claiming one model: the first (by slice name) wins, deterministically.
    if (pool.deployment !== deployment) continue;
    pool.readyReplicas += (slice.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length;
    pools.set(model, pool);
  }
  return pools;
}
