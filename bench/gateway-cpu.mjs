#!/usr/bin/env node
// The gateway's own cost, isolated: CPU time per request and per streamed token, and resident memory per
// waiting stream, of the built gateway process (apps/gateway/dist/main.js) in front of instant stand-ins.
// The stand-ins are fakes on purpose — one helper process serves airlock.worker.v1 (GetStatus, Complete
// that streams `max_tokens` deltas) and airlock.audit.v1 (Authorize allows, Complete acknowledges) over real
// gRPC — so that the figures move only with the gateway's code, not with the model, the database or the
// load on the machine. bench/gateway-latency.mjs measures the real platform; this one tracks regressions.
//
//   npm run build && node bench/gateway-cpu.mjs [--seconds 5] [--rounds 3] [--crowd 2000]
//   node bench/gateway-cpu.mjs --rounds 0 --crowd 2000     # memory of a crowd on a fresh gateway only
import { fork, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Pool } from 'undici';
import { AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS, WORKER_PROTO_FILE } from '@airlock/contracts';
import { findFreePort } from '@airlock/telemetry';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    'stream-tokens': { type: 'string', default: '256' },
    'stream-concurrency': { type: 'string', default: '8' },
    crowd: { type: 'string', default: '2000' },
    slots: { type: 'string', default: '8' },
    // Another build of the gateway to measure (e.g. a copy of apps/gateway/dist from before a change).
    gateway: { type: 'string', default: 'apps/gateway/dist/main.js' },
    // info writes one access-log line per request (the production default); warn writes none.
    'log-level': { type: 'string', default: 'warn' },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const MODEL = 'stand-in';

// ---------------------------------------------------------------- the stand-in upstreams (child process)

function serveStandIns() {
  const load = (file) => grpc.loadPackageDefinition(loadSync(file, PROTO_LOADER_OPTIONS));
  const worker = load(WORKER_PROTO_FILE).airlock.worker.v1.WorkerService;
  const audit = load(AUDIT_PROTO_FILE).airlock.audit.v1.AuditService;
  const slots = Number(args.slots);
  let running = 0;
  // Crowd mode: a generation takes this long, so that most of the crowd waits in the gateway's queue.
  let holdMs = 0;
  const server = new grpc.Server();
  server.addService(worker.service, {
    GetStatus: (_call, callback) =>
      callback(null, {
        workerId: 'stand-in',
        draining: false,
        models: [
          {
            id: MODEL,
            state: 'MODEL_STATE_READY',
            slotsTotal: slots,
            slotsBusy: Math.min(running, slots),
            queueLength: Math.max(0, running - slots),
            queueCapacity: 4096,
          },
        ],
      }),
    Complete: async (call) => {
      running++;
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      const tokens = call.request.sampling?.maxTokens || 1;
      if (holdMs > 0) await sleep(holdMs);
      for (let i = 0; i < tokens && !cancelled; i++) {
        call.write({ textDelta: ' word' });
        // One delta per event-loop turn, as a generating worker sends them (not all in one TCP write).
        if (tokens > 1) await new Promise((r) => setImmediate(r));
      }
      running--;
      if (cancelled) return;
      call.write({
        finish: {
          finishReason: 'FINISH_REASON_LENGTH',
          usage: { promptTokens: 5, completionTokens: tokens, cachedTokens: 0 },
        },
      });
      call.end();
    },
  });
  let sequence = 0;
  server.addService(audit.service, {
    Authorize: (_call, callback) =>
      callback(null, {
        allowed: true,
        grpcStatus: 0,
        principal: { id: 'key:bench', kind: 'PRINCIPAL_KIND_API_KEY', tenant: 'default', role: 'ROLE_USER' },
        rateLimit: null,
        auditSequence: ++sequence,
        allowedModels: [],
        allModels: true,
      }),
    Complete: (_call, callback) => callback(null, { auditSequence: ++sequence }),
  });
  process.on('message', (message) => {
    if (message?.holdMs !== undefined) holdMs = message.holdMs;
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error;
    process.send({ port });
  });
}

// ---------------------------------------------------------------- measurement

function processStats(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main() {
  const standIns = fork(new URL(import.meta.url).pathname, ['--role', 'stand-ins', '--slots', args.slots]);
  const { port: upstreamPort } = await new Promise((r) => standIns.once('message', r));
  const upstream = `127.0.0.1:${upstreamPort}`;
  const gatewayPort = await findFreePort();
  const opsPort = await findFreePort();
  const main = resolve(ROOT, args.gateway);
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  // GATEWAY_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or "--trace-gc", go to the gateway's node.
  const nodeArgs = process.env.GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const gateway = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      PATH: process.env.PATH,
      AIRLOCK_PORT: String(gatewayPort),
      AIRLOCK_OPS_PORT: String(opsPort),
      AIRLOCK_WORKERS: upstream,
      AIRLOCK_AUTH_AUDIT_ADDRESS: upstream,
      AIRLOCK_LOG_LEVEL: args['log-level'],
      // The benchmark calls the service directly (no gateway certificate): plaintext, asked for by name.
      AIRLOCK_INTERNAL_PLAINTEXT: 'true',
      AIRLOCK_QUEUE_CAPACITY: '10000',
      AIRLOCK_QUEUE_TIMEOUT_SECONDS: '120',
    },
    stdio: ['ignore', nodeArgs.length > 0 ? 'inherit' : 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${gatewayPort}`;
  const headers = { authorization: 'Bearer stand-in', 'content-type': 'application/json' };
  for (;;) {
    const r = await fetch(`${url}/v1/models`, { headers }).catch(() => null);
    if (r?.ok && (await r.json()).data.length > 0) break;
    await sleep(100);
  }
  const pool = new Pool(url, { connections: Number(args.crowd), pipelining: 1, keepAliveTimeout: 120_000 });
  const complete = async (maxTokens, stream) => {
    const response = await pool.request({
      path: '/v1/completions',
      method: 'POST',
      headers,
      body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: maxTokens, stream }),
    });
    if (response.statusCode !== 200 && process.env.BENCH_SHOW_ERRORS) {
      console.error(response.statusCode, await response.body.text());
      return response.statusCode;
    }
    await response.body.dump({ limit: Infinity });
    return response.statusCode;
  };
  const loop = async (concurrency, ms, send) => {
    const deadline = performance.now() + ms;
    let done = 0;
    const statuses = {};
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const status = await send();
          statuses[status] = (statuses[status] ?? 0) + 1;
          done++;
        }
      }),
    );
    if (Object.keys(statuses).some((s) => s !== '200'))
      throw new Error(`statuses ${JSON.stringify(statuses)}`);
    return done;
  };
  const measured = async (work) => {
    const before = processStats(gateway.pid).cpuMs;
    const started = performance.now();
    const count = await work();
    return {
      cpuMs: processStats(gateway.pid).cpuMs - before,
      seconds: (performance.now() - started) / 1000,
      count,
    };
  };

  const ms = Number(args.seconds) * 1000;
  const concurrency = Number(args.concurrency);
  const streamTokens = Number(args['stream-tokens']);
  const streamConcurrency = Number(args['stream-concurrency']);
  const result = {};
  if (Number(args.rounds) > 0) {
    await loop(concurrency, 2000, () => complete(1, false));
    await loop(streamConcurrency, 2000, () => complete(streamTokens, true));
    const short = [];
    const streamed = [];
    for (let r = 0; r < Number(args.rounds); r++) {
      const s = await measured(() => loop(concurrency, ms, () => complete(1, false)));
      short.push({ usPerRequest: (s.cpuMs * 1000) / s.count, rps: s.count / s.seconds });
      const t = await measured(() => loop(streamConcurrency, ms, () => complete(streamTokens, true)));
      streamed.push({ usPerToken: (t.cpuMs * 1000) / (t.count * streamTokens) });
    }
    result.shortRequest = {
      concurrency,
      gatewayCpuUsPerRequest: round(median(short.map((s) => s.usPerRequest))),
      rps: round(median(short.map((s) => s.rps)), 0),
    };
    result.stream = {
      concurrency: streamConcurrency,
      tokensPerStream: streamTokens,
      gatewayCpuUsPerToken: round(median(streamed.map((s) => s.usPerToken)), 2),
    };
    console.log(
      `short requests (${concurrency} clients): gateway CPU ${result.shortRequest.gatewayCpuUsPerRequest} µs/request ` +
        `(${result.shortRequest.rps} req/s, stand-in upstreams)`,
    );
    console.log(
      `streams (${streamConcurrency} at once, ${streamTokens} tokens): gateway CPU ${result.stream.gatewayCpuUsPerToken} µs/token`,
    );
  }

  const crowd = Number(args.crowd);
  if (crowd > 0) {
    standIns.send({ holdMs: 60_000 });
    await sleep(1500);
    const baseline = processStats(gateway.pid).rssKb;
    const statuses = {};
    const all = Array.from({ length: crowd }, async () => {
      const status = await complete(4, true).catch((e) => e.code ?? 'error');
      statuses[status] = (statuses[status] ?? 0) + 1;
    });
    // Wait until the gateway holds them all (slots busy, the rest queued), then read its memory.
    const deadline = Date.now() + 60_000;
    let queued = 0;
    while (Date.now() < deadline) {
      const metrics = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then((r) => r.text());
      queued = Number(/^airlock_gateway_queued_requests\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
      if (queued >= crowd - 2 * Number(args.slots)) break;
      await sleep(200);
    }
    await sleep(1000);
    const holding = processStats(gateway.pid).rssKb;
    if (process.env.BENCH_HEAP_SNAPSHOT) {
      // With GATEWAY_NODE_ARGS=--heapsnapshot-signal=SIGUSR2: a snapshot of the gateway holding the crowd.
      gateway.kill('SIGUSR2');
      await sleep(Number(process.env.BENCH_HEAP_SNAPSHOT));
    }
    standIns.send({ holdMs: 0 });
    await Promise.all(all);
    result.crowd = {
      clients: crowd,
      queued,
      baselineRssKb: baseline,
      holdingRssKb: holding,
      kbPerWaitingStream: round((holding - baseline) / crowd),
      statuses,
    };
    console.log(
      `crowd: ${crowd} streaming clients (${queued} queued in the gateway): RSS ${baseline} → ${holding} KiB = ` +
        `${result.crowd.kbPerWaitingStream} KiB per stream; statuses ${JSON.stringify(statuses)}`,
    );
  }
  await pool.close();
  gateway.kill('SIGTERM');
  await new Promise((r) => gateway.once('exit', r));
  standIns.kill();
  return result;
}

if (args.role === 'stand-ins') serveStandIns();
else await main();
