// The Claude Desktop extension end to end: `spor-companiond connect
// claude-desktop --mcpb` writes it for the port the companion is set to use;
// the pinned official `mcpb` CLI unpacks, describes and validates it; then
// the command its manifest declares is started exactly as Claude Desktop
// starts an extension's server (a child speaking newline-delimited JSON-RPC
// on stdio), and signs in through the companion's OAuth (consent in the
// browser, headless Chromium via $BROWSER), lists the tools and calls one.
// Neither the extension written before the sign-in nor one written after it
// holds the PAT or a token. $SPOR_COMPANIOND picks the binary (the installed
// one in tests/install/run.sh).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkExtension, readExtension } from '../../install/mcpb.mjs';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { addAccount, grantsList, startCompanion } from '../lib/companion.mjs';
import { startBrowserConsent } from '../lib/browser_consent.mjs';
import { startKeyring } from '../lib/keyring.mjs';
import { assertNoSecretsInOutput } from '../lib/leaks.mjs';
import { freePort } from '../lib/net.mjs';
import { COMPANIOND } from '../lib/paths.mjs';
import { killAll, run, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { StdioRpc } from '../lib/stdio_rpc.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const HOST = { name: 'claude-desktop-mcpb-e2e', version: '0.0.0' };

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

test('the .mcpb validates with the official mcpb CLI, and the command it declares signs in, lists tools and calls one', { timeout: 240_000 }, async () => {
  let companion;
  let sandbox;
  const procs = [];
  await withDiagnostics('mcpb_extension', { procs: () => [companion?.proc, sandbox?.proc, ...procs] }, async () => {
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Lovelace', email: 'ada@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const me = await (await fetch(`${sandbox.url}/v1/me`, { headers: { authorization: `Bearer ${pat}` }, signal: AbortSignal.timeout(10_000) })).json();
    const companionDir = await tempDir('spor-companion-');
    await addAccount(companionDir, sandbox.url, pat);
    const listen = `127.0.0.1:${await freePort()}`;
    companion = await startCompanion({ dataDir: companionDir, listen });
    const keyring = await startKeyring();
    cleanups.push(() => keyring.stop());
    const person = await startBrowserConsent({ SPOR_E2E_CONSENT_ORG: 'acme' });
    cleanups.push(person.close);
    const { sink } = person;

    // The person's side: their HOME and keychain, the daemon's setting.
    const home = await tempDir('spor-mcpb-home-');
    const personEnv = { ...keyring.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), SPOR_COMPANION_LISTEN: listen };
    const work = await tempDir('spor-mcpb-');
    const writeExtension = async (name) => {
      const file = join(work, name);
      const r = await run(COMPANIOND, ['connect', 'claude-desktop', '--mcpb', file], { env: personEnv, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      return file;
    };
    const file = await writeExtension('spor.mcpb');
    const ext = await readExtension(file, work);
    await checkExtension(ext, { secrets: { pat } });
    const cfg = ext.manifest.server.mcp_config;
    // The program names itself as the OS resolves it.
    assert.equal(cfg.command, realpathSync(COMPANIOND), 'the bridge is the binary that wrote it');
    assert.deepEqual(cfg.args, ['bridge', `http://${listen}/mcp`], 'the port the companion is set to use');

    // Claude Desktop runs `command args` with nothing to substitute here.
    assert.ok(!JSON.stringify(cfg).replace(/\$\{HOME\}/g, '').includes('${'), 'no variables left in this platform\'s command');
    const bridge = await start(cfg.command, cfg.args, {
      name: 'mcpb-server',
      stdin: 'pipe',
      env: {
        ...personEnv,
        ...person.env,
        SPOR_COMPANION_LISTEN: undefined,
        RUST_LOG: 'debug',
      },
    });
    procs.push(bridge);
    const rpc = new StdioRpc(bridge);
    cleanups.push(async () => rpc.close());
    const init = await rpc.call('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: HOST }, { timeoutMs: 90_000 });
    assert.equal(init.serverInfo?.name, 'spor-sandbox', JSON.stringify(init));
    rpc.notify('notifications/initialized');
    const consent = await sink.waitFor((e) => e.event === 'done' || e.event === 'error', { timeoutMs: 30_000 });
    assert.equal(consent.event, 'done', JSON.stringify(sink.events));
    const { tools } = await rpc.call('tools/list', {});
    assert.ok(tools.some((t) => t.name === 'put_node'), `tools/list: ${tools.map((t) => t.name)}`);
    const put = await rpc.call('tools/call', { name: 'put_node', arguments: { title: 'From the Claude Desktop extension' } }, { timeoutMs: 60_000 });
    assert.ok(!put.isError, JSON.stringify(put));
    assert.equal(put.structuredContent.author, me.person, 'attributed to the PAT\'s person');
    const { grants } = await grantsList(companion.dataDir);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    assert.equal(grants[0].client_name, `${HOST.name} via Spor bridge`);

    // Claude Desktop closes stdin: the bridge exits cleanly.
    bridge.child.stdin.end();
    const exit = await Promise.race([
      bridge.exitPromise,
      new Promise((_, rej) => setTimeout(() => rej(new Error(`bridge did not exit\n${bridge.tail()}`)), 15_000)),
    ]);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, bridge.tail());

    // Tokens exist now; an extension written now is the same file, and
    // neither holds the PAT or a token.
    const stored = await keyring.lookup({ service: 'spor-companion-bridge', username: `http://${listen}/mcp#${HOST.name} via Spor bridge` });
    assert.ok(stored, 'the bridge kept its tokens in the keychain');
    const tokens = JSON.parse(stored);
    const secrets = { pat, access: tokens.access_token, refresh: tokens.refresh_token };
    const again = await writeExtension('again.mcpb');
    assert.deepEqual(await readFile(again), await readFile(file), 'the same bytes before and after the sign-in');
    await checkExtension(await readExtension(again, await tempDir('spor-mcpb-again-')), { secrets });
    await checkExtension(ext, { secrets });
    assertNoSecretsInOutput(bridge, secrets);
  });
});
