// The speculative start, end to end on real PostgreSQL with the real worker and stories260K: generation
// begins on Authorize's decision while the request record commits, and nothing of the answer reaches the
// client before the record is durable. Commits are held and failed deterministically by a trigger the test
// installs on audit_records: it waits on an advisory lock the test holds, then (for the marked user agent)
// raises, so each step is ordered by the test, never by timing.
import pg from 'pg';
import { MODEL, Platform, describeWithModels, type Json } from './platform.js';

const FAIL_AGENT = 'airlock-test/fail-commit';
const HOLD_AGENT = 'airlock-test/hold-commit';
const LOCK = 4242;
/** stories260K's end-of-sequence token, biased away so that a generation runs until it is stopped. */
const EOS = '2';

describeWithModels('speculative start: generation overlaps the request record commit', () => {
  const platform = new Platform({ database: 'postgres' });
  let db: pg.Client;

  beforeAll(async () => {
    await platform.start();
    db = new pg.Client({ connectionString: platform.databaseUrl });
    await db.connect();
    await db.query(`
      create function airlock_test_commit_fault() returns trigger language plpgsql as $$
      begin
        if new.kind = 'request' and new.user_agent in ('${FAIL_AGENT}', '${HOLD_AGENT}') then
          perform pg_advisory_xact_lock(${LOCK});
          if new.user_agent = '${FAIL_AGENT}' then
            raise exception 'injected request record failure';
          end if;
        end if;
        return new;
      end $$`);
    await db.query(`create trigger airlock_test_commit_fault before insert on audit_records
      for each row execute function airlock_test_commit_fault()`);
  }, 180_000);
  afterAll(async () => {
    await db?.end();
    await platform.close();
  }, 60_000);

  /** Holds the advisory lock in an open transaction: marked request records wait until `release`. */
  async function holdCommits(): Promise<{ release: () => Promise<void> }> {
    const locker = new pg.Client({ connectionString: platform.databaseUrl });
    await locker.connect();
    await locker.query('begin');
    await locker.query('select pg_advisory_xact_lock($1)', [LOCK]);
    return {
      release: async () => {
        await locker.query('commit');
        await locker.end();
      },
    };
  }

  async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }
  const workerMetric = (name: string, labels?: Record<string, string>) =>
    metric(platform.opsPorts.worker, name, labels);
  const finished = (reason: string) =>
    workerMetric('airlock_worker_requests_total', { model: MODEL, finish_reason: reason });

  const send = (key: string, agent: string, stream: boolean, route: 'completions' | 'chat/completions') =>
    fetch(`${platform.url}/v1/${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'user-agent': agent },
      body: JSON.stringify({
        model: MODEL,
        ...(route === 'completions'
          ? { prompt: 'Once upon a time' }
          : { messages: [{ role: 'user', content: 'Once upon a time' }] }),
        max_tokens: agent === FAIL_AGENT ? 1500 : 16,
        temperature: 0,
        stream,
        ...(agent === FAIL_AGENT ? { logit_bias: { [EOS]: -100 } } : {}),
      }),
    });

  it.each([false, true])(
    'a failed record commit releases nothing and cancels the generation (stream: %s)',
    async (stream) => {
      const key = await platform.createKey();
      const cancelledBefore = await finished('FINISH_REASON_CANCELLED');
      const lengthBefore = await finished('FINISH_REASON_LENGTH');
      const unrecordedBefore = await metric(
        platform.opsPorts.gateway,
        'airlock_gateway_unrecorded_requests_total',
      );
      const hold = await holdCommits();
      let answered = false;
      const pending = send(key, FAIL_AGENT, stream, 'completions').then((response) => {
        answered = true;
        return response;
      });
      // The worker generates on the decision while the record's commit waits on the lock.
      await platform.until(async () => (await workerMetric('airlock_worker_running_requests')) >= 1, 60_000);
      // Frozen mid-generation: the cancel cannot lose a race with the generation's end.
      platform.pauseWorker();
      expect(answered).toBe(false);
      await hold.release();
      const response = await pending;
      const text = await response.text();
      platform.resumeWorker();

      expect(response.status).toBe(503);
      expect(JSON.parse(text)).toEqual({
        error: expect.objectContaining({ code: 'audit_unavailable', type: expect.any(String) }),
      });
      // Nothing of the generation: no event stream, no event, no choice, no receipt.
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(text.split('\n').filter((line) => line.startsWith('data:'))).toHaveLength(0);
      expect(text).not.toContain('choices');
      expect(response.headers.get('x-airlock-audit-sequence')).toBeNull();
      expect(response.headers.get('x-airlock-audit-receipt')).toBeNull();

      // The worker's generation was cancelled, not run to its end.
      await platform.until(async () => (await finished('FINISH_REASON_CANCELLED')) === cancelledBefore + 1);
      expect(await finished('FINISH_REASON_LENGTH')).toBe(lengthBefore);
      // The gateway filed no completion for the request without a record: none dangles.
      await platform.until(
        async () =>
          (await metric(platform.opsPorts.gateway, 'airlock_gateway_unrecorded_requests_total')) ===
          unrecordedBefore + 1,
      );
      const requestId = response.headers.get('x-request-id')!;
      const { json } = await platform.admin('GET', `/audit/records?request_id=${requestId}`);
      expect(json.data).toHaveLength(0);
    },
    120_000,
  );

  it.each([false, true])(
    'a generation that ends before its record commits is released only once it has (stream: %s)',
    async (stream) => {
      const key = await platform.createKey();
      const generatedBefore =
        (await finished('FINISH_REASON_LENGTH')) + (await finished('FINISH_REASON_STOP'));
      const hold = await holdCommits();
      let answered = false;
      const pending = send(key, HOLD_AGENT, stream, 'chat/completions').then((response) => {
        answered = true;
        return response;
      });
      // The whole generation ran while the record was not durable; the client has had nothing.
      await platform.until(
        async () =>
          (await finished('FINISH_REASON_LENGTH')) + (await finished('FINISH_REASON_STOP')) ===
          generatedBefore + 1,
        60_000,
      );
      expect(answered).toBe(false);
      await hold.release();
      const response = await pending;
      const text = await response.text();
      expect(response.status).toBe(200);
      const sequence = Number(response.headers.get('x-airlock-audit-sequence'));
      expect(sequence).toBeGreaterThan(0);
      expect(response.headers.get('x-airlock-audit-receipt')).toBeTruthy();
      let completionTokens: number;
      if (stream) {
        const events = text
          .split('\n')
          .filter((line) => line.startsWith('data: {'))
          .map((line) => JSON.parse(line.slice(6)) as Json);
        expect(events.length).toBeGreaterThan(1);
        expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
        completionTokens = events.filter((e) => e.choices?.[0]?.delta?.content).length;
      } else {
        completionTokens = (JSON.parse(text) as Json).usage.completion_tokens;
      }
      const records = await platform.auditRecords(response.headers.get('x-request-id')!);
      expect(records.map((r: Json) => r.kind).sort()).toEqual(['completion', 'request']);
      const request = records.find((r: Json) => r.kind === 'request');
      const completion = records.find((r: Json) => r.kind === 'completion');
      expect(request).toMatchObject({ sequence, outcome: 'allowed', user_agent: HOLD_AGENT });
      expect(completion).toMatchObject({ outcome: 'succeeded', status_code: 200 });
      if (!stream) expect(completion.completion_tokens).toBe(completionTokens);
      else expect(completionTokens).toBeGreaterThan(0);
    },
    120_000,
  );

  it.each([false, true])(
    'an ordinary request: one request record, one completion (stream: %s)',
    async (stream) => {
      const key = await platform.createKey();
      const response = await send(key, 'airlock-test/plain', stream, 'completions');
      const text = await response.text();
      expect(response.status).toBe(200);
      expect(text.length).toBeGreaterThan(0);
      const records = await platform.auditRecords(response.headers.get('x-request-id')!);
      expect(records.map((r: Json) => r.kind).sort()).toEqual(['completion', 'request']);
      expect(records.find((r: Json) => r.kind === 'request').sequence).toBe(
        Number(response.headers.get('x-airlock-audit-sequence')),
      );
    },
  );
});
