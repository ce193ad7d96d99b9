import { z } from 'zod';
import type { EmbedRequest } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import { endUserSchema } from './chat-request.js';
import { parseBody, type NeutralValues } from './validation.js';

const tokenIds = z.array(z.number().int().min(0).max(4_294_967_295)).min(1);

/** OpenAI's four input shapes: a text, texts, one token array, token arrays (never mixed). */
const embeddingBody = z.strictObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: endUserSchema,
});

const EMBEDDING_NEUTRAL: NeutralValues = {};

export interface ParsedEmbedding {
  model: string;
  encoding: 'float' | 'base64';
  /** Truncate each (unit-length) vector to this many dimensions and renormalise; null keeps them whole. */
  dimensions: number | null;
  endUser: string;
  request: EmbedRequest;
}

export function parseEmbeddingRequest(raw: unknown, maxInputs: number): ParsedEmbedding {
  const body = parseBody(embeddingBody, raw, EMBEDDING_NEUTRAL);
  const input = body.input;
  const request: EmbedRequest = { model: body.model, inputs: [] };
  let count: number;
  if (typeof input === 'string') {
    request.inputs = [input];
    count = 1;
  } else if (input.every((item): item is number => typeof item === 'number')) {
    request.tokenInputs = [{ ids: input }];
    count = 1;
  } else if (input.every((item): item is number[] => Array.isArray(item))) {
    request.tokenInputs = input.map((ids) => ({ ids }));
    count = input.length;
  } else {
    request.inputs = input;
    count = input.length;
  }
  if (count > maxInputs) {
    throw ApiError.badRequest(`'input' has ${count} items, above the limit of ${maxInputs}.`, 'input');
  }
  request.inputs.forEach((text, index) => {
    if (text.length === 0) {
      throw ApiError.badRequest(
        "'input' must not contain empty strings.",
        typeof input === 'string' ? 'input' : `input[${index}]`,
      );
    }
  });
  return {
    model: body.model,
    encoding: body.encoding_format ?? 'float',
    dimensions: body.dimensions ?? null,
    endUser: body.user ?? '',
    request,
  };
}
