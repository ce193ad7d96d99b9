import type { ChatResponse, CompleteResponse, EmbedResponse, ModelProvenance } from '@airlock/contracts';
import type { CompletionRecorder } from '../auth/completion-recorder.js';
import type { GatewayConfig } from '../config.js';
import type { GatewayMetrics } from '../metrics.js';
import { ChatEncoder } from '../openai/chat-encoder.js';
import type { ParsedChat } from '../openai/chat-request.js';
import { CompletionEncoder } from '../openai/completion-encoder.js';
import type { ParsedCompletion } from '../openai/completion-request.js';
import type { ParsedEmbedding } from '../openai/embedding-request.js';
import { toOpenAiVector } from '../openai/embedding-vectors.js';
import type { ResponseIdentity } from '../openai/responses.js';
import type { SseWriter } from '../openai/sse.js';
import { generate } from '../workers/generation.js';
import { isRetryable, isWorkerDown, workerErrorToApiError } from '../workers/worker-errors.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { Exchange, type RequestContext } from './exchange.js';
import { generationOptions, runGenerations } from './run-loop.js';

/**
 * Runs OpenAI requests on the worker pool: n choices per request as parallel generations, streamed as
 * server-sent events or collected into one response, each request ending in exactly one audit record.
 */
export class InferenceService {
  constructor(
    private readonly pool: WorkerPool,
    private readonly recorder: CompletionRecorder,
    private readonly metrics: GatewayMetrics,
    private readonly config: GatewayConfig,
  ) {}

  async chat(parsed: ParsedChat, ctx: RequestContext, sse: SseWriter | null): Promise<object | void> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    const identity = this.identity(`chatcmpl-${ctx.requestId}`, parsed.model, parsed);
    // The tenant scopes the worker's prompt-cache reuse; each choice samples with its own seed.
    const tenant = ctx.authorization.tenant;
    const generations = parsed.seeds.map((seed) => {
      const request = {
        ...parsed.request,
        requestId: ctx.requestId,
        tenant,
        sampling: { ...parsed.request.sampling, seed },
      };
      return generate<ChatResponse>(
        this.pool,
        this.generationOptions(parsed.model, ctx, exchange, identity, parsed.cacheKey),
        (client, deadline) => client.chat(request, deadline),
      );
    });
    const encoder = new ChatEncoder(
      identity,
      exchange,
      parsed.n,
      sse !== null,
      parsed.includeUsage,
      parsed.logprobs,
    );
    return runGenerations(exchange, ctx, generations, sse, encoder);
  }

  async completion(
    parsed: ParsedCompletion,
    ctx: RequestContext,
    sse: SseWriter | null,
  ): Promise<object | void> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    const identity = this.identity(`cmpl-${ctx.requestId}`, parsed.model, parsed);
    const requests = parsed.requests.flatMap((r) =>
      Array.from({ length: parsed.n }, () => ({
        ...r,
        requestId: ctx.requestId,
        tenant: ctx.authorization.tenant,
      })),
    );
    const generations = requests.map((request, index) => {
      const seeded = { ...request, sampling: { ...request.sampling, seed: parsed.seeds[index] } };
      return generate<CompleteResponse>(
        this.pool,
        this.generationOptions(parsed.model, ctx, exchange, identity),
        (client, deadline) => client.complete(seeded, deadline),
      );
    });
    const encoder = new CompletionEncoder(
      identity,
      exchange,
      requests.length,
      parsed.n,
      parsed.includeUsage,
      parsed.logprobs,
    );
    return runGenerations(exchange, ctx, generations, sse, encoder);
  }

  async embed(parsed: ParsedEmbedding, ctx: RequestContext): Promise<object> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    try {
      const response = await this.embedWithRetry(parsed, ctx, exchange);
      exchange.usage.promptTokens = response.promptTokens;
      exchange.onFinish(response.model);
      const body = {
        object: 'list',
        model: parsed.model,
        data: response.embeddings.map((e, index) => {
          const vector = toOpenAiVector(e.values, parsed.dimensions);
          return {
            object: 'embedding',
            index,
            embedding:
              parsed.encoding === 'base64'
                ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
                : vector,
          };
        }),
        usage: { prompt_tokens: response.promptTokens, total_tokens: response.promptTokens },
      };
      exchange.finish(200, 'success', '', body);
      return body;
    } catch (error) {
      const apiError = workerErrorToApiError(error);
      const gone = ctx.clientGone();
      exchange.finish(
        gone ? 499 : apiError.status,
        gone ? 'cancelled' : 'error',
        gone ? 'client_closed_request' : (apiError.code ?? ''),
      );
      throw apiError;
    }
  }

  private async embedWithRetry(
    parsed: ParsedEmbedding,
    ctx: RequestContext,
    exchange: Exchange,
  ): Promise<EmbedResponse> {
    const tried = new Set<string>();
    const deadline = new Date(Date.now() + this.config.requestTimeoutMs);
    let lastError: unknown = null;
    for (let attempt = 1; ; attempt++) {
      const lease = await this.pool.acquire(parsed.model, tried, ctx.abort.signal).catch((error: unknown) => {
        throw lastError === null ? error : workerErrorToApiError(lastError);
      });
      tried.add(lease.worker.address);
      exchange.onWorker(lease.worker.address, lease.worker.model(parsed.model)?.provenance);
      try {
        return await lease.worker.client.embed(
          { ...parsed.request, requestId: ctx.requestId },
          deadline,
          ctx.abort.signal,
        );
      } catch (error) {
        if (isWorkerDown(error)) this.pool.markFailed(lease.worker);
        if (!isRetryable(error) || attempt >= this.config.workerAttempts || ctx.abort.signal.aborted)
          throw error;
        lastError = error;
      } finally {
        lease.release();
      }
    }
  }

  private generationOptions(
    model: string,
    ctx: RequestContext,
    exchange: Exchange,
    identity: ResponseIdentity,
    cacheKey = '',
  ) {
    return {
      ...generationOptions(this.config, model, ctx, exchange),
      onWorker: (address: string, served?: ModelProvenance | null) => {
        exchange.onWorker(address, served);
        identity.systemFingerprint ??= this.fingerprintOf(address, model);
      },
      // Scoped to the tenant: a key names a cache only among its own tenant's requests.
      cacheKey: cacheKey ? `${ctx.authorization.tenant}\u0000${cacheKey}` : '',
    };
  }

  /** The serving worker's fingerprint of this model's build, as its last status reported it. */
  private fingerprintOf(address: string, model: string): string | null {
    const worker = this.pool.list().find((w) => w.address === address);
    return worker?.model(model)?.systemFingerprint || null;
  }

  private identity(
    id: string,
    model: string,
    options: { includeUsage: boolean; includeObfuscation: boolean },
  ): ResponseIdentity {
    return {
      id,
      created: Math.floor(Date.now() / 1000),
      model,
      systemFingerprint: null,
      includeUsage: options.includeUsage,
      obfuscate: options.includeObfuscation,
    };
  }
}
