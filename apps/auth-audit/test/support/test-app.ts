import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '@airlock/telemetry';
import { startAuthAuditApp, type AuthAuditApp } from '../../src/auth-audit-app.js';
import type { AuthAuditSettings } from '../../src/config/auth-audit-settings.js';
import { createAuditClient, type AuditClient } from './audit-client.js';
import type { TestDatabase } from './test-database.js';

export const TEST_ADMIN_KEY = 'alk_testadmin_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export interface RunningTestApp {
  app: AuthAuditApp;
  client: AuditClient;
  adminKey: string;
  /** Every log line the app wrote, for "no secret in any log line" checks. */
  logLines: string[];
  stop(): Promise<void>;
}

export function testSettings(
  database: TestDatabase,
  overrides: Partial<AuthAuditSettings> = {},
): AuthAuditSettings {
  return {
    dataDir: database.dataDir,
    logLevel: 'debug',
    grpcHost: '127.0.0.1',
    grpcPort: 0,
    opsPort: 0,
    databaseUrl: database.url,
    databasePoolSize: 4,
    adminKey: TEST_ADMIN_KEY,
    checkpointEveryRecords: 1000,
    checkpointIntervalSeconds: 3600,
    retentionDays: 0,
    // The service's own suites call it directly; mTLS between services is tested in test/security and e2e.
    transport: { kind: 'plaintext' },
    responsesRetentionDays: 30,
    witnessDir: join(database.dataDir, 'audit-witness'),
    ...overrides,
  };
}

/** Boots the real service (gRPC on a free port) with its logs captured, plus a client. */
export async function startTestApp(
  database: TestDatabase,
  overrides: Partial<AuthAuditSettings> = {},
  clock?: () => Date,
): Promise<RunningTestApp> {
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const settings = testSettings(database, overrides);
  const app = await startAuthAuditApp(settings, {
    logger: createLogger({ service: 'auth-audit', level: 'debug', destination }),
    announce: (line) => logLines.push(`announce: ${line}`),
    clock,
  });
  const client = createAuditClient(app.grpcAddress);
  return {
    app,
    client,
    adminKey: app.adminKey ?? TEST_ADMIN_KEY,
    logLines,
    stop: async () => {
      client.close();
      await app.close();
    },
  };
}

let requestCounter = 0;
/** Unique request ids within a run. */
export function requestId(prefix = 'req'): string {
  requestCounter += 1;
  return `${prefix}-${process.pid}-${requestCounter}`;
}
