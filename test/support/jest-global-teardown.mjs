// Jest global teardown: stops and removes the PostgreSQL that the global setup started, if it started one.
import { rm } from 'node:fs/promises';

export default async function globalTeardown() {
  const started = globalThis.airlockTestPostgres;
  if (!started) return;
  await started.server.stop();
  await rm(started.root, { recursive: true, force: true });
}
