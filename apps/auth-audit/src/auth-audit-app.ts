import 'reflect-metadata';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import type { INestMicroservice } from '@nestjs/common';
import { HealthImplementation } from 'grpc-health-check';
import { AUDIT_PACKAGE, AUDIT_SERVICE, PLAINTEXT_WARNING } from '@airlock/contracts';
import { createLogger, OpsServer, type Logger, NestPinoLogger } from '@airlock/telemetry';
import { OUTCOME_DEFAULTS, type AuthAuditSettings } from './config/auth-audit-settings.js';
import { LeaseSweeper } from './audit/lease-sweeper.js';
import { RefusalLimiter } from './audit/refusal-limiter.js';
import { openDatabase, pgliteDirectory, type DatabaseHandle } from './database/database.js';
import { migrate, prepareSchema } from './database/migrations.js';
import { canPrune } from './database/service-roles.js';
import { AuthAuditMetrics } from './metrics/auth-audit-metrics.js';
import { CheckpointSigner, readPublicKeys } from './audit/checkpoint-signer.js';
import { ContentSealer } from './audit/content-sealer.js';
import { OidcVerifier } from './auth/oidc-verifier.js';
import { Checkpointer, type CheckpointRow } from './audit/checkpointer.js';
import { FileWitness, type WitnessSink } from './audit/audit-witness.js';
import { AuditProofs } from './audit/audit-proofs.js';
import { HttpWitnessSink, SyslogWitnessSink } from './audit/witness-sinks.js';
import { ReceiptSigner } from './audit/receipts.js';
import { AuditAppender } from './audit/audit-appender.js';
import { AdminJournal } from './audit/admin-journal.js';
import { ChainVerifier, type VerifyReport } from './audit/chain-verifier.js';
import { pruneAuditRecords, type PruneResult } from './audit/retention.js';
import { Authenticator } from './auth/authenticator.js';
import { AdminGate } from './services/admin-gate.js';
import { AuthorizationService } from './services/authorization.service.js';
import { AdminService } from './services/admin.service.js';
import { AuditLogService } from './services/audit-log.service.js';
import { ResponseStoreService } from './responses/response-store.service.js';
import { bootstrapAdminKey } from './keys/bootstrap-admin-key.js';
import { AuthAuditModule } from './grpc/auth-audit.module.js';
import { auditGrpcOptions } from './grpc/grpc-options.js';
import { GrpcErrorFilter } from './grpc/grpc-error.filter.js';
import { DatabaseUnavailableError } from './errors.js';

export interface AuthAuditApp {
  /** host:port of the gRPC service. */
  grpcAddress: string;
  grpcPort: number;
  opsPort: number;
  /** The bootstrap admin key, when this process knows it (AIRLOCK_ADMIN_KEY or the embedded default). */
  adminKey?: string;
  database: DatabaseHandle;
  metrics: AuthAuditMetrics;
  /** Signs the chain head now (normally every N records or T seconds). */
  checkpointNow(): Promise<CheckpointRow | undefined>;
  /** Prunes records older than the cutoff down to a signed checkpoint (normally hourly with retention set). */
  pruneOlderThan(cutoff: Date): Promise<PruneResult | undefined>;
  verifyChain(options?: { fromLastCheckpoint?: boolean }): Promise<VerifyReport>;
  /** Removes stored responses past their expiry (normally hourly); returns how many. */
  pruneExpiredResponses(): Promise<number>;
  /** Why the checkpoint signer refuses to sign (and inference is stopped); undefined while healthy. */
  signerHalted(): string | undefined;
  /** The witness file every checkpoint is appended to. */
  witnessFile: string;
  /** Waits until the background witness sinks took every checkpoint so far. */
  flushWitnessSinks(): Promise<void>;
  /** Closes open requests whose lease expired as interrupted (normally every leaseSweepSeconds). */
  sweepLeases(): Promise<number>;
  /** Writes the aggregate records of refusal windows that have ended (all with `everything`). */
  flushRefusals(everything?: boolean): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Defaults to a pino logger on stdout at settings.logLevel. */
  logger?: Logger;
  /** Where a generated bootstrap key is announced (default: stdout). */
  announce?: (line: string) => void;
  /** Pins the time Authorize and Complete use (quota tests); the wall clock otherwise. */
  clock?: () => Date;
  /** Further witness sinks, besides the file and those the settings name (tests). */
  witnessSinks?: WitnessSink[];
}

const MAX_BATCH = 512;
// Pipelined, one batch writes while the next reads; more in flight would only split the queue smaller.
const PIPELINED_BATCHES = 2;
const DATABASE_PING_MS = 5_000;
const RETENTION_EVERY_MS = 60 * 60 * 1000;

/** Boots the whole service: database and migrations, keys, gRPC (+ grpc.health.v1) and the ops port. */
export async function startAuthAuditApp(
  settings: AuthAuditSettings,
  options: StartOptions = {},
): Promise<AuthAuditApp> {
  const logger = options.logger ?? createLogger({ service: 'auth-audit', level: settings.logLevel });
  if (settings.transport.kind === 'plaintext') logger.warn(PLAINTEXT_WARNING);
  await mkdir(settings.dataDir, { recursive: true, mode: 0o700 });
  // The embedded data dir holds the database, the signing key and the admin key: owner only.
  if (!settings.databaseUrl) await chmod(settings.dataDir, 0o700);
  if (settings.databaseMigrateUrl) await migrateDatabase(settings, logger);
  let databaseHealthy = true;
  const database = await openDatabase({
    url: settings.databaseUrl,
    pgliteDir: pgliteDirectory(settings.dataDir),
    poolSize: settings.databasePoolSize,
    onPoolError: (error) => {
      databaseHealthy = false;
      logger.warn({ code: (error as { code?: string }).code }, 'database connection lost');
    },
  });
  const cleanups: (() => Promise<void>)[] = [() => database.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const { applied, owner } = await prepareSchema(database.db, migrateOptions(settings));
    logger.info({ driver: database.driver, location: database.location, applied, owner }, 'database ready');

    const signingKeyFile = settings.signingKeyFile ?? join(settings.dataDir, 'audit-signing-key.pem');
    const { signer, generated } = await CheckpointSigner.fromFile(signingKeyFile, !settings.signingKeyFile);
    if (generated)
      logger.warn({ file: signingKeyFile, keyId: signer.keyId }, 'generated an audit signing key');
    const sealer = await ContentSealer.fromFile(settings.contentKeysFile);
    const oidc = settings.oidc ? await OidcVerifier.create(settings.oidc) : undefined;
    const metrics = new AuthAuditMetrics();

    const trustedKeys = await readPublicKeys(settings.previousSigningKeysFile);
    trustedKeys.set(signer.keyId, signer.publicKeyPem);
    const witness = new FileWitness(settings.witnessDir);
    // Set once the health service exists; a halt at start-up finds the service not serving anyway.
    let onSignerHalt = (): void => undefined;
    const checkpointer = new Checkpointer(database.db, signer, metrics, logger, {
      everyRecords: settings.checkpointEveryRecords,
      intervalSeconds: settings.checkpointIntervalSeconds,
      witness,
      sinks: [...(await witnessSinks(settings)), ...(options.witnessSinks ?? [])],
      trustedKeys,
      onHalt: () => onSignerHalt(),
    });
    await checkpointer.start();
    const onCommitted = (head: number) => {
      databaseHealthy = true;
      checkpointer.noteHead(head);
    };
    const refusals = new RefusalLimiter({
      windowMs: (settings.refusalWindowSeconds ?? OUTCOME_DEFAULTS.refusalWindowSeconds) * 1000,
      burst: settings.refusalBurst ?? OUTCOME_DEFAULTS.refusalBurst,
      maxSources: settings.refusalMaxSources ?? OUTCOME_DEFAULTS.refusalMaxSources,
    });
    const appender = new AuditAppender(database.db, sealer, metrics, logger, {
      maxBatchSize: MAX_BATCH,
      // PGlite is one in-process session: a second batch in flight would only wait for it.
      pipelined: database.driver === 'postgres',
      maxConcurrentBatches: database.driver === 'postgres' ? PIPELINED_BATCHES : 1,
      onCommitted,
      clock: options.clock,
      batchOptions: {
        refusals,
        defaultReserveTokens: settings.defaultReserveTokens ?? OUTCOME_DEFAULTS.defaultReserveTokens,
      },
    });
    const flushRefusals = async (everything = false) => {
      const now = (options.clock?.() ?? new Date()).getTime();
      await Promise.all(
        refusals.drain(now, everything).map((draft) => appender.record({ type: 'record', draft })),
      );
    };
    const refusalFlusher = setInterval(
      () => {
        flushRefusals().catch((error: unknown) =>
          logger.warn(
            { errorClass: (error as Error)?.constructor?.name },
            'refusal aggregates not written; will retry',
          ),
        );
      },
      Math.min(5_000, (settings.refusalWindowSeconds ?? OUTCOME_DEFAULTS.refusalWindowSeconds) * 1000),
    );
    refusalFlusher.unref();
    const sweeper = new LeaseSweeper(database.db, appender, metrics, logger, {
      intervalMs: (settings.leaseSweepSeconds ?? OUTCOME_DEFAULTS.leaseSweepSeconds) * 1000,
      clock: options.clock,
    });
    sweeper.start();
    cleanups.push(async () => {
      clearInterval(refusalFlusher);
      await sweeper.stop();
      await flushRefusals(true).catch(() => undefined);
      await appender.close();
      await checkpointer.stop();
      // A failed final checkpoint leaves the tail unsigned until the next start signs it: say so.
      await checkpointer
        .checkpointNow()
        .catch((error: unknown) =>
          logger.warn({ err: (error as Error).message }, 'final audit checkpoint at shutdown failed'),
        );
    });
    const journal = new AdminJournal(database.db, metrics, onCommitted, options.clock);
    const verifier = new ChainVerifier(database.db, trustedKeys, witness);
    const authenticator = new Authenticator(database.db, oidc, metrics);
    const gate = new AdminGate(authenticator, journal);

    const adminKey = await bootstrapAdminKey(database.db, journal, logger, {
      adminKey: settings.adminKey,
      embedded: !settings.databaseUrl,
      dataDir: settings.dataDir,
      announce: options.announce ?? ((line) => process.stdout.write(`${line}\n`)),
    });

    const health = new HealthImplementation({
      '': 'NOT_SERVING',
      [`${AUDIT_PACKAGE}.${AUDIT_SERVICE}`]: 'NOT_SERVING',
    });
    const setServing = (serving: boolean) => {
      const state = serving ? 'SERVING' : 'NOT_SERVING';
      health.setStatus('', state);
      health.setStatus(`${AUDIT_PACKAGE}.${AUDIT_SERVICE}`, state);
    };
    const responses = new ResponseStoreService(database.db, authenticator, sealer, {
      retentionDays: settings.responsesRetentionDays,
      clock: options.clock,
    });
    onSignerHalt = () => setServing(false);
    const { app: microservice, port: grpcPort } = await listenGrpc(settings, health, logger, {
      authorization: new AuthorizationService(
        authenticator,
        appender,
        metrics,
        new ReceiptSigner(signer),
        () => checkpointer.halted,
        database.db,
        { defaultLeaseSeconds: settings.requestLeaseSeconds ?? OUTCOME_DEFAULTS.requestLeaseSeconds },
      ),
      admin: new AdminService(database.db, gate, journal, sealer),
      auditLog: new AuditLogService(
        database.db,
        gate,
        journal,
        verifier,
        metrics,
        new AuditProofs(database.db, trustedKeys),
        sealer,
      ),
      responses,
    });
    cleanups.push(() => microservice.close());

    let closing = false;
    const ops = new OpsServer({
      host: settings.grpcHost,
      port: settings.opsPort,
      registry: metrics.registry,
      isReady: () => !closing && databaseHealthy && !checkpointer.halted,
    });
    const opsPort = await ops.listen();
    cleanups.push(() => ops.close());

    // Readiness follows the database: a failed ping (or a batch that lost its connection) marks it down.
    const pinger = setInterval(() => {
      database.ping().then(
        () => {
          databaseHealthy = true;
          setServing(!closing && !checkpointer.halted);
        },
        () => {
          databaseHealthy = false;
          setServing(false);
        },
      );
    }, DATABASE_PING_MS);
    pinger.unref();
    cleanups.push(() => Promise.resolve(clearInterval(pinger)));

    const pruneOlderThan = (cutoff: Date) => pruneAuditRecords(database.db, journal, cutoff);
    // In a least-privilege install retention runs as its own role ("auth-audit prune", a CronJob).
    const prunesHere = settings.retentionDays > 0 && (await canPrune(database.db));
    if (settings.retentionDays > 0 && !prunesHere) {
      logger.info('audit retention: this role may not prune; run "auth-audit prune" as the retention role');
    }
    if (prunesHere) {
      const prune = () => {
        const cutoff = new Date(Date.now() - settings.retentionDays * 86_400_000);
        pruneOlderThan(cutoff).then(
          (result) => result && metrics.prunedRecords.inc(result.removed),
          (error: unknown) =>
            logger.warn(
              { errorClass: (error as Error)?.constructor?.name },
              'retention pruning failed; will retry',
            ),
        );
      };
      const retention = setInterval(prune, RETENTION_EVERY_MS);
      retention.unref();
      cleanups.push(() => Promise.resolve(clearInterval(retention)));
    }

    // Stored responses expire on their own schedule (reads already refuse expired ones); hourly removal.
    const responseRetention = setInterval(() => {
      responses
        .pruneExpired()
        .catch((error: unknown) =>
          logger.warn(
            { errorClass: (error as Error)?.constructor?.name },
            'stored response expiry failed; will retry',
          ),
        );
    }, RETENTION_EVERY_MS);
    responseRetention.unref();
    cleanups.push(() => Promise.resolve(clearInterval(responseRetention)));

    setServing(!checkpointer.halted);
    const grpcAddress = `${settings.grpcHost}:${grpcPort}`;
    logger.info(
      {
        grpcAddress,
        opsPort,
        oidc: Boolean(oidc),
        signingKeyId: signer.keyId,
        transport: settings.transport.kind,
      },
      'auth-audit listening',
    );
    return {
      grpcAddress,
      grpcPort,
      opsPort,
      adminKey,
      database,
      metrics,
      checkpointNow: () => checkpointer.checkpointNow(),
      signerHalted: () => checkpointer.halted,
      witnessFile: witness.path,
      flushWitnessSinks: () => checkpointer.flushSinks(),
      pruneOlderThan,
      pruneExpiredResponses: () => responses.pruneExpired(),
      sweepLeases: () => sweeper.sweepNow(),
      flushRefusals,
      verifyChain: (verifyOptions) =>
        verifier.verify({ fromLastCheckpoint: verifyOptions?.fromLastCheckpoint ?? false }),
      close: async () => {
        if (closing) return;
        closing = true;
        setServing(false);
        await closeAll();
        logger.info('auth-audit stopped');
      },
    };
  } catch (error) {
    await closeAll();
    throw error instanceof DatabaseUnavailableError
      ? new Error('audit database unavailable at start-up')
      : error;
  }
}

/** The optional sinks besides the witness file, from settings. */
async function witnessSinks(settings: AuthAuditSettings): Promise<WitnessSink[]> {
  const sinks: WitnessSink[] = [];
  if (settings.witnessSyslogUrl) {
    const ca = settings.witnessSyslogCaFile
      ? await readFile(settings.witnessSyslogCaFile, 'utf8')
      : undefined;
    sinks.push(new SyslogWitnessSink(settings.witnessSyslogUrl, ca));
  }
  if (settings.witnessHttpUrl) sinks.push(new HttpWitnessSink(settings.witnessHttpUrl));
  return sinks;
}

function migrateOptions(settings: AuthAuditSettings) {
  return {
    retentionDays: settings.retentionDays,
    runtimeRole: settings.databaseRuntimeRole,
    retentionRole: settings.databaseRetentionRole,
  };
}

/**
 * Applies migrations, the retention policy and the grants with the owner's credentials
 * (AIRLOCK_DATABASE_MIGRATE_URL, else AIRLOCK_DATABASE_URL): "auth-audit migrate", or before start-up.
 */
export async function migrateDatabase(settings: AuthAuditSettings, logger: Logger): Promise<number[]> {
  const database = await openDatabase({
    url: settings.databaseMigrateUrl ?? settings.databaseUrl,
    pgliteDir: pgliteDirectory(settings.dataDir),
    poolSize: 1,
  });
  try {
    const applied = await migrate(database.db, migrateOptions(settings));
    logger.info(
      {
        location: database.location,
        applied,
        runtimeRole: settings.databaseRuntimeRole,
        retentionRole: settings.databaseRetentionRole,
      },
      'database migrated',
    );
    return applied;
  } finally {
    await database.close();
  }
}

/** One retention pass as the retention role ("auth-audit prune"): a CronJob instead of the hourly timer. */
export async function pruneDatabase(
  settings: AuthAuditSettings,
  logger: Logger,
  now = new Date(),
): Promise<PruneResult | undefined> {
  if (settings.retentionDays <= 0) throw new Error('AIRLOCK_AUDIT_RETENTION_DAYS is 0: nothing to prune');
  const database = await openDatabase({
    url: settings.databaseUrl,
    pgliteDir: pgliteDirectory(settings.dataDir),
    poolSize: 1,
  });
  try {
    const journal = new AdminJournal(database.db, new AuthAuditMetrics(), () => undefined);
    const cutoff = new Date(now.getTime() - settings.retentionDays * 86_400_000);
    const result = await pruneAuditRecords(database.db, journal, cutoff);
    logger.info({ cut: result?.cut ?? 0, removed: result?.removed ?? 0 }, 'audit retention pass done');
    return result;
  } finally {
    await database.close();
  }
}

async function listenGrpc(
  settings: AuthAuditSettings,
  health: HealthImplementation,
  logger: Logger,
  services: Parameters<typeof AuthAuditModule.register>[0],
): Promise<{ app: INestMicroservice; port: number }> {
  // Port 0 (tests): Nest's gRPC server does not report the port it bound, so find a free one first.
  const port = settings.grpcPort === 0 ? await freePort(settings.grpcHost) : settings.grpcPort;
  const app = await NestFactory.createMicroservice(AuthAuditModule.register(services), {
    ...auditGrpcOptions(`${settings.grpcHost}:${port}`, health, settings.transport),
    logger: new NestPinoLogger(logger),
  });
  app.useGlobalFilters(new GrpcErrorFilter(logger));
  await app.listen();
  return { app, port };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
