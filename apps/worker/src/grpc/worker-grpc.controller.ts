import { randomUUID } from 'node:crypto';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { Observable } from 'rxjs';
import type {
  ChatRequest,
  ChatResponse,
  CompleteRequest,
  CompleteResponse,
  EmbedRequest,
  EmbedResponse,
  Finish,
  GetStatusResponse,
  TokenizeRequest,
  TokenizeResponse,
} from '@airlock/contracts';
import { ModelFleet } from '../engine/model-fleet.js';
import type { GenerationOptions, ModelEngine } from '../engine/model-engine.js';
import { cancelled } from '../engine/worker-errors.js';
import { UsageReporter } from '../usage/usage-reporter.js';
import { toRpcException } from './grpc-error.js';

/** gRPC handlers: each delegates to the model's runner; errors become gRPC statuses. */
@Controller()
export class WorkerGrpcController {
  constructor(
    @Inject(ModelFleet) private readonly fleet: ModelFleet,
    @Inject(UsageReporter) private readonly usage: UsageReporter,
  ) {}

  @GrpcMethod('WorkerService', 'Chat')
  chat(request: ChatRequest): Observable<ChatResponse> {
    return this.generation(request.model, request.requestId, request.tenant ?? '', (runner, options) =>
      runner.chat(request, options),
    );
  }

  @GrpcMethod('WorkerService', 'Complete')
  complete(request: CompleteRequest): Observable<CompleteResponse> {
    return this.generation(request.model, request.requestId, request.tenant ?? '', (runner, options) =>
      runner.complete(request, options),
    ) as Observable<CompleteResponse>;
  }

  @GrpcMethod('WorkerService', 'Embed')
  async embed(request: EmbedRequest): Promise<EmbedResponse> {
    return this.unary(async () => {
      const response = await this.fleet.runnerFor(request.model).embed(
        request.inputs ?? [],
        (request.tokenInputs ?? []).map((t) => t.ids ?? []),
      );
      this.usage.report({
        requestId: request.requestId ?? '',
        generationId: randomUUID(),
        promptTokens: response.promptTokens,
        completionTokens: 0,
      });
      // The weights the answer came from (the gateway writes them into the audit record).
      return { ...response, model: this.fleet.provenanceOf(request.model) };
    });
  }

  @GrpcMethod('WorkerService', 'Tokenize')
  async tokenize(request: TokenizeRequest): Promise<TokenizeResponse> {
    return this.unary(async () => {
      const tokens = await this.fleet.runnerFor(request.model).tokenize(request.text ?? '');
      return { tokens, count: tokens.length };
    });
  }

  @GrpcMethod('WorkerService', 'GetStatus')
  getStatus(): GetStatusResponse {
    return this.fleet.status();
  }

  private async unary<T>(work: () => Promise<T> | T): Promise<T> {
    const done = this.fleet.track();
    try {
      return await work();
    } catch (error) {
      throw toRpcException(error);
    } finally {
      done();
    }
  }

  /**
   * Streams one generation. Unsubscribing (the client cancelled the call) aborts it: node-llama-cpp checks the
   * signal between tokens, llama-server sees its connection close, and the sequence is released for the next request.
   */
  private generation(
    modelId: string,
    requestId: string | undefined,
    tenant: string,
    run: (runner: ModelEngine, options: GenerationOptions) => Promise<Finish>,
  ): Observable<ChatResponse> {
    return new Observable<ChatResponse>((subscriber) => {
      const abort = new AbortController();
      const done = this.fleet.track();
      let runner: ModelEngine;
      try {
        runner = this.fleet.runnerFor(modelId);
      } catch (error) {
        done();
        subscriber.error(toRpcException(error));
        return undefined;
      }
      const signal = AbortSignal.any([abort.signal, this.fleet.shutdownSignal]);
      // Reported by the worker itself: the usage survives a gateway that dies or a client that cancels.
      const onUsage = (usage: { promptTokens: number; completionTokens: number }) =>
        this.usage.report({ requestId: requestId ?? '', generationId: randomUUID(), ...usage });
      run(runner, { signal, tenant, onUsage, onEvent: (event) => subscriber.next(event) })
        .then((finish) => {
          // The weights this answer came from (the gateway writes them into the audit record).
          subscriber.next({
            event: 'finish',
            finish: { ...finish, model: this.fleet.provenanceOf(modelId) },
          });
          subscriber.complete();
        })
        .catch((error: unknown) => subscriber.error(toRpcException(error)))
        .finally(done);
      return () => abort.abort(cancelled());
    });
  }
}
