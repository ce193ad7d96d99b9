import type { SamplingParams } from '@airlock/contracts';
import { invalidArgument } from './worker-errors.js';

/** Sampling options in node-llama-cpp's terms, shared by chat and raw completion. */
export interface LlamaSampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  repeatPenalty?: { penalty?: number; frequencyPenalty?: number; presencePenalty?: number };
  customStopTriggers?: string[];
}

interface Range {
  field: keyof SamplingParams;
  /** The OpenAI-side name, so errors name what the client sent. */
  name: string;
  min: number;
  max: number;
  integer?: boolean;
}

// Differences are data: each parameter's name and bounds in one table.
const RANGES: Range[] = [
  { field: 'temperature', name: 'temperature', min: 0, max: 2 },
  { field: 'topP', name: 'top_p', min: 0, max: 1 },
  { field: 'topK', name: 'top_k', min: 0, max: 100_000, integer: true },
  { field: 'minP', name: 'min_p', min: 0, max: 1 },
  { field: 'seed', name: 'seed', min: 0, max: 4_294_967_295, integer: true },
  { field: 'frequencyPenalty', name: 'frequency_penalty', min: -2, max: 2 },
  { field: 'presencePenalty', name: 'presence_penalty', min: -2, max: 2 },
  { field: 'repeatPenalty', name: 'repeat_penalty', min: 0, max: 10 },
  { field: 'maxTokens', name: 'max_tokens', min: 0, max: 1_048_576, integer: true },
];

export const MAX_STOP_SEQUENCES = 16;
export const MAX_STOP_SEQUENCE_LENGTH = 256;

/** Checks every value and translates to node-llama-cpp's options; throws INVALID_ARGUMENT naming the field. */
export function toLlamaSampling(params: SamplingParams | undefined): LlamaSampling {
  const p = params ?? {};
  for (const range of RANGES) {
    const value = p[range.field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw invalidArgument(`${range.name} must be a number`);
    if (value < range.min || value > range.max) {
      throw invalidArgument(`${range.name} must be between ${range.min} and ${range.max}, got ${value}`);
    }
    if (range.integer && !Number.isInteger(value)) throw invalidArgument(`${range.name} must be an integer`);
  }
  const stop = (p.stop ?? []).filter((s) => s.length > 0);
  if (stop.length > MAX_STOP_SEQUENCES)
    throw invalidArgument(`stop takes at most ${MAX_STOP_SEQUENCES} sequences`);
  if (stop.some((s) => s.length > MAX_STOP_SEQUENCE_LENGTH)) {
    throw invalidArgument(`each stop sequence must be at most ${MAX_STOP_SEQUENCE_LENGTH} characters`);
  }

  const penalties =
    p.repeatPenalty !== undefined || p.frequencyPenalty !== undefined || p.presencePenalty !== undefined
      ? { penalty: p.repeatPenalty, frequencyPenalty: p.frequencyPenalty, presencePenalty: p.presencePenalty }
      : undefined;

  return {
    temperature: p.temperature,
    topP: p.topP,
    topK: p.topK,
    minP: p.minP,
    seed: p.seed,
    repeatPenalty: penalties,
    customStopTriggers: stop.length > 0 ? stop : undefined,
  };
}
