// Hand-kept TypeScript shapes of airlock.worker.v1, as @grpc/proto-loader decodes them with
// PROTO_LOADER_OPTIONS: camelCase fields, enums as their names, 64-bit integers as numbers,
// a oneof's chosen member named in its `event` field. Keep in step with worker_service.proto.

export type ChatRole =
  'CHAT_ROLE_UNSPECIFIED' | 'CHAT_ROLE_SYSTEM' | 'CHAT_ROLE_USER' | 'CHAT_ROLE_ASSISTANT' | 'CHAT_ROLE_TOOL';
export type ReasoningEffort =
  | 'REASONING_EFFORT_UNSPECIFIED'
  | 'REASONING_EFFORT_LOW'
  | 'REASONING_EFFORT_MEDIUM'
  | 'REASONING_EFFORT_HIGH'
  | 'REASONING_EFFORT_NONE';
/** The `airlock-reason` trailer values (ErrorReason names without their prefix). */
export type WorkerErrorReason =
  | 'MODEL_NOT_FOUND'
  | 'MODEL_NOT_READY'
  | 'QUEUE_FULL'
  | 'DRAINING'
  | 'INVALID_ARGUMENT'
  | 'CONTEXT_LENGTH_EXCEEDED'
  | 'EMBEDDINGS_NOT_SERVED'
  | 'FEATURE_NOT_SUPPORTED'
  | 'GENERATION_FAILED'
  | 'CANCELLED'
  | 'INTERNAL';
export type ToolChoiceMode =
  | 'TOOL_CHOICE_MODE_UNSPECIFIED'
  | 'TOOL_CHOICE_MODE_AUTO'
  | 'TOOL_CHOICE_MODE_NONE'
  | 'TOOL_CHOICE_MODE_REQUIRED';
export type FinishReason =
  | 'FINISH_REASON_UNSPECIFIED'
  | 'FINISH_REASON_STOP'
  | 'FINISH_REASON_LENGTH'
  | 'FINISH_REASON_TOOL_CALLS'
  | 'FINISH_REASON_CANCELLED';
export type ModelState =
  'MODEL_STATE_UNSPECIFIED' | 'MODEL_STATE_LOADING' | 'MODEL_STATE_READY' | 'MODEL_STATE_FAILED';

export interface ToolCall {
  id: string;
  name: string;
  argumentsJson: string;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
  name?: string;
}

export interface ToolDefinition {
  name: string;
  description?: string;
  parametersJsonSchema?: string;
}

export interface SamplingParams {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  maxTokens?: number;
  stop?: string[];
  frequencyPenalty?: number;
  presencePenalty?: number;
  repeatPenalty?: number;
  jsonSchema?: string;
  jsonObject?: boolean;
  logitBias?: TokenBias[];
  logprobs?: boolean;
  topLogprobs?: number;
  maxTokensLimit?: number;
}

export interface TokenBias {
  token: number;
  bias: number;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: Buffer | Uint8Array;
}

export interface TokenLogprob extends TopLogprob {
  topLogprobs: TopLogprob[];
}

export interface LogprobsDelta {
  tokens: TokenLogprob[];
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

/** Which weights answered: the file's SHA-256 and, when signed and verified, the signer's key fingerprint. */
export interface ModelProvenance {
  sha256: string;
  /** `sha256:<hex>` of the trusted public key; '' for a model loaded without a signature. */
  signer: string;
}

export interface Finish {
  finishReason: FinishReason;
  usage: Usage;
  timeToFirstTokenMs: number;
  queueWaitMs: number;
  /** null when the worker sent none (an older worker). */
  model?: ModelProvenance | null;
}

export interface ChatRequest {
  model: string;
  requestId?: string;
  messages: ChatMessage[];
  sampling?: SamplingParams;
  tools?: ToolDefinition[];
  toolChoiceMode?: ToolChoiceMode;
  toolChoiceFunction?: string;
  reasoningEffort?: ReasoningEffort;
  /** Prompt-cache reuse is scoped to this tenant. */
  tenant?: string;
  maxToolCalls?: number;
}

export type ChatResponse =
  | { event: 'textDelta'; textDelta: string }
  | { event: 'reasoningDelta'; reasoningDelta: string }
  | { event: 'toolCall'; toolCall: ToolCall }
  | { event: 'finish'; finish: Finish }
  | { event: 'logprobs'; logprobs: LogprobsDelta };

export interface CompleteRequest {
  model: string;
  requestId?: string;
  prompt: string;
  sampling?: SamplingParams;
  /** Prompt-cache reuse is scoped to this tenant. */
  tenant?: string;
  echo?: boolean;
}

export type CompleteResponse =
  | { event: 'textDelta'; textDelta: string }
  | { event: 'finish'; finish: Finish }
  | { event: 'logprobs'; logprobs: LogprobsDelta };

export interface EmbedRequest {
  model: string;
  requestId?: string;
  inputs: string[];
  tokenInputs?: { ids: number[] }[];
}

export interface EmbedResponse {
  embeddings: { values: number[] }[];
  promptTokens: number;
  model?: ModelProvenance | null;
}

export interface TokenizeRequest {
  model: string;
  text: string;
}

export interface TokenizeResponse {
  tokens: number[];
  count: number;
}

export type GetStatusRequest = Record<string, never>;

export interface ModelStatus {
  id: string;
  state: ModelState;
  loadProgress: number;
  error: string;
  slotsTotal: number;
  slotsBusy: number;
  queueLength: number;
  queueCapacity: number;
  kvCacheUsedTokens: number;
  kvCacheCapacityTokens: number;
  kvCacheUtilization: number;
  tokensPerSecond: number;
  vramUsedBytes: number;
  ramUsedBytes: number;
  contextSize: number;
  servesEmbeddings: boolean;
  chatFormat: string;
  systemFingerprint: string;
  /** null until the model's file is verified. */
  provenance?: ModelProvenance | null;
}

export interface GetStatusResponse {
  workerId: string;
  draining: boolean;
  models: ModelStatus[];
}
