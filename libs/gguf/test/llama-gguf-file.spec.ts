import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import {
  BOS_TOKEN_ID,
  EOS_TOKEN_ID,
  LLAMA_PRESETS,
  UNK_TOKEN_ID,
  countLlamaParameters,
  writeLlamaGguf,
  writeLlamaGgufPreset,
  type LlamaShape,
} from '../src/index.js';
import { toFloat16Bits } from '../src/weights.js';

// The file format, checked by node-llama-cpp's own GGUF parser (not by our writer's assumptions).
describe('writeLlamaGguf: the file', () => {
  let dir: string;
  const sha256 = async (path: string) =>
    createHash('sha256')
      .update(await readFile(path))
      .digest('hex');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-gguf-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the requested shape as llama metadata, byte vocabulary and tensors', async () => {
    const shape: LlamaShape = { layers: 3, embd: 48, heads: 6, kvHeads: 3, ff: 80, ctx: 1024 };
    const path = join(dir, 'shape.gguf');
    const summary = await writeLlamaGguf(path, shape, { seed: 7, name: 'shape-test' });
    const info = await readGgufFileInfo(path, { logWarnings: false });

    expect(info.version).toBe(3);
    expect(info.metadata.general).toMatchObject({ architecture: 'llama', name: 'shape-test', alignment: 32 });
    expect(info.metadata.llama).toMatchObject({
      context_length: 1024,
      embedding_length: 48,
      block_count: 3,
      feed_forward_length: 80,
      rope: { dimension_count: 8 },
      attention: { head_count: 6, head_count_kv: 3 },
    });
    expect(info.metadata.llama?.attention.layer_norm_rms_epsilon).toBeCloseTo(1e-5, 10);

    const tokenizer = info.metadata.tokenizer;
    expect(tokenizer.ggml.model).toBe('llama');
    const tokens = tokenizer.ggml.tokens as string[];
    const types = tokenizer.ggml.token_type as number[];
    expect(tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect([
      tokenizer.ggml.unknown_token_id,
      tokenizer.ggml.bos_token_id,
      tokenizer.ggml.eos_token_id,
    ]).toEqual([UNK_TOKEN_ID, BOS_TOKEN_ID, EOS_TOKEN_ID]);
    const byteTokens = tokens.filter((_, id) => types[id] === 6);
    expect(byteTokens).toHaveLength(256);
    expect(byteTokens[0]).toBe('<0x00>');
    expect(byteTokens[255]).toBe('<0xFF>');
    expect(tokens).toHaveLength(summary.vocabularySize);
    expect(tokenizer.chat_template).toContain('add_generation_prompt');

    const tensors = new Map(info.tensorInfo!.map((t) => [t.name, t]));
    expect(tensors.size).toBe(3 + 9 * shape.layers);
    expect(summary.tensorCount).toBe(tensors.size);
    const dims = (name: string) => tensors.get(name)!.dimensions.map(Number);
    expect(dims('token_embd.weight')).toEqual([48, summary.vocabularySize]);
    expect(dims('output.weight')).toEqual([48, summary.vocabularySize]);
    expect(dims('output_norm.weight')).toEqual([48]);
    expect(dims('blk.2.attn_q.weight')).toEqual([48, 48]);
    expect(dims('blk.2.attn_k.weight')).toEqual([48, 24]);
    expect(dims('blk.2.attn_v.weight')).toEqual([48, 24]);
    expect(dims('blk.2.attn_output.weight')).toEqual([48, 48]);
    expect(dims('blk.2.ffn_gate.weight')).toEqual([48, 80]);
    expect(dims('blk.2.ffn_up.weight')).toEqual([48, 80]);
    expect(dims('blk.2.ffn_down.weight')).toEqual([80, 48]);
    expect(dims('blk.2.ffn_norm.weight')).toEqual([48]);
    for (const tensor of tensors.values()) expect(Number(tensor.fileOffset) % 32).toBe(0);

    const parameters = [...tensors.values()].reduce(
      (sum, t) => sum + dims(t.name).reduce((a, b) => a * b, 1),
      0,
    );
    expect(summary.parameters).toBe(parameters);
    expect(countLlamaParameters(shape)).toBe(parameters);
    expect((await stat(path)).size).toBe(summary.bytes);
    expect(await readdir(dir)).toEqual(['shape.gguf']); // no temporary file left behind
  });

  it('is byte-identical for the same seed and differs for another seed', async () => {
    const [a, b, c] = ['a.gguf', 'b.gguf', 'c.gguf'].map((name) => join(dir, name));
    await writeLlamaGgufPreset(a, 'smoke', { seed: 42 });
    await writeLlamaGgufPreset(b, 'smoke', { seed: 42 });
    await writeLlamaGgufPreset(c, 'smoke', { seed: 43 });
    expect(await sha256(a)).toBe(await sha256(b));
    expect(await sha256(a)).not.toBe(await sha256(c));
  });

  it('writes F16 matrices at half the size and can leave the chat template out', async () => {
    const shape = LLAMA_PRESETS.smoke.shape;
    const f32 = await writeLlamaGguf(join(dir, 'f32.gguf'), shape, { tensorType: 'f32' });
    const f16 = await writeLlamaGguf(join(dir, 'f16.gguf'), shape, {
      tensorType: 'f16',
      chatTemplate: false,
    });
    const info = await readGgufFileInfo(f16.path, { logWarnings: false });
    expect(info.metadata.general.file_type).toBe(1);
    expect(info.metadata.tokenizer?.chat_template).toBeUndefined();
    expect(info.tensorInfo!.find((t) => t.name === 'blk.0.attn_q.weight')!.ggmlType).toBe(1);
    expect(info.tensorInfo!.find((t) => t.name === 'blk.0.attn_norm.weight')!.ggmlType).toBe(0);
    expect(f16.parameters).toBe(f32.parameters);
    expect(f16.bytes).toBeLessThan(f32.bytes * 0.6);
  });

  it('rejects shapes llama.cpp cannot run, with the reason', async () => {
    const smoke = LLAMA_PRESETS.smoke.shape;
    const path = join(dir, 'bad.gguf');
    await expect(writeLlamaGguf(path, { ...smoke, embd: 65 })).rejects.toThrow(/multiple of heads/);
    await expect(writeLlamaGguf(path, { ...smoke, kvHeads: 3 })).rejects.toThrow(/must divide heads/);
    await expect(writeLlamaGguf(path, { ...smoke, embd: 12, heads: 4 })).rejects.toThrow(/even/);
    await expect(writeLlamaGguf(path, { ...smoke, layers: 0 })).rejects.toThrow(/layers must be a positive/);
    await expect(writeLlamaGguf(path, smoke, { seed: -1 })).rejects.toThrow(/seed/);
    await expect(writeLlamaGgufPreset(path, 'huge' as 'smoke')).rejects.toThrow(/Unknown GGUF preset "huge"/);
  });

  it('converts to float16 with round-to-nearest-even', () => {
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(0.1)).toBe(0x2e66);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(1e6)).toBe(0x7c00);
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toFloat16Bits(2 ** -26)).toBe(0x0000);
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway, ties to even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});
