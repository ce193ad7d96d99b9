// The receipt check again in the browser, as `airlock audit prove` does it: the RFC 9162 inclusion proof
// (section 2.1.3.2) recomputed from the record hash with WebCrypto, and the Ed25519 signatures of the
// receipt and the checkpoint against the log's public keys. Nothing here trusts the gateway's word.
import type { InclusionProof } from './types';

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
const fromHex = (text: string) => new Uint8Array(text.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
const fromBase64 = (text: string) =>
  Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', joined));
}

export async function inclusionHolds(proof: InclusionProof): Promise<boolean> {
  const size = proof.checkpoint?.sequence ?? 0;
  let fn = proof.sequence - 1;
  let sn = size - 1;
  if (fn < 0 || fn > sn) return false;
  let r = await sha256(Uint8Array.of(0), fromHex(proof.record_hash));
  for (const step of proof.audit_path) {
    const p = fromHex(step);
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && hex(r.buffer as ArrayBuffer) === proof.checkpoint.root_hash;
}

/** key id (first 16 hex digits of SHA-256 of the SPKI DER) → Ed25519 key, from the log's PEM keys. */
export async function importKeys(pems: string[]): Promise<Map<string, CryptoKey>> {
  const keys = new Map<string, CryptoKey>();
  for (const pem of pems) {
    const der = fromBase64(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
    const id = hex((await sha256(der)).buffer as ArrayBuffer).slice(0, 16);
    keys.set(id, await crypto.subtle.importKey('spki', der, { name: 'Ed25519' }, false, ['verify']));
  }
  return keys;
}

async function signed(keys: Map<string, CryptoKey>, keyId: string, text: string, signature: string) {
  const key = keys.get(keyId);
  if (!key) return false;
  try {
    return await crypto.subtle.verify('Ed25519', key, fromBase64(signature), new TextEncoder().encode(text));
  } catch {
    return false;
  }
}

export interface ReceiptChecks {
  inclusion: boolean;
  receipt_matches_log: boolean;
  receipt_signature: boolean | null;
  checkpoint_signature: boolean | null;
}

export async function checkReceipt(
  receiptText: string,
  proof: InclusionProof,
  keys: Map<string, CryptoKey> | null,
): Promise<ReceiptChecks> {
  const receipt = JSON.parse(new TextDecoder().decode(fromBase64(receiptText))) as {
    sequence: number;
    record_hash: string;
    key_id: string;
    signature: string;
  };
  const c = proof.checkpoint;
  return {
    inclusion: await inclusionHolds(proof),
    receipt_matches_log: receipt.sequence === proof.sequence && receipt.record_hash === proof.record_hash,
    receipt_signature: keys
      ? await signed(
          keys,
          receipt.key_id,
          ['airlock.audit.v2.receipt', receipt.sequence, receipt.record_hash].join('\n'),
          receipt.signature,
        )
      : null,
    checkpoint_signature: keys
      ? await signed(
          keys,
          c.key_id,
          [
            'airlock.audit.v2.checkpoint',
            c.sequence,
            c.root_hash,
            c.record_hash,
            c.time,
            c.previous_digest,
          ].join('\n'),
          c.signature,
        )
      : null,
  };
}
