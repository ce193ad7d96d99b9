import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp } from './support/test-app.js';

// Rotating the bootstrap admin key through its Secret (AIRLOCK_ADMIN_KEY), as docs/air-gapped-install.md,
// "Rotation", describes: a key with a new id replaces the old one, which stops working, and the rotation is an audit
// record naming both ids (never the secrets). Real service, both databases.
const OLD_KEY = `alk_admin2026a_${'A'.repeat(43)}`;
const NEW_KEY = `alk_admin2026b_${'B'.repeat(43)}`;

describe.each(DRIVERS)('rotating the bootstrap admin key on %s', (driver) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(driver);
  });
  afterAll(() => database?.drop());

  const listModels = (running: Awaited<ReturnType<typeof startTestApp>>, credential: string) =>
    running.client.authorize({ credential, action: 'ACTION_LIST_MODELS', requestId: requestId('rotate') });

  it('a new id replaces the old key: the old one is refused, the new one works, and the rotation is recorded', async () => {
    const first = await startTestApp(database, { adminKey: OLD_KEY });
    expect(await listModels(first, OLD_KEY)).toMatchObject({ allowed: true });
    await first.stop();

    const rotated = await startTestApp(database, { adminKey: NEW_KEY });
    try {
      expect(await listModels(rotated, NEW_KEY)).toMatchObject({ allowed: true });
      expect(await listModels(rotated, OLD_KEY)).toMatchObject({
        allowed: false,
        denialReason: 'DENIAL_REASON_KEY_REVOKED',
      });
      const { records } = await rotated.client.queryAuditRecords({
        credential: NEW_KEY,
        filter: { kind: 'RECORD_KIND_ADMIN_ACTION' },
        pageSize: 1000,
      });
      const rotation = records.filter((record) => record.action === 'keys.bootstrap_rotate');
      expect(rotation).toHaveLength(1);
      expect(rotation[0].target).toBe('admin2026b');
      expect(JSON.parse(rotation[0].detailsJson)).toEqual({ revoked: ['admin2026a'] });
      expect(records.map((record) => record.detailsJson).join('\n')).not.toMatch(/AAAA|BBBB/);
    } finally {
      await rotated.stop();
    }

    // A restart with the same Secret changes nothing.
    const again = await startTestApp(database, { adminKey: NEW_KEY });
    try {
      expect(await listModels(again, NEW_KEY)).toMatchObject({ allowed: true });
      const { records } = await again.client.queryAuditRecords({
        credential: NEW_KEY,
        filter: { kind: 'RECORD_KIND_ADMIN_ACTION' },
        pageSize: 1000,
      });
      expect(records.filter((record) => record.action.startsWith('keys.bootstrap'))).toHaveLength(2);
    } finally {
      await again.stop();
    }
    // Three service starts in one test: on PGlite each opens the database afresh (~20 s on 2 busy cores; the
    // fresh-container run of npm test hit the 60 s default).
  }, 180_000);
});
