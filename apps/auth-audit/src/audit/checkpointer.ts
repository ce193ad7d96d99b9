import type { Logger } from '@airlock/telemetry';
import type { AuthAuditDb } from '../database/database.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import { GENESIS_HASH } from '../database/migrations.js';
import { recordHash } from './audit-record.js';
import type { CheckpointSigner, TreeCheckpointFields } from './checkpoint-signer.js';
import { leafHash, MerkleFrontier } from './merkle-tree.js';
import {
  witnessDigest,
  witnessLineValid,
  type FileWitness,
  type WitnessLine,
  type WitnessSink,
} from './audit-witness.js';

export interface CheckpointRow {
  sequence: number;
  record_hash: string;
  time: Date;
  key_id: string;
  signature: string;
  root_hash: string;
  previous_digest: string;
  frontier: string;
}

export interface CheckpointerOptions {
  everyRecords: number;
  intervalSeconds: number;
  /** The witness the signer proves each new head against (and verify reads). */
  witness: FileWitness;
  /** Further sinks (syslog, HTTP): fed after the commit, in the background. */
  sinks?: WitnessSink[];
  /** Keys whose witness lines are trusted (the signing key and earlier ones). */
  trustedKeys: Map<string, string>;
  /** Told once when the signer halts: the service stops admitting inference. */
  onHalt?: (reason: string) => void;
}

/** What the signer has proven: the tree over records 1..size, the hash of record `size`, the last digest. */
interface TreeState {
  frontier: MerkleFrontier;
  headHash: string;
  lastDigest: string;
}

const PAGE = 500;
/** Records re-hashed between two turns of the event loop (about 2 ms of CPU). */
const YIELD_EVERY = 64;

export class SignerHaltedError extends Error {}

/**
 * Signs the chain head every N records or T seconds (only when it moved), as a v2 checkpoint: the RFC 9162
 * tree root over all records, the chain head and the previous checkpoint's digest.
 *
 * It never signs blindly: it starts from the last checkpoint in the witness file (outside the database),
 * and before each signature reads the new records and proves they extend what it signed before — contiguous
 * sequences, each linking to the previous hash and hashing to its own. On any mismatch it refuses for good
 * (until restarted against a database that extends the witness), sets airlock_audit_signer_halted and calls
 * onHalt, which stops inference.
 */
export class Checkpointer {
  private state: TreeState | undefined;
  private haltReason: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private lastSigned = 0;
  private background: Promise<void> = Promise.resolve();
  private serial: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: AuthAuditDb,
    private readonly signer: CheckpointSigner,
    private readonly metrics: AuthAuditMetrics,
    private readonly logger: Logger,
    private readonly options: CheckpointerOptions,
  ) {}

  get halted(): string | undefined {
    return this.haltReason;
  }

  async start(): Promise<void> {
    await this.db
      .insertInto('audit_signing_keys')
      .values({ key_id: this.signer.keyId, public_key_pem: this.signer.publicKeyPem, created_at: new Date() })
      .onConflict((oc) => oc.column('key_id').doNothing())
      .execute();
    this.metrics.signerHalted.set(0);
    this.state = await this.initialState();
    if (this.state) this.lastSigned = this.state.frontier.size;
    this.timer = setInterval(() => this.checkpointSoon(), this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Called after each committed batch. */
  noteHead(headSequence: number): void {
    if (headSequence - this.lastSigned >= this.options.everyRecords) this.checkpointSoon();
  }

  /** Signs the current head now (tests, shutdown); undefined when nothing moved. Throws when halted. */
  checkpointNow(): Promise<CheckpointRow | undefined> {
    // One at a time: each proves from the state the one before it left (it yields while it re-hashes).
    const next = this.serial.then(() => this.checkpointOnce());
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async checkpointOnce(): Promise<CheckpointRow | undefined> {
    if (this.haltReason) throw new SignerHaltedError(this.haltReason);
    const state = this.state;
    if (!state) throw new SignerHaltedError('the signer has not started');
    const head = await this.db
      .selectFrom('audit_chain_head')
      .select(['sequence', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    const size = state.frontier.size;
    if (head.sequence < size) {
      return this.halt(`the chain head ${head.sequence} is behind the last witnessed tree size ${size}`);
    }
    if (head.sequence === size) {
      if (head.hash !== state.headHash)
        return this.halt(`the chain head ${size} differs from what was signed`);
      return undefined;
    }
    const next: TreeState = { ...state, frontier: state.frontier.clone() };
    for (let from = size + 1; from <= head.sequence; from += PAGE) {
      const rows = await this.db
        .selectFrom('audit_records')
        .selectAll()
        .where('sequence', '>=', from)
        .where('sequence', '<=', Math.min(head.sequence, from + PAGE - 1))
        .orderBy('sequence')
        .execute();
      for (const [index, row] of rows.entries()) {
        // Hashing a page is tens of milliseconds of CPU: let the appender's answers through in between.
        if (index > 0 && index % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        const expected = next.frontier.size + 1;
        if (row.sequence !== expected) return this.halt(`record ${expected} is missing`);
        if (row.prev_hash !== next.headHash) {
          return this.halt(`record ${row.sequence} does not link to the last signed head`);
        }
        if (recordHash(row) !== row.hash) return this.halt(`record ${row.sequence} does not match its hash`);
        next.frontier.append(leafHash(row.hash));
        next.headHash = row.hash;
      }
      if (rows.length === 0) break;
    }
    if (next.frontier.size !== head.sequence || next.headHash !== head.hash) {
      return this.halt(`the records do not reach the chain head ${head.sequence}`);
    }
    const fields: TreeCheckpointFields = {
      treeSize: head.sequence,
      rootHash: next.frontier.root().toString('hex'),
      recordHash: head.hash,
      time: new Date(),
      previousDigest: state.lastDigest,
    };
    const row: CheckpointRow = {
      sequence: fields.treeSize,
      record_hash: fields.recordHash,
      time: fields.time,
      key_id: this.signer.keyId,
      signature: this.signer.signTree(fields),
      root_hash: fields.rootHash,
      previous_digest: fields.previousDigest,
      frontier: JSON.stringify(next.frontier.toHex()),
    };
    const inserted = await this.db
      .insertInto('audit_checkpoints')
      .values(row)
      .onConflict((oc) => oc.column('sequence').doNothing())
      .returning('sequence')
      .executeTakeFirst();
    let signed = row;
    if (!inserted) {
      // Another replica signed this head first: adopt its checkpoint if it commits to the same tree.
      const theirs = await this.db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('sequence', '=', fields.treeSize)
        .executeTakeFirstOrThrow();
      if (theirs.root_hash !== fields.rootHash || theirs.record_hash !== fields.recordHash) {
        return this.halt(`the checkpoint at ${fields.treeSize} in the database commits to another tree`);
      }
      signed = theirs;
    }
    const line = toWitnessLine(signed);
    // The witness file first (the signer's next proof starts from it), then the other sinks, unawaited.
    try {
      await this.options.witness.publish(line);
    } catch (error) {
      this.metrics.witnessFailures.inc({ sink: this.options.witness.name });
      this.logger.error({ code: (error as NodeJS.ErrnoException).code }, 'audit witness file not written');
    }
    this.publishToSinks(line);
    this.state = { frontier: next.frontier, headHash: next.headHash, lastDigest: witnessDigest(line) };
    this.lastSigned = fields.treeSize;
    this.metrics.checkpoints.inc();
    this.logger.debug({ sequence: fields.treeSize }, 'audit checkpoint signed');
    return signed;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.background;
    for (const sink of this.options.sinks ?? []) await sink.close().catch(() => undefined);
  }

  /** Waits until the background sinks took every checkpoint so far (tests). */
  async flushSinks(): Promise<void> {
    await this.background;
  }

  private publishToSinks(line: WitnessLine): void {
    for (const sink of this.options.sinks ?? []) {
      this.background = this.background.then(() =>
        sink.publish(line).catch((error: unknown) => {
          this.metrics.witnessFailures.inc({ sink: sink.name });
          this.logger.warn(
            { sink: sink.name, errorClass: (error as Error)?.constructor?.name },
            'audit witness sink failed',
          );
        }),
      );
    }
  }

  private halt(reason: string): undefined {
    if (!this.haltReason) {
      this.haltReason = reason;
      this.metrics.signerHalted.set(1);
      this.logger.error(
        { reason },
        'audit signer halted: the log does not extend the last witnessed checkpoint',
      );
      this.options.onHalt?.(reason);
    }
    throw new SignerHaltedError(reason);
  }

  /**
   * The tree the signer resumes from: the last valid line of the witness file, checked against the
   * database's record at that size; with no witness yet, the database's own records from genesis (or from
   * the checkpoint at a retention cut).
   */
  private async initialState(): Promise<TreeState | undefined> {
    const lines = (await this.options.witness.readAll()).filter(
      (line): line is WitnessLine => line !== null && witnessLineValid(line, this.options.trustedKeys),
    );
    const last = lines.at(-1);
    if (last) {
      const state: TreeState = {
        frontier: MerkleFrontier.fromHex(last.tree_size, last.frontier),
        headHash: last.record_hash,
        lastDigest: witnessDigest(last),
      };
      const record = await this.db
        .selectFrom('audit_records')
        .select(['sequence', 'hash'])
        .where('sequence', '=', last.tree_size)
        .executeTakeFirst();
      // Missing is fine only where retention cut it (later records remain, its own prune record among them);
      // an empty database is another one (swapped in, or a witness file left from another database), which
      // would otherwise pass until its log outgrew the witness.
      const first = await this.firstSequence();
      const missing = first <= last.tree_size || first === Number.MAX_SAFE_INTEGER;
      if (record ? record.hash !== last.record_hash : missing) {
        this.state = state;
        this.haltNoThrow(
          record
            ? `record ${last.tree_size} differs from the last witnessed checkpoint`
            : `the database has no record ${last.tree_size}, which the last witnessed checkpoint signed`,
        );
      }
      return state;
    }
    if (lines.length === 0 && (await this.options.witness.readAll()).length > 0) {
      this.haltNoThrow('the witness file holds no checkpoint a trusted key signed');
    }
    return this.stateFromDatabase();
  }

  private haltNoThrow(reason: string): void {
    try {
      this.halt(reason);
    } catch {
      // halted: reported through the metric and onHalt
    }
  }

  private async firstSequence(): Promise<number> {
    const bounds = await this.db
      .selectFrom('audit_records')
      .select((eb) => eb.fn.min<number>('sequence').as('first'))
      .executeTakeFirstOrThrow();
    return bounds.first === null ? Number.MAX_SAFE_INTEGER : Number(bounds.first);
  }

  /** No witness line yet (a new install, or a v1 log): the tree as the database has it. */
  private async stateFromDatabase(): Promise<TreeState> {
    const first = await this.firstSequence();
    const latest = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('root_hash', '!=', '')
      .orderBy('sequence', 'desc')
      .limit(1)
      .executeTakeFirst();
    const lastDigest = latest ? witnessDigest(toWitnessLine(latest)) : GENESIS_HASH;
    if (latest) {
      this.logger.warn(
        { file: this.options.witness.path, treeSize: latest.sequence },
        'no audit witness file yet: starting from the database',
      );
    }
    if (first === Number.MAX_SAFE_INTEGER || first <= 1) {
      return { frontier: MerkleFrontier.empty(), headHash: GENESIS_HASH, lastDigest };
    }
    const anchor = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('sequence', '=', first - 1)
      .executeTakeFirst();
    if (!anchor || anchor.root_hash === '') {
      this.haltNoThrow(`records before ${first} are gone and no tree checkpoint anchors the cut`);
      return { frontier: MerkleFrontier.empty(), headHash: GENESIS_HASH, lastDigest };
    }
    return {
      frontier: MerkleFrontier.fromHex(anchor.sequence, JSON.parse(anchor.frontier) as string[]),
      headHash: anchor.record_hash,
      lastDigest,
    };
  }

  private checkpointSoon(): void {
    if (this.running || this.haltReason) return;
    this.running = this.checkpointNow()
      .catch((error: unknown) => {
        if (error instanceof SignerHaltedError) return;
        this.logger.warn(
          { errorClass: (error as Error)?.constructor?.name },
          'audit checkpoint failed; will retry',
        );
      })
      .finally(() => (this.running = undefined));
  }
}

export function toWitnessLine(row: CheckpointRow): WitnessLine {
  return {
    tree_size: row.sequence,
    root_hash: row.root_hash,
    record_hash: row.record_hash,
    time: row.time.toISOString(),
    previous_digest: row.previous_digest,
    key_id: row.key_id,
    signature: row.signature,
    frontier: JSON.parse(row.frontier) as string[],
  };
}
