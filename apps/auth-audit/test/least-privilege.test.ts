import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLogger } from '@airlock/telemetry';
import { migrateDatabase, pruneDatabase } from '../src/auth-audit-app.js';
import { ADMIN_DATABASE_URL, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, testSettings, type RunningTestApp } from './support/test-app.js';

// The roles docs/audit-log.md tells a DBA to create, on real PostgreSQL: the owner migrates, the service
// runs as a runtime role that cannot delete, alter or disable triggers, and only the retention role may
// call audit_prune() — which still refuses young cuts, cuts without a checkpoint or without their own
// record, and is not fooled by a temporary table or a session setting.
const DAY_MS = 86_400_000;
const OLD = () => new Date(Date.now() - 40 * DAY_MS);
const quiet = createLogger({ service: 'auth-audit', level: 'silent' });

describe('least privilege on PostgreSQL', () => {
  const suffix = randomBytes(4).toString('hex');
  const role = {
    owner: `airlock_owner_${suffix}`,
    runtime: `airlock_runtime_${suffix}`,
    retention: `airlock_retention_${suffix}`,
    intruder: `intruder_${suffix}`,
  };
  const dbName = `airlock_lp_${suffix}`;
  const urlAs = (user: string) => {
    const url = new URL(ADMIN_DATABASE_URL);
    url.username = user;
    url.password = '';
    url.pathname = `/${dbName}`;
    return url.toString();
  };
  let dataDir: string;
  let database: TestDatabase;
  let running: RunningTestApp;

  async function asRole<T>(user: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: urlAs(user) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }
  const refusal = async (user: string, statements: string[]): Promise<string> =>
    asRole(user, async (client) => {
      await client.query('begin');
      try {
        for (const statement of statements) await client.query(statement);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      } finally {
        await client.query('rollback');
      }
    });
  const count = () =>
    asRole(role.owner, async (c) =>
      Number((await c.query('select count(*) from audit_records')).rows[0].count),
    );

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'airlock-lp-'));
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
    // Exactly the statements of docs/audit-log.md, "Database roles" (passwords left out: trust auth here).
    for (const statement of [
      `create role ${role.owner} login`,
      `create role ${role.runtime} login`,
      `create role ${role.retention} login`,
      `create role ${role.intruder} login`,
      `create database ${dbName} owner ${role.owner}`,
    ]) {
      await admin.query(statement);
    }
    await admin.end();
    database = {
      driver: 'postgres',
      url: urlAs(role.runtime),
      dataDir,
      superuser: () => new pg.Client({ connectionString: urlAs(role.owner) }),
      drop: () => Promise.resolve(),
    };
    // auth-audit migrate, as the owner (the chart's Job).
    const applied = await migrateDatabase(
      testSettings(database, {
        databaseUrl: urlAs(role.owner),
        databaseRuntimeRole: role.runtime,
        databaseRetentionRole: role.retention,
        retentionDays: 30,
      }),
      quiet,
    );
    expect(applied).toEqual(expect.arrayContaining([1, 2]));
    // The service, as the runtime role; its records dated 40 days back so that retention may cut them.
    running = await startTestApp(database, { retentionDays: 30 }, OLD);
  });

  afterAll(async () => {
    await running?.stop();
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
    await admin.query(`drop database if exists ${dbName} with (force)`);
    for (const name of Object.values(role)) await admin.query(`drop role if exists ${name}`);
    await admin.end();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves as the runtime role: keys, Authorize, Complete and checkpoints work', async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'lp user',
      role: 'ROLE_USER',
    });
    for (let index = 0; index < 5; index += 1) {
      const id = requestId('lp');
      const answer = await running.client.authorize({
        credential: created.secret,
        action: 'ACTION_CHAT_COMPLETIONS',
        model: 'm',
        requestId: id,
      });
      expect(answer.allowed).toBe(true);
      await running.client.complete({ requestId: id, outcome: 'OUTCOME_SUCCEEDED', statusCode: 200 });
    }
    expect(await running.app.checkpointNow()).toBeDefined();
    expect((await running.app.verifyChain()).ok).toBe(true);
    const { rows } = await asRole(role.runtime, (c) => c.query('select current_user as who'));
    expect(rows[0].who).toBe(role.runtime);
  });

  it('the runtime role cannot delete, alter, disable triggers or prune', async () => {
    const before = await count();
    expect(await refusal(role.runtime, ['delete from audit_records where sequence = 1'])).toMatch(
      /permission denied/,
    );
    expect(await refusal(role.runtime, ['update audit_records set model = $$x$$'])).toMatch(
      /permission denied/,
    );
    expect(await refusal(role.runtime, ['truncate audit_records'])).toMatch(/permission denied/);
    expect(await refusal(role.runtime, ['alter table audit_records disable trigger user'])).toMatch(
      /must be owner/,
    );
    expect(await refusal(role.runtime, ['drop table audit_checkpoints'])).toMatch(/must be owner/);
    expect(await refusal(role.runtime, ['delete from audit_checkpoints'])).toMatch(/permission denied/);
    expect(await refusal(role.runtime, ['set local session_replication_role = replica'])).toMatch(
      /permission denied/,
    );
    expect(await refusal(role.runtime, ['select audit_prune(1)'])).toMatch(/permission denied for function/);
    expect(await count()).toBe(before);
  });

  it('a login with no grants cannot prune (not executable by PUBLIC), even with a shadowing temp table', async () => {
    const before = await count();
    expect(await refusal(role.intruder, ['select public.audit_prune(1)'])).toMatch(/permission denied/);
    expect(
      await refusal(role.intruder, [
        'create temp table audit_checkpoints (sequence bigint)',
        'insert into audit_checkpoints values (3)',
        'set local search_path = pg_temp, public',
        'select audit_prune(3)',
      ]),
    ).toMatch(/permission denied/);
    expect(await count()).toBe(before);
  });

  it('a role holding DELETE gets nothing from the session setting: the guard wants the owner inside audit_prune()', async () => {
    await asRole(role.owner, (c) => c.query(`grant select, delete on audit_records to ${role.intruder}`));
    const before = await count();
    for (const marker of ['on', 'pg_current_xact_id()::text']) {
      expect(
        await refusal(role.intruder, [
          `select set_config('airlock.audit_prune', 'on', true)`,
          `select set_config('airlock.audit_prune_xact', ${marker === 'on' ? "'on'" : marker}, true)`,
          'delete from audit_records where sequence <= 3',
        ]),
      ).toMatch(/append-only/);
    }
    await asRole(role.owner, (c) => c.query(`revoke select, delete on audit_records from ${role.intruder}`));
    expect(await count()).toBe(before);
  });

  it('the retention role: temp-table shadowing, a cut without its own record and a young cut are refused', async () => {
    const before = await count();
    // A temporary audit_checkpoints claiming a checkpoint at 3: the function reads the real table.
    expect(
      await refusal(role.retention, [
        'create temp table audit_checkpoints (sequence bigint, record_hash text)',
        'insert into audit_checkpoints values (3, $$x$$)',
        'set local search_path = pg_temp, public',
        'select public.audit_prune(3)',
      ]),
    ).toMatch(/no signed checkpoint at sequence 3/);
    const cut = await asRole(role.owner, async (c) =>
      Number((await c.query('select max(sequence) as s from audit_checkpoints')).rows[0].s),
    );
    expect(await refusal(role.retention, [`select audit_prune(${cut})`])).toMatch(
      /must follow its own audit\.prune record/,
    );
    // A stricter policy (records are 40 days old): the cut is too young.
    await asRole(role.owner, (c) => c.query('update audit_retention_policy set min_age_days = 60'));
    await expect(
      pruneDatabase(testSettings(database, { databaseUrl: urlAs(role.retention), retentionDays: 1 }), quiet),
    ).rejects.toThrow(/younger than 60 days/);
    await asRole(role.owner, (c) => c.query('update audit_retention_policy set min_age_days = 30'));
    expect(await count()).toBe(before);
  });

  it('the retention job prunes an old cut at a checkpoint, records it, and the chain verifies from the cut', async () => {
    const cut = await asRole(role.owner, async (c) =>
      Number((await c.query('select max(sequence) as s from audit_checkpoints')).rows[0].s),
    );
    const result = await pruneDatabase(
      testSettings(database, { databaseUrl: urlAs(role.retention), retentionDays: 30 }),
      quiet,
    );
    expect(result).toMatchObject({ cut, removed: cut });
    const remaining = await asRole(role.owner, async (c) =>
      Number((await c.query<{ s: string }>('select min(sequence) as s from audit_records')).rows[0].s),
    );
    expect(remaining).toBe(cut + 1);
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { fromSequence: result!.sequence, toSequence: result!.sequence },
    });
    expect(records[0]).toMatchObject({ action: 'audit.prune', principalId: 'system', target: String(cut) });
    expect(await running.app.verifyChain()).toMatchObject({ ok: true, anchorCheckpointSequence: cut });
  });

  it('a runtime role refuses to start while migrations are pending', async () => {
    await asRole(role.owner, (c) => c.query('delete from airlock_schema_migrations where version = 2'));
    await expect(startTestApp(database)).rejects.toThrow(/migrations 2 are pending.*auth-audit migrate/);
    await asRole(role.owner, (c) =>
      c.query(`insert into airlock_schema_migrations (version, name) values (2, 'restored')`),
    );
  });
});
