import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names that may carry secrets or user content. Logging any of them is a bug; redaction is the
 * safety net, not the policy: call sites log ids, sizes and counts only.
 */
const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'apiKey',
  '*.apiKey',
  'key',
  '*.key',
  'token',
  '*.token',
  'prompt',
  '*.prompt',
  'messages',
  '*.messages',
  'content',
  '*.content',
  'input',
  '*.input',
  'inputs',
  '*.inputs',
  'text',
  '*.text',
];

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go; stdout unless a test captures them. */
  destination?: pino.DestinationStream;
}

/** Structured JSON logs, one line per event, with the service name on every line. */
export function createLogger({ service, level, destination }: LoggerOptions): Logger {
  return pino(
    {
      level: level ?? process.env.AIRLOCK_LOG_LEVEL ?? 'info',
      base: { service },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
