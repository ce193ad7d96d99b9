// The web console in a real headless Chromium against the real platform (auth-audit on PostgreSQL, a
// worker with stories260K, the gateway): an auditor signs in with an API key, searches the audit log,
// opens a record and verifies the chain; then, playing an attacker with superuser access to the database,
// the test edits one record and the console names exactly that sequence. Fails on any request the page
// makes to a non-local origin and on any error in the page (a Content-Security-Policy violation is one).
import pg from 'pg';
import type { Page } from 'playwright-core';
import { MODEL, Platform } from '../e2e/platform.js';
import { describeWithBrowser, openBrowser, type ConsoleBrowser, type PageGlobals } from './browser.js';

describeWithBrowser('web console: auditor in a real browser', () => {
  const platform = new Platform({
    database: 'postgres',
    contentKeys: true,
    authAuditEnv: { AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1' },
  });
  let web: ConsoleBrowser;
  let page: Page;
  let auditorKey = '';

  beforeAll(async () => {
    await platform.start();
    auditorKey = await platform.createKey({ name: 'console auditor', role: 'auditor' });
    // Bodies sealed in the records, for the auditor to decrypt (an audited read) on a record's page.
    expect((await platform.admin('PUT', '/tenants/default', { content_capture: 'full' })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${platform.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL,
          messages: [{ role: 'user', content: 'Once upon a console' }],
          max_tokens: 4,
        }),
      });
      expect(response.status).toBe(200);
      await platform.auditRecords(response.headers.get('x-request-id')!);
    }
    web = await openBrowser();
    page = web.page;
  }, 180_000);

  afterAll(async () => {
    if (web) process.stderr.write(`console screenshots: ${web.shots}\n`);
    await web?.close();
    await platform.close();
  }, 60_000);

  afterEach(() => {
    expect(web.offOrigin).toEqual([]);
    expect(web.pageErrors).toEqual([]);
  });

  it('serves the built app under /console with a strict Content-Security-Policy', async () => {
    const response = await fetch(`${platform.url}/console/`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    const html = await response.text();
    // No inline script: every <script> names a file of this origin.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/src="\/console\/assets\/[^"]+\.js"/);
      expect(body.trim()).toBe('');
    }
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('signs in with an API key into an HttpOnly, Secure, SameSite=Strict session the page cannot read', async () => {
    await page.goto(`${platform.url}/console/`);
    await page.getByLabel('API key').fill(auditorKey);
    await page.getByRole('button', { name: 'Sign in with key' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();

    const cookies = await web.context.cookies();
    const session = cookies.find((c) => c.name === '__Host-airlock-console');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    expect(session!.value).not.toContain(auditorKey.slice(-20));
    const visible = await page.evaluate(() => {
      const { document, localStorage, sessionStorage } = globalThis as unknown as PageGlobals;
      return {
        cookie: document.cookie,
        local: JSON.stringify({ ...localStorage }),
        session: JSON.stringify({ ...sessionStorage }),
        html: document.documentElement.outerHTML,
      };
    });
    expect(visible.cookie).toBe('');
    for (const text of Object.values(visible)) expect(text).not.toContain(auditorKey);
    // The auditor's navigation: the audit views only (no keys, tenants or models).
    const nav = page.getByRole('navigation', { name: 'Sections' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Audit log',
      'Verify chain',
      'Usage',
      'Check receipt',
    ]);
    await expect(page.getByText('console auditor · auditor · tenant default').isVisible()).resolves.toBe(
      true,
    );
  });

  it('searches by model and outcome, pages, and opens a record', async () => {
    await page.getByLabel('Model').fill(MODEL);
    await page.getByLabel('Outcome').selectOption('succeeded');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('tbody tr');
    await page.waitForFunction(() => {
      const { document } = globalThis as unknown as PageGlobals;
      return (
        document.querySelectorAll('tbody tr').length === 3 && !document.querySelector('[aria-busy="true"]')
      );
    });
    for (const row of await rows.all()) {
      const cells = await row.locator('td').allTextContents();
      expect(cells[3]).toBe('chat.completions');
      expect(cells[6]).toBe(MODEL);
      expect(cells[7]).toBe('succeeded');
    }
    // Times in the viewer's zone (Europe/Berlin here), the UTC time on hover.
    const time = page.locator('tbody tr time').first();
    expect(await time.getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(await time.textContent()).toMatch(/CET|CEST|GMT\+1|GMT\+2/);

    await web.screenshot('01-audit-search');
    const first = await rows.first().locator('td').first().textContent();
    await rows.first().getByRole('link').click();
    await page.getByRole('heading', { name: `Record ${first}` }).waitFor();
    await page.getByText('chat.completions').first().waitFor();
    const hash = await page.locator('dt:text-is("Hash") + dd').textContent();
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    await web.screenshot('02-record');

    // The captured bodies, decrypted on request; the read is itself a record.
    await page.getByRole('button', { name: 'Show captured content' }).click();
    const requestBody = page.getByLabel('Request body');
    await requestBody.waitFor();
    expect(await requestBody.textContent()).toContain('"content": "Once upon a console"');
    expect(await page.getByLabel('Response body').textContent()).toContain('"choices"');
    const read = await page.getByText(/recorded as audit record \d+/).textContent();
    const readSequence = Number(/record (\d+)/.exec(read!)![1]);
    const { json } = await platform.admin('GET', `/audit/records?from_sequence=${readSequence}&page_size=1`);
    expect(json.data[0]).toMatchObject({ action: 'audit.content_read', target: `sequence:${first}` });
    await web.screenshot('02b-record-content');
  });

  it('verifies the chain; state changes need the CSRF token', async () => {
    await page.getByRole('link', { name: 'Verify chain' }).click();
    await page.getByRole('button', { name: 'Verify now' }).click();
    await page.getByRole('heading', { name: 'Chain intact' }).waitFor();
    await web.screenshot('03-verify-ok');

    // A script on the page without the session's CSRF token (or a cross-site form) is refused.
    const forged = await page.evaluate(async () => {
      const response = await fetch('/admin/v1/audit/verify', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      return { status: response.status, body: (await response.json()) as { error: { code: string } } };
    });
    expect(forged).toEqual({
      status: 403,
      body: { error: expect.objectContaining({ code: 'csrf_failed' }) },
    });
  });

  it('works from the keyboard alone, with every control labelled', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    // Every form control has an accessible name.
    const unlabelled = await page.evaluate(() => {
      const { document } = globalThis as unknown as PageGlobals;
      const controls = (
        document as unknown as {
          querySelectorAll(s: string): ArrayLike<{
            labels: ArrayLike<unknown> | null;
            getAttribute(n: string): string | null;
            outerHTML: string;
          }>;
        }
      ).querySelectorAll('input, select, textarea');
      return Array.from(controls)
        .filter((c) => !(c.labels && c.labels.length > 0) && !c.getAttribute('aria-label'))
        .map((c) => c.outerHTML);
    });
    expect(unlabelled).toEqual([]);
    // Sign out and back in, then search, with the keyboard only.
    await page.getByRole('button', { name: 'Sign out' }).focus();
    await page.keyboard.press('Enter');
    await page.getByLabel('API key').waitFor();
    await page.keyboard.press('Tab'); // the key field is the first control
    await page.keyboard.type(auditorKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    // Focus moves to the new view's heading in an effect after the render (later on a busy machine): once it
    // has, the next Tab lands in the view's first field, not in the header.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: { activeElement: { tagName?: string } | null } }).document
          .activeElement?.tagName === 'H1',
    );
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(
      () =>
        (globalThis as unknown as { document: { activeElement: { type?: string } | null } }).document
          .activeElement?.type,
    );
    expect(focused).toBe('datetime-local');
    await page.getByLabel('Model').focus();
    await page.keyboard.type(MODEL);
    await page.keyboard.press('Enter');
    // The filtered answer, not the unfiltered first page still on screen (a busy machine answers the new search
    // after the check, and the focused link is then replaced under the keyboard): every row names the model.
    await page.waitForFunction((model) => {
      const { document } = globalThis as unknown as PageGlobals;
      const rows = Array.from(document.querySelectorAll('tbody tr'));
      return (
        rows.length >= 3 &&
        !document.querySelector('[aria-busy="true"]') &&
        rows.every((row) => (row.textContent ?? '').includes(model))
      );
    }, MODEL);
    await page
      .getByRole('link', { name: /^Record \d+$/ })
      .first()
      .focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /^Record \d+$/ }).waitFor();
    await page.getByRole('link', { name: 'Verify chain' }).click();
    await page.getByRole('heading', { name: 'Verify the audit chain' }).waitFor();
  });

  it('names the exact sequence an attacker with database access edited', async () => {
    const { json } = await platform.admin('GET', `/audit/records?model=${MODEL}&kind=completion&page_size=1`);
    const victim: number = json.data[0].sequence;
    const client = new pg.Client({ connectionString: platform.databaseUrl });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(
        'UPDATE audit_records SET completion_tokens = completion_tokens + 1 WHERE sequence = $1',
        [victim],
      );
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await page.getByRole('button', { name: 'Verify now' }).click();
    await page.getByRole('heading', { name: /Chain broken at record/ }).waitFor();
    expect(await page.locator('.failing-sequence').textContent()).toBe(String(victim));
    await web.screenshot('04-verify-broken');
    await page.locator('.failing-sequence').click();
    await page.getByRole('heading', { name: `Record ${victim}` }).waitFor();
  });
});
