import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalogForSingleModel, readCatalogFile } from './model-catalog.js';

describe('model catalog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-catalog-'));
  const write = (text: string) => {
    const file = join(dir, `${Math.random()}.yaml`);
    writeFileSync(file, text);
    return file;
  };

  it('reads entries with defaults and resolves paths relative to the file', async () => {
    const file = write(`
models:
  - id: gpt-oss-20b
    path: models/gpt-oss-20b.gguf
    sha256: ${'AB'.repeat(32)}
    contextSize: 8192
    parallel: 8
    gpuLayers: max
    gpu: cuda
  - id: embedder
    path: /models/e.gguf
    embeddings: true
    chatTemplate: "{{ messages }}"
`);
    const [big, embedder] = await readCatalogFile(file);
    expect(big).toEqual({
      id: 'gpt-oss-20b',
      path: join(dir, 'models/gpt-oss-20b.gguf'),
      engine: 'node-llama-cpp',
      sha256: 'ab'.repeat(32),
      contextSize: 8192,
      parallel: 8,
      queueSize: 64,
      gpuLayers: 'max',
      gpu: 'cuda',
      embeddings: false,
      parts: [],
    });
    expect(embedder).toMatchObject({
      path: '/models/e.gguf',
      embeddings: true,
      parallel: 4,
      gpuLayers: 'auto',
      gpu: 'auto',
    });
  });

  it.each([
    [
      'a typo in a key',
      'models:\n  - id: a\n    path: a.gguf\n    paralel: 2\n',
      /Unrecognized key.*paralel/,
    ],
    [
      'a bad sha256',
      'models:\n  - id: a\n    path: a.gguf\n    sha256: abc\n',
      /sha256: a 64-digit hex SHA-256/,
    ],
    ['a bad backend', 'models:\n  - id: a\n    path: a.gguf\n    gpu: metal\n', /models\.0\.gpu/],
    [
      'a duplicate id',
      'models:\n  - id: a\n    path: a.gguf\n  - id: a\n    path: b.gguf\n',
      /"a" appears twice/,
    ],
    ['an id with spaces', 'models:\n  - id: my model\n    path: a.gguf\n', /models\.0\.id/],
    ['no models', 'models: []\n', /models/],
    ['an unknown engine', 'models:\n  - id: a\n    path: a.gguf\n    engine: vllm\n', /models\.0\.engine/],
    ['broken YAML', 'models: [\n', /cannot read model catalog/],
  ])('rejects %s with a message naming it', async (_name, text, message) => {
    await expect(readCatalogFile(write(text))).rejects.toThrow(message);
  });

  it('derives the id from AIRLOCK_MODEL’s file name', () => {
    expect(catalogForSingleModel('/models/gpt-oss-20b-mxfp4.gguf')[0]).toMatchObject({
      id: 'gpt-oss-20b-mxfp4',
      path: '/models/gpt-oss-20b-mxfp4.gguf',
    });
  });
});
