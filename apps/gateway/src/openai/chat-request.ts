import { z } from 'zod';
import type {
  ChatMessage,
  ChatRequest,
  ChatRole,
  ReasoningEffort,
  ToolChoiceMode,
  ToolDefinition,
} from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import {
  logitBiasSchema,
  samplingShape,
  stopSchema,
  toSamplingParams,
  type TokenLimits,
} from './sampling.js';
import { schemaLimitProblem } from './schema-limits.js';
import { choiceSeeds } from './seeds.js';
import { isNull, isNullOr, parseBody, type NeutralValues } from './validation.js';

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart)]);

/**
 * Fields the SDKs put on the messages they return, and send back when an application appends them to its
 * history (the Python SDK's `parse()` and `get_final_completion()`, `model_dump()`): output-only, so they
 * are accepted and ignored, as OpenAI does.
 */
const toolCall = z.strictObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.strictObject({
    name: z.string().min(1),
    arguments: z.string(),
    parsed_arguments: z.unknown().optional(),
  }),
  index: z.number().int().min(0).optional(),
});

const message = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('system'), content, name: z.string().optional() }),
  z.strictObject({ role: z.literal('developer'), content, name: z.string().optional() }),
  z.strictObject({ role: z.literal('user'), content, name: z.string().optional() }),
  z.strictObject({
    role: z.literal('assistant'),
    content: content.nullish(),
    name: z.string().optional(),
    tool_calls: z.array(toolCall).nullish(),
    // Output-only, sent back with replayed answers.
    refusal: z.string().nullish(),
    annotations: z.array(z.unknown()).nullish(),
    parsed: z.unknown().optional(),
    // An earlier audio answer is referenced by id; Airlock has none, so only null is accepted.
    audio: z.null().optional(),
    function_call: z.null().optional(),
    // Sent back by clients that replay gpt-oss answers; templates drop earlier reasoning anyway.
    reasoning_content: z.string().nullish(),
  }),
  // LangChain sends the function's name on tool messages.
  z.strictObject({
    role: z.literal('tool'),
    content,
    tool_call_id: z.string().min(1),
    name: z.string().optional(),
  }),
]);

/** A JSON schema the worker turns into a grammar: within SCHEMA_LIMITS, or a 400 naming the limit. */
const boundedSchema = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  const problem = schemaLimitProblem(schema);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const tool = z.strictObject({
  type: z.literal('function'),
  function: z.strictObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'function names are 1-64 of a-z, A-Z, 0-9, _ and -'),
    description: z.string().optional(),
    parameters: boundedSchema.optional(),
    strict: z.boolean().nullish(),
  }),
});

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string().min(1) }) }),
]);

const responseFormat = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    json_schema: z.strictObject({
      name: z.string().min(1),
      description: z.string().optional(),
      schema: boundedSchema.optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

/** OpenAI's limits on `metadata`: 16 pairs, keys of 64 characters, values of 512. */
export const metadataSchema = z
  .record(z.string().max(64), z.string().max(512))
  .refine((value) => Object.keys(value).length <= 16, 'at most 16 key-value pairs')
  .nullish();

/** user / safety_identifier: kept in the audit record, so bounded and free of control characters. */
export const endUserSchema = z
  .string()
  .max(256)
  .regex(/^\P{Cc}*$/u, 'no control characters')
  .nullish();

export const streamOptionsSchema = z
  .strictObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() })
  .nullish();

const chatBody = z.strictObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  stream: z.boolean().nullish(),
  stream_options: streamOptionsSchema,
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).nullish(),
  stop: stopSchema,
  tools: z.array(tool).max(64).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: responseFormat.nullish(),
  reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high']).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  logit_bias: logitBiasSchema,
  // Chat completions are not kept for retrieval here; the audit log keeps what the tenant's policy says.
  store: z.boolean().nullish(),
  metadata: metadataSchema,
  user: endUserSchema,
  safety_identifier: endUserSchema,
  prompt_cache_key: z.string().max(256).nullish(),
  ...samplingShape,
});

export type ChatBody = z.output<typeof chatBody>;

/** Chat parameters Airlock does not implement, and the values of them that ask for nothing. */
const CHAT_NEUTRAL: NeutralValues = {
  service_tier: isNullOr('auto', 'default'),
  modalities: (value) =>
    value === null || (Array.isArray(value) && value.length === 1 && value[0] === 'text'),
  prediction: isNull,
  audio: isNull,
  web_search_options: isNull,
  functions: isNull,
  function_call: isNull,
  verbosity: isNull,
};

const ROLE_TO_CONTRACT: Record<ChatBody['messages'][number]['role'], ChatRole> = {
  system: 'CHAT_ROLE_SYSTEM',
  developer: 'CHAT_ROLE_SYSTEM',
  user: 'CHAT_ROLE_USER',
  assistant: 'CHAT_ROLE_ASSISTANT',
  tool: 'CHAT_ROLE_TOOL',
};

const TOOL_CHOICE_TO_CONTRACT: Record<'none' | 'auto' | 'required', ToolChoiceMode> = {
  none: 'TOOL_CHOICE_MODE_NONE',
  auto: 'TOOL_CHOICE_MODE_AUTO',
  required: 'TOOL_CHOICE_MODE_REQUIRED',
};

const REASONING_TO_CONTRACT: Record<NonNullable<ChatBody['reasoning_effort']>, ReasoningEffort> = {
  none: 'REASONING_EFFORT_NONE',
  minimal: 'REASONING_EFFORT_LOW',
  low: 'REASONING_EFFORT_LOW',
  medium: 'REASONING_EFFORT_MEDIUM',
  high: 'REASONING_EFFORT_HIGH',
};

export interface ParsedChat {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  /** stream_options.include_obfuscation: pad each chunk with random characters (size side channels). */
  includeObfuscation: boolean;
  n: number;
  /** The worker request, without request id; choice i samples with `seeds[i]`. */
  request: ChatRequest;
  seeds: number[];
  /** Whether choices carry logprobs (so `logprobs: null` is replaced by an object). */
  logprobs: boolean;
  /** The end user the application names (`safety_identifier`, else `user`), for the audit record. */
  endUser: string;
  /** `prompt_cache_key`: requests sharing it are routed to the same worker where possible. */
  cacheKey: string;
}

export interface RequestLimits {
  maxN: number;
  tokenLimits: (model: string) => TokenLimits;
}

/** OpenAI chat body → worker ChatRequest. Throws ApiError (400) naming the offending parameter. */
export function parseChatRequest(raw: unknown, limits: RequestLimits): ParsedChat {
  const body = parseBody(chatBody, raw, CHAT_NEUTRAL);
  const stream = body.stream === true;
  if (body.stream_options && !stream) {
    throw ApiError.badRequest("'stream_options' is only allowed when 'stream' is true.", 'stream_options');
  }
  const n = body.n ?? 1;
  if (n > limits.maxN) {
    throw ApiError.badRequest(`'n' is ${n}, above the limit of ${limits.maxN}.`, 'n', 'invalid_value');
  }
  const maxTokensParam = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const sampling = toSamplingParams(
    body,
    body.max_completion_tokens ?? body.max_tokens,
    maxTokensParam,
    limits.tokenLimits(body.model),
  );
  if (body.top_logprobs && body.logprobs !== true) {
    throw ApiError.badRequest("'top_logprobs' needs 'logprobs' to be true.", 'top_logprobs');
  }
  if (body.logprobs) {
    sampling.logprobs = true;
    sampling.topLogprobs = body.top_logprobs ?? 0;
  }
  const format = body.response_format;
  if (format?.type === 'json_object') sampling.jsonObject = true;
  if (format?.type === 'json_schema') sampling.jsonSchema = JSON.stringify(format.json_schema.schema ?? {});

  const request: ChatRequest = {
    model: body.model,
    messages: body.messages.map((m, index) => toContractMessage(m, index)),
    sampling,
    tools: (body.tools ?? []).map(toContractTool),
    ...toolChoiceFields(body),
    reasoningEffort: body.reasoning_effort ? REASONING_TO_CONTRACT[body.reasoning_effort] : undefined,
    maxToolCalls: body.parallel_tool_calls === false ? 1 : 0,
  };
  return {
    model: body.model,
    stream,
    includeUsage: body.stream_options?.include_usage === true,
    includeObfuscation: body.stream_options?.include_obfuscation === true,
    n,
    request,
    seeds: choiceSeeds(sampling.seed, n),
    logprobs: body.logprobs === true,
    endUser: body.safety_identifier ?? body.user ?? '',
    cacheKey: body.prompt_cache_key ?? '',
  };
}

function toContractMessage(m: ChatBody['messages'][number], index: number): ChatMessage {
  const out: ChatMessage = { role: ROLE_TO_CONTRACT[m.role], content: textOf(m.content, index) };
  if (m.role === 'assistant' && m.tool_calls) {
    out.toolCalls = m.tool_calls.map((call) => ({
      id: call.id,
      name: call.function.name,
      argumentsJson: call.function.arguments,
    }));
  }
  if (m.role === 'tool') out.toolCallId = m.tool_call_id;
  if ('name' in m && m.name) out.name = m.name;
  return out;
}

/** Text content only: images, audio and files are refused by name rather than dropped. */
function textOf(value: z.output<typeof content> | null | undefined, index: number): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return value
    .map((part, partIndex) => {
      if (part.type !== 'text' || typeof part.text !== 'string') {
        throw ApiError.badRequest(
          `Content parts of type '${part.type}' are not supported by Airlock; only 'text' is.`,
          `messages[${index}].content[${partIndex}].type`,
          'unsupported_content_type',
        );
      }
      return part.text;
    })
    .join('');
}

function toContractTool(t: NonNullable<ChatBody['tools']>[number]): ToolDefinition {
  return {
    name: t.function.name,
    description: t.function.description ?? '',
    parametersJsonSchema: t.function.parameters ? JSON.stringify(t.function.parameters) : '',
  };
}

function toolChoiceFields(body: ChatBody): Pick<ChatRequest, 'toolChoiceMode' | 'toolChoiceFunction'> {
  const choice = body.tool_choice;
  if (choice === null || choice === undefined) return { toolChoiceMode: 'TOOL_CHOICE_MODE_UNSPECIFIED' };
  if (typeof choice === 'string') {
    if (choice !== 'none' && !body.tools?.length) {
      throw ApiError.badRequest(`'tool_choice' is '${choice}' but no 'tools' were given.`, 'tool_choice');
    }
    return { toolChoiceMode: TOOL_CHOICE_TO_CONTRACT[choice] };
  }
  if (!body.tools?.some((t) => t.function.name === choice.function.name)) {
    throw ApiError.badRequest(
      `'tool_choice' names the function '${choice.function.name}', which is not among 'tools'.`,
      'tool_choice',
    );
  }
  return { toolChoiceMode: 'TOOL_CHOICE_MODE_REQUIRED', toolChoiceFunction: choice.function.name };
}
