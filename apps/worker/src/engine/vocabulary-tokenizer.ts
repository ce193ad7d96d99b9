import type { LlamaModel } from 'node-llama-cpp';

/**
 * Texts up to this long are tokenized in this process; longer ones on llama-server, whose threads do it off
 * this event loop (tokenizing is synchronous here, ~1 ms per 16 KiB, and other streams' tokens wait behind it).
 */
export const IN_PROCESS_TOKENIZE_MAX_CHARS = 16 * 1024;

export interface TokenizeOptions {
  /** The vocabulary's own BOS/EOS around the text, as llama.cpp's add_special does. */
  addSpecial: boolean;
  /** Text such as "<s>" becomes that special token (templates); off, it stays text (client prompts). */
  parseSpecial: boolean;
}

/**
 * Tokenizes with the model's own vocabulary, loaded by node-llama-cpp without its weights: the same llama.cpp
 * tokenizer llama-server runs, without a round trip to it per request.
 */
export class VocabularyTokenizer {
  /** Vocabularies whose add_special is exactly BOS/EOS (WPM adds CLS/SEP, the rest vary): others go to llama-server. */
  private readonly exact: boolean;

  constructor(private readonly vocabulary: LlamaModel) {
    this.exact = ['spm', 'bpe', 'ugm'].includes(vocabulary.vocabularyType);
  }

  /** Whether this text is tokenized here (short enough, a vocabulary whose special tokens are known). */
  takes(text: string): boolean {
    return this.exact && text.length <= IN_PROCESS_TOKENIZE_MAX_CHARS;
  }

  tokenize(text: string, { addSpecial, parseSpecial }: TokenizeOptions): number[] {
    const tokens: number[] = [...this.vocabulary.tokenize(text, parseSpecial)];
    if (!addSpecial) return tokens;
    // What llama_tokenize's add_special adds for SPM/BPE/UGM vocabularies (llama-server's /tokenize).
    const { bos, eos, shouldPrependBosToken, shouldAppendEosToken } = this.vocabulary.tokens;
    if (shouldPrependBosToken && bos !== null) tokens.unshift(bos);
    if (shouldAppendEosToken && eos !== null) tokens.push(eos);
    return tokens;
  }

  async dispose(): Promise<void> {
    await this.vocabulary.dispose();
  }
}
