import { Body, Controller, Get, Inject, Param, Put, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { audit } from '@airlock/contracts';
import { AUTH_AUDIT } from '../auth/auth-audit.port.js';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import { CompletionRecorder } from '../auth/completion-recorder.js';
import { GATEWAY_CONFIG } from '../config.js';
import type { GatewayConfig } from '../config.js';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/error.filter.js';
import { REPLICA_SCALER, scalingUnsupported } from '../workers/replica-scaler.js';
import type { ModelReplicas, ReplicaScaler } from '../workers/replica-scaler.js';
import { WorkerPool } from '../workers/worker-pool.js';
import { parseAdmin, toAdminJson } from './admin-mapping.js';
import { authorizeRequest, bearer } from './http-context.js';

/** The audit action name of a replica change. */
const SCALE_ACTION = 'models.scale';

/**
 * Admin model management: the catalog with every worker's live load and, under Kubernetes discovery, each
 * pool's desired and ready replicas; and scaling a pool. Admin only (auth-audit's `models.manage`).
 */
@Controller('admin/v1/models')
export class AdminModelsController {
  private readonly replicasBody: z.ZodType<{ replicas: number }>;

  constructor(
    @Inject(AUTH_AUDIT) private readonly auth: AuthAuditClient,
    private readonly pool: WorkerPool,
    private readonly recorder: CompletionRecorder,
    @Inject(REPLICA_SCALER) private readonly scaler: ReplicaScaler,
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
  ) {
    this.replicasBody = z.strictObject({
      replicas: z.number().int().min(0).max(config.maxReplicas),
    });
  }

  /** The model catalog with every worker's live status, and replica counts when Kubernetes scales pools. */
  @Get()
  async models(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const ctx = await authorizeRequest(this.auth, request, reply, 'models.manage', '');
    const handles = this.pool.list();
    const pools = this.scaler.deployments();
    const ids = [...new Set([...this.pool.modelIds(), ...pools.keys()])].sort();
    const replicas = await Promise.all(ids.map((id) => this.replicasOf(id, pools.has(id))));
    const body = {
      object: 'list',
      data: ids.map((id, i) => {
        const serving = handles.filter((h) => h.serves(id));
        const live = serving.filter((h) => h.alive).map((h) => h.model(id));
        return {
          id,
          workers: serving.map((h) => h.address),
          queued: this.pool.queuedCount(id),
          load: {
            workers_alive: live.length,
            slots_busy: sum(live.map((m) => m?.slotsBusy ?? 0)),
            slots_total: sum(live.map((m) => m?.slotsTotal ?? 0)),
            worker_queue: sum(live.map((m) => m?.queueLength ?? 0)),
            tokens_per_second: sum(live.map((m) => m?.tokensPerSecond ?? 0)),
          },
          replicas: replicas[i],
        };
      }),
      workers: handles.map((worker) => ({
        address: worker.address,
        worker_id: worker.status?.workerId ?? null,
        alive: worker.alive,
        draining: worker.status?.draining ?? false,
        models: toAdminJson(worker.status?.models ?? []),
      })),
    };
    this.recorder.record({
      requestId: ctx.requestId,
      outcome: 'success',
      statusCode: 200,
      errorClass: '',
      model: '',
      worker: '',
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      latencyMs: performance.now() - ctx.startedAt,
      timeToFirstTokenMs: 0,
      responseBody: Buffer.from(JSON.stringify(body)),
    });
    await reply.send(body);
  }

  /**
   * Sets the replicas of the model's worker Deployment (its scale subresource). Authorize commits the
   * request record before anything changes; the outcome, succeeded or failed, is an admin-action record.
   */
  @Put(':id/replicas')
  async scale(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<unknown> {
    await authorizeRequest(this.auth, request, reply, 'models.manage', id);
    let result: { previous: number; replicas: ModelReplicas };
    try {
      if (!this.scaler.enabled) throw scalingUnsupported();
      const { replicas } = parseAdmin(this.replicasBody, body);
      result = await this.scaler.scale(id, replicas);
    } catch (error) {
      const apiError = toApiError(error);
      const requested = (body as { replicas?: unknown } | null)?.replicas;
      await this.recordScale(request, id, 'OUTCOME_FAILED', apiError.status, apiError.code ?? 'error', {
        requested: typeof requested === 'number' ? requested : null,
      }).catch(() => undefined); // the request record exists already; the client hears the first error
      throw apiError;
    }
    const { previous, replicas } = result;
    await this.recordScale(request, id, 'OUTCOME_SUCCEEDED', 200, '', {
      namespace: replicas.namespace,
      deployment: replicas.deployment,
      from: previous,
      to: replicas.desired,
    }).catch((error: unknown) => {
      // Idempotent: the SDKs retry a 503, which scales to the same count and records it then.
      throw ApiError.unavailable(
        `The replicas of '${id}' were set to ${replicas.desired}, but the audit log could not record the ` +
          `action (${toApiError(error).message}); retry the same request.`,
        'audit_unavailable',
        1,
      );
    });
    return { object: 'model.replicas', ...replicasJson(replicas), previous };
  }

  private async replicasOf(id: string, scalable: boolean): Promise<object | null> {
    if (!scalable) return null;
    try {
      return replicasJson(await this.scaler.read(id));
    } catch (error) {
      // The list still answers when the API server does not: live load matters most in an incident.
      const pool = this.scaler.deployments().get(id);
      return {
        deployment: pool?.deployment ?? null,
        desired: null,
        current: null,
        ready: pool?.readyReplicas ?? 0,
        error: toApiError(error).message,
      };
    }
  }

  private recordScale(
    request: FastifyRequest,
    model: string,
    outcome: audit.Outcome,
    statusCode: number,
    errorClass: string,
    details: Record<string, unknown>,
  ): Promise<audit.AppendAdminActionResponse> {
    const record: audit.AppendAdminActionRequest = {
      credential: bearer(request),
      requestId: request.id,
      action: SCALE_ACTION,
      target: model,
      detailsJson: JSON.stringify(details),
      outcome,
      statusCode,
      errorClass,
      clientAddress: request.ip,
      userAgent: request.headers['user-agent'] ?? '',
    };
    return this.auth.admin<audit.AppendAdminActionResponse>('AppendAdminAction', record);
  }
}

function replicasJson(replicas: ModelReplicas) {
  return {
    model: replicas.model,
    namespace: replicas.namespace,
    deployment: replicas.deployment,
    desired: replicas.desired,
    current: replicas.current,
    ready: replicas.ready,
  };
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
