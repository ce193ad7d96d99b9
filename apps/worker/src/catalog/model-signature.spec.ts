import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelSignatureError, signModel } from '@airlock/contracts';
import { parseCatalog } from './model-catalog.js';
import { checkModelSignature } from './model-signature.js';

describe('checkModelSignature (catalog signature: bundle + trusted public key)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-signed-'));
  const sha256 = createHash('sha256').update('weights').digest('hex');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(join(dir, 'trusted.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  const bundle = signModel(
    'm',
    [{ name: 'm.gguf', sha256 }],
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
  writeFileSync(join(dir, 'm.gguf.sig'), JSON.stringify(bundle));
  const [spec] = parseCatalog(
    { models: [{ id: 'm', path: 'm.gguf', signature: { bundle: 'm.gguf.sig', publicKey: 'trusted.pub' } }] },
    dir,
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves the signature paths beside the catalog and accepts the signed file', async () => {
    expect(spec.signature).toEqual({ bundle: join(dir, 'm.gguf.sig'), publicKey: join(dir, 'trusted.pub') });
    const verified = await checkModelSignature({ ...spec, signature: spec.signature! }, sha256);
    expect(verified.signer).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('refuses a file that differs from what was signed, and a missing bundle (unsigned)', async () => {
    const other = createHash('sha256').update('other').digest('hex');
    await expect(checkModelSignature({ ...spec, signature: spec.signature! }, other)).rejects.toThrow(
      /differs/,
    );
    await expect(
      checkModelSignature(
        { ...spec, signature: { ...spec.signature!, bundle: join(dir, 'absent.sig') } },
        sha256,
      ),
    ).rejects.toThrow(ModelSignatureError);
  });
});
