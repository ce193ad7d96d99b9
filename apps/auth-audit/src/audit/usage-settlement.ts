import { emptyDraft, type AuditRecordDraft } from './audit-record.js';

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * A request's usage is the larger count of each kind that either side reported: the worker did the work and
 * counts what it evaluated and generated (also when cancelled); the gateway counts what reached it. Given
 * what a closed request was charged and a newer count, the totals to keep and the tokens still to charge.
 */
export function chargedNow(
  prior: { chargedPromptTokens: number; chargedCompletionTokens: number },
  usage: TokenUsage,
): { totals: TokenUsage; excess: number } {
  const totals = {
    promptTokens: Math.max(prior.chargedPromptTokens, usage.promptTokens),
    completionTokens: Math.max(prior.chargedCompletionTokens, usage.completionTokens),
  };
  const excess =
    totals.promptTokens + totals.completionTokens - prior.chargedPromptTokens - prior.chargedCompletionTokens;
  return { totals, excess };
}

/** Who asked for the request, from its request record. */
export interface UsageOrigin {
  principalId: string;
  principalKind: string;
  tenant: string;
  role: string;
  action: string;
  model: string;
}

/**
 * A worker's report that came after the request's completion record and raised its usage: the request's
 * totals as now charged (the completion record keeps what the gateway knew when it wrote it).
 */
export function usageDraft(
  requestId: string,
  origin: UsageOrigin,
  totals: TokenUsage,
  workers: string[],
): AuditRecordDraft {
  return {
    ...emptyDraft(),
    kind: 'usage',
    request_id: requestId,
    principal_id: origin.principalId,
    principal_kind: origin.principalKind,
    tenant: origin.tenant,
    role: origin.role,
    action: origin.action,
    model: origin.model,
    worker: workers.join(','),
    prompt_tokens: totals.promptTokens,
    completion_tokens: totals.completionTokens,
  };
}
