import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import type { ContentCaptureMode } from '../tenants/tenant.repository.js';

/** What the audit record keeps of one body, per the tenant's capture mode. */
export interface SealedContent {
  digest: string;
  ciphertext: string;
  keyId: string;
}

const EMPTY: SealedContent = { digest: '', ciphertext: '', keyId: '' };
const IV_BYTES = 12;
const TAG_BYTES = 16;

const keysFileSchema = z.object({
  activeKeyId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  keys: z.record(
    z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    z
      .string()
      .transform((text) => Buffer.from(text, 'base64'))
      .refine((key) => key.length === 32, 'each key is 32 bytes, base64-encoded'),
  ),
});

/**
 * Digests and (for `full` capture) encrypts request and response bodies. AES-256-GCM under the active content
 * key; each ciphertext names its key id, so keys rotate by adding a new active key and keeping the old ones
 * for reading. The associated data binds a ciphertext to its request id and direction.
 */
export class ContentSealer {
  private constructor(
    private readonly activeKeyId: string | undefined,
    private readonly keys: Map<string, Buffer>,
  ) {}

  /** Keys file (JSON or YAML): `{ activeKeyId: "2025-01", keys: { "2025-01": "<base64 of 32 bytes>" } }`. */
  static async fromFile(path: string | undefined): Promise<ContentSealer> {
    if (!path) return new ContentSealer(undefined, new Map());
    const parsed = keysFileSchema.safeParse(parse(await readFile(path, 'utf8')));
    if (!parsed.success) {
      throw new Error(
        `AIRLOCK_AUDIT_CONTENT_KEYS_FILE: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
      );
    }
    if (!(parsed.data.activeKeyId in parsed.data.keys)) {
      throw new Error('AIRLOCK_AUDIT_CONTENT_KEYS_FILE: activeKeyId names no key in "keys"');
    }
    return new ContentSealer(parsed.data.activeKeyId, new Map(Object.entries(parsed.data.keys)));
  }

  get canEncrypt(): boolean {
    return this.activeKeyId !== undefined;
  }

  seal(body: Uint8Array | undefined, mode: ContentCaptureMode, associatedData: string): SealedContent {
    if (mode === 'none') return EMPTY;
    const bytes = body ?? new Uint8Array();
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (mode === 'digest' || !this.activeKeyId) return { digest, ciphertext: '', keyId: '' };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.activeKeyId)!, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const encrypted = Buffer.concat([cipher.update(bytes), cipher.final()]);
    return {
      digest,
      ciphertext: Buffer.concat([iv, encrypted, cipher.getAuthTag()]).toString('base64'),
      keyId: this.activeKeyId,
    };
  }

  /** For auditors' tooling and tests: the plaintext of a `full` capture. */
  open(ciphertext: string, keyId: string, associatedData: string): Buffer {
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`no content key with id "${keyId}"`);
    return openContent(ciphertext, key, associatedData);
  }
}

export function openContent(ciphertext: string, key: Buffer, associatedData: string): Buffer {
  const bytes = Buffer.from(ciphertext, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  return Buffer.concat([
    decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
    decipher.final(),
  ]);
}

/** Associated data of a body's ciphertext: ties it to one request and one direction. */
export function contentAssociatedData(requestId: string, direction: 'request' | 'response'): string {
  return `airlock.audit.v1|${requestId}|${direction}`;
}
