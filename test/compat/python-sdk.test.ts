// The official Python SDK, pinned and installed by .ci/run (into .venv-compat, or set AIRLOCK_TEST_PYTHON),
// runs every script in test/compat/python/ against one running Airlock. Without it the suite is skipped
// with the reason printed, never passed in silence.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { ROOT, type Platform } from '../e2e/platform.js';
import { CHAT_MODEL, describeWithModels, startCompatPlatform } from './compat-platform.js';

/** The version .ci/run installs; a different one is reported, not silently used. */
export const PYTHON_OPENAI_VERSION = '3.22.1';

function findPython(): { python: string } | { skip: string } {
  const candidates = [process.env.AIRLOCK_TEST_PYTHON, join(ROOT, '.venv-compat/bin/python'), 'python3'];
  for (const python of candidates) {
    if (!python || (python.includes('/') && !existsSync(python))) continue;
    try {
      const version = execFileSync(python, ['-c', 'import openai, pydantic; print(openai.__version__)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      if (version === PYTHON_OPENAI_VERSION) return { python };
    } catch {
      // Not this one.
    }
  }
  return {
    skip: `no Python with openai==${PYTHON_OPENAI_VERSION} and pydantic (run .ci/run, or set AIRLOCK_TEST_PYTHON)`,
  };
}

const found = findPython();
if ('skip' in found) process.stderr.write(`test/compat python-sdk skipped: ${found.skip}\n`);
const describePython = 'python' in found ? describeWithModels : describe.skip;
const SCRIPTS = readdirSync(join(import.meta.dirname, 'python')).filter((f) => f.endsWith('.py'));

jest.setTimeout(180_000);

describePython(`OpenAI Python SDK ${PYTHON_OPENAI_VERSION} against Airlock (stories260K-chat)`, () => {
  let platform: Platform;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const started = await startCompatPlatform();
    platform = started.platform;
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      OPENAI_BASE_URL: started.baseURL,
      OPENAI_API_KEY: started.apiKey,
      AIRLOCK_STORE_API_KEY: started.storeKey,
      AIRLOCK_MODEL: CHAT_MODEL,
    };
  });
  afterAll(() => platform?.close());

  it.each(SCRIPTS)('%s passes', async (script) => {
    const python = (found as { python: string }).python;
    const child = spawn(python, [join(import.meta.dirname, 'python', script)], { env });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`${script} exited with ${code}:\n${output.slice(-4000)}`);
    expect(output).toContain('ok');
  });
});
