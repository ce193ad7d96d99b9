/** Fixed UTC windows: requests and tokens per minute; token budgets per day and per month. */
export type WindowKind = 'minute' | 'day' | 'month';
export const WINDOW_KINDS: readonly WindowKind[] = ['minute', 'day', 'month'];

export function windowStart(kind: WindowKind, now: Date): Date {
  const start = new Date(now.getTime());
  if (kind === 'minute') {
    start.setUTCSeconds(0, 0);
  } else if (kind === 'day') {
    start.setUTCHours(0, 0, 0, 0);
  } else {
    start.setUTCDate(1);
    start.setUTCHours(0, 0, 0, 0);
  }
  return start;
}

export function windowEnd(kind: WindowKind, now: Date): Date {
  const end = windowStart(kind, now);
  if (kind === 'minute') end.setUTCMinutes(end.getUTCMinutes() + 1);
  else if (kind === 'day') end.setUTCDate(end.getUTCDate() + 1);
  else end.setUTCMonth(end.getUTCMonth() + 1);
  return end;
}

/** Seconds until the window resets, at least 1 (for Retry-After). */
export function secondsUntilReset(kind: WindowKind, now: Date): number {
  return Math.max(1, Math.ceil((windowEnd(kind, now).getTime() - now.getTime()) / 1000));
}
