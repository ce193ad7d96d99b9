import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

/** A checkpoint: the chain head at `sequence` (its record's hash), signed at `time`. */
export interface CheckpointFields {
  sequence: number;
  recordHash: string;
  time: Date;
}

/** The exact text a checkpoint signature covers (docs/audit-log.md). */
export function checkpointText(checkpoint: CheckpointFields): string {
  return [
    'airlock.audit.v1.checkpoint',
    String(checkpoint.sequence),
    checkpoint.recordHash,
    checkpoint.time.toISOString(),
  ].join('\n');
}

/**
 * A v2 checkpoint (docs/audit-log.md): the Merkle tree over records 1..treeSize (RFC 9162), the chain head
 * at treeSize, and the digest of the checkpoint before it, signed together.
 */
export interface TreeCheckpointFields {
  treeSize: number;
  rootHash: string;
  recordHash: string;
  time: Date;
  previousDigest: string;
}

export function treeCheckpointText(checkpoint: TreeCheckpointFields): string {
  return [
    'airlock.audit.v2.checkpoint',
    String(checkpoint.treeSize),
    checkpoint.rootHash,
    checkpoint.recordHash,
    checkpoint.time.toISOString(),
    checkpoint.previousDigest,
  ].join('\n');
}

/** What the next checkpoint's previousDigest holds: hex SHA-256 of this one's signed text. */
export function treeCheckpointDigest(checkpoint: TreeCheckpointFields): string {
  return createHash('sha256').update(treeCheckpointText(checkpoint), 'utf8').digest('hex');
}

/**
 * A receipt for one record, returned to the client in x-airlock-audit-receipt: the service's signature
 * over the record's sequence and hash, so the client can later prove the record existed.
 */
export interface ReceiptFields {
  sequence: number;
  recordHash: string;
}

export function receiptText(receipt: ReceiptFields): string {
  return ['airlock.audit.v2.receipt', String(receipt.sequence), receipt.recordHash].join('\n');
}

/** Key id: the first 16 hex digits of SHA-256 of the public key's DER (SPKI) encoding. */
export function signingKeyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** Ed25519 signing of checkpoints with the key from a Secret (a PEM file). */
export class CheckpointSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;

  private constructor(private readonly privateKey: KeyObject) {
    const publicKey = createPublicKey(privateKey);
    this.keyId = signingKeyId(publicKey);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  static fromPem(pem: string): CheckpointSigner {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error('the audit signing key must be an Ed25519 private key');
    return new CheckpointSigner(key);
  }

  /** Reads the PEM; with `generateIfMissing`, creates one (mode 0600) when the file does not exist yet. */
  static async fromFile(
    path: string,
    generateIfMissing: boolean,
  ): Promise<{ signer: CheckpointSigner; generated: boolean }> {
    try {
      return { signer: CheckpointSigner.fromPem(await readFile(path, 'utf8')), generated: false };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !generateIfMissing) throw error;
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
    return { signer: CheckpointSigner.fromPem(pem), generated: true };
  }

  sign(checkpoint: CheckpointFields): string {
    return sign(null, Buffer.from(checkpointText(checkpoint), 'utf8'), this.privateKey).toString('base64');
  }

  signTree(checkpoint: TreeCheckpointFields): string {
    return this.signText(treeCheckpointText(checkpoint));
  }

  signText(text: string): string {
    return sign(null, Buffer.from(text, 'utf8'), this.privateKey).toString('base64');
  }
}

/** key id → SPKI PEM of each public key in a PEM bundle (earlier signing keys, after a rotation). */
export async function readPublicKeys(path: string | undefined): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  if (!path) return keys;
  const blocks =
    (await readFile(path, 'utf8')).match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  for (const block of blocks) {
    const key = createPublicKey(block);
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error('AIRLOCK_AUDIT_PREVIOUS_SIGNING_KEYS_FILE: Ed25519 keys only');
    keys.set(signingKeyId(key), key.export({ type: 'spki', format: 'pem' }).toString());
  }
  if (keys.size === 0) throw new Error('AIRLOCK_AUDIT_PREVIOUS_SIGNING_KEYS_FILE: no PUBLIC KEY block found');
  return keys;
}

export function verifyCheckpointSignature(
  checkpoint: CheckpointFields,
  signature: string,
  publicKeyPem: string,
): boolean {
  return verifyTextSignature(checkpointText(checkpoint), signature, publicKeyPem);
}

export function verifyTextSignature(text: string, signature: string, publicKeyPem: string): boolean {
  try {
    return verify(
      null,
      Buffer.from(text, 'utf8'),
      createPublicKey(publicKeyPem),
      Buffer.from(signature, 'base64'),
    );
  } catch {
    return false;
  }
}
