import type { AuthAuditDb } from '../database/database.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import type { CheckpointRow } from './checkpointer.js';
import { consistencyProof, inclusionProof, leafHash, subtreeRoot } from './merkle-tree.js';
import { decodeReceipt, receiptSignatureValid } from './receipts.js';

export interface InclusionProof {
  sequence: number;
  recordHash: string;
  leafHash: string;
  auditPath: string[];
  checkpoint: CheckpointRow;
  receiptValid: boolean;
}

export interface ConsistencyProof {
  first: CheckpointRow;
  second: CheckpointRow;
  proof: string[];
}

const hex = (nodes: Buffer[]) => nodes.map((node) => node.toString('hex'));

/**
 * RFC 9162 proofs against signed v2 checkpoints. The tree is rebuilt from the records' hashes (one indexed
 * read of 64-byte values per proof; fine for the sizes a hospital's log reaches per retention period), and
 * checked against the signed root before any proof leaves: a log that no longer matches its checkpoint
 * yields an error, never a proof.
 */
export class AuditProofs {
  constructor(
    private readonly db: AuthAuditDb,
    private readonly trustedKeys: Map<string, string>,
  ) {}

  async inclusion(request: { sequence: number; treeSize: number; receipt: string }): Promise<InclusionProof> {
    let sequence = request.sequence;
    let receiptHash: string | undefined;
    let receiptValid = false;
    if (request.receipt) {
      const receipt = decodeReceipt(request.receipt);
      if (!receipt) throw invalidArgument('receipt is not an x-airlock-audit-receipt value');
      if (!receiptSignatureValid(receipt, this.trustedKeys)) {
        throw invalidArgument('the receipt signature does not verify with any trusted key');
      }
      if (sequence !== 0 && sequence !== receipt.sequence)
        throw invalidArgument('sequence differs from the receipt');
      sequence = receipt.sequence;
      receiptHash = receipt.record_hash;
    }
    if (sequence < 1) throw invalidArgument('sequence (or a receipt) is required');
    const checkpoint = await this.checkpoint(request.treeSize, sequence);
    const leaves = await this.leaves(checkpoint);
    const recordHash = leaves.hashes[sequence - 1];
    if (receiptHash !== undefined) {
      if (receiptHash !== recordHash) {
        throw failedPrecondition(
          `record ${sequence} in the log differs from the signed receipt: the log was altered after the receipt`,
        );
      }
      receiptValid = true;
    }
    return {
      sequence,
      recordHash,
      leafHash: leaves.leaves[sequence - 1].toString('hex'),
      auditPath: hex(inclusionProof(leaves.leaves, sequence - 1)),
      checkpoint,
      receiptValid,
    };
  }

  async consistency(firstSize: number, secondSize: number): Promise<ConsistencyProof> {
    if (firstSize < 1) throw invalidArgument('first_tree_size must be at least 1');
    const first = await this.checkpoint(firstSize, firstSize);
    const second = await this.checkpoint(secondSize, firstSize);
    if (second.sequence < first.sequence)
      throw invalidArgument('second_tree_size must not be below the first');
    const leaves = await this.leaves(second);
    if (subtreeRoot(leaves.leaves, 0, first.sequence).toString('hex') !== first.root_hash) {
      throw failedPrecondition(`the log no longer matches the checkpoint at ${first.sequence}`);
    }
    return { first, second, proof: hex(consistencyProof(leaves.leaves, first.sequence)) };
  }

  /** The v2 checkpoint of exactly `treeSize`, or (0) the latest one covering `atLeast`. */
  private async checkpoint(treeSize: number, atLeast: number): Promise<CheckpointRow> {
    let query = this.db.selectFrom('audit_checkpoints').selectAll().where('root_hash', '!=', '');
    query =
      treeSize > 0
        ? query.where('sequence', '=', treeSize)
        : query.where('sequence', '>=', atLeast).orderBy('sequence', 'desc').limit(1);
    const row = await query.executeTakeFirst();
    if (!row) {
      throw notFound(
        treeSize > 0
          ? `no signed tree checkpoint of size ${treeSize}`
          : `no signed tree checkpoint covers record ${atLeast} yet; retry after the next checkpoint`,
      );
    }
    return row;
  }

  private async leaves(checkpoint: CheckpointRow): Promise<{ hashes: string[]; leaves: Buffer[] }> {
    const rows = await this.db
      .selectFrom('audit_records')
      .select(['sequence', 'hash'])
      .where('sequence', '<=', checkpoint.sequence)
      .orderBy('sequence')
      .execute();
    if (rows.length !== checkpoint.sequence || rows[0]?.sequence !== 1) {
      throw failedPrecondition(
        `records 1..${checkpoint.sequence} are not all in the database (pruned or deleted): no proof`,
      );
    }
    const hashes = rows.map((row) => row.hash);
    const leaves = hashes.map(leafHash);
    if (subtreeRoot(leaves).toString('hex') !== checkpoint.root_hash) {
      throw failedPrecondition(`the log no longer matches the checkpoint at ${checkpoint.sequence}`);
    }
    return { hashes, leaves };
  }
}
