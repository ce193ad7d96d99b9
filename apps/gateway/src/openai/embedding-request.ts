import { z } from 'zod';
import type { EmbedRequest } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import { isNull, parseBody, type NeutralValues } from './validation.js';

const embeddingBody = z.strictObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.unknown()).min(1)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  user: z.string().nullish(),
});

const EMBEDDING_NEUTRAL: NeutralValues = { dimensions: isNull };

export interface ParsedEmbedding {
  model: string;
  encoding: 'float' | 'base64';
  request: EmbedRequest;
}

export function parseEmbeddingRequest(raw: unknown, maxInputs: number): ParsedEmbedding {
  const body = parseEmbeddingBody(raw);
  const inputs = typeof body.input === 'string' ? [body.input] : body.input;
  if (inputs.length > maxInputs) {
    throw ApiError.badRequest(
      `'input' has ${inputs.length} items, above the limit of ${maxInputs}.`,
      'input',
    );
  }
  inputs.forEach((input, index) => {
    if (typeof input !== 'string') {
      throw ApiError.badRequest(
        'Token-array inputs are not supported by Airlock; send text.',
        `input[${index}]`,
        'unsupported_parameter',
      );
    }
    if (input.length === 0)
      throw ApiError.badRequest("'input' must not contain empty strings.", `input[${index}]`);
  });
  return {
    model: body.model,
    encoding: body.encoding_format ?? 'float',
    request: { model: body.model, inputs: inputs as string[] },
  };
}

function parseEmbeddingBody(raw: unknown): z.output<typeof embeddingBody> {
  return parseBody(embeddingBody, raw, EMBEDDING_NEUTRAL);
}
