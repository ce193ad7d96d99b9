import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  dssePae,
  keyFingerprint,
  MODEL_SIGNING_PREDICATE_TYPE,
  ModelSignatureError,
  signModel,
  verifyModelSignature,
  type SigstoreBundle,
} from './model-signing.js';

const pem = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    key: publicKey,
  };
};
const digest = (text: string) => createHash('sha256').update(text).digest('hex');
const file = { name: 'model.gguf', sha256: digest('weights') };

describe('OpenSSF model-signing bundles (key-based, offline)', () => {
  const signer = pem();
  const bundle = signModel('model', [file], signer.privateKey);
  const text = JSON.stringify(bundle);

  it('writes a sigstore bundle whose DSSE payload is an in-toto statement of the file digests', () => {
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
    expect(statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(statement.predicateType).toBe(MODEL_SIGNING_PREDICATE_TYPE);
    expect(statement.predicate.resources).toEqual([
      { name: 'model.gguf', algorithm: 'sha256', digest: file.sha256 },
    ]);
    expect(statement.subject[0].digest.sha256).toBe(
      createHash('sha256').update(Buffer.from(file.sha256, 'hex')).digest('hex'),
    );
  });

  it('verifies with the trusted key and names the signer by its key fingerprint', () => {
    const verified = verifyModelSignature(text, signer.publicKey, [file]);
    expect(verified.signer).toBe(keyFingerprint(signer.key));
    expect(verified.modelDigest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses another key, a changed file, an extra or missing file, and a tampered payload', () => {
    const other = pem();
    expect(() => verifyModelSignature(text, other.publicKey, [file])).toThrow(
      /does not verify with the trusted/,
    );
    expect(() =>
      verifyModelSignature(text, signer.publicKey, [{ ...file, sha256: digest('other') }]),
    ).toThrow(/differs from the signed/);
    expect(() =>
      verifyModelSignature(text, signer.publicKey, [file, { name: 'extra.gguf', sha256: digest('x') }]),
    ).toThrow(/extra.gguf is not in the signed manifest/);
    const two = JSON.stringify(
      signModel('model', [file, { name: 'b.gguf', sha256: digest('b') }], signer.privateKey),
    );
    expect(() => verifyModelSignature(two, signer.publicKey, [file])).toThrow(
      /b.gguf is signed but not part/,
    );
    const tampered: SigstoreBundle = JSON.parse(text);
    const statement = JSON.parse(Buffer.from(tampered.dsseEnvelope.payload, 'base64').toString('utf8'));
    statement.predicate.resources[0].digest = digest('other');
    tampered.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    expect(() => verifyModelSignature(JSON.stringify(tampered), signer.publicKey, [file])).toThrow(
      ModelSignatureError,
    );
    expect(() => verifyModelSignature('not json', signer.publicKey, [file])).toThrow(/not JSON/);
  });

  it('signs the DSSE pre-authentication encoding', () => {
    expect(dssePae('t', Buffer.from('ab')).toString()).toBe('DSSEv1 1 t 2 ab');
  });

  it('accepts only ECDSA P-256 signing keys', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() =>
      signModel('m', [file], privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    ).toThrow(/ECDSA P-256/);
  });
});
