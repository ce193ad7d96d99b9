// An in-process gRPC server speaking airlock.worker.v1 — a FAKE worker for unit tests of routing logic
// only (choice, retries, queueing, cancellation). The end-to-end suite in test/e2e uses the real worker.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  PROTO_LOADER_OPTIONS,
  WORKER_PROTO_FILE,
  type ChatRequest,
  type ChatResponse,
  type GetStatusResponse,
} from '@airlock/contracts';

export interface FakeWorkerBehaviour {
  /** Fail every Chat before its first event with this gRPC status. */
  failWith?: grpc.status;
  /** Text deltas to stream; the stream then waits for `release` when `hold` is set. */
  deltas?: string[];
  hold?: boolean;
  slots?: number;
}

export class FakeWorker {
  readonly server = new grpc.Server();
  address = '';
  chats = 0;
  cancelled = 0;
  busy = 0;
  private holds: (() => void)[] = [];

  constructor(
    readonly id: string,
    public behaviour: FakeWorkerBehaviour = {},
    readonly model = 'm',
  ) {
    const definition = grpc.loadPackageDefinition(
      loadSync(WORKER_PROTO_FILE, PROTO_LOADER_OPTIONS),
    ) as unknown as {
      airlock: { worker: { v1: { WorkerService: { service: grpc.ServiceDefinition } } } };
    };
    this.server.addService(definition.airlock.worker.v1.WorkerService.service, {
      GetStatus: (_call: unknown, callback: grpc.sendUnaryData<GetStatusResponse>) =>
        callback(null, this.status()),
      Chat: (call: grpc.ServerWritableStream<ChatRequest, ChatResponse>) => void this.chat(call),
    });
  }

  /** Plaintext unless given the worker's credentials (an end-to-end test behind an mTLS gateway). */
  async start(credentials = grpc.ServerCredentials.createInsecure()): Promise<string> {
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  releaseAll(): void {
    for (const release of this.holds.splice(0)) release();
  }

  stop(): Promise<void> {
    this.releaseAll();
    this.server.forceShutdown();
    return Promise.resolve();
  }

  private status(): GetStatusResponse {
    return {
      workerId: this.id,
      draining: false,
      models: [
        {
          id: this.model,
          state: 'MODEL_STATE_READY',
          loadProgress: 1,
          error: '',
          slotsTotal: this.behaviour.slots ?? 1,
          slotsBusy: this.busy,
          queueLength: 0,
          queueCapacity: 0,
          kvCacheUsedTokens: 0,
          kvCacheCapacityTokens: 0,
          kvCacheUtilization: 0,
          tokensPerSecond: 0,
          vramUsedBytes: 0,
          ramUsedBytes: 0,
          contextSize: 256,
          servesEmbeddings: false,
          chatFormat: 'fake',
          systemFingerprint: '',
        },
      ],
    };
  }

  private async chat(call: grpc.ServerWritableStream<ChatRequest, ChatResponse>): Promise<void> {
    this.chats++;
    if (this.behaviour.failWith !== undefined) {
      call.emit('error', { code: this.behaviour.failWith, details: 'refused by the fake worker' });
      return;
    }
    this.busy++;
    let cancelled = false;
    call.on('cancelled', () => {
      cancelled = true;
      this.cancelled++;
      this.releaseAll();
    });
    for (const delta of this.behaviour.deltas ?? ['hello'])
      call.write({ event: 'textDelta', textDelta: delta } as never);
    if (this.behaviour.hold) await new Promise<void>((resolve) => this.holds.push(resolve));
    this.busy--;
    if (cancelled) return;
    call.write({
      finish: {
        finishReason: 'FINISH_REASON_STOP',
        usage: { promptTokens: 3, completionTokens: 1, cachedTokens: 0 },
      },
    } as never);
    call.end();
  }
}
