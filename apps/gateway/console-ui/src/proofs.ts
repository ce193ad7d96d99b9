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

/** RFC 9162 2.1.3.2: the root a leaf hash and its audit path lead to, hex (undefined when they cannot fit). */
async function inclusionRoot(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: string[],
): Promise<string | undefined> {
  let fn = index;
  let sn = size - 1;
  if (fn < 0 || fn > sn) return undefined;
  let r = leaf;
  for (const step of path) {
    const p = fromHex(step);
    if (sn === 0) return undefined;
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
  return sn === 0 ? hex(r.buffer as ArrayBuffer) : undefined;
}

export async function inclusionHolds(proof: InclusionProof): Promise<boolean> {
  const leaf = await sha256(Uint8Array.of(0), fromHex(proof.record_hash));
  const root = await inclusionRoot(
    proof.sequence - 1,
    proof.checkpoint?.sequence ?? 0,
    leaf,
    proof.audit_path,
  );
  return root !== undefined && root === proof.checkpoint.root_hash;
}

interface Receipt {
  v: number;
  sequence: number;
  record_hash: string;
  key_id: string;
  signature: string;
  leaf_index?: number;
  tree_size?: number;
  path?: string[];
}

/** The text a receipt's signature covers (v3: its batch's tree root, recomputed from its own audit path). */
async function receiptSignedText(receipt: Receipt): Promise<string | undefined> {
  if (receipt.v === 2) return ['airlock.audit.v2.receipt', receipt.sequence, receipt.record_hash].join('\n');
  if (receipt.v !== 3 || !Array.isArray(receipt.path)) return undefined;
  const statement = `airlock.audit.v3.receipt\n${receipt.sequence}\n${receipt.record_hash}`;
  const leaf = await sha256(Uint8Array.of(0), new TextEncoder().encode(statement));
  const root = await inclusionRoot(receipt.leaf_index ?? -1, receipt.tree_size ?? 0, leaf, receipt.path);
  return root === undefined ? undefined : ['airlock.audit.v3.receipts', receipt.tree_size, root].join('\n');
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
  const receipt = JSON.parse(new TextDecoder().decode(fromBase64(receiptText))) as Receipt;
  const signedText = await receiptSignedText(receipt);
  const c = proof.checkpoint;
  return {
    inclusion: await inclusionHolds(proof),
    receipt_matches_log: receipt.sequence === proof.sequence && receipt.record_hash === proof.record_hash,
    receipt_signature: keys
      ? signedText !== undefined && (await signed(keys, receipt.key_id, signedText, receipt.signature))
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
