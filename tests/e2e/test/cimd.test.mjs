// Client ID Metadata Documents with a real client: the MCP TypeScript SDK's
// OAuth client with `clientMetadataUrl` signs in to the companion without
// registering, headless Chromium sees "verified by docs.example.test" on the
// consent page, and tools are listed and called on a real spor-sandbox
// upstream. The same SDK without a document still registers (DCR) and is
// shown "name as stated by the app".
//
// The companion is crates/companion/examples/cimd_companion.rs: the real
// server with the file secret store over a data dir that `spor-companiond
// account add` prepared, whose fetcher reaches a local HTTPS document
// server (a CA made at start, a test name resolved to 127.0.0.1). The
// shipped binaries have no such seam.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { addAccount, grantsList } from '../lib/companion.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { CIMD_COMPANION } from '../lib/paths.mjs';
import { killAll, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { connectWithOAuth, MemoryProvider } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

const HOST_NAME = 'E2E Verified Host';

test('TypeScript SDK with clientMetadataUrl: no registration, consent "verified by docs.example.test", tools work; without it, DCR as before', { timeout: 180_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  await withDiagnostics('cimd', { procs: () => [companion, sandbox?.proc], page: () => browser?.page }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const dataDir = await tempDir('spor-companion-');
    await addAccount(dataDir, sandbox.url, pat);

    // The document lists port-less loopback redirect URIs, as Claude Code's
    // does; the SDK listens on an ephemeral port (RFC 8252 §7.3).
    companion = await start(CIMD_COMPANION, [
      '--data-dir', dataDir, '--name', HOST_NAME,
      '--redirect', 'http://127.0.0.1/callback', '--redirect', 'http://localhost/callback',
    ], { name: 'cimd-companion', env: { RUST_LOG: 'debug' }, ready: /listening on (http:\/\/127\.0\.0\.1:\d+)\/mcp/, readyStream: 'stdout', timeoutMs: 20_000 });
    const issuer = companion.ready[1];
    const mcpUrl = `${issuer}/mcp`;
    const documentUrl = companion.lines.map((l) => l.match(/^document at (https:\/\/\S+)$/)?.[1]).find(Boolean);
    assert.match(documentUrl ?? '', /^https:\/\/docs\.example\.test:\d+\/oauth\/client-metadata\.json$/);

    const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) })).json();
    assert.equal(meta.client_id_metadata_document_supported, true);

    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const makeClient = () => new Client({ name: 'e2e-cimd', version: '0.0.0' });

    // --- 1. with a document: the client_id is its URL.
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    const provider = new MemoryProvider(callback.redirectUrl,
      (u) => consentInBrowser(browser.page, u, { clientName: HOST_NAME, nameTag: 'verified by docs.example.test' }),
      { clientMetadataUrl: documentUrl });
    const { client } = await connectWithOAuth({ mcpUrl, provider, callback, makeClient, issuer });
    cleanups.push(() => client.close());
    assert.equal(provider.clientInformation()?.client_id, documentUrl, 'the SDK used the document URL as its client_id');
    assert.equal(new URL(provider.authorizationUrls[0]).searchParams.get('client_id'), documentUrl);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'put_node'), tools.map((t) => t.name).join());
    const put = await client.callTool({ name: 'put_node', arguments: { title: 'CIMD note', body: 'signed in with a document', tags: ['e2e'] } });
    assert.ok(!put.isError, JSON.stringify(put));
    assert.equal(JSON.parse(put.content[0].text).author_name, 'Ada Lovelace');

    let { grants } = await grantsList(dataDir);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    assert.equal(grants[0].client_id, documentUrl);
    assert.equal(grants[0].client_name, HOST_NAME);
    assert.equal(grants[0].verified_by, 'docs.example.test');

    // --- 2. the same SDK without a document registers, as before.
    const dcrCallback = await startCallbackServer();
    cleanups.push(() => dcrCallback.close());
    const dcr = new MemoryProvider(dcrCallback.redirectUrl,
      (u) => consentInBrowser(browser.page, u, { clientName: 'E2E SDK Client', nameTag: 'name as stated by the app' }));
    const { client: dcrClient } = await connectWithOAuth({ mcpUrl, provider: dcr, callback: dcrCallback, makeClient, issuer });
    cleanups.push(() => dcrClient.close());
    assert.match(dcr.clientInformation()?.client_id ?? '', /^client_[0-9a-f]+$/);
    assert.ok((await dcrClient.listTools()).tools.length > 0);
    ({ grants } = await grantsList(dataDir));
    const registered = grants.find((g) => g.client_id !== documentUrl);
    assert.equal(registered.verified_by, null);
  });
});
