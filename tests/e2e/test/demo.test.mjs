// scripts/demo.sh (what `scripts/run.sh --demo` runs) with the debug
// binaries: it starts a sandbox, stores a demo account and runs the companion,
// then prints the `claude mcp add` line. An MCP client following that line
// connects (browser consent: the demo account exists, so Organization +
// Allow) and writes a node. SIGTERM to the script stops everything it started
// and removes its throw-away directory.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startCallbackServer } from '../lib/callback.mjs';
import { consentInBrowser } from '../lib/consent.mjs';
import { tryConnect } from '../lib/net.mjs';
import { COMPANIOND, REPO_ROOT, SANDBOX } from '../lib/paths.mjs';
import { killAll, start } from '../lib/proc.mjs';
import { connectWithOAuth, MemoryProvider, resultJson, resultText } from '../lib/sdk.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

test('scripts/demo.sh: prints the claude mcp add line, an SDK client connects and writes, SIGTERM stops everything', { timeout: 180_000 }, async () => {
  let demo;
  let browser;
  await withDiagnostics('demo', { procs: () => [demo], page: () => browser?.page }, async () => {
    const tmp = await tempDir('spor-demo-test-');
    demo = await start('bash', [join(REPO_ROOT, 'scripts/demo.sh'), '--listen', '127.0.0.1:0'], {
      name: 'demo',
      env: { SPOR_COMPANIOND: COMPANIOND, SPOR_SANDBOX: SANDBOX, TMPDIR: tmp, SPOR_DEMO_DIR: undefined },
      // Its own process group: if the script fails to clean up, after()
      // still reaches the sandbox and companion it started.
      detached: true,
      ready: /claude mcp add --transport http spor (http:\/\/127\.0\.0\.1:(\d+)\/mcp)\s*$/,
      timeoutMs: 60_000,
    });
    cleanups.push(async () => demo.signalGroup('SIGKILL'));
    const mcpUrl = demo.ready[1];
    const companionPort = Number(demo.ready[2]);
    const endpoint = demo.lines.map((l) => /companion MCP endpoint:\s+(\S+)/.exec(l)).find(Boolean);
    assert.equal(endpoint?.[1], mcpUrl, 'the endpoint line and the claude mcp add line agree');
    const sandboxLine = demo.lines.map((l) => /demo Spor server \(sandbox\):\s+(http:\/\/127\.0\.0\.1:(\d+))/.exec(l)).find(Boolean);
    assert.ok(sandboxLine, demo.tail());
    const sandboxPort = Number(sandboxLine[2]);
    const demoDirs = (await readdir(tmp)).filter((d) => d.startsWith('spor-demo.'));
    assert.equal(demoDirs.length, 1, `the demo's throw-away dir is under TMPDIR: ${demoDirs}`);

    // Connect as Claude Code would after `claude mcp add`.
    const callback = await startCallbackServer();
    cleanups.push(() => callback.close());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const consent = [];
    const provider = new MemoryProvider(callback.redirectUrl, async (url) => {
      consent.push(await consentInBrowser(browser.page, url, { org: 'demo', clientName: 'E2E SDK Client' }));
    });
    const { client } = await connectWithOAuth({
      mcpUrl,
      provider,
      callback,
      makeClient: () => new Client({ name: 'e2e-demo-client', version: '0.0.0' }),
      issuer: mcpUrl.replace(/\/mcp$/, ''),
    });
    cleanups.push(() => client.close());
    assert.equal(consent[0].firstTime, false, 'the demo stored its account: Organization + Allow');
    const put = await client.callTool({ name: 'put_node', arguments: { title: 'Hello from the demo test' } });
    assert.ok(!put.isError, resultText(put));
    const node = resultJson(put);
    assert.equal(node.author_name, 'Demo User');
    assert.equal(node.org, 'demo');

    // Ctrl-C / SIGTERM: the script stops the sandbox and the companion (with
    // the client's SSE stream still open) and removes its directory.
    await demo.kill({ graceMs: 20_000 });
    assert.equal(demo.exitSignal, null, `demo.sh exited by itself on SIGTERM (signal ${demo.exitSignal})`);
    assert.equal(demo.exitCode, 0);
    assert.equal(await tryConnect(companionPort), 'ECONNREFUSED', 'the companion is gone');
    assert.equal(await tryConnect(sandboxPort), 'ECONNREFUSED', 'the sandbox is gone');
    assert.deepEqual((await readdir(tmp)).filter((d) => d.startsWith('spor-demo.')), [], 'the demo dir was removed');
  });
});
