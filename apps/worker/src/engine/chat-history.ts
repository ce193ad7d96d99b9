import type { ChatMessage, ToolDefinition } from '@airlock/contracts';
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelFunctions } from 'node-llama-cpp';
import { invalidArgument } from './worker-errors.js';

/**
 * OpenAI-style messages → node-llama-cpp's chat history. Tool results are attached to the assistant's call
 * they answer (by tool_call_id), which is how node-llama-cpp renders them into the model's own format.
 * The history ends with an empty model turn: the one to generate.
 */
export function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  if (messages.length === 0) throw invalidArgument('messages must contain at least one message');
  const history: ChatHistoryItem[] = [];
  const openCalls = new Map<string, ChatModelFunctionCall>();

  messages.forEach((message, index) => {
    switch (message.role) {
      case 'CHAT_ROLE_SYSTEM':
        history.push({ type: 'system', text: message.content });
        break;
      case 'CHAT_ROLE_USER':
        history.push({ type: 'user', text: message.content });
        break;
      case 'CHAT_ROLE_ASSISTANT': {
        const response: (string | ChatModelFunctionCall)[] = message.content ? [message.content] : [];
        for (const call of message.toolCalls ?? []) {
          const functionCall: ChatModelFunctionCall = {
            type: 'functionCall',
            name: call.name,
            params: parseJson(call.argumentsJson, `messages[${index}].tool_calls arguments`),
            result: undefined,
          };
          openCalls.set(call.id, functionCall);
          response.push(functionCall);
        }
        history.push({ type: 'model', response });
        break;
      }
      case 'CHAT_ROLE_TOOL': {
        const call = openCalls.get(message.toolCallId ?? '');
        if (!call) {
          throw invalidArgument(
            `messages[${index}] answers tool call "${message.toolCallId}", which no assistant message made`,
          );
        }
        call.result = tryParseJson(message.content);
        openCalls.delete(message.toolCallId ?? '');
        break;
      }
      default:
        throw invalidArgument(`messages[${index}].role must be system, user, assistant or tool`);
    }
  });

  history.push({ type: 'model', response: [] });
  return history;
}

/** Tool definitions → node-llama-cpp's function map (their JSON Schemas become grammars). */
export function toChatFunctions(tools: ToolDefinition[]): ChatModelFunctions | undefined {
  if (tools.length === 0) return undefined;
  const functions: Record<string, ChatModelFunctions[string]> = {};
  tools.forEach((tool, index) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(tool.name)) {
      throw invalidArgument(`tools[${index}].function.name must be 1-64 letters, digits, "_" or "-"`);
    }
    functions[tool.name] = {
      description: tool.description || undefined,
      params: tool.parametersJsonSchema
        ? (parseJson(tool.parametersJsonSchema, `tools[${index}].function.parameters`) as never)
        : undefined,
    };
  });
  return functions;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text || '{}');
  } catch {
    throw invalidArgument(`${what} is not valid JSON`);
  }
}

function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
