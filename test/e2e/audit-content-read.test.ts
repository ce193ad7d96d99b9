// End to end: reading back the content a `full`-capture tenant's request left in the audit log, through
// GET /admin/v1/audit/records/{sequence}/content on the real platform (auth-audit on PostgreSQL with a
// content key, the worker serving stories260K). Who may read it, and that every read, allowed or refused,
// is itself an audit record naming the sequence.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MODEL, Platform, ROOT, describeWithModels, type Json } from './platform.js';

const run = promisify(execFile);

describeWithModels('captured content read back by auditors (PostgreSQL)', () => {
  const platform = new Platform({ database: 'postgres', contentKeys: true });
  const keys = { tenantAuditor: '', otherAuditor: '', globalAuditor: '', user: '', tenantAdmin: '' };
  // A marker no model would produce: found in the decrypted request, never in a log line.
  const prompt = `Once upon a time ${randomBytes(6).toString('hex')}`;
  let answer = '';
  let requestSequence = 0;
  let completionSequence = 0;

  const contentRecords = async (after: number): Promise<Json[]> => {
    const { json } = await platform.admin(
      'GET',
      `/audit/records?kind=admin_action&from_sequence=${after + 1}`,
    );
    return (json.data as Json[]).filter((record) => record.action === 'audit.content_read');
  };
  const lastSequence = async (): Promise<number> => {
    const page = await platform.admin(
      'GET',
      `/audit/records?from_sequence=${completionSequence}&page_size=1000`,
    );
    return Math.max(...(page.json.data as Json[]).map((record) => record.sequence as number));
  };

  beforeAll(async () => {
    await platform.start();
    for (const tenant of ['forensic', 'elsewhere']) {
      const upserted = await platform.admin('PUT', `/tenants/${tenant}`, { content_capture: 'full' });
      expect(upserted.status).toBe(200);
    }
    keys.user = await platform.createKey({ tenant: 'forensic', role: 'user' });
    keys.tenantAuditor = await platform.createKey({ tenant: 'forensic', role: 'auditor' });
    keys.tenantAdmin = await platform.createKey({ tenant: 'forensic', role: 'tenant_admin' });
    keys.otherAuditor = await platform.createKey({ tenant: 'elsewhere', role: 'auditor' });
    keys.globalAuditor = await platform.createKey({ role: 'auditor', global: true });

    const response = await fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.user}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: prompt }],
        max_tokens: 8,
        temperature: 0,
      }),
    });
    expect(response.status).toBe(200);
    answer = ((await response.json()) as Json).choices[0].message.content;
    expect(answer.length).toBeGreaterThan(0);
    const records = await platform.auditRecords(response.headers.get('x-request-id')!);
    requestSequence = records.find((r) => r.kind === 'request')!.sequence;
    completionSequence = records.find((r) => r.kind === 'completion')!.sequence;
  }, 180_000);
  afterAll(() => platform.close(), 60_000);

  it("decrypts the request's prompt and the answer for the tenant's auditor, and records the read", async () => {
    const before = await lastSequence();
    for (const sequence of [requestSequence, completionSequence]) {
      const read = await platform.admin(
        'GET',
        `/audit/records/${sequence}/content`,
        undefined,
        keys.tenantAuditor,
      );
      expect(read.status).toBe(200);
      expect(read.json).toMatchObject({
        object: 'audit.record_content',
        sequence,
        request_sequence: requestSequence,
        response_sequence: completionSequence,
      });
      expect(JSON.parse(read.json.request_body).messages).toEqual([{ role: 'user', content: prompt }]);
      expect(JSON.parse(read.json.response_body).choices[0].message.content).toBe(answer);
    }
    const reads = await contentRecords(before);
    expect(reads.map((r) => [r.target, r.outcome])).toEqual([
      [`sequence:${requestSequence}`, 'succeeded'],
      [`sequence:${completionSequence}`, 'succeeded'],
    ]);
    expect(reads[0].tenant).toBe('forensic');
    expect(reads[0].role).toBe('auditor');
    // The plaintext is in no service's log, nor in the read's own record.
    for (const log of Object.values(platform.logs)) expect(log.text).not.toContain(prompt);
    expect(JSON.stringify(reads)).not.toContain(prompt);
  });

  it('`airlock audit content` prints both bodies for an auditor', async () => {
    const cli = join(ROOT, 'apps', 'cli', 'bin', 'airlock.mjs');
    const { stdout } = await run(process.execPath, [
      cli,
      '--url',
      platform.url,
      '--key',
      keys.tenantAuditor,
      'audit',
      'content',
      String(completionSequence),
    ]);
    expect(stdout).toContain(`request (record ${requestSequence}):`);
    expect(stdout).toContain(prompt);
    expect(stdout).toContain(`response (record ${completionSequence}):`);
    expect(stdout).toContain(JSON.stringify(answer).slice(1, -1));
  });

  it('lets a global auditor read it too', async () => {
    const read = await platform.admin(
      'GET',
      `/audit/records/${requestSequence}/content`,
      undefined,
      keys.globalAuditor,
    );
    expect(read.status).toBe(200);
    expect(read.json.request_body).toContain(prompt);
  });

  it("refuses a user, a tenant admin and another tenant's auditor with 403, each refusal recorded", async () => {
    const before = await lastSequence();
    for (const key of [keys.user, keys.tenantAdmin, keys.otherAuditor]) {
      const read = await platform.admin('GET', `/audit/records/${requestSequence}/content`, undefined, key);
      expect(read.status).toBe(403);
      expect(read.json.error).toMatchObject({ type: expect.any(String), message: expect.any(String) });
      expect(JSON.stringify(read.json)).not.toContain(prompt);
    }
    const refusals = await contentRecords(before);
    expect(
      refusals.map((r) => [r.target, r.outcome, r.status_code, r.error_class, r.role, r.tenant]),
    ).toEqual([
      [`sequence:${requestSequence}`, 'denied', 403, 'role_forbidden', 'user', 'forensic'],
      [`sequence:${requestSequence}`, 'denied', 403, 'role_forbidden', 'tenant_admin', 'forensic'],
      [`sequence:${requestSequence}`, 'denied', 403, 'tenant_forbidden', 'auditor', 'elsewhere'],
    ]);
  });

  it('answers 404 for a record without captured content, and records that too', async () => {
    const before = await lastSequence();
    // The first record (the bootstrap) captured nothing.
    const read = await platform.admin('GET', '/audit/records/1/content');
    expect(read.status).toBe(404);
    expect(read.json.error.message).toMatch(/no captured content/);
    const bad = await platform.admin('GET', '/audit/records/x1/content');
    expect(bad.status).toBe(400);
    const recorded = await contentRecords(before);
    expect(recorded.map((r) => [r.target, r.outcome, r.status_code, r.error_class])).toEqual([
      ['sequence:1', 'failed', 404, 'no_captured_content'],
    ]);
  });
});
