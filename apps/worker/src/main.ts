import { createLogger } from '@airlock/telemetry';
import { readWorkerSettings, SettingsError } from './config/worker-settings.js';
import { startWorkerApp } from './worker-app.js';

const bootLogger = createLogger({ service: 'worker' });

try {
  const settings = readWorkerSettings();
  const logger = createLogger({ service: 'worker', level: settings.logLevel });
  const app = await startWorkerApp(settings, logger);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    app.drainAndClose().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: (error as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (error) {
  const message =
    error instanceof SettingsError ? error.message : `worker failed to start: ${(error as Error).message}`;
  bootLogger.fatal(message);
  process.exit(1);
}
