/**
 * A SentencePiece-style ("llama") vocabulary that can spell any UTF-8 text: three control tokens, the
 * 256 byte-fallback tokens `<0x00>`..`<0xFF>`, and single-character tokens for the space marker and
 * printable ASCII. llama.cpp turns spaces into "▁" before lookup and falls back to byte tokens for any
 * character that has no token of its own, so emoji and accented letters round-trip exactly.
 */

/** `llama_token_type` values as stored in `tokenizer.ggml.token_type`. */
export enum LlamaTokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  BYTE = 6,
}

export const UNK_TOKEN_ID = 0;
export const BOS_TOKEN_ID = 1;
export const EOS_TOKEN_ID = 2;
export const FIRST_BYTE_TOKEN_ID = 3;
/** SentencePiece's whitespace marker: llama.cpp writes spaces as this before tokenizing. */
export const SPACE_MARKER = '\u2581';

export interface ByteVocabulary {
  tokens: string[];
  scores: number[];
  types: LlamaTokenType[];
  /** Ids of the single-character text tokens: the only ones the generated model ever emits. */
  firstTextTokenId: number;
}

export function buildByteVocabulary(): ByteVocabulary {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [LlamaTokenType.UNKNOWN, LlamaTokenType.CONTROL, LlamaTokenType.CONTROL];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(LlamaTokenType.BYTE);
  }
  const firstTextTokenId = tokens.length;
  tokens.push(SPACE_MARKER);
  types.push(LlamaTokenType.NORMAL);
  for (let code = 0x21; code <= 0x7e; code++) {
    tokens.push(String.fromCharCode(code));
    types.push(LlamaTokenType.NORMAL);
  }
  // No multi-character pieces, so scores never decide a merge; text tokens get distinct descending scores.
  const scores = types.map((type, id) => (type === LlamaTokenType.NORMAL ? -(id - firstTextTokenId) : 0));
  return { tokens, scores, types, firstTextTokenId };
}
