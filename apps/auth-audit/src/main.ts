import { loadAuthAuditSettings, SettingsError } from './config/auth-audit-settings.js';
import { startAuthAuditApp } from './auth-audit-app.js';

// The auth-audit process: settings from AIRLOCK_* variables, stop cleanly on SIGTERM/SIGINT.
async function main(): Promise<void> {
  const settings = loadAuthAuditSettings();
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
