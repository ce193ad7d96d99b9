// Types of postgres-server.mjs, for the TypeScript suites that start a server of their own (test/faults).
import type { ChildProcess } from 'node:child_process';

export interface PostgresServer {
  url: string;
  pid: number | undefined;
  child: ChildProcess;
  stop(timeoutMs?: number): Promise<void>;
}

export function startPostgresServer(options: {
  dir: string;
  port: number;
  host?: string;
  durable?: boolean;
  maxConnections?: number;
  trust?: boolean;
  binaries?: { initdb: string; postgres: string };
}): Promise<PostgresServer>;

export function allowServerUserInto(dir: string): boolean;

export function postgresBinaries(): Promise<{ initdb: string; postgres: string }>;
