// The official Python MCP SDK (`mcp`, in tests/e2e/.venv from
// scripts/setup.sh --test) as the host: python/client.py uses
// streamable_http_client + OAuthClientProvider, prints the authorization URL,
// and reads the callback URL from stdin. This test is the person and the
// host's browser: Chromium through consent (Organization + Allow), the
// redirect caught by a loopback callback server, its URL fed back to Python.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { addAccount, companionCli, grantsList, startCompanion, waitForActivity } from '../lib/companion.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { killAll, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { connectWithBearer, resultJson } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.SPOR_E2E_PYTHON ?? resolve(here, '../.venv/bin/python');
const CLIENT_PY = resolve(here, '../python/client.py');

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

/** The next JSON line on the script's stdout with one of `events`. */
async function nextEvent(proc, events, timeoutMs = 60_000) {
  const re = new RegExp(`^\\{"event": "(${events.join('|')})"`);
  const m = await proc.waitForLine(re, { stream: 'stdout', timeoutMs });
  const line = proc.linesOf('stdout').find((l) => l.startsWith(m[0]));
  return JSON.parse(line);
}

test('Python MCP SDK (streamable_http_client + OAuthClientProvider) through browser consent: list tools, call put_node', { timeout: 180_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  let py;
  await withDiagnostics('python_sdk', { procs: () => [companion?.proc, sandbox?.proc, py], page: () => browser?.page }, async () => {
    await access(PYTHON).catch(() => {
      throw new Error(`${PYTHON} is missing: run \`bash scripts/setup.sh --test\` (it creates tests/e2e/.venv with the pinned mcp SDK)`);
    });

    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Guido Example', email: 'guido@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const me = await (await fetch(`${sandbox.url}/v1/me`, { headers: { authorization: `Bearer ${pat}` }, signal: AbortSignal.timeout(10_000) })).json();
    const companionDir = await tempDir('spor-companion-');
    await addAccount(companionDir, sandbox.url, pat);
    companion = await startCompanion({ dataDir: companionDir });

    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());

    py = await start(PYTHON, [CLIENT_PY, companion.mcpUrl, callback.redirectUrl], {
      name: 'python-client',
      stdin: 'pipe',
      env: { PYTHONUNBUFFERED: '1' },
      ready: /^\{"event": "start"/,
      timeoutMs: 30_000,
    });
    const started = JSON.parse(py.linesOf('stdout')[0]);
    assert.match(started.mcp_version, /^\d+\.\d+\.\d+/);

    // 1. The SDK discovered, registered and asks the host to open the browser.
    const authz = await nextEvent(py, ['authorize', 'error']);
    assert.equal(authz.event, 'authorize', JSON.stringify(authz));
    const url = new URL(authz.url);
    assert.equal(`${url.origin}${url.pathname}`, `${companion.url}/oauth/authorize`);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('redirect_uri'), callback.redirectUrl);
    assert.equal(url.searchParams.get('resource'), companion.mcpUrl);

    // 2. The person: Organization + Allow. The host's loopback server gets the redirect.
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const consent = await consentInBrowser(browser.page, url, { org: 'acme', clientName: 'E2E Python SDK Client' });
    assert.equal(consent.firstTime, false);
    const params = await callback.next({ timeoutMs: 20_000 });
    assert.equal(params.get('error'), null);
    assert.equal(params.get('state'), url.searchParams.get('state'));
    assert.equal(params.get('iss'), companion.url);
    py.write(`${callback.redirectUrl}?${params.toString()}\n`);

    // 3. Code exchange, MCP session, tools/list, tools/call — all by the SDK.
    const connected = await nextEvent(py, ['connected', 'error']);
    assert.equal(connected.event, 'connected', JSON.stringify(connected));
    assert.equal(connected.server, 'spor-sandbox');
    assert.equal(connected.access_token_prefix, 'spor_oat_');
    const result = await nextEvent(py, ['result', 'error']);
    assert.equal(result.event, 'result', JSON.stringify(result));
    for (const t of ['put_node', 'get_node', 'query_graph', 'capture']) assert.ok(result.tools.includes(t), `tools: ${result.tools}`);
    assert.equal(result.put_node.is_error, false, JSON.stringify(result.put_node));
    assert.equal(result.put_node.structured.author, me.person, 'attributed to the PAT\'s person, not "mallory"');
    assert.equal(result.put_node.structured.title, 'From the Python SDK');
    const exit = await py.exitPromise;
    assert.equal(exit.code, 0, py.tail());

    // 4. The companion's view: one grant for the Python client, its calls logged.
    const { grants } = await grantsList(companion.dataDir, { all: true });
    assert.equal(grants.length, 1, JSON.stringify(grants));
    assert.equal(grants[0].client_name, 'E2E Python SDK Client');
    const { rows } = await waitForActivity(companion.dataDir, grants[0].id, (r) => r.some((x) => x.tool === 'put_node'));
    assert.ok(rows.some((r) => r.method === 'tools/call' && r.tool === 'put_node' && r.outcome === 'ok'), JSON.stringify(rows));
    assert.ok(rows.some((r) => r.method === 'tools/list'), JSON.stringify(rows));

    assertNoSecretsInOutput(companion.proc, { pat, authorization_code: params.get('code') });
    for (const line of py.lines) assert.ok(!/spor_(oat|ort|pat)_[A-Za-z0-9_-]{8,}/.test(line), `a token in the Python client's output: ${line.slice(0, 80)}`);
  });
});

test('Python MCP SDK with read-only access: tools/list offers reads only, put_node is refused naming it; after grants access --access full the same session writes', { timeout: 180_000 }, async () => {
  let sandbox;
  let companion;
  let browser;
  let py;
  await withDiagnostics('python_sdk_access', { procs: () => [companion?.proc, sandbox?.proc, py], page: () => browser?.page }, async () => {
    await access(PYTHON);
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Guido Example', email: 'guido@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const companionDir = await tempDir('spor-companion-');
    await addAccount(companionDir, sandbox.url, pat);
    companion = await startCompanion({ dataDir: companionDir });
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    py = await start(PYTHON, [CLIENT_PY, companion.mcpUrl, callback.redirectUrl, '--refused-then-allowed'], {
      name: 'python-client', stdin: 'pipe', env: { PYTHONUNBUFFERED: '1' }, ready: /^\{"event": "start"/, timeoutMs: 30_000,
    });
    const authz = await nextEvent(py, ['authorize', 'error']);
    assert.equal(authz.event, 'authorize', JSON.stringify(authz));
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    await consentInBrowser(browser.page, new URL(authz.url), { org: 'acme', access: 'read_only' });
    const params = await callback.next({ timeoutMs: 20_000 });
    py.write(`${callback.redirectUrl}?${params.toString()}\n`);

    const refused = await nextEvent(py, ['refused', 'error']);
    assert.equal(refused.event, 'refused', JSON.stringify(refused));
    assert.equal(refused.code, -32003, JSON.stringify(refused));
    assert.match(refused.message, /"put_node".*grants access/);
    assert.deepEqual(refused.tools, ['ask_user', 'get_node', 'query_graph', 'slow_count']);
    // Straight from the sandbox with the PAT: nothing was written.
    const stored = async () => {
      const direct = await connectWithBearer(`${sandbox.url}/mcp`, pat, { name: 'e2e-direct' });
      try {
        return resultJson(await direct.callTool({ name: 'query_graph', arguments: { query: 'From the Python SDK' } })).count;
      } finally {
        await direct.close();
      }
    };
    assert.equal(await stored(), 0);

    const { grants } = await grantsList(companion.dataDir);
    assert.deepEqual(grants[0].access, { kind: 'read_only' });
    const changed = await companionCli(companion.dataDir, ['grants', 'access', grants[0].id, '--access', 'full']);
    assert.equal(changed.code, 0, changed.stderr);
    py.write('go\n');
    const result = await nextEvent(py, ['result', 'error']);
    assert.equal(result.event, 'result', JSON.stringify(result));
    assert.equal(result.put_node.is_error, false, JSON.stringify(result.put_node));
    assert.equal((await py.exitPromise).code, 0, py.tail());
    assert.equal(await stored(), 1, 'written after the change, on the same session');
    const { rows } = await waitForActivity(companion.dataDir, grants[0].id, (r) => r.filter((x) => x.tool === 'put_node').length >= 2);
    const puts = rows.filter((r) => r.tool === 'put_node').map((r) => r.outcome).sort();
    assert.deepEqual(puts, ['denied', 'ok'], JSON.stringify(rows));
  });
});
