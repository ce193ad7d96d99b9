// Every request's outcome as the client saw it, end to end on real PostgreSQL: ids issued by the gateway
// (a client's x-request-id cannot link two tenants' records), refusals before authentication recorded,
// a client that leaves before its answer recorded as cancelled.
import { request as httpRequest } from 'node:http';
import { internalServerCredentials, internalTransportFromEnv } from '@airlock/contracts';
import { FakeWorker } from '../../apps/gateway/test/fake-worker.js';
import { MODEL, Platform, describeWithModels, type Json } from './platform.js';

describeWithModels('request outcomes through the gateway on PostgreSQL', () => {
  const platform = new Platform({ database: 'postgres', gateway: { maxBodyBytes: 64 * 1024 } });

  beforeAll(() => platform.start(), 180_000);
  afterAll(() => platform.close(), 60_000);

  const chat = (key: string, headers: Record<string, string> = {}, body: Json = {}, signal?: AbortSignal) =>
    fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: 'Once upon a time' }],
        max_tokens: 8,
        temperature: 0,
        ...body,
      }),
      signal,
    });
  const allRecords = async (): Promise<Json[]> => {
    const { json } = await platform.admin('GET', '/audit/records?page_size=1000');
    return json.data as Json[];
  };

  it("keeps two tenants' requests apart when they send the same x-request-id", async () => {
    await platform.admin('PUT', '/tenants/tenant-a', { name: 'A' });
    await platform.admin('PUT', '/tenants/tenant-b', { name: 'B' });
    const keyA = await platform.createKey({ tenant: 'tenant-a' });
    const keyB = await platform.createKey({ tenant: 'tenant-b' });
    const [a, b] = await Promise.all([
      chat(keyA, { 'x-request-id': 'shared-id' }, { max_tokens: 24 }),
      chat(keyB, { 'x-request-id': 'shared-id' }, { max_tokens: 4 }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const [bodyA, bodyB]: Json[] = [await a.json(), await b.json()];
    const idA = a.headers.get('x-request-id')!;
    const idB = b.headers.get('x-request-id')!;
    expect(idA).not.toBe(idB);
    const recordsA = await platform.auditRecords(idA);
    const recordsB = await platform.auditRecords(idB);
    for (const [records, tenant, body] of [
      [recordsA, 'tenant-a', bodyA],
      [recordsB, 'tenant-b', bodyB],
    ] as const) {
      expect(records.every((r: Json) => r.tenant === tenant)).toBe(true);
      expect(records.find((r: Json) => r.kind === 'request').client_request_id).toBe('shared-id');
      expect(records.find((r: Json) => r.kind === 'completion').completion_tokens).toBe(
        body.usage.completion_tokens,
      );
    }
  });

  it('records every refusal raised before authentication, each kind, and fields it cannot store as sent', async () => {
    const key = await platform.createKey();
    const cases: [Promise<Response>, number, string][] = [
      [
        fetch(`${platform.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: '{"model": ',
        }),
        400,
        '',
      ],
      [chat(key, {}, { temperature: 'hot' }), 400, ''],
      [fetch(`${platform.url}/v1/nothing-here`, { method: 'POST' }), 404, ''],
      [
        chat(key, {}, { messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }),
        413,
        'body_too_large',
      ],
    ];
    for (const [pending, status, errorClass] of cases) {
      const response = await pending;
      expect(response.status).toBe(status);
      const [record] = await platform.auditRecords(response.headers.get('x-request-id')!, 1);
      expect(record).toMatchObject({ kind: 'request', outcome: 'denied', status_code: status });
      if (errorClass) expect(record.error_class).toBe(errorClass);
    }
    // A User-Agent over 512 characters with a TAB, a model id with NUL: recorded, escaped and flagged.
    const odd = await chat(
      key,
      { 'user-agent': `agent\t${'u'.repeat(600)}` },
      { model: 'stories\u0000260K' },
    );
    expect(odd.status).not.toBe(503);
    const records = await platform.auditRecords(odd.headers.get('x-request-id')!, 1);
    expect(records[0].field_flags).toMatch(/user_agent:escaped/);
    expect(records[0].field_flags).toMatch(/user_agent:truncated/);
    expect(records[0].field_flags).toMatch(/model:escaped/);
  });

  it('records oversized headers (431), refused before any route', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${platform.url}/v1/models`, { headers: { 'x-big': 'h'.repeat(20 * 1024) } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
    await platform.until(async () =>
      (await allRecords()).some((r) => r.error_class === 'headers_too_large' && r.status_code === 431),
    );
  });

  it('records a client that leaves before its answer as cancelled, streaming or not', async () => {
    // A worker that holds every generation before its first token (a stand-in for a slow one: the real
    // stories260K answers too fast to leave in time), behind a second gateway on the same auth-audit.
    const slow = new FakeWorker('slow', { deltas: [], hold: true }, MODEL);
    const transport = internalTransportFromEnv({ ...platform.tls.worker });
    if (!transport.ok) throw new Error(transport.problem);
    await slow.start(internalServerCredentials(transport.transport, [{ methodPrefix: '/', callers: 'any' }]));
    const gateway = await platform.startGateway({ discovery: { kind: 'static', workers: [slow.address] } });
    const key = await platform.createKey();
    const seen = new Set<string>();
    try {
      for (const stream of [false, true]) {
        const abort = new AbortController();
        const pending = fetch(`http://127.0.0.1:${gateway.port}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream }),
          signal: abort.signal,
        }).catch(() => null);
        const before = slow.chats;
        await platform.until(() => slow.chats > before);
        // Generation starts on the decision, before the request record is durable: wait for the record.
        let id = '';
        await platform.until(async () => {
          const last = (await allRecords()).filter((r) => r.kind === 'request').at(-1);
          id =
            last?.model === MODEL && last.outcome === 'allowed' && !seen.has(last.request_id)
              ? last.request_id
              : '';
          return id !== '';
        });
        seen.add(id);
        abort.abort();
        await pending;
        const completion = (await platform.auditRecords(id)).find((r) => r.kind === 'completion');
        expect(completion).toMatchObject({ outcome: 'cancelled', status_code: 499 });
        await platform.until(() => slow.cancelled > 0);
      }
    } finally {
      await slow.stop();
    }
  });
});
