import type { AuthAuditDb } from '../database/database.js';
import { GENESIS_HASH } from '../database/migrations.js';
import { recordHash, type AuditRecordRow } from './audit-record.js';
import { treeCheckpointText, verifyCheckpointSignature, verifyTextSignature } from './checkpoint-signer.js';
import { toWitnessLine, type CheckpointRow } from './checkpointer.js';
import { leafHash, MerkleFrontier } from './merkle-tree.js';
import {
  witnessDigest,
  witnessFields,
  witnessLineValid,
  type FileWitness,
  type WitnessLine,
} from './audit-witness.js';

export type VerifyFailureKind =
  | 'record_altered'
  | 'record_missing'
  | 'record_inserted'
  | 'chain_broken'
  | 'checkpoint_mismatch'
  | 'checkpoint_signature_invalid'
  | 'checkpoint_missing'
  | 'witness_mismatch'
  | 'log_truncated';

export interface VerifyReport {
  ok: boolean;
  failedSequence: number;
  failure?: VerifyFailureKind;
  message: string;
  recordsChecked: number;
  firstSequence: number;
  lastSequence: number;
  anchorCheckpointSequence: number;
  checkpointsChecked: number;
  lastCheckpointSequence: number;
  unsignedTail: number;
  /** Checkpoints in the witness file, all compared with the database and the recomputed tree. */
  witnessedCheckpoints: number;
  lastWitnessedTreeSize: number;
}

const PAGE = 2000;

/**
 * Walks the chain in sequence order from genesis, from the signed checkpoint at a retention cut, or from the
 * latest signed checkpoint, and reports the first record that fails:
 *  - a missing sequence number → record_missing (deleted);
 *  - a record that links to the hash two back → record_inserted (the one before it was inserted);
 *  - a record whose content no longer hashes to its stored hash → record_altered (edited or out of place;
 *    one renumbered after a deletion is reported as record_missing);
 *  - a record intact in itself but linking to a different predecessor hash → chain_broken, naming the
 *    predecessor (altered and re-hashed, or replaced);
 *  - a checkpoint whose signature fails → checkpoint_signature_invalid; one whose hash differs from its
 *    record's → checkpoint_mismatch (the chain was rewritten from there back).
 * Records after the last checkpoint are protected by the chain alone; the report says how many.
 */
export class ChainVerifier {
  constructor(
    private readonly db: AuthAuditDb,
    /** key id → SPKI PEM of every key whose signatures are trusted. */
    private readonly trustedKeys: Map<string, string>,
    /** The checkpoints as a witness outside the database saw them. */
    private readonly witness?: FileWitness,
  ) {}

  async verify(options: { fromLastCheckpoint: boolean }): Promise<VerifyReport> {
    const checkpoints = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('sequence')
      .execute();
    const bounds = await this.db
      .selectFrom('audit_records')
      .select((eb) => [eb.fn.min<number>('sequence').as('first'), eb.fn.max<number>('sequence').as('last')])
      .executeTakeFirstOrThrow();
    const first = bounds.first === null ? 0 : Number(bounds.first);
    const last = bounds.last === null ? 0 : Number(bounds.last);
    const report: VerifyReport = {
      ok: true,
      failedSequence: 0,
      message: '',
      recordsChecked: 0,
      firstSequence: first,
      lastSequence: last,
      anchorCheckpointSequence: 0,
      checkpointsChecked: 0,
      lastCheckpointSequence: 0,
      unsignedTail: 0,
      witnessedCheckpoints: 0,
      lastWitnessedTreeSize: 0,
    };
    const fail = (sequence: number, failure: VerifyFailureKind, message: string): VerifyReport =>
      Object.assign(report, { ok: false, failedSequence: sequence, failure, message });

    const validSignature = (checkpoint: CheckpointRow): boolean => {
      const pem = this.trustedKeys.get(checkpoint.key_id);
      if (pem === undefined) return false;
      if (checkpoint.root_hash !== '') {
        return verifyTextSignature(
          treeCheckpointText(witnessFields(toWitnessLine(checkpoint))),
          checkpoint.signature,
          pem,
        );
      }
      return verifyCheckpointSignature(
        { sequence: checkpoint.sequence, recordHash: checkpoint.record_hash, time: checkpoint.time },
        checkpoint.signature,
        pem,
      );
    };
    const signedCheckpoints = new Map<number, CheckpointRow>();
    for (const checkpoint of checkpoints) {
      report.checkpointsChecked += 1;
      if (!validSignature(checkpoint)) {
        return fail(
          checkpoint.sequence,
          'checkpoint_signature_invalid',
          `checkpoint at ${checkpoint.sequence} has a signature no trusted key verifies`,
        );
      }
      signedCheckpoints.set(checkpoint.sequence, checkpoint);
      report.lastCheckpointSequence = checkpoint.sequence;
    }
    // Each tree checkpoint names the one before it: a deleted checkpoint leaves a dangling digest.
    const digests = new Set<string>([GENESIS_HASH]);
    for (const checkpoint of checkpoints) {
      if (checkpoint.root_hash === '') continue;
      if (!digests.has(checkpoint.previous_digest)) {
        return fail(
          checkpoint.sequence,
          'checkpoint_missing',
          `the checkpoint signed before ${checkpoint.sequence} is missing from the database`,
        );
      }
      digests.add(witnessDigest(toWitnessLine(checkpoint)));
    }
    const witnessed = await this.readWitness();
    if (typeof witnessed === 'string') return fail(0, 'witness_mismatch', witnessed);
    const witnessedRoots = new Map<number, string>();
    report.witnessedCheckpoints = witnessed.length;
    report.lastWitnessedTreeSize = witnessed.reduce((max, line) => Math.max(max, line.tree_size), 0);

    // Where the walk starts, and the hash the first record must link to.
    let expected = first === 0 ? 1 : first;
    let prevHash = GENESIS_HASH;
    let prevPrevHash: string | undefined;
    // The RFC 9162 tree, recomputed as the walk goes (undefined from a v1 anchor: no frontier to resume).
    let tree: MerkleFrontier | undefined | null = MerkleFrontier.empty();
    const latest = checkpoints.at(-1);
    if (options.fromLastCheckpoint && latest && latest.sequence >= first) {
      const anchorRecord = await this.db
        .selectFrom('audit_records')
        .selectAll()
        .where('sequence', '=', latest.sequence)
        .executeTakeFirst();
      if (!anchorRecord) {
        return fail(
          latest.sequence,
          'record_missing',
          `record ${latest.sequence} (signed by a checkpoint) is missing`,
        );
      }
      if (anchorRecord.hash !== latest.record_hash || recordHash(anchorRecord) !== anchorRecord.hash) {
        return fail(
          latest.sequence,
          'checkpoint_mismatch',
          `record ${latest.sequence} does not match its signed checkpoint`,
        );
      }
      report.anchorCheckpointSequence = latest.sequence;
      report.recordsChecked = 1;
      expected = latest.sequence + 1;
      prevHash = latest.record_hash;
      tree = anchorTree(latest);
    } else if (first > 1) {
      const cut = signedCheckpoints.get(first - 1);
      if (!cut) {
        const before = checkpoints.filter((checkpoint) => checkpoint.sequence < first).at(-1);
        const missingFrom = (before?.sequence ?? 0) + 1;
        return fail(
          missingFrom,
          'record_missing',
          `records ${missingFrom}..${first - 1} are missing and no signed checkpoint covers the cut`,
        );
      }
      report.anchorCheckpointSequence = cut.sequence;
      prevHash = cut.record_hash;
      tree = anchorTree(cut);
    }
    if (tree === null) {
      return fail(
        report.anchorCheckpointSequence,
        'checkpoint_mismatch',
        `the checkpoint at ${report.anchorCheckpointSequence} has a frontier that does not give its root`,
      );
    }

    for (;;) {
      const page: AuditRecordRow[] = await this.db
        .selectFrom('audit_records')
        .selectAll()
        .where('sequence', '>=', expected)
        .orderBy('sequence')
        .limit(PAGE)
        .execute();
      for (const record of page) {
        if (record.sequence > expected) {
          return fail(expected, 'record_missing', `record ${expected} is missing (deleted)`);
        }
        const contentOk = recordHash(record) === record.hash;
        const linkOk = record.prev_hash === prevHash;
        if (!contentOk || !linkOk) {
          if (!linkOk && prevPrevHash !== undefined && record.prev_hash === prevPrevHash) {
            return fail(
              expected - 1,
              'record_inserted',
              `record ${expected - 1} was inserted into the chain`,
            );
          }
          if (!contentOk && recordHash({ ...record, sequence: record.sequence + 1 }) === record.hash) {
            return fail(
              expected,
              'record_missing',
              `record ${expected} was deleted and later records renumbered`,
            );
          }
          if (contentOk) {
            return fail(
              expected - 1,
              'chain_broken',
              `record ${expected} links to a different record ${expected - 1}: it was altered and re-hashed, or replaced`,
            );
          }
          return fail(
            expected,
            'record_altered',
            `record ${expected} was altered or moved: its content no longer matches its hash`,
          );
        }
        const checkpoint = signedCheckpoints.get(record.sequence);
        if (checkpoint && checkpoint.record_hash !== record.hash) {
          return fail(
            record.sequence,
            'checkpoint_mismatch',
            `record ${record.sequence} differs from its signed checkpoint: the chain was rewritten up to here`,
          );
        }
        if (tree) {
          tree.append(leafHash(record.hash));
          const root =
            checkpoint?.root_hash || witnessed.some((line) => line.tree_size === record.sequence)
              ? tree.root().toString('hex')
              : '';
          if (checkpoint && checkpoint.root_hash !== '' && checkpoint.root_hash !== root) {
            return fail(
              record.sequence,
              'checkpoint_mismatch',
              `the tree over records 1..${record.sequence} differs from its signed checkpoint`,
            );
          }
          if (root) witnessedRoots.set(record.sequence, root);
        }
        report.recordsChecked += 1;
        prevPrevHash = prevHash;
        prevHash = record.hash;
        expected += 1;
      }
      if (page.length < PAGE) break;
    }
    const chainEnd = expected - 1;
    const beyond = checkpoints.find((checkpoint) => checkpoint.sequence > chainEnd);
    if (beyond) {
      return fail(
        chainEnd + 1,
        'record_missing',
        `records from ${chainEnd + 1} are missing: a checkpoint signed ${beyond.sequence}`,
      );
    }
    report.unsignedTail = Math.max(0, chainEnd - report.lastCheckpointSequence);
    return this.compareWithWitness(report, witnessed, witnessedRoots, signedCheckpoints, chainEnd, fail);
  }

  /**
   * The witness holds what the database cannot take back: a log shorter than a witnessed tree, a
   * recomputed root that differs from a witnessed one, or a witnessed checkpoint missing from (or different
   * in) the database fails, naming the sequence.
   */
  private compareWithWitness(
    report: VerifyReport,
    witnessed: WitnessLine[],
    roots: Map<number, string>,
    checkpoints: Map<number, CheckpointRow>,
    chainEnd: number,
    fail: (sequence: number, failure: VerifyFailureKind, message: string) => VerifyReport,
  ): VerifyReport {
    if (report.lastWitnessedTreeSize > chainEnd) {
      return fail(
        chainEnd + 1,
        'log_truncated',
        `the log ends at ${chainEnd} but the witness saw a tree of ${report.lastWitnessedTreeSize} records`,
      );
    }
    let previous = 0;
    for (const line of witnessed) {
      const root = roots.get(line.tree_size);
      if (root !== undefined && root !== line.root_hash) {
        return fail(
          line.tree_size,
          'witness_mismatch',
          `records ${previous + 1}..${line.tree_size} differ from what the witness saw at tree size ${line.tree_size}`,
        );
      }
      const stored = checkpoints.get(line.tree_size);
      if (!stored) {
        return fail(
          line.tree_size,
          'checkpoint_missing',
          `the witnessed checkpoint at ${line.tree_size} is missing from the database`,
        );
      }
      if (stored.root_hash !== line.root_hash || stored.record_hash !== line.record_hash) {
        return fail(
          line.tree_size,
          'witness_mismatch',
          `the checkpoint at ${line.tree_size} differs from the witnessed one`,
        );
      }
      previous = line.tree_size;
    }
    return report;
  }

  /** The witnessed checkpoints, or why the witness file itself cannot be trusted. */
  private async readWitness(): Promise<WitnessLine[] | string> {
    if (!this.witness) return [];
    const lines = await this.witness.readAll();
    for (const [index, line] of lines.entries()) {
      if (line === null) return `witness line ${index + 1} is not a checkpoint`;
      if (!witnessLineValid(line, this.trustedKeys)) {
        return `witness line ${index + 1} (tree size ${line.tree_size}) has no valid signature of a trusted key`;
      }
    }
    return lines as WitnessLine[];
  }
}

/** The tree resumed at an anchor checkpoint; undefined for a v1 anchor, null when its frontier is wrong. */
function anchorTree(anchor: CheckpointRow): MerkleFrontier | undefined | null {
  if (anchor.root_hash === '') return undefined;
  try {
    const tree = MerkleFrontier.fromHex(anchor.sequence, JSON.parse(anchor.frontier) as string[]);
    return tree.root().toString('hex') === anchor.root_hash ? tree : null;
  } catch {
    return null;
  }
}
