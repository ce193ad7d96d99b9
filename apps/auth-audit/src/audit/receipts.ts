import { receiptText, verifyTextSignature, type CheckpointSigner } from './checkpoint-signer.js';

/** What x-airlock-audit-receipt carries (base64url of this JSON): the record, and the service's signature. */
export interface Receipt {
  v: 2;
  sequence: number;
  record_hash: string;
  key_id: string;
  signature: string;
}

/** Signs one receipt per committed request record (docs/audit-log.md, "Receipts"). */
export class ReceiptSigner {
  constructor(private readonly signer: CheckpointSigner) {}

  receipt(sequence: number, recordHash: string): string {
    const body: Receipt = {
      v: 2,
      sequence,
      record_hash: recordHash,
      key_id: this.signer.keyId,
      signature: this.signer.signText(receiptText({ sequence, recordHash })),
    };
    return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
  }
}

/** Decodes a receipt header; undefined when it is not one. */
export function decodeReceipt(text: string): Receipt | undefined {
  try {
    const value = JSON.parse(Buffer.from(text.trim(), 'base64url').toString('utf8')) as Receipt;
    if (
      value.v === 2 &&
      Number.isSafeInteger(value.sequence) &&
      value.sequence > 0 &&
      /^[0-9a-f]{64}$/.test(value.record_hash) &&
      typeof value.key_id === 'string' &&
      typeof value.signature === 'string'
    ) {
      return value;
    }
  } catch {
    // not base64url JSON
  }
  return undefined;
}

export function receiptSignatureValid(receipt: Receipt, trustedKeys: Map<string, string>): boolean {
  const pem = trustedKeys.get(receipt.key_id);
  return (
    pem !== undefined &&
    verifyTextSignature(
      receiptText({ sequence: receipt.sequence, recordHash: receipt.record_hash }),
      receipt.signature,
      pem,
    )
  );
}
