// The MCP TypeScript SDK as an MCP host uses it: an in-memory
// OAuthClientProvider, and the connect → 401 → browser consent → finishAuth →
// reconnect dance that StreamableHTTPClientTransport expects of its host.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/**
 * An in-memory OAuthClientProvider, as an MCP host would implement it
 * (with `clientMetadataUrl`, one that identifies itself with a Client ID
 * Metadata Document instead of registering).
 * `onRedirect(url, provider)` plays the host opening the browser; it may
 * return a promise (kept in `pendingRedirect`, so the caller can await it).
 */
export class MemoryProvider {
  constructor(redirectUrl, onRedirect, { clientName = 'E2E SDK Client', clientMetadataUrl } = {}) {
    this._redirectUrl = redirectUrl;
    this.onRedirect = onRedirect;
    this._clientName = clientName;
    // A host that identifies itself with a Client ID Metadata Document.
    this._clientMetadataUrl = clientMetadataUrl;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.authorizationUrls = [];
    this.savedTokens = [];
    this.invalidated = [];
    this.pendingRedirect = undefined;
  }
  get redirectUrl() { return this._redirectUrl; }
  get clientMetadataUrl() { return this._clientMetadataUrl; }
  get clientMetadata() {
    return {
      client_name: this._clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }
  get lastState() { return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; this.savedTokens.push(tokens); }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }
  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
  async redirectToAuthorization(url) {
    this.authorizationUrls.push(url);
    // Like a host opening the browser: do not block the SDK on the person.
    this.pendingRedirect = Promise.resolve().then(() => this.onRedirect?.(url, this));
    this.pendingRedirect.catch(() => {}); // awaited (and reported) by the caller
  }
}

/**
 * Connect `makeClient()` to `mcpUrl` through OAuth: the first connect fails
 * with UnauthorizedError after the provider's redirect; then wait for the
 * browser step (`provider.pendingRedirect`) and the redirect to `callback`,
 * check `state` and `iss`, `transport.finishAuth(code)`, and connect a fresh
 * client on a fresh transport. Returns {client, transport, code, params}.
 */
export async function connectWithOAuth({ mcpUrl, provider, callback, makeClient, issuer, fetch, timeoutMs = 30_000 }) {
  const first = makeClient();
  const firstTransport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await assert.rejects(first.connect(firstTransport), (err) => err instanceof UnauthorizedError,
    'the first connect ends in UnauthorizedError after the redirect to the consent page');
  assert.equal(provider.authorizationUrls.length, 1, 'the SDK asked the host to open the authorization URL once');
  await provider.pendingRedirect;
  const params = await callback.next({ timeoutMs });
  assert.equal(params.get('error'), null, `authorization error: ${params.get('error')} ${params.get('error_description')}`);
  const code = params.get('code');
  assert.ok(code, 'redirect carries a code');
  assert.equal(params.get('state'), provider.lastState, 'state round-trips');
  if (issuer) assert.equal(params.get('iss'), issuer, 'iss is the issuer (RFC 9207)');
  await firstTransport.finishAuth(code);
  assert.match(provider.tokens()?.access_token ?? '', /^spor_oat_/);

  const client = makeClient();
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch });
  await client.connect(transport);
  return { client, transport, code, params };
}

/**
 * A `fetch` for StreamableHTTPClientTransport that watches its GET (SSE)
 * streams: `opened` counts them, `ended` counts those the server ended
 * cleanly (not the client aborting), `waitForEnd(n)` resolves once `n` did.
 */
export function streamWatchingFetch() {
  const state = { opened: 0, ended: 0 };
  const waiters = new Set();
  const watched = async (url, init) => {
    const res = await globalThis.fetch(url, init);
    if ((init?.method ?? 'GET').toUpperCase() !== 'GET' || !res.ok || !res.body) return res;
    state.opened += 1;
    const body = res.body.pipeThrough(new TransformStream({
      flush() {
        state.ended += 1;
        for (const w of [...waiters]) w();
      },
    }));
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return {
    fetch: watched,
    state,
    waitForEnd(n = 1, { timeoutMs = 10_000 } = {}) {
      if (state.ended >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = () => {
          if (state.ended < n) return;
          clearTimeout(timer);
          waiters.delete(w);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`only ${state.ended} of ${state.opened} GET streams ended within ${timeoutMs} ms (wanted ${n})`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
  };
}

/** A client speaking to `url` with a fixed bearer token (no OAuth). */
export async function connectWithBearer(url, token, { name = 'e2e-bearer-client' } = {}) {
  const client = new Client({ name, version: '0.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return client;
}

/** The text of a tool result's first text content. */
export function resultText(result) {
  return (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

/** A tool result's structured content (or its text parsed as JSON). */
export function resultJson(result) {
  if (result?.structuredContent) return result.structuredContent;
  return JSON.parse(resultText(result));
}
