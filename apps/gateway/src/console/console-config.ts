import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config.js';

/** Where the console's sign-in can come from: an API key always, the organisation's OIDC provider if set. */
export interface ConsoleOidcConfig {
  /** The issuer; its /.well-known/openid-configuration names the endpoints. */
  issuer: string;
  clientId: string;
  /** Empty for a public client (PKCE alone); sent with client_secret_post otherwise. */
  clientSecret: string;
  /** The gateway's /console/oidc/callback as the IdP knows it (the external address, behind an ingress). */
  redirectUrl: string;
  scopes: string;
  /** The token presented to auth-audit (whose AIRLOCK_OIDC_AUDIENCE it must carry). */
  token: 'id_token' | 'access_token';
}

export interface ConsoleConfig {
  enabled: boolean;
  /** AES-256-GCM key sealing session cookies; every gateway replica needs the same one. */
  sessionKey: Buffer;
  sessionSeconds: number;
  /** The built single-page app (vite's output). */
  assetsDir: string;
  oidc: ConsoleOidcConfig | null;
}

/** apps/gateway/dist/console-ui, from src/console (tests) and dist/console (the service) alike. */
export const DEFAULT_ASSETS_DIR = resolve(import.meta.dirname, '../../dist/console-ui');

const text = z.string().trim().default('');
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const consoleEnvSchema = z.object({
  AIRLOCK_CONSOLE_ENABLED: z.enum(['true', 'false']).default('true'),
  AIRLOCK_CONSOLE_SESSION_KEY: z
    .string()
    .trim()
    .refine(
      (value) => value === '' || Buffer.from(value, 'base64').length === 32,
      'expected 32 bytes, base64',
    )
    .default(''),
  AIRLOCK_CONSOLE_SESSION_HOURS: z.coerce.number().positive().max(24).default(8),
  // The code exchange carries the client secret and returns tokens: https, or plain http on loopback only.
  AIRLOCK_CONSOLE_OIDC_ISSUER: text.pipe(
    z.union([
      z.literal(''),
      z.url().refine((url) => {
        const { protocol, hostname } = new URL(url);
        return protocol === 'https:' || (protocol === 'http:' && LOOPBACK.has(hostname));
      }, 'expected an https:// URL (http:// only on 127.0.0.1 or localhost)'),
    ]),
  ),
  AIRLOCK_CONSOLE_OIDC_CLIENT_ID: text,
  AIRLOCK_CONSOLE_OIDC_CLIENT_SECRET: text,
  AIRLOCK_CONSOLE_OIDC_REDIRECT_URL: text.pipe(z.union([z.literal(''), z.url()])),
  AIRLOCK_CONSOLE_OIDC_SCOPES: z.string().trim().min(1).default('openid profile email'),
  AIRLOCK_CONSOLE_OIDC_TOKEN: z.enum(['id_token', 'access_token']).default('id_token'),
});

/** The console's settings from AIRLOCK_CONSOLE_* variables, validated once at boot. */
export function loadConsoleConfig(env: NodeJS.ProcessEnv = process.env): ConsoleConfig {
  const parsed = consoleEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`Invalid ${String(issue.path[0])}: ${issue.message}`);
  }
  const e = parsed.data;
  const oidcNamed = [e.AIRLOCK_CONSOLE_OIDC_ISSUER, e.AIRLOCK_CONSOLE_OIDC_CLIENT_ID].some(Boolean);
  if (oidcNamed) {
    const missing = (
      [
        'AIRLOCK_CONSOLE_OIDC_ISSUER',
        'AIRLOCK_CONSOLE_OIDC_CLIENT_ID',
        'AIRLOCK_CONSOLE_OIDC_REDIRECT_URL',
      ] as const
    ).filter((name) => !e[name]);
    if (missing.length > 0) throw new ConfigError(`Console OIDC sign-in also needs ${missing.join(', ')}`);
  }
  return consoleConfig({
    enabled: e.AIRLOCK_CONSOLE_ENABLED === 'true',
    // A per-process key still works for one replica; sessions then end with a restart.
    ...(e.AIRLOCK_CONSOLE_SESSION_KEY
      ? { sessionKey: Buffer.from(e.AIRLOCK_CONSOLE_SESSION_KEY, 'base64') }
      : {}),
    sessionSeconds: Math.round(e.AIRLOCK_CONSOLE_SESSION_HOURS * 3600),
    oidc: oidcNamed
      ? {
          issuer: e.AIRLOCK_CONSOLE_OIDC_ISSUER.replace(/\/$/, ''),
          clientId: e.AIRLOCK_CONSOLE_OIDC_CLIENT_ID,
          clientSecret: e.AIRLOCK_CONSOLE_OIDC_CLIENT_SECRET,
          redirectUrl: e.AIRLOCK_CONSOLE_OIDC_REDIRECT_URL,
          scopes: e.AIRLOCK_CONSOLE_OIDC_SCOPES,
          token: e.AIRLOCK_CONSOLE_OIDC_TOKEN,
        }
      : null,
  });
}

/** Defaults plus overrides (tests build it directly). */
export function consoleConfig(overrides: Partial<ConsoleConfig> = {}): ConsoleConfig {
  return {
    enabled: true,
    sessionKey: randomBytes(32),
    sessionSeconds: 8 * 3600,
    assetsDir: DEFAULT_ASSETS_DIR,
    oidc: null,
    ...overrides,
  };
}
