// The stdio bridges Claude Desktop can run, side by side on the same
// scenario: our built-in `spor-companiond bridge` and `mcp-remote` (what
// `npx mcp-remote URL` runs). Each is spawned exactly as a stdio MCP server
// is — a child whose stdin/stdout carry newline-delimited JSON-RPC — with
// $BROWSER set to bin/browser-consent.mjs, headless Chromium deciding on the
// companion's consent page and letting the redirect reach the bridge's own
// loopback callback. The scenario:
//   1. first launch: consent in the browser, initialize, tools/list, a
//      tools/call attributed to the PAT's person, a call with progress
//      notifications, and a server-to-client request (elicitation) answered
//      by the host;
//   2. a second launch reuses the stored tokens: no browser;
//   3. the grant is disconnected (`grants revoke`); the next call
//      re-authorizes through the browser and succeeds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { addAccount, companionCli, grantsList, readAllFiles, startCompanion, waitForActivity } from '../lib/companion.mjs';
import { NO_DESKTOP, startBrowserConsent } from '../lib/browser_consent.mjs';
import { startKeyring } from '../lib/keyring.mjs';
import { assertNoSecretsInFiles, assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { freePort } from '../lib/net.mjs';
import { COMPANIOND } from '../lib/paths.mjs';
import { killAll, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { StdioRpc } from '../lib/stdio_rpc.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const require = createRequire(import.meta.url);
const MCP_REMOTE_PKG = require.resolve('mcp-remote/package.json');
const MCP_REMOTE = JSON.parse(await readFile(MCP_REMOTE_PKG, 'utf8'));
// What `npx mcp-remote` runs: the package's `mcp-remote` bin.
const MCP_REMOTE_BIN = join(dirname(MCP_REMOTE_PKG), MCP_REMOTE.bin['mcp-remote']);
const HOST = { name: 'claude-desktop-e2e', version: '0.0.0' };


const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

/** Sandbox with one person, a companion holding their PAT, an event sink for $BROWSER. */
async function world() {
  const sandboxDir = await tempDir('spor-sandbox-');
  const pat = await mintPat({ dataDir: sandboxDir, name: 'Katherine Johnson', email: 'kj@example.test', org: 'acme' });
  const sandbox = await startSandbox({ dataDir: sandboxDir });
  const me = await (await fetch(`${sandbox.url}/v1/me`, { headers: { authorization: `Bearer ${pat}` }, signal: AbortSignal.timeout(10_000) })).json();
  const companionDir = await tempDir('spor-companion-');
  await addAccount(companionDir, sandbox.url, pat);
  const companion = await startCompanion({ dataDir: companionDir });
  const consent = await startBrowserConsent({ SPOR_E2E_CONSENT_ORG: 'acme' });
  cleanups.push(consent.close);
  const { sink, env: browserEnv } = consent;
  return { pat, me, sandbox, companion, sink, browserEnv };
}

const consents = (sink) => sink.events.filter((e) => e.event === 'done' || e.event === 'error');

/** Wait for the n-th consent result from $BROWSER and check it approved. */
async function consentNumber(sink, n) {
  const done = await sink.waitFor(() => consents(sink).length >= n, { what: `consent #${n} from $BROWSER` })
    .then(() => consents(sink)[n - 1]);
  assert.equal(done.event, 'done', JSON.stringify(done));
  assert.equal(done.has_code, true, 'the redirect to the bridge carried a code');
  assert.equal(done.error, null);
  return done;
}

async function initialize(rpc, timeoutMs) {
  const init = await rpc.call('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: { elicitation: {} },
    clientInfo: HOST,
  }, { timeoutMs });
  assert.equal(init.serverInfo?.name, 'spor-sandbox', JSON.stringify(init));
  rpc.notify('notifications/initialized');
  return init;
}

/** A tools/call with a progress token: progress arrives, in order, before the result. */
async function progressCall(rpc) {
  const token = `p-${randomBytes(4).toString('hex')}`;
  const before = rpc.messages.length;
  const res = await rpc.request('tools/call', { name: 'slow_count', arguments: { steps: 3, delay_ms: 50 }, _meta: { progressToken: token } });
  assert.ok(!res.error && !res.result.isError, JSON.stringify(res));
  assert.equal(res.result.content[0].text, 'counted 3');
  const seen = rpc.messages.slice(before);
  const progress = seen.filter((m) => m.method === 'notifications/progress' && m.params?.progressToken === token);
  assert.deepEqual(progress.map((m) => m.params.progress), [1, 2, 3], JSON.stringify(seen));
  assert.ok(seen.indexOf(progress[2]) < seen.indexOf(res), 'progress came before the result');
}

/** The server asks the host (elicitation/create); the host answers through the bridge. */
async function serverToClientRequest(rpc) {
  const answer = `forty-two-${randomBytes(3).toString('hex')}`;
  const pending = rpc.request('tools/call', { name: 'ask_user', arguments: { question: 'What is the answer?' } });
  const start = rpc.messages.length;
  const ask = await new Promise((resolveAsk, rejectAsk) => {
    const deadline = Date.now() + 20_000;
    const poll = setInterval(() => {
      const m = rpc.messages.slice(Math.max(0, start - 5)).find((x) => x.method === 'elicitation/create');
      if (m) { clearInterval(poll); resolveAsk(m); } else if (Date.now() > deadline) { clearInterval(poll); rejectAsk(new Error(`no elicitation/create: ${JSON.stringify(rpc.messages.slice(-5))}`)); }
    }, 20);
  });
  assert.equal(ask.params.message, 'What is the answer?');
  rpc.send({ jsonrpc: '2.0', id: ask.id, result: { action: 'accept', content: { answer } } });
  const res = await pending;
  assert.ok(!res.error && !res.result.isError, JSON.stringify(res));
  assert.equal(res.result.content[0].text, `answer: ${answer}`);
}

async function putNode(rpc, me, canary) {
  const put = await rpc.call('tools/call', { name: 'put_node', arguments: { title: `From Claude Desktop ${canary}`, author: 'mallory' } }, { timeoutMs: 90_000 });
  assert.ok(!put.isError, JSON.stringify(put));
  assert.equal(put.structuredContent.author, me.person, 'attributed to the PAT\'s person');
  return put;
}

async function activeGrants(companion) {
  const { grants } = await grantsList(companion.dataDir);
  return grants;
}

/**
 * The shared scenario. `bridge.launch()` spawns one bridge process and
 * resolves once it can take messages; `bridge.tokens()` reads what it stored.
 */
async function scenario(w, bridge) {
  const { me, companion, sink } = w;
  // 1. First launch: consent in the browser.
  const first = await bridge.launch();
  const rpc1 = new StdioRpc(first);
  cleanups.push(async () => rpc1.close());
  await initialize(rpc1, 90_000);
  const consent1 = await consentNumber(sink, 1);
  assert.equal(consent1.first_time, false, 'the account was pre-added: Organization + Allow');
  const started = sink.events.find((e) => e.event === 'start');
  assert.equal(started.authorize, `${companion.url}/oauth/authorize`);
  const redirect = new URL(started.redirect_uri);
  assert.ok(['localhost', '127.0.0.1', '[::1]'].includes(redirect.hostname), `loopback redirect: ${started.redirect_uri}`);
  assert.equal(consent1.redirected_to, `${redirect.origin}${redirect.pathname}`);
  bridge.checkRedirect?.(redirect);

  const { tools } = await rpc1.call('tools/list', {});
  const names = tools.map((t) => t.name);
  for (const t of ['put_node', 'get_node', 'query_graph', 'capture', 'slow_count']) assert.ok(names.includes(t), `tools/list has ${t}: ${names}`);
  const canary = `bridge-${randomBytes(8).toString('hex')}`;
  const put = await putNode(rpc1, me, canary);
  await progressCall(rpc1);
  await serverToClientRequest(rpc1);

  const grants1 = await activeGrants(companion);
  assert.equal(grants1.length, 1, JSON.stringify(grants1));
  bridge.checkGrant?.(grants1[0]);
  const { rows } = await waitForActivity(companion.dataDir, grants1[0].id, (r) => r.some((x) => x.tool === 'ask_user'));
  for (const tool of ['put_node', 'slow_count', 'ask_user']) {
    assert.ok(rows.some((r) => r.method === 'tools/call' && r.tool === tool && r.outcome === 'ok'), `${tool} in ${JSON.stringify(rows)}`);
  }
  const tokens1 = await bridge.tokens();
  assert.match(tokens1.access_token, /^spor_oat_/);
  assert.match(tokens1.refresh_token, /^spor_ort_/);
  await bridge.stop(first);

  // 2. Second launch: the stored tokens, no browser.
  const second = await bridge.launch();
  const rpc2 = new StdioRpc(second);
  cleanups.push(async () => rpc2.close());
  await initialize(rpc2, 30_000);
  const found = await rpc2.call('tools/call', { name: 'query_graph', arguments: { query: canary } });
  assert.ok(!found.isError, JSON.stringify(found));
  assert.equal(found.structuredContent.count, 1);
  assert.equal(found.structuredContent.nodes[0].id, put.structuredContent.id);
  assert.equal(sink.events.filter((e) => e.event === 'start').length, 1, 'the second launch opened no browser');
  assert.deepEqual((await activeGrants(companion)).map((g) => g.id), [grants1[0].id], 'still the one grant');

  // 3. Disconnected in the companion: the next call re-authorizes.
  const revoked = await companionCli(companion.dataDir, ['grants', 'revoke', grants1[0].id]);
  assert.equal(revoked.code, 0, revoked.stderr);
  const again = `again-${randomBytes(8).toString('hex')}`;
  await putNode(rpc2, me, again);
  const consent2 = await consentNumber(sink, 2);
  assert.equal(consent2.first_time, false);
  const grants2 = await activeGrants(companion);
  assert.equal(grants2.length, 1, JSON.stringify(grants2));
  assert.notEqual(grants2[0].id, grants1[0].id, 'a new grant replaced the disconnected one');
  await progressCall(rpc2);
  const tokens2 = await bridge.tokens();
  assert.notEqual(tokens2.refresh_token, tokens1.refresh_token);
  await bridge.stop(second);

  // No token or PAT in anything the companion or the bridges printed.
  const secrets = {
    pat: w.pat,
    access_token_1: tokens1.access_token,
    refresh_token_1: tokens1.refresh_token,
    access_token_2: tokens2.access_token,
    refresh_token_2: tokens2.refresh_token,
  };
  assertNoSecretsInOutput(companion.proc, secrets);
  for (const p of [first, second]) assertNoSecretsInOutput(p, secrets);
  return { secrets };
}

test('spor-companiond bridge over stdio, as Claude Desktop runs it: consent, calls, progress, server requests, token reuse, re-authorization after Disconnect; tokens in the keychain', { timeout: 240_000 }, async () => {
  let w;
  const procs = [];
  await withDiagnostics('stdio_bridge_spor', { procs: () => [w?.companion?.proc, w?.sandbox?.proc, ...procs] }, async () => {
    w = await world();
    const keyring = await startKeyring();
    cleanups.push(() => keyring.stop());
    const bridgeDir = await tempDir('spor-bridge-');
    const callbackPort = await freePort();
    const clientName = `${HOST.name} via Spor bridge`;
    const bridge = {
      async launch() {
        const p = await start(COMPANIOND, ['--data-dir', bridgeDir, 'bridge', w.companion.mcpUrl, '--callback-port', String(callbackPort), '--auth-timeout', '90'], {
          name: 'spor-bridge',
          stdin: 'pipe',
          env: { ...w.browserEnv, ...keyring.env, RUST_LOG: 'debug' },
        });
        procs.push(p);
        return p;
      },
      checkRedirect(redirect) {
        assert.equal(redirect.href, `http://127.0.0.1:${callbackPort}/callback`, 'the stable callback port');
      },
      checkGrant(grant) {
        assert.equal(grant.client_name, clientName, 'consent named the host');
      },
      async tokens() {
        const raw = await keyring.lookup({ service: 'spor-companion-bridge', username: `${w.companion.mcpUrl}#${clientName}` });
        assert.ok(raw, 'the bridge keeps its tokens in the keychain');
        return JSON.parse(raw);
      },
      async stop(p) {
        // Claude Desktop closes stdin: the bridge ends the session and exits 0.
        p.child.stdin.end();
        const { code, signal } = await Promise.race([
          p.exitPromise,
          new Promise((_, rej) => setTimeout(() => rej(new Error(`bridge did not exit after stdin closed\n${p.tail()}`)), 15_000)),
        ]);
        assert.deepEqual({ code, signal }, { code: 0, signal: null }, p.tail());
      },
    };
    const { secrets } = await scenario(w, bridge);
    // Nothing on disk but the lock file: no token in the bridge's data dir.
    const files = await readAllFiles(bridgeDir);
    assert.deepEqual(files.map((f) => f.path.slice(bridgeDir.length)).filter((p) => !p.endsWith('.lock')), [], 'only lock files on disk');
    // The companion's file store holds the PAT by design; nothing else may.
    await assertNoSecretsInFiles(w.companion.dataDir, secrets, (file, name) => file === 'secrets.json' && name === 'pat');
  });
});

test(`mcp-remote ${MCP_REMOTE.version} on the same scenario (parity)`, { timeout: 240_000 }, async () => {
  let w;
  const procs = [];
  await withDiagnostics('stdio_bridge_mcp_remote', { procs: () => [w?.companion?.proc, w?.sandbox?.proc, ...procs] }, async () => {
    w = await world();
    const configDir = await tempDir('mcp-remote-config-');
    const bridge = {
      async launch() {
        const p = start(process.execPath, [MCP_REMOTE_BIN, w.companion.mcpUrl], {
          name: 'mcp-remote',
          stdin: 'pipe',
          env: { ...w.browserEnv, MCP_REMOTE_CONFIG_DIR: configDir },
          // mcp-remote authorizes before it reads stdin.
          ready: /Proxy established successfully/,
          readyStream: 'stderr',
          timeoutMs: 90_000,
        });
        const proc = await p.catch((err) => {
          err.message += `\n$BROWSER events: ${JSON.stringify(w.sink.events)}`;
          throw err;
        });
        procs.push(proc);
        return proc;
      },
      async tokens() {
        const stored = (await readAllFiles(configDir)).filter((f) => f.path.endsWith('tokens.json'));
        assert.equal(stored.length, 1, `one tokens.json in ${configDir}`);
        return JSON.parse(stored[0].bytes.toString('utf8'));
      },
      async stop(p) {
        await p.kill({ graceMs: 5_000 });
        assert.ok(p.exited);
      },
    };
    await scenario(w, bridge);
  });
});

test('spor-companiond bridge: refused URLs, a stopped companion, garbage input and a denied consent get clear answers and store nothing', { timeout: 180_000 }, async () => {
  let w;
  const procs = [];
  await withDiagnostics('stdio_bridge_errors', { procs: () => [w?.companion?.proc, w?.sandbox?.proc, ...procs] }, async () => {
    const bridgeDir = await tempDir('spor-bridge-');
    const launch = async (url, env = {}) => {
      const p = await start(COMPANIOND, ['--data-dir', bridgeDir, '--secret-store', 'file', 'bridge', url, '--callback-port', '0', '--auth-timeout', '60'], {
        name: 'spor-bridge', stdin: 'pipe', env: { RUST_LOG: 'debug', ...env },
      });
      procs.push(p);
      return p;
    };
    const closeAndExit = async (p) => {
      p.child.stdin.end();
      const r = await Promise.race([p.exitPromise, new Promise((_, rej) => setTimeout(() => rej(new Error(`no exit after stdin closed\n${p.tail()}`)), 15_000))]);
      assert.deepEqual({ code: r.code, signal: r.signal }, { code: 0, signal: null }, p.tail());
    };

    // Plain http to another machine would put tokens on the wire: refused before anything runs.
    const lan = await launch('http://192.168.1.2:7767/mcp');
    const lanExit = await lan.exitPromise;
    assert.equal(lanExit.code, 1);
    assert.match(lan.output.map((o) => o.line).join('\n'), /error: http:\/\/192\.168\.1\.2:7767\/mcp is plain http on another machine; use https/);
    assert.deepEqual(await readAllFiles(bridgeDir), [], 'nothing written');

    // Nothing listening: garbage gets a parse error, initialize a clear JSON-RPC error; the bridge keeps going.
    const closed = await freePort();
    const down = await launch(`http://127.0.0.1:${closed}/mcp`);
    const rpcDown = new StdioRpc(down);
    cleanups.push(async () => rpcDown.close());
    down.write('this is not json\n');
    const parse = await new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no parse error\n${down.tail()}`)), 10_000);
      const off = down.onLine((stream, line) => {
        if (stream === 'stdout' && line.includes('-32700')) { clearTimeout(t); off(); res(JSON.parse(line)); }
      });
    });
    assert.deepEqual(parse, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: not JSON' } });
    const failed = await rpcDown.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: HOST });
    assert.equal(failed.error?.code, -32000, JSON.stringify(failed));
    assert.equal(failed.error.message, `cannot reach http://127.0.0.1:${closed}: connection refused; is Spor Companion running?`);
    await closeAndExit(down);
    assert.ok(!(await readAllFiles(bridgeDir)).some((f) => f.path.endsWith('bridge-secrets.json')), 'no credentials stored');

    // Denied in the browser: the host hears why; no token is stored, no grant made.
    w = await world();

    // The host quits while consent is still open (nobody approves: `true`
    // is the browser): SIGTERM ends the bridge at once, not at the timeout.
    const waiting = await launch(w.companion.mcpUrl, { ...NO_DESKTOP, BROWSER: 'true' });
    waiting.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: HOST } })}\n`);
    await waiting.waitForLine(/approve the connection in your browser/, { stream: 'stderr', timeoutMs: 20_000 });
    waiting.child.kill('SIGTERM');
    const quit = await Promise.race([waiting.exitPromise, new Promise((_, rej) => setTimeout(() => rej(new Error(`bridge ignored SIGTERM during consent\n${waiting.tail()}`)), 15_000))]);
    assert.deepEqual({ code: quit.code, signal: quit.signal }, { code: 0, signal: null }, waiting.tail());

    const denied = await launch(w.companion.mcpUrl, { ...w.browserEnv, SPOR_E2E_CONSENT_DECISION: 'deny' });
    const rpcDenied = new StdioRpc(denied);
    cleanups.push(async () => rpcDenied.close());
    const refused = await rpcDenied.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: HOST }, { timeoutMs: 90_000 });
    assert.equal(refused.error?.code, -32000, JSON.stringify(refused));
    assert.match(refused.error.message, /^access was not granted \(access_denied/);
    await closeAndExit(denied);
    const afterDeny = JSON.parse(await readFile(join(bridgeDir, 'bridge-secrets.json'), 'utf8'));
    const entry = JSON.parse(Object.values(afterDeny)[0]);
    assert.deepEqual(Object.keys(entry).sort(), ['client_id', 'issuer'], 'only the registration is kept');
    assert.deepEqual((await grantsList(w.companion.dataDir)).grants, []);

    // The file store, chosen explicitly: approved tokens land there, 0600.
    const allowed = await launch(w.companion.mcpUrl, w.browserEnv);
    const rpcAllowed = new StdioRpc(allowed);
    cleanups.push(async () => rpcAllowed.close());
    await initialize(rpcAllowed, 90_000);
    await closeAndExit(allowed);
    const file = join(bridgeDir, 'bridge-secrets.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const stored = JSON.parse(Object.values(JSON.parse(await readFile(file, 'utf8')))[0]);
    assert.equal(stored.client_id, entry.client_id, 'the registration was reused');
    assert.match(stored.access_token, /^spor_oat_/);
    for (const p of procs) assertNoSecretsInOutput(p, { pat: w.pat, access_token: stored.access_token, refresh_token: stored.refresh_token });
  });
});

test('two spor-companiond bridges started at once (two Claude windows) share one consent, one registration and one grant', { timeout: 180_000 }, async () => {
  let w;
  const procs = [];
  await withDiagnostics('stdio_bridge_concurrent', { procs: () => [w?.companion?.proc, w?.sandbox?.proc, ...procs] }, async () => {
    w = await world();
    const bridgeDir = await tempDir('spor-bridge-');
    const callbackPort = await freePort();
    const launch = async () => {
      const p = await start(COMPANIOND, ['--data-dir', bridgeDir, '--secret-store', 'file', 'bridge', w.companion.mcpUrl, '--callback-port', String(callbackPort)], {
        name: `spor-bridge-${procs.length + 1}`, stdin: 'pipe', env: { ...w.browserEnv, RUST_LOG: 'debug' },
      });
      procs.push(p);
      return new StdioRpc(p);
    };
    const [a, b] = await Promise.all([launch(), launch()]);
    cleanups.push(async () => { a.close(); b.close(); });
    await Promise.all([initialize(a, 90_000), initialize(b, 90_000)]);
    assert.equal(w.sink.events.filter((e) => e.event === 'start').length, 1, 'one browser, not two');
    const [ta, tb] = await Promise.all([a.call('tools/list', {}), b.call('tools/list', {})]);
    assert.deepEqual(ta.tools.map((t) => t.name), tb.tools.map((t) => t.name));
    const { grants } = await grantsList(w.companion.dataDir);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    const { rows } = await companionCli(w.companion.dataDir, ['grants', 'list', '--json', '--all']).then((r) => ({ rows: JSON.parse(r.stdout) }));
    assert.equal(rows.length, 1, 'no second grant was ever made');
    for (const p of procs) {
      p.child.stdin.end();
      const r = await p.exitPromise;
      assert.equal(r.code, 0, p.tail());
    }
  });
});
