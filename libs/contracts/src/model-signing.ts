// Model signatures in the OpenSSF model-signing format (sigstore/model-transparency), key-based and offline: a
// sigstore bundle (v0.3 JSON) whose DSSE envelope carries an in-toto Statement v1 with the predicate
// https://model_signing/signature/v1.0 — the model's files and their SHA-256 digests — signed with ECDSA P-256
// over the DSSE pre-authentication encoding (PAE). The operator trusts a public key; nothing is fetched (no
// Rekor, no Fulcio). The signer is named by the SHA-256 fingerprint of that key's SubjectPublicKeyInfo.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const MODEL_SIGNING_PREDICATE_TYPE = 'https://model_signing/signature/v1.0';
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SIGSTORE_BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** One file of the model and its digest (name relative to the model, `/`-separated). */
export interface ModelResource {
  name: string;
  sha256: string;
}

export interface SigstoreBundle {
  mediaType: string;
  verificationMaterial: { publicKey: { hint: string } };
  dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string; keyid?: string }[] };
}

/** What a verified signature says: the model digest (the Statement's subject) and who signed it. */
export interface VerifiedModelSignature {
  /** sha256 hex of the subject: the digests of all resources, in name order, concatenated */
  modelDigest: string;
  /** `sha256:<hex>` of the trusted public key (SPKI DER) that verified the signature */
  signer: string;
  resources: ModelResource[];
}

export class ModelSignatureError extends Error {}

/** DSSE v1 pre-authentication encoding: what is actually signed. */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

export function keyFingerprint(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return `sha256:${createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
}

/** The subject digest model-signing uses for a manifest of files: the file digests in name order, hashed. */
function subjectDigest(resources: ModelResource[]): string {
  const hash = createHash('sha256');
  for (const resource of [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
    hash.update(Buffer.from(resource.sha256, 'hex'));
  return hash.digest('hex');
}

function statementFor(modelName: string, resources: ModelResource[]) {
  const sorted = [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: modelName, digest: { sha256: subjectDigest(sorted) } }],
    predicateType: MODEL_SIGNING_PREDICATE_TYPE,
    predicate: {
      serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false, ignore_paths: [] },
      resources: sorted.map((r) => ({ name: r.name, algorithm: 'sha256', digest: r.sha256 })),
    },
  };
}

/** Sign a model (its files' digests) with an ECDSA P-256 private key (PEM); returns the bundle to store. */
export function signModel(
  modelName: string,
  resources: ModelResource[],
  privateKeyPem: string,
): SigstoreBundle {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new ModelSignatureError('the signing key must be an ECDSA P-256 (prime256v1) private key');
  for (const resource of resources) {
    if (!/^[0-9a-f]{64}$/.test(resource.sha256))
      throw new ModelSignatureError(`${resource.name}: not a sha256 hex digest`);
  }
  const payload = Buffer.from(JSON.stringify(statementFor(modelName, resources)), 'utf8');
  const signature = sign('sha256', dssePae(IN_TOTO_PAYLOAD_TYPE, payload), key);
  return {
    mediaType: SIGSTORE_BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: keyFingerprint(key) } },
    dsseEnvelope: {
      payload: payload.toString('base64'),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: signature.toString('base64') }],
    },
  };
}

/**
 * Verify a bundle against the operator's trusted public key (PEM) and the digests of the files actually on disk.
 * Throws ModelSignatureError naming what is wrong: not a bundle, signed by another key, a different predicate,
 * files missing from or added to the signed manifest, or a file whose digest differs.
 */
export function verifyModelSignature(
  bundleText: string,
  trustedPublicKeyPem: string,
  actual: ModelResource[],
): VerifiedModelSignature {
  let bundle: SigstoreBundle;
  try {
    bundle = JSON.parse(bundleText) as SigstoreBundle;
  } catch {
    throw new ModelSignatureError('the signature file is not JSON (expected a sigstore bundle)');
  }
  const envelope = bundle?.dsseEnvelope;
  if (!envelope || typeof envelope.payload !== 'string' || !Array.isArray(envelope.signatures))
    throw new ModelSignatureError('the signature file is not a sigstore bundle with a DSSE envelope');
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw new ModelSignatureError(`unexpected DSSE payload type ${String(envelope.payloadType)}`);
  const key = createPublicKey(trustedPublicKeyPem);
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = dssePae(envelope.payloadType, payload);
  const valid = envelope.signatures.some(
    (s) => typeof s.sig === 'string' && verify('sha256', pae, key, Buffer.from(s.sig, 'base64')),
  );
  if (!valid) throw new ModelSignatureError('the signature does not verify with the trusted public key');

  // Only a verified payload is parsed.
  const statement = JSON.parse(payload.toString('utf8')) as ReturnType<typeof statementFor>;
  if (statement._type !== IN_TOTO_STATEMENT_TYPE || statement.predicateType !== MODEL_SIGNING_PREDICATE_TYPE)
    throw new ModelSignatureError(`not a model-signing statement (${String(statement.predicateType)})`);
  const signed = (statement.predicate?.resources ?? []).map((r) => ({ name: r.name, sha256: r.digest }));
  if (statement.predicate?.serialization?.hash_type !== 'sha256' || signed.length === 0)
    throw new ModelSignatureError('the statement lists no sha256 file digests');
  const subject = statement.subject?.[0]?.digest?.sha256;
  if (subject !== subjectDigest(signed))
    throw new ModelSignatureError('the statement subject does not match its file digests');
  const signedByName = new Map(signed.map((r) => [r.name, r.sha256]));
  const actualNames = new Set(actual.map((r) => r.name));
  for (const file of actual) {
    const expected = signedByName.get(file.name);
    if (expected === undefined) throw new ModelSignatureError(`${file.name} is not in the signed manifest`);
    if (expected !== file.sha256)
      throw new ModelSignatureError(
        `${file.name}: sha256 ${file.sha256} differs from the signed ${expected}`,
      );
  }
  for (const name of signedByName.keys())
    if (!actualNames.has(name)) throw new ModelSignatureError(`${name} is signed but not part of this model`);
  return { modelDigest: subject, signer: keyFingerprint(key), resources: signed };
}
