import { z } from 'zod';
import type { SamplingParams } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';

type NumericSamplingKey = Exclude<
  keyof SamplingParams,
  | 'stop'
  | 'jsonSchema'
  | 'jsonObject'
  | 'maxTokens'
  | 'maxTokensLimit'
  | 'logitBias'
  | 'logprobs'
  | 'topLogprobs'
>;

/** One OpenAI sampling parameter and the contract field it becomes. */
interface SamplingField {
  openai: string;
  contract: NumericSamplingKey;
  schema: z.ZodNumber;
  toContract?: (value: number) => number;
}

/**
 * OpenAI (and the common vLLM/llama.cpp extensions) sampling parameters → worker SamplingParams.
 * Ranges are OpenAI's where OpenAI defines the parameter.
 */
export const SAMPLING_FIELDS: readonly SamplingField[] = [
  { openai: 'temperature', contract: 'temperature', schema: z.number().min(0).max(2) },
  { openai: 'top_p', contract: 'topP', schema: z.number().min(0).max(1) },
  { openai: 'top_k', contract: 'topK', schema: z.number().int().min(0) },
  { openai: 'min_p', contract: 'minP', schema: z.number().min(0).max(1) },
  { openai: 'frequency_penalty', contract: 'frequencyPenalty', schema: z.number().min(-2).max(2) },
  { openai: 'presence_penalty', contract: 'presencePenalty', schema: z.number().min(-2).max(2) },
  { openai: 'repetition_penalty', contract: 'repeatPenalty', schema: z.number().min(0).max(2) },
  // The worker takes a uint32; OpenAI allows any integer, so fold it into that range deterministically.
  {
    openai: 'seed',
    contract: 'seed',
    schema: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
    toContract: (seed) => Number(BigInt.asUintN(32, BigInt(seed))),
  },
];

/** The zod shape of every sampling parameter, nullable as OpenAI allows. */
export const samplingShape = Object.fromEntries(
  SAMPLING_FIELDS.map((field) => [field.openai, field.schema.nullish()]),
) as Record<string, z.ZodOptional<z.ZodNullable<z.ZodNumber>>>;

export const stopSchema = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

/** OpenAI's logit_bias: token ids (as JSON object keys) → -100..100. */
export const logitBiasSchema = z
  .record(z.string().regex(/^\d{1,9}$/, 'keys are token ids'), z.number().min(-100).max(100))
  .refine((bias) => Object.keys(bias).length <= 1024, 'at most 1024 tokens')
  .nullish();

export function toLogitBias(bias: Record<string, number> | null | undefined): SamplingParams['logitBias'] {
  if (!bias) return undefined;
  const entries = Object.entries(bias);
  return entries.length === 0
    ? undefined
    : entries.map(([token, value]) => ({ token: Number(token), bias: value }));
}

export interface TokenLimits {
  /** The cap for this model (per-model setting, else the global one). */
  maxTokens: number;
}

/** Builds the contract's SamplingParams from a parsed OpenAI body. */
export function toSamplingParams(
  body: Record<string, unknown>,
  maxTokens: number | null | undefined,
  maxTokensParam: string,
  limits: TokenLimits,
): SamplingParams {
  const sampling: SamplingParams = {};
  for (const field of SAMPLING_FIELDS) {
    const value = body[field.openai];
    if (typeof value === 'number')
      sampling[field.contract] = field.toContract ? field.toContract(value) : value;
  }
  if (maxTokens !== null && maxTokens !== undefined) {
    if (maxTokens > limits.maxTokens) {
      throw ApiError.badRequest(
        `'${maxTokensParam}' is ${maxTokens}, above this model's limit of ${limits.maxTokens}.`,
        maxTokensParam,
        'max_tokens_exceeded',
      );
    }
    sampling.maxTokens = maxTokens;
  } else {
    // OpenAI's field is optional: the answer runs to a stop or the end of the context, within the cap.
    sampling.maxTokens = 0;
    sampling.maxTokensLimit = limits.maxTokens;
  }
  const bias = toLogitBias(body.logit_bias as Record<string, number> | null | undefined);
  if (bias) sampling.logitBias = bias;
  const stop = body.stop;
  if (typeof stop === 'string') sampling.stop = [stop];
  else if (Array.isArray(stop)) sampling.stop = stop as string[];
  return sampling;
}
