// Hosted Spor out of the box, against the real daemon and a sandbox that
// sleeps like a hosted graph (`--wake-delay-ms`; `POST /_sandbox/sleep`
// sends it back to sleep). SPOR_COMPANION_HOSTED maps the sandbox as hosted
// Spor, its MCP endpoint on another origin (`localhost`), as hosted Spor's
// is on mcp.sporhq.io: nothing here touches the internet.
//
// 1. The consent page in Chromium offers hosted Spor with no URL to type;
//    a token pasted while the graph sleeps longer than the bound shows
//    "Waking your Spor graph…", then a clear timeout, and stores nothing;
//    pasted again while it wakes within the bound, it is stored with hosted
//    Spor's MCP URL, and the assistant's tools come through that endpoint.
// 2. `account add` with no --server: a 40 s wake with the default bound,
//    "Waking your Spor graph…" on standard error, stored with the hosted
//    MCP URL; a wake beyond a bound set short is a timeout that stores
//    nothing; a self-hosted server keeps SERVER/mcp, and --mcp-url sets it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { accountList, companionCli, startCompanion } from '../lib/companion.mjs';
import { assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { killAll } from '../lib/proc.mjs';
import { hostedAs, mintPat, sandboxRequests, sleepSandbox, startSandbox } from '../lib/sandbox.mjs';
import { connectWithOAuth, MemoryProvider } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

const WAKING = 'Waking your Spor graph…';

/**
 * Submits the page's token form and resolves once that page says the graph
 * is waking (bounded), with the note's text. The POST is still under way
 * then, and Playwright's locators and evaluate wait for that navigation
 * to end, so the page reports it itself: an observer installed first logs
 * to the console, whose messages arrive while the form is being answered.
 * Returns {note, submitted} (`submitted` settles once the answer loaded).
 */
async function submitAndSeeWaking(page, { timeoutMs = 4_000 } = {}) {
  let seen;
  const shown = new Promise((resolve) => { seen = resolve; });
  const onConsole = (m) => {
    if (m.text().startsWith('spor-e2e-waking:')) seen(m.text().slice('spor-e2e-waking:'.length));
  };
  page.on('console', onConsole);
  try {
    await page.evaluate((waking) => {
      const form = document.querySelector('.token-form');
      const button = form.querySelector('button[type=submit]');
      const note = form.querySelector('.wake');
      const report = () => {
        if (button.textContent === waking && !note.hidden) console.log(`spor-e2e-waking:${note.textContent}`);
      };
      new MutationObserver(report).observe(form, { subtree: true, childList: true, characterData: true, attributes: true });
    }, WAKING);
    const submitted = page.getByRole('button', { name: 'Add token' }).click();
    submitted.catch(() => {});
    let timer;
    const note = await Promise.race([
      shown,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the page did not say "${WAKING}" within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return { note, submitted };
  } finally {
    page.off('console', onConsole);
  }
}

/** The file store's entries (account ids), without reading a secret out loud. */
async function storedSecrets(dataDir) {
  try {
    return Object.keys(JSON.parse(await readFile(join(dataDir, 'secrets.json'), 'utf8')));
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
}

test('consent page: hosted Spor by default, "Waking your Spor graph…", a wake beyond the bound stores nothing, within it the hosted MCP URL', { timeout: 120_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  await withDiagnostics('hosted-page', { procs: () => [companion?.proc, sandbox?.proc], page: () => browser?.page }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir, extraArgs: ['--wake-delay-ms', '6000'] });
    // The bound is 4 s here (90 s by default) so the test need not wait a
    // minute and a half to see it hold.
    companion = await startCompanion({
      secretStore: 'file',
      env: { SPOR_COMPANION_HOSTED: hostedAs(sandbox), SPOR_COMPANION_WAKE_TIMEOUT_SECS: '4' },
    });
    const hostedMcp = `http://localhost:${sandbox.port}/mcp`;

    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    browser = await launchBrowser({ actionTimeoutMs: 20_000 });
    cleanups.push(() => browser.close());
    const { page } = browser;
    const provider = new MemoryProvider(callback.redirectUrl, async (url) => {
      await page.goto(String(url), { waitUntil: 'domcontentloaded' });
      // Hosted Spor, named, with nothing to type; the own-server field waits
      // behind its disclosure.
      assert.match(await page.locator('.server.hosted').innerText(), new RegExp(`Hosted Spor ${sandbox.url}`));
      assert.equal(await page.getByLabel('Spor server URL').isVisible(), false);

      // The graph sleeps longer than the bound.
      await sleepSandbox(sandbox.url, 6000);
      await page.getByLabel('Personal access token').fill(pat);
      let { note, submitted } = await submitAndSeeWaking(page);
      assert.match(note, /wakes your organization's Spor graph; this can take up to a minute/);
      await submitted;
      const error = page.locator('[data-error]');
      await error.waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal(await error.getAttribute('data-error'), 'timeout');
      assert.match(await error.innerText(), /within 4 s\. A Spor graph that was asleep can take up to about a minute to wake up; nothing was stored/);
      const { accounts: none } = await accountList(companion.dataDir);
      assert.deepEqual(none, [], 'nothing stored');
      assert.deepEqual(await storedSecrets(companion.dataDir), [], 'no PAT stored');

      // The graph wakes within the bound.
      await sleepSandbox(sandbox.url, 2500);
      await page.getByLabel('Personal access token').fill(pat);
      ({ submitted } = await submitAndSeeWaking(page));
      await submitted;
      const org = page.getByLabel('Organization');
      await org.waitFor({ state: 'visible', timeout: 15_000 });
      await page.getByRole('button', { name: 'Allow' }).click();
    });
    const { client } = await connectWithOAuth({
      mcpUrl: companion.mcpUrl,
      provider,
      callback,
      makeClient: () => new Client({ name: 'hosted-e2e', version: '1.0.0' }),
      issuer: companion.url,
      timeoutMs: 60_000,
    });
    cleanups.push(() => client.close());

    const { accounts } = await accountList(companion.dataDir);
    assert.equal(accounts.length, 1, JSON.stringify(accounts));
    assert.equal(accounts[0].server, sandbox.url, 'hosted Spor, as mapped');
    assert.equal(accounts[0].mcp_url, hostedMcp, "hosted Spor's own MCP endpoint, not SERVER/mcp");
    // The assistant's tools come from the hosted MCP endpoint.
    const before = (await sandboxRequests(sandbox.url)).requests['POST /mcp'] ?? 0;
    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'put_node'), 'sandbox tools through the gateway');
    assert.ok(((await sandboxRequests(sandbox.url)).requests['POST /mcp'] ?? 0) > before);
    await client.close();
    assertNoSecretsInOutput(companion.proc, { pat });
  });
});

test('account add: hosted Spor by default through a 40 s wake, a wake beyond the bound stores nothing, self-hosted SERVER/mcp and --mcp-url', { timeout: 180_000 }, async () => {
  let sandbox;
  await withDiagnostics('hosted-cli', { procs: () => [sandbox?.proc], page: () => undefined }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const acme = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme', memberOf: ['beta'] });
    const beta = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'beta' });
    // Cold: the first request of the day wakes the graph in 40 s.
    sandbox = await startSandbox({ dataDir: sandboxDir, extraArgs: ['--wake-delay-ms', '40000'] });
    const hosted = { SPOR_COMPANION_HOSTED: hostedAs(sandbox) };
    const hostedMcp = `http://localhost:${sandbox.port}/mcp`;
    const dataDir = await tempDir('spor-companion-');

    // The default bound (90 s) outlasts a 40 s wake.
    const cold = await companionCli(dataDir, ['account', 'add', '--token-stdin'], { input: acme, env: hosted, timeoutMs: 120_000 });
    assert.equal(cold.code, 0, `account add: ${cold.stdout}\n${cold.stderr}`);
    assert.match(cold.stderr, /Waking your Spor graph… The first request after a quiet spell can take up to a minute\./);
    assert.match(cold.stdout, new RegExp(`in org acme on ${sandbox.url} \\(MCP: ${hostedMcp}\\)`));
    let { accounts } = await accountList(dataDir);
    assert.equal(accounts.length, 1);
    assert.equal(accounts[0].mcp_url, hostedMcp);

    // Asleep again, longer than a bound set to 3 s: a clear timeout.
    await sleepSandbox(sandbox.url, 5000);
    const late = await companionCli(dataDir, ['account', 'add', '--token-stdin'], {
      input: beta, env: { ...hosted, SPOR_COMPANION_WAKE_TIMEOUT_SECS: '3' }, timeoutMs: 30_000,
    });
    assert.notEqual(late.code, 0, 'a wake beyond the bound fails');
    assert.match(late.stderr, /Waking your Spor graph…/);
    assert.match(late.stderr, new RegExp(`no answer from ${sandbox.url}/v1/me within 3 s\\. A Spor graph that was asleep can take up to about a minute to wake up; nothing was stored, so try again`));
    ({ accounts } = await accountList(dataDir));
    assert.deepEqual(accounts.map((a) => a.org), ['acme'], 'nothing stored');
    assert.equal((await storedSecrets(dataDir)).length, 1, 'no PAT stored');
    for (const r of [cold, late]) {
      assert.ok(!`${r.stdout}${r.stderr}`.includes(acme) && !`${r.stdout}${r.stderr}`.includes(beta), 'no token in the output');
    }

    // Not hosted (no mapping): a self-hosted server keeps SERVER/mcp…
    const own = await tempDir('spor-companion-');
    const plain = await companionCli(own, ['account', 'add', '--server', sandbox.url, '--token-stdin'], { input: acme, timeoutMs: 30_000 });
    assert.equal(plain.code, 0, plain.stderr);
    ({ accounts } = await accountList(own));
    assert.equal(accounts[0].mcp_url, `${sandbox.url}/mcp`);
    // …and --mcp-url sets another endpoint for a Spor account.
    const unusual = await tempDir('spor-companion-');
    const set = await companionCli(unusual, ['account', 'add', '--server', sandbox.url, '--mcp-url', hostedMcp, '--token-stdin'], { input: acme, timeoutMs: 30_000 });
    assert.equal(set.code, 0, set.stderr);
    ({ accounts } = await accountList(unusual));
    assert.equal(accounts[0].kind, 'spor');
    assert.equal(accounts[0].mcp_url, hostedMcp);
  });
});
