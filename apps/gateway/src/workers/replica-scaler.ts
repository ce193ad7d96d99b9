import { ApiError } from '../errors/api-error.js';

/** A model's worker pool as discovery sees it: its Deployment and how many of its pods are ready. */
export interface WorkerDeployment {
  model: string;
  deployment: string;
  /** Ready endpoints of the pool's Service: pods that pass their readiness probe. */
  readyReplicas: number;
}

/** Replica counts of one pool: desired (the Deployment's spec), current (pods that exist) and ready. */
export interface ModelReplicas {
  model: string;
  namespace: string;
  deployment: string;
  desired: number;
  current: number;
  ready: number;
}

/** Reads and changes the replica count of the worker Deployment that serves a model. */
export interface ReplicaScaler {
  /** False with static discovery: there is no Deployment to scale, and every call throws a 501. */
  readonly enabled: boolean;
  /** The worker pools discovery knows, by model id (including pools scaled to zero). */
  deployments(): Map<string, WorkerDeployment>;
  /** Throws ApiError 404 for a model with no worker Deployment. */
  read(model: string): Promise<ModelReplicas>;
  /** Sets the desired replicas; answers the count before and the state after. */
  scale(model: string, replicas: number): Promise<{ previous: number; replicas: ModelReplicas }>;
}

export const SCALING_NEEDS_KUBERNETES =
  'Scaling needs Kubernetes discovery (AIRLOCK_DISCOVERY=kubernetes): with a static worker list ' +
  '(AIRLOCK_WORKERS) the gateway has no Deployment to scale; change the number of workers where they run.';

/** Static discovery: nothing to scale. */
export class UnsupportedScaler implements ReplicaScaler {
  readonly enabled = false;

  deployments(): Map<string, WorkerDeployment> {
    return new Map();
  }

  read(): Promise<ModelReplicas> {
    return Promise.reject(scalingUnsupported());
  }

  scale(): Promise<{ previous: number; replicas: ModelReplicas }> {
    return Promise.reject(scalingUnsupported());
  }
}

/** 501: the feature exists, but not with this gateway's discovery. */
export function scalingUnsupported(): ApiError {
  return new ApiError(501, 'invalid_request_error', SCALING_NEEDS_KUBERNETES, 'scaling_unsupported');
}

/** DI token of the ReplicaScaler. */
export const REPLICA_SCALER = Symbol('REPLICA_SCALER');
