import { createLogger } from '@airlock/telemetry';
import { loadAuthAuditSettings, SettingsError } from './config/auth-audit-settings.js';
import { migrateDatabase, pruneDatabase, startAuthAuditApp } from './auth-audit-app.js';

// The auth-audit process: settings from AIRLOCK_* variables, stop cleanly on SIGTERM/SIGINT.
// "auth-audit migrate" (the owner's credentials: a Helm Job) and "auth-audit prune" (the retention role's:
// a CronJob) do one thing and exit.
async function main(): Promise<void> {
  const command = process.argv[2];
  const settings = loadAuthAuditSettings(
    process.env,
    command === 'migrate' || command === 'prune' ? 'job' : 'serve',
  );
  if (command === 'migrate' || command === 'prune') {
    const logger = createLogger({ service: 'auth-audit', level: settings.logLevel });
    if (command === 'migrate') await migrateDatabase(settings, logger);
    else await pruneDatabase(settings, logger);
    process.exit(0);
  }
  if (command !== undefined) throw new SettingsError(`unknown command "${command}" (migrate | prune)`);
  const app = await startAuthAuditApp(settings);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`auth-audit: ${signal}, shutting down\n`);
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  const message =
    error instanceof SettingsError || error instanceof Error ? error.message : 'start-up failed';
  process.stderr.write(`auth-audit: ${message}\n`);
  process.exit(1);
});
