import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  JinjaTemplateChatWrapper,
  LlamaChatSession,
  LlamaLogLevel,
  getLlama,
  type Llama,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { LLAMA_PRESETS, writeLlamaGgufPreset } from '../src/index.js';

// The generated file run by the real engine: node-llama-cpp 3.22.1 on CPU. threads is always explicit:
// the default (more threads than this machine's cores) makes llama.cpp crawl.
describe('writeLlamaGguf: the model in node-llama-cpp', () => {
  let dir: string;
  let llama: Llama;
  let model: LlamaModel;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-gguf-'));
    const { path } = await writeLlamaGgufPreset(join(dir, 'smoke.gguf'), 'smoke', { seed: 1 });
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: path });
  });
  afterAll(async () => {
    await model?.dispose();
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function greedy(prompt: string, count: number): Promise<Token[]> {
    const context = await model.createContext({ threads: 1, contextSize: 256 });
    try {
      const tokens: Token[] = [];
      for await (const token of context.getSequence().evaluate(model.tokenize(prompt), { temperature: 0 })) {
        tokens.push(token);
        if (tokens.length === count) break;
      }
      return tokens;
    } finally {
      await context.dispose();
    }
  }

  it('loads with the requested shape', () => {
    const { shape } = LLAMA_PRESETS.smoke;
    expect(model.trainContextSize).toBe(shape.ctx);
    expect(model.embeddingVectorSize).toBe(shape.embd);
    expect(model.fileInsights.totalLayers).toBe(shape.layers + 1);
  });

  it('generates the same printable tokens greedily on every run, never stopping early', async () => {
    const first = await greedy('Once upon a time', 32);
    const second = await greedy('Once upon a time', 32);
    expect(first).toHaveLength(32);
    expect(second).toEqual(first);
    expect(model.detokenize(first)).toMatch(/^[\x20-\x7e]{32}$/);
    expect(new Set(first).size).toBeGreaterThan(4); // a context-dependent walk, not one repeated token
    expect(await greedy('A different prompt', 32)).not.toEqual(first);
  });

  it('tokenizes any UTF-8 text and detokenizes it back exactly', () => {
    for (const text of [
      'Hello, world!',
      'Crème brûlée à Zürich: ça coûte 5 €',
      'emoji 😀👍🏽 and 中文',
      ' two  spaces\n\ttab ',
    ]) {
      const tokens = model.tokenize(text);
      expect(model.detokenize(tokens)).toBe(text);
    }
    // Characters without a token of their own are spelled as UTF-8 bytes.
    expect(model.tokenize('é')).toHaveLength(2);
    expect(model.tokenize('😀')).toHaveLength(4);
  });

  it('chats through the Jinja chat template in the file', async () => {
    // One token per character (mostly): node-llama-cpp's default system prompt alone needs a few hundred.
    const context = await model.createContext({ threads: 1, contextSize: 1024 });
    try {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      expect(session.chatWrapper).toBeInstanceOf(JinjaTemplateChatWrapper);
      const reply = await session.prompt('Hi there', { maxTokens: 8, temperature: 0 });
      expect(reply.length).toBeGreaterThan(0);
    } finally {
      await context.dispose();
    }
  });

  it('produces embeddings of length n_embd', async () => {
    const context = await model.createEmbeddingContext({ threads: 1, contextSize: 128 });
    try {
      const { vector } = await context.getEmbeddingFor('hello');
      expect(vector).toHaveLength(LLAMA_PRESETS.smoke.shape.embd);
      expect(vector.every(Number.isFinite)).toBe(true);
    } finally {
      await context.dispose();
    }
  });
});
