// The web console's administrator views in a real headless Chromium against the real platform (auth-audit
// on PGlite, the real worker) with Kubernetes discovery against the in-process FAKE Kubernetes API
// (apps/gateway/test/fake-kubernetes-api.ts: no cluster runs here; it records every scale patch): create a
// key (secret shown once) and revoke it, change a quota, scale a model, export the audit log as JSONL and
// CSV, check a client's audit receipt. Every change is checked through the API or the fake, not the page.
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { FakeKubernetesApi, fakeSlice } from '../../apps/gateway/test/fake-kubernetes-api.js';
import { MODEL, Platform } from '../e2e/platform.js';
import { describeWithBrowser, openBrowser, type ConsoleBrowser } from './browser.js';

const DEPLOYMENT = 'airlock-worker-stories260k';

describeWithBrowser('web console: administrator in a real browser', () => {
  const kubernetes = new FakeKubernetesApi('airlock');
  let server = '';
  const platform = new Platform({
    database: 'pglite',
    authAuditEnv: { AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1' },
    gateway: (p) => {
      const [ip, port] = p.workerAddress.split(':');
      kubernetes.objects.set(
        `${DEPLOYMENT}-abc12`,
        fakeSlice(`${DEPLOYMENT}-abc12`, {
          model: MODEL,
          service: DEPLOYMENT,
          port: Number(port),
          endpoints: [{ ip }],
        }),
      );
      return {
        discovery: {
          kind: 'kubernetes',
          namespace: 'airlock',
          selector: 'app.kubernetes.io/component=worker',
          kubeconfig: { server },
        },
      };
    },
  });
  let web: ConsoleBrowser;
  let page: Page;

  beforeAll(async () => {
    kubernetes.deployments.set(DEPLOYMENT, { replicas: 1, current: 1 });
    server = await kubernetes.start();
    await platform.start();
    web = await openBrowser();
    page = web.page;
    await page.goto(`${platform.url}/console/`);
    await page.getByLabel('API key').fill(platform.adminKey);
    await page.getByRole('button', { name: 'Sign in with key' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  }, 180_000);

  afterAll(async () => {
    if (web) process.stderr.write(`console screenshots: ${web.shots}\n`);
    await web?.close();
    await platform.close();
    await kubernetes.close();
  }, 60_000);

  afterEach(() => {
    expect(web.offOrigin).toEqual([]);
    expect(web.pageErrors).toEqual([]);
  });

  const openSection = async (name: string, heading: string) => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name }).click();
    await page.getByRole('heading', { name: heading, exact: true }).waitFor();
  };

  it('shows the administrator every section', async () => {
    const links = await page
      .getByRole('navigation', { name: 'Sections' })
      .getByRole('link')
      .allTextContents();
    expect(links).toEqual([
      'Audit log',
      'Verify chain',
      'Usage',
      'Check receipt',
      'API keys',
      'Tenants & quotas',
      'Models',
    ]);
  });

  it('creates a key whose secret is shown once, and revokes it', async () => {
    await openSection('API keys', 'API keys');
    const form = page.getByRole('form', { name: 'Create a key' });
    await form.getByLabel('Name').fill('console made');
    await form.getByLabel('Role').selectOption('user');
    await form.getByLabel('Allowed models').fill(MODEL);
    await form.getByRole('button', { name: 'Create key' }).click();
    const secretField = page.getByLabel('Secret');
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^alk_/);
    await web.screenshot('11-key-created');
    const models = (key: string) =>
      fetch(`${platform.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then(
        (r) => r.status,
      );
    expect(await models(secret)).toBe(200);

    await page.getByRole('button', { name: 'I have copied it' }).click();
    expect(await page.getByLabel('Secret').count()).toBe(0);
    await page.getByRole('button', { name: 'Revoke console made' }).click();
    await page.getByRole('button', { name: 'Confirm revoke console made' }).click();
    await page.getByRole('button', { name: 'Revoke console made' }).waitFor({ state: 'detached' });
    expect(await models(secret)).toBe(401);
    await page.getByLabel('Show revoked keys').check();
    await page.locator('tr', { hasText: 'console made' }).getByText('revoked').waitFor();
  });

  it('changes a quota (only the quota fields change)', async () => {
    await openSection('Tenants & quotas', 'Tenants and quotas');
    await page.getByRole('button', { name: 'Edit quotas of default' }).click();
    const form = page.getByRole('form', { name: 'Quotas of default' });
    await form.getByLabel('Requests per minute').fill('1234');
    await form.getByRole('button', { name: 'Save quotas' }).click();
    await page.locator('td[data-quota="requests_per_minute"]', { hasText: '1,234' }).waitFor();
    await web.screenshot('12-tenants');
    const { json } = await platform.admin('GET', '/tenants');
    const tenant = (json.data as { id: string }[]).find((t) => t.id === 'default');
    expect(tenant).toMatchObject({ requests_per_minute: 1234, content_capture: 'digest', disabled: false });
  });

  it('shows desired/ready replicas and worker health, and scales through the fake Kubernetes API', async () => {
    await openSection('Models', 'Models and workers');
    const row = page.locator(`tr[data-model="${MODEL}"]`);
    await row.locator('td.replicas', { hasText: '1 / 1' }).waitFor();
    await page.locator('tr', { hasText: platform.workerAddress }).getByText('healthy').waitFor();
    kubernetes.patches.length = 0;
    await row.getByLabel(`Replicas of ${MODEL}`).fill('3');
    await row.getByRole('button', { name: `Scale ${MODEL}` }).click();
    await row.locator('td.replicas', { hasText: '3 / 1' }).waitFor();
    expect(kubernetes.patches).toEqual([
      {
        deployment: DEPLOYMENT,
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 3 } },
      },
    ]);
    await web.screenshot('13-models');
  });

  it('exports the audit log as JSONL and CSV, with the console’s own admin actions in it', async () => {
    await openSection('Audit log', 'Audit log');
    const download = async (button: string) => {
      const [file] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: button }).click(),
      ]);
      await page.getByText(/^Exported \d+ records/).waitFor();
      return readFile(await file.path(), 'utf8');
    };
    const lines = (await download('Export JSONL'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { hash: string; kind: string; action: string; outcome: string });
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.every((r) => /^[0-9a-f]{64}$/.test(r.hash))).toBe(true);
    const actions = lines.filter((r) => r.kind === 'admin_action').map((r) => r.action);
    expect(actions).toEqual(
      expect.arrayContaining(['keys.create', 'keys.revoke', 'tenants.update', 'models.scale']),
    );
    expect(lines.some((r) => r.action === 'console.sign_in' && r.outcome === 'allowed')).toBe(true);
    const csv = (await download('Export CSV')).trim().split('\n');
    expect(csv[0]).toContain('sequence');
    expect(csv.length).toBeGreaterThan(5);
  });

  it('charts usage and time to first token from the audit log, per tenant and key', async () => {
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${platform.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Once' }], max_tokens: 4 }),
      });
      expect(response.status).toBe(200);
      await platform.auditRecords(response.headers.get('x-request-id')!);
    }
    await openSection('Usage', 'Usage, last hour');
    const row = page.locator('tr[data-tenant="default"]');
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    expect(Number(cells[1])).toBeGreaterThanOrEqual(2);
    expect(Number(cells[3].replace(/\D/g, ''))).toBeGreaterThanOrEqual(2);
    expect(cells[4]).toMatch(/^\d+ ms$/);
    expect(await page.locator('svg.chart rect.bar').count()).toBeGreaterThan(0);
    expect(await page.locator('svg.chart circle.dot').count()).toBeGreaterThan(0);
    await web.screenshot('15-usage');
  });

  it('checks a client’s audit receipt, re-proving it in the browser', async () => {
    const response = await fetch(`${platform.url}/v1/models`, {
      headers: { authorization: `Bearer ${platform.adminKey}` },
    });
    const receipt = response.headers.get('x-airlock-audit-receipt')!;
    const sequence = Number(response.headers.get('x-airlock-audit-sequence'));
    expect(receipt).toBeTruthy();
    // Checkpoints every second: wait until one covers the record.
    await platform.until(async () => {
      const { json } = await platform.admin('GET', '/audit/checkpoints?page_size=1000');
      return (json.checkpoints as { sequence: number }[]).some((c) => c.sequence >= sequence);
    });
    await openSection('Check receipt', 'Check an audit receipt');
    await page.getByLabel('Receipt (x-airlock-audit-receipt)').fill(receipt);
    await page.getByRole('button', { name: 'Check receipt' }).click();
    await page.getByRole('heading', { name: 'Receipt proven' }).waitFor();
    expect(await page.locator('.checks .state-ok').count()).toBe(5);
    expect(await page.locator('.checks .state-bad').count()).toBe(0);
    await web.screenshot('14-receipt');

    // A receipt whose signature was changed does not hold.
    const decoded = JSON.parse(Buffer.from(receipt, 'base64url').toString('utf8')) as { signature: string };
    const signature = Buffer.from(decoded.signature, 'base64');
    signature[0] ^= 1;
    const forged = Buffer.from(
      JSON.stringify({ ...decoded, signature: signature.toString('base64') }),
    ).toString('base64url');
    await page.getByLabel('Receipt (x-airlock-audit-receipt)').fill(forged);
    await page.getByRole('button', { name: 'Check receipt' }).click();
    await page.locator('.result.failed, .error').first().waitFor();
    expect(await page.getByRole('heading', { name: 'Receipt proven' }).count()).toBe(0);
  });
});
