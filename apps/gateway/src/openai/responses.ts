import { randomBytes } from 'node:crypto';
import type { FinishReason, ToolCall, Usage } from '@airlock/contracts';

/** Worker finish reasons → OpenAI's. A cancelled generation has no client left to read it. */
export const FINISH_REASON: Record<FinishReason, 'stop' | 'length' | 'tool_calls'> = {
  FINISH_REASON_UNSPECIFIED: 'stop',
  FINISH_REASON_STOP: 'stop',
  FINISH_REASON_LENGTH: 'length',
  FINISH_REASON_TOOL_CALLS: 'tool_calls',
  FINISH_REASON_CANCELLED: 'stop',
};

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function toOpenAiUsage(usage: Usage): OpenAiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedTokens },
  };
}

/**
 * Adds one generation's usage to the request's. `countPrompt` is false for the 2nd..nth choice of the same
 * prompt: as OpenAI does with `n`, a prompt counts once while completion tokens add up over the choices.
 */
export function addUsage(total: Usage, add: Usage | undefined, countPrompt = true): void {
  if (!add) return;
  if (countPrompt) {
    total.promptTokens += add.promptTokens;
    total.cachedTokens += add.cachedTokens;
  }
  total.completionTokens += add.completionTokens;
}

export function toOpenAiToolCall(call: ToolCall) {
  return {
    id: call.id,
    type: 'function' as const,
    function: { name: call.name, arguments: call.argumentsJson },
  };
}

/** Fields shared by every chat object of one request. */
export interface ResponseIdentity {
  id: string;
  created: number;
  model: string;
  /** The serving worker's model build ("fp_…"); null until a worker is chosen or when it has none. */
  systemFingerprint?: string | null;
  /** stream_options.include_usage: every chunk but the last carries `"usage": null`, as OpenAI's do. */
  includeUsage?: boolean;
  /** stream_options.include_obfuscation: each chunk carries random padding (hides token sizes). */
  obfuscate?: boolean;
}

/** Random characters of random length, so that the size of an encrypted chunk says nothing of its token. */
function obfuscation(): string {
  const bytes = randomBytes(24);
  return bytes.toString('base64url').slice(0, 1 + (bytes[0] % 32));
}

function chunkOf(
  object: string,
  identity: ResponseIdentity,
  choices: unknown[],
  usage: OpenAiUsage | null | undefined,
) {
  const usageField = usage !== undefined ? { usage } : identity.includeUsage ? { usage: null } : {};
  return {
    id: identity.id,
    object,
    created: identity.created,
    model: identity.model,
    system_fingerprint: identity.systemFingerprint || null,
    choices,
    ...usageField,
    ...(identity.obfuscate ? { obfuscation: obfuscation() } : {}),
  };
}

export function chatChunk(identity: ResponseIdentity, choices: unknown[], usage?: OpenAiUsage | null) {
  return chunkOf('chat.completion.chunk', identity, choices, usage);
}

export function completionChunk(identity: ResponseIdentity, choices: unknown[], usage?: OpenAiUsage | null) {
  return chunkOf('text_completion', identity, choices, usage);
}
