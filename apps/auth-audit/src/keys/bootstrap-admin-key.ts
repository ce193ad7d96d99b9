import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Logger } from '@airlock/telemetry';
import type { AuthAuditDb } from '../database/database.js';
import { DEFAULT_TENANT_ID } from '../database/migrations.js';
import { SYSTEM_ACTOR, type AdminJournal } from '../audit/admin-journal.js';
import { generateApiKey, parseApiKey } from './api-key-format.js';
import { apiKeyRepository } from './api-key.repository.js';

export const BOOTSTRAP_CREATOR = 'bootstrap';
export const ADMIN_KEY_FILE = 'admin-key';
const BOOTSTRAP_LOCK_KEY = 0x41524c42; // "ARLB"

export interface BootstrapOptions {
  /** AIRLOCK_ADMIN_KEY. */
  adminKey?: string;
  /** Embedded default (PGlite): generate a key when none is given, keep it in the data directory. */
  embedded: boolean;
  dataDir: string;
  /** Where the one-time notice of a generated key goes (stdout). */
  announce: (line: string) => void;
}

/**
 * The first admin key. From AIRLOCK_ADMIN_KEY when set (a Secret in production; changing it rotates the
 * key); on the embedded default without it, from $AIRLOCK_DATA_DIR/admin-key, generated (mode 0600) and
 * announced once if that file does not exist. Returns the key text when this process knows it.
 */
export async function bootstrapAdminKey(
  db: AuthAuditDb,
  journal: AdminJournal,
  logger: Logger,
  options: BootstrapOptions,
): Promise<string | undefined> {
  let keyText = options.adminKey;
  if (!keyText && options.embedded) {
    const file = join(options.dataDir, ADMIN_KEY_FILE);
    keyText = await readKeyFile(file);
    if (!keyText) {
      keyText = generateApiKey().text;
      await writeFile(file, `${keyText}\n`, { mode: 0o600, flag: 'wx' });
      // Where it is, never what it is: stdout is the log stream.
      options.announce(`Airlock bootstrap admin key generated: read it from ${file} (mode 0600)`);
    }
  }
  if (!keyText) {
    if ((await apiKeyRepository.countActiveAdmins(db, new Date())) === 0) {
      logger.warn('no active admin key: set AIRLOCK_ADMIN_KEY to create one');
    }
    return undefined;
  }
  const parsed = parseApiKey(keyText);
  if (!parsed)
    throw new Error(
      'AIRLOCK_ADMIN_KEY: expected "alk_<id>_<secret>" (id 4-32 of [a-z0-9], secret 32+ of [A-Za-z0-9_-])',
    );
  const current = await apiKeyRepository.findById(db, parsed.id);
  // Unchanged: nothing to do. A revoked bootstrap key stays revoked until its Secret holds a new key.
  if (current && current.createdBy === BOOTSTRAP_CREATOR && current.secretHash === parsed.hash)
    return keyText;
  const context = { requestId: 'bootstrap', clientAddress: '', userAgent: '' };
  await journal.run(SYSTEM_ACTOR, context, async (trx) => {
    // Replicas starting together: one bootstraps, the others find its work done.
    await sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`.execute(trx);
    const existing = await apiKeyRepository.findById(trx, parsed.id);
    if (existing && existing.createdBy !== BOOTSTRAP_CREATOR) {
      throw new Error('AIRLOCK_ADMIN_KEY: its id belongs to a key that was not created by bootstrap');
    }
    if (!existing) {
      await apiKeyRepository.insert(trx, {
        id: parsed.id,
        tenant: DEFAULT_TENANT_ID,
        name: 'bootstrap admin',
        role: 'admin',
        secretHash: parsed.hash,
        allowedModels: [],
        limits: { requestsPerMinute: 0, tokensPerMinute: 0, tokensPerDay: 0, tokensPerMonth: 0 },
        global: true,
        expiresAt: null,
        createdBy: BOOTSTRAP_CREATOR,
        createdAt: new Date(),
        revokedAt: null,
      });
      // A Secret that now holds a key with a new id rotates the admin key: the one it replaced stops working.
      const replaced = await apiKeyRepository.revokeOtherBootstrapKeys(
        trx,
        parsed.id,
        BOOTSTRAP_CREATOR,
        new Date(),
      );
      if (replaced.length > 0) {
        return {
          result: undefined,
          record: { action: 'keys.bootstrap_rotate', target: parsed.id, details: { revoked: replaced } },
        };
      }
      return { result: undefined, record: { action: 'keys.bootstrap', target: parsed.id } };
    }
    if (existing.secretHash === parsed.hash) return { result: undefined, record: undefined };
    // A changed Secret rotates the key (and lifts a revocation of the old one).
    await apiKeyRepository.replaceSecretHash(trx, parsed.id, parsed.hash);
    return { result: undefined, record: { action: 'keys.bootstrap_rotate', target: parsed.id } };
  });
  return keyText;
}

async function readKeyFile(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
