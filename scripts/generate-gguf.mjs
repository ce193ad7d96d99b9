#!/usr/bin/env node
// Writes a synthetic llama GGUF (byte vocabulary, seeded random weights) for tests, the quick start and
// benchmarks, so nothing has to be downloaded. Needs the built library: `npx nx run gguf:build` or `npm run build`.
//
//   node scripts/generate-gguf.mjs --out models/smoke.gguf                  # preset smoke (default)
//   node scripts/generate-gguf.mjs --out models/bench.gguf --preset bench   # ~100 M parameters, F16
//   node scripts/generate-gguf.mjs --out m.gguf --layers 4 --embd 256 --heads 8 --kv-heads 4 --ff 512 --seed 7
import { parseArgs } from 'node:util';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LLAMA_PRESETS, writeLlamaGguf } from '@airlock/gguf';

const usage = `usage: node scripts/generate-gguf.mjs --out <file.gguf> [--preset ${Object.keys(LLAMA_PRESETS).join('|')}]
       [--layers N] [--embd N] [--heads N] [--kv-heads N] [--ff N] [--ctx N]
       [--type f32|f16] [--seed N] [--name TEXT] [--no-chat-template]`;

const shapeFlags = {
  layers: 'layers',
  embd: 'embd',
  heads: 'heads',
  'kv-heads': 'kvHeads',
  ff: 'ff',
  ctx: 'ctx',
};

function integer(flag, text) {
  if (!/^\d+$/.test(text)) throw new Error(`--${flag} must be a non-negative integer, got "${text}"`);
  return Number(text);
}

async function main() {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', short: 'o' },
      preset: { type: 'string', default: 'smoke' },
      ...Object.fromEntries(Object.keys(shapeFlags).map((flag) => [flag, { type: 'string' }])),
      type: { type: 'string' },
      seed: { type: 'string' },
      name: { type: 'string' },
      'no-chat-template': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (!values.out) throw new Error(`--out is required\n${usage}`);
  const preset = Object.hasOwn(LLAMA_PRESETS, values.preset) ? LLAMA_PRESETS[values.preset] : undefined;
  if (!preset)
    throw new Error(`unknown --preset "${values.preset}"; known: ${Object.keys(LLAMA_PRESETS).join(', ')}`);

  const shape = { ...preset.shape };
  for (const [flag, key] of Object.entries(shapeFlags)) {
    if (values[flag] !== undefined) shape[key] = integer(flag, values[flag]);
  }
  const out = resolve(values.out);
  await mkdir(dirname(out), { recursive: true });
  const started = performance.now();
  const summary = await writeLlamaGguf(out, shape, {
    tensorType: values.type ?? preset.tensorType,
    seed: values.seed === undefined ? undefined : integer('seed', values.seed),
    name: values.name,
    chatTemplate: values['no-chat-template'] ? false : undefined,
  });
  const seconds = (performance.now() - started) / 1000;
  const { layers, embd, heads, kvHeads, ff, ctx } = summary.shape;
  console.log(
    `wrote ${summary.path}: ${(summary.bytes / 1e6).toFixed(2)} MB, ${(summary.parameters / 1e6).toFixed(2)} M parameters, ` +
      `${summary.tensorType}, layers ${layers}, embd ${embd}, heads ${heads}/${kvHeads} kv, ff ${ff}, ctx ${ctx}, ` +
      `vocab ${summary.vocabularySize}, seed ${summary.seed}, chat template ${summary.chatTemplate ? 'yes' : 'no'} ` +
      `(${seconds.toFixed(1)} s)`,
  );
}

main().catch((error) => {
  console.error(`generate-gguf: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
