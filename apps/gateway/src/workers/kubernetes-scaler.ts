import * as k8s from '@kubernetes/client-node';
import { ApiError } from '../errors/api-error.js';
import type { ModelReplicas, ReplicaScaler, WorkerDeployment } from './replica-scaler.js';

/**
 * Scales worker pools through the `scale` subresource of their Deployments, in the gateway's own namespace
 * (the chart's Role grants exactly get and patch on deployments/scale of the worker Deployments). Which
 * Deployment serves a model comes from discovery: the chart gives a pool's Service and Deployment the
 * same name, and the Service's EndpointSlices carry it as `kubernetes.io/service-name`.
 */
export class KubernetesReplicaScaler implements ReplicaScaler {
  readonly enabled = true;
  private readonly api: k8s.AppsV1Api;

  constructor(
    kubeconfig: k8s.KubeConfig,
    private readonly namespace: string,
    private readonly directory: () => Map<string, WorkerDeployment>,
  ) {
    this.api = kubeconfig.makeApiClient(k8s.AppsV1Api);
  }

  deployments(): Map<string, WorkerDeployment> {
    return this.directory();
  }

  async read(model: string): Promise<ModelReplicas> {
    const pool = this.find(model);
    const scale = await this.api
      .readNamespacedDeploymentScale({ name: pool.deployment, namespace: this.namespace })
      .catch((error: unknown) => {
        throw kubernetesError(error, pool.deployment);
      });
    return this.counts(pool, scale);
  }

  async scale(model: string, replicas: number): Promise<{ previous: number; replicas: ModelReplicas }> {
    const before = await this.read(model);
    const pool = this.find(model);
    // A merge patch, as `kubectl scale` sends: a JSON patch "replace" fails on a Scale at zero replicas,
    // whose spec.replicas is omitted.
    const scale = await this.api
      .patchNamespacedDeploymentScale(
        { name: pool.deployment, namespace: this.namespace, body: { spec: { replicas } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch((error: unknown) => {
        throw kubernetesError(error, pool.deployment);
      });
    return { previous: before.desired, replicas: this.counts(pool, scale) };
  }

  private find(model: string): WorkerDeployment {
    const pool = this.directory().get(model);
    if (!pool) {
      throw new ApiError(
        404,
        'not_found_error',
        `No worker Deployment serves the model '${model}' in namespace '${this.namespace}'.`,
        'model_not_found',
      );
    }
    return pool;
  }

  private counts(pool: WorkerDeployment, scale: k8s.V1Scale): ModelReplicas {
    return {
      model: pool.model,
      namespace: this.namespace,
      deployment: pool.deployment,
      desired: scale.spec?.replicas ?? 0,
      current: scale.status?.replicas ?? 0,
      ready: pool.readyReplicas,
    };
  }
}

/** A failed Kubernetes API call → the error the admin sees; no API server internals beyond the status. */
function kubernetesError(error: unknown, deployment: string): ApiError {
  // Duck-typed like the gRPC errors: client-node's ApiException carries the HTTP status as a number.
  const status = (error as { code?: unknown } | null)?.code;
  const code = typeof status === 'number' ? status : undefined;
  if (code === 404) {
    return new ApiError(
      404,
      'not_found_error',
      `The worker Deployment '${deployment}' does not exist.`,
      'deployment_not_found',
    );
  }
  if (code === 401 || code === 403) {
    return new ApiError(
      502,
      'server_error',
      "The Kubernetes API refused the gateway's service account: it needs get and patch on " +
        `deployments/scale of '${deployment}'.`,
      'kubernetes_forbidden',
    );
  }
  if (code === 409) {
    return new ApiError(409, 'invalid_request_error', 'The Deployment changed meanwhile; retry.', 'conflict');
  }
  return ApiError.unavailable(
    code === undefined
      ? 'The Kubernetes API could not be reached.'
      : `The Kubernetes API answered ${code} to the scale request.`,
    'kubernetes_unavailable',
    1,
  );
}
