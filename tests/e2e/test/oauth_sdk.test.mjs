// The official MCP TypeScript SDK's OAuth client (`auth()`), a real headless
// Chromium on the consent page, a real spor-sandbox upstream and the real
// spor-companiond daemon. First-time setup (server URL + PAT pasted on the
// consent page), organization picker, code exchange with PKCE, refresh-token
// rotation, the /mcp bearer check, and a leak check over every log and file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { accountList, startCompanion } from '../lib/companion.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { assertNoSecretsInFiles, assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { killAll } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { MemoryProvider } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

async function postMcp(mcpUrl, token) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(mcpUrl, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e-bare-post', version: '0' } },
    }),
    signal: AbortSignal.timeout(15_000),
  });
  // The answer may be an SSE stream; we only need the status and headers.
  await res.body?.cancel().catch(() => {});
  return res;
}

test('MCP TypeScript SDK auth(): browser consent with first-time PAT, org picker, code + refresh rotation, no leaks', { timeout: 180_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  await withDiagnostics('oauth_sdk', { procs: () => [companion?.proc, sandbox?.proc], page: () => browser?.page }, async () => {
    // --- upstream: a person in org acme who is also a member of beta.
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({
      dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme', memberOf: ['beta'],
    });
    assert.match(pat, /^spor_pat_/);
    sandbox = await startSandbox({ dataDir: sandboxDir });

    // --- the companion: no account, no configured server, file secret store.
    companion = await startCompanion({ secretStore: 'file' });
    const { url: issuer, mcpUrl } = companion;
    const cliOutputs = [];
    const listAccounts = async () => {
      const { accounts, raw } = await accountList(companion.dataDir, { secretStore: 'file' });
      cliOutputs.push(raw.stdout, raw.stderr);
      return accounts;
    };
    assert.deepEqual(await listAccounts(), [], 'a fresh companion has no accounts');

    // --- the host side: callback server + browser + SDK provider.
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    // The host opens the browser; the person, first time: server URL + PAT,
    // then the organization picker (acme; beta has no token yet), Allow.
    const consent = [];
    const provider = new MemoryProvider(callback.redirectUrl, async (url) => {
      consent.push(await consentInBrowser(browser.page, url, {
        serverUrl: sandbox.url, pat, org: 'acme', clientName: 'E2E SDK Client',
      }));
    });

    // 1. Discovery, dynamic registration, authorization request.
    const first = await auth(provider, { serverUrl: mcpUrl });
    assert.equal(first, 'REDIRECT');
    assert.equal(provider.authorizationUrls.length, 1);
    const authzUrl = provider.authorizationUrls[0];
    assert.equal(`${authzUrl.origin}${authzUrl.pathname}`, `${issuer}/oauth/authorize`);
    assert.equal(authzUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authzUrl.searchParams.get('resource'), mcpUrl, 'the SDK sends the resource from protected-resource metadata');
    assert.ok(provider.clientInformation()?.client_id, 'dynamic client registration gave a client_id');

    // 2-3. Consent page: first-time token form, then the organization picker.
    await provider.pendingRedirect;
    assert.equal(consent.length, 1);
    assert.equal(consent[0].firstTime, true, 'a fresh companion asks for the token on the consent page');
    const acme = consent[0].options.find((o) => o.text.includes('(acme)'));
    assert.ok(acme && !acme.disabled, `acme is a usable Organization option: ${JSON.stringify(consent[0].options)}`);
    const beta = consent[0].options.find((o) => o.text.includes('(beta)'));
    assert.ok(beta, `beta (an org the person belongs to) is offered too: ${JSON.stringify(consent[0].options)}`);

    // 4. The redirect back to the host.
    const params = await callback.next({ timeoutMs: 20_000 });
    assert.equal(params.get('error'), null, `authorization error: ${params.get('error')} ${params.get('error_description')}`);
    const code = params.get('code');
    assert.ok(code, 'redirect carries a code');
    assert.equal(params.get('state'), provider.lastState, 'state round-trips');
    assert.equal(params.get('iss'), issuer, 'iss is the issuer (RFC 9207)');
    const asMeta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) })).json();
    assert.equal(asMeta.issuer, issuer);

    // 5. Code exchange.
    assert.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: code }), 'AUTHORIZED');
    const tokens1 = provider.tokens();
    assert.match(tokens1.access_token, /^spor_oat_/);
    assert.match(tokens1.refresh_token, /^spor_ort_/);
    assert.equal(tokens1.token_type.toLowerCase(), 'bearer');

    // 6. Refresh. The SDK's auth() refreshes whenever a refresh token is
    // stored (it does not look at expiry), which is what a host does after a
    // 401 on an expired access token.
    provider._tokens = { ...tokens1, expires_in: 0 };
    assert.equal(await auth(provider, { serverUrl: mcpUrl }), 'AUTHORIZED');
    const tokens2 = provider.tokens();
    assert.match(tokens2.access_token, /^spor_oat_/);
    assert.match(tokens2.refresh_token, /^spor_ort_/);
    assert.notEqual(tokens2.refresh_token, tokens1.refresh_token, 'refresh tokens rotate');
    assert.notEqual(tokens2.access_token, tokens1.access_token, 'a refresh issues a new access token');

    // 7. The account the consent page created.
    const accounts = await listAccounts();
    assert.equal(accounts.length, 1, JSON.stringify(accounts));
    assert.equal(accounts[0].name, 'Ada Lovelace');
    assert.equal(accounts[0].email, 'ada@example.test');
    assert.equal(accounts[0].org, 'acme');

    // 8. /mcp: the access token passes the bearer check; no token → 401 with
    // the protected-resource metadata URL.
    const withToken = await postMcp(mcpUrl, tokens2.access_token);
    assert.notEqual(withToken.status, 401, 'a fresh access token is accepted at /mcp');
    const anon = await postMcp(mcpUrl, undefined);
    assert.equal(anon.status, 401);
    assert.ok(
      (anon.headers.get('www-authenticate') ?? '').includes(`resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp"`),
      `WWW-Authenticate: ${anon.headers.get('www-authenticate')}`,
    );

    // 9. The first refresh token is spent. (DESIGN §4: inside a short grace
    // window a racing reuse gets the same successor pair; outside it, reuse is
    // a theft signal that revokes the whole grant.)
    const reuse = await fetch(`${issuer}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens1.refresh_token,
        client_id: provider.clientInformation().client_id,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    const reuseBody = await reuse.json();
    if (reuse.status === 200) {
      assert.equal(reuseBody.refresh_token, tokens2.refresh_token, 'a reuse inside the grace window returns the same successor pair, never a new one');
      assert.equal(reuseBody.access_token, tokens2.access_token);
    } else {
      assert.equal(reuse.status, 400, JSON.stringify(reuseBody));
      assert.equal(reuseBody.error, 'invalid_grant');
      const afterTheft = await postMcp(mcpUrl, tokens2.access_token);
      assert.equal(afterTheft.status, 401, 'reusing a spent refresh token revokes the whole grant');
      assert.match(afterTheft.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }

    // 10. Leak check: no secret in any log line (RUST_LOG=debug) or file.
    const secrets = {
      pat,
      authorization_code: code,
      code_verifier: provider.codeVerifier(),
      access_token_1: tokens1.access_token,
      access_token_2: tokens2.access_token,
      refresh_token_1: tokens1.refresh_token,
      refresh_token_2: tokens2.refresh_token,
    };
    assertNoSecretsInOutput(companion.proc, secrets);
    assertNoSecretsInOutput(sandbox.proc, secrets);
    for (const [name, value] of Object.entries(secrets)) {
      for (const out of cliOutputs) assert.ok(!out.includes(value), `${name} leaked in companion CLI output`);
    }
    const files = await assertNoSecretsInFiles(
      companion.dataDir,
      secrets,
      (file, secretName) => file === 'secrets.json' && secretName === 'pat',
    );
    // ...and the check can see a secret where one is meant to be.
    const store = files.find((f) => f.path.endsWith('/secrets.json'));
    assert.ok(store, `the file secret store secrets.json exists in ${companion.dataDir}: ${files.map((f) => f.path).join(', ')}`);
    assert.ok(store.bytes.includes(Buffer.from(pat)), 'the PAT is in secrets.json (proves the leak check reads the right files)');
    assert.ok(
      files.some((f) => !f.path.endsWith('/secrets.json')),
      'the data dir also holds the database, so the leak check covers it',
    );
  });
});
