import { z } from 'zod';
import type { ChatMessage, ChatRequest, ReasoningEffort, ToolDefinition } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import type { RequestLimits } from './chat-request.js';
import { samplingShape, toSamplingParams } from './sampling.js';
import { choiceSeeds } from './seeds.js';
import { isNull, isNullOr, isNullOrEmptyObject, parseBody, type NeutralValues } from './validation.js';

// `/v1/responses` request bodies (OpenAI's Responses API), mapped onto the worker's chat contract.

const textPart = z.strictObject({
  type: z.enum(['input_text', 'output_text']),
  text: z.string(),
  // Sent back by clients that replay output items.
  annotations: z.array(z.unknown()).optional(),
  logprobs: z.array(z.unknown()).optional(),
});
/** Parts other than text are refused by name when the messages are built (not silently dropped). */
const contentPart = z.union([textPart, z.looseObject({ type: z.string() })]);
const messageContent = z.union([z.string(), z.array(contentPart)]);
const itemStatus = z.enum(['in_progress', 'completed', 'incomplete']).nullish();

const messageItem = z.strictObject({
  type: z.literal('message').optional(),
  id: z.string().optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: messageContent,
  status: itemStatus,
  phase: z.enum(['commentary', 'final_answer']).nullish(),
});

const functionCallItem = z.strictObject({
  type: z.literal('function_call'),
  id: z.string().optional(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
  status: itemStatus,
});

const functionCallOutputItem = z.strictObject({
  type: z.literal('function_call_output'),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  output: z.union([z.string(), z.array(contentPart)]),
  status: itemStatus,
});

/** Earlier reasoning, sent back by clients; chat templates drop it from the next prompt. */
const reasoningItem = z.strictObject({
  type: z.literal('reasoning'),
  id: z.string().optional(),
  summary: z.array(z.unknown()),
  content: z.array(z.unknown()).nullish(),
  encrypted_content: z.null().optional(),
  status: itemStatus,
});

/** An earlier output item by id: resolved from the stored response that holds it. */
const itemReference = z.strictObject({ type: z.literal('item_reference'), id: z.string().min(1).max(200) });
export type ItemReference = z.output<typeof itemReference>;

const inputItem = z.union([
  messageItem,
  functionCallItem,
  functionCallOutputItem,
  reasoningItem,
  itemReference,
]);
export type ResponseInputItem = z.output<typeof inputItem>;

const functionTool = z.strictObject({
  type: z.literal('function'),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'function names are 1-64 of a-z, A-Z, 0-9, _ and -'),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});
export type ResponseFunctionTool = z.output<typeof functionTool>;

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.strictObject({ type: z.literal('function'), name: z.string().min(1) }),
]);

const textFormat = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    name: z.string().min(1),
    description: z.string().nullish(),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().nullish(),
  }),
]);

const responsesBody = z.strictObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(inputItem).min(1)]),
  instructions: z.string().nullish(),
  stream: z.boolean().nullish(),
  // Obfuscation pads stream events against length side channels on the public internet; not needed here.
  stream_options: z.strictObject({ include_obfuscation: z.boolean().optional() }).nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().min(1).nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z
    .strictObject({
      format: textFormat.nullish(),
      verbosity: z.literal('medium').nullish(),
    })
    .nullish(),
  reasoning: z
    .strictObject({
      effort: z.enum(['none', 'minimal', 'low', 'medium', 'high']).nullish(),
      // There is no summariser: 'auto' (the model's choice) yields none; asking for one is refused.
      summary: z.literal('auto').nullish(),
    })
    .nullish(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  ...samplingShape,
});

export type ResponsesBody = z.output<typeof responsesBody>;

/** Responses parameters Airlock does not implement, and the values of them that ask for nothing. */
const RESPONSES_NEUTRAL: NeutralValues = {
  background: isNullOr(false),
  include: (value) => value === null || (Array.isArray(value) && value.length === 0),
  truncation: isNullOr('disabled'),
  service_tier: isNullOr('auto', 'default'),
  top_logprobs: isNullOr(0),
  max_tool_calls: isNull,
  conversation: isNull,
  prompt: isNull,
  context_management: isNull,
  logit_bias: isNullOrEmptyObject,
};

const REASONING_TO_CONTRACT: Record<'minimal' | 'low' | 'medium' | 'high', ReasoningEffort> = {
  minimal: 'REASONING_EFFORT_LOW',
  low: 'REASONING_EFFORT_LOW',
  medium: 'REASONING_EFFORT_MEDIUM',
  high: 'REASONING_EFFORT_HIGH',
};

export interface ParsedResponses {
  model: string;
  stream: boolean;
  /** null: not said; the tenant's policy decides (stored where content may be kept). */
  store: boolean | null;
  previousResponseId: string | null;
  /** This request's own input, as items (a string input becomes one user message). */
  input: ResponseInputItem[];
  body: ResponsesBody;
  tools: ResponseFunctionTool[];
  /** The worker request without messages (they need the earlier conversation) and request id. */
  request: Omit<ChatRequest, 'messages'>;
}

/** OpenAI Responses body → the worker's chat request. Throws ApiError (400) naming the parameter. */
export function parseResponsesRequest(raw: unknown, limits: RequestLimits): ParsedResponses {
  const body = parseBody(responsesBody, raw, RESPONSES_NEUTRAL);
  const stream = body.stream === true;
  if (body.stream_options && !stream) {
    throw ApiError.badRequest("'stream_options' is only allowed when 'stream' is true.", 'stream_options');
  }
  if (body.metadata && Object.keys(body.metadata).length > 16) {
    throw ApiError.badRequest("'metadata' holds at most 16 keys.", 'metadata', 'invalid_value');
  }
  const tools = (body.tools ?? []).map(toFunctionTool);
  const sampling = toSamplingParams(
    body,
    body.max_output_tokens,
    'max_output_tokens',
    limits.tokenLimits(body.model),
  );
  // Its own seed (from the CSPRNG unless the client gave one), as for every chat choice.
  sampling.seed = choiceSeeds(sampling.seed, 1)[0];
  const format = body.text?.format;
  if (format?.type === 'json_object') sampling.jsonObject = true;
  if (format?.type === 'json_schema') sampling.jsonSchema = JSON.stringify(format.schema);
  const effort = body.reasoning?.effort;
  const input: ResponseInputItem[] =
    typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : body.input;
  // Content parts are checked here, where the indexes are the client's own (before any history).
  toChatMessages(null, input);
  return {
    model: body.model,
    stream,
    store: body.store ?? null,
    previousResponseId: body.previous_response_id ?? null,
    input,
    body,
    tools,
    request: {
      model: body.model,
      sampling,
      tools: tools.map(toContractTool),
      ...toolChoiceFields(body, tools),
      // 'none': no reasoning setting is sent (models without one, the usual case here, take none).
      reasoningEffort: effort && effort !== 'none' ? REASONING_TO_CONTRACT[effort] : undefined,
    },
  };
}

function toFunctionTool(tool: unknown, index: number): ResponseFunctionTool {
  const type = (tool as { type?: unknown } | null)?.type;
  if (type !== 'function') {
    throw ApiError.badRequest(
      `Tools of type '${String(type)}' are not supported by Airlock; only 'function' tools are.`,
      `tools[${index}].type`,
      'unsupported_parameter',
    );
  }
  const result = functionTool.safeParse(tool);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key =
    issue.code === 'unrecognized_keys'
      ? `.${issue.keys[0]}`
      : issue.path.map((p) => `.${String(p)}`).join('');
  throw ApiError.badRequest(
    `Invalid value for 'tools[${index}]${key}': ${issue.message}.`,
    `tools[${index}]${key}`,
    'invalid_value',
  );
}

function toContractTool(tool: ResponseFunctionTool): ToolDefinition {
  return {
    name: tool.name,
    description: tool.description ?? '',
    parametersJsonSchema: tool.parameters ? JSON.stringify(tool.parameters) : '',
  };
}

function toolChoiceFields(
  body: ResponsesBody,
  tools: ResponseFunctionTool[],
): Pick<ChatRequest, 'toolChoiceMode' | 'toolChoiceFunction'> {
  const choice = body.tool_choice;
  if (choice === null || choice === undefined) return { toolChoiceMode: 'TOOL_CHOICE_MODE_UNSPECIFIED' };
  if (typeof choice === 'string') {
    if (choice !== 'none' && tools.length === 0) {
      throw ApiError.badRequest(`'tool_choice' is '${choice}' but no 'tools' were given.`, 'tool_choice');
    }
    const mode = {
      none: 'TOOL_CHOICE_MODE_NONE',
      auto: 'TOOL_CHOICE_MODE_AUTO',
      required: 'TOOL_CHOICE_MODE_REQUIRED',
    } as const;
    return { toolChoiceMode: mode[choice] };
  }
  if (!tools.some((t) => t.name === choice.name)) {
    throw ApiError.badRequest(
      `'tool_choice' names the function '${choice.name}', which is not among 'tools'.`,
      'tool_choice',
    );
  }
  return { toolChoiceMode: 'TOOL_CHOICE_MODE_REQUIRED', toolChoiceFunction: choice.name };
}

/**
 * The conversation as worker chat messages: `instructions` first (not carried over from an earlier
 * response, as OpenAI does), then every item. Consecutive function calls join the assistant turn before
 * them; a call's output becomes a tool message naming its function.
 */
export function toChatMessages(
  instructions: string | null | undefined,
  items: ResponseInputItem[],
): ChatMessage[] {
  const messages: ChatMessage[] = instructions ? [{ role: 'CHAT_ROLE_SYSTEM', content: instructions }] : [];
  const callNames = new Map<string, string>();
  items.forEach((item, index) => {
    switch (item.type) {
      case undefined:
      case 'message': {
        const role =
          item.role === 'user'
            ? 'CHAT_ROLE_USER'
            : item.role === 'assistant'
              ? 'CHAT_ROLE_ASSISTANT'
              : 'CHAT_ROLE_SYSTEM';
        messages.push({ role, content: textOf(item.content, `input[${index}].content`) });
        return;
      }
      case 'function_call': {
        callNames.set(item.call_id, item.name);
        const call = { id: item.call_id, name: item.name, argumentsJson: item.arguments };
        const last = messages[messages.length - 1];
        if (last?.role === 'CHAT_ROLE_ASSISTANT') last.toolCalls = [...(last.toolCalls ?? []), call];
        else messages.push({ role: 'CHAT_ROLE_ASSISTANT', content: '', toolCalls: [call] });
        return;
      }
      case 'function_call_output': {
        const name = callNames.get(item.call_id);
        messages.push({
          role: 'CHAT_ROLE_TOOL',
          content: textOf(item.output, `input[${index}].output`),
          toolCallId: item.call_id,
          ...(name ? { name } : {}),
        });
        return;
      }
      case 'reasoning':
        return;
      case 'item_reference':
        // Resolved before the conversation is built (ResponsesService); checked here at parse time.
        return;
    }
  });
  return messages;
}

/** Text parts only: images, files and audio are refused by name rather than dropped. */
function textOf(value: string | z.output<typeof contentPart>[], param: string): string {
  if (typeof value === 'string') return value;
  return value
    .map((part, partIndex) => {
      if ((part.type !== 'input_text' && part.type !== 'output_text') || typeof part.text !== 'string') {
        throw ApiError.badRequest(
          `Content parts of type '${part.type}' are not supported by Airlock; only text is.`,
          `${param}[${partIndex}].type`,
          'unsupported_content_type',
        );
      }
      return part.text;
    })
    .join('');
}

const inputItemsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
  after: z.string().min(1).max(128).optional(),
});

export type InputItemsQuery = z.output<typeof inputItemsQuery>;

/** `GET /v1/responses/{id}/input_items` query; `include` asks for nothing Airlock keeps and is refused. */
export function parseInputItemsQuery(raw: unknown): InputItemsQuery {
  return parseBody(inputItemsQuery, raw ?? {}, { include: (value) => value === '' || value === undefined });
}

/** One page of a stored response's input items, as OpenAI's cursor lists are shaped. */
export function pageOfItems<T extends { id: string }>(items: T[], query: InputItemsQuery) {
  const ordered = query.order === 'desc' ? [...items].reverse() : items;
  const start = query.after === undefined ? 0 : ordered.findIndex((item) => item.id === query.after) + 1;
  if (query.after !== undefined && start === 0) {
    throw ApiError.badRequest(
      `No input item with id '${query.after}' in this response.`,
      'after',
      'invalid_value',
    );
  }
  const data = ordered.slice(start, start + query.limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: start + data.length < ordered.length,
  };
}
