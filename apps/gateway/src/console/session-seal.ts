import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** What a console session cookie carries, sealed: the browser holds it but cannot read or change it. */
export interface ConsoleSession {
  /** The bearer credential the admin API gets for this session (an API key or an OIDC token). */
  credential: string;
  /** Sent back by the page in a header on every state-changing call (double submit, tied to the session). */
  csrf: string;
  principal: string;
  name: string;
  tenant: string;
  role: string;
  global: boolean;
  kind: 'api_key' | 'oidc';
  /** Unix seconds. */
  expiresAt: number;
}

// Binds ciphertexts to their purpose: a sealed login state can never be replayed as a session.
export type SealPurpose = 'session' | 'oidc-login';

/** AES-256-GCM with a random 96-bit nonce: base64url(nonce | ciphertext | tag). */
export function seal(key: Buffer, purpose: SealPurpose, value: object): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(`airlock.console.${purpose}.v1`));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
}

/** The sealed value, or undefined when it was altered, sealed with another key or purpose, or expired. */
export function unseal<T extends { expiresAt: number }>(
  key: Buffer,
  purpose: SealPurpose,
  sealed: string,
  nowSeconds = Date.now() / 1000,
): T | undefined {
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < 12 + 16 + 2) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(`airlock.console.${purpose}.v1`));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
    const value = JSON.parse(text.toString('utf8')) as T;
    return typeof value.expiresAt === 'number' && value.expiresAt > nowSeconds ? value : undefined;
  } catch {
    return undefined;
  }
}
