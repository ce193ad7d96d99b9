// Usage of work the worker did survives the gateway, end to end on real PostgreSQL with the real worker
// (node-llama-cpp, stories260K): the worker reports each generation's usage to auth-audit itself. A gateway
// killed with SIGKILL mid-stream leaves a request that the lease sweeper closes as interrupted with the
// worker's usage, charged to the key; a client that cancels a stream (or leaves a non-streaming request
// before its answer) is charged the prompt tokens and every token generated, exactly, and once.
import { MODEL, Platform, describeWithModels, type Json } from './platform.js';

// stories260K's end-of-sequence token, banned so that a generation runs until it is cut off.
const EOS_BAN = { '2': -100 };
const MESSAGES = [{ role: 'user', content: 'Once upon a time there was a little dog' }];

describeWithModels('usage survives the gateway (real worker, PostgreSQL)', () => {
  const platform = new Platform({
    database: 'postgres',
    authAuditEnv: { AIRLOCK_AUDIT_LEASE_SWEEP_SECONDS: '1' },
  });

  beforeAll(() => platform.start(), 180_000);
  afterAll(() => platform.close(), 60_000);

  const newKey = async (): Promise<{ secret: string; id: string }> => {
    const secret = await platform.createKey({ tokens_per_day: 1_000_000 });
    return { secret, id: /^alk_([a-z0-9]+)_/.exec(secret)![1] };
  };
  /** Tokens charged to the key today (its daily counter: reservations and settled usage). */
  const charged = async (keyId: string): Promise<number> => {
    const rows = await platform.query<{ tokens: string }>(
      "select tokens from quota_counters where subject = $1 and window_kind = 'day'",
      [`key:${keyId}`],
    );
    return rows.reduce((sum, row) => sum + Number(row.tokens), 0);
  };
  const workerMetric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${platform.opsPorts.worker}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  };
  const generated = () => workerMetric('airlock_worker_generated_tokens_total');
  const chat = (url: string, key: string, body: Json, signal?: AbortSignal) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: MESSAGES, temperature: 0, ...body }),
      signal,
    });
  /** The prompt tokens of MESSAGES, from an answered request. */
  let promptTokens = 0;

  beforeAll(async () => {
    const response = await chat(platform.url, platform.adminKey, { max_tokens: 2 });
    expect(response.status).toBe(200);
    promptTokens = ((await response.json()) as Json).usage.prompt_tokens;
    expect(promptTokens).toBeGreaterThan(5);
  }, 60_000);

  /** Reads SSE until the first content chunk has arrived. */
  async function firstChunk(response: Response): Promise<void> {
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('"content":"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended before its first chunk');
      text += Buffer.from(value).toString('utf8');
    }
  }

  it('a gateway killed with SIGKILL mid-stream: the request ends interrupted, with the worker usage charged', async () => {
    const key = await newKey();
    // A short lease (request timeout + margin: 5 s) so that the sweeper closes it within the test.
    const gateway = await platform.spawnGateway({
      AIRLOCK_REQUEST_TIMEOUT_SECONDS: '4',
      AIRLOCK_AUDIT_LEASE_MARGIN_SECONDS: '1',
    });
    const generatedBefore = await generated();
    const response = await chat(gateway.url, key.secret, {
      stream: true,
      max_tokens: 400,
      logit_bias: EOS_BAN,
    });
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id')!;
    await firstChunk(response);
    gateway.child.kill('SIGKILL');
    await response.body!.cancel().catch(() => undefined);

    const records = await platform.auditRecords(requestId);
    const completion = records.find((r: Json) => r.kind === 'completion');
    const workerTokens = (await generated()) - generatedBefore;
    expect(workerTokens).toBeGreaterThan(0);
    expect(workerTokens).toBeLessThan(400);
    expect(completion).toMatchObject({
      outcome: 'interrupted',
      error_class: 'lease_expired',
      prompt_tokens: promptTokens,
      completion_tokens: workerTokens,
    });
    expect(await charged(key.id)).toBe(promptTokens + workerTokens);
    expect((await platform.admin('POST', '/audit/verify', {})).json).toMatchObject({ ok: true });
  }, 120_000);

  it('a cancelled stream is charged its prompt tokens and every token generated, once', async () => {
    const key = await newKey();
    const generatedBefore = await generated();
    const deliveredBefore = await workerMetric('airlock_worker_usage_reports_delivered_total');
    const abort = new AbortController();
    const response = await chat(
      platform.url,
      key.secret,
      { stream: true, max_tokens: 400, logit_bias: EOS_BAN },
      abort.signal,
    );
    const requestId = response.headers.get('x-request-id')!;
    await firstChunk(response);
    abort.abort();

    // Settled once the worker's report is in: the prompt plus what the worker generated.
    await platform.until(
      async () =>
        (await workerMetric('airlock_worker_usage_reports_delivered_total')) > deliveredBefore &&
        (await charged(key.id)) === promptTokens + (await generated()) - generatedBefore,
    );
    const workerTokens = (await generated()) - generatedBefore;
    const records = await platform.auditRecords(requestId);
    expect(records.find((r: Json) => r.kind === 'completion')).toMatchObject({ outcome: 'cancelled' });
    // The request's usage as now charged: its last record (the completion, or a usage record after it).
    expect(records.at(-1)).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: workerTokens });
    expect(await charged(key.id)).toBe(promptTokens + workerTokens);
  }, 120_000);

  it('a non-streaming client that leaves before its answer is charged the prompt and the tokens generated', async () => {
    const key = await newKey();
    const generatedBefore = await generated();
    const deliveredBefore = await workerMetric('airlock_worker_usage_reports_delivered_total');
    const abort = new AbortController();
    const pending = chat(
      platform.url,
      key.secret,
      { max_tokens: 400, logit_bias: EOS_BAN },
      abort.signal,
    ).catch(() => null);
    // Leave once the worker is generating: the client has seen no token at all.
    await platform.until(async () => (await generated()) > generatedBefore, 60_000);
    abort.abort();
    expect(await pending).toBeNull();
    await platform.until(
      async () =>
        (await workerMetric('airlock_worker_usage_reports_delivered_total')) > deliveredBefore &&
        (await charged(key.id)) === promptTokens + (await generated()) - generatedBefore,
    );
    const workerTokens = (await generated()) - generatedBefore;
    expect(workerTokens).toBeGreaterThan(0);
    expect(await charged(key.id)).toBe(promptTokens + workerTokens);
  }, 120_000);

  it('usage is not double-counted when both the gateway and the worker report a finished request', async () => {
    const key = await newKey();
    const deliveredBefore = await workerMetric('airlock_worker_usage_reports_delivered_total');
    const response = await chat(platform.url, key.secret, { max_tokens: 12, logit_bias: EOS_BAN });
    const body = (await response.json()) as Json;
    const requestId = response.headers.get('x-request-id')!;
    await platform.auditRecords(requestId);
    await platform.until(
      async () => (await workerMetric('airlock_worker_usage_reports_delivered_total')) > deliveredBefore,
    );
    expect(body.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 12 });
    expect(await charged(key.id)).toBe(promptTokens + 12);
    const kinds = (await platform.auditRecords(requestId)).map((r: Json) => r.kind as string);
    expect(kinds).toEqual(['request', 'completion']);
  }, 60_000);
});
