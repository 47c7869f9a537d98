// Headless Debian Chromium driven by playwright-core. Playwright never
// downloads a browser here: we always pass executablePath.
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.SPOR_CHROMIUM ?? '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps dialling Google's
// hosts, which this machine's closed network refuses.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launch Chromium with a fresh context and page.
 * Returns {browser, context, page, close()}; close() is safe to call twice.
 */
export async function launchBrowser({ timeoutMs = 30_000, actionTimeoutMs = 15_000 } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: timeoutMs,
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(actionTimeoutMs);
  context.setDefaultNavigationTimeout(actionTimeoutMs);
  const page = await context.newPage();
  let closed = false;
  return {
    browser,
    context,
    page,
    async close() {
      if (closed) return;
      closed = true;
      await context.close().catch(() => {});
      await browser.close().catch(() => {});
    },
  };
}
