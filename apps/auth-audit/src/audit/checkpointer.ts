import type { Logger } from '@airlock/telemetry';
import type { AuthAuditDb } from '../database/database.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import type { CheckpointSigner } from './checkpoint-signer.js';

export interface CheckpointRow {
  sequence: number;
  record_hash: string;
  time: Date;
  key_id: string;
  signature: string;
}

export interface CheckpointerOptions {
  everyRecords: number;
  intervalSeconds: number;
}

/**
 * Signs the chain head with Ed25519 every N records or T seconds, whichever comes first (and only when the
 * head moved). Replicas may race to sign the same head: the checkpoint's primary key keeps one.
 */
export class Checkpointer {
  private lastSigned = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly db: AuthAuditDb,
    private readonly signer: CheckpointSigner,
    private readonly metrics: AuthAuditMetrics,
    private readonly logger: Logger,
    private readonly options: CheckpointerOptions,
  ) {}

  async start(): Promise<void> {
    await this.db
      .insertInto('audit_signing_keys')
      .values({ key_id: this.signer.keyId, public_key_pem: this.signer.publicKeyPem, created_at: new Date() })
      .onConflict((oc) => oc.column('key_id').doNothing())
      .execute();
    const latest = await this.db
      .selectFrom('audit_checkpoints')
      .select('sequence')
      .orderBy('sequence', 'desc')
      .limit(1)
      .executeTakeFirst();
    this.lastSigned = latest?.sequence ?? 0;
    this.timer = setInterval(() => this.checkpointSoon(), this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Called after each committed batch. */
  noteHead(headSequence: number): void {
    if (headSequence - this.lastSigned >= this.options.everyRecords) this.checkpointSoon();
  }

  /** Signs the current head now (tests, shutdown, pruning). */
  async checkpointNow(): Promise<CheckpointRow | undefined> {
    const head = await this.db
      .selectFrom('audit_chain_head')
      .select(['sequence', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    if (head.sequence === 0 || head.sequence <= this.lastSigned) return undefined;
    const time = new Date();
    const row: CheckpointRow = {
      sequence: head.sequence,
      record_hash: head.hash,
      time,
      key_id: this.signer.keyId,
      signature: this.signer.sign({ sequence: head.sequence, recordHash: head.hash, time }),
    };
    await this.db
      .insertInto('audit_checkpoints')
      .values(row)
      .onConflict((oc) => oc.column('sequence').doNothing())
      .execute();
    this.lastSigned = Math.max(this.lastSigned, head.sequence);
    this.metrics.checkpoints.inc();
    this.logger.debug({ sequence: head.sequence }, 'audit checkpoint signed');
    return row;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private checkpointSoon(): void {
    if (this.running) return;
    this.running = this.checkpointNow()
      .catch((error: unknown) =>
        this.logger.warn(
          { errorClass: (error as Error)?.constructor?.name },
          'audit checkpoint failed; will retry',
        ),
      )
      .finally(() => (this.running = undefined));
  }
}
