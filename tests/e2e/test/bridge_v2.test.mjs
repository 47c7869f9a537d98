// Claude Desktop's path in both protocol eras: the MCP TypeScript SDK v2
// client over stdio (StdioClientTransport, spawning `spor-companiond bridge`
// as a host spawns a local server) → the companion → a TypeScript SDK v2
// server serving both eras (the conformance fixture, as a generic upstream).
// A stdio host writes no HTTP headers; the bridge must write the ones
// 2026-07-28 requires (MCP-Protocol-Version, Mcp-Method, Mcp-Name and a
// tool's declared Mcp-Param-*) or the server refuses the call. Consent runs
// in headless Chromium through $BROWSER, as in stdio_bridges.test.mjs.
//   1. `auto` negotiation lands on 2026-07-28 through the bridge; tools/list;
//      a tool whose argument travels in Mcp-Param-Region (non-ASCII, so
//      Base64-encoded); progress; a listen stream receiving
//      notifications/tools/list_changed; an input_required round trip;
//   2. the host closes its listen (stdio's notifications/cancelled): the
//      bridge closes the POST, and the companion's forwarded stream ends;
//   3. a legacy (2025-11-25) host through a second bridge on the stored
//      tokens (no browser): initialize, progress, a server-to-client
//      elicitation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { grantActivity, grantsList, waitForActivity } from '../lib/companion.mjs';
import { startBrowserConsent } from '../lib/browser_consent.mjs';
import { COMPANIOND } from '../lib/paths.mjs';
import { killAll } from '../lib/proc.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';
import { MODERN, startV2World, textOf, until, v2Client } from '../lib/v2.mjs';


const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

/** The bridges' stderr, shaped like a Proc for withDiagnostics. */
const bridgeLog = {
  name: 'spor-bridge',
  output: [],
  tail(n = 30) { return this.output.slice(-n).map((o) => o.line).join('\n'); },
};

/**
 * Every message the host receives, as the bridge wrote it. The SDK runs
 * notification handlers a microtask after a response read in the same chunk,
 * so `onprogress` can miss the last update when it and the result arrive
 * together: what the bridge wrote, in order, is checked here instead.
 */
function recordWire(transport) {
  const wire = [];
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    wire.push(message);
    deliver?.(message, extra);
  };
  return wire;
}

/** Calls the progress tool; its three updates reach the host, in order, before its result. */
async function progressCall(client, wire) {
  const from = wire.length;
  const result = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, { onprogress: () => {} });
  assert.equal(textOf(result), 'Progress tool completed');
  const seen = wire.slice(from);
  const answer = seen.findIndex((m) => m.result?.content?.[0]?.text === 'Progress tool completed');
  const progress = seen.slice(0, answer).filter((m) => m.method === 'notifications/progress');
  assert.deepEqual(progress.map((m) => m.params.progress), [0, 50, 100], JSON.stringify(seen));
}

/** A stdio transport running our bridge, its stderr kept for diagnostics. */
function bridgeTransport(mcpUrl, bridgeDir, env) {
  const transport = new StdioClientTransport({
    command: COMPANIOND,
    args: ['--data-dir', bridgeDir, '--secret-store', 'file', 'bridge', mcpUrl, '--callback-port', '0', '--auth-timeout', '60'],
    env: { RUST_LOG: 'info', ...env },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d) => {
    for (const line of String(d).split('\n').filter(Boolean)) bridgeLog.output.push({ stream: 'stderr', line });
  });
  return transport;
}

test('TypeScript SDK v2 host over stdio ↔ spor-companiond bridge ↔ companion ↔ v2 server: 2026-07-28 with mirrored headers, listen and its cancellation; 2025-11-25 too', { timeout: 180_000 }, async () => {
  let world;
  await withDiagnostics('bridge_v2', { procs: () => [world?.companion?.proc, world?.fixture, bridgeLog] }, async () => {
    world = await startV2World();
    const { companion, dataDir } = world;
    // StdioClientTransport starts from a clean environment: no desktop.
    const consent = await startBrowserConsent();
    cleanups.push(consent.close);
    const { sink, definedEnv: env } = consent;
    const bridgeDir = await tempDir('spor-bridge-');

    // --- 1. a modern host: consent on its first request, then 2026-07-28.
    const elicited = [];
    const client = v2Client('auto', elicited);
    const transport = bridgeTransport(companion.mcpUrl, bridgeDir, env);
    await client.connect(transport);
    const wire = recordWire(transport);
    cleanups.push(() => client.close());
    const done = await sink.waitFor((e) => e.event === 'done' || e.event === 'error', { what: 'consent from $BROWSER' });
    assert.equal(done.event, 'done', JSON.stringify(done));
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);

    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'test_custom_header'), tools.map((t) => t.name).join());
    // The server refuses this call (400, -32020) unless Mcp-Param-Region
    // carries the argument; non-ASCII, so the bridge must Base64 it.
    const region = 'eu-west — Zürich';
    assert.equal(textOf(await client.callTool({ name: 'test_custom_header', arguments: { region } })), `region=${region}`);

    await progressCall(client, wire);

    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => { changed += 1; });
    const subscription = await client.listen({ toolsListChanged: true });
    assert.equal(subscription.honoredFilter.toolsListChanged, true);
    await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
    await until(() => changed === 1, 'notifications/tools/list_changed on the listen stream');

    const hello = await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} });
    assert.equal(textOf(hello), 'Hello, Ada!');
    assert.deepEqual(elicited, ['What is your name?']);

    const { grants } = await grantsList(dataDir);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    const grant = grants[0];
    assert.equal(grant.client_name, 'e2e-sdk-v2 via Spor bridge', 'named from the modern request _meta clientInfo');

    // --- 2. the listen is still open (the companion logs a call when its
    // answer ends); the host closes it and the companion's stream ends.
    const before = await waitForActivity(dataDir, grant.id, (rs) => rs.some((r) => r.tool === 'test_input_required_result_elicitation'));
    assert.equal(before.rows.some((r) => r.method === 'subscriptions/listen'), false, 'listen still streaming');
    await subscription.close();
    assert.equal(await subscription.closed, 'local');
    const { rows } = await waitForActivity(dataDir, grant.id, (rs) => rs.some((r) => r.method === 'subscriptions/listen'));
    const listen = rows.find((r) => r.method === 'subscriptions/listen');
    assert.equal(listen.era, 'modern');
    assert.equal(listen.header_check, 'consistent');
    const custom = rows.find((r) => r.tool === 'test_custom_header');
    assert.equal(custom.era, 'modern');
    assert.equal(custom.header_check, 'consistent', 'the bridge mirrored the headers the stdio host could not');
    assert.equal(custom.outcome, 'ok');
    await client.close();

    // --- 3. a legacy host through a new bridge, on the stored tokens.
    const starts = sink.events.filter((e) => e.event === 'start').length;
    const legacy = v2Client(undefined, elicited);
    const legacyTransport = bridgeTransport(companion.mcpUrl, bridgeDir, env);
    await legacy.connect(legacyTransport);
    const legacyWire = recordWire(legacyTransport);
    cleanups.push(() => legacy.close());
    assert.equal(legacy.getProtocolEra(), 'legacy');
    await progressCall(legacy, legacyWire);
    const answer = await legacy.callTool({ name: 'test_elicitation', arguments: { message: 'Who are you?' } });
    assert.match(textOf(answer), /action=accept/);
    assert.equal(elicited.at(-1), 'Who are you?');
    assert.equal(sink.events.filter((e) => e.event === 'start').length, starts, 'no second browser');
    const all = await grantActivity(dataDir, grant.id);
    assert.ok(all.rows.some((r) => r.method === 'initialize' && r.era === 'legacy'), JSON.stringify(all.rows));
    assert.equal((await grantsList(dataDir)).grants.length, 1, 'the same grant');
    await legacy.close();
  });
});
