import { open, rename, rm } from 'node:fs/promises';
import { BOS_TOKEN_ID, EOS_TOKEN_ID, UNK_TOKEN_ID, buildByteVocabulary } from './byte-vocabulary.js';
import {
  GGML_TYPE_SIZE,
  GGUF_ALIGNMENT,
  GgmlType,
  alignUp,
  encodeGgufHeader,
  tensorByteSize,
  type GgufTensorInfo,
  type GgufValue,
} from './gguf-format.js';
import { createWeightGenerator, hashString, toFloat16Bits } from './weights.js';

/** The dimensions of a llama model; names follow the CLI flags of `scripts/generate-gguf.mjs`. */
export interface LlamaShape {
  /** Transformer blocks (`llama.block_count`). */
  layers: number;
  /** Hidden size (`llama.embedding_length`); a multiple of `heads`. */
  embd: number;
  /** Attention heads (`llama.attention.head_count`); embd / heads must be even (RoPE pairs). */
  heads: number;
  /** Key/value heads (`llama.attention.head_count_kv`); divides `heads` (grouped-query attention). */
  kvHeads: number;
  /** Feed-forward size (`llama.feed_forward_length`). */
  ff: number;
  /** Training context length (`llama.context_length`): the largest context a runtime will offer. */
  ctx: number;
}

export type LlamaTensorType = 'f32' | 'f16';

export interface WriteLlamaGgufOptions {
  /** PRNG seed (uint32); the same seed, shape and options give a byte-identical file. Default 1. */
  seed?: number;
  /** Element type of the 2-D weight matrices; norms stay F32 as in converted models. Default 'f32'. */
  tensorType?: LlamaTensorType;
  /** `general.name`. Default "airlock-synthetic-llama". */
  name?: string;
  /** `tokenizer.chat_template`: a Jinja template, or false to leave it out. Default {@link DEFAULT_CHAT_TEMPLATE}. */
  chatTemplate?: string | false;
  /**
   * Random weights have standard deviation weightGain / √(row length), as in Xavier/He initialisation,
   * so activations stay in range whatever the width (F16 included). Default {@link DEFAULT_WEIGHT_GAIN}.
   */
  weightGain?: number;
}

export interface LlamaGgufSummary {
  path: string;
  bytes: number;
  parameters: number;
  vocabularySize: number;
  tensorCount: number;
  shape: LlamaShape;
  tensorType: LlamaTensorType;
  seed: number;
  chatTemplate: boolean;
}

export interface LlamaPreset {
  shape: LlamaShape;
  tensorType: LlamaTensorType;
  description: string;
}

export type LlamaPresetName = 'smoke' | 'bench';

export const LLAMA_PRESETS: Readonly<Record<LlamaPresetName, LlamaPreset>> = {
  smoke: {
    shape: { layers: 2, embd: 64, heads: 4, kvHeads: 2, ff: 128, ctx: 2048 },
    tensorType: 'f32',
    description:
      'tiny (~0.5 MB, 0.12 M parameters, F32): unit tests and the quick start; loads in milliseconds',
  },
  bench: {
    // ~100 M parameters in F16 (~200 MB): per-token matrix work dwarfs RPC and HTTP overhead.
    shape: { layers: 16, embd: 768, heads: 12, kvHeads: 4, ff: 2048, ctx: 4096 },
    tensorType: 'f16',
    description: '~101 M parameters, F16 (~203 MB): benchmarks where compute, not overhead, dominates',
  },
};

/** Renders chats as "User: …" / "Assistant: …" turns; the same template as stories260K-chat.gguf. */
export const DEFAULT_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}\n\n" +
  "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n" +
  "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}{{ eos_token }}\n" +
  '{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}';

/** Large enough that greedy output depends on the context instead of settling into one repeated token. */
export const DEFAULT_WEIGHT_GAIN = 2;
const RMS_NORM_EPSILON = 1e-5;
const ROPE_FREQ_BASE = 10000;
/** Elements generated per write: bounded memory whatever the model size. */
const CHUNK_ELEMENTS = 1 << 18;
/** `general.file_type` (`llama_ftype`): ALL_F32 = 0, MOSTLY_F16 = 1. */
const FILE_TYPE: Readonly<Record<LlamaTensorType, number>> = { f32: 0, f16: 1 };

/** How a tensor's values are filled. */
type TensorFill = 'ones' | 'random' | 'output';

interface PlannedTensor extends GgufTensorInfo {
  fill: TensorFill;
}

export function validateLlamaShape(shape: LlamaShape): void {
  for (const key of ['layers', 'embd', 'heads', 'kvHeads', 'ff', 'ctx'] as const) {
    const value = shape[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`GGUF shape: ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (shape.embd % shape.heads !== 0) {
    throw new RangeError(`GGUF shape: embd (${shape.embd}) must be a multiple of heads (${shape.heads})`);
  }
  if ((shape.embd / shape.heads) % 2 !== 0) {
    throw new RangeError(
      `GGUF shape: head size embd/heads (${shape.embd / shape.heads}) must be even for RoPE`,
    );
  }
  if (shape.heads % shape.kvHeads !== 0) {
    throw new RangeError(`GGUF shape: kvHeads (${shape.kvHeads}) must divide heads (${shape.heads})`);
  }
}

function planTensors(shape: LlamaShape, vocabularySize: number, type: GgmlType): PlannedTensor[] {
  const kvEmbd = (shape.embd / shape.heads) * shape.kvHeads;
  const norm = (name: string): PlannedTensor => ({
    name,
    dims: [shape.embd],
    type: GgmlType.F32,
    fill: 'ones',
  });
  const matrix = (name: string, inputs: number, outputs: number): PlannedTensor => ({
    name,
    dims: [inputs, outputs],
    type,
    fill: 'random',
  });
  const tensors: PlannedTensor[] = [
    matrix('token_embd.weight', shape.embd, vocabularySize),
    norm('output_norm.weight'),
    { ...matrix('output.weight', shape.embd, vocabularySize), fill: 'output' },
  ];
  for (let layer = 0; layer < shape.layers; layer++) {
    const block = `blk.${layer}`;
    tensors.push(
      norm(`${block}.attn_norm.weight`),
      matrix(`${block}.attn_q.weight`, shape.embd, shape.embd),
      matrix(`${block}.attn_k.weight`, shape.embd, kvEmbd),
      matrix(`${block}.attn_v.weight`, shape.embd, kvEmbd),
      matrix(`${block}.attn_output.weight`, shape.embd, shape.embd),
      norm(`${block}.ffn_norm.weight`),
      matrix(`${block}.ffn_gate.weight`, shape.embd, shape.ff),
      matrix(`${block}.ffn_up.weight`, shape.embd, shape.ff),
      matrix(`${block}.ffn_down.weight`, shape.ff, shape.embd),
    );
  }
  return tensors;
}

function elementCount(tensor: GgufTensorInfo): number {
  return tensor.dims.reduce((product, dim) => product * dim, 1);
}

/** Parameters of a llama model of this shape with the byte vocabulary (what the file will hold). */
export function countLlamaParameters(shape: LlamaShape): number {
  validateLlamaShape(shape);
  const tensors = planTensors(shape, buildByteVocabulary().tokens.length, GgmlType.F32);
  return tensors.reduce((sum, tensor) => sum + elementCount(tensor), 0);
}

function buildMetadata(
  shape: LlamaShape,
  options: Required<Pick<WriteLlamaGgufOptions, 'tensorType' | 'name' | 'chatTemplate'>>,
): Array<[string, GgufValue]> {
  const vocabulary = buildByteVocabulary();
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: options.name }],
    ['general.alignment', u32(GGUF_ALIGNMENT)],
    ['general.file_type', u32(FILE_TYPE[options.tensorType])],
    ['llama.context_length', u32(shape.ctx)],
    ['llama.embedding_length', u32(shape.embd)],
    ['llama.block_count', u32(shape.layers)],
    ['llama.feed_forward_length', u32(shape.ff)],
    ['llama.rope.dimension_count', u32(shape.embd / shape.heads)],
    ['llama.rope.freq_base', { type: 'f32', value: ROPE_FREQ_BASE }],
    ['llama.attention.head_count', u32(shape.heads)],
    ['llama.attention.head_count_kv', u32(shape.kvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: RMS_NORM_EPSILON }],
    ['llama.vocab_size', u32(vocabulary.tokens.length)],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: vocabulary.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: vocabulary.scores }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocabulary.types }],
    ['tokenizer.ggml.bos_token_id', u32(BOS_TOKEN_ID)],
    ['tokenizer.ggml.eos_token_id', u32(EOS_TOKEN_ID)],
    ['tokenizer.ggml.unknown_token_id', u32(UNK_TOKEN_ID)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    // No implicit leading space: detokenize(tokenize(text)) gives back exactly `text`.
    ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: false }],
  ];
  if (options.chatTemplate !== false) {
    metadata.push(['tokenizer.chat_template', { type: 'string', value: options.chatTemplate }]);
  }
  return metadata;
}

/**
 * Fills one tensor chunk by chunk. `output` rows (one per token) are random only for text tokens and
 * zero for control and byte tokens, so greedy decoding never ends on EOS and always yields printable ASCII.
 */
function* tensorChunks(
  tensor: PlannedTensor,
  seed: number,
  gain: number,
  firstTextTokenId: number,
): Generator<Buffer> {
  const total = elementCount(tensor);
  const elementSize = GGML_TYPE_SIZE[tensor.type];
  const rowLength = tensor.dims[0];
  const nextWeight = createWeightGenerator(hashString(tensor.name, seed), gain / Math.sqrt(rowLength));
  for (let start = 0; start < total; start += CHUNK_ELEMENTS) {
    const count = Math.min(CHUNK_ELEMENTS, total - start);
    const chunk = Buffer.alloc(count * elementSize);
    for (let i = 0; i < count; i++) {
      const index = start + i;
      let value: number;
      if (tensor.fill === 'ones') value = 1;
      else if (tensor.fill === 'output' && Math.floor(index / rowLength) < firstTextTokenId) value = 0;
      else value = nextWeight();
      if (tensor.type === GgmlType.F32) chunk.writeFloatLE(value, i * 4);
      else chunk.writeUInt16LE(toFloat16Bits(value), i * 2);
    }
    yield chunk;
  }
}

/**
 * Writes a llama-architecture GGUF v3 with the byte vocabulary and seeded pseudo-random weights.
 * Tensors are streamed to disk in small chunks (a 200 M-parameter model never sits in memory), into a
 * temporary file that is renamed over `path` once complete, so readers never see a half-written model.
 */
export async function writeLlamaGguf(
  path: string,
  shape: LlamaShape,
  options: WriteLlamaGgufOptions = {},
): Promise<LlamaGgufSummary> {
  validateLlamaShape(shape);
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`GGUF seed must be an integer in [0, 2^32), got ${String(seed)}`);
  }
  const resolved = {
    tensorType: options.tensorType ?? 'f32',
    name: options.name ?? 'airlock-synthetic-llama',
    chatTemplate: options.chatTemplate ?? DEFAULT_CHAT_TEMPLATE,
  } as const;
  if (resolved.tensorType !== 'f32' && resolved.tensorType !== 'f16') {
    throw new RangeError(`GGUF tensorType must be 'f32' or 'f16', got ${String(resolved.tensorType)}`);
  }
  const gain = options.weightGain ?? DEFAULT_WEIGHT_GAIN;
  if (!Number.isFinite(gain) || gain <= 0) {
    throw new RangeError(`GGUF weightGain must be a positive number, got ${String(gain)}`);
  }
  const vocabulary = buildByteVocabulary();
  const matrixType = resolved.tensorType === 'f16' ? GgmlType.F16 : GgmlType.F32;
  const tensors = planTensors(shape, vocabulary.tokens.length, matrixType);
  const header = encodeGgufHeader(buildMetadata(shape, resolved), tensors);

  const temporaryPath = `${path}.${process.pid}.${Date.now()}.partial`;
  const file = await open(temporaryPath, 'w');
  let bytes = 0;
  try {
    const write = async (chunk: Buffer): Promise<void> => {
      await file.write(chunk);
      bytes += chunk.length;
    };
    await write(header);
    for (const tensor of tensors) {
      for (const chunk of tensorChunks(tensor, seed, gain, vocabulary.firstTextTokenId)) await write(chunk);
      const padding = alignUp(tensorByteSize(tensor)) - tensorByteSize(tensor);
      if (padding > 0) await write(Buffer.alloc(padding));
    }
    await file.close();
    await rename(temporaryPath, path);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temporaryPath, { force: true });
    throw error;
  }
  return {
    path,
    bytes,
    parameters: tensors.reduce((sum, tensor) => sum + elementCount(tensor), 0),
    vocabularySize: vocabulary.tokens.length,
    tensorCount: tensors.length,
    shape: { ...shape },
    tensorType: resolved.tensorType,
    seed,
    chatTemplate: resolved.chatTemplate !== false,
  };
}

/** {@link writeLlamaGguf} with a named preset; `options` may override the preset's tensor type. */
export async function writeLlamaGgufPreset(
  path: string,
  preset: LlamaPresetName,
  options: WriteLlamaGgufOptions = {},
): Promise<LlamaGgufSummary> {
  const chosen = Object.hasOwn(LLAMA_PRESETS, preset) ? LLAMA_PRESETS[preset] : undefined;
  if (!chosen)
    throw new RangeError(
      `Unknown GGUF preset "${String(preset)}"; known: ${Object.keys(LLAMA_PRESETS).join(', ')}`,
    );
  return writeLlamaGguf(path, chosen.shape, {
    ...options,
    tensorType: options.tensorType ?? chosen.tensorType,
  });
}
