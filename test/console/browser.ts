// A real headless Chromium (Debian's `chromium` package, driven by playwright-core) for the console's
// end-to-end tests. Every request the page makes goes through a route that lets only this machine's
// loopback through: anything else is aborted and counted, and the suites fail on it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { TEST_MODELS_DIR } from '../support/test-models.js';

export const CHROMIUM = process.env.AIRLOCK_TEST_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

if (!haveChromium) {
  process.stderr.write(
    `console browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set AIRLOCK_TEST_CHROMIUM)\n`,
  );
}

/** `describe` with Chromium and the test models here, `describe.skip` (saying why) without. */
export const describeWithBrowser: jest.Describe = haveChromium && TEST_MODELS_DIR ? describe : describe.skip;

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface ConsoleBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Requests to anywhere but loopback (aborted): must stay empty. */
  offOrigin: string[];
  /** Console errors and uncaught exceptions in the page (a CSP violation is one). */
  pageErrors: string[];
  /** Where screenshots go: a temp dir, or AIRLOCK_CONSOLE_SCREENSHOTS. */
  shots: string;
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<ConsoleBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Root in CI: no sandbox. No background networking: Chromium would try to reach Google at start.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
    ],
  });
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'en-GB',
    timezoneId: 'Europe/Berlin',
  });
  const offOrigin: string[] = [];
  const pageErrors: string[] = [];
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || LOCAL_HOSTS.has(url.hostname)) return route.continue();
    offOrigin.push(url.toString());
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    // A refused API call (a 403 the test provokes) is logged too; those are asserted where they happen.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      pageErrors.push(message.text());
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  const shots =
    process.env.AIRLOCK_CONSOLE_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), 'airlock-console-shots-')));
  await mkdir(shots, { recursive: true });
  return {
    browser,
    context,
    page,
    offOrigin,
    pageErrors,
    shots,
    async screenshot(name) {
      const path = join(shots, `${name}.png`);
      await page.screenshot({ path, fullPage: false });
      return path;
    },
    close: () => browser.close(),
  };
}

/** The browser globals that page.evaluate callbacks touch (the repository's tsconfig has no DOM library). */
export interface PageGlobals {
  document: {
    cookie: string;
    documentElement: { outerHTML: string };
    querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }>;
    querySelector(selector: string): unknown;
  };
  localStorage: Record<string, string>;
  sessionStorage: Record<string, string>;
}
