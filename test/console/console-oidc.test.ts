// Console sign-in with the organisation's identity provider, in a real headless Chromium: authorization
// code + PKCE against a test IdP this suite runs on loopback (test-idp.ts), the gateway as the client (the
// token never reaches the page), auth-audit verifying the ID token against the IdP's JWKS. A tenant-scoped
// auditor sees only its tenant's records; a tenant admin only its tenant; roles shape the navigation.
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { findFreePort } from '@airlock/telemetry';
import { consoleConfig } from '../../apps/gateway/src/console/console-config.js';
import { MODEL, Platform } from '../e2e/platform.js';
import { describeWithBrowser, openBrowser, type ConsoleBrowser, type PageGlobals } from './browser.js';
import { TestIdp } from './test-idp.js';

const CLIENT_ID = 'airlock-console';

describeWithBrowser('web console: OIDC sign-in (code + PKCE) and tenant scope, in a real browser', () => {
  const idp = new TestIdp(CLIENT_ID, [
    { sub: 'u-ada', name: 'ada.auditor', roles: ['airlock-auditor'], tenant: 'cardiology' },
    { sub: 'u-root', name: 'grace.admin', roles: ['airlock-admin'] },
  ]);
  const jwksFile = join(tmpdir(), `airlock-console-idp-${process.pid}.json`);
  let platform: Platform;
  let web: ConsoleBrowser;
  let page: Page;
  let tenantAdminKey = '';

  const chat = async (key: string) => {
    const response = await fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Once' }], max_tokens: 2 }),
    });
    expect(response.status).toBe(200);
    await platform.auditRecords(response.headers.get('x-request-id')!);
  };

  beforeAll(async () => {
    await idp.start();
    await writeFile(jwksFile, JSON.stringify(idp.jwks));
    // The redirect URI is registered with the IdP before the gateway listens: the port is chosen first.
    const port = await findFreePort();
    idp.redirectUri = `http://127.0.0.1:${port}/console/oidc/callback`;
    platform = new Platform({
      database: 'pglite',
      authAuditEnv: {
        AIRLOCK_OIDC_ISSUER: idp.issuer,
        AIRLOCK_OIDC_AUDIENCE: CLIENT_ID,
        AIRLOCK_OIDC_JWKS_FILE: jwksFile,
      },
      gateway: { port },
      console: consoleConfig({
        oidc: {
          issuer: idp.issuer,
          clientId: CLIENT_ID,
          clientSecret: '',
          redirectUrl: idp.redirectUri,
          scopes: 'openid profile',
          token: 'id_token',
        },
      }),
    });
    await platform.start();
    const created = await platform.admin('PUT', '/tenants/cardiology', { name: 'Cardiology' });
    expect(created.status).toBe(200);
    const cardiologyUser = await platform.createKey({
      tenant: 'cardiology',
      role: 'user',
      allowed_models: [MODEL],
    });
    tenantAdminKey = await platform.createKey({
      tenant: 'cardiology',
      role: 'tenant_admin',
      name: 'cardio admin',
    });
    await chat(platform.adminKey); // tenant default
    await chat(cardiologyUser); // tenant cardiology
    web = await openBrowser();
    page = web.page;
  }, 180_000);

  afterAll(async () => {
    if (web) process.stderr.write(`console screenshots: ${web.shots}\n`);
    await web?.close();
    await platform?.close();
    await idp.close();
  }, 60_000);

  afterEach(() => {
    expect(web.offOrigin).toEqual([]);
    expect(web.pageErrors).toEqual([]);
  });

  const signOut = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in with key' }).waitFor();
  };

  it('signs a tenant auditor in through the IdP; the session holds the token, the page never sees it', async () => {
    await page.goto(`${platform.url}/console/`);
    await page.getByRole('link', { name: 'Sign in with your organisation' }).click();
    await page.getByRole('heading', { name: 'Test identity provider' }).waitFor();
    await page.getByRole('button', { name: 'Sign in as ada.auditor' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    expect(idp.tokenRequests).toEqual([{ ok: true, reason: '' }]);
    await expect(page.getByText('ada.auditor · auditor · tenant cardiology').isVisible()).resolves.toBe(true);
    const nav = page.getByRole('navigation', { name: 'Sections' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Audit log',
      'Verify chain',
      'Usage',
      'Check receipt',
    ]);
    const cookies = await web.context.cookies();
    expect(cookies.find((c) => c.name === '__Host-airlock-console')).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    });
    // The login state is gone once used.
    expect(cookies.find((c) => c.name === '__Host-airlock-oidc')).toBeUndefined();
    const visible = await page.evaluate(() => {
      const { document, localStorage, sessionStorage } = globalThis as unknown as PageGlobals;
      return (
        document.cookie +
        JSON.stringify({ ...localStorage, ...sessionStorage }) +
        document.documentElement.outerHTML
      );
    });
    expect(visible).not.toMatch(/eyJ[\w-]+\.eyJ/); // no JWT anywhere the page can read
  });

  it('shows that auditor only its own tenant’s records (no tenant filter to change)', async () => {
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForFunction(() => {
      const { document } = globalThis as unknown as PageGlobals;
      return (
        document.querySelectorAll('tbody tr').length > 0 && !document.querySelector('[aria-busy="true"]')
      );
    });
    const tenants = await page.locator('tbody tr td:nth-child(6)').allTextContents();
    expect(tenants.length).toBeGreaterThanOrEqual(2); // the cardiology request and its completion
    expect(new Set(tenants)).toEqual(new Set(['cardiology']));
    expect(await page.getByLabel('Tenant').count()).toBe(0);
    await web.screenshot('21-oidc-auditor');
    // The API holds the line whatever the page shows: another tenant's records stay out of reach.
    const other = await page.evaluate(async () => {
      const response = await fetch('/admin/v1/audit/records?tenant=default');
      return { status: response.status, body: (await response.json()) as { data?: { tenant: string }[] } };
    });
    expect(other.status === 403 || (other.body.data ?? []).every((r) => r.tenant === 'cardiology')).toBe(
      true,
    );
    await signOut();
  });

  it('a callback that does not belong to the login in progress is refused before any code exchange', async () => {
    // Start a login, but answer the callback with a state and code that were never issued for it.
    await page.goto(`${platform.url}/console/oidc/login`);
    await page.getByRole('heading', { name: 'Test identity provider' }).waitFor();
    await page.goto(`${platform.url}/console/oidc/callback?code=forged&state=also-forged`);
    await page
      .getByRole('alert')
      .getByText(/not started here/)
      .waitFor();
    expect(page.url()).toContain('/console/?sign_in_error=');
    expect(await web.context.cookies().then((c) => c.some((x) => x.name === '__Host-airlock-console'))).toBe(
      false,
    );
    expect(idp.tokenRequests).toHaveLength(1); // refused before any exchange: the state did not match
  });

  it('signs an admin in through the IdP: every section', async () => {
    await page.goto(`${platform.url}/console/`);
    await page.getByRole('link', { name: 'Sign in with your organisation' }).click();
    await page.getByRole('button', { name: 'Sign in as grace.admin' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const nav = page.getByRole('navigation', { name: 'Sections' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Audit log',
      'Verify chain',
      'Usage',
      'Check receipt',
      'API keys',
      'Tenants & quotas',
      'Models',
    ]);
    await expect(page.getByLabel('Tenant').isVisible()).resolves.toBe(true);
    await signOut();
  });

  it('a tenant admin (API key) sees and edits only its tenant', async () => {
    await page.getByLabel('API key').fill(tenantAdminKey);
    await page.getByRole('button', { name: 'Sign in with key' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const nav = page.getByRole('navigation', { name: 'Sections' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Audit log',
      'Verify chain',
      'Usage',
      'Check receipt',
      'API keys',
      'Tenants & quotas',
    ]);
    await nav.getByRole('link', { name: 'Tenants & quotas' }).click();
    await page.getByRole('heading', { name: 'Tenants and quotas' }).waitFor();
    await page.getByRole('button', { name: 'Edit quotas of cardiology' }).waitFor();
    expect(await page.getByRole('button', { name: /^Edit quotas of / }).count()).toBe(1);
    await page.getByRole('button', { name: 'Edit quotas of cardiology' }).click();
    await page.getByRole('form', { name: 'Quotas of cardiology' }).getByLabel('Tokens per day').fill('50000');
    await page.getByRole('button', { name: 'Save quotas' }).click();
    await page.locator('td[data-quota="tokens_per_day"]', { hasText: '50,000' }).waitFor();
    await web.screenshot('22-tenant-admin');
    const { json } = await platform.admin('GET', '/tenants');
    const tenants = json.data as { id: string; tokens_per_day: number }[];
    expect(tenants.find((t) => t.id === 'cardiology')?.tokens_per_day).toBe(50000);
    expect(tenants.find((t) => t.id === 'default')?.tokens_per_day).toBe(0);
  });
});
