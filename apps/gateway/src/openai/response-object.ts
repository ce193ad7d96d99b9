import { randomBytes } from 'node:crypto';
import type { Usage } from '@airlock/contracts';
import type { ParsedResponses, ResponseInputItem } from './responses-request.js';

// The objects of OpenAI's Responses API that Airlock returns and stores: the Response, its output
// items, and the input items as kept for `previous_response_id` and `GET …/input_items`.

/** Ids as OpenAI spells them: a type prefix and random hex (never the client's request id). */
export function newItemId(prefix: 'resp' | 'msg' | 'rs' | 'fc' | 'fco'): string {
  return `${prefix}_${randomBytes(16).toString('hex')}`;
}

export const RESPONSE_ID = /^resp_[A-Za-z0-9_-]{1,120}$/;

/**
 * An output item's id names its response (`msg_<response hex>_<index>`), so that an `item_reference`
 * (the Vercel AI SDK sends them for earlier turns) finds the stored response that holds the item.
 */
export function outputItemId(prefix: 'msg' | 'rs' | 'fc', responseId: string, index: number): string {
  return `${prefix}_${responseId.slice('resp_'.length)}_${index}`;
}

/** The stored response an output item id points into, if it has that shape. */
export function responseOfItem(itemId: string): string | undefined {
  const match = /^(?:msg|rs|fc)_([0-9a-f]{32})_\d{1,6}$/.exec(itemId);
  return match ? `resp_${match[1]}` : undefined;
}

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface OutputMessage {
  id: string;
  type: 'message';
  status: ItemStatus;
  role: 'assistant';
  content: OutputText[];
}

export interface ReasoningItem {
  id: string;
  type: 'reasoning';
  status: ItemStatus;
  summary: unknown[];
  content: { type: 'reasoning_text'; text: string }[];
}

export interface FunctionCallItem {
  id: string;
  type: 'function_call';
  status: ItemStatus;
  call_id: string;
  name: string;
  arguments: string;
}

export type OutputItem = OutputMessage | ReasoningItem | FunctionCallItem;

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

/** What changes while a response is generated; the rest comes from the request. */
export interface ResponseState {
  status: ResponseStatus;
  output: OutputItem[];
  usage: Usage | null;
  error: { code: string; message: string } | null;
  completedAt: number | null;
}

/** The fields of a Response fixed by its request: echoed as OpenAI does. */
export interface ResponseHeader {
  id: string;
  createdAt: number;
  store: boolean;
  parsed: ParsedResponses;
}

export function responseObject(header: ResponseHeader, state: ResponseState) {
  const body = header.parsed.body;
  const sampling = body as { temperature?: number | null; top_p?: number | null };
  return {
    id: header.id,
    object: 'response',
    created_at: header.createdAt,
    status: state.status,
    background: false,
    completed_at: state.completedAt,
    error: state.error,
    incomplete_details: state.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: null,
    model: header.parsed.model,
    output: state.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: header.parsed.previousResponseId,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    service_tier: 'default',
    store: header.store,
    temperature: sampling.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: header.parsed.tools.map((tool) => ({
      type: 'function',
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? true,
    })),
    top_logprobs: 0,
    top_p: sampling.top_p ?? 1,
    truncation: 'disabled',
    usage: state.usage === null ? null : toResponsesUsage(state.usage),
    user: body.user ?? null,
    safety_identifier: body.safety_identifier ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    metadata: body.metadata ?? {},
  };
}

export type ResponseObject = ReturnType<typeof responseObject>;

export function toResponsesUsage(usage: Usage) {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens },
    output_tokens: usage.completionTokens,
    // The worker counts one completion total; reasoning tokens are not told apart.
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/**
 * This request's input as stored items, each with an id (as `GET …/input_items` lists them): text
 * content becomes parts, as OpenAI normalises it.
 */
export function toStoredInputItems(items: ResponseInputItem[]): ResponseInputItem[] {
  return items.map((item) => {
    switch (item.type) {
      case undefined:
      case 'message': {
        const partType = item.role === 'assistant' ? 'output_text' : 'input_text';
        const content =
          typeof item.content === 'string'
            ? [
                {
                  type: partType,
                  text: item.content,
                  ...(partType === 'output_text' ? { annotations: [] } : {}),
                },
              ]
            : item.content;
        return {
          id: item.id ?? newItemId('msg'),
          type: 'message',
          role: item.role,
          content,
          status: item.status ?? 'completed',
        };
      }
      case 'function_call':
        return { ...item, id: item.id ?? newItemId('fc'), status: item.status ?? 'completed' };
      case 'function_call_output':
        return { ...item, id: item.id ?? newItemId('fco'), status: item.status ?? 'completed' };
      case 'reasoning':
        return { ...item, id: item.id ?? newItemId('rs') };
      case 'item_reference':
        return item;
    }
  });
}
