import { sql } from 'kysely';
import { openDatabase } from '../src/database/database.js';
import { MIGRATIONS } from '../src/database/migrations.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp } from './support/test-app.js';

// The expand/contract rule that makes `helm upgrade` and `helm rollback` of one version safe (docs/air-gapped-install.md,
// "Upgrades"): a release's migrations only add (tables, defaulted columns, indexes), and a contraction waits a release.
// Then release N runs on N-1's schema after migrating it, and release N-1 runs on N's schema after a rollback. Here the
// current code plays both parts on real PostgreSQL: it upgrades a database at the previous schema version, and it runs
// on a database that a newer, expand-only release has migrated further (the rollback case), and back again.

async function applyUpTo(
  database: TestDatabase,
  lastVersion: number,
  future?: () => Promise<void>,
): Promise<void> {
  const { db, close } = await openDatabase({ url: database.url, pgliteDir: database.dataDir, poolSize: 1 });
  try {
    await db.transaction().execute(async (trx) => {
      await sql`create table airlock_schema_migrations (version integer primary key, name text not null,
        applied_at timestamptz not null default now())`.execute(trx);
      for (const migration of MIGRATIONS.filter((m) => m.version <= lastVersion)) {
        await migration.up(trx);
        await trx
          .insertInto('airlock_schema_migrations')
          .values({ version: migration.version, name: migration.name })
          .execute();
      }
    });
    await future?.();
  } finally {
    await close();
  }
}

/** A release after this one, expand-only: a new table, a defaulted column, an index, and its migration row. */
async function expandLikeTheNextRelease(database: TestDatabase): Promise<void> {
  const { db, close } = await openDatabase({ url: database.url, pgliteDir: database.dataDir, poolSize: 1 });
  try {
    const next = Math.max(...MIGRATIONS.map((m) => m.version)) + 100;
    await db.transaction().execute(async (trx) => {
      await sql`create table future_feature (id text primary key, created_at timestamptz not null)`.execute(
        trx,
      );
      await sql`alter table tenants add column future_flag boolean not null default false`.execute(trx);
      await sql`create index audit_records_future on audit_records (model, sequence)`.execute(trx);
      await trx
        .insertInto('airlock_schema_migrations')
        .values({ version: next, name: 'a newer release (expand)' })
        .execute();
    });
  } finally {
    await close();
  }
}

async function serveAndVerify(database: TestDatabase): Promise<void> {
  const running = await startTestApp(database);
  try {
    const answer = await running.client.authorize({
      credential: running.adminKey,
      action: 'ACTION_LIST_MODELS',
      requestId: requestId('rollback'),
    });
    expect(answer.allowed).toBe(true);
    await running.app.checkpointNow();
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  } finally {
    await running.stop();
  }
}

describe('schema versions across upgrade and rollback (PostgreSQL)', () => {
  const versions = MIGRATIONS.map((m) => m.version);
  const previous = versions[versions.length - 2];
  let database: TestDatabase;

  beforeEach(async () => {
    database = await createTestDatabase('postgres');
  });
  afterEach(async () => {
    await database.drop();
  });

  it(`upgrades a database at the previous schema (version ${previous}) and serves`, async () => {
    await applyUpTo(database, previous);
    await serveAndVerify(database);
    const { db, close } = await openDatabase({ url: database.url, pgliteDir: database.dataDir, poolSize: 1 });
    const applied = (await db.selectFrom('airlock_schema_migrations').select('version').execute()).map(
      (r) => r.version,
    );
    await close();
    expect(applied.sort((a, b) => a - b)).toEqual(versions);
  });

  it('serves on a schema a newer expand-only release has migrated (helm rollback), and again after rolling forward', async () => {
    await applyUpTo(database, versions[versions.length - 1], () => expandLikeTheNextRelease(database));
    await serveAndVerify(database);
    await serveAndVerify(database);
  });
});
