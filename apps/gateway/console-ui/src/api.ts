// The console's one way to the gateway: same-origin fetch with the session cookie (HttpOnly, so script
// never sees the credential) and the session's CSRF token on every call that changes something.
import type { Session } from './types';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

let csrfToken = '';

export function useSession(session: Session | null): void {
  csrfToken = session?.signed_in ? session.csrf_token : '';
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-airlock-csrf'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure(0, 'The gateway cannot be reached.');
  }
  if (!response.ok) {
    const text = await response.text();
    let parsed: { error?: { message?: string; code?: string } } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // not JSON: the status says enough
    }
    throw new ApiFailure(
      response.status,
      parsed.error?.message ?? `The gateway answered ${response.status}.`,
      parsed.error?.code ?? null,
    );
  }
  return response;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await send(method, path, body);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** A raw response (streamed exports, audit headers). */
export function apiRaw(method: string, path: string, body?: unknown): Promise<Response> {
  return send(method, path, body);
}

/** A query string of the non-empty values. */
export function query(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}
