import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { createWorkerClient } from '@airlock/contracts';
import type {
  ChatRequest,
  ChatResponse,
  CompleteRequest,
  GetStatusResponse,
  ModelStatus,
} from '@airlock/contracts';
import { createLogger } from '@airlock/telemetry';
import { startWorkerApp, type WorkerApp } from '../src/worker-app.js';
import type { WorkerSettings } from '../src/config/worker-settings.js';
import { defaultLlamaServerBin } from '../src/engine/llama-server-binary.js';

/** llama-server for `engine: llama-server` models: AIRLOCK_LLAMA_SERVER_BIN, else where the build caches it. */
export const LLAMA_SERVER_BIN = process.env.AIRLOCK_LLAMA_SERVER_BIN ?? defaultLlamaServerBin();

export { TEST_MODELS_DIR as MODELS_DIR, describeWithModels } from '../../../test/support/test-models.js';

/** Everything the worker logged, to check that no prompt or completion text leaks into logs. */
export class CapturedLog extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(chunk.toString());
    done();
  }
  get text(): string {
    return this.lines.join('');
  }
}

export interface StartedWorker {
  app: WorkerApp;
  client: WorkerTestClient;
  log: CapturedLog;
  dataDir: string;
  close(): Promise<void>;
}

/** Starts a real worker in-process from a catalog (YAML text), on free ports, and waits for models to load. */
export async function startTestWorker(
  catalogYaml: string,
  overrides: Partial<WorkerSettings> = {},
): Promise<StartedWorker> {
  const dataDir = mkdtempSync(join(tmpdir(), 'airlock-worker-'));
  const modelsFile = join(dataDir, 'models.yaml');
  writeFileSync(modelsFile, catalogYaml);
  const log = new CapturedLog();
  const app = await startWorkerApp(
    {
      grpcHost: '127.0.0.1',
      grpcPort: 0,
      opsHost: '127.0.0.1',
      opsPort: 0,
      dataDir,
      modelsFile,
      drainTimeoutSeconds: 5,
      workerId: 'test-worker',
      llamaServerBin: LLAMA_SERVER_BIN,
      logLevel: 'info',
      // The worker's own suites call it directly; mTLS from the gateway is tested in test/security and e2e.
      transport: { kind: 'plaintext' },
      ...overrides,
    },
    createLogger({ service: 'worker', level: 'info', destination: log }),
  );
  await app.loaded;
  const client = new WorkerTestClient(`127.0.0.1:${app.grpcPort}`);
  return {
    app,
    client,
    log,
    dataDir,
    async close() {
      client.close();
      await app.close();
    },
  };
}

export interface StreamResult {
  events: ChatResponse[];
  text: string;
  reasoning: string;
  finish?: Extract<ChatResponse, { event: 'finish' }>['finish'];
}

type Stream = NodeJS.ReadableStream & {
  cancel(): void;
  on(event: 'data', listener: (event: ChatResponse) => void): Stream;
};

/** Promise-shaped access to the worker's RPCs over a real gRPC channel. */
export class WorkerTestClient {
  readonly raw: Client & Record<string, unknown>;

  constructor(address: string) {
    this.raw = createWorkerClient(address);
  }

  /** Starts a streaming call; the caller may cancel it. */
  open(method: 'chat' | 'complete', request: ChatRequest | CompleteRequest): Stream {
    return (this.raw[method] as (req: unknown, metadata: Metadata) => Stream).call(
      this.raw,
      request,
      new Metadata(),
    );
  }

  collect(stream: Stream): Promise<StreamResult> {
    const result: StreamResult = { events: [], text: '', reasoning: '' };
    return new Promise((resolve, reject) => {
      stream.on('data', (event: ChatResponse) => {
        result.events.push(event);
        if (event.event === 'textDelta') result.text += event.textDelta;
        if (event.event === 'reasoningDelta') result.reasoning += event.reasoningDelta;
        if (event.event === 'finish') result.finish = event.finish;
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(result));
    });
  }

  chat(request: ChatRequest): Promise<StreamResult> {
    return this.collect(this.open('chat', request));
  }

  complete(request: CompleteRequest): Promise<StreamResult> {
    return this.collect(this.open('complete', request));
  }

  unary<T>(method: 'embed' | 'tokenize' | 'getStatus', request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      (this.raw[method] as (req: object, cb: (error: ServiceError | null, response: T) => void) => void).call(
        this.raw,
        request,
        (error, response) => (error ? reject(error) : resolve(response)),
      );
    });
  }

  async modelStatus(id: string): Promise<ModelStatus> {
    const response = await this.unary<GetStatusResponse>('getStatus', {});
    const model = response.models.find((m) => m.id === id);
    if (!model) throw new Error(`no status for ${id}`);
    return model;
  }

  close(): void {
    this.raw.close();
  }
}

/** Resolves once the stream has delivered its first event (the generation holds a sequence by then). */
export function firstEvent(stream: Stream): Promise<ChatResponse> {
  return new Promise((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
  });
}

/** Polls until the check passes (or fails the test after `timeoutMs`): for state that settles asynchronously. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

export function grpcCode(error: unknown): status | undefined {
  return (error as ServiceError).code;
}

export function grpcReason(error: unknown): string | undefined {
  return (error as ServiceError).metadata?.get('airlock-reason')[0]?.toString();
}
