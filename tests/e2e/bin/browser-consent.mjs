#!/usr/bin/env node
// A $BROWSER for the e2e tests: `browser-consent.mjs URL`. mcp-remote opens
// the authorization URL with the `open` package, whose xdg-open runs
// `$BROWSER URL` when there is no desktop. This opens URL in headless
// Chromium, decides on the Spor Companion consent page like a person would
// (Organization + Allow, or Deny) and stays until the browser has loaded the
// client's redirect URI, so the redirect reaches the client's loopback
// callback. Exit 0 on success.
//
// Environment:
//   SPOR_E2E_CONSENT_EVENTS    URL to POST JSON progress events to (lib/event_sink.mjs)
//   SPOR_E2E_CONSENT_ORG       organization slug to pick (default: the preselected one)
//   SPOR_E2E_CONSENT_DECISION  allow (default) or deny
//   SPOR_E2E_CONSENT_ACCESS    read_only, or tools:NAME,NAME (default: full)
//   SPOR_E2E_CONSENT_TIMEOUT_MS  overall bound (default 60000)
import { launchBrowser } from '../lib/browser.mjs';
import { consentInBrowser } from '../lib/consent.mjs';

const eventsUrl = process.env.SPOR_E2E_CONSENT_EVENTS;
const timeoutMs = Number(process.env.SPOR_E2E_CONSENT_TIMEOUT_MS ?? 60_000);

async function report(event, fields = {}) {
  const line = JSON.stringify({ event, pid: process.pid, at: Date.now(), ...fields });
  if (!eventsUrl) {
    process.stderr.write(`${line}\n`);
    return;
  }
  await fetch(eventsUrl, { method: 'POST', body: line, signal: AbortSignal.timeout(5_000) }).catch(() => {});
}

/** SPOR_E2E_CONSENT_ACCESS as consentInBrowser's `access`. */
function consentAccess(text) {
  if (!text || text === 'full') return undefined;
  if (text.startsWith('tools:')) return { tools: text.slice(6).split(',').filter(Boolean) };
  return text;
}

const url = process.argv[2];
const watchdog = setTimeout(async () => {
  await report('error', { message: `gave up after ${timeoutMs} ms` });
  process.exit(3);
}, timeoutMs);

let browser;
let code = 0;
try {
  if (!url) throw new Error('usage: browser-consent.mjs URL');
  const u = new URL(url);
  // Never report the query: state and challenge are not for logs.
  await report('start', { authorize: `${u.origin}${u.pathname}`, redirect_uri: u.searchParams.get('redirect_uri') });
  browser = await launchBrowser({ actionTimeoutMs: Math.min(20_000, timeoutMs) });
  const decision = process.env.SPOR_E2E_CONSENT_DECISION ?? 'allow';
  const result = await consentInBrowser(browser.page, url, {
    org: process.env.SPOR_E2E_CONSENT_ORG || undefined,
    decision,
    access: consentAccess(process.env.SPOR_E2E_CONSENT_ACCESS),
    waitForRedirect: true,
    timeoutMs: Math.min(20_000, timeoutMs),
    onStep: (name) => { void report('step', { name }); },
  });
  const r = new URL(result.redirectedTo);
  const text = await browser.page.locator('body').innerText({ timeout: 5_000 }).catch(() => '');
  await report('done', {
    decision,
    first_time: result.firstTime,
    redirected_to: `${r.origin}${r.pathname}`,
    has_code: r.searchParams.has('code'),
    error: r.searchParams.get('error'),
    page_text: text.slice(0, 500),
  });
} catch (err) {
  code = 1;
  const page = browser?.page;
  const where = page && !page.isClosed() ? page.url().replace(/\?.*/, '') : undefined;
  await report('error', { message: String(err?.stack ?? err), page: where });
} finally {
  await browser?.close();
  clearTimeout(watchdog);
  await report('exit', { code });
}
process.exit(code);
