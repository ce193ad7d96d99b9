// The `airlock` CLI, run as a process against the real platform (auth-audit on PGlite, worker, gateway).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MODEL, Platform, ROOT, describeWithModels } from './platform.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'apps', 'cli', 'bin', 'airlock.mjs');

describeWithModels('airlock CLI', () => {
  const platform = new Platform({ database: 'pglite' });

  beforeAll(() => platform.start(), 180_000);
  afterAll(() => platform.close(), 60_000);

  const airlock = (args: string[], key = platform.adminKey) =>
    run(process.execPath, [CLI, '--url', platform.url, '--key', key, ...args]);

  it('creates, lists and revokes keys, and the revoked key stops working', async () => {
    const created: { secret: string; key: { id: string } } = JSON.parse(
      (await airlock(['--json', 'keys', 'create', '--name', 'cli-test', '--models', MODEL])).stdout,
    );
    expect(created.secret).toMatch(/^alk_/);
    const table = (await airlock(['keys', 'list'])).stdout;
    expect(table).toContain('cli-test');
    expect((await airlock(['models', 'list'], created.secret)).stdout).toContain(MODEL);
    await airlock(['keys', 'revoke', created.key.id]);
    await expect(airlock(['models', 'list'], created.secret)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('401'),
    });
  });

  it('chats, shows model status, queries, exports and verifies the audit log', async () => {
    const chat = await airlock(['chat', 'Once upon a time', '--model', MODEL, '--max-tokens', '8']);
    expect(chat.stdout.trim().length).toBeGreaterThan(0);
    expect((await airlock(['models', 'status'])).stdout).toMatch(
      /stories260K\s+MODEL_STATE_READY|stories260K\s+ready/,
    );
    expect((await airlock(['audit', 'query', '--model', MODEL])).stdout).toContain('chat.completions');
    const exported = await airlock(['audit', 'export', '--format', 'jsonl']);
    const lines = exported.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    expect(JSON.parse(lines[0])).toHaveProperty('hash');
    expect(exported.stderr).toContain('exported');
    expect(JSON.parse((await airlock(['--json', 'audit', 'verify'])).stdout).ok).toBe(true);
  });

  it('exits non-zero with a clear message on failure', async () => {
    await expect(
      run(process.execPath, [CLI, '--url', 'http://127.0.0.1:1', '--key', 'x', 'models', 'list']),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('cannot reach the gateway'),
    });
    await expect(airlock(['keys', 'create', '--name', 'x', '--role', 'emperor'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('400'),
    });
  });
});
