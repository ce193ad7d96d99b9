// The platform every test/compat suite drives: the real services (test/e2e/platform.ts) serving
// stories260K-chat (embeddings on) and stories260K (embeddings off, for the error-reason checks).
// Each suite file starts its own; a new surface adds one file beside these (e.g. responses.test.ts).
import { Platform } from '../e2e/platform.js';

export const CHAT_MODEL = 'stories260K-chat';
/** Served without embeddings: `/v1/embeddings` on it must be a 400, not a retried 503. */
export const NO_EMBEDDINGS_MODEL = 'stories260K';
/** The README's greedy completion of "Once upon a time" (24 tokens). */
export const GREEDY_ONCE = ', there was a little girl named Lily. She loved to play outside in the p';

export { describeWithModels } from '../e2e/platform.js';

export async function startCompatPlatform(): Promise<{
  platform: Platform;
  /** A key of the default tenant (content capture `digest`: Responses are not stored). */
  apiKey: string;
  /** A key of a tenant capturing `full` content, whose Responses are stored (previous_response_id). */
  storeKey: string;
  baseURL: string;
}> {
  const platform = new Platform({
    database: 'pglite',
    model: CHAT_MODEL,
    extraModels: [{ id: NO_EMBEDDINGS_MODEL, embeddings: false }],
    contentKeys: true,
  });
  await platform.start();
  await platform.until(() =>
    platform.gateway.pool.list().some((w) => w.alive && w.serves(NO_EMBEDDINGS_MODEL)),
  );
  const apiKey = await platform.createKey({});
  const tenant = await platform.admin('PUT', '/tenants/keeps', { content_capture: 'full' });
  if (tenant.status !== 200) throw new Error(`tenant creation failed: ${tenant.status}`);
  const storeKey = await platform.createKey({ tenant: 'keeps' });
  return { platform, apiKey, storeKey, baseURL: `${platform.url}/v1` };
}

export function norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}
