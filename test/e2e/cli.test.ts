// The `airlock` CLI, run as a process against the real platform (auth-audit on PGlite, worker, gateway).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MODEL, Platform, ROOT, describeWithModels } from './platform.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'apps', 'cli', 'bin', 'airlock.mjs');

describeWithModels('airlock CLI', () => {
  // Checkpoints every second, so that receipts can be proven within the test.
  const platform = new Platform({
    database: 'pglite',
    authAuditEnv: { AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1' },
  });

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

  it('every OpenAI response carries a signed receipt that `audit prove` proves; `audit verify --export` checks offline', async () => {
    const headers = { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' };
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'Once' }], max_tokens: 4 };
    const plain = await fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify(chat),
    });
    const streamed = await fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...chat, stream: true }),
    });
    await streamed.text();
    await plain.json();
    for (const response of [plain, streamed]) {
      expect(Number(response.headers.get('x-airlock-audit-sequence'))).toBeGreaterThan(0);
      expect(response.headers.get('x-airlock-audit-receipt')).toMatch(/^[A-Za-z0-9_-]+$/);
    }
    const receipt = plain.headers.get('x-airlock-audit-receipt')!;
    const checkpoints = (await (
      await fetch(`${platform.url}/admin/v1/audit/checkpoints`, { headers })
    ).json()) as { signing_keys: { public_key_pem: string }[] };
    const keyFile = join(platform.authAuditDataDir, 'public.pem');
    await writeFile(keyFile, checkpoints.signing_keys.map((key) => key.public_key_pem).join('\n'));
    // The next checkpoint (within a second or two) covers the record: poll, bounded.
    let proof: { sequence: number; checks: Record<string, boolean> } | undefined;
    for (let attempt = 0; attempt < 40 && !proof; attempt += 1) {
      try {
        proof = JSON.parse(
          (await airlock(['--json', 'audit', 'prove', receipt, '--public-key', keyFile])).stdout,
        );
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(proof?.sequence).toBe(Number(plain.headers.get('x-airlock-audit-sequence')));
    expect(proof?.checks).toEqual({
      inclusion: true,
      receipt_signature: true,
      receipt_matches_log: true,
      checkpoint_signature: true,
    });
    const exportFile = join(platform.authAuditDataDir, 'export.jsonl');
    await writeFile(exportFile, (await airlock(['audit', 'export'])).stdout);
    const offline = await run(process.execPath, [
      CLI,
      '--json',
      'audit',
      'verify',
      '--export',
      exportFile,
      '--witness',
      join(platform.authAuditDataDir, 'audit-witness', 'audit-checkpoints.jsonl'),
      '--public-key',
      keyFile,
    ]);
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true });
    expect(JSON.parse(offline.stdout).witnessed).toBeGreaterThan(0);
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
