import type { TokenLogprob, TopLogprob } from '@airlock/contracts';

function byteList(bytes: Buffer | Uint8Array | undefined): number[] {
  return bytes ? [...bytes] : [];
}

function chatTop(top: TopLogprob) {
  return { token: top.token, logprob: top.logprob, bytes: byteList(top.bytes) };
}

/**
 * Collects the worker's per-token logprobs of one choice. The worker sends a token's logprobs before its
 * text, so a streamed chunk takes what has arrived up to its text (`take`); the collected body takes all.
 */
export class ChoiceLogprobs {
  private readonly all: TokenLogprob[] = [];
  private pending: TokenLogprob[] = [];

  constructor(readonly enabled: boolean) {}

  push(tokens: TokenLogprob[]): void {
    if (!this.enabled) return;
    this.all.push(...tokens);
    this.pending.push(...tokens);
  }

  /** The tokens not yet sent in a chunk. */
  take(): TokenLogprob[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }

  /** Chat's shape: `{content: [{token, logprob, bytes, top_logprobs}], refusal}`; null when not asked for. */
  chat(tokens: TokenLogprob[] = this.all) {
    if (!this.enabled) return null;
    return {
      content: tokens.map((t) => ({ ...chatTop(t), top_logprobs: (t.topLogprobs ?? []).map(chatTop) })),
      refusal: null,
    };
  }

  /** The legacy completions shape: parallel arrays, `top_logprobs` as {token: logprob} maps. */
  completion(tokens: TokenLogprob[] = this.all, textOffset = 0) {
    if (!this.enabled) return null;
    const offsets: number[] = [];
    let offset = textOffset;
    for (const t of tokens) {
      offsets.push(offset);
      offset += t.token.length;
    }
    return {
      tokens: tokens.map((t) => t.token),
      token_logprobs: tokens.map((t) => t.logprob),
      top_logprobs: tokens.map((t) =>
        Object.fromEntries((t.topLogprobs ?? []).map((top) => [top.token, top.logprob])),
      ),
      text_offset: offsets,
    };
  }
}
