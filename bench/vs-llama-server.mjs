#!/usr/bin/env node
// Airlock's whole audited path (HTTP → gateway → auth-audit Authorize/Complete → worker, three processes, keys
// and audit on) beside llama.cpp's own llama-server, built from the llama.cpp source node-llama-cpp ships
// (bench/llama-cpp-build.mjs; cached outside the repo), on the same model, threads and slots. Both take the same
// OpenAI /v1/completions requests from this process, in alternating rounds (several, medians reported) so that
// the load other users put on the machine hits both alike; the load average is recorded with every figure.
//
//   npm run bench:vs-llama
//   node bench/vs-llama-server.mjs --models bench,stories --streams 1,4,8,16 --rounds 3 --threads 1
//   node bench/vs-llama-server.mjs --models stories --phases short,latency --database pglite
//   node bench/vs-llama-server.mjs --engine llama-server    # Airlock's worker on its llama-server engine
//
// Phases:
//   streams   tokens/s with 1, 4, 8 and 16 concurrent streamed completions (each client runs `--requests`
//             of `--tokens` tokens); slots = the largest stream count on both sides
//   short     short requests/s: `--short-clients` closed-loop clients, max_tokens 1, for `--short-seconds`
//   latency   one client, max_tokens 1, sequential: p50 through the gateway, at the worker directly (gRPC) and
//             at llama-server; "added" = gateway p50 − worker p50
// Engines: `--engine node-llama-cpp` (default: the worker runs llama.cpp in process through node-llama-cpp) or
// `--engine llama-server` (the worker runs the same llama-server binary as its child process, catalog
// `engine: llama-server`): the yardstick is the same llama-server either way.
// Models: `bench` (the generated ~100 M-parameter F16 model, libs/gguf preset "bench", made on first use in
// bench/.cache) and `stories` (stories260K from AIRLOCK_TEST_MODELS_DIR / ../shared/models).
// Prints ratios against the targets of issue 10 and writes bench/results/vs-llama-server.json.
import { spawn } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata } from '@grpc/grpc-js';
import pg from 'pg';
import { createWorkerClient } from '@airlock/contracts';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { findFreePort } from '@airlock/telemetry';
import { llamaCppTools } from './llama-cpp-build.mjs';
import { cpuByProcess, cpuPercent } from './process-cpu.mjs';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'bench,stories' },
    phases: { type: 'string', default: 'streams,short,latency' },
    streams: { type: 'string', default: '1,4,8,16' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    // Tokens per streamed request; default 64 on the bench model, 256 on stories260K.
    tokens: { type: 'string', default: '' },
    requests: { type: 'string', default: '2' },
    'short-clients': { type: 'string', default: '32' },
    'short-seconds': { type: 'string', default: '5' },
    'latency-requests': { type: 'string', default: '200' },
    database: { type: 'string', default: 'postgres' },
    engine: { type: 'string', default: 'node-llama-cpp' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    out: { type: 'string', default: 'bench/results/vs-llama-server.json' },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const PROMPT = 'Once upon a time';
const phases = new Set(args.phases.split(','));
const streamCounts = args.streams.split(',').map(Number);
const slots = Math.max(...streamCounts);
const rounds = Number(args.rounds);
const threads = Number(args.threads);
const CONTEXT_SIZE = 1024;
if (!['node-llama-cpp', 'llama-server'].includes(args.engine)) {
  throw new Error(`--engine must be node-llama-cpp or llama-server, not ${args.engine}`);
}

// ---------------------------------------------------------------- processes

const children = [];

function startProcess(name, command, commandArgs, env) {
  const child = spawn(command, commandArgs, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The services log to stdout (JSON lines, warn and above here); llama-server to stderr.
  let tail = '';
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk) => (tail = (tail + chunk).slice(-4000)));
  child.label = name;
  child.outputTail = () => tail;
  children.push(child);
  return child;
}

function startService(app, env) {
  const main = join(ROOT, 'apps', app, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  // Plaintext internal gRPC on loopback, as the other benches: the comparison is about inference, not TLS.
  return startProcess(app, process.execPath, [main], {
    AIRLOCK_LOG_LEVEL: 'warn',
    AIRLOCK_INTERNAL_PLAINTEXT: 'true',
    ...env,
  });
}

async function waitHttp(child, url, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${child.label} exited: ${child.outputTail()}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${child.label} not ready in ${timeoutMs} ms`);
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(20_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function stopAll() {
  // Gateway first, then the others.
  for (const child of [...children].reverse()) await stop(child);
  children.length = 0;
}

// ---------------------------------------------------------------- the two servers

async function startLlamaServer(tools, model) {
  const port = await findFreePort();
  const child = startProcess('llama-server', tools['llama-server'], [
    '--model',
    model.path,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--threads',
    String(threads),
    '--threads-batch',
    String(threads),
    '--parallel',
    String(slots),
    '--ctx-size',
    String(CONTEXT_SIZE * slots),
    '--no-webui',
    '--log-disable',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(child, `${url}/health`);
  return {
    name: 'llama-server',
    url,
    apiKey: 'unused',
    model: model.id,
    processes: { 'llama-server': child.pid },
  };
}

async function startAirlock(tools, model, dataDir) {
  const adminKey = `alk_benchadmin_${randomBytes(32).toString('base64url')}`;
  const ports = {};
  for (const name of ['authGrpc', 'authOps', 'workerGrpc', 'workerOps', 'gateway', 'gatewayOps'])
    ports[name] = await findFreePort();
  let databaseUrl;
  let databaseName;
  if (args.database === 'postgres') {
    databaseName = `airlock_bench_${randomBytes(6).toString('hex')}`;
    const client = new pg.Client({ connectionString: args['database-url'] });
    await client.connect();
    await client.query(`CREATE DATABASE "${databaseName}"`);
    await client.end();
    const url = new URL(args['database-url']);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
  }
  const catalog = join(dataDir, `${model.id}.yaml`);
  writeFileSync(
    catalog,
    `models:\n  - id: ${model.id}\n    engine: ${args.engine}\n    path: ${model.path}\n    contextSize: ${CONTEXT_SIZE}\n` +
      `    parallel: ${slots}\n    queueSize: 4096\n    gpu: cpu\n    threads: ${threads}\n`,
  );
  const worker = startService('worker', {
    AIRLOCK_MODELS_FILE: catalog,
    AIRLOCK_GRPC_PORT: String(ports.workerGrpc),
    AIRLOCK_OPS_PORT: String(ports.workerOps),
    AIRLOCK_DATA_DIR: join(dataDir, model.id, 'worker'),
    AIRLOCK_LLAMA_SERVER_BIN: tools['llama-server'],
  });
  const authAudit = startService('auth-audit', {
    AIRLOCK_GRPC_PORT: String(ports.authGrpc),
    AIRLOCK_OPS_PORT: String(ports.authOps),
    // Each model's run has its own database, so its own witness file: one kept from the previous run's
    // database made auth-audit's signer halt (correctly) once this one outgrew it — the 503s of stops 18–19.
    AIRLOCK_DATA_DIR: join(dataDir, model.id, 'auth-audit'),
    AIRLOCK_ADMIN_KEY: adminKey,
    ...(databaseUrl ? { AIRLOCK_DATABASE_URL: databaseUrl } : {}),
  });
  await Promise.all([
    waitHttp(worker, `http://127.0.0.1:${ports.workerOps}/readyz`),
    waitHttp(authAudit, `http://127.0.0.1:${ports.authOps}/readyz`),
  ]);
  const workerAddress = `127.0.0.1:${ports.workerGrpc}`;
  const gateway = startService('gateway', {
    AIRLOCK_PORT: String(ports.gateway),
    AIRLOCK_OPS_PORT: String(ports.gatewayOps),
    AIRLOCK_AUTH_AUDIT_ADDRESS: `127.0.0.1:${ports.authGrpc}`,
    AIRLOCK_WORKERS: workerAddress,
    AIRLOCK_DATA_DIR: join(dataDir, model.id, 'gateway'),
  });
  await waitHttp(gateway, `http://127.0.0.1:${ports.gatewayOps}/readyz`);
  const url = `http://127.0.0.1:${ports.gateway}`;
  const created = await fetch(`${url}/admin/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench' }),
  });
  if (created.status !== 201)
    throw new Error(`key creation failed: ${created.status} ${await created.text()}`);
  const apiKey = (await created.json()).secret;
  for (let i = 0; ; i++) {
    const models = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
    const ids = models.ok ? (await models.json()).data.map((m) => m.id) : [];
    if (ids.includes(model.id)) break;
    if (i > 300) throw new Error('the gateway never saw the worker');
    await sleep(100);
  }
  return {
    name: 'airlock',
    url,
    apiKey,
    model: model.id,
    workerAddress,
    workerOps: ports.workerOps,
    // The worker's count includes its llama-server child (engine llama-server).
    processes: { gateway: gateway.pid, 'auth-audit': authAudit.pid, worker: worker.pid },
    async dropDatabase() {
      if (!databaseName) return;
      const client = new pg.Client({ connectionString: args['database-url'] });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
      await client.end();
    },
  };
}

// ---------------------------------------------------------------- clients

/** Keep-alive connections from this process (node:http: the undici in node_modules may need a newer Node). */
function httpPool(server, connections) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  return { agent, url: new URL(server.url), close: async () => agent.destroy() };
}

function post(pool, server, body, stream) {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      {
        // llama-server closes a connection after a stream without saying so: a stream gets its own connection
        // on both sides (setup is small beside a streamed generation); short requests keep theirs alive.
        agent: stream ? false : pool.agent,
        host: pool.url.hostname,
        port: pool.url.port,
        path: '/v1/completions',
        method: 'POST',
        headers: {
          authorization: `Bearer ${server.apiKey}`,
          'content-type': 'application/json',
          // A fixed length, not chunked: llama-server's HTTP library hangs up on chunked request bodies.
          'content-length': Buffer.byteLength(body),
          ...(stream ? { connection: 'close' } : {}),
        },
      },
      (response) => {
        response.on('error', () => undefined); // surfaced by the reader
        resolvePromise(response);
      },
    );
    req.on('error', (error) => reject(new Error(`${server.name}: ${error.message}`)));
    req.end(body);
  });
}

async function readAll(response) {
  let text = '';
  for await (const piece of response) text += piece;
  return text;
}

/** One /v1/completions request; returns completion tokens (from usage, else counted chunks). */
async function completion(pool, server, maxTokens, stream) {
  const response = await post(
    pool,
    server,
    JSON.stringify({
      model: server.model,
      prompt: PROMPT,
      max_tokens: maxTokens,
      temperature: 0,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    }),
    stream,
  );
  if (response.statusCode !== 200) {
    throw new Error(`${server.name}: HTTP ${response.statusCode} ${(await readAll(response)).slice(0, 300)}`);
  }
  if (!stream) return JSON.parse(await readAll(response)).usage?.completion_tokens ?? 0;
  let usage = 0;
  let chunks = 0;
  let tail = '';
  for await (const piece of response) {
    const events = (tail + piece.toString('utf8')).split('\n\n');
    tail = events.pop();
    for (const event of events) {
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const data = JSON.parse(event.slice(6));
      if (data.usage?.completion_tokens) usage = data.usage.completion_tokens;
      if (data.choices?.[0]?.text) chunks++;
    }
  }
  return usage || chunks;
}

async function streamsRound(server, streams, tokens) {
  const pool = httpPool(server, streams);
  try {
    await completion(pool, server, 2, true); // warm the connection
    const started = performance.now();
    const counts = await Promise.all(
      Array.from({ length: streams }, async () => {
        let total = 0;
        for (let i = 0; i < Number(args.requests); i++) total += await completion(pool, server, tokens, true);
        return total;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const generated = counts.reduce((a, b) => a + b, 0);
    return { tokensPerSecond: generated / seconds, generated, seconds };
  } finally {
    await pool.close();
  }
}

async function shortRound(server) {
  const clients = Number(args['short-clients']);
  const pool = httpPool(server, clients);
  try {
    await completion(pool, server, 1, false);
    const deadline = performance.now() + Number(args['short-seconds']) * 1000;
    const started = performance.now();
    const done = await Promise.all(
      Array.from({ length: clients }, async () => {
        let n = 0;
        while (performance.now() < deadline) {
          await completion(pool, server, 1, false);
          n++;
        }
        return n;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { requestsPerSecond: done.reduce((a, b) => a + b, 0) / seconds };
  } finally {
    await pool.close();
  }
}

async function latencyRound(server) {
  const pool = httpPool(server, 1);
  try {
    const times = [];
    for (let i = 0; i < 10; i++) await completion(pool, server, 1, false);
    for (let i = 0; i < Number(args['latency-requests']); i++) {
      const started = performance.now();
      await completion(pool, server, 1, false);
      times.push(performance.now() - started);
    }
    return { p50Ms: median(times) };
  } finally {
    await pool.close();
  }
}

async function workerLatencyRound(airlock) {
  const client = createWorkerClient(airlock.workerAddress);
  const one = () =>
    new Promise((resolvePromise, reject) => {
      const call = client.Complete(
        { model: airlock.model, prompt: PROMPT, sampling: { temperature: 0, maxTokens: 1 } },
        new Metadata(),
      );
      call.on('data', () => undefined);
      call.on('error', reject);
      call.on('end', resolvePromise);
    });
  try {
    for (let i = 0; i < 10; i++) await one();
    const times = [];
    for (let i = 0; i < Number(args['latency-requests']); i++) {
      const started = performance.now();
      await one();
      times.push(performance.now() - started);
    }
    return { p50Ms: median(times) };
  } finally {
    client.close();
  }
}

async function decodeCounters(airlock) {
  const text = await fetch(`http://127.0.0.1:${airlock.workerOps}/metrics`).then((r) => r.text());
  const read = (name) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    steps: read('airlock_worker_decode_steps_total'),
    sequences: read('airlock_worker_decoded_sequences_total'),
    late: read('airlock_worker_late_decode_steps_total'),
  };
}

// ---------------------------------------------------------------- helpers

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const load = () => round(loadavg()[0]);

/** Runs `measure` on both servers for `rounds` rounds, alternating which goes first; medians of each. */
async function interleaved(label, servers, measure, key) {
  const samples = { airlock: [], 'llama-server': [] };
  const cpu = {};
  const loads = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      loads.push(load());
      const before = await cpuByProcess(server.processes);
      const clientBefore = process.cpuUsage();
      const started = performance.now();
      samples[server.name].push((await measure(server))[key]);
      const wall = (performance.now() - started) / 1000;
      const client = process.cpuUsage(clientBefore);
      // Percent of one core, the last round's: who was busy while this figure was taken.
      cpu[server.name] = {
        ...cpuPercent(before, await cpuByProcess(server.processes), wall),
        'bench client': Math.round(((client.user + client.system) / 1e6 / wall) * 100),
      };
    }
  }
  const airlock = median(samples.airlock);
  const llama = median(samples['llama-server']);
  const result = {
    label,
    airlock: round(airlock, 1),
    llamaServer: round(llama, 1),
    ratio: round(airlock / llama, 3),
    samples: {
      airlock: samples.airlock.map((x) => round(x, 1)),
      llamaServer: samples['llama-server'].map((x) => round(x, 1)),
    },
    loadAverage: loads,
    cpuPercent: cpu,
  };
  console.log(
    `${label.padEnd(44)} airlock ${String(result.airlock).padStart(8)}  llama-server ${String(result.llamaServer).padStart(8)}  ratio ${result.ratio.toFixed(2)}x  (load ${Math.min(...loads)}–${Math.max(...loads)})`,
  );
  const shares = (name) =>
    Object.entries(cpu[name] ?? {})
      .map(([process, percent]) => `${process} ${percent}`)
      .join(', ');
  console.log(
    `${''.padEnd(44)} CPU % of a core: airlock: ${shares('airlock')}; llama-server: ${shares('llama-server')}`,
  );
  return result;
}

async function benchModel(id) {
  const cacheDir = resolve(ROOT, 'bench/.cache');
  mkdirSync(cacheDir, { recursive: true });
  if (id === 'bench') {
    const path = join(cacheDir, 'bench.gguf');
    if (!existsSync(path)) await writeLlamaGgufPreset(path, 'bench');
    return { id: 'bench', path, tokens: Number(args.tokens || 64) };
  }
  const dir = process.env.AIRLOCK_TEST_MODELS_DIR ?? resolve(ROOT, '../shared/models');
  const path = join(dir, 'stories260K.gguf');
  if (!existsSync(path)) return undefined;
  return { id: 'stories260K', path, tokens: Number(args.tokens || 256) };
}

// ---------------------------------------------------------------- main

const TARGETS = {
  bench: { streams: 0.95 },
  stories260K: { streams: 0.9, short: 0.65 },
};

const tools = await llamaCppTools();
const report = {
  machine: {
    cpus: availableParallelism(),
    node: process.version,
    loadAverageAtStart: loadavg().map((x) => round(x)),
  },
  llamaCpp: tools.commit,
  settings: {
    threads,
    slots,
    contextSize: CONTEXT_SIZE,
    rounds,
    database: args.database,
    engine: args.engine,
    requests: Number(args.requests),
  },
  models: {},
};
const dataDir = await mkdtemp(join(tmpdir(), 'airlock-bench-vs-llama-'));
const summary = [];
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
try {
  for (const wanted of args.models.split(',')) {
    const model = await benchModel(wanted);
    if (!model) {
      console.log(`${wanted}: no model file (set AIRLOCK_TEST_MODELS_DIR); skipped`);
      continue;
    }
    console.log(
      `\n${model.id}: worker engine ${args.engine}, threads ${threads}, slots ${slots}, ${model.tokens} tokens per streamed request`,
    );
    const llamaServer = await startLlamaServer(tools, model);
    const airlock = await startAirlock(tools, model, dataDir);
    const servers = [airlock, llamaServer];
    const results = { streams: [], short: null, latency: null };
    try {
      if (phases.has('streams')) {
        for (const streams of streamCounts) {
          const before = await decodeCounters(airlock);
          const result = await interleaved(
            `${model.id} tokens/s, ${streams} stream${streams > 1 ? 's' : ''}`,
            servers,
            (server) => streamsRound(server, streams, model.tokens),
            'tokensPerSecond',
          );
          const after = await decodeCounters(airlock);
          const steps = after.steps - before.steps;
          result.airlockSequencesPerDecode =
            steps > 0 ? round((after.sequences - before.sequences) / steps) : null;
          result.airlockLateSteps = after.late - before.late;
          results.streams.push({ streams, ...result });
          const target = TARGETS[model.id]?.streams;
          if (target) summary.push([result.label, result.ratio, target]);
        }
      }
      if (phases.has('short')) {
        results.short = await interleaved(
          `${model.id} short requests/s, ${args['short-clients']} clients (${args.database})`,
          servers,
          shortRound,
          'requestsPerSecond',
        );
        const target = TARGETS[model.id]?.short;
        if (target) summary.push([results.short.label, results.short.ratio, target]);
      }
      if (phases.has('latency')) {
        const gateway = [];
        const worker = [];
        const llama = [];
        for (let r = 0; r < rounds; r++) {
          gateway.push((await latencyRound(airlock)).p50Ms);
          worker.push((await workerLatencyRound(airlock)).p50Ms);
          llama.push((await latencyRound(llamaServer)).p50Ms);
        }
        results.latency = {
          gatewayP50Ms: round(median(gateway)),
          workerP50Ms: round(median(worker)),
          llamaServerP50Ms: round(median(llama)),
          addedByGatewayMs: round(median(gateway) - median(worker)),
          samples: { gateway, worker, llama },
          loadAverage: load(),
        };
        console.log(
          `${model.id} one client p50: gateway ${results.latency.gatewayP50Ms} ms, worker ${results.latency.workerP50Ms} ms, ` +
            `llama-server ${results.latency.llamaServerP50Ms} ms → added by the gateway ${results.latency.addedByGatewayMs} ms`,
        );
        summary.push([
          `${model.id} added p50 at one client (ms, ≤ 3)`,
          results.latency.addedByGatewayMs,
          3,
          'max',
        ]);
      }
    } catch (error) {
      // What the services said last (warn and above), to tell a refusal from a crash.
      for (const child of children) console.error(`--- ${child.label} output (tail)\n${child.outputTail()}`);
      throw error;
    } finally {
      await stopAll();
      await airlock.dropDatabase();
    }
    report.models[model.id] = results;
  }
} finally {
  await stopAll();
  await rm(dataDir, { recursive: true, force: true });
}

report.loadAverageAtEnd = loadavg().map((x) => round(x));
console.log('\ntarget check');
for (const [label, value, target, kind] of summary) {
  const ok = kind === 'max' ? value <= target : value >= target;
  console.log(
    `  ${ok ? 'met ' : 'MISS'}  ${label.padEnd(56)} ${value}${kind === 'max' ? '' : 'x'} (target ${kind === 'max' ? '≤' : '≥'} ${target})`,
  );
}
report.targets = summary.map(([label, value, target, kind]) => ({
  label,
  value,
  target,
  kind: kind ?? 'min',
}));
mkdirSync(dirname(resolve(args.out)), { recursive: true });
writeFileSync(resolve(args.out), `${JSON.stringify(report, null, 2)}\n`);
console.log(
  `\nwrote ${args.out} (load average at start ${report.machine.loadAverageAtStart.join(' ')}, at end ${report.loadAverageAtEnd.join(' ')})`,
);
