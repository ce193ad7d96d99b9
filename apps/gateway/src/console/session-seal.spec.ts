import { randomBytes } from 'node:crypto';
import { seal, unseal } from './session-seal.js';

describe('console session seal', () => {
  const key = randomBytes(32);
  const later = Date.now() / 1000 + 60;

  it('opens what it sealed, with the same key and purpose', () => {
    const sealed = seal(key, 'session', { credential: 'alk_x_y', expiresAt: later });
    expect(unseal(key, 'session', sealed)).toEqual({ credential: 'alk_x_y', expiresAt: later });
    expect(sealed).not.toContain('alk_x_y');
  });

  it('refuses a changed byte, another key, another purpose and an expired value', () => {
    const sealed = seal(key, 'session', { credential: 'alk_x_y', expiresAt: later });
    const raw = Buffer.from(sealed, 'base64url');
    raw[20] ^= 1;
    expect(unseal(key, 'session', raw.toString('base64url'))).toBeUndefined();
    expect(unseal(randomBytes(32), 'session', sealed)).toBeUndefined();
    expect(unseal(key, 'oidc-login', sealed)).toBeUndefined();
    expect(unseal(key, 'session', sealed, later + 1)).toBeUndefined();
    expect(unseal(key, 'session', 'garbage')).toBeUndefined();
  });
});
