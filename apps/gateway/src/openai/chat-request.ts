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
import { samplingShape, stopSchema, toSamplingParams, type TokenLimits } from './sampling.js';
import { schemaLimitProblem } from './schema-limits.js';
import { isNull, isNullOr, isNullOrEmptyObject, parseBody, type NeutralValues } from './validation.js';

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart)]);

const toolCall = z.strictObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string().min(1), arguments: z.string() }),
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
    refusal: z.null().optional(),
    // Sent back by clients that replay gpt-oss answers; templates drop earlier reasoning anyway.
    reasoning_content: z.string().nullish(),
  }),
  z.strictObject({ role: z.literal('tool'), content, tool_call_id: z.string().min(1) }),
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

const chatBody = z.strictObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).nullish(),
  stop: stopSchema,
  tools: z.array(tool).max(64).nullish(),
  tool_choice: toolChoice.nullish(),
  response_format: responseFormat.nullish(),
  reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']).nullish(),
  user: z.string().nullish(),
  ...samplingShape,
});

export type ChatBody = z.output<typeof chatBody>;

/** Chat parameters Airlock does not implement, and the values of them that ask for nothing. */
const CHAT_NEUTRAL: NeutralValues = {
  logprobs: isNullOr(false),
  top_logprobs: isNullOr(0),
  logit_bias: isNullOrEmptyObject,
  parallel_tool_calls: isNullOr(true),
  store: isNullOr(false),
  metadata: isNullOrEmptyObject,
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
  minimal: 'REASONING_EFFORT_LOW',
  low: 'REASONING_EFFORT_LOW',
  medium: 'REASONING_EFFORT_MEDIUM',
  high: 'REASONING_EFFORT_HIGH',
};

export interface ParsedChat {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  n: number;
  /** The worker request, without request id. */
  request: ChatRequest;
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
  };
  return { model: body.model, stream, includeUsage: body.stream_options?.include_usage === true, n, request };
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
