import type { SamplingParams } from '@airlock/contracts';
import { contextExceeded } from './worker-errors.js';

/**
 * Tokens a request may generate: what it asked for, checked against what is left of its sequence; or, when it
 * asked for nothing, what is left (within its limit): the answer then ends at a stop or "length". Both
 * engines use this, so a request is refused (or not) alike on either.
 */
export function generationBudget(
  modelId: string,
  promptTokens: number,
  contextSize: number,
  sampling: SamplingParams | undefined,
): number {
  const requested = sampling?.maxTokens;
  if (promptTokens >= contextSize) throw contextExceeded(modelId, promptTokens + 1, contextSize);
  if (requested && promptTokens + requested > contextSize) {
    throw contextExceeded(modelId, promptTokens + requested, contextSize);
  }
  // Never more than what fits: a full context ends the generation ("length") instead of shifting out messages.
  const left = contextSize - promptTokens;
  return requested || Math.min(left, sampling?.maxTokensLimit || left);
}
