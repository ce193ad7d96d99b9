import { createHash } from 'node:crypto';
import { receiptText, verifyTextSignature, type CheckpointSigner } from './checkpoint-signer.js';
import { inclusionRoot, MerkleLevels } from './merkle-tree.js';

/**
 * What x-airlock-audit-receipt carries (base64url of this JSON): the record, its place in the tree of the
 * receipts signed together with it (one batch), and the service's signature over that tree's root.
 */
export interface ReceiptV3 {
  v: 3;
  sequence: number;
  record_hash: string;
  key_id: string;
  leaf_index: number;
  tree_size: number;
  /** RFC 9162 audit path of leaf_index, hex, leaf upwards. */
  path: string[];
  signature: string;
}

/** Issued before v3 (one signature per record); still proven. */
export interface ReceiptV2 {
  v: 2;
  sequence: number;
  record_hash: string;
  key_id: string;
  signature: string;
}

export type Receipt = ReceiptV2 | ReceiptV3;

/** One committed record a receipt is asked for; the records of one batch share one list. */
export interface ReceiptEntry {
  sequence: number;
  recordHash: string;
}

/** A request record's receipt: its batch's entries (shared, signed once) and its index there. */
export interface ReceiptRequest extends ReceiptEntry {
  receiptGroup?: ReceiptEntry[];
  receiptIndex?: number;
}

/** RFC 9162 leaf hash of one receipt statement: SHA-256(0x00 || "airlock.audit.v3.receipt\n<seq>\n<hash>"). */
export function receiptLeafHash(entry: ReceiptEntry): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(`airlock.audit.v3.receipt\n${entry.sequence}\n${entry.recordHash}`, 'utf8')
    .digest();
}

/** The text a v3 receipt signature covers: the size and root of the receipts' tree. */
export function receiptTreeText(treeSize: number, rootHex: string): string {
  return ['airlock.audit.v3.receipts', String(treeSize), rootHex].join('\n');
}

interface SignedGroup {
  tree: MerkleLevels;
  signature: string;
}

/**
 * Signs receipts one batch at a time (docs/audit-log.md, "Receipts"): an Ed25519 signature costs about as
 * much as the rest of an append, so the records committed together get one signature over the RFC 9162
 * tree of their receipt statements, and each receipt carries its audit path in that tree.
 */
export class ReceiptSigner {
  private readonly signed = new WeakMap<ReceiptEntry[], SignedGroup>();

  constructor(private readonly signer: CheckpointSigner) {}

  receipt(request: ReceiptRequest): string {
    const group = request.receiptGroup ?? [{ sequence: request.sequence, recordHash: request.recordHash }];
    const index = request.receiptGroup ? (request.receiptIndex ?? 0) : 0;
    let signed = this.signed.get(group);
    if (!signed) {
      const tree = new MerkleLevels(group.map(receiptLeafHash));
      signed = {
        tree,
        signature: this.signer.signText(receiptTreeText(tree.size, tree.root().toString('hex'))),
      };
      this.signed.set(group, signed);
    }
    const entry = group[index];
    if (entry?.sequence !== request.sequence || entry.recordHash !== request.recordHash)
      throw new Error('receipt requested for a record outside its group');
    const body: ReceiptV3 = {
      v: 3,
      sequence: entry.sequence,
      record_hash: entry.recordHash,
      key_id: this.signer.keyId,
      leaf_index: index,
      tree_size: signed.tree.size,
      path: signed.tree.path(index).map((node) => node.toString('hex')),
      signature: signed.signature,
    };
    return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
  }
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** Decodes a receipt header; undefined when it is not one. */
export function decodeReceipt(text: string): Receipt | undefined {
  try {
    const value = JSON.parse(Buffer.from(text.trim(), 'base64url').toString('utf8')) as Receipt;
    const common =
      Number.isSafeInteger(value.sequence) &&
      value.sequence > 0 &&
      HEX_HASH.test(value.record_hash) &&
      typeof value.key_id === 'string' &&
      typeof value.signature === 'string';
    if (common && value.v === 2) return value;
    if (
      common &&
      value.v === 3 &&
      Number.isSafeInteger(value.tree_size) &&
      Number.isSafeInteger(value.leaf_index) &&
      value.leaf_index >= 0 &&
      value.leaf_index < value.tree_size &&
      Array.isArray(value.path) &&
      value.path.length <= 64 &&
      value.path.every((node) => typeof node === 'string' && HEX_HASH.test(node))
    ) {
      return value;
    }
  } catch {
    // not base64url JSON
  }
  return undefined;
}

/** The root a v3 receipt's path leads to from its statement, hex; undefined when the path does not fit. */
export function receiptRoot(receipt: ReceiptV3): string | undefined {
  const leaf = receiptLeafHash({ sequence: receipt.sequence, recordHash: receipt.record_hash });
  const path = receipt.path.map((hex) => Buffer.from(hex, 'hex'));
  return inclusionRoot(receipt.leaf_index, receipt.tree_size, leaf, path)?.toString('hex');
}

export function receiptSignatureValid(receipt: Receipt, trustedKeys: Map<string, string>): boolean {
  const pem = trustedKeys.get(receipt.key_id);
  if (pem === undefined) return false;
  if (receipt.v === 2) {
    return verifyTextSignature(
      receiptText({ sequence: receipt.sequence, recordHash: receipt.record_hash }),
      receipt.signature,
      pem,
    );
  }
  const root = receiptRoot(receipt);
  return (
    root !== undefined &&
    verifyTextSignature(receiptTreeText(receipt.tree_size, root), receipt.signature, pem)
  );
}
