import type {
  ChatRequest,
  ChatResponse,
  CompleteRequest,
  EmbedResponse,
  Finish,
  ModelStatus,
} from '@airlock/contracts';
import type { ModelSpec } from '../catalog/model-catalog.js';

/** Events of one generation, in the order the client sees them. */
export type GenerationEvent = ChatResponse;

export interface GenerationOptions {
  signal: AbortSignal;
  onEvent: (event: GenerationEvent) => void;
  /** The request's tenant: a sequence's kept tokens are reused only for the tenant that left them. */
  tenant: string;
  /**
   * Called once when a generation that held a sequence (slot) ends, however it ends (done, cancelled,
   * failed): its prompt tokens and the tokens generated so far. The worker reports these to auth-audit.
   */
  onUsage?: (usage: { promptTokens: number; completionTokens: number }) => void;
}

/**
 * One model behind the worker's gRPC contract, whatever runs it: node-llama-cpp in process (ModelRunner) or
 * llama.cpp's llama-server as a child process (LlamaServerRunner). The fleet verifies the file (sha256,
 * signature, parts) before either loads it.
 */
export interface ModelEngine {
  readonly spec: ModelSpec;
  readonly ready: boolean;
  /** Not loading (ready or failed). */
  readonly settled: boolean;
  /** Marks the model failed without loading it (e.g. its checksum did not match). */
  fail(reason: string): void;
  chat(request: ChatRequest, options: GenerationOptions): Promise<Finish>;
  complete(request: CompleteRequest, options: GenerationOptions): Promise<Finish>;
  embed(inputs: string[], tokenInputs?: number[][]): Promise<EmbedResponse>;
  tokenize(text: string): number[] | Promise<number[]>;
  status(): ModelStatus;
  /** Refuses queued requests; running generations finish on their own. */
  rejectWaiting(error: Error): void;
  dispose(): Promise<void>;
}
