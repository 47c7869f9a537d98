// The real desktop app (target/debug/spor-companion) under Xvfb, driven by
// tauri-driver + WebKitWebDriver, with the real Secret Service (run.sh sets
// up the D-Bus session and keyring), the real spor-sandbox upstream, the
// official MCP TypeScript SDK as the assistant and headless Chromium as the
// assistant's browser tab.
//
// 1. First run: the SDK starts an authorization; the tab shows "Approve in
//    Spor Companion" (no Allow button); the app's consent view asks for the
//    server URL and PAT, then Allow; the SDK gets tokens and lists tools; the
//    grant appears in the window; Disconnect; the next call is 401. The PAT
//    is in the Secret Service and in no file.
// 2. Second run on the same data: consent without a PAT prompt (paste once).
// 3. A second launch with a spor-companion:// link is forwarded to the
//    running app (single instance) and opens the add-account form prefilled;
//    a link naming a server not used here (any web page can fire one) opens
//    it with a warning naming that origin, and nothing is stored.
// 4. "Connect assistant" → "Add to Claude Desktop" writes the app itself as
//    the bridge into $HOME/.config/Claude/claude_desktop_config.json, and
//    Remove takes exactly that entry out again.
// 5. Hosted Spor (a sandbox mapped as hosted, sleeping like a hosted graph):
//    Add account offers it first and says "Waking your Spor graph…" while it
//    wakes; a self-hosted server waking beyond the bound times out and
//    stores nothing; an idle window (and an idle daemon) ask the upstream
//    nothing for more than a minute, while opening the window checks once.
// Screenshots of the main window and the consent view: artifacts/desktop/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { freePort } from '../lib/net.mjs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ARTIFACTS_DIR, withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { assertNoSecretsInFiles, assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { killAll, run, start } from '../lib/proc.mjs';
import { hostedAs, mintPat, sandboxRequests, sleepSandbox, startSandbox } from '../lib/sandbox.mjs';
import { accountList, companionCli, startCompanion } from '../lib/companion.mjs';
import { connectWithOAuth, MemoryProvider } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';
import { WebDriver } from '../lib/webdriver.mjs';

const APP = process.env.SPOR_APP;
const TAURI_DRIVER = process.env.TAURI_DRIVER;
const SHOTS = join(ARTIFACTS_DIR, 'desktop');

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});


async function shot(wd, name) {
  await mkdir(SHOTS, { recursive: true });
  // Pictures after the finite animations (dialogs rising, toasts) ended;
  // spinners and pulses run forever and are left out.
  await wd.waitFor(`return document.getAnimations().every((a) =>
    a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity);`, { what: 'animations to end' });
  await writeFile(join(SHOTS, `${name}.png`), await wd.screenshot());
}

let sandbox;
let pat;
let dataDir;
let appPort;
let driver;

/** tauri-driver on free ports; the app it launches inherits `env`. */
async function startDriver(env) {
  const driverPort = await freePort();
  const nativePort = await freePort();
  const d = await start(TAURI_DRIVER, ['--port', String(driverPort), '--native-port', String(nativePort)], {
    name: 'tauri-driver',
    env: {
      // Debug logs from the app (and Tauri, through the log bridge) are part
      // of the leak check.
      RUST_LOG: 'debug',
      ...env,
    },
  });
  d.url = `http://127.0.0.1:${driverPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(`${d.url}/status`, { signal: AbortSignal.timeout(2_000) });
      if (r.status < 500) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`tauri-driver did not start:\n${d.tail(30)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return d;
}

before(async () => {
  assert.ok(APP && TAURI_DRIVER, 'run through tests/e2e/desktop/run.sh');
  const sandboxDir = await tempDir('spor-desktop-sandbox-');
  pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme', memberOf: ['beta'] });
  sandbox = await startSandbox({ dataDir: sandboxDir });
  dataDir = await tempDir('spor-desktop-data-');
  appPort = await freePort();
  driver = await startDriver({ SPOR_COMPANION_DATA_DIR: dataDir, SPOR_COMPANION_PORT: String(appPort) });
});

const t0 = Date.now();
const step = (what) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);

/** Runs `fn(wd)` against a freshly launched app; the app is always closed. */
async function withApp(fn, d = driver) {
  step('launching the app');
  const wd = await launchApp(d);
  try {
    return await fn(wd);
  } finally {
    step('closing the app');
    await wd.quit();
  }
}

// The single-instance plugin's D-Bus name (`identifier` + ".SingleInstance").
const INSTANCE_NAME = 'app.spor.companion.SingleInstance';

/**
 * Waits until no app owns the single-instance name. A closed session's app
 * may take a moment to exit; one launched before that would hand over to it
 * and exit at once, leaving WebDriver waiting for a window.
 */
async function waitNoInstance({ timeoutMs = 15_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await instanceRunning())) return;
    if (Date.now() > deadline) throw new Error(`an earlier app still owns ${INSTANCE_NAME} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether an app owns the single-instance name on this session bus. */
async function instanceRunning() {
  const r = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus',
    '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${INSTANCE_NAME}`], { timeoutMs: 5_000 });
  assert.equal(r.code, 0, `dbus-send failed: ${r.stderr}`);
  const m = /boolean (true|false)/.exec(r.stdout);
  assert.ok(m, `unexpected dbus-send answer: ${r.stdout}`);
  return m[1] === 'true';
}

async function launchApp(d) {
  await waitNoInstance();
  const wd = await WebDriver.launch(d.url, APP);
  step('session up');
  await wd.setWindowRect({ width: 1280, height: 800 }).catch((e) => step(`window rect: ${e.message}`));
  await wd.waitFor('return document.body.dataset.ready === "true";', { what: 'the main window to render', timeoutMs: 30_000 });
  return wd;
}

const mcpUrl = () => `http://127.0.0.1:${appPort}/mcp`;

/** The assistant's side: SDK + callback + Chromium tab showing the waiting page. */
async function startAssistant(clientName) {
  const callback = await startCallbackServer();
  cleanups.push(() => callback.close?.());
  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  let waitingText = '';
  const provider = new MemoryProvider(callback.redirectUrl, async (url, p) => {
    // Only the first authorization is the test's; after a Disconnect the SDK
    // re-authorizes by itself (as a host should), which is counted, not opened.
    if (p.authorizationUrls.length > 1) return;
    await browser.page.goto(String(url), { waitUntil: 'domcontentloaded' });
    waitingText = await browser.page.locator('body').innerText();
  }, { clientName });
  const connected = connectWithOAuth({
    mcpUrl: mcpUrl(),
    provider,
    callback,
    makeClient: () => new Client({ name: clientName, version: '1.0.0' }),
    issuer: `http://127.0.0.1:${appPort}`,
    timeoutMs: 60_000,
  });
  connected.catch(() => {});
  return { provider, browser, connected, waitingText: () => waitingText };
}

async function secretToolLookup(accountId) {
  const r = await run('secret-tool', ['lookup', 'service', 'spor-companion', 'username', accountId], { timeoutMs: 10_000 });
  return r.stdout;
}

test('first run: native consent with PAT paste, tools through the gateway, Disconnect ends access, PAT only in the keychain', { timeout: 240_000 }, async () => {
  let assistant;
  await withDiagnostics('desktop-first-run', { procs: () => [driver, sandbox?.proc], page: () => assistant?.browser.page }, async () => {
    await withApp(async (wd) => {
      const shownUrl = await wd.waitFor('return document.querySelector("#mcp-url").textContent;', { what: 'the MCP URL' });
      assert.equal(shownUrl, mcpUrl());
      const size = await wd.exec('return [window.innerWidth, window.innerHeight];');
      assert.ok(size[0] >= 1200, `window resized for the screenshots: ${size}`);
      await wd.waitVisible('#assistants-empty');
      await wd.waitVisible('#accounts-empty');
      // With no assistant yet, the connect buttons are in the empty state.
      await wd.waitVisible('#assistants-empty #connect-list:not([data-loading]) #connect-claude-desktop[data-state="not-connected"]',
        { what: 'the connect list' });
      assert.equal(await wd.exec('return document.querySelector("#open-connect").hidden;'), true);
      await shot(wd, 'main-window-empty');

      step('assistant starts an authorization');
      assistant = await startAssistant('Desktop E2E Assistant');
      // The app raises its consent view for this request.
      await wd.waitVisible('#consent', { timeoutMs: 30_000, what: 'the consent view' });
      await wd.waitFor('return document.querySelector("#consent").textContent.includes(arguments[0]);',
        { args: ['Desktop E2E Assistant'], what: 'the consent view to name the client' });
      assert.equal(await wd.exec('return document.querySelector("#consent .client-name bdi")?.textContent;'),
        'Desktop E2E Assistant', 'the self-declared name is shown bidi-isolated');
      // The assistant is this test process (the SDK and its callback server):
      // the window names it as the OS reports it, not as it claims.
      const me = `${realpathSync(process.execPath)} (pid ${process.pid})`;
      assert.equal(await wd.exec('return document.querySelector("#consent-program")?.textContent;'), me,
        'the program that registered');
      assert.equal(await wd.exec('return document.querySelector("#consent-listener")?.textContent;'), ` · held by ${me}`,
        'the program listening where the code goes');
      assert.equal(await wd.exec('return document.querySelectorAll("#consent .requester-warning").length;'), 0,
        'nothing that does not add up');
      // The browser tab only waits: web content cannot approve.
      await assistant.provider.pendingRedirect;
      assert.match(assistant.waitingText(), /Approve in Spor Companion/);
      assert.equal(await assistant.browser.page.getByRole('button', { name: 'Allow' }).count(), 0, 'no Allow button in the browser');

      step('consent view up');
      // First time: no account, so the view asks for the server and the PAT.
      await wd.waitVisible('#consent-token');
      await shot(wd, 'consent-first-run');
      // Hosted Spor is offered first; this test's server is the person's own.
      await wd.click('#consent-own-server');
      // A wrong token first: a clear error, nothing stored.
      await wd.type('#consent-server', sandbox.url);
      await wd.type('#consent-token', 'spor_pat_this_is_not_a_real_token_000000');
      await wd.click('#consent-add-token');
      await wd.waitFor('const e = document.querySelector("#consent-error"); return e && !e.hidden && e.textContent.trim();', { what: 'the token error' });
      assert.match(await wd.text('#consent-error'), /rejected/i);
      await wd.type('#consent-token', pat);
      await wd.click('#consent-add-token');
      await wd.waitVisible('#consent-allow', { what: 'the Allow button after the token was accepted' });
      await shot(wd, 'consent-view');
      await wd.click('#consent-allow');

      step('allowed; waiting for the SDK');
      const { client } = await assistant.connected;
      cleanups.push(() => client.close());
      const tools = await client.listTools();
      assert.ok(tools.tools.some((t) => t.name === 'put_node'), 'sandbox tools listed through the gateway');
      const put = await client.callTool({ name: 'put_node', arguments: { title: 'From the desktop e2e', body: 'hello' } });
      assert.notEqual(put.isError, true);
      const accessToken = assistant.provider.tokens().access_token;

      // The grant appears in the window by itself (live events).
      const grantId = await wd.waitFor(
        'const r = document.querySelector("#assistants [data-grant-id]"); return r && r.dataset.grantId;',
        { what: 'the connected assistant row' });
      const rowText = await wd.exec('return document.querySelector(`[data-grant-id="${arguments[0]}"]`).textContent;', grantId);
      assert.ok(rowText.includes('Desktop E2E Assistant'), `the row names the assistant: ${rowText}`);
      await wd.waitFor('const a = document.querySelector("#accounts [data-account-id]"); return a && a.dataset.state === "valid";', { what: 'the account card' });
      await shot(wd, 'main-window');

      step('disconnecting');
      // Disconnect: the very next call with that token is refused.
      await wd.click(`[data-grant-id="${grantId}"] button[data-action="disconnect"]`);
      await wd.waitFor(`return !document.querySelector('[data-grant-id="${grantId}"]');`, { what: 'the row to go' });
      const res = await fetch(mcpUrl(), {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /invalid_token/);
      await res.body?.cancel();
      await client.close();

      // The PAT is in the Secret Service, and in no file of the data dir or HOME.
      const accountId = await wd.exec('return document.querySelector("#accounts [data-account-id]").dataset.accountId;');
      assert.equal((await secretToolLookup(accountId)).trim(), pat, 'the keychain holds the PAT');
      await assertNoSecretsInFiles(dataDir, { pat, access: accessToken });
      await assertNoSecretsInFiles(process.env.HOME, { pat }, () => false);
      // Nor in anything the app logged (it logs to tauri-driver's output).
      assertNoSecretsInOutput(driver, { pat, access: accessToken });
    });
  });
});

test('second run on the same data: consent without asking for the PAT again', { timeout: 180_000 }, async () => {
  let assistant;
  await withDiagnostics('desktop-second-run', { procs: () => [driver, sandbox?.proc], page: () => assistant?.browser.page }, async () => {
    await withApp(async (wd) => {
      await wd.waitFor('return document.querySelectorAll("#accounts [data-account-id]").length === 1;', { what: 'the stored account' });
      assistant = await startAssistant('Second Assistant');
      await wd.waitVisible('#consent', { timeoutMs: 30_000, what: 'the consent view' });
      await wd.waitVisible('#consent-allow');
      assert.equal(await wd.exists('#consent-token'), false, 'no PAT prompt: pasted once');
      // The picker offers the stored org and the other org the person belongs to.
      const options = await wd.exec('return [...document.querySelectorAll("#consent-options input[name=account]")].map((i) => i.value);');
      assert.equal(options.length, 1, `one stored account to choose: ${JSON.stringify(options)}`);
      assert.ok((await wd.text('#consent-options')).includes('beta'), 'the org without a token is offered');
      await shot(wd, 'consent-picker');
      await wd.click('#consent-allow');
      const { client } = await assistant.connected;
      cleanups.push(() => client.close());
      const tools = await client.listTools();
      assert.ok(tools.tools.length > 0);
      await wd.waitFor('return document.querySelectorAll("#assistants [data-grant-id]").length === 1;', { what: 'the new assistant row' });
      await client.close();
    });
  });
});

test('access: Read only chosen in the native consent hides and refuses writes; changed to Full in the assistants list, the same session writes', { timeout: 180_000 }, async () => {
  let assistant;
  await withDiagnostics('desktop-access', { procs: () => [driver, sandbox?.proc], page: () => assistant?.browser.page }, async () => {
    await withApp(async (wd) => {
      await wd.waitFor('return document.querySelectorAll("#accounts [data-account-id]").length === 1;', { what: 'the stored account' });
      assistant = await startAssistant('Read-only Assistant');
      await wd.waitVisible('#consent-allow', { timeoutMs: 30_000, what: 'the consent view' });
      assert.equal(await wd.exec('return document.querySelector("#consent-access-full").checked;'), true, 'Full by default');
      await wd.click('#consent-access-read_only');
      await shot(wd, 'consent-access-read-only');
      await wd.click('#consent-allow');
      const { client } = await assistant.connected;
      cleanups.push(() => client.close());

      step('read only: the list and a refused write');
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('get_node') && names.includes('query_graph'), names.join());
      assert.ok(!names.includes('put_node') && !names.includes('capture'), `no writing tool offered: ${names}`);
      await assert.rejects(
        client.callTool({ name: 'put_node', arguments: { title: 'must not be written', body: 'x' } }),
        (e) => e.code === -32003 && /"put_node"/.test(e.message) && /grants access/.test(e.message),
      );

      const grantId = await wd.waitFor(
        'const r = [...document.querySelectorAll("#assistants [data-grant-id]")].find((r) => r.textContent.includes("Read-only Assistant")); return r && r.dataset.grantId;',
        { what: 'the read-only assistant row' });
      const row = `[data-grant-id="${grantId}"]`;
      await wd.waitFor(`return document.querySelector('${row} .row-access-value')?.dataset.access === "read_only";`, { what: 'the row to say read only' });

      step('changing the access in the list');
      await wd.click(`${row} button[data-action="access"]`);
      await wd.waitVisible(`${row} .access-panel`);
      await wd.click(`${row} .access-panel input[value="full"]`);
      await wd.waitFor(`return document.querySelector('${row} .access-panel input[value="full"]').checked;`, { what: 'Full picked' });
      // Two frames, so the screenshot shows the pick.
      await wd.exec('return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))));');
      await shot(wd, 'assistant-access-editor');
      await wd.click(`${row} button[data-action="save-access"]`);
      await wd.waitFor(`return document.querySelector('${row} .row-access-value')?.dataset.access === "full";`, { what: 'the row to say full' });
      await shot(wd, 'assistant-access-full');

      // The same session, no reconnection: the next write goes through.
      const put = await client.callTool({ name: 'put_node', arguments: { title: 'Written after the change', body: 'ok' } });
      assert.notEqual(put.isError, true, JSON.stringify(put));
      await client.close();
    });
  });
});

test('a second launch forwards its spor-companion:// link to the running app, which opens add-account prefilled', { timeout: 120_000 }, async () => {
  await withDiagnostics('desktop-deep-link', { procs: () => [driver], page: () => undefined }, async () => {
    await withApp(async (wd) => {
      assert.equal(await instanceRunning(), true, `the running app owns ${INSTANCE_NAME}`);
      const link = `spor-companion://add-account?server=${encodeURIComponent(sandbox.url)}&token=spor_pat_from_a_link_must_be_ignored`;
      const second = await run(APP, [link], {
        env: { SPOR_COMPANION_DATA_DIR: dataDir, SPOR_COMPANION_PORT: String(appPort) },
        timeoutMs: 30_000,
      });
      assert.equal(second.code, 0, `the second instance hands over and exits: ${second.stderr}`);
      await wd.waitVisible('#add-account-dialog', { what: 'the add-account dialog' });
      assert.equal(await wd.exec('return document.querySelector("#add-server").value;'), sandbox.url, 'server prefilled from the link');
      assert.equal(await wd.exec('return document.querySelector("#add-token").value;'), '', 'a token is never taken from a link');
      assert.equal(await wd.exec('return document.querySelector("#add-link-warning").hidden;'), true,
        'the server of the stored account: no warning');
      await shot(wd, 'add-account-from-link');
    });
  });
});

/** The servers of the accounts the app has stored, as its own overview reads them from the database. */
async function storedServers(wd) {
  await wd.exec(`window.__e2eServers = null;
    window.__TAURI__.core.invoke('overview').then((o) => { window.__e2eServers = o.accounts.map((a) => a.server); });`);
  return wd.waitFor('return window.__e2eServers;', { what: 'the overview' });
}

/** How many tokens the app keeps in the Secret Service (never printing them). */
async function keychainEntries() {
  const r = await run('secret-tool', ['search', '--all', 'service', 'spor-companion'], { timeoutMs: 10_000 });
  return `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('attribute.username = ')).length;
}

test('a link naming a server not used here opens add-account with a warning naming its origin, and stores nothing', { timeout: 120_000 }, async () => {
  await withDiagnostics('desktop-deep-link-unknown', { procs: () => [driver], page: () => undefined }, async () => {
    await withApp(async (wd) => {
      await wd.waitFor('return document.querySelectorAll("#accounts [data-account-id]").length === 1;', { what: 'the stored account' });
      const servers = await storedServers(wd);
      assert.deepEqual(servers, [sandbox.url]);
      const tokens = await keychainEntries();
      assert.equal(tokens, 1, 'the stored account\'s token is in the keychain');

      const origin = 'https://spor-attacker.example:8443';
      const link = `spor-companion://add-account?server=${encodeURIComponent(`${origin}/api`)}&token=spor_pat_from_a_link_must_be_ignored`;
      const second = await run(APP, [link], {
        env: { SPOR_COMPANION_DATA_DIR: dataDir, SPOR_COMPANION_PORT: String(appPort) },
        timeoutMs: 30_000,
      });
      assert.equal(second.code, 0, `the second instance hands over and exits: ${second.stderr}`);
      await wd.waitVisible('#add-account-dialog #add-link-warning', { what: 'the warning about the link' });
      const warning = await wd.text('#add-link-warning');
      assert.match(warning, /This link came from outside Spor Companion/);
      assert.ok(warning.includes(`It names a server not used here: ${origin}.`), `the warning names the full origin: ${warning}`);
      assert.equal(await wd.exec('return document.querySelector("#add-server").value;'), `${origin}/api`);
      assert.equal(await wd.exec('return document.querySelector("#add-token").value;'), '', 'a token is never taken from a link');
      await shot(wd, 'add-account-from-unknown-link');

      // The link submitted nothing: no account row, no keychain entry.
      await wd.click('#add-account-dialog .modal-foot [data-close]');
      await wd.waitFor('return !document.querySelector("#add-account-dialog").open;', { what: 'the dialog to close' });
      assert.deepEqual(await storedServers(wd), servers);
      assert.equal(await keychainEntries(), tokens);
    });
  });
});

test('connect: "Add to Claude Desktop" writes the app as the bridge, Remove takes the entry out', { timeout: 120_000 }, async () => {
  await withDiagnostics('desktop-connect', { procs: () => [driver], page: () => undefined }, async () => {
    await withApp(async (wd) => {
      // run.sh gives the app a throw-away HOME; this is where Claude Desktop reads on Linux.
      const config = join(process.env.HOME, '.config', 'Claude', 'claude_desktop_config.json');
      // Assistants exist by now (the second run's), so the list is behind the header button.
      await wd.waitFor('return document.querySelectorAll("#assistants [data-grant-id]").length > 0;', { what: 'a connected assistant' });
      await wd.waitVisible('#open-connect', { what: 'the Connect assistant button' });
      await wd.click('#open-connect');
      await wd.waitVisible('#connect-dialog #connect-list:not([data-loading]) #connect-claude-desktop[data-state="not-connected"]',
        { what: 'Claude Desktop, not connected' });
      const label = await wd.exec('return document.querySelector(\'#connect-claude-desktop button[data-action="write"]\').textContent;');
      assert.equal(label, 'Add to Claude Desktop');

      step('adding to Claude Desktop');
      await wd.click('#connect-claude-desktop button[data-action="write"]');
      await wd.waitVisible('#connect-claude-desktop[data-state="connected"]', { what: 'Claude Desktop connected' });
      const written = JSON.parse(await readFile(config, 'utf8'));
      assert.deepEqual(written, { mcpServers: { spor: { command: realpathSync(APP), args: ['bridge', mcpUrl()] } } });
      const resultText = () => wd.exec('return document.querySelector("#connect-claude-desktop .connect-result").textContent;');
      assert.equal(await resultText(), `Added spor to ${config}.`);
      await shot(wd, 'connect-dialog');

      step('removing from Claude Desktop');
      await wd.click('#connect-claude-desktop button[data-action="remove"]');
      await wd.waitVisible('#connect-claude-desktop[data-state="not-connected"]', { what: 'Claude Desktop disconnected' });
      const after = JSON.parse(await readFile(config, 'utf8'));
      assert.equal(after.mcpServers?.spor, undefined, 'the spor entry is gone');
      assert.deepEqual(after, {}, 'the file the app created is left empty');
      assert.match(await resultText(), /^Removed spor from .*claude_desktop_config\.json \(backup at .*\.spor-backup\)\.$/);
    });
  });
});

test('without a keychain the window says why, serves nothing and stores nothing', { timeout: 120_000 }, async () => {
  const noKeychainDir = await tempDir('spor-desktop-nokeychain-');
  const port = await freePort();
  // A session bus that does not exist: no Secret Service to keep tokens in.
  const bare = await startDriver({
    SPOR_COMPANION_DATA_DIR: noKeychainDir,
    SPOR_COMPANION_PORT: String(port),
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${noKeychainDir}/no-such-bus`,
  });
  try {
    await withDiagnostics('desktop-no-keychain', { procs: () => [bare], page: () => undefined }, async () => {
      await withApp(async (wd) => {
        await wd.waitVisible('#fatal-banner', { what: 'the start-up error' });
        const text = await wd.exec('return document.querySelector("#fatal-text").textContent;');
        assert.match(text, /keeps your tokens in the system keychain, and none is available/);
        assert.doesNotMatch(text, /--secret-store/, 'no daemon-only advice in the app');
        assert.equal(await wd.exec('return document.querySelector("#columns").hidden;'), true);
        assert.equal(await wd.exec('return document.querySelector("#status-text").textContent;'), 'Not running');
        await shot(wd, 'no-keychain');
        const res = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', signal: AbortSignal.timeout(5_000) }).catch((e) => e);
        assert.ok(res instanceof Error, 'nothing listens without the core');
        const r = await run('ls', ['-A', noKeychainDir]);
        assert.doesNotMatch(r.stdout, /secrets\.json/, 'no silent fallback to a secrets file');
      }, bare);
    });
  } finally {
    await bare.kill();
  }
});

// ------------------------------------------------------------ hosted Spor

/** Account rows as the app's own overview reads them. */
async function overviewAccounts(wd) {
  await wd.exec(`window.__e2eAccounts = null;
    window.__TAURI__.core.invoke('overview').then((o) => { window.__e2eAccounts = o.accounts; });`);
  return wd.waitFor('return window.__e2eAccounts;', { what: 'the overview' });
}

/** Clicks `button` and waits (bounded) until it says the graph is waking and `note` shows. */
async function submitAndSeeWaking(wd, button, note) {
  await wd.click(button);
  await wd.waitFor(`const b = document.querySelector(arguments[0]); const n = document.querySelector(arguments[1]);
    return b.textContent.includes('Waking your Spor graph…') && !n.hidden;`,
  { args: [button, note], timeoutMs: 5_000, what: 'the waking message' });
}

let hosted; // {sandbox, own, driver, dataDir, port, pat, ownPat}

test('hosted Spor: Add account offers it first and waits for a waking graph; a wake beyond the bound stores nothing', { timeout: 180_000 }, async () => {
  const sandboxDir = await tempDir('spor-desktop-hosted-');
  const ownDir = await tempDir('spor-desktop-own-');
  hosted = {
    pat: await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' }),
    ownPat: await mintPat({ dataDir: ownDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'own' }),
    sandbox: await startSandbox({ dataDir: sandboxDir, extraArgs: ['--wake-delay-ms', '3000'] }),
    own: await startSandbox({ dataDir: ownDir, extraArgs: ['--wake-delay-ms', '9000'] }),
    dataDir: await tempDir('spor-desktop-hosted-data-'),
    port: await freePort(),
  };
  // The bound is 6 s here (90 s by default).
  hosted.driver = await startDriver({
    SPOR_COMPANION_DATA_DIR: hosted.dataDir,
    SPOR_COMPANION_PORT: String(hosted.port),
    SPOR_COMPANION_HOSTED: hostedAs(hosted.sandbox),
    SPOR_COMPANION_WAKE_TIMEOUT_SECS: '6',
  });
  const hostedMcp = `http://localhost:${hosted.sandbox.port}/mcp`;
  await withDiagnostics('desktop-hosted-add', { procs: () => [hosted.driver, hosted.sandbox.proc, hosted.own.proc], page: () => undefined }, async () => {
    await withApp(async (wd) => {
      const tokens = await keychainEntries();
      await wd.click('#add-account');
      await wd.waitVisible('#add-account-dialog #add-hosted', { what: 'hosted Spor offered' });
      assert.equal(await wd.exec('return document.querySelector("#add-hosted").textContent;'), `Hosted Spor${hosted.sandbox.url}`);
      assert.equal(await wd.exec('return document.querySelector("#add-own-server").checked;'), false);
      assert.equal(await wd.exec('return document.querySelector("#add-own-fields").hidden;'), true, 'no URL to type');
      await wd.type('#add-token', hosted.pat);
      step('adding a token for hosted Spor while its graph wakes');
      await submitAndSeeWaking(wd, '#add-submit', '#add-wake');
      await shot(wd, 'add-account-waking');
      await wd.waitFor('return !document.querySelector("#add-account-dialog").open;', { what: 'the dialog to close', timeoutMs: 15_000 });
      const [account] = await overviewAccounts(wd);
      assert.equal(account.server, hosted.sandbox.url);
      assert.equal(account.mcpUrl, hostedMcp, "hosted Spor's own MCP endpoint");
      assert.equal(await keychainEntries(), tokens + 1);

      step('a self-hosted server waking beyond the bound');
      await wd.click('#add-account');
      await wd.waitVisible('#add-account-dialog #add-own-server');
      await wd.click('#add-own-server');
      await wd.type('#add-server', hosted.own.url);
      await wd.type('#add-token', hosted.ownPat);
      await submitAndSeeWaking(wd, '#add-submit', '#add-wake');
      await wd.waitVisible('#add-error', { what: 'the timeout', timeoutMs: 15_000 });
      const error = await wd.exec('return document.querySelector("#add-error").textContent;');
      assert.match(error, new RegExp(`^No answer from ${hosted.own.url}/v1/me within 6 s\\. A Spor graph that was asleep can take up to about a minute to wake up; nothing was stored, so try again\\.$`));
      assert.equal(await wd.exec('return document.querySelector("#add-wake").hidden;'), true, 'the waking note goes with the answer');
      assert.equal((await overviewAccounts(wd)).length, 1, 'nothing stored');
      assert.equal(await keychainEntries(), tokens + 1, 'no token kept');
      await wd.click('#add-account-dialog .modal-foot [data-close]');
    }, hosted.driver);
  });
});

test('hosted Spor: an idle window and an idle daemon ask the upstream nothing for over a minute; opening the window checks once', { timeout: 240_000 }, async () => {
  assert.ok(hosted, 'runs after the test above');
  await withDiagnostics('desktop-hosted-idle', { procs: () => [hosted.driver, hosted.sandbox.proc], page: () => undefined }, async () => {
    // A headless daemon with its own account on its own sandbox, idle too.
    const daemonDir = await tempDir('spor-desktop-daemon-');
    const daemonSandboxDir = await tempDir('spor-desktop-daemon-sandbox-');
    const daemonPat = await mintPat({ dataDir: daemonSandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    const daemonSandbox = await startSandbox({ dataDir: daemonSandboxDir });
    const add = await companionCli(daemonDir, ['account', 'add', '--server', daemonSandbox.url, '--token-stdin'], { input: daemonPat });
    assert.equal(add.code, 0, add.stderr);
    const daemon = await startCompanion({ dataDir: daemonDir });
    assert.equal((await accountList(daemonDir)).accounts.length, 1);

    const asked = async (s) => (await sandboxRequests(s.url)).count;
    const before = await asked(hosted.sandbox);
    const checks = async () => (await sandboxRequests(hosted.sandbox.url)).requests['GET /v1/me'] ?? 0;
    const checksBefore = await checks();
    await sleepSandbox(hosted.sandbox.url, 5000);
    await withApp(async (wd) => {
      step('the window opened: one check, which waits for the graph to wake');
      await wd.waitFor('return document.querySelector("#upstream-status").textContent.includes("Waking your Spor graph");',
        { what: 'the pill waking the graph', timeoutMs: 10_000 });
      await wd.waitFor('return document.querySelector("#upstream-status").dataset.state === "ok";',
        { what: 'the server reachable', timeoutMs: 15_000 });
      assert.equal(await checks(), checksBefore + 1, 'opening the window checks once');
      const opened = await asked(hosted.sandbox);
      assert.equal(opened, before + 1, 'and asks nothing else');
      const daemonAsked = await asked(daemonSandbox);

      step('idle for 65 s (the window used to ask every 60 s)');
      await new Promise((r) => setTimeout(r, 65_000));
      assert.equal(await asked(hosted.sandbox), opened, 'the idle window asked the upstream nothing');
      assert.equal(await asked(daemonSandbox), daemonAsked, 'the idle daemon asked the upstream nothing');

      step('"Check now" asks once more');
      await wd.click('#check-upstreams');
      await wd.waitFor('return document.querySelector("#upstream-status").dataset.state === "ok" && !!document.querySelector("#check-upstreams");',
        { what: 'the check to end', timeoutMs: 15_000 });
      assert.equal(await checks(), checksBefore + 2);
      await shot(wd, 'main-window-hosted');
    }, hosted.driver);
    await daemon.proc.kill();
  });
  await hosted.driver.kill();
});
