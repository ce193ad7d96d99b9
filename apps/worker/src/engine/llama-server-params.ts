import type { FinishReason, SamplingParams, TokenLogprob } from '@airlock/contracts';
import { toLlamaSampling } from './sampling.js';
import { featureNotSupported, invalidArgument } from './worker-errors.js';

/** OpenAI's stand-in for a probability of zero (JSON has no -Infinity), as on the in-process path. */
const LOGPROB_FLOOR = -9999;
const MAX_TOP_LOGPROBS = 20;
/** node-llama-cpp's repeat-penalty window: both engines penalise the same tokens. */
const REPEAT_PENALTY_LAST_TOKENS = 64;

/**
 * The sampling fields of a llama-server /completion body. The values are validated by the same table as the
 * in-process engine (toLlamaSampling), and unset fields take node-llama-cpp's defaults (greedy, top-k 40,
 * top-p 0.95, min-p 0, no repeat penalty), not llama-server's (temperature 0.8, min-p 0.05): one request
 * means the same thing on either engine.
 */
export function completionSampling(
  params: SamplingParams | undefined,
  vocabularySize: number,
): Record<string, unknown> {
  const checked = toLlamaSampling(params);
  const p = params ?? {};
  const penalties = checked.repeatPenalty;
  const body: Record<string, unknown> = {
    temperature: checked.temperature ?? 0,
    top_k: checked.topK ?? 40,
    top_p: checked.topP ?? 0.95,
    min_p: checked.minP ?? 0,
    seed: checked.seed ?? -1,
    repeat_penalty: penalties?.penalty ?? 1,
    repeat_last_n: REPEAT_PENALTY_LAST_TOKENS,
    presence_penalty: penalties?.presencePenalty ?? 0,
    frequency_penalty: penalties?.frequencyPenalty ?? 0,
    stop: checked.customStopTriggers ?? [],
  };
  const bias = p.logitBias ?? [];
  if (bias.length > 0) {
    body.logit_bias = bias.map(({ token, bias: value }) => {
      if (token >= vocabularySize) {
        throw invalidArgument(`logit_bias names token ${token}, outside the vocabulary of ${vocabularySize}`);
      }
      // -100 bans the token, as OpenAI documents; llama-server says so with `false`.
      return [token, value <= -100 ? false : value];
    });
  }
  const schema = jsonSchemaOf(p);
  if (schema !== undefined) body.json_schema = schema;
  if (p.logprobs) {
    if (schema !== undefined) {
      throw featureNotSupported('logprobs are not supported together with a JSON grammar');
    }
    const top = p.topLogprobs ?? 0;
    if (top > MAX_TOP_LOGPROBS) throw invalidArgument(`top_logprobs must be at most ${MAX_TOP_LOGPROBS}`);
    // At least one: llama-server reports the chosen token's probability only beside its alternatives.
    body.n_probs = Math.max(1, top);
    // As in-process: the raw distribution when greedy, the one the sampler filtered otherwise.
    body.post_sampling_probs = (checked.temperature ?? 0) > 0;
  }
  return body;
}

function jsonSchemaOf(p: SamplingParams): unknown {
  if (p.jsonSchema) {
    try {
      return JSON.parse(p.jsonSchema);
    } catch {
      throw invalidArgument('response_format json_schema is not valid JSON');
    }
  }
  return p.jsonObject ? { type: 'object' } : undefined;
}

/** One entry of llama-server's `completion_probabilities` (log or post-sampling probabilities). */
interface ServerProbability {
  token: string;
  bytes?: number[];
  logprob?: number;
  prob?: number;
  top_logprobs?: ServerProbability[];
  top_probs?: ServerProbability[];
}

/** llama-server's per-token probabilities in the contract's terms (`top` alternatives kept). */
export function toTokenLogprobs(entries: ServerProbability[], top: number): TokenLogprob[] {
  const logprobOf = (entry: ServerProbability) =>
    entry.logprob !== undefined
      ? Math.max(LOGPROB_FLOOR, entry.logprob)
      : entry.prob && entry.prob > 0
        ? Math.max(LOGPROB_FLOOR, Math.log(entry.prob))
        : LOGPROB_FLOOR;
  const bytesOf = (entry: ServerProbability) => Buffer.from(entry.bytes ?? Buffer.from(entry.token ?? ''));
  return entries.map((entry) => ({
    token: entry.token,
    logprob: logprobOf(entry),
    bytes: bytesOf(entry),
    topLogprobs: (entry.top_logprobs ?? entry.top_probs ?? []).slice(0, top).map((alt) => ({
      token: alt.token,
      logprob: logprobOf(alt),
      bytes: bytesOf(alt),
    })),
  }));
}

/** llama-server's stop_type (and whether the context filled up) as the contract's finish reason. */
export function toFinishReason(stopType: string | undefined, truncated: boolean): FinishReason {
  if (stopType === 'limit' || truncated) return 'FINISH_REASON_LENGTH';
  return 'FINISH_REASON_STOP';
}
