import { ApiError } from '../errors/api-error.js';

/**
 * A vector as OpenAI returns it: unit length (vector stores rank by dot product), optionally truncated to
 * `dimensions` and renormalised (the Matryoshka reading of OpenAI's `dimensions`). Asking for more
 * dimensions than the model has is a 400.
 */
export function toOpenAiVector(values: number[], dimensions: number | null): number[] {
  if (dimensions !== null && dimensions > values.length) {
    throw ApiError.badRequest(
      `'dimensions' is ${dimensions}, but this model's embeddings have ${values.length}.`,
      'dimensions',
      'invalid_value',
    );
  }
  const kept = dimensions === null ? values : values.slice(0, dimensions);
  let sumOfSquares = 0;
  for (const value of kept) sumOfSquares += value * value;
  const norm = Math.sqrt(sumOfSquares);
  // An all-zero vector has no direction: returned as is rather than divided by zero.
  return norm === 0 ? [...kept] : kept.map((value) => value / norm);
}
