/**
 * Bounds on the work one request can ask of a worker. A JSON schema (response_format, tool parameters)
 * becomes a llama.cpp grammar whose build cost grows faster than linearly with enum values, nesting and
 * repetition bounds; these limits keep the worst accepted schema cheap. Each refusal names its limit.
 */
export const MAX_JSON_DEPTH = 64;

export const SCHEMA_LIMITS = {
  /** Bytes of the schema as JSON. */
  maxBytes: 32 * 1024,
  /** enum and const values, counted over the whole schema. */
  maxEnumValues: 512,
  /** Nesting of objects and arrays inside the schema. */
  maxDepth: 16,
  /** minItems / maxItems / minLength / maxLength / minProperties / maxProperties values. */
  maxRepetition: 256,
} as const;

const REPETITION_KEYS = ['minItems', 'maxItems', 'minLength', 'maxLength', 'minProperties', 'maxProperties'];

/** True when a parsed JSON value nests deeper than `max` (iterative: no recursion on hostile input). */
export function exceedsJsonDepth(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(current)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** The first limit a schema breaks, as a sentence naming it; undefined when it is within all of them. */
export function schemaLimitProblem(schema: unknown): string | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(schema) ?? '', 'utf8');
  if (bytes > SCHEMA_LIMITS.maxBytes) {
    return `the schema is ${bytes} bytes; the limit is ${SCHEMA_LIMITS.maxBytes} (schema_max_bytes)`;
  }
  if (exceedsJsonDepth(schema, SCHEMA_LIMITS.maxDepth)) {
    return `the schema nests deeper than ${SCHEMA_LIMITS.maxDepth} levels (schema_max_depth)`;
  }
  let enumValues = 0;
  const stack: unknown[] = [schema];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    if (!Array.isArray(node)) {
      const record = node as Record<string, unknown>;
      if (Object.hasOwn(record, 'enum') && Array.isArray(record.enum)) enumValues += record.enum.length;
      if (Object.hasOwn(record, 'const')) enumValues += 1;
      const ref = Object.hasOwn(record, '$ref') ? record.$ref : undefined;
      if (ref !== undefined && (typeof ref !== 'string' || !ref.startsWith('#/$defs/'))) {
        return '$ref must point into the schema\'s own "#/$defs/" (schema_ref)';
      }
      for (const key of REPETITION_KEYS) {
        const bound = Object.hasOwn(record, key) ? record[key] : undefined;
        if (typeof bound === 'number' && bound > SCHEMA_LIMITS.maxRepetition) {
          return `${key} ${bound} is above the limit of ${SCHEMA_LIMITS.maxRepetition} (schema_max_repetition)`;
        }
      }
    }
    for (const child of Object.values(node)) stack.push(child);
  }
  if (enumValues > SCHEMA_LIMITS.maxEnumValues) {
    return `the schema has ${enumValues} enum/const values; the limit is ${SCHEMA_LIMITS.maxEnumValues} (schema_max_enum_values)`;
  }
  return undefined;
}
