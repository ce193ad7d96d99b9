// Where the real stories260K test models are (tiny trained GGUF files, MIT; CI keeps them in ../shared/models
// beside the checkout and .ci/run exports AIRLOCK_TEST_MODELS_DIR). A fresh clone elsewhere has none: then
// the suites that need a trained model are skipped, saying why, and the rest run on generated models.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REQUIRED = ['stories260K.gguf', 'stories260K-chat.gguf'];

function locate(): string | undefined {
  const configured = process.env.AIRLOCK_TEST_MODELS_DIR;
  if (configured) {
    // Set but wrong is a broken setup, not a reason to skip.
    for (const file of REQUIRED) {
      if (!existsSync(join(configured, file)))
        throw new Error(`AIRLOCK_TEST_MODELS_DIR=${configured} has no ${file}`);
    }
    return resolve(configured);
  }
  const beside = resolve(import.meta.dirname, '../../../shared/models');
  return REQUIRED.every((file) => existsSync(join(beside, file))) ? beside : undefined;
}

export const TEST_MODELS_DIR = locate();

/** `describe` when the real models are here, `describe.skip` (with a note on stderr) when not. */
export const describeWithModels: jest.Describe = TEST_MODELS_DIR ? describe : describe.skip;

if (!TEST_MODELS_DIR) {
  process.stderr.write(
    'no stories260K test models (AIRLOCK_TEST_MODELS_DIR unset): suites that need them are skipped\n',
  );
}
