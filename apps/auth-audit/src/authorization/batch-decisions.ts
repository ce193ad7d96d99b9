import type { Kysely } from 'kysely';
import type { AuthAuditDatabase } from '../database/database-schema.js';
import { roleMayPerform } from '../auth/permissions.js';
import type { Denial, Principal } from '../auth/principal.js';
import { credentialKinds, type PresentedCredential, type PrincipalVerdict } from '../auth/credentials.js';
import { apiKeyRepository } from '../keys/api-key.repository.js';
import { tenantRepository, type ContentCaptureMode, type Tenant } from '../tenants/tenant.repository.js';
import { QuotaLedger, type QuotaSubject, type RateLimitView } from '../quota/quota-ledger.js';
import { contentAssociatedData, type ContentSealer } from '../audit/content-sealer.js';
import type { ReceiptEntry } from '../audit/receipts.js';
import { emptyDraft, type AuditRecordDraft, type AuditRecordRow } from '../audit/audit-record.js';
import { appendToChain, type ChainHead } from '../audit/audit-chain.js';
import { AuthAuditError, notFound } from '../errors.js';
import {
  addReport,
  openRequestsRepository,
  readSettlementState,
  type OpenRequest,
  type RequestOrigin,
  type ReportedUsage,
  type UsageReport,
} from '../audit/open-requests.repository.js';
import { chargedNow, usageDraft, type TokenUsage } from '../audit/usage-settlement.js';
import type { RefusalLimiter } from '../audit/refusal-limiter.js';
import { AUTHENTICATION_DENIALS } from '../auth/principal.js';
import type { AuthorizeAction } from './actions.js';

export type { PresentedCredential };

export interface AuthorizeOp {
  type: 'authorize';
  credential: PresentedCredential;
  action: AuthorizeAction;
  model: string;
  requestId: string;
  clientAddress: string;
  userAgent: string;
  /** OpenAI's safety_identifier / user as the application sent it; '' when none. */
  endUser?: string;
  requestBody?: Uint8Array;
  /** The client's own x-request-id (request_id is the gateway's). */
  clientRequestId: string;
  /** Tokens to reserve at admission (prompt estimate + max_tokens × choices); 0: the default estimate. */
  reserveTokens: number;
  /** How long until an allowed request without a completion is closed as interrupted. */
  leaseMs: number;
}

/** A record decided before the batch: a refusal the gateway reports, an aggregate of refusals. */
export interface RecordOp {
  type: 'record';
  draft: AuditRecordDraft;
  /** Set for unauthenticated refusals: counted per source by the refusal limiter. */
  refusalSource?: string;
}

/** Close an open request whose lease expired: its gateway is gone; record what is known. */
export interface InterruptOp {
  type: 'interrupt';
  requestId: string;
}

/** A worker's usage of one generation (ReportUsage): counted once, charged with or after the completion. */
export interface UsageOp {
  type: 'usage';
  report: UsageReport;
}

/** How the batch reserves tokens and bounds refusal records. */
export interface BatchOptions {
  refusals?: RefusalLimiter;
  /** Reserved for a quota'd request that names no bound of its own. */
  defaultReserveTokens?: number;
  /** The limiter's answer per op, kept across attempts at the same op (see admitRefusal). */
  refusalAnswers?: WeakMap<BatchOp, boolean>;
}

export interface CompleteOp {
  type: 'complete';
  requestId: string;
  outcome: 'succeeded' | 'failed' | 'cancelled';
  statusCode: number;
  errorClass: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  latencyUs: number;
  ttftUs: number;
  worker: string;
  responseBody?: Uint8Array;
  /** The whole response's size when responseBody is only its first part (over the audit limit). */
  responseBodyBytes?: number;
  /** The answering model's file SHA-256(s) and signer(s), as the workers reported them. */
  modelSha256?: string;
  modelSigner?: string;
}

/**
 * Actions without a Complete, so no lease: models.manage ends with the admin action record the gateway
 * appends; a console sign-in is complete once its request record is committed.
 */
const ENDS_WITHOUT_COMPLETE: ReadonlySet<string> = new Set(['models.manage', 'console.sign_in']);

export type BatchOp = AuthorizeOp | CompleteOp | RecordOp | InterruptOp | UsageOp;

export interface AuthorizeDecision {
  allowed: boolean;
  denial?: Denial;
  principal?: Principal;
  rateLimit?: RateLimitView;
  allowedModels: string[];
  allModels: boolean;
  /** The tenant's content capture mode, for the gateway's stored-response policy; absent when refused. */
  contentCapture?: ContentCaptureMode;
  sequence: number;
  /** The committed record's hash (for the client's receipt). */
  recordHash?: string;
  /** The request records committed in the same batch, whose receipts are signed together (and this one's index). */
  receiptGroup?: ReceiptEntry[];
  receiptIndex?: number;
}

export interface CompleteResult {
  sequence: number;
  recordHash?: string;
}

export type BatchResult = AuthorizeDecision | CompleteResult | AuthAuditError;

type Db = Kysely<AuthAuditDatabase>;

/** The outcome of a locked batch: its results, the records it appended and the quota ledger it committed. */
export interface LockedBatch {
  results: BatchResult[];
  /** The first record it appended (none when it appended nothing). */
  first?: AuditRecordRow;
  /** The head it left: its last record, or the head it locked and left as it was (none: not read). */
  head?: ChainHead;
  ledger: QuotaLedger;
}

/** Ops that only admit and record (no request to settle): the ones a pipelined batch may hold. */
export type AdmissionOp = AuthorizeOp | RecordOp;

export function isAdmission(op: BatchOp): op is AdmissionOp {
  return op.type === 'authorize' || op.type === 'record';
}

/** What deciding admissions needs from the database besides quota counters; read without locks. */
export interface AdmissionInputs {
  tenants: Map<string, Tenant>;
  /** Per Authorize op, in order: its credential's verdict and the role/model denial, if any. */
  verdicts: PrincipalVerdict[];
  prechecked: (Denial | undefined)[];
  /** The quota subjects the Authorize ops charge. */
  quotaSubjects: Set<string>;
}

/** Keys and tenants of the Authorize ops, then authentication, role and model checks (no locks needed). */
export async function readAdmissionInputs(db: Db, ops: BatchOp[], now: Date): Promise<AdmissionInputs> {
  const authorizeOps = ops.filter((op): op is AuthorizeOp => op.type === 'authorize');
  const keyIds = authorizeOps.flatMap((op) =>
    op.credential.type === 'api_key' ? [op.credential.key.id] : [],
  );
  const { keys, tenants } = await apiKeyRepository.findWithTenants(db, [...new Set(keyIds)]);
  const tokenTenants = new Set<string>();
  for (const op of authorizeOps) {
    if (op.credential.type === 'token' && op.credential.identity.tenant)
      tokenTenants.add(op.credential.identity.tenant);
  }
  for (const id of tenants.keys()) tokenTenants.delete(id);
  for (const [id, tenant] of await tenantRepository.findByIds(db, [...tokenTenants])) tenants.set(id, tenant);
  const verdicts = authorizeOps.map((op) => credentialKinds.principal(op.credential, { keys, tenants }, now));
  const prechecked = authorizeOps.map((op, index) => precheck(op, verdicts[index]));
  const quotaSubjects = new Set<string>();
  authorizeOps.forEach((op, index) => {
    const verdict = verdicts[index];
    if (op.action.quota && !prechecked[index] && verdict.ok) {
      for (const subject of subjectsOf(verdict.principal, verdict.tenant)) quotaSubjects.add(subject.subject);
    }
  });
  return { tenants, verdicts, prechecked, quotaSubjects };
}

/** Admissions decided: a result per op, the drafts to append and the requests to open. */
export interface AdmissionDecisions {
  results: BatchResult[];
  drafts: AuditRecordDraft[];
  /** For each draft, the index of the result that learns its sequence and hash. */
  resultIndexOfDraft: number[];
  opened: OpenRequest[];
}

/** Decides Authorize and record ops in arrival order against the ledger; no I/O. */
export function decideAdmissions(
  ops: AdmissionOp[],
  inputs: AdmissionInputs,
  ledger: QuotaLedger,
  sealer: ContentSealer,
  now: Date,
  options: BatchOptions = {},
): AdmissionDecisions {
  const decided: AdmissionDecisions = { results: [], drafts: [], resultIndexOfDraft: [], opened: [] };
  let authorizeIndex = 0;
  for (const op of ops) {
    const index = op.type === 'authorize' ? authorizeIndex++ : -1;
    const { result, draft } = admission(op, inputs, index, ledger, sealer, now, options, decided.opened);
    if (draft) {
      decided.drafts.push(draft);
      decided.resultIndexOfDraft.push(decided.results.length);
    }
    decided.results.push(result);
  }
  return decided;
}

/** Gives each result whose op wrote a record that record's sequence and hash. */
export function settleResults(
  results: BatchResult[],
  resultIndexOfDraft: number[],
  rows: AuditRecordRow[],
): BatchResult[] {
  rows.forEach((row, draftIndex) => {
    const result = results[resultIndexOfDraft[draftIndex]] as AuthorizeDecision | CompleteResult;
    result.sequence = row.sequence;
    result.recordHash = row.hash;
  });
  return results;
}

/** One Authorize (its `authorizeIndex` into inputs) or record op: its result, and its record unless counted. */
function admission(
  op: AdmissionOp,
  inputs: AdmissionInputs,
  authorizeIndex: number,
  ledger: QuotaLedger,
  sealer: ContentSealer,
  now: Date,
  options: BatchOptions,
  opened: OpenRequest[],
): { result: BatchResult; draft?: AuditRecordDraft } {
  if (op.type === 'record') {
    const counted =
      op.refusalSource !== undefined &&
      options.refusals !== undefined &&
      !admitRefusal(op, options, op.refusalSource, op.draft.error_class, now);
    return { result: { sequence: 0 }, draft: counted ? undefined : op.draft };
  }
  const verdict = inputs.verdicts[authorizeIndex];
  const decision = decide(op, verdict, inputs.prechecked[authorizeIndex], ledger, options, opened, now);
  const tenant = verdict.ok ? verdict.tenant : undefined;
  const refusedUnauthenticated =
    decision.denial !== undefined && AUTHENTICATION_DENIALS.has(decision.denial.code);
  const recorded =
    !refusedUnauthenticated ||
    !options.refusals ||
    admitRefusal(op, options, op.clientAddress, decision.denial!.code, now);
  return { result: decision, draft: recorded ? authorizeDraft(op, decision, tenant, sealer) : undefined };
}

/**
 * The refusal limiter's answer for this op, asked once: a batch decided again (its write found the head
 * moved, or it is committed op by op after a failure) must not count the same refusal twice.
 */
function admitRefusal(op: BatchOp, options: BatchOptions, source: string, code: string, now: Date): boolean {
  const earlier = options.refusalAnswers?.get(op);
  if (earlier !== undefined) return earlier;
  const admitted = options.refusals!.admit(source, code, now.getTime());
  options.refusalAnswers?.set(op, admitted);
  return admitted;
}

/**
 * One group-commit batch, inside one transaction: look up keys, tenants and the requests being completed;
 * decide each Authorize in arrival order (authentication, role, model allowlist, quotas); charge completed
 * tokens; append every record to the chain. Returns a result per op, in order. `onDecided` hears each
 * Authorize's decision once all are made and before anything is written: the decision holds if the
 * transaction commits and is void if it rolls back.
 */
export async function runBatch(
  trx: Db,
  ops: BatchOp[],
  sealer: ContentSealer,
  now: Date,
  options: BatchOptions = {},
  onDecided?: (opIndex: number, decision: AuthorizeDecision) => void,
): Promise<LockedBatch> {
  const admissions = await readAdmissionInputs(trx, ops, now);
  const { tenants, quotaSubjects } = admissions;
  const completeOps = ops.filter((op): op is CompleteOp => op.type === 'complete');
  const interruptOps = ops.filter((op): op is InterruptOp => op.type === 'interrupt');
  const usageOps = ops.filter((op): op is UsageOp => op.type === 'usage');
  const settlingIds = [
    ...[...completeOps, ...interruptOps].map((op) => op.requestId),
    ...usageOps.map((op) => op.report.requestId),
  ];

  const settling = await readSettlementState(
    trx,
    settlingIds,
    completeOps.map((op) => op.requestId),
  );
  // closedRows: closed already (its record is written), what it was charged, so a later report adds only
  // its excess.
  const { origins, open, reported, closed: closedRows } = settling;
  // A Complete without an open request is a retry of one already committed, or comes after a sweep.
  const written = new Map([...settling.completions].filter(([id]) => !open.has(id)));

  // Tenants named by completed requests, when not already loaded with a key or token.
  for (const [id, tenant] of settling.tenants) if (!tenants.has(id)) tenants.set(id, tenant);

  for (const id of settlingIds) {
    const origin = origins.get(id);
    const subjects = open.get(id)?.subjects ?? closedRows.get(id)?.subjects;
    for (const subject of subjects ?? (origin ? originSubjects(origin) : [])) quotaSubjects.add(subject);
  }
  const ledger = await QuotaLedger.lock(trx, quotaSubjects, now);

  const results: BatchResult[] = [];
  const drafts: AuditRecordDraft[] = [];
  const resultIndexOfDraft: number[] = [];
  const opened: OpenRequest[] = [];
  const newReports: UsageReport[] = [];
  /** Closes an open request, or raises a closed one's charge, keeping what it has been charged in all. */
  const charges = new Map<string, TokenUsage & { requestId: string }>();
  const closeWith = (lease: OpenRequest, usage: TokenUsage): void => {
    open.delete(lease.requestId);
    closedRows.set(lease.requestId, {
      requestId: lease.requestId,
      openedAt: lease.openedAt,
      subjects: lease.subjects,
      chargedPromptTokens: usage.promptTokens,
      chargedCompletionTokens: usage.completionTokens,
    });
    charges.set(lease.requestId, { requestId: lease.requestId, ...usage });
  };
  /** Charges a closed request's usage beyond what it was charged; returns the new totals (undefined: none). */
  const chargeExcess = (requestId: string, usage: TokenUsage): TokenUsage | undefined => {
    const prior = closedRows.get(requestId);
    if (!prior) return undefined;
    const { totals, excess } = chargedNow(prior, usage);
    if (excess === 0) return undefined;
    ledger.charge(prior.subjects, excess);
    closedRows.set(requestId, {
      ...prior,
      chargedPromptTokens: totals.promptTokens,
      chargedCompletionTokens: totals.completionTokens,
    });
    charges.set(requestId, { requestId, ...totals });
    return totals;
  };
  const addDraft = (draft: AuditRecordDraft): void => {
    drafts.push(draft);
    resultIndexOfDraft.push(results.length);
  };
  let authorizeIndex = 0;
  for (const op of ops) {
    if (isAdmission(op)) {
      const index = op.type === 'authorize' ? authorizeIndex++ : -1;
      const { result, draft } = admission(op, admissions, index, ledger, sealer, now, options, opened);
      if (draft) addDraft(draft);
      results.push(result);
    } else if (op.type === 'interrupt') {
      const origin = origins.get(op.requestId);
      const lease = open.get(op.requestId);
      if (!lease || !origin) {
        if (lease) closeWith(lease, { promptTokens: 0, completionTokens: 0 });
        results.push({ sequence: 0 });
        continue;
      }
      const usage = reported.get(op.requestId);
      ledger.settle(lease.subjects, lease.reservedTokens, usageTotal(usage), lease.openedAt);
      closeWith(lease, {
        promptTokens: usage?.promptTokens ?? 0,
        completionTokens: usage?.completionTokens ?? 0,
      });
      addDraft(interruptedDraft(op.requestId, origin, usage, tenants.get(origin.tenant)));
      results.push({ sequence: 0 });
    } else if (op.type === 'usage') {
      const report = op.report;
      // A retried report (same generation) counts nothing twice.
      if (!addReport(reported, report)) {
        results.push({ sequence: 0 });
        continue;
      }
      newReports.push(report);
      const origin = origins.get(report.requestId);
      const sum = reported.get(report.requestId)!;
      // Still open: its completion or interruption settles it with this report. Closed: charge the excess.
      const totals = origin ? chargeExcess(report.requestId, sum) : undefined;
      if (totals && origin) {
        addDraft(usageDraft(report.requestId, origin, totals, sum.workers));
      }
      results.push({ sequence: 0 });
    } else {
      const origin = origins.get(op.requestId);
      if (!origin) {
        results.push(notFound(`no authorised request with id "${op.requestId}"`));
        continue;
      }
      const lease = open.get(op.requestId);
      const earlier = written.get(op.requestId);
      if (!lease && earlier && earlier.outcome !== 'interrupted') {
        // A retried Complete whose first try committed: the same answer, no second record.
        results.push({ sequence: earlier.sequence });
        continue;
      }
      const usage = withReported(op, reported.get(op.requestId));
      if (lease) {
        ledger.settle(
          lease.subjects,
          lease.reservedTokens,
          usage.promptTokens + usage.completionTokens,
          lease.openedAt,
        );
        closeWith(lease, usage);
      } else if (closedRows.has(op.requestId)) {
        // After an interruption: only what this completion adds to what the interruption charged.
        chargeExcess(op.requestId, usage);
      } else {
        // Its bookkeeping row is gone (closed long ago): charged as the record states.
        ledger.charge(originSubjects(origin), usage.promptTokens + usage.completionTokens);
      }
      const draft = completeDraft({ ...op, ...usage }, origin, tenants.get(origin.tenant), sealer);
      const flags: string[] = [];
      // The digest covers only the stored prefix; the flag says so, and details_json the full size.
      if (op.responseBodyBytes) {
        flags.push('response_body:truncated');
        draft.details_json = JSON.stringify({ response_body_bytes: op.responseBodyBytes });
      }
      // The sweeper closed it as interrupted before this (late) completion came: it tells the rest.
      if (earlier?.outcome === 'interrupted') flags.push('after_interrupted');
      draft.field_flags = flags.join(',');
      addDraft(draft);
      results.push({ sequence: 0 });
    }
  }
  if (onDecided) {
    ops.forEach((op, index) => {
      if (op.type === 'authorize') onDecided(index, results[index] as AuthorizeDecision);
    });
  }
  await openRequestsRepository.open(trx, opened);
  await openRequestsRepository.insertReports(trx, newReports, now);
  await openRequestsRepository.saveCharges(trx, [...charges.values()], now);
  const rows = await appendToChain(trx, drafts, now, ledger.changedTotals(), settling.head);
  settleResults(results, resultIndexOfDraft, rows);
  return { results, first: rows[0], head: rows.at(-1) ?? settling.head, ledger };
}

function usageTotal(usage: ReportedUsage | undefined): number {
  return usage ? usage.promptTokens + usage.completionTokens : 0;
}

/**
 * A cancelled generation's gateway saw no usage (it comes with the finish); the worker's own report is
 * the better count, so the larger of the two is recorded and charged (prompt tokens of cancelled streams).
 */
function withReported(
  op: CompleteOp,
  usage: ReportedUsage | undefined,
): { promptTokens: number; completionTokens: number } {
  return {
    promptTokens: Math.max(op.promptTokens, usage?.promptTokens ?? 0),
    completionTokens: Math.max(op.completionTokens, usage?.completionTokens ?? 0),
  };
}

/** Role and model checks; a denial here needs no quota counters. */
function precheck(op: AuthorizeOp, verdict: PrincipalVerdict): Denial | undefined {
  if (!verdict.ok) return verdict.denial;
  const { principal, tenant } = verdict;
  if (!roleMayPerform(principal.role, op.action.operation)) {
    return { code: 'role_forbidden', message: `role "${principal.role}" may not perform ${op.action.name}` };
  }
  if (op.action.needsModel && !modelAllowed(op.model, principal, tenant)) {
    return { code: 'model_forbidden', message: `model "${op.model}" is not allowed for this credential` };
  }
  return undefined;
}

function decide(
  op: AuthorizeOp,
  verdict: PrincipalVerdict,
  denial: Denial | undefined,
  ledger: QuotaLedger,
  options: BatchOptions,
  opened: OpenRequest[],
  now: Date,
): AuthorizeDecision {
  const principal = verdict.ok ? verdict.principal : undefined;
  const tenant = verdict.ok ? verdict.tenant : undefined;
  const models = principal
    ? { ...allowedModels(principal, tenant), contentCapture: tenant?.contentCapture ?? 'digest' }
    : { allowedModels: [], allModels: false };
  if (denial) return { allowed: false, denial, principal, sequence: 0, allowedModels: [], allModels: false };
  const lease = { requestId: op.requestId, openedAt: now, leaseUntil: new Date(now.getTime() + op.leaseMs) };
  if (!op.action.quota) {
    if (!ENDS_WITHOUT_COMPLETE.has(op.action.name))
      opened.push({ ...lease, subjects: [], reservedTokens: 0 });
    return { allowed: true, principal, sequence: 0, ...models };
  }
  const subjects = subjectsOf(principal!, tenant);
  // Reserved now, settled at completion: concurrent requests overshoot a budget by at most one reservation.
  const reserve = op.reserveTokens > 0 ? op.reserveTokens : (options.defaultReserveTokens ?? 0);
  const admitted = ledger.admit(subjects, reserve);
  if (!admitted.denial) {
    opened.push({ ...lease, subjects: subjects.map((s) => s.subject), reservedTokens: reserve });
  }
  if (admitted.denial) {
    return {
      allowed: false,
      denial: admitted.denial,
      principal,
      rateLimit: admitted.rateLimit,
      sequence: 0,
      ...models,
    };
  }
  return { allowed: true, principal, rateLimit: admitted.rateLimit, sequence: 0, ...models };
}

function modelAllowed(model: string, principal: Principal, tenant: Tenant | undefined): boolean {
  const keyAllows = principal.allowedModels.length === 0 || principal.allowedModels.includes(model);
  const tenantAllows = !tenant || tenant.allowedModels.length === 0 || tenant.allowedModels.includes(model);
  return keyAllows && tenantAllows;
}

function allowedModels(
  principal: Principal,
  tenant: Tenant | undefined,
): { allowedModels: string[]; allModels: boolean } {
  const own = principal.allowedModels;
  const tenants = tenant?.allowedModels ?? [];
  if (own.length === 0 && tenants.length === 0) return { allowedModels: [], allModels: true };
  if (own.length === 0) return { allowedModels: tenants, allModels: false };
  if (tenants.length === 0) return { allowedModels: own, allModels: false };
  return { allowedModels: own.filter((model) => tenants.includes(model)), allModels: false };
}

function subjectsOf(principal: Principal, tenant: Tenant | undefined): QuotaSubject[] {
  const subjects: QuotaSubject[] = [];
  if (principal.keyId) subjects.push({ subject: `key:${principal.keyId}`, limits: principal.limits });
  if (tenant) subjects.push({ subject: `tenant:${tenant.id}`, limits: tenant.limits });
  return subjects;
}

function originSubjects(origin: RequestOrigin): string[] {
  const subjects: string[] = [];
  if (origin.principalId.startsWith('key:')) subjects.push(origin.principalId);
  if (origin.tenant) subjects.push(`tenant:${origin.tenant}`);
  return subjects;
}

function authorizeDraft(
  op: AuthorizeOp,
  decision: AuthorizeDecision,
  tenant: Tenant | undefined,
  sealer: ContentSealer,
): AuditRecordDraft {
  const principal = decision.principal;
  // Without a known tenant (refused credentials) the default capture applies: the digest.
  const capture = tenant?.contentCapture ?? 'digest';
  const sealed = sealer.seal(op.requestBody, capture, contentAssociatedData(op.requestId, 'request'));
  return {
    ...emptyDraft(),
    kind: 'request',
    request_id: op.requestId,
    client_request_id: op.clientRequestId,
    principal_id: principal?.id ?? presentedId(op.credential),
    principal_kind:
      principal?.kind ??
      (op.credential.type === 'api_key' ? 'api_key' : op.credential.type === 'token' ? 'oidc_token' : ''),
    tenant: principal?.tenant ?? '',
    role: principal?.role ?? '',
    action: op.action.name,
    model: op.model,
    client_address: op.clientAddress,
    user_agent: op.userAgent,
    outcome: decision.allowed ? 'allowed' : 'denied',
    status_code: decision.allowed ? 0 : statusForDenial(decision.denial!),
    error_class: decision.denial?.code ?? '',
    content_capture: capture,
    request_digest: sealed.digest,
    request_ciphertext: sealed.ciphertext,
    content_key_id: sealed.keyId,
    details_json: op.endUser ? JSON.stringify({ end_user: op.endUser }) : '',
  };
}

/** Who presented a refused credential, as far as is known without trusting it. */
function presentedId(credential: PresentedCredential): string {
  if (credential.type === 'api_key') return `key:${credential.key.id}`;
  if (credential.type === 'token') return `oidc:${credential.identity.subject}`;
  return '';
}

function completeDraft(
  op: CompleteOp,
  origin: RequestOrigin,
  tenant: Tenant | undefined,
  sealer: ContentSealer,
): AuditRecordDraft {
  const capture = tenant?.contentCapture ?? 'digest';
  const sealed = sealer.seal(op.responseBody, capture, contentAssociatedData(op.requestId, 'response'));
  return {
    ...emptyDraft(),
    kind: 'completion',
    request_id: op.requestId,
    principal_id: origin.principalId,
    principal_kind: origin.principalKind,
    tenant: origin.tenant,
    role: origin.role,
    action: origin.action,
    model: origin.model,
    worker: op.worker,
    outcome: op.outcome,
    status_code: op.statusCode,
    error_class: op.errorClass,
    prompt_tokens: op.promptTokens,
    completion_tokens: op.completionTokens,
    cached_tokens: op.cachedTokens,
    latency_us: op.latencyUs,
    ttft_us: op.ttftUs,
    content_capture: capture,
    response_digest: sealed.digest,
    response_ciphertext: sealed.ciphertext,
    content_key_id: sealed.keyId,
    model_sha256: op.modelSha256 ?? '',
    model_signer: op.modelSigner ?? '',
  };
}

/** What is known of a request whose gateway never reported its end: who, what, and the worker's usage. */
function interruptedDraft(
  requestId: string,
  origin: RequestOrigin,
  usage: ReportedUsage | undefined,
  tenant: Tenant | undefined,
): AuditRecordDraft {
  return {
    ...emptyDraft(),
    kind: 'completion',
    request_id: requestId,
    principal_id: origin.principalId,
    principal_kind: origin.principalKind,
    tenant: origin.tenant,
    role: origin.role,
    action: origin.action,
    model: origin.model,
    worker: usage?.workers.join(',') ?? '',
    outcome: 'interrupted',
    error_class: 'lease_expired',
    prompt_tokens: usage?.promptTokens ?? 0,
    completion_tokens: usage?.completionTokens ?? 0,
    content_capture: tenant?.contentCapture ?? 'digest',
  };
}

/** The HTTP status the gateway answers a refusal with, as recorded in the audit log. */
export function statusForDenial(denial: Denial): number {
  switch (denial.code) {
    case 'role_forbidden':
    case 'model_forbidden':
    case 'unknown_tenant':
      return 403;
    case 'rate_limited_requests':
    case 'rate_limited_tokens':
    case 'budget_exhausted':
      return 429;
    default:
      return 401;
  }
}
