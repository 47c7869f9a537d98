// mcp-remote, the stdio bridge Claude Desktop runs (`npx mcp-remote URL`),
// against the real companion and sandbox. It is spawned exactly as a stdio
// MCP server is: `node <mcp-remote's bin> http://127.0.0.1:PORT/mcp`, stdin
// and stdout carrying JSON-RPC. On a machine without a desktop it opens the
// authorization URL with the `open` package → xdg-open → `$BROWSER URL`; our
// $BROWSER (bin/browser-consent.mjs) is headless Chromium deciding on the
// consent page (Organization + Allow) and letting the redirect reach
// mcp-remote's own loopback callback server.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { addAccount, grantsList, readAllFiles, startCompanion, waitForActivity } from '../lib/companion.mjs';
import { startEventSink } from '../lib/event_sink.mjs';
import { assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { killAll, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { StdioRpc } from '../lib/stdio_rpc.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const BROWSER_SCRIPT = resolve(here, '../bin/browser-consent.mjs');
const require = createRequire(import.meta.url);
const MCP_REMOTE_PKG = require.resolve('mcp-remote/package.json');
const MCP_REMOTE = JSON.parse(await readFile(MCP_REMOTE_PKG, 'utf8'));
// What `npx mcp-remote` runs: the package's `mcp-remote` bin.
const MCP_REMOTE_BIN = join(dirname(MCP_REMOTE_PKG), MCP_REMOTE.bin['mcp-remote']);

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

test(`mcp-remote ${MCP_REMOTE.version} over stdio, as Claude Desktop runs it: $BROWSER consent, initialize, tools/list, tools/call`, { timeout: 180_000 }, async () => {
  let sandbox;
  let companion;
  let remote;
  let sink;
  await withDiagnostics('mcp_remote', { procs: () => [companion?.proc, sandbox?.proc, remote] }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Katherine Johnson', email: 'kj@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const me = await (await fetch(`${sandbox.url}/v1/me`, { headers: { authorization: `Bearer ${pat}` }, signal: AbortSignal.timeout(10_000) })).json();
    const companionDir = await tempDir('spor-companion-');
    await addAccount(companionDir, sandbox.url, pat);
    companion = await startCompanion({ dataDir: companionDir });

    sink = await startEventSink();
    cleanups.push(() => sink.close());
    // The $BROWSER runs detached from mcp-remote (xdg-open, stdio ignored):
    // make sure it is gone at the end whatever happened.
    cleanups.push(async () => {
      for (const pid of new Set(sink.events.map((e) => e.pid).filter(Boolean))) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    });
    const configDir = await tempDir('mcp-remote-config-');

    // No desktop: xdg-open then runs $BROWSER.
    const noDesktop = {
      DISPLAY: undefined,
      WAYLAND_DISPLAY: undefined,
      XDG_CURRENT_DESKTOP: undefined,
      XDG_SESSION_DESKTOP: undefined,
      DESKTOP_SESSION: undefined,
      KDE_FULL_SESSION: undefined,
      GNOME_DESKTOP_SESSION_ID: undefined,
    };
    const spawning = start(process.execPath, [MCP_REMOTE_BIN, companion.mcpUrl], {
      name: 'mcp-remote',
      stdin: 'pipe',
      env: {
        ...noDesktop,
        BROWSER: BROWSER_SCRIPT,
        MCP_REMOTE_CONFIG_DIR: configDir,
        SPOR_E2E_CONSENT_EVENTS: sink.url,
        SPOR_E2E_CONSENT_ORG: 'acme',
        SPOR_E2E_CONSENT_TIMEOUT_MS: '60000',
      },
      ready: /Proxy established successfully/,
      readyStream: 'stderr',
      timeoutMs: 90_000,
    });
    remote = await spawning.catch((err) => {
      err.message += `\n$BROWSER events: ${JSON.stringify(sink.events)}`;
      throw err;
    });

    // The browser was $BROWSER, driven through consent to mcp-remote's callback.
    const done = await sink.waitFor((e) => e.event === 'done' || e.event === 'error', { what: 'consent result from $BROWSER' });
    assert.equal(done.event, 'done', JSON.stringify(done));
    assert.equal(done.first_time, false, 'the account was pre-added: Organization + Allow');
    assert.equal(done.has_code, true, 'the redirect to mcp-remote carried a code');
    assert.equal(done.error, null);
    const started = sink.events.find((e) => e.event === 'start');
    assert.equal(started.authorize, `${companion.url}/oauth/authorize`);
    const redirectUri = new URL(started.redirect_uri);
    assert.ok(['localhost', '127.0.0.1', '[::1]'].includes(redirectUri.hostname), `loopback redirect: ${started.redirect_uri}`);
    assert.equal(done.redirected_to, `${redirectUri.origin}${redirectUri.pathname}`);
    const exited = await sink.waitFor((e) => e.event === 'exit', { what: '$BROWSER exit' });
    assert.equal(exited.code, 0);

    // JSON-RPC over stdio, as the desktop app speaks it.
    const rpc = new StdioRpc(remote);
    cleanups.push(async () => rpc.close());
    const init = await rpc.call('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'claude-desktop-e2e', version: '0.0.0' },
    });
    assert.equal(init.serverInfo?.name, 'spor-sandbox', JSON.stringify(init));
    rpc.notify('notifications/initialized');
    const { tools } = await rpc.call('tools/list', {});
    const names = tools.map((t) => t.name);
    for (const t of ['put_node', 'get_node', 'query_graph', 'capture']) assert.ok(names.includes(t), `tools/list has ${t}: ${names}`);

    const canary = `remote-${randomBytes(8).toString('hex')}`;
    const put = await rpc.call('tools/call', { name: 'put_node', arguments: { title: `From Claude Desktop ${canary}`, author: 'mallory' } });
    assert.ok(!put.isError, JSON.stringify(put));
    assert.equal(put.structuredContent.author, me.person, 'attributed to the PAT\'s person');
    const found = await rpc.call('tools/call', { name: 'query_graph', arguments: { query: canary } });
    assert.ok(!found.isError, JSON.stringify(found));
    assert.equal(found.structuredContent.count, 1);
    assert.equal(found.structuredContent.nodes[0].id, put.structuredContent.id);

    // The companion sees one assistant, named as mcp-remote registers itself.
    const { grants } = await grantsList(companion.dataDir);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    const { rows } = await waitForActivity(companion.dataDir, grants[0].id, (r) => r.some((x) => x.tool === 'query_graph'));
    assert.ok(rows.some((r) => r.method === 'tools/call' && r.tool === 'put_node' && r.outcome === 'ok'), JSON.stringify(rows));
    assert.ok(rows.some((r) => r.method === 'tools/call' && r.tool === 'query_graph' && r.outcome === 'ok'), JSON.stringify(rows));

    // mcp-remote keeps its tokens in its config dir; the companion never logs them.
    const stored = (await readAllFiles(configDir)).filter((f) => f.path.endsWith('tokens.json'));
    assert.equal(stored.length, 1, `one tokens.json in ${configDir}`);
    const tokens = JSON.parse(stored[0].bytes.toString('utf8'));
    assert.match(tokens.access_token, /^spor_oat_/);
    assertNoSecretsInOutput(companion.proc, { pat, access_token: tokens.access_token, refresh_token: tokens.refresh_token, canary });

    // Claude Desktop stops the server by closing stdin / terminating it.
    await remote.kill({ graceMs: 5_000 });
    assert.ok(remote.exited);
  });
});
