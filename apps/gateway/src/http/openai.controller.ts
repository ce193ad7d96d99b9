import { Controller, Get, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_AUDIT } from '../auth/auth-audit.port.js';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import { CompletionRecorder } from '../auth/completion-recorder.js';
import { GATEWAY_CONFIG } from '../config.js';
import type { GatewayConfig } from '../config.js';
import { ApiError } from '../errors/api-error.js';
import { InferenceService } from '../inference/inference.service.js';
import { parseChatRequest, type RequestLimits } from '../openai/chat-request.js';
import { parseCompletionRequest } from '../openai/completion-request.js';
import { parseEmbeddingRequest } from '../openai/embedding-request.js';
import { WorkerPool } from '../workers/worker-pool.js';
import { authorizeRequest, openStream, promptTokenEstimate, requestLimits } from './http-context.js';

/** The OpenAI-compatible API. Each handler: parse → authorise (audited) → delegate; errors go to the filter. */
@Controller('v1')
export class OpenAiController {
  private readonly limits: RequestLimits;

  constructor(
    private readonly inference: InferenceService,
    private readonly pool: WorkerPool,
    private readonly recorder: CompletionRecorder,
    @Inject(AUTH_AUDIT) private readonly auth: AuthAuditClient,
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
  ) {
    this.limits = requestLimits(config);
    this.maxEmbeddingInputs = config.maxEmbeddingInputs;
    this.maxTokensOf = (model) => config.modelMaxTokens[model] ?? config.maxTokens;
  }

  private readonly maxTokensOf: (model: string) => number;

  /**
   * The budget reservation: the prompt estimate plus the most each choice may generate (the model's
   * limit when the request names no max_tokens), settled to the real usage at completion.
   */
  private reservation(request: FastifyRequest, model: string, choices: number, maxTokens?: number | null) {
    return promptTokenEstimate(request) + choices * (maxTokens || this.maxTokensOf(model));
  }

  private readonly maxEmbeddingInputs: number;

  @Post('chat/completions')
  async chat(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const parsed = parseChatRequest(request.body, this.limits);
    const ctx = await authorizeRequest(this.auth, request, reply, 'chat.completions', parsed.model, {
      early: true,
      recorder: this.recorder,
      endUser: parsed.endUser,
      reserveTokens: this.reservation(request, parsed.model, parsed.n, parsed.request.sampling?.maxTokens),
    });
    const sse = parsed.stream ? openStream(reply) : null;
    const body = await this.inference.chat(parsed, ctx, sse);
    if (body) await reply.code(200).send(body);
  }

  @Post('completions')
  async completions(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const parsed = parseCompletionRequest(request.body, this.limits);
    const ctx = await authorizeRequest(this.auth, request, reply, 'completions', parsed.model, {
      early: true,
      recorder: this.recorder,
      endUser: parsed.endUser,
      reserveTokens: this.reservation(
        request,
        parsed.model,
        parsed.requests.length * parsed.n,
        parsed.requests[0]?.sampling?.maxTokens,
      ),
    });
    const sse = parsed.stream ? openStream(reply) : null;
    const body = await this.inference.completion(parsed, ctx, sse);
    if (body) await reply.code(200).send(body);
  }

  @Post('embeddings')
  async embeddings(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const parsed = parseEmbeddingRequest(request.body, this.maxEmbeddingInputs);
    const ctx = await authorizeRequest(this.auth, request, reply, 'embeddings', parsed.model, {
      early: true,
      recorder: this.recorder,
      endUser: parsed.endUser,
      reserveTokens: promptTokenEstimate(request),
    });
    await reply.code(200).send(await this.inference.embed(parsed, ctx));
  }

  @Get('models')
  async listModels(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const ctx = await authorizeRequest(this.auth, request, reply, 'models.list', '', {
      recorder: this.recorder,
    });
    const allowed = ctx.authorization.allowedModels;
    const body = {
      object: 'list',
      data: this.pool
        .modelIds()
        .filter((id) => !allowed || allowed.includes(id))
        .map(toModelObject),
    };
    this.recordListing(ctx.requestId, ctx.startedAt, 200, body);
    await reply.send(body);
  }

  @Get('models/:id')
  async getModel(
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const ctx = await authorizeRequest(this.auth, request, reply, 'models.list', '', {
      recorder: this.recorder,
    });
    const allowed = ctx.authorization.allowedModels;
    const found = this.pool.modelIds().includes(id) && (!allowed || allowed.includes(id));
    this.recordListing(
      ctx.requestId,
      ctx.startedAt,
      found ? 200 : 404,
      found ? toModelObject(id) : undefined,
    );
    if (!found) throw ApiError.modelNotFound(id);
    await reply.send(toModelObject(id));
  }

  private recordListing(requestId: string, startedAt: number, statusCode: number, body: unknown): void {
    this.recorder.record({
      requestId,
      outcome: statusCode === 200 ? 'success' : 'error',
      statusCode,
      errorClass: statusCode === 200 ? '' : 'model_not_found',
      model: '',
      worker: '',
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      latencyMs: performance.now() - startedAt,
      timeToFirstTokenMs: 0,
      responseBody: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
    });
  }
}

function toModelObject(id: string) {
  return { id, object: 'model', created: 0, owned_by: 'airlock' };
}
