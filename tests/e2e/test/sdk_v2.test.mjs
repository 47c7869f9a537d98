// The MCP TypeScript SDK v2 client (@modelcontextprotocol/client) through the
// companion to a TypeScript SDK v2 server serving both eras on one endpoint
// (the conformance fixture, tests/conformance/fixture, as a generic upstream):
// the client's own OAuth against our authorization server (consent in
// Chromium); `auto` negotiation lands on 2026-07-28; tools/list; a tool call
// with progress; a listen stream that receives notifications/tools/list_changed;
// an input_required round trip answered by the client's elicitation handler;
// a client pinned to 2026-07-28; a legacy (2025-11-25) client with its
// session; the call log's era and header checks.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { grantsList, waitForActivity } from '../lib/companion.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { killAll } from '../lib/proc.mjs';
import { removeTempDirs } from '../lib/tmp.mjs';
import { MODERN, startV2World, textOf, until, v2Client } from '../lib/v2.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});


/** An OAuthClientProvider for the v2 SDK, in memory, as a host keeps one. */
class Provider {
  constructor(redirectUrl, onRedirect) {
    this.redirectUrl = redirectUrl;
    this.clientMetadata = {
      client_name: 'E2E SDK v2 Client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
    this.onRedirect = onRedirect;
    this.creds = new Map();
    this.redirects = [];
  }
  clientInformation(ctx) { return ctx ? this.creds.get(ctx.issuer) : this.creds.values().next().value; }
  saveClientInformation(info, ctx) { this.creds.set(ctx?.issuer ?? '', info); }
  tokens() { return this.saved; }
  saveTokens(t) { this.saved = t; }
  state() { this.lastState = randomBytes(16).toString('base64url'); return this.lastState; }
  saveDiscoveryState(s) { this.discovery = s; }
  discoveryState() { return this.discovery; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  redirectToAuthorization(url) {
    this.redirects.push(url);
    this.pending = Promise.resolve().then(() => this.onRedirect(url));
    this.pending.catch(() => {});
  }
}

test('TypeScript SDK v2 client ↔ companion ↔ TypeScript SDK v2 server: OAuth by the client, auto → 2026-07-28, pinned 2026-07-28, legacy; tools, progress, listen, input_required', { timeout: 180_000 }, async () => {
  let fixture;
  let dataDir;
  let companion;
  let browser;
  await withDiagnostics('sdk_v2', { procs: () => [companion?.proc, fixture], page: () => browser?.page }, async () => {
    // --- a v2 server behind the companion, as a generic upstream with its own token.
    ({ fixture, dataDir, companion } = await startV2World());
    const url = new URL(companion.mcpUrl);

    // --- 1. the v2 client's own OAuth: 401 → discovery → registration → consent → finishAuth.
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const provider = new Provider(callback.redirectUrl, (u) => consentInBrowser(browser.page, u, { clientName: 'E2E SDK v2 Client' }));
    const elicited = [];
    const first = v2Client('auto', elicited);
    const firstTransport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await assert.rejects(first.connect(firstTransport), (e) => e instanceof UnauthorizedError, 'the first connect asks for authorization');
    assert.equal(provider.redirects.length, 1);
    assert.equal(provider.redirects[0].origin, new URL(companion.url).origin, 'our authorization server, not the upstream');
    await provider.pending;
    const params = await callback.next({ timeoutMs: 20_000 });
    assert.equal(params.get('state'), provider.lastState);
    assert.equal(params.get('iss'), companion.url, 'RFC 9207 iss');
    await firstTransport.finishAuth(params);
    assert.match(provider.tokens()?.access_token ?? '', /^spor_oat_/);

    // --- 2. auto negotiation reaches the v2 server's 2026-07-28 through the companion.
    const client = v2Client('auto', elicited);
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    cleanups.push(() => client.close());
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);

    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const n of ['test_tool_with_progress', 'test_trigger_tool_change', 'test_input_required_result_elicitation']) {
      assert.ok(names.includes(n), `tools/list has ${n}: ${names}`);
    }
    assert.ok(!names.includes('test_dynamic_tool'));

    // A tool call with progress: three updates, then the result.
    const progress = [];
    const done = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, { onprogress: (p) => progress.push(p.progress) });
    assert.deepEqual(progress, [0, 50, 100]);
    assert.equal(textOf(done), 'Progress tool completed');

    // A listen stream that receives notifications/tools/list_changed.
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => { changed += 1; });
    const subscription = await client.listen({ toolsListChanged: true });
    assert.equal(subscription.honoredFilter.toolsListChanged, true);
    await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
    await until(() => changed === 1, 'notifications/tools/list_changed on the listen stream');
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'test_dynamic_tool'), 'the list really changed');

    // input_required: the server asks, the client's handler answers, the call is retried.
    const hello = await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} });
    assert.equal(textOf(hello), 'Hello, Ada!');
    assert.deepEqual(elicited, ['What is your name?']);

    await subscription.close();
    assert.equal(await subscription.closed, 'local');

    // --- 3. a client pinned to 2026-07-28 (the same grant's tokens).
    const pinned = v2Client({ pin: MODERN }, elicited);
    await pinned.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    cleanups.push(() => pinned.close());
    assert.equal(pinned.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(textOf(await pinned.callTool({ name: 'test_simple_text', arguments: {} })), 'This is a simple text response for testing.');

    // --- 4. a legacy client: initialize, a session bound to the grant, server-to-client requests.
    const legacy = v2Client(undefined, elicited);
    await legacy.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    cleanups.push(() => legacy.close());
    assert.equal(legacy.getProtocolEra(), 'legacy');
    const legacyProgress = [];
    await legacy.callTool({ name: 'test_tool_with_progress', arguments: {} }, { onprogress: (p) => legacyProgress.push(p.progress) });
    assert.deepEqual(legacyProgress, [0, 50, 100]);
    const legacyAnswer = await legacy.callTool({ name: 'test_elicitation', arguments: { message: 'Who are you?' } });
    assert.match(textOf(legacyAnswer), /action=accept/);
    assert.equal(elicited.at(-1), 'Who are you?');

    // --- 5. one grant; its call log names each call's era and header agreement.
    const { grants } = await grantsList(dataDir);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    const { rows } = await waitForActivity(dataDir, grants[0].id, (rs) =>
      rs.some((r) => r.era === 'legacy' && r.tool === 'test_elicitation') && rs.some((r) => r.method === 'subscriptions/listen'));
    const modernCall = rows.find((r) => r.tool === 'test_tool_with_progress' && r.era === 'modern');
    assert.ok(modernCall, JSON.stringify(rows));
    assert.equal(modernCall.header_check, 'consistent', 'the v2 client mirrors its headers');
    const listen = rows.find((r) => r.method === 'subscriptions/listen');
    assert.equal(listen.era, 'modern');
    assert.ok(rows.some((r) => r.method === 'initialize' && r.era === 'legacy'));
    for (const r of rows) assert.equal(Object.hasOwn(r, 'arguments'), false);
  });
});
