import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// Key text: "alk_<id>_<secret>". The id is public (it names the key in lists and audit records); the secret
// is 32 random bytes. Only SHA-256 of the whole text is stored: the secret is high-entropy, so a slow
// password hash would add latency to every request without adding safety.

export const API_KEY_PREFIX = 'alk_';
const KEY_PATTERN = /^alk_([a-z0-9]{4,32})_([A-Za-z0-9_-]{32,256})$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface ParsedApiKey {
  id: string;
  /** Hex SHA-256 of the whole key text. */
  hash: string;
}

export interface GeneratedApiKey extends ParsedApiKey {
  /** The whole key text: shown once, never stored. */
  text: string;
}

export function hashApiKey(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function parseApiKey(text: string): ParsedApiKey | undefined {
  const match = KEY_PATTERN.exec(text);
  return match ? { id: match[1], hash: hashApiKey(text) } : undefined;
}

export function generateApiKey(id = randomKeyId()): GeneratedApiKey {
  const text = `${API_KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
  return { id, text, hash: hashApiKey(text) };
}

export function randomKeyId(): string {
  const bytes = randomBytes(16);
  return Array.from(bytes, (byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

/** Constant-time comparison of two hex SHA-256 digests. */
export function apiKeyHashMatches(storedHash: string, candidateHash: string): boolean {
  const stored = Buffer.from(storedHash, 'hex');
  const candidate = Buffer.from(candidateHash, 'hex');
  return stored.length === 32 && candidate.length === 32 && timingSafeEqual(stored, candidate);
}
