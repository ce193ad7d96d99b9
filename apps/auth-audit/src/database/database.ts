import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely';
import pg from 'pg';
import type { AuthAuditDatabase } from './database-schema.js';

export type AuthAuditDb = Kysely<AuthAuditDatabase>;

export interface DatabaseHandle {
  db: AuthAuditDb;
  driver: 'postgres' | 'pglite';
  /** Where it lives, without credentials: host/database or the PGlite directory. */
  location: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Real PostgreSQL; when absent, PGlite in `pgliteDir`. */
  url?: string;
  pgliteDir: string;
  poolSize: number;
  /** Receives pool-level errors (a backend killed while idle), which would otherwise crash the process. */
  onPoolError?: (error: Error) => void;
}

const INT8_OID = 20;

/** int8 (sequence numbers, token counts) as numbers: they stay far below 2^53. */
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID
      ? (value: string) => Number(value)
      : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
};

export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.url) {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize,
      types: pgTypes,
      application_name: 'airlock-auth-audit',
      connectionTimeoutMillis: 5_000,
    });
    pool.on('error', (error) => options.onPoolError?.(error));
    // A connection that dies while checked out (mid-transaction) emits 'error' on its client, which nobody
    // else listens to there: unhandled, it would end the process. The query in flight fails on its own.
    pool.on('connect', (client) => client.on('error', (error) => options.onPoolError?.(error)));
    const db = new Kysely<AuthAuditDatabase>({ dialect: new PostgresDialect({ pool }) });
    const url = new URL(options.url);
    return {
      db,
      driver: 'postgres',
      location: `${url.hostname}:${url.port || '5432'}${url.pathname}`,
      ping: async () => void (await sql`select 1`.execute(db)),
      close: () => db.destroy(),
    };
  }
  await mkdir(options.pgliteDir, { recursive: true, mode: 0o700 });
  const client = await PGlite.create(options.pgliteDir);
  // PGlite's file system creates every file 0666 whatever the umask; the WAL holds principal and request
  // ids. The directory itself is 0700 (nobody else can reach in) and the files are narrowed at open and close.
  await ownerOnly(options.pgliteDir);
  const db = new Kysely<AuthAuditDatabase>({ dialect: pgliteDialect(client) });
  return {
    db,
    driver: 'pglite',
    location: options.pgliteDir,
    ping: async () => void (await sql`select 1`.execute(db)),
    close: async () => {
      await db.destroy();
      await ownerOnly(options.pgliteDir);
    },
  };
}

/** Directories 0700, files 0600, recursively (bounded by the tree PGlite made). */
export async function ownerOnly(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await ownerOnly(path);
    else if (entry.isFile()) await chmod(path, 0o600);
  }
}

export function pgliteDirectory(dataDir: string): string {
  return join(dataDir, 'auth-audit-pglite');
}

/**
 * Kysely over PGlite. PGlite is a single session, so this driver lends its one connection to one caller at a
 * time (transactions must not interleave). Written here because kysely-pglite 0.6.1 cannot be imported with
 * kysely 0.29 (its index imports `Migrator` from kysely's root, which 0.29 moved to 'kysely/migration').
 */
function pgliteDialect(client: PGlite): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new PGliteDriver(client),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db) => new PostgresIntrospector(db),
  };
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly client: PGlite) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.client.query<R>(query.sql, [...query.parameters]);
    const affected = result.affectedRows;
    return {
      rows: result.rows,
      ...(affected !== undefined && query.query.kind !== 'SelectQueryNode'
        ? { numAffectedRows: BigInt(affected) }
        : {}),
    };
  }

  streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGlite does not stream query results');
  }
}

class PGliteDriver implements Driver {
  private readonly connection: PGliteConnection;
  private tail: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  constructor(private readonly client: PGlite) {
    this.connection = new PGliteConnection(client);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    this.release = release;
    return this.connection;
  }

  releaseConnection(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    release?.();
    return Promise.resolve();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async destroy(): Promise<void> {
    await this.client.close();
  }
}
