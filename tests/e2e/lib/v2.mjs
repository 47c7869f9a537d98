// The MCP TypeScript SDK v2 as the e2e tests use it: a v2 client with an
// elicitation handler and a chosen version negotiation, and a world of a v2
// server (the conformance fixture, tests/conformance/fixture, serving both
// protocol eras on one endpoint) behind a companion as a generic upstream.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { companionCli, startCompanion } from './companion.mjs';
import { REPO_ROOT } from './paths.mjs';
import { start } from './proc.mjs';
import { tempDir } from './tmp.mjs';

export const FIXTURE = join(REPO_ROOT, 'tests/conformance/fixture/server.mjs');
/** The newest protocol revision. */
export const MODERN = '2026-07-28';

/** A v2 client with elicitation (answered with name Ada, recorded in `elicited`) and `mode` negotiation. */
export function v2Client(mode, elicited) {
  const options = { capabilities: { elicitation: {} } };
  if (mode) options.versionNegotiation = { mode };
  const client = new Client({ name: 'e2e-sdk-v2', version: '0.0.0' }, options);
  client.setRequestHandler('elicitation/create', async (req) => {
    elicited.push(req.params.message);
    return { action: 'accept', content: { name: 'Ada' } };
  });
  return client;
}

/** The text content of a tool result. */
export const textOf = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

/** Resolves once `predicate()` holds (polled), bounded. */
export async function until(predicate, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The v2 fixture server with its own token, and a companion holding it as a generic account. */
export async function startV2World() {
  const upstreamToken = `fixture-${randomBytes(16).toString('hex')}`;
  const fixture = await start(process.execPath, [FIXTURE, '--port', '0', '--token', upstreamToken], {
    name: 'v2-server', ready: /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/, readyStream: 'stdout', timeoutMs: 20_000,
  });
  const dataDir = await tempDir('spor-companion-');
  const added = await companionCli(dataDir, ['account', 'add', '--generic', '--mcp-url', fixture.ready[1], '--label', 'v2 server', '--token-stdin'], { input: upstreamToken });
  assert.equal(added.code, 0, `account add: ${added.stdout}\n${added.stderr}`);
  const companion = await startCompanion({ dataDir });
  return { fixture, dataDir, companion };
}
