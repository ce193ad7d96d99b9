import { z } from 'zod';
import type { CompleteRequest } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import { endUserSchema, streamOptionsSchema, type RequestLimits } from './chat-request.js';
import { logitBiasSchema, samplingShape, stopSchema, toSamplingParams } from './sampling.js';
import { choiceSeeds } from './seeds.js';
import { isNull, isNullOr, parseBody, type NeutralValues } from './validation.js';

/** OpenAI's default for the legacy completions endpoint. */
const DEFAULT_COMPLETION_MAX_TOKENS = 16;

const completionBody = z.strictObject({
  model: z.string().min(1),
  // Token-array prompts are a different feature (pre-tokenised input); refused by name below.
  prompt: z.union([z.string(), z.array(z.unknown()).min(1)]),
  stream: z.boolean().nullish(),
  stream_options: streamOptionsSchema,
  max_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).nullish(),
  stop: stopSchema,
  // OpenAI's legacy field: how many alternatives per position (0..5); 0 asks for the chosen token's only.
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
  logit_bias: logitBiasSchema,
  user: endUserSchema,
  ...samplingShape,
});

/** Parameters Airlock does not implement, and the values of them that ask for nothing. */
const COMPLETION_NEUTRAL: NeutralValues = {
  best_of: isNullOr(1),
  suffix: isNull,
};

export interface ParsedCompletion {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  includeObfuscation: boolean;
  n: number;
  /** One worker request per prompt; OpenAI returns prompts × n choices. */
  requests: CompleteRequest[];
  /** Choice i (prompt ⌊i/n⌋) samples with `seeds[i]`. */
  seeds: number[];
  logprobs: boolean;
  endUser: string;
}

export function parseCompletionRequest(raw: unknown, limits: RequestLimits): ParsedCompletion {
  const body = parseBody(completionBody, raw, COMPLETION_NEUTRAL);
  const stream = body.stream === true;
  if (body.stream_options && !stream) {
    throw ApiError.badRequest("'stream_options' is only allowed when 'stream' is true.", 'stream_options');
  }
  const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
  prompts.forEach((prompt, index) => {
    if (typeof prompt !== 'string') {
      throw ApiError.badRequest(
        'Token-array prompts are not supported by Airlock; send text.',
        `prompt[${index}]`,
        'unsupported_parameter',
      );
    }
  });
  const n = body.n ?? 1;
  if (n * prompts.length > limits.maxN) {
    throw ApiError.badRequest(
      `This request asks for ${n * prompts.length} choices (prompts × n), above the limit of ${limits.maxN}.`,
      'n',
      'invalid_value',
    );
  }
  const echo = body.echo === true;
  const sampling = toSamplingParams(
    body,
    body.max_tokens ?? Math.min(DEFAULT_COMPLETION_MAX_TOKENS, limits.tokenLimits(body.model).maxTokens),
    'max_tokens',
    limits.tokenLimits(body.model),
  );
  const logprobs = body.logprobs !== null && body.logprobs !== undefined;
  if (logprobs) {
    sampling.logprobs = true;
    sampling.topLogprobs = body.logprobs ?? 0;
  }
  return {
    model: body.model,
    stream,
    includeUsage: body.stream_options?.include_usage === true,
    includeObfuscation: body.stream_options?.include_obfuscation === true,
    n,
    requests: (prompts as string[]).map((prompt) => ({ model: body.model, prompt, sampling, echo })),
    seeds: choiceSeeds(sampling.seed, n * prompts.length),
    logprobs,
    endUser: body.user ?? '',
  };
}
