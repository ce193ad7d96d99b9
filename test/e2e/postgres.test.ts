// End to end on the real PostgreSQL server (AIRLOCK_TEST_DATABASE_URL; a fresh database per run):
// the same platform as openai-api.test.ts with auth-audit on PostgreSQL instead of PGlite. Also checks
// that the three services export every metric the Helm chart's alerts, autoscalers and dashboard query.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { MODEL, Platform, ROOT, describeWithModels } from './platform.js';

/** Every `airlock_*` series named in the chart's templates, files and values, histogram suffixes dropped. */
/** Words of the chart that look like metric names and are not (the CloudNativePG owner role's default name). */
const NOT_METRICS = new Set(['airlock_owner']);

function chartMetricNames(): string[] {
  const chart = join(ROOT, 'helm', 'airlock');
  const files = ['templates', 'files'].flatMap((dir) =>
    readdirSync(join(chart, dir), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => join(f.parentPath, f.name)),
  );
  const names = new Set<string>();
  for (const file of [...files, join(chart, 'values.yaml')]) {
    for (const [name] of readFileSync(file, 'utf8').matchAll(/\bairlock_[a-z0-9_]+/g)) {
      if (NOT_METRICS.has(name)) continue;
      names.add(name.replace(/_(bucket|sum|count)$/, ''));
    }
  }
  return [...names].sort();
}

describeWithModels('gateway with auth-audit on PostgreSQL', () => {
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

  it("exports every metric the chart's alerts, autoscalers and dashboard query, with their labels", async () => {
    const scrapes = await Promise.all(
      Object.values(platform.opsPorts).map(async (port) =>
        (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
      ),
    );
    const exported = new Set(
      scrapes.flatMap((text) => [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1])),
    );
    const referenced = chartMetricNames();
    expect(referenced).toEqual(
      expect.arrayContaining([
        'airlock_audit_batch_failures_total',
        'airlock_gateway_requests_total',
        'airlock_gateway_request_duration_seconds',
        'airlock_worker_queued_requests',
      ]),
    );
    expect(referenced.filter((name) => !exported.has(name))).toEqual([]);
    // The dashboard sums gateway requests by status and durations by le (namespace is a target label).
    const gateway = scrapes[0];
    expect(gateway).toMatch(/^airlock_gateway_requests_total\{route="[^"]+",model="[^"]*",status="200"\} /m);
    expect(gateway).toMatch(/^airlock_gateway_request_duration_seconds_bucket\{le="[^"]+",route="[^"]+"\} /m);
  });
});
