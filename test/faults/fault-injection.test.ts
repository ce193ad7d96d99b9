// Faults under steady load, on real processes and a real PostgreSQL: the gateway, auth-audit and the worker
// are each killed with SIGKILL and started again, and PostgreSQL is restarted (immediate shutdown: a crash),
// while OpenAI SDK clients keep sending streamed and whole requests. Afterwards, from the database itself:
// no response was served without its committed request record, every request record has a final outcome,
// and chain, Merkle tree and witness verify; every client in flight got an answer or an error, never a hang;
// and the service came back after each fault. The counts are printed (docs/audit-log.md quotes them).
import pg from 'pg';
import { FaultPlatform } from './fault-platform.js';
import { SteadyLoad, type CallResult } from './steady-load.js';
import { chargedUsage, compareOutcomes, countBy as count, readAuditRecords } from './audit-outcomes.js';
import { TEST_MODELS_DIR, describeWithModels } from '../support/test-models.js';

const MODEL = 'stories260K';
/** A client that waits this long has hung: far above any answer here, it detects hangs and times nothing. */
const HANG_DEADLINE_MS = 60_000;
/** The liveness bound asserted after each fault (the measured recovery is printed; it is seconds). */
const RECOVERY_BOUND_MS = 60_000;
/** The gateway's request timeout and lease margin: the lease after which a request is closed as interrupted. */
const REQUEST_TIMEOUT_SECONDS = 15;
const LEASE_MARGIN_SECONDS = 2;
/** Calls in all, and calls that end between two faults (so that each fault hits steady traffic). */
const MAX_CALLS = 600;
const CALLS_BETWEEN_FAULTS = 40;

type Fault = 'gateway' | 'auth-audit' | 'worker' | 'postgres';
const FAULTS: Fault[] = ['gateway', 'auth-audit', 'worker', 'postgres'];

interface FaultReport {
  fault: Fault;
  at: number;
  /** From the kill to the restarted process's /readyz (PostgreSQL: accepting connections). */
  restartedMs: number;
  /** From the kill to the first successful call after it. */
  recoveredMs: number;
  inFlight: CallResult[];
}

describeWithModels('faults under steady load (kill -9 of each service, PostgreSQL restart)', () => {
  const platform = new FaultPlatform({
    modelsDir: TEST_MODELS_DIR ?? '',
    model: MODEL,
    env: {
      gateway: {
        AIRLOCK_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS),
        AIRLOCK_AUDIT_LEASE_MARGIN_SECONDS: String(LEASE_MARGIN_SECONDS),
        AIRLOCK_WORKER_STATUS_INTERVAL_MS: '250',
        AIRLOCK_AUDIT_RETRY_MAX_SECONDS: '1',
      },
      'auth-audit': {
        // The sweeper looks every second; checkpoints every 2 s, so that signing and witnessing go on
        // across the faults.
        AIRLOCK_AUDIT_LEASE_SWEEP_SECONDS: '1',
        AIRLOCK_AUDIT_REQUEST_LEASE_SECONDS: String(REQUEST_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS),
        AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '2',
        AIRLOCK_AUDIT_CHECKPOINT_EVERY_RECORDS: '100',
      },
      worker: {},
    },
  });
  let database: pg.Client;
  let apiKey = '';
  let keyId = '';

  beforeAll(async () => {
    await platform.start();
    const response = await fetch(`${platform.url}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fault-load' }),
    });
    if (response.status !== 201) throw new Error(`key creation: ${response.status} ${await response.text()}`);
    apiKey = ((await response.json()) as { secret: string }).secret;
    keyId = /^alk_([a-z0-9]+)_/.exec(apiKey)![1];
  }, 180_000);

  afterAll(async () => {
    await database?.end();
    await platform.close();
  }, 90_000);

  async function inject(fault: Fault): Promise<void> {
    if (fault === 'postgres') return platform.restartPostgres(1000);
    await platform.kill(fault);
    await platform.startService(fault);
  }

  /** Short calls until one succeeds: the time from the fault to the first answer after it. */
  async function recovery(load: SteadyLoad, since: number): Promise<number> {
    while (Date.now() - since < RECOVERY_BOUND_MS) {
      const probe = await load.call('chat_short');
      if (probe.outcome === 'ok') return probe.endedAt - since;
      await new Promise((r) => setTimeout(r, 500));
    }
    return Number.POSITIVE_INFINITY;
  }

  it('serves nothing unrecorded, ends every request in an outcome, verifies, never hangs, and recovers', async () => {
    const testStarted = Date.now();
    const load = new SteadyLoad(`${platform.url}/v1`, apiKey, MODEL, {
      concurrency: 6,
      deadlineMs: HANG_DEADLINE_MS,
      maxCalls: MAX_CALLS,
      backoffMs: 1000,
    });
    load.start();
    const reports: FaultReport[] = [];
    let pinnedStream: CallResult | undefined;
    try {
      await load.ended(CALLS_BETWEEN_FAULTS, 60_000);
      for (const fault of FAULTS) {
        // A long stream is mid-way when the gateway dies: the usage its worker did must still be charged.
        let pinned: Promise<CallResult> | undefined;
        if (fault === 'gateway') {
          const seen: Partial<CallResult> = {};
          pinned = load.call('chat_stream_long', seen);
          while (!seen.chunks && !seen.outcome) await new Promise((r) => setTimeout(r, 5));
        }
        const at = Date.now();
        await inject(fault);
        const restartedMs = Date.now() - at;
        if (pinned) pinnedStream = await pinned;
        const recoveredMs = await recovery(load, at);
        reports.push({ fault, at, restartedMs, recoveredMs, inFlight: [] });
        const since = load.results.filter((c) => c.endedAt >= at);
        process.stderr.write(
          `fault ${fault}: ready again in ${(restartedMs / 1000).toFixed(1)} s, answering in ${(recoveredMs / 1000).toFixed(1)} s; ` +
            `calls since: ${JSON.stringify(count(since.map((c) => c.outcome)))}\n`,
        );
        await load.ended(load.results.length + CALLS_BETWEEN_FAULTS, 90_000);
      }
    } finally {
      await load.stop();
    }
    const calls = load.results;
    for (const report of reports)
      report.inFlight = calls.filter((c) => c.startedAt < report.at && c.endedAt > report.at);

    // Every lease runs out and is swept: afterwards no request is left open.
    database = new pg.Client({ connectionString: platform.databaseUrl });
    await database.connect();
    // Closed rows stay a day (what each was charged, for a late usage report): only unclosed ones count.
    const openRequests = async () =>
      Number(
        (await database.query('select count(*) as n from audit_open_requests where closed_at is null'))
          .rows[0].n,
      );
    const sweptBy = Date.now() + (REQUEST_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS + 15) * 1000;
    while ((await openRequests()) > 0 && Date.now() < sweptBy) await new Promise((r) => setTimeout(r, 500));

    // The worker's usage reports held while auth-audit or PostgreSQL was down are delivered (its backoff
    // stops at 30 s).
    const deliveredBy = Date.now() + 45_000;
    while (
      (await platform.metric('worker', 'airlock_worker_usage_reports_pending')) > 0 &&
      Date.now() < deliveredBy
    )
      await new Promise((r) => setTimeout(r, 500));

    const records = await readAuditRecords(database);
    const findings = compareOutcomes(calls, records);
    const completions = records.filter((r) => r.kind === 'completion');
    const hangs = calls.filter((c) => c.outcome === 'hang');
    const truncated = calls.filter((c) => c.outcome === 'truncated');

    // Usage: what each request is recorded as having used is what the key was charged, in sum; and the
    // streams cut by the gateway's kill are charged at least the tokens their clients had received (the
    // worker reported them: the gateway that counted them is gone) and their prompts.
    const usage = chargedUsage(records);
    const keyRequests = records.filter((r) => r.kind === 'request' && r.principal_id === `key:${keyId}`);
    const recordedTokens = keyRequests.reduce((sum, r) => {
      const used = usage.get(r.request_id);
      return sum + (used ? used.prompt + used.completion : 0);
    }, 0);
    const chargedTokens = (
      await database.query<{ tokens: string }>(
        "select tokens from quota_counters where subject = $1 and window_kind = 'day'",
        [`key:${keyId}`],
      )
    ).rows.reduce((sum, row) => sum + Number(row.tokens), 0);
    const gatewayKill = reports.find((r) => r.fault === 'gateway')!;
    const cutStreams = gatewayKill.inFlight
      .filter((c) => c.chunks > 0 && c.requestId)
      .map((c) => ({ chunks: c.chunks, ...usage.get(c.requestId) }));

    // Nothing left behind by the dead: no sequence still generating for a vanished client, no request or
    // completion record still held in the gateway.
    const leftovers = {
      workerRunning: await platform.metric('worker', 'airlock_worker_running_requests'),
      workerQueued: await platform.metric('worker', 'airlock_worker_queued_requests'),
      gatewayInFlight: await platform.metric('gateway', 'airlock_gateway_in_flight_requests'),
      gatewayAuditPending: await platform.metric('gateway', 'airlock_gateway_audit_completion_pending'),
    };

    const verify = await fetch(`${platform.url}/admin/v1/audit/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const verified = (await verify.json()) as Record<string, unknown>;
    const offline = await platform.offlineVerify();

    const summary = {
      seconds: Math.round((Date.now() - testStarted) / 1000),
      calls: calls.length,
      ok: calls.filter((c) => c.outcome === 'ok').length,
      errors: count(calls.filter((c) => c.outcome !== 'ok').map((c) => c.outcome)),
      meanSecondsByShape: Object.fromEntries(
        [...new Set(calls.map((c) => c.shape))].map((shape) => {
          const of = calls.filter((c) => c.shape === shape);
          const mean = of.reduce((sum, c) => sum + c.endedAt - c.startedAt, 0) / of.length / 1000;
          return [shape, Number(mean.toFixed(2))];
        }),
      ),
      records: records.length,
      requestRecords: count(records.filter((r) => r.kind === 'request').map((r) => r.outcome)),
      outcomes: count(completions.map((r) => `${r.outcome}${r.error_class ? `:${r.error_class}` : ''}`)),
      served: findings.served.length,
      servedUnrecorded: findings.unrecorded.length,
      allowedUnfinished: findings.unfinished.length,
      doubleCompletions: findings.doubled.length,
      misstated: findings.misstated.length,
      // Refused while auth-audit or PostgreSQL was down (nothing ran; the log could not be written then), or
      // cut off with the gateway before any header came.
      refusedUnrecorded: count(findings.refusedUnrecorded.map((c) => c.outcome)),
      openRequestsLeft: await openRequests(),
      leftovers,
      usage: { recordedTokens, chargedTokens, streamsCutByGatewayKill: cutStreams },
      faults: reports.map((r) => ({
        fault: r.fault,
        restartSeconds: Number((r.restartedMs / 1000).toFixed(1)),
        recoverySeconds: Number((r.recoveredMs / 1000).toFixed(1)),
        inFlight: r.inFlight.length,
        inFlightEnded: count(r.inFlight.map((c) => c.outcome)),
      })),
      verify: {
        ok: verified.ok,
        records_checked: verified.records_checked,
        checkpoints_checked: verified.checkpoints_checked,
        witnessed_checkpoints: verified.witnessed_checkpoints,
        message: verified.message,
      },
      offlineVerify: {
        ok: offline.ok,
        records: offline.records,
        witnessed: offline.witnessed,
        message: offline.message,
      },
    };
    process.stdout.write(`\nfault-injection summary:\n${JSON.stringify(summary, null, 2)}\n`);
    const failureContext = () => `${JSON.stringify(summary)}\n${platform.logs()}`;

    const { unrecorded, unfinished, doubled, misstated } = findings;
    expect({ unrecorded, context: unrecorded.length ? failureContext() : '' }).toEqual({
      unrecorded: [],
      context: '',
    });
    expect(unfinished.map((r) => `${r.sequence} ${r.action}`)).toEqual([]);
    expect(doubled).toEqual([]);
    expect(misstated).toEqual([]);
    expect(summary.openRequestsLeft).toBe(0);
    expect(chargedTokens).toBe(recordedTokens);
    expect(pinnedStream).toMatchObject({ outcome: 'connection', status: 200 });
    expect(cutStreams.map((c) => c.chunks)).toContain(pinnedStream!.chunks);
    for (const cut of cutStreams) {
      expect(cut.prompt).toBeGreaterThan(0);
      expect(cut.completion).toBeGreaterThanOrEqual(cut.chunks);
    }
    expect(leftovers).toEqual({
      workerRunning: 0,
      workerQueued: 0,
      gatewayInFlight: 0,
      gatewayAuditPending: 0,
    });
    expect(hangs).toEqual([]);
    expect(truncated).toEqual([]);
    expect(verified).toMatchObject({ ok: true });
    // The export is read after the records above and the verify call (audited reads): it holds more.
    expect(offline).toMatchObject({ ok: true });
    expect(Number(offline.records)).toBeGreaterThanOrEqual(records.length);
    expect(Number(verified.witnessed_checkpoints)).toBeGreaterThan(0);
    for (const report of reports) expect(report.recoveredMs).toBeLessThan(RECOVERY_BOUND_MS);
    // The faults hit traffic: calls were in flight at each, and the load went on after the last.
    expect(reports.map((r) => r.inFlight.length > 0)).toEqual(FAULTS.map(() => true));
    expect(summary.ok).toBeGreaterThan(FAULTS.length * CALLS_BETWEEN_FAULTS * 0.5);
  }, 300_000);
});
