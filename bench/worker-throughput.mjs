#!/usr/bin/env node
// Aggregate generation throughput of the worker over gRPC vs node-llama-cpp called in-process, with the same
// model, context size, sequences and threads, for 1 and 4 parallel sequences. Rounds alternate between the two
// so that machine noise hits both alike; the best round of each is reported, with the median beside it.
//
//   npm run bench:worker                 # stories260K (from AIRLOCK_TEST_MODELS_DIR) and the generated bench model
//   npm run bench:worker -- --rounds 5 --tokens 512 --threads 1 --models stories,bench
//
// Needs `npm run build` first (it starts apps/worker/dist/main.js).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import { getLlama, LlamaCompletion } from 'node-llama-cpp';
import { createWorkerClient } from '@airlock/contracts';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { findFreePort } from '@airlock/telemetry';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '' },
    threads: { type: 'string', default: '1' },
    models: { type: 'string', default: 'stories,bench' },
    parallel: { type: 'string', default: '1,4' },
  },
});
const rounds = Number(args.rounds);
const threads = Number(args.threads);
const PROMPT = 'Once upon a time';
const cacheDir = resolve('bench/.cache');

async function modelsToRun() {
  const wanted = args.models.split(',');
  const models = [];
  const storiesDir = process.env.AIRLOCK_TEST_MODELS_DIR ?? resolve('../shared/models');
  if (wanted.includes('stories') && existsSync(join(storiesDir, 'stories260K.gguf'))) {
    models.push({
      id: 'stories260K',
      path: join(storiesDir, 'stories260K.gguf'),
      contextSize: 2048,
      tokens: Number(args.tokens || 1024),
    });
  }
  if (wanted.includes('bench')) {
    mkdirSync(cacheDir, { recursive: true });
    const path = join(cacheDir, 'bench.gguf');
    if (!existsSync(path)) await writeLlamaGgufPreset(path, 'bench');
    models.push({ id: 'bench', path, contextSize: 1024, tokens: Number(args.tokens || 128) });
  }
  return models;
}

async function inProcessRound(context, parallel, tokens) {
  const sequences = Array.from({ length: parallel }, () => context.getSequence());
  const started = performance.now();
  const counts = await Promise.all(
    sequences.map(async (sequence) => {
      let generated = 0;
      const completion = new LlamaCompletion({ contextSequence: sequence });
      await completion.generateCompletion(PROMPT, {
        maxTokens: tokens,
        temperature: 0,
        onToken: (t) => (generated += t.length),
      });
      completion.dispose();
      return generated;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const sequence of sequences) sequence.dispose();
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

function grpcGeneration(client, modelId, tokens) {
  return new Promise((resolvePromise, reject) => {
    let completionTokens = 0;
    const call = client.complete(
      { model: modelId, prompt: PROMPT, sampling: { temperature: 0, maxTokens: tokens } },
      new Metadata(),
    );
    call.on('data', (event) => {
      if (event.event === 'finish') completionTokens = event.finish.usage.completionTokens;
    });
    call.on('error', reject);
    call.on('end', () => resolvePromise(completionTokens));
  });
}

async function grpcRound(client, modelId, parallel, tokens) {
  const started = performance.now();
  const counts = await Promise.all(
    Array.from({ length: parallel }, () => grpcGeneration(client, modelId, tokens)),
  );
  const seconds = (performance.now() - started) / 1000;
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

async function startWorker(model, parallel) {
  const dir = join(cacheDir, `worker-${model.id}-${parallel}`);
  mkdirSync(dir, { recursive: true });
  const catalog = join(dir, 'models.yaml');
  writeFileSync(
    catalog,
    `models:\n  - id: ${model.id}\n    path: ${model.path}\n    contextSize: ${model.contextSize}\n    parallel: ${parallel}\n    gpu: cpu\n    threads: ${threads}\n`,
  );
  const grpcPort = await findFreePort();
  const opsPort = await findFreePort();
  const child = spawn(process.execPath, ['apps/worker/dist/main.js'], {
    env: {
      ...process.env,
      AIRLOCK_MODELS_FILE: catalog,
      AIRLOCK_DATA_DIR: dir,
      AIRLOCK_GRPC_PORT: String(grpcPort),
      AIRLOCK_OPS_PORT: String(opsPort),
      AIRLOCK_LOG_LEVEL: 'error',
      // The benchmark calls the service directly (no gateway certificate): plaintext, asked for by name.
      AIRLOCK_INTERNAL_PLAINTEXT: 'true',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = createWorkerClient(`127.0.0.1:${grpcPort}`);
  return {
    client,
    async stop() {
      client.close();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const results = [];
for (const model of await modelsToRun()) {
  const loaded = await llama.loadModel({ modelPath: model.path });
  for (const parallel of args.parallel.split(',').map(Number)) {
    const context = await loaded.createContext({
      contextSize: model.contextSize,
      sequences: parallel,
      threads,
    });
    const worker = await startWorker(model, parallel);
    // Warm both paths once, then alternate.
    await inProcessRound(context, parallel, 16);
    await grpcRound(worker.client, model.id, parallel, 16);
    const local = [];
    const remote = [];
    for (let round = 0; round < rounds; round++) {
      local.push(await inProcessRound(context, parallel, model.tokens));
      remote.push(await grpcRound(worker.client, model.id, parallel, model.tokens));
    }
    await worker.stop();
    await context.dispose();
    const row = {
      model: model.id,
      parallel,
      tokensPerRequest: model.tokens,
      inProcessBest: Math.max(...local),
      grpcBest: Math.max(...remote),
      inProcessMedian: median(local),
      grpcMedian: median(remote),
    };
    row.ratioBest = row.grpcBest / row.inProcessBest;
    row.ratioMedian = row.grpcMedian / row.inProcessMedian;
    results.push(row);
    console.log(
      `${row.model.padEnd(12)} parallel ${parallel}: in-process ${row.inProcessBest.toFixed(0)} tok/s (median ${row.inProcessMedian.toFixed(0)}), ` +
        `gRPC worker ${row.grpcBest.toFixed(0)} tok/s (median ${row.grpcMedian.toFixed(0)}), ratio ${(row.ratioBest * 100).toFixed(1)}% (median ${(row.ratioMedian * 100).toFixed(1)}%)`,
    );
  }
  await loaded.dispose();
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/worker-throughput.json', JSON.stringify({ threads, rounds, results }, null, 2));
await llama.dispose();
