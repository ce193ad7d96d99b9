import type { Kysely, Selectable } from 'kysely';
import type { AuthAuditDatabase, StoredResponsesTable } from '../database/database-schema.js';

type Db = Kysely<AuthAuditDatabase>;

/** Whose a stored response is: every read and delete is bound to both. */
export interface ResponseOwner {
  tenantId: string;
  principalId: string;
}

export type StoredResponseRow = Selectable<StoredResponsesTable>;

export const storedResponseRepository = {
  async insert(db: Db, row: StoredResponseRow): Promise<void> {
    await db.insertInto('stored_responses').values(row).execute();
  },

  /** The owner's unexpired response, else undefined (another owner's is indistinguishable from none). */
  async find(db: Db, id: string, owner: ResponseOwner, now: Date): Promise<StoredResponseRow | undefined> {
    return db
      .selectFrom('stored_responses')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', '=', owner.tenantId)
      .where('principal_id', '=', owner.principalId)
      .where('expires_at', '>', now)
      .executeTakeFirst();
  },

  /** True when the owner's unexpired response was there and is gone now. */
  async delete(db: Db, id: string, owner: ResponseOwner, now: Date): Promise<boolean> {
    const result = await db
      .deleteFrom('stored_responses')
      .where('id', '=', id)
      .where('tenant_id', '=', owner.tenantId)
      .where('principal_id', '=', owner.principalId)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  },

  /** Retention: removes every response past its expiry; returns how many. */
  async deleteExpired(db: Db, now: Date): Promise<number> {
    const result = await db.deleteFrom('stored_responses').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  },
};
