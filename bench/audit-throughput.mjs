// Authorise-and-append throughput of auth-audit against real PostgreSQL, over gRPC.
//
//   npm run build && node bench/audit-throughput.mjs [--callers 200] [--seconds 10] [--rate 2000] [--loops closed,open,single,mixed]
//     [--service apps/auth-audit/dist/main.js]   (another build, e.g. main's, to compare back to back)
//
// Starts the built service (apps/auth-audit/dist/main.js) as its own process on a fresh database, then:
//  1. closed loop: N callers each send Authorize back to back → the most ops/s the service sustains;
//  2. open loop: N callers together offer --rate ops/s on a fixed schedule → latency at that load, timed from
//     the scheduled send time (no coordinated omission).
// Every Authorize is a real one: API-key check, role and model check, quota counters, and the request
// record appended to the hash chain and committed before the answer. Results go to stdout and
// bench/results/audit-throughput-<time>.json.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import pg from 'pg';
import { AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@airlock/contracts';
import { cpuSeconds, postgresCpuSeconds } from './process-cpu.mjs';

const { values: args } = parseArgs({
  options: {
    callers: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '2000' },
    keys: { type: 'string', default: '20' },
    channels: { type: 'string', default: '4' },
    service: { type: 'string', default: 'apps/auth-audit/dist/main.js' },
    loops: { type: 'string', default: 'closed,open' },
  },
});
const CALLERS = Number(args.callers);
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const KEYS = Number(args.keys);
const CHANNELS = Number(args.channels);
const ADMIN_DATABASE_URL =
  process.env.AIRLOCK_BENCH_DATABASE_URL ??
  process.env.AIRLOCK_TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/test';
const ADMIN_KEY = `alk_benchadmin_${randomBytes(32).toString('base64url')}`;
const GRPC_PORT = 20000 + Math.floor(Math.random() * 20000);
const OPS_PORT = GRPC_PORT + 1;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function createDatabase() {
  const name = `airlock_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

function startService(databaseUrl, dataDir) {
  const child = spawn(process.execPath, [args.service], {
    env: {
      ...process.env,
      AIRLOCK_DATABASE_URL: databaseUrl,
      AIRLOCK_DATA_DIR: dataDir,
      AIRLOCK_ADMIN_KEY: ADMIN_KEY,
      AIRLOCK_GRPC_PORT: String(GRPC_PORT),
      AIRLOCK_OPS_PORT: String(OPS_PORT),
      AIRLOCK_LOG_LEVEL: 'warn',
      // The benchmark calls the service directly (no gateway certificate): plaintext, asked for by name.
      AIRLOCK_INTERNAL_PLAINTEXT: 'true',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

function clients(count) {
  const definition = loadSync(AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS);
  const { AuditService } = grpc.loadPackageDefinition(definition).airlock.audit.v1;
  return Array.from(
    { length: count },
    (_, index) =>
      // A distinct channel option keeps grpc-js from sharing one subchannel between the clients.
      new AuditService(`127.0.0.1:${GRPC_PORT}`, grpc.credentials.createInsecure(), {
        'grpc.channel_id': index,
      }),
  );
}

const call = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, (error, response) => (error ? reject(error) : resolve(response))),
  );

async function waitForService(client) {
  for (let attempt = 0; attempt < 150; attempt += 1) {
    try {
      await call(client, 'ListTenants', { credential: ADMIN_KEY });
      return;
    } catch {
      await sleep(200);
    }
  }
  throw new Error('auth-audit did not come up');
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(latenciesMs, elapsedSeconds, errors, denied) {
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    ops: latenciesMs.length,
    opsPerSecond: Math.round(latenciesMs.length / elapsedSeconds),
    p50Ms: Number(percentile(sorted, 50).toFixed(2)),
    p90Ms: Number(percentile(sorted, 90).toFixed(2)),
    p99Ms: Number(percentile(sorted, 99).toFixed(2)),
    maxMs: Number(sorted[sorted.length - 1]?.toFixed(2)),
    errors,
    denied,
  };
}

let sequence = 0;
const request = (key) => ({
  credential: key,
  action: 'ACTION_CHAT_COMPLETIONS',
  model: 'stories260K',
  requestId: `bench-${process.pid}-${++sequence}`,
  clientAddress: '10.0.0.7',
  userAgent: 'airlock-bench/1',
  requestBody: Buffer.from(
    '{"model":"stories260K","messages":[{"role":"user","content":"Once upon a time"}]}',
  ),
});

/** Mean batch size and commit time from the service's own histograms, between two scrapes. */
async function scrapeBatches() {
  const text = await (await fetch(`http://127.0.0.1:${OPS_PORT}/metrics`)).text();
  const value = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    batches: value('airlock_audit_batch_size_count'),
    operations: value('airlock_audit_batch_size_sum'),
    commitSeconds: value('airlock_audit_append_seconds_sum'),
  };
}

async function measured(pid, run) {
  const databaseBefore = await postgresCpuSeconds();
  const serviceBefore = await cpuSeconds(pid);
  const clientBefore = process.cpuUsage();
  const batchesBefore = await scrapeBatches();
  const started = performance.now();
  const result = await run();
  const wall = (performance.now() - started) / 1000;
  const client = process.cpuUsage(clientBefore);
  return {
    ...result,
    ...batchStats(batchesBefore, await scrapeBatches()),
    serviceCpuPercent: Math.round((((await cpuSeconds(pid)) - serviceBefore) / wall) * 100),
    benchClientCpuPercent: Math.round(((client.user + client.system) / 1e6 / wall) * 100),
    // Local servers only; a backend that ended during the run is not counted (connections stay open here).
    databaseCpuPercent: Math.round((((await postgresCpuSeconds()) - databaseBefore) / wall) * 100) || null,
  };
}

function batchStats(before, after) {
  const batches = after.batches - before.batches;
  return {
    batches,
    meanBatchSize: Number(((after.operations - before.operations) / batches).toFixed(1)),
    meanBatchCommitMs: Number((((after.commitSeconds - before.commitSeconds) / batches) * 1000).toFixed(2)),
  };
}

async function closedLoop(pool, keys, callers = CALLERS) {
  const latencies = [];
  let errors = 0;
  let denied = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      const client = pool[caller % pool.length];
      const key = keys[caller % keys.length];
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          const answer = await call(client, 'Authorize', request(key));
          if (!answer.allowed) denied += 1;
          latencies.push(performance.now() - t0);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return summary(latencies, (performance.now() - started) / 1000, errors, denied);
}

/**
 * One caller, each Authorize sent together with the previous request's Complete, as the gateway sends a held
 * completion with the next Authorize: the Authorize's latency when settlements share the appender with it.
 */
async function mixedSingle(pool, keys) {
  const latencies = [];
  let errors = 0;
  let denied = 0;
  let previous;
  const completions = [];
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  while (performance.now() < deadline) {
    const next = request(keys[0]);
    const t0 = performance.now();
    const authorized = call(pool[0], 'Authorize', next);
    if (previous) {
      completions.push(
        call(pool[0], 'Complete', {
          requestId: previous,
          outcome: 'OUTCOME_SUCCEEDED',
          statusCode: 200,
          promptTokens: 5,
          completionTokens: 1,
          latencyMs: 5,
          worker: 'bench',
        }).catch(() => (errors += 1)),
      );
    }
    try {
      const answer = await authorized;
      if (!answer.allowed) denied += 1;
      latencies.push(performance.now() - t0);
      previous = next.requestId;
    } catch {
      errors += 1;
    }
  }
  await Promise.all(completions);
  return summary(latencies, (performance.now() - started) / 1000, errors, denied);
}

async function openLoop(pool, keys) {
  const latencies = [];
  let errors = 0;
  let denied = 0;
  const perCaller = RATE / CALLERS;
  const interval = 1000 / perCaller;
  const started = performance.now();
  const pending = [];
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, caller) => {
      const client = pool[caller % pool.length];
      const key = keys[caller % keys.length];
      // Spread the callers' first sends over one interval.
      let scheduled = started + (caller / CALLERS) * interval;
      const count = Math.floor(SECONDS * perCaller);
      for (let index = 0; index < count; index += 1) {
        const wait = scheduled - performance.now();
        if (wait > 0) await sleep(wait);
        const due = scheduled;
        pending.push(
          call(client, 'Authorize', request(key)).then(
            (answer) => {
              if (!answer.allowed) denied += 1;
              latencies.push(performance.now() - due);
            },
            () => (errors += 1),
          ),
        );
        scheduled += interval;
      }
    }),
  );
  await Promise.all(pending);
  return summary(latencies, (performance.now() - started) / 1000, errors, denied);
}

async function main() {
  const database = await createDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'airlock-bench-'));
  const service = startService(database.url, dataDir);
  const pool = clients(CHANNELS);
  try {
    await waitForService(pool[0]);
    const keys = [];
    for (let index = 0; index < KEYS; index += 1) {
      const created = await call(pool[0], 'CreateApiKey', {
        credential: ADMIN_KEY,
        tenant: 'default',
        name: `bench ${index}`,
        role: 'ROLE_USER',
        requestsPerMinute: 1_000_000,
      });
      keys.push(created.secret);
    }
    // Warm up connections, JIT and the pool.
    await Promise.all(
      Array.from({ length: 2000 }, (_, index) =>
        call(pool[index % pool.length], 'Authorize', request(keys[index % keys.length])),
      ),
    );

    const conditions = {
      cpus: cpus().length,
      loadAverageBefore: loadavg().map((value) => Number(value.toFixed(2))),
      node: process.version,
    };
    const loops = new Set(args.loops.split(','));
    const closed = loops.has('closed') ? await measured(service.pid, () => closedLoop(pool, keys)) : null;
    await sleep(1000);
    const open = loops.has('open') ? await measured(service.pid, () => openLoop(pool, keys)) : null;
    // One caller, back to back: the audit's share of a lone client's latency (decision and durable record).
    const single = loops.has('single') ? await measured(service.pid, () => closedLoop(pool, keys, 1)) : null;
    const mixed = loops.has('mixed') ? await measured(service.pid, () => mixedSingle(pool, keys)) : null;
    const verify = await call(pool[0], 'VerifyAuditChain', { credential: ADMIN_KEY });
    const result = {
      time: new Date().toISOString(),
      service: args.service,
      callers: CALLERS,
      seconds: SECONDS,
      offeredRate: RATE,
      keys: KEYS,
      conditions,
      closedLoop: closed,
      openLoop: open,
      singleCaller: single,
      singleCallerWithCompletions: mixed,
      chain: { ok: verify.ok, records: verify.recordsChecked },
    };
    console.log(JSON.stringify(result, null, 2));
    await mkdir('bench/results', { recursive: true });
    await writeFile(
      join('bench/results', `audit-throughput-${Date.now()}.json`),
      JSON.stringify(result, null, 2),
    );
  } finally {
    for (const client of pool) client.close();
    service.kill('SIGTERM');
    await new Promise((resolve) => service.once('exit', resolve));
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
