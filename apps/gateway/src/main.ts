import { createLogger } from '@airlock/telemetry';
import { ConfigError, loadGatewayConfig } from './config.js';
import { loadConsoleConfig } from './console/console-config.js';
import { startGatewayApp } from './gateway-app.js';

/** Process entry: settings from the environment, clean shutdown on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let config;
  let consoleConfig;
  try {
    config = loadGatewayConfig();
    consoleConfig = loadConsoleConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'gateway', level: config.logLevel });
  const app = await startGatewayApp(config, { logger, console: consoleConfig });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'gateway stopping');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: (error as Error).message }, 'gateway stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
