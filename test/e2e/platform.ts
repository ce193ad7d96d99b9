// Starts the real platform for end-to-end tests: auth-audit and the worker as processes from their
// built entry points (npm test builds first), the gateway in this process (so a test can read its pool
// and metrics). Every suite gets its own ports, data directory and, for PostgreSQL, its own database.
// Internal hops run with mutual TLS, as in production: a local CA and one certificate per service.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { findFreePort } from '@airlock/telemetry';
import { ensureLocalPki, type ServiceName, type ServiceTlsFiles } from '@airlock/contracts';
import { TEST_MODELS_DIR } from '../support/test-models.js';
import { gatewayConfig, type GatewayConfig } from '../../apps/gateway/src/config.js';
import { startGatewayApp, type GatewayApp } from '../../apps/gateway/src/gateway-app.js';
import type { ConsoleConfig } from '../../apps/gateway/src/console/console-config.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MODEL = 'stories260K';

/** Loosely typed JSON from the admin API: tests read its fields by name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export { describeWithModels } from '../support/test-models.js';

export function modelsDir(): string {
  if (!TEST_MODELS_DIR) throw new Error(`${MODEL}.gguf is needed: set AIRLOCK_TEST_MODELS_DIR`);
  return TEST_MODELS_DIR;
}

function entry(app: string): string {
  const main = join(ROOT, 'apps', app, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run build)`);
  return main;
}

async function waitReady(
  opsPort: number,
  child: ChildProcess,
  name: string,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} not ready in ${timeoutMs} ms`);
}

async function stopChild(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  // The grace timer is cleared once the child is gone: a pending one kept jest alive for 15 s after the run.
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (grace = setTimeout(r, 15_000)))]);
  clearTimeout(grace);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

export interface ExtraModel {
  id: string;
  embeddings: boolean;
  file?: string;
  signature?: { bundle: string; publicKey: string };
}

export interface PlatformOptions {
  database: 'pglite' | 'postgres';
  /** The test model to serve (a file `<model>.gguf` in the models folder); default stories260K. */
  model?: string;
  /**
   * More models on the same worker, e.g. one without embeddings; `file` (default `<id>.gguf`) in the models folder,
   * `signature` the catalog's (absolute paths of the bundle and the trusted public key).
   */
  extraModels?: ExtraModel[];
  /** Gives auth-audit a content key, so that tenants may capture `full` content (and store responses). */
  contentKeys?: boolean;
  /** Gateway settings; a function is called once the worker's address is known. */
  gateway?: Partial<GatewayConfig> | ((platform: Platform) => Partial<GatewayConfig>);
  /** The gateway's web console settings (default: from AIRLOCK_CONSOLE_* variables). */
  console?: ConsoleConfig;
  /** Extra AIRLOCK_* settings for auth-audit (e.g. a short checkpoint interval). */
  authAuditEnv?: Record<string, string>;
}

/** Keeps the last lines a service wrote (stdout and stderr), for "nothing from a request in any log" checks. */
export class LogTail extends Writable {
  private readonly lines: string[] = [];
  constructor(private readonly maxLines = 20_000) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export class Platform {
  adminKey = `alk_e2eadmin_${randomBytes(32).toString('base64url')}`;
  gateway!: GatewayApp;
  authAuditAddress = '';
  private authAudit: ChildProcess | null = null;
  private worker: ChildProcess | null = null;
  private dataDir = '';
  /** The suite's own PostgreSQL database (postgres only): tests that play the attacker write to it. */
  databaseUrl: string | undefined;
  private databaseName = '';
  private authAuditPorts = { grpc: 0, ops: 0 };
  private readonly extraGateways: GatewayApp[] = [];
  private readonly gatewayProcesses: ChildProcess[] = [];
  workerAddress = '';
  workerOpsPort = 0;
  /** Each service's certificate files (AIRLOCK_TLS_* variables), under the data dir. */
  tls!: Record<ServiceName, ServiceTlsFiles>;
  /** Every line each service logged (the gateway at debug level, the others at info). */
  readonly logs = { gateway: new LogTail(), worker: new LogTail(), 'auth-audit': new LogTail() };

  readonly model: string;

  constructor(private readonly options: PlatformOptions) {
    this.model = options.model ?? MODEL;
  }

  get url(): string {
    return `http://127.0.0.1:${this.gateway.port}`;
  }

  /** auth-audit's data directory (signing key, witness file). */
  get authAuditDataDir(): string {
    return join(this.dataDir, 'auth-audit');
  }

  /** The ops ports (/metrics) of the gateway, the worker and auth-audit. */
  get opsPorts(): { gateway: number; worker: number; authAudit: number } {
    return { gateway: this.gateway.opsPort, worker: this.workerOpsPort, authAudit: this.authAuditPorts.ops };
  }

  async start(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), 'airlock-e2e-'));
    if (this.options.database === 'postgres') await this.createDatabase();
    this.tls = await ensureLocalPki(join(this.dataDir, 'tls'));
    this.authAuditPorts = { grpc: await findFreePort(), ops: await findFreePort() };
    this.authAuditAddress = `127.0.0.1:${this.authAuditPorts.grpc}`;
    const workerGrpc = await findFreePort();
    this.workerOpsPort = await findFreePort();
    this.workerAddress = `127.0.0.1:${workerGrpc}`;
    const catalog = join(this.dataDir, 'models.yaml');
    await writeFile(
      catalog,
      [{ id: this.model, embeddings: true } as ExtraModel, ...(this.options.extraModels ?? [])]
        .map(
          (m) =>
            `  - id: ${m.id}\n    path: ${join(modelsDir(), m.file ?? `${m.id}.gguf`)}\n    parallel: 4\n    threads: 1\n    embeddings: ${m.embeddings}\n` +
            (m.signature
              ? `    signature:\n      bundle: ${m.signature.bundle}\n      publicKey: ${m.signature.publicKey}\n`
              : ''),
        )
        .reduce((yaml, entry) => yaml + entry, 'models:\n'),
    );
    if (this.options.contentKeys) {
      await writeFile(
        join(this.dataDir, 'content-keys.json'),
        JSON.stringify({ activeKeyId: 'e2e', keys: { e2e: randomBytes(32).toString('base64') } }),
        { mode: 0o600 },
      );
    }
    this.worker = this.spawn('worker', {
      ...this.tls.worker,
      AIRLOCK_MODELS_FILE: catalog,
      AIRLOCK_GRPC_PORT: String(workerGrpc),
      AIRLOCK_OPS_PORT: String(this.workerOpsPort),
      AIRLOCK_DATA_DIR: join(this.dataDir, 'worker'),
      // The worker reports its usage to auth-audit itself (it survives the gateway).
      AIRLOCK_AUTH_AUDIT_ADDRESS: this.authAuditAddress,
    });
    await this.startAuthAudit();
    await waitReady(this.workerOpsPort, this.worker, 'worker');
    const overrides = this.options.gateway;
    this.gateway = await this.startGatewayApp(typeof overrides === 'function' ? overrides(this) : overrides);
  }

  /**
   * Another gateway in this process on the same auth-audit and worker (its own settings, e.g. short
   * timeouts); closed with the platform.
   */
  async startGateway(overrides: Partial<GatewayConfig>): Promise<GatewayApp> {
    const gateway = await this.startGatewayApp(overrides);
    this.extraGateways.push(gateway);
    return gateway;
  }

  private async startGatewayApp(overrides: Partial<GatewayConfig> = {}): Promise<GatewayApp> {
    const gateway = await startGatewayApp(
      gatewayConfig({
        port: 0,
        opsPort: 0,
        authAuditAddress: this.authAuditAddress,
        discovery: { kind: 'static', workers: [this.workerAddress] },
        workerStatusIntervalMs: 250,
        auditRetryMaxMs: 500,
        internalTransport: {
          kind: 'mtls',
          caFile: this.tls.gateway.AIRLOCK_TLS_CA_FILE,
          certFile: this.tls.gateway.AIRLOCK_TLS_CERT_FILE,
          keyFile: this.tls.gateway.AIRLOCK_TLS_KEY_FILE,
          refreshMs: 60_000,
        },
        ...overrides,
      }),
      { logger: pino({ level: 'debug' }, this.logs.gateway), console: this.options.console },
    );
    await this.until(() => gateway.pool.list().some((w) => w.alive && w.serves(this.model)));
    return gateway;
  }

  /**
   * A gateway as a process of its own (its built entry point) on the same auth-audit and worker, for tests
   * that kill it (SIGKILL); stopped with the platform if still running.
   */
  async spawnGateway(env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
    const [port, opsPort] = [await findFreePort(), await findFreePort()];
    const child = this.spawn('gateway', {
      ...this.tls.gateway,
      AIRLOCK_PORT: String(port),
      AIRLOCK_OPS_PORT: String(opsPort),
      AIRLOCK_AUTH_AUDIT_ADDRESS: this.authAuditAddress,
      AIRLOCK_WORKERS: this.workerAddress,
      AIRLOCK_WORKER_STATUS_INTERVAL_MS: '250',
      ...env,
    });
    this.gatewayProcesses.push(child);
    await waitReady(opsPort, child, 'gateway');
    return { url: `http://127.0.0.1:${port}`, child };
  }

  /** One SQL query on the platform's PostgreSQL database (as the test superuser). */
  async query<Row extends object>(text: string, params: unknown[] = []): Promise<Row[]> {
    if (!this.databaseUrl) throw new Error('query() needs the postgres platform');
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as Row[];
    } finally {
      await client.end();
    }
  }

  /** Freezes the worker process (SIGSTOP): its connections stay open but nothing answers. */
  pauseWorker(): void {
    this.worker?.kill('SIGSTOP');
  }

  resumeWorker(): void {
    this.worker?.kill('SIGCONT');
  }

  async startAuthAudit(): Promise<void> {
    this.authAudit = this.spawn('auth-audit', {
      ...this.tls['auth-audit'],
      AIRLOCK_GRPC_PORT: String(this.authAuditPorts.grpc),
      AIRLOCK_OPS_PORT: String(this.authAuditPorts.ops),
      AIRLOCK_DATA_DIR: join(this.dataDir, 'auth-audit'),
      AIRLOCK_ADMIN_KEY: this.adminKey,
      ...(this.databaseUrl ? { AIRLOCK_DATABASE_URL: this.databaseUrl } : {}),
      ...this.options.authAuditEnv,
      ...(this.options.contentKeys
        ? { AIRLOCK_AUDIT_CONTENT_KEYS_FILE: join(this.dataDir, 'content-keys.json') }
        : {}),
    });
    await waitReady(this.authAuditPorts.ops, this.authAudit, 'auth-audit');
  }

  async stopAuthAudit(): Promise<void> {
    await stopChild(this.authAudit);
    this.authAudit = null;
  }

  async close(): Promise<void> {
    this.resumeWorker();
    for (const gateway of this.extraGateways.splice(0)) await gateway.close();
    await Promise.all(this.gatewayProcesses.splice(0).map((child) => stopChild(child)));
    await this.gateway?.close();
    await Promise.all([stopChild(this.worker), stopChild(this.authAudit)]);
    if (this.databaseName) {
      const client = new pg.Client({ connectionString: process.env.AIRLOCK_TEST_DATABASE_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${this.databaseName}" WITH (FORCE)`);
      await client.end();
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** The admin API with the bootstrap admin key. */
  async admin(
    method: string,
    path: string,
    body?: unknown,
    key = this.adminKey,
  ): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${this.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : null };
  }

  async createKey(options: Record<string, unknown> = {}): Promise<string> {
    const { status, json } = await this.admin('POST', '/keys', {
      name: `e2e-${randomBytes(3).toString('hex')}`,
      ...options,
    });
    if (status !== 201) throw new Error(`key creation failed: ${status} ${JSON.stringify(json)}`);
    return json.secret as string;
  }

  /** Audit records of one request (request + completion), waiting for the completion to be committed. */
  async auditRecords(requestId: string, expected = 2): Promise<Json[]> {
    let records: Json[] = [];
    await this.until(async () => {
      const { json } = await this.admin('GET', `/audit/records?request_id=${encodeURIComponent(requestId)}`);
      records = json?.data ?? [];
      return records.length >= expected;
    });
    return records;
  }

  async until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('condition not reached in time');
  }

  private spawn(app: 'worker' | 'auth-audit' | 'gateway', extra: Record<string, string>): ChildProcess {
    const child = spawn(process.execPath, [entry(app)], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, AIRLOCK_LOG_LEVEL: 'info', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(this.logs[app], { end: false });
    child.stderr?.pipe(this.logs[app], { end: false });
    return child;
  }

  private async createDatabase(): Promise<void> {
    const base = process.env.AIRLOCK_TEST_DATABASE_URL;
    if (!base) throw new Error('AIRLOCK_TEST_DATABASE_URL is not set');
    this.databaseName = `airlock_e2e_${randomBytes(6).toString('hex')}`;
    const client = new pg.Client({ connectionString: base });
    await client.connect();
    await client.query(`CREATE DATABASE "${this.databaseName}"`);
    await client.end();
    const url = new URL(base);
    url.pathname = `/${this.databaseName}`;
    this.databaseUrl = url.toString();
  }
}
