import type { ChatResponse } from '@airlock/contracts';
import type { CompletionOutcome, ResponseStoreClient } from '../auth/auth-audit.port.js';
import type { CompletionRecorder } from '../auth/completion-recorder.js';
import type { GatewayConfig } from '../config.js';
import { ApiError } from '../errors/api-error.js';
import type { GatewayMetrics } from '../metrics.js';
import {
  newItemId,
  responseOfItem,
  RESPONSE_ID,
  toStoredInputItems,
  type ResponseObject,
} from '../openai/response-object.js';
import { ResponsesEncoder } from '../openai/responses-encoder.js';
import {
  pageOfItems,
  toChatMessages,
  type InputItemsQuery,
  type ParsedResponses,
  type ResponseInputItem,
} from '../openai/responses-request.js';
import type { SseWriter } from '../openai/sse.js';
import { generate } from '../workers/generation.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { Exchange, type RequestContext } from './exchange.js';
import { generationOptions, runGenerations } from './run-loop.js';

/**
 * The Responses API: one generation per response on the shared run loop, the conversation of an earlier
 * stored response prepended (`previous_response_id`), and the answer stored in auth-audit where the
 * tenant's policy keeps content. Every call ends in exactly one audit completion record.
 */
export class ResponsesService {
  constructor(
    private readonly pool: WorkerPool,
    private readonly recorder: CompletionRecorder,
    private readonly metrics: GatewayMetrics,
    private readonly config: GatewayConfig,
    private readonly store: ResponseStoreClient,
  ) {}

  async create(
    parsed: ParsedResponses,
    ctx: RequestContext,
    credential: string,
    sse: SseWriter | null,
  ): Promise<object | void> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    let history: ResponseInputItem[];
    let own: ResponseInputItem[];
    let store: boolean;
    try {
      store = this.storeDecision(parsed, ctx);
      history = parsed.previousResponseId
        ? await this.conversationOf(parsed.previousResponseId, credential)
        : [];
      own = await this.resolveReferences(parsed.input, credential);
    } catch (error) {
      const apiError = error instanceof ApiError ? error : ApiError.internal();
      exchange.finish(apiError.status, 'error', apiError.code ?? '');
      throw apiError;
    }
    const inputItems = [...history, ...toStoredInputItems(own)];
    const request = {
      ...parsed.request,
      messages: toChatMessages(parsed.body.instructions, inputItems),
      requestId: ctx.requestId,
      // The tenant scopes the worker's prompt-cache reuse (as for chat and completions).
      tenant: ctx.authorization.tenant,
    };
    const generation = generate<ChatResponse>(
      this.pool,
      generationOptions(this.config, parsed.model, ctx, exchange),
      (client, deadline) => client.chat(request, deadline),
    );
    const header = { id: newItemId('resp'), createdAt: Math.floor(Date.now() / 1000), store, parsed };
    const save = store
      ? (response: ResponseObject) =>
          this.store.storeResponse(credential, ctx.requestId, response.id, {
            response: Buffer.from(JSON.stringify(response)),
            inputItems: Buffer.from(JSON.stringify(inputItems)),
          })
      : undefined;
    const encoder = new ResponsesEncoder(header, exchange, sse !== null, save);
    return runGenerations(exchange, ctx, [generation], sse, encoder).catch((error: unknown) => {
      // The worker names the chat contract's field; here the conversation is `input`.
      if (error instanceof ApiError && error.param === 'messages') {
        throw new ApiError(error.status, error.type, error.message, error.code, 'input', error.headers);
      }
      throw error;
    });
  }

  async retrieve(id: string, ctx: RequestContext, credential: string): Promise<object> {
    return this.audited(
      ctx,
      async () => JSON.parse((await this.load(id, credential)).response.toString('utf8')) as object,
    );
  }

  async inputItems(
    id: string,
    query: InputItemsQuery,
    ctx: RequestContext,
    credential: string,
  ): Promise<object> {
    return this.audited(ctx, async () => {
      const items = JSON.parse((await this.load(id, credential)).inputItems.toString('utf8')) as {
        id: string;
      }[];
      return pageOfItems(items, query);
    });
  }

  async delete(id: string, ctx: RequestContext, credential: string): Promise<object> {
    return this.audited(ctx, async () => {
      if (!RESPONSE_ID.test(id)) throw notFound(id);
      await this.store.deleteStoredResponse(credential, id);
      return { id, object: 'response', deleted: true };
    });
  }

  /**
   * Stored only where the tenant's content capture is `full`: that is the tenant's consent to keep
   * content, and the content key exists. Unsaid, `store` follows that policy (OpenAI's default is to
   * store); asked for where the policy forbids it, it is a 400 naming the policy.
   */
  private storeDecision(parsed: ParsedResponses, ctx: RequestContext): boolean {
    const capture = ctx.authorization.contentCapture;
    if (parsed.store === true && capture !== 'full') {
      throw ApiError.badRequest(
        `'store' is true, but tenant '${ctx.authorization.tenant}' keeps content as '${capture}' ` +
          "(content_capture); stored responses need content_capture 'full'. Send 'store': false.",
        'store',
        'store_not_allowed',
      );
    }
    return parsed.store ?? capture === 'full';
  }

  /** The earlier response's input and output: what the model saw and said, in order. */
  private async conversationOf(id: string, credential: string): Promise<ResponseInputItem[]> {
    const stored = await this.load(id, credential).catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 404) {
        throw new ApiError(
          404,
          'invalid_request_error',
          `Previous response with id '${id}' not found.`,
          'previous_response_not_found',
          'previous_response_id',
        );
      }
      throw error;
    });
    const input = JSON.parse(stored.inputItems.toString('utf8')) as ResponseInputItem[];
    const response = JSON.parse(stored.response.toString('utf8')) as { output: ResponseInputItem[] };
    return [...input, ...response.output];
  }

  /** `item_reference` items → the output items they name, from the caller's stored responses. */
  private async resolveReferences(
    items: ResponseInputItem[],
    credential: string,
  ): Promise<ResponseInputItem[]> {
    if (!items.some((item) => item.type === 'item_reference')) return items;
    const outputs = new Map<string, Promise<ResponseInputItem[]>>();
    return Promise.all(
      items.map(async (item, index) => {
        if (item.type !== 'item_reference') return item;
        const responseId = responseOfItem(item.id);
        const missing = new ApiError(
          404,
          'invalid_request_error',
          `Item with id '${responseId ? item.id : ''}' not found.`,
          'item_not_found',
          `input[${index}].id`,
        );
        if (!responseId) throw missing;
        if (!outputs.has(responseId)) {
          outputs.set(
            responseId,
            this.load(responseId, credential).then(
              (stored) =>
                (JSON.parse(stored.response.toString('utf8')) as { output: ResponseInputItem[] }).output,
            ),
          );
        }
        const output = await outputs.get(responseId)!.catch(() => {
          throw missing;
        });
        const found = output.find((candidate) => 'id' in candidate && candidate.id === item.id);
        if (!found) throw missing;
        return found;
      }),
    );
  }

  private load(id: string, credential: string) {
    if (!RESPONSE_ID.test(id)) return Promise.reject(notFound(id));
    return this.store.getStoredResponse(credential, id);
  }

  /** Runs a read or delete of a stored response and files its completion record. */
  private async audited(ctx: RequestContext, run: () => Promise<object>): Promise<object> {
    let status = 200;
    let outcome: CompletionOutcome = 'success';
    let errorClass = '';
    let body: object | undefined;
    try {
      body = await run();
      return body;
    } catch (error) {
      const apiError = error instanceof ApiError ? error : ApiError.internal();
      status = apiError.status;
      outcome = 'error';
      errorClass = apiError.code ?? '';
      throw apiError;
    } finally {
      this.recorder.record({
        requestId: ctx.requestId,
        outcome,
        statusCode: status,
        errorClass,
        model: '',
        worker: '',
        promptTokens: 0,
        completionTokens: 0,
        cachedTokens: 0,
        latencyMs: performance.now() - ctx.startedAt,
        timeToFirstTokenMs: 0,
        responseBody: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      });
    }
  }
}

function notFound(id: string): ApiError {
  // The id is echoed only when it has the shape of one (it came from the client).
  const shown = RESPONSE_ID.test(id) ? ` '${id}'` : '';
  return new ApiError(404, 'invalid_request_error', `Response with id${shown} not found.`, 'not_found');
}
