export * from './llama-gguf.js';
export {
  BOS_TOKEN_ID,
  EOS_TOKEN_ID,
  UNK_TOKEN_ID,
  LlamaTokenType,
  buildByteVocabulary,
  type ByteVocabulary,
} from './byte-vocabulary.js';
