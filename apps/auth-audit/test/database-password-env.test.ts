import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase } from '../src/database/database.js';

// The chart's CloudNativePG wiring (helm/airlock/templates/postgresql/_cloudnativepg.tpl) gives auth-audit a URL that
// names the role but no password, and the role's password as PGPASSWORD from its Secret. Proven here on a real
// PostgreSQL with SCRAM authentication (the test cluster trusts loopback, so it would let any password in): that URL
// connects with the right PGPASSWORD and is refused with a wrong one.

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

interface ScramServer {
  url: string;
  stop(): Promise<void>;
}

describe('database URL without a password, PGPASSWORD from the Secret (CloudNativePG wiring)', () => {
  let server: ScramServer;
  let root: string;
  const role = 'airlock_runtime';
  const password = 'Gen3rated0nce4ndKept1nASecretXyZ0123456789';
  let savedPassword: string | undefined;

  beforeAll(async () => {
    const serverModule = new URL('../../../scripts/postgres-server.mjs', import.meta.url).href;
    const { allowServerUserInto, startPostgresServer } = (await import(serverModule)) as {
      allowServerUserInto(dir: string): boolean;
      startPostgresServer(options: Record<string, unknown>): Promise<ScramServer>;
    };
    root = await mkdtemp(join(tmpdir(), 'airlock-scram-postgres-'));
    const dir = join(root, 'data');
    allowServerUserInto(dir);
    server = await startPostgresServer({ dir, port: await freePort(), durable: false });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`create role ${role} login password '${password}'`);
    await admin.end();
    savedPassword = process.env.PGPASSWORD;
  }, 60_000);
  afterAll(async () => {
    if (savedPassword === undefined) delete process.env.PGPASSWORD;
    else process.env.PGPASSWORD = savedPassword;
    await server?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const urlWithoutPassword = () => {
    const url = new URL(server.url);
    url.username = role;
    url.password = '';
    return url.toString();
  };

  it('connects as the role with the right PGPASSWORD', async () => {
    process.env.PGPASSWORD = password;
    const database = await openDatabase({ url: urlWithoutPassword(), pgliteDir: root, poolSize: 1 });
    try {
      await database.ping();
    } finally {
      await database.close();
    }
  });

  it('is refused with a wrong PGPASSWORD (the server does check it)', async () => {
    process.env.PGPASSWORD = 'wrong';
    const database = await openDatabase({ url: urlWithoutPassword(), pgliteDir: root, poolSize: 1 });
    try {
      await expect(database.ping()).rejects.toThrow(
        /password authentication failed for user "airlock_runtime"/,
      );
    } finally {
      await database.close();
    }
  });
});
