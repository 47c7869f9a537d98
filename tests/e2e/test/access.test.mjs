// Each assistant's access, with real clients against the real daemon and a
// real spor-sandbox upstream (whose tools carry MCP annotations like Spor's):
//   1. the MCP TypeScript SDK with Chosen tools (query_graph and capture
//      ticked after the page reads the list, which opening it did not):
//      only those are listed and callable;
//   2. the same SDK, Read only chosen on the consent page in Chromium:
//      tools/list offers only read tools; put_node is refused with the error
//      that names it and the sandbox stores nothing; after `spor-companiond
//      grants access ID --access full` the same session's next put_node is
//      written;
//   3. our stdio bridge, as Claude Desktop runs it, Read only chosen through
//      $BROWSER: the same refusal, then Full from the CLI on the same bridge.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { addAccount, companionCli, grantsList, startCompanion } from '../lib/companion.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { startBrowserConsent } from '../lib/browser_consent.mjs';
import { COMPANIOND } from '../lib/paths.mjs';
import { killAll, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { connectWithBearer, connectWithOAuth, MemoryProvider, resultJson } from '../lib/sdk.mjs';
import { StdioRpc } from '../lib/stdio_rpc.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';


const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

const READS = ['ask_user', 'get_node', 'query_graph', 'slow_count'];

/** The sandbox's nodes whose title has `marker`, read straight from it with the PAT. */
async function stored(sandbox, pat, marker) {
  const direct = await connectWithBearer(`${sandbox.url}/mcp`, pat, { name: 'e2e-direct' });
  try {
    return resultJson(await direct.callTool({ name: 'query_graph', arguments: { query: marker } })).count;
  } finally {
    await direct.close();
  }
}

/** The grant whose client is named `name`. */
async function grantNamed(dataDir, name) {
  const { grants } = await grantsList(dataDir);
  const g = grants.find((x) => x.client_name === name);
  assert.ok(g, `a grant for ${name}: ${JSON.stringify(grants)}`);
  return g;
}

async function setAccess(dataDir, grantId, access) {
  const r = await companionCli(dataDir, ['grants', 'access', grantId, '--access', access]);
  assert.equal(r.code, 0, `grants access: ${r.stdout}\n${r.stderr}`);
}

const isDenied = (tool) => (e) => e.code === -32003 && e.message.includes(`"${tool}"`) && e.message.includes('grants access');

test('access with real clients: read only then full on the same session (TypeScript SDK, our bridge), chosen tools', { timeout: 240_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  let bridge;
  await withDiagnostics('access', { procs: () => [companion?.proc, sandbox?.proc, bridge], page: () => browser?.page }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const dataDir = await tempDir('spor-companion-');
    await addAccount(dataDir, sandbox.url, pat);
    companion = await startCompanion({ dataDir });
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const issuer = companion.url;

    const marker = `access-e2e-${randomBytes(4).toString('hex')}`;

    // --- 1. chosen tools, first, so the page has not seen the list: it
    // reads it when Chosen tools is picked, then two are ticked.
    const chosenCallback = await startCallbackServer();
    cleanups.push(() => chosenCallback.close());
    const chosen = new MemoryProvider(chosenCallback.redirectUrl,
      (u) => consentInBrowser(browser.page, u, { access: { tools: ['query_graph', 'capture'] } }), { clientName: 'Chooser' });
    const { client: chooser } = await connectWithOAuth({
      mcpUrl: companion.mcpUrl, provider: chosen, callback: chosenCallback, issuer,
      makeClient: () => new Client({ name: 'chooser', version: '0' }),
    });
    cleanups.push(() => chooser.close());
    assert.deepEqual((await grantNamed(dataDir, 'Chooser')).access, { kind: 'tools', tools: ['capture', 'query_graph'] });
    assert.deepEqual((await chooser.listTools()).tools.map((t) => t.name).sort(), ['capture', 'query_graph']);
    const captured = await chooser.callTool({ name: 'capture', arguments: { text: `${marker} captured` } });
    assert.notEqual(captured.isError, true, JSON.stringify(captured));
    await assert.rejects(chooser.callTool({ name: 'get_node', arguments: { id: 'n_x' } }), isDenied('get_node'));

    // --- 2. the TypeScript SDK, read only.
    const readerMark = `${marker}-reader`;
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    const provider = new MemoryProvider(callback.redirectUrl,
      (u) => consentInBrowser(browser.page, u, { access: 'read_only' }), { clientName: 'Reader' });
    const { client } = await connectWithOAuth({
      mcpUrl: companion.mcpUrl, provider, callback, issuer, makeClient: () => new Client({ name: 'reader', version: '0' }),
    });
    cleanups.push(() => client.close());
    const reader = await grantNamed(dataDir, 'Reader');
    assert.deepEqual(reader.access, { kind: 'read_only' });
    const listed = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(listed, READS);
    await assert.rejects(client.callTool({ name: 'put_node', arguments: { title: readerMark, body: 'x' } }), isDenied('put_node'));
    assert.equal(await stored(sandbox, pat, readerMark), 0, 'the sandbox stored nothing');

    await setAccess(dataDir, reader.id, 'full');
    const put = await client.callTool({ name: 'put_node', arguments: { title: readerMark, body: 'now allowed' } });
    assert.notEqual(put.isError, true, JSON.stringify(put));
    assert.equal(await stored(sandbox, pat, readerMark), 1, 'written after the change, same session');
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'put_node'), 'listed again');

    // --- 3. our stdio bridge, read only through $BROWSER, then full.
    const consent = await startBrowserConsent({ SPOR_E2E_CONSENT_ACCESS: 'read_only' });
    cleanups.push(consent.close);
    const bridgeDir = await tempDir('spor-bridge-');
    bridge = await start(COMPANIOND, ['--data-dir', bridgeDir, '--secret-store', 'file', 'bridge', companion.mcpUrl, '--callback-port', '0', '--auth-timeout', '60', '--name', 'Bridge Reader'], {
      name: 'spor-bridge', stdin: 'pipe',
      env: { ...consent.env, RUST_LOG: 'info' },
    });
    const rpc = new StdioRpc(bridge);
    cleanups.push(async () => rpc.close());
    await rpc.call('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'claude-desktop-e2e', version: '0' } }, { timeoutMs: 90_000 });
    rpc.notify('notifications/initialized');
    const bridged = await grantNamed(dataDir, 'Bridge Reader');
    assert.deepEqual(bridged.access, { kind: 'read_only' });
    assert.deepEqual((await rpc.call('tools/list', {})).tools.map((t) => t.name).sort(), READS);
    const refused = await rpc.request('tools/call', { name: 'put_node', arguments: { title: `${marker} bridge`, body: 'x' } });
    assert.ok(isDenied('put_node')(refused.error ?? {}), JSON.stringify(refused));
    await setAccess(dataDir, bridged.id, 'full');
    const written = await rpc.request('tools/call', { name: 'put_node', arguments: { title: `${marker} bridge`, body: 'y' } });
    assert.ok(!written.error && !written.result.isError, JSON.stringify(written));
    assert.equal(await stored(sandbox, pat, `${marker} bridge`), 1);
  });
});
