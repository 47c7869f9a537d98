// The gateway through the MCP TypeScript SDK's own client: Client +
// StreamableHTTPClientTransport with an authProvider, so the SDK drives OAuth
// (401 → discovery → registration → redirectToAuthorization) and our provider
// plays the host: Chromium through consent (account pre-added with the CLI,
// so: Organization + Allow), then finishAuth and a reconnect. Then real MCP
// traffic through the companion to the real sandbox: tools/list, writes
// attributed to the PAT's person whatever `author` the assistant sends,
// progress notifications streamed before the result, a server-to-client
// elicitation answered by the client, the per-grant call log (tool names,
// never arguments), token revocation, and leak checks over logs and files.
// A second test: the upstream rejects the PAT mid-session (401 cascade), and
// the person recovers by pasting a new PAT on the consent page.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { accountList, addAccount, grantsList, readAllFiles, startCompanion, waitForActivity } from '../lib/companion.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { assertNoSecretsInFiles, assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { killAll } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { connectWithBearer, connectWithOAuth, MemoryProvider, resultJson, resultText, streamWatchingFetch } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

const TOOLS = ['put_node', 'get_node', 'query_graph', 'capture', 'slow_count', 'ask_user'];
const ACTIVITY_KEYS = ['account_id', 'at', 'duration_ms', 'era', 'grant_id', 'header_check', 'method', 'outcome', 'status', 'tool'];

test('TypeScript SDK Client through the gateway: OAuth by the SDK, tools, attribution, progress, elicitation, call log, revocation, no leaks', { timeout: 240_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  await withDiagnostics('gateway_sdk', { procs: () => [companion?.proc, sandbox?.proc], page: () => browser?.page }, async () => {
    // --- upstream and a companion that already holds the account.
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Grace Hopper', email: 'grace@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const meRes = await fetch(`${sandbox.url}/v1/me`, { headers: { authorization: `Bearer ${pat}` }, signal: AbortSignal.timeout(10_000) });
    assert.equal(meRes.status, 200);
    const me = await meRes.json();
    assert.ok(me.person, `the PAT is bound to a person: ${JSON.stringify(me)}`);

    const companionDir = await tempDir('spor-companion-');
    const cliOutputs = [];
    const added = await addAccount(companionDir, sandbox.url, pat);
    cliOutputs.push(added.stdout, added.stderr);
    companion = await startCompanion({ dataDir: companionDir });
    const { url: issuer, mcpUrl } = companion;

    // --- the host: loopback redirect target, browser, SDK provider.
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const consent = [];
    const provider = new MemoryProvider(callback.redirectUrl, async (url) => {
      consent.push(await consentInBrowser(browser.page, url, { org: 'acme', clientName: 'E2E SDK Client' }));
    });

    // Values that must never be stored or logged by the companion: they are
    // tool arguments and elicitation content, not audit facts.
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const question = `Which colour, ${canary}-question?`;
    const answer = `${canary}-answer`;
    const elicitations = [];
    const errors = [];
    const makeClient = () => {
      const c = new Client({ name: 'e2e-gateway-client', version: '0.0.0' }, { capabilities: { elicitation: {} } });
      c.setRequestHandler(ElicitRequestSchema, async (req) => {
        elicitations.push(req.params);
        return { action: 'accept', content: { answer } };
      });
      c.onerror = (e) => errors.push(e);
      return c;
    };

    // 1. OAuth, driven by the SDK transport.
    const streams = streamWatchingFetch();
    const { client, code } = await connectWithOAuth({ mcpUrl, provider, callback, makeClient, issuer, fetch: streams.fetch });
    cleanups.push(() => client.close());
    assert.equal(consent.length, 1);
    assert.equal(consent[0].firstTime, false, 'the account was pre-added, so consent is Organization + Allow');
    const tokens = provider.tokens();
    const verifier = provider.codeVerifier(); // a re-authorization later saves a new one
    assert.match(tokens.refresh_token, /^spor_ort_/);
    const authzUrl = provider.authorizationUrls[0];
    assert.equal(`${authzUrl.origin}${authzUrl.pathname}`, `${issuer}/oauth/authorize`);
    assert.equal(authzUrl.searchParams.get('resource'), mcpUrl);
    assert.equal(client.getServerVersion()?.name, 'spor-sandbox', 'initialize reached the upstream through the companion');

    // 2. tools/list: the upstream's tools, untouched.
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const t of TOOLS) assert.ok(names.includes(t), `tools/list has ${t}: ${names.join(', ')}`);

    // 3. Writes are the person's: the `author` the assistant sends is ignored.
    const put = await client.callTool({
      name: 'put_node',
      arguments: { title: `E2E note ${canary}`, body: `body ${canary}`, tags: ['e2e'], author: 'mallory' },
    });
    assert.ok(!put.isError, `put_node failed: ${resultText(put)}`);
    const node = resultJson(put);
    assert.match(node.id, /^n_/);
    assert.equal(node.author, me.person, 'the sandbox stamped the PAT\'s person as author');
    assert.notEqual(node.author, 'mallory');
    assert.equal(node.author_name, 'Grace Hopper');
    assert.equal(node.author_email, 'grace@example.test');
    assert.equal(node.org, 'acme');
    // Read back through the companion, and straight from the sandbox with the PAT.
    const viaCompanion = resultJson(await client.callTool({ name: 'get_node', arguments: { id: node.id } }));
    assert.equal(viaCompanion.author, me.person);
    const direct = await connectWithBearer(`${sandbox.url}/mcp`, pat, { name: 'e2e-direct' });
    try {
      const stored = resultJson(await direct.callTool({ name: 'get_node', arguments: { id: node.id } }));
      assert.equal(stored.author, me.person, 'the stored node is attributed to the person');
      assert.equal(stored.title, `E2E note ${canary}`);
    } finally {
      await direct.close();
    }

    // 4. Progress notifications stream through before the result.
    const order = [];
    const counted = await client.callTool(
      { name: 'slow_count', arguments: { steps: 5, delay_ms: 100 } },
      CallToolResultSchema,
      { onprogress: (p) => order.push({ kind: 'progress', progress: p.progress, total: p.total }), timeout: 30_000 },
    );
    order.push({ kind: 'result', text: resultText(counted) });
    assert.deepEqual(order, [
      ...[1, 2, 3, 4, 5].map((n) => ({ kind: 'progress', progress: n, total: 5 })),
      { kind: 'result', text: 'counted 5' },
    ]);

    // 5. A server-to-client request (elicitation/create) answered by the client.
    const asked = await client.callTool({ name: 'ask_user', arguments: { question } }, CallToolResultSchema, { timeout: 30_000 });
    assert.ok(!asked.isError, `ask_user failed: ${resultText(asked)}`);
    assert.equal(resultText(asked), `answer: ${answer}`);
    assert.equal(elicitations.length, 1);
    assert.equal(elicitations[0].message, question);

    // 6. The call log: tool names, never arguments.
    const { grants, raw: listRaw } = await grantsList(companion.dataDir);
    cliOutputs.push(listRaw.stdout, listRaw.stderr);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    const grant = grants[0];
    assert.equal(grant.client_name, 'E2E SDK Client');
    const wantTools = ['put_node', 'get_node', 'slow_count', 'ask_user'];
    const { rows, raws } = await waitForActivity(companion.dataDir, grant.id, (r) =>
      wantTools.every((t) => r.some((x) => x.method === 'tools/call' && x.tool === t)));
    for (const raw of raws) cliOutputs.push(raw.stdout, raw.stderr);
    for (const t of wantTools) {
      const row = rows.find((x) => x.method === 'tools/call' && x.tool === t);
      assert.ok(row, `activity has a tools/call row for ${t}: ${JSON.stringify(rows)}`);
      assert.equal(row.outcome, 'ok');
      assert.equal(row.status, 200);
      assert.equal(row.grant_id, grant.id);
    }
    assert.ok(rows.some((x) => x.method === 'tools/list'), 'tools/list is logged');
    assert.ok(rows.some((x) => x.method === 'initialize'), 'initialize is logged');
    for (const row of rows) assert.deepEqual(Object.keys(row).sort(), ACTIVITY_KEYS, `activity row fields: ${JSON.stringify(row)}`);
    const activityJson = JSON.stringify(rows);
    assert.ok(!activityJson.includes(canary), 'no argument or elicitation content in the call log');

    // 7. The host revokes its token (RFC 7009): the grant ends, and with it
    // the open standalone SSE stream (the one elicitation/create came on).
    assert.equal(streams.state.opened, 1, 'the SDK opened one standalone GET stream');
    assert.equal(streams.state.ended, 0, 'it is still open before the revocation');
    provider.onRedirect = undefined; // from now on, just record re-authorization attempts
    const redirectsBefore = provider.authorizationUrls.length;
    const revoke = await fetch(`${issuer}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token, token_type_hint: 'access_token', client_id: provider.clientInformation().client_id }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(revoke.status, 200);
    await revoke.body?.cancel();
    await streams.waitForEnd(1, { timeoutMs: 10_000 });
    const bare = await fetch(mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    await bare.body?.cancel();
    // The SDK: 401 → refresh (refused: the grant is gone) → a new authorization.
    await assert.rejects(
      client.callTool({ name: 'query_graph', arguments: {} }, CallToolResultSchema, { timeout: 20_000 }),
      (err) => err instanceof UnauthorizedError,
    );
    assert.ok(provider.authorizationUrls.length > redirectsBefore, 'the SDK asked to re-authorize after the revocation');
    const refresh = await fetch(`${issuer}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: provider.clientInformation().client_id }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(refresh.status, 400, 'the revoked grant\'s refresh token is dead too');
    assert.equal((await refresh.json()).error, 'invalid_grant');
    const { grants: after, raw: afterRaw } = await grantsList(companion.dataDir);
    cliOutputs.push(afterRaw.stdout, afterRaw.stderr);
    assert.deepEqual(after, [], 'no connected assistant is left');

    // 8. Leaks: no secret in the companion's debug log, CLI output or files;
    // no argument or elicitation content anywhere the companion writes.
    const secrets = {
      pat,
      authorization_code: code,
      code_verifier: verifier,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
    };
    const content = { canary };
    assertNoSecretsInOutput(companion.proc, { ...secrets, ...content });
    for (const [name, value] of Object.entries({ ...secrets, ...content })) {
      for (const out of cliOutputs) assert.ok(!out.includes(value), `${name} leaked in companion CLI output`);
    }
    await assertNoSecretsInFiles(companion.dataDir, { ...secrets, ...content },
      (file, secretName) => file === 'secrets.json' && secretName === 'pat');
    // ...and the check does see the companion's database.
    const files = await readAllFiles(companion.dataDir);
    assert.ok(files.some((f) => /\.(db|sqlite3?)$/.test(f.path)), `a database file in ${files.map((f) => f.path).join(', ')}`);
    assert.deepEqual(errors.filter((e) => !(e instanceof UnauthorizedError) && !/401|reconnect|SSE stream|aborted/i.test(String(e?.message))), [],
      'no unexpected transport errors');
  });
});

test('upstream rejects the PAT mid-session: 401 invalid_token to the SDK, grants revoked, account rejected; a new PAT pasted on the consent page reconnects', { timeout: 240_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  await withDiagnostics('gateway_sdk_pat_rejected', { procs: () => [companion?.proc, sandbox?.proc], page: () => browser?.page }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const companionDir = await tempDir('spor-companion-');
    await addAccount(companionDir, sandbox.url, pat);
    companion = await startCompanion({ dataDir: companionDir });
    const { url: issuer, mcpUrl } = companion;

    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const consent = [];
    const provider = new MemoryProvider(callback.redirectUrl, async (url) => {
      consent.push(await consentInBrowser(browser.page, url, { org: 'acme' }));
    });
    const makeClient = () => new Client({ name: 'e2e-gateway-client', version: '0.0.0' });
    const { client } = await connectWithOAuth({ mcpUrl, provider, callback, makeClient, issuer });
    cleanups.push(() => client.close());
    const ok = await client.callTool({ name: 'query_graph', arguments: {} });
    assert.ok(!ok.isError, resultText(ok));
    const tokens = provider.tokens();

    // The person revokes the PAT on the Spor server.
    const auth = { authorization: `Bearer ${pat}` };
    const list = await (await fetch(`${sandbox.url}/v1/me/tokens`, { headers: auth, signal: AbortSignal.timeout(10_000) })).json();
    assert.equal(list.count, 1);
    const del = await fetch(`${sandbox.url}/v1/me/tokens/${list.tokens[0].hash_prefix}`, { method: 'DELETE', headers: auth, signal: AbortSignal.timeout(10_000) });
    assert.equal(del.status, 200, await del.text());

    // The next call: upstream 401 → the companion answers 401 invalid_token,
    // and the SDK (refresh refused: the grant is gone) asks to re-authorize.
    provider.onRedirect = undefined;
    const before = provider.authorizationUrls.length;
    await assert.rejects(
      client.callTool({ name: 'query_graph', arguments: {} }, CallToolResultSchema, { timeout: 20_000 }),
      (err) => err instanceof UnauthorizedError,
    );
    assert.ok(provider.authorizationUrls.length > before, 'the SDK asked to re-authorize');
    const bare = await fetch(mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    await bare.body?.cancel();
    const { accounts } = await accountList(companion.dataDir);
    assert.equal(accounts.length, 1);
    assert.equal(accounts[0].status, 'rejected', JSON.stringify(accounts[0]));
    assert.deepEqual((await grantsList(companion.dataDir)).grants, [], 'the grants minted from the PAT were revoked');
    assert.ok(companion.proc.lines.some((l) => l.includes('rejected the stored token')), 'the companion logs the rejection');

    // Recovery: the person pastes a new PAT on the consent page; the host reconnects.
    const pat2 = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    const provider2 = new MemoryProvider(callback.redirectUrl, async (url) => {
      consent.push(await consentInBrowser(browser.page, url, { org: 'acme', pat: pat2 }));
    });
    const { client: client2 } = await connectWithOAuth({ mcpUrl, provider: provider2, callback, makeClient, issuer });
    cleanups.push(() => client2.close());
    assert.equal(consent.at(-1).firstTime, true, 'with the only token rejected, the page asks for a new one');
    const again = await client2.callTool({ name: 'query_graph', arguments: {} });
    assert.ok(!again.isError, resultText(again));
    const { accounts: after } = await accountList(companion.dataDir);
    assert.equal(after.length, 1, 'the new PAT replaced the rejected one for (server, acme)');
    assert.equal(after[0].status, 'valid', JSON.stringify(after[0]));
    assertNoSecretsInOutput(companion.proc, { pat, pat2, access_token: tokens.access_token, refresh_token: tokens.refresh_token });
  });
});
