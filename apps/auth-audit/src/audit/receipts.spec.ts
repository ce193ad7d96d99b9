import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { CheckpointSigner, receiptText } from './checkpoint-signer.js';
import { decodeReceipt, receiptSignatureValid, ReceiptSigner, type ReceiptEntry } from './receipts.js';

// v3 receipts: one signature per batch over the RFC 9162 tree of the batch's receipt statements. The root is
// recomputed here from the definition (docs/audit-log.md, "Receipts"), not with the module's tree.
const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
function rfcMth(data: Buffer[]): Buffer {
  if (data.length === 1) return sha256(Buffer.from([0]), data[0]);
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return sha256(Buffer.from([1]), rfcMth(data.slice(0, k)), rfcMth(data.slice(k)));
}

const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const signer = CheckpointSigner.fromPem(pem);
const trusted = new Map([[signer.keyId, signer.publicKeyPem]]);
const entries = (first: number, n: number): ReceiptEntry[] =>
  Array.from({ length: n }, (_, i) => ({
    sequence: first + i,
    recordHash: createHash('sha256')
      .update(`record ${first + i}`)
      .digest('hex'),
  }));
const decode = (text: string) => {
  const receipt = decodeReceipt(text);
  if (!receipt) throw new Error('not a receipt');
  return receipt;
};

describe('batch receipts', () => {
  it('signs a batch once; each receipt verifies on its own, with the independently computed root', () => {
    let signatures = 0;
    const counting = Object.assign(Object.create(signer) as CheckpointSigner, {
      signText: (text: string) => {
        signatures += 1;
        return signer.signText(text);
      },
    });
    const receipts = new ReceiptSigner(counting);
    for (const n of [1, 2, 3, 7, 8, 13]) {
      const group = entries(100 * n, n);
      const issued = group.map((entry, index) =>
        decode(receipts.receipt({ ...entry, receiptGroup: group, receiptIndex: index })),
      );
      const statements = group.map((e) =>
        Buffer.from(`airlock.audit.v3.receipt\n${e.sequence}\n${e.recordHash}`),
      );
      const root = rfcMth(statements).toString('hex');
      for (const [index, receipt] of issued.entries()) {
        expect(receipt).toMatchObject({
          v: 3,
          sequence: group[index].sequence,
          tree_size: n,
          leaf_index: index,
        });
        expect(receiptSignatureValid(receipt, trusted)).toBe(true);
        // One signature for the whole batch.
        expect(receipt.signature).toBe(issued[0].signature);
      }
      expect(
        verify(
          null,
          Buffer.from(`airlock.audit.v3.receipts\n${n}\n${root}`),
          createPublicKey(signer.publicKeyPem),
          Buffer.from(issued[0].signature, 'base64'),
        ),
      ).toBe(true);
    }
    expect(signatures).toBe(6);
  });

  it('refuses a receipt whose record, sequence, index or path was changed, or an unknown key', () => {
    const receipts = new ReceiptSigner(signer);
    const group = entries(40, 5);
    const good = decode(receipts.receipt({ ...group[3], receiptGroup: group, receiptIndex: 3 }));
    if (good.v !== 3) throw new Error('expected v3');
    const altered = [
      { ...good, record_hash: group[2].recordHash },
      { ...good, sequence: good.sequence + 1 },
      { ...good, leaf_index: 2 },
      { ...good, tree_size: 4 },
      { ...good, path: good.path.slice(1) },
      { ...good, path: [group[0].recordHash, ...good.path.slice(1)] },
    ];
    for (const receipt of altered) expect(receiptSignatureValid(receipt, trusted)).toBe(false);
    expect(receiptSignatureValid(good, new Map())).toBe(false);
    expect(() => receipts.receipt({ ...group[1], receiptGroup: group, receiptIndex: 3 })).toThrow();
  });

  it('still proves a v2 receipt (one signature per record, issued before v3)', () => {
    const [entry] = entries(9, 1);
    const v2 = {
      v: 2 as const,
      sequence: entry.sequence,
      record_hash: entry.recordHash,
      key_id: signer.keyId,
      signature: signer.signText(receiptText(entry)),
    };
    const text = Buffer.from(JSON.stringify(v2)).toString('base64url');
    expect(receiptSignatureValid(decode(text), trusted)).toBe(true);
    expect(receiptSignatureValid({ ...v2, sequence: 10 }, trusted)).toBe(false);
  });
});
