import { z } from 'zod';
import { ApiError } from '../errors/api-error.js';

/** `messages[0].content` from a zod path. */
export function paramName(path: readonly PropertyKey[]): string {
  let name = '';
  for (const part of path) {
    if (typeof part === 'number') name += `[${part}]`;
    else name += name.length === 0 ? String(part) : `.${String(part)}`;
  }
  return name;
}

/**
 * OpenAI parameters Airlock does not implement, with the values that ask for nothing (clients such as
 * LangChain send `logprobs: false` by default). Any other value is a 400 naming the parameter: a request
 * is never half-honoured in silence.
 */
export type NeutralValues = Record<string, (value: unknown) => boolean>;

export const isNull = (value: unknown): boolean => value === null;
export const isNullOr =
  (...allowed: unknown[]) =>
  (value: unknown): boolean =>
    value === null || allowed.includes(value);
export const isNullOrEmptyObject = (value: unknown): boolean =>
  value === null || (typeof value === 'object' && value !== null && Object.keys(value).length === 0);

/** Parses a JSON body against a strict schema after dropping neutral unsupported parameters. */
export function parseBody<T extends z.ZodType>(
  schema: T,
  body: unknown,
  neutral: NeutralValues,
): z.output<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw ApiError.badRequest('The request body must be a JSON object.');
  }
  // Own properties only: `__proto__`, `constructor`, `toString` … are parameter names like any other (and
  // unknown ones, so a 400), never members inherited from Object.prototype.
  const cleaned: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of Object.entries(body)) {
    const isNeutral = Object.hasOwn(neutral, key) ? neutral[key] : undefined;
    if (isNeutral === undefined) cleaned[key] = value;
    else if (!isNeutral(value)) throw ApiError.unsupported(key);
  }
  const result = schema.safeParse(cleaned, { reportInput: true });
  if (result.success) return result.data;
  throw toApiError(result.error);
}

function toApiError(error: z.ZodError): ApiError {
  const issue = error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    return ApiError.unsupported(paramName([...issue.path, issue.keys[0]]));
  }
  const param = paramName(issue.path);
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return ApiError.badRequest(
      `Missing required parameter: '${param}'.`,
      param,
      'missing_required_parameter',
    );
  }
  return ApiError.badRequest(`Invalid value for '${param}': ${issue.message}.`, param, 'invalid_value');
}
