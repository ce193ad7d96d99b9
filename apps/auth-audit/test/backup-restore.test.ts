import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp } from './support/test-app.js';

// docs/air-gapped-install.md, "Backup and restore", as an operator runs it on real PostgreSQL: pg_dump of the live
// database, pg_restore into a fresh one, and auth-audit started on the copy with the kept keys (signing key, data dir
// with the witness): the whole chain and every signed checkpoint verify, and the service appends on from where the
// backup ends. Needs pg_dump/pg_restore at least as new as the server (the machine's PostgreSQL client).

function pgToolMajor(): number | undefined {
  try {
    return Number(/(\d+)\./.exec(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' }))?.[1]);
  } catch {
    return undefined;
  }
}

async function serverMajor(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ server_version_num: string }>('show server_version_num');
  await client.end();
  return Math.floor(Number(rows[0].server_version_num) / 10000);
}

async function countRecords(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ count: string }>('select count(*) from audit_records');
  await client.end();
  return Number(rows[0].count);
}

describe('backup and restore (PostgreSQL, pg_dump/pg_restore)', () => {
  let live: TestDatabase;
  let restored: TestDatabase;
  let skip: string | undefined;

  beforeAll(async () => {
    live = await createTestDatabase('postgres');
    restored = await createTestDatabase('postgres');
    const tools = pgToolMajor();
    const server = await serverMajor(live.url!);
    if (tools === undefined) skip = 'pg_dump is not installed';
    else if (tools < server) skip = `pg_dump ${tools} cannot dump a PostgreSQL ${server} server`;
    if (skip) process.stderr.write(`backup-restore.test: skipped: ${skip}\n`);
  });
  afterAll(async () => {
    await live?.drop();
    await restored?.drop();
  });

  it('restores into a fresh database where the chain and every checkpoint verify with the kept keys, and appends on', async () => {
    if (skip) return;
    const signingKey = join(live.dataDir, 'audit-signing-key.pem');
    const { privateKey } = generateKeyPairSync('ed25519');
    await writeFile(signingKey, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), {
      mode: 0o600,
    });

    const before = await startTestApp(live, { signingKeyFile: signingKey });
    for (let i = 0; i < 12; i += 1) {
      await before.client.authorize({
        credential: before.adminKey,
        action: 'ACTION_LIST_MODELS',
        requestId: requestId('backup'),
      });
      if (i % 5 === 4) await before.app.checkpointNow();
    }
    await before.app.checkpointNow();
    const backedUp = await countRecords(live.url!);
    await before.stop();

    // The documented commands: a custom-format dump, restored without owners into an empty database.
    const dump = join(live.dataDir, 'airlock.dump');
    execFileSync('pg_dump', ['--format=custom', '--file', dump, '--dbname', live.url!], { stdio: 'pipe' });
    execFileSync('pg_restore', ['--no-owner', '--exit-on-error', '--dbname', restored.url!, dump], {
      stdio: 'pipe',
    });
    // The kept keys and data directory (witness) travel with the dump.
    await cp(live.dataDir, restored.dataDir, { recursive: true });
    expect(await countRecords(restored.url!)).toBe(backedUp);

    const after = await startTestApp(restored, { signingKeyFile: signingKey });
    try {
      const report = await after.app.verifyChain();
      expect(report).toMatchObject({ ok: true });
      expect(report.checkpointsChecked).toBeGreaterThanOrEqual(3);
      await after.client.authorize({
        credential: after.adminKey,
        action: 'ACTION_LIST_MODELS',
        requestId: requestId('restored'),
      });
      await after.app.checkpointNow();
      expect(await after.app.verifyChain()).toMatchObject({ ok: true });
      expect(await countRecords(restored.url!)).toBeGreaterThan(backedUp);
    } finally {
      await after.stop();
    }
  });
});
