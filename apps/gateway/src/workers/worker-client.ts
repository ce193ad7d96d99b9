import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  PROTO_LOADER_OPTIONS,
  WORKER_PROTO_FILE,
  type ChatRequest,
  type ChatResponse,
  type CompleteRequest,
  type CompleteResponse,
  type EmbedRequest,
  type EmbedResponse,
  type GetStatusResponse,
} from '@airlock/contracts';
import { CHANNEL_OPTIONS, startCall } from '../grpc-calls.js';

type Unary<Req, Res> = (
  request: Req,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;
type ServerStream<Req, Res> = (request: Req, options: grpc.CallOptions) => grpc.ClientReadableStream<Res>;

interface WorkerServiceStub extends grpc.Client {
  Chat: ServerStream<ChatRequest, ChatResponse>;
  Complete: ServerStream<CompleteRequest, CompleteResponse>;
  Embed: Unary<EmbedRequest, EmbedResponse>;
  GetStatus: Unary<Record<string, never>, GetStatusResponse>;
}

let stubConstructor:
  (new (address: string, credentials: grpc.ChannelCredentials, options: object) => WorkerServiceStub) | null =
  null;

function workerStub(): NonNullable<typeof stubConstructor> {
  if (!stubConstructor) {
    const loaded = grpc.loadPackageDefinition(
      loadSync(WORKER_PROTO_FILE, PROTO_LOADER_OPTIONS),
    ) as unknown as {
      airlock: { worker: { v1: { WorkerService: NonNullable<typeof stubConstructor> } } };
    };
    stubConstructor = loaded.airlock.worker.v1.WorkerService;
  }
  return stubConstructor;
}

/** A gRPC client of one worker (one channel; calls multiplex over HTTP/2). */
export class WorkerClient {
  private readonly stub: WorkerServiceStub;

  constructor(
    readonly address: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    const Stub = workerStub();
    this.stub = new Stub(address, credentials, {
      ...CHANNEL_OPTIONS,
      // The pool does its own retries across workers; a channel retry would hide a dead worker.
      'grpc.enable_retries': 0,
    });
  }

  /** `tenant` is required here: it scopes the worker's prompt-cache reuse, and no surface may forget it. */
  chat(request: ChatRequest & { tenant: string }, deadline: Date): grpc.ClientReadableStream<ChatResponse> {
    return startCall(() => this.stub.Chat(request, { deadline }));
  }

  complete(
    request: CompleteRequest & { tenant: string },
    deadline: Date,
  ): grpc.ClientReadableStream<CompleteResponse> {
    return startCall(() => this.stub.Complete(request, { deadline }));
  }

  embed(request: EmbedRequest, deadline: Date, signal?: AbortSignal): Promise<EmbedResponse> {
    return unary((cb) => startCall(() => this.stub.Embed(request, { deadline }, cb)), signal);
  }

  getStatus(timeoutMs: number): Promise<GetStatusResponse> {
    return unary((cb) =>
      startCall(() => this.stub.GetStatus({}, { deadline: new Date(Date.now() + timeoutMs) }, cb)),
    );
  }

  close(): void {
    this.stub.close();
  }
}

function unary<Res>(
  start: (callback: (error: grpc.ServiceError | null, response: Res) => void) => grpc.ClientUnaryCall,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = start((error, response) => {
      signal?.removeEventListener('abort', cancel);
      if (error) reject(error);
      else resolve(response);
    });
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
  });
}
