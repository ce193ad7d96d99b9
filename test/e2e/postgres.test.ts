// End to end on the real PostgreSQL server (AIRLOCK_TEST_DATABASE_URL; a fresh database per run):
// the same platform as openai-api.test.ts with auth-audit on PostgreSQL instead of PGlite.
import OpenAI from 'openai';
import { MODEL, Platform } from './platform.js';

describe('gateway with auth-audit on PostgreSQL', () => {
  const platform = new Platform({ database: 'postgres' });

  beforeAll(() => platform.start(), 180_000);
  afterAll(() => platform.close(), 60_000);

  it('serves a streamed chat, audits it with its token counts and verifies the chain', async () => {
    const client = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: await platform.createKey(),
      maxRetries: 0,
    });
    const { data: stream, request_id } = await client.chat.completions
      .create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 12,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    const completion = (await platform.auditRecords(request_id!)).find((r) => r.kind === 'completion');
    expect(completion).toMatchObject({
      outcome: 'succeeded',
      prompt_tokens: usage?.prompt_tokens,
      completion_tokens: usage?.completion_tokens,
    });
    const verify = await platform.admin('POST', '/audit/verify', {});
    expect(verify.json.ok).toBe(true);
  });
});
