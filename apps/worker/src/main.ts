import { createLogger } from '@airlock/telemetry';
import { readWorkerSettings, SettingsError } from './config/worker-settings.js';
import { startWorkerApp } from './worker-app.js';

const bootLogger = createLogger({ service: 'worker' });

/**
 * node-llama-cpp writes some warnings with console.* (e.g. about a JSON schema's $ref, quoting it): in this
 * process nothing reaches stdout or stderr except our structured logger, and console text is withheld.
 */
function withholdConsoleOutput(logger: ReturnType<typeof createLogger>): void {
  const withheld =
    (level: 'warn' | 'info') =>
    (...args: unknown[]) =>
      logger[level]({ parts: args.length }, 'console output withheld (it may quote request content)');
  /* eslint-disable no-console -- replacing console is the point */
  console.log = withheld('info');
  console.info = withheld('info');
  console.debug = withheld('info');
  console.warn = withheld('warn');
  console.error = withheld('warn');
  /* eslint-enable no-console */
}

try {
  const settings = readWorkerSettings();
  const logger = createLogger({ service: 'worker', level: settings.logLevel });
  withholdConsoleOutput(logger);
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
