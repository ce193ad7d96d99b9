import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { reloadingJwksFile } from '../src/auth/jwks-file.js';
import { OidcVerifier } from '../src/auth/oidc-verifier.js';
import { DEFAULT_OIDC_ALGORITHMS, type OidcSettings } from '../src/config/auth-audit-settings.js';

// Rotating the identity provider's signing key without restarting auth-audit: the JWKS file (a ConfigMap in the
// chart, which the kubelet swaps atomically) is re-read when it changes. Real jose, real RS256 keys; the identity
// provider is this test.
const ISSUER = 'https://idp.hospital.internal/realms/airlock';

describe('OIDC JWKS file rotation', () => {
  let dir: string;
  let jwksFile: string;
  const keys: Record<string, { privateKey: CryptoKey; jwk: Record<string, unknown> }> = {};

  const publish = async (...kids: string[]) => {
    // Written beside and renamed over, as a ConfigMap update lands: readers never see half a file.
    const next = `${jwksFile}.next`;
    await writeFile(next, JSON.stringify({ keys: kids.map((kid) => keys[kid].jwk) }));
    await rename(next, jwksFile);
  };
  const token = (kid: string) =>
    new SignJWT({ sub: 'u-1', roles: ['airlock-user'], tenant: 'cardiology' })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(ISSUER)
      .setAudience('airlock')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(keys[kid].privateKey);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-jwks-'));
    jwksFile = join(dir, 'jwks.json');
    for (const kid of ['2026-q3', '2026-q4']) {
      const pair = await generateKeyPair('RS256', { extractable: true });
      keys[kid] = {
        privateKey: pair.privateKey,
        jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' },
      };
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('accepts a new key on its first token and drops a retired one, with no restart', async () => {
    await publish('2026-q3');
    const settings: OidcSettings = {
      issuer: ISSUER,
      audience: 'airlock',
      jwksFile,
      roleClaim: 'roles',
      tenantClaim: 'tenant',
      clockSkewSeconds: 30,
      maxTokenLifetimeSeconds: 3600,
      algorithms: DEFAULT_OIDC_ALGORITHMS,
      roleMap: { 'airlock-user': 'user' },
    };
    const verifier = await OidcVerifier.create(settings);
    expect(await verifier.verify(await token('2026-q3'))).toMatchObject({ ok: true });
    expect(await verifier.verify(await token('2026-q4'))).toMatchObject({ ok: false });

    // The provider publishes its next key beside the current one: tokens signed with it pass at once.
    await publish('2026-q3', '2026-q4');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await verifier.verify(await token('2026-q4'))).toMatchObject({ ok: true });
    expect(await verifier.verify(await token('2026-q3'))).toMatchObject({ ok: true });

    // A broken file (an update in progress) keeps the keys loaded.
    await writeFile(jwksFile, '{"keys": [');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await verifier.verify(await token('2026-q4'))).toMatchObject({ ok: true });

    // The old key is retired: the next look at the file (every 10 s; the clock is the test's) drops it.
    await publish('2026-q3', '2026-q4');
    let clock = Date.now();
    const keySet = reloadingJwksFile(jwksFile, 10_000, () => clock);
    const header = (kid: string) => ({ alg: 'RS256', kid });
    const flat = () => ({ payload: '', signature: '', protected: '' }) as never;
    await expect(keySet(header('2026-q3'), flat())).resolves.toBeDefined();
    await publish('2026-q4');
    await expect(keySet(header('2026-q3'), flat())).resolves.toBeDefined();
    clock += 10_000;
    await expect(keySet(header('2026-q3'), flat())).rejects.toThrow(/no applicable key/i);
    await expect(keySet(header('2026-q4'), flat())).resolves.toBeDefined();
  });
});
