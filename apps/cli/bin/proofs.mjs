// Client-side checks of what `airlock audit prove` gets back: the RFC 9162 inclusion proof (section 2.1.3.2)
// recomputed here from the record hash, and the Ed25519 signatures of the receipt (v3: over its batch's tree,
// recomputed from the receipt's own audit path) and of the checkpoint.
import { createHash, verify } from 'node:crypto';
import { checkpointText } from './offline-verify.mjs';

const sha256 = (...parts) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const node = (left, right) => sha256(Buffer.from([1]), left, right);

/** RFC 9162 2.1.3.2: the root that a leaf hash and its audit path lead to (undefined when they cannot fit). */
export function inclusionRoot(index, size, leaf, path) {
  let fn = index;
  let sn = size - 1;
  if (fn < 0 || fn > sn) return undefined;
  let r = leaf;
  for (const hex of path) {
    const p = Buffer.from(hex, 'hex');
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = node(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r.toString('hex') : undefined;
}

export function verifyInclusionProof(proof) {
  const leaf = sha256(Buffer.from([0]), Buffer.from(proof.record_hash, 'hex'));
  const root = inclusionRoot(proof.sequence - 1, proof.checkpoint?.sequence ?? 0, leaf, proof.audit_path);
  return root !== undefined && root === proof.checkpoint.root_hash;
}

/**
 * The text a receipt's signature covers. v3 (one signature per batch): the size and root of the tree of the
 * batch's receipt statements, the root recomputed from this receipt's statement and audit path.
 */
export function receiptSignedText(receipt) {
  if (receipt.v === 2) return ['airlock.audit.v2.receipt', receipt.sequence, receipt.record_hash].join('\n');
  if (receipt.v !== 3 || !Array.isArray(receipt.path)) return undefined;
  const statement = `airlock.audit.v3.receipt\n${receipt.sequence}\n${receipt.record_hash}`;
  const leaf = sha256(Buffer.from([0]), Buffer.from(statement, 'utf8'));
  const root = inclusionRoot(receipt.leaf_index, receipt.tree_size, leaf, receipt.path);
  return root === undefined ? undefined : ['airlock.audit.v3.receipts', receipt.tree_size, root].join('\n');
}

const signed = (keys, keyId, text, signature) => {
  const key = keys.get(keyId);
  try {
    return (
      key !== undefined && verify(null, Buffer.from(text, 'utf8'), key, Buffer.from(signature, 'base64'))
    );
  } catch {
    return false;
  }
};

export function verifyReceiptSignature(receiptText, proof, keys) {
  const receipt = JSON.parse(Buffer.from(receiptText, 'base64url').toString('utf8'));
  const c = proof.checkpoint;
  return {
    receipt_signature:
      receiptSignedText(receipt) !== undefined &&
      signed(keys, receipt.key_id, receiptSignedText(receipt), receipt.signature),
    receipt_matches_log: receipt.sequence === proof.sequence && receipt.record_hash === proof.record_hash,
    checkpoint_signature: signed(
      keys,
      c.key_id,
      checkpointText({
        tree_size: c.sequence,
        root_hash: c.root_hash,
        record_hash: c.record_hash,
        time: c.time,
        previous_digest: c.previous_digest,
      }),
      c.signature,
    ),
  };
}
