import { status } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { createLogger } from '@airlock/telemetry';
import type { audit } from '@airlock/contracts';
import { UsageReporter, type UsageReporterOptions } from './usage-reporter.js';

// The queue's bounds and retry policy, counted. The delivery itself (real auth-audit, mTLS) is tested in
// test/e2e/usage-durability.test.ts.
describe('UsageReporter', () => {
  const logger = createLogger({ service: 'worker', level: 'silent' });
  const report = (n: number) => ({
    requestId: `r${n}`,
    generationId: `g${n}`,
    promptTokens: n,
    completionTokens: 1,
  });
  const metric = async (registry: Registry, name: string, labels = '') => {
    const text = await registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line ? Number(line.split(' ')[1]) : 0;
  };

  function reporter(
    send: (r: audit.ReportUsageRequest) => Promise<void>,
    options: Partial<UsageReporterOptions>,
  ) {
    const registry = new Registry();
    return {
      registry,
      usage: new UsageReporter(send, 'w1', registry, logger, {
        maxPending: 3,
        maxAgeMs: 3600_000,
        retryBaseMs: 1,
        retryMaxMs: 2,
        ...options,
      }),
    };
  }

  it('holds at most maxPending reports while auth-audit is down, then delivers what is left, oldest first', async () => {
    let up = false;
    const delivered: string[] = [];
    const { usage, registry } = reporter(
      (r) => {
        if (!up) return Promise.reject(Object.assign(new Error('down'), { code: status.UNAVAILABLE }));
        delivered.push(r.requestId);
        return Promise.resolve();
      },
      { concurrency: 1 },
    );
    for (let n = 1; n <= 10; n++) usage.report(report(n));
    expect(usage.pending).toBeLessThanOrEqual(3);
    expect(await metric(registry, 'airlock_worker_usage_reports_dropped_total', '{reason="full"}')).toBe(7);
    up = true;
    expect(await usage.flush(5_000)).toBe(true);
    // r1 was in flight when the queue filled; the others waiting were pushed out oldest first.
    expect(delivered).toEqual(['r1', 'r9', 'r10']);
    expect(await metric(registry, 'airlock_worker_usage_reports_delivered_total')).toBe(3);
    expect(await metric(registry, 'airlock_worker_usage_reports_pending')).toBe(0);
    usage.close();
  });

  it('drops a report auth-audit refuses (no retry can help) and one older than maxAgeMs', async () => {
    let now = 0;
    let calls = 0;
    const { usage, registry } = reporter(
      () => {
        calls++;
        return Promise.reject(Object.assign(new Error('refused'), { code: status.PERMISSION_DENIED }));
      },
      { clock: () => now },
    );
    usage.report(report(1));
    expect(await usage.flush(5_000)).toBe(true);
    expect(calls).toBe(1);
    expect(await metric(registry, 'airlock_worker_usage_reports_dropped_total', '{reason="refused"}')).toBe(
      1,
    );

    // A clock that moves 10 ms at every reading: the report ages while it is retried.
    const down = reporter(
      () => Promise.reject(Object.assign(new Error('down'), { code: status.UNAVAILABLE })),
      { clock: () => (now += 10), maxAgeMs: 25 },
    );
    down.usage.report(report(2));
    expect(await down.usage.flush(5_000)).toBe(true);
    expect(
      await metric(down.registry, 'airlock_worker_usage_reports_dropped_total', '{reason="expired"}'),
    ).toBe(1);
    usage.close();
    down.usage.close();
  });

  it('sends nothing without an auth-audit address', () => {
    const registry = new Registry();
    const usage = new UsageReporter(undefined, 'w1', registry, logger, { maxPending: 3, maxAgeMs: 1 });
    usage.report(report(1));
    expect(usage.enabled).toBe(false);
    expect(usage.pending).toBe(0);
  });
});
