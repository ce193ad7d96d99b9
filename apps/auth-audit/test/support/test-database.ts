import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type TestDriver = 'postgres' | 'pglite';

/** Both drivers, for describe.each: every suite runs against real PostgreSQL and PGlite. */
export const DRIVERS: TestDriver[] = ['postgres', 'pglite'];

export const ADMIN_DATABASE_URL =
  process.env.AIRLOCK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh place for one suite: its own PostgreSQL database (dropped after) or PGlite directory. */
export interface TestDatabase {
  driver: TestDriver;
  /** Set for postgres. */
  url?: string;
  /** A temporary data directory (the PGlite files, keys, the admin key file). */
  dataDir: string;
  /** Runs SQL as the superuser, as an attacker with database access would (postgres only). */
  superuser(): pg.Client;
  drop(): Promise<void>;
}

/** `adminUrl`: another PostgreSQL server than the run's (a suite that starts its own). */
export async function createTestDatabase(
  driver: TestDriver,
  { adminUrl = ADMIN_DATABASE_URL }: { adminUrl?: string } = {},
): Promise<TestDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), 'airlock-auth-audit-'));
  if (driver === 'pglite') {
    return {
      driver,
      dataDir,
      superuser: () => {
        throw new Error('PGlite has no second connection');
      },
      drop: () => rm(dataDir, { recursive: true, force: true }),
    };
  }
  const name = `airlock_audit_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    driver,
    url: url.toString(),
    dataDir,
    superuser: () => new pg.Client({ connectionString: url.toString() }),
    drop: async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
