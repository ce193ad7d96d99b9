import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { migrate } from '../dist/database/migrations.js';
import { runBatch } from '../dist/authorization/batch-decisions.js';
import { ContentSealer } from '../dist/audit/content-sealer.js';
import { generateApiKey } from '../dist/keys/api-key-format.js';
import { apiKeyRepository } from '../dist/keys/api-key.repository.js';
import { AUTHORIZE_ACTIONS } from '../dist/authorization/actions.js';
const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
await admin.connect();
await admin.query('drop database if exists aa_prof with (force)');
await admin.query('create database aa_prof');
await admin.end();
const pool = new pg.Pool({
  connectionString: 'postgres://postgres@127.0.0.1:5432/aa_prof',
  max: 4,
  types: { getTypeParser: (oid, f) => (oid === 20 ? Number : pg.types.getTypeParser(oid, f)) },
});
const times = {};
const db = new Kysely({
  dialect: new PostgresDialect({ pool }),
  log(e) {
    const k = e.query.sql.slice(0, 40);
    times[k] = (times[k] ?? 0) + e.queryDurationMillis;
  },
});
await migrate(db);
const keys = [];
for (let i = 0; i < 20; i++) {
  const g = generateApiKey();
  keys.push(g);
  await apiKeyRepository.insert(db, {
    id: g.id,
    tenant: 'default',
    name: 'x',
    role: 'user',
    secretHash: g.hash,
    allowedModels: [],
    limits: { requestsPerMinute: 1e6, tokensPerMinute: 0, tokensPerDay: 0, tokensPerMonth: 0 },
    global: false,
    expiresAt: null,
    createdBy: 'p',
    createdAt: new Date(),
    revokedAt: null,
  });
}
const sealer = await ContentSealer.fromFile(undefined);
let n = 0;
const ops = () =>
  Array.from({ length: 80 }, (_, i) => ({
    type: 'authorize',
    credential: { type: 'api_key', key: { id: keys[i % 20].id, hash: keys[i % 20].hash } },
    action: AUTHORIZE_ACTIONS.ACTION_CHAT_COMPLETIONS,
    model: 'm',
    requestId: `r${n++}`,
    clientAddress: '1.2.3.4',
    userAgent: 'ua',
    requestBody: Buffer.from('{"x":1}'),
  }));
for (let i = 0; i < 30; i++)
  await db.transaction().execute((trx) => runBatch(trx, ops(), sealer, new Date()));
for (const k of Object.keys(times)) times[k] = 0;
const t0 = performance.now();
for (let i = 0; i < 50; i++)
  await db.transaction().execute((trx) => runBatch(trx, ops(), sealer, new Date()));
const total = performance.now() - t0;
console.log('per batch ms', (total / 50).toFixed(2));
for (const [k, v] of Object.entries(times)) console.log((v / 50).toFixed(2), k);
await db.destroy();
