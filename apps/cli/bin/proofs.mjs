// Client-side checks of what `airlock audit prove` gets back: the RFC 9162 inclusion proof (section 2.1.3.2)
// recomputed here from the record hash, and the Ed25519 signatures of the receipt and of the checkpoint.
import { createHash, verify } from 'node:crypto';
import { checkpointText } from './offline-verify.mjs';

const sha256 = (...parts) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const node = (left, right) => sha256(Buffer.from([1]), left, right);

export function verifyInclusionProof(proof) {
  const size = proof.checkpoint?.sequence ?? 0;
  let fn = proof.sequence - 1;
  let sn = size - 1;
  if (fn < 0 || fn > sn) return false;
  let r = sha256(Buffer.from([0]), Buffer.from(proof.record_hash, 'hex'));
  for (const hex of proof.audit_path) {
    const p = Buffer.from(hex, 'hex');
    if (sn === 0) return false;
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
  return sn === 0 && r.toString('hex') === proof.checkpoint.root_hash;
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
    receipt_signature: signed(
      keys,
      receipt.key_id,
      ['airlock.audit.v2.receipt', receipt.sequence, receipt.record_hash].join('\n'),
      receipt.signature,
    ),
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
