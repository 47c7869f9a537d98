// spor-sandbox: a small stand-in for a Spor server (identity, org choices,
// tokens, a few MCP tools).
import { SANDBOX } from './paths.mjs';
import { run, start } from './proc.mjs';
import { tempDir } from './tmp.mjs';

export const SANDBOX_READY = /listening on (http:\/\/127\.0\.0\.1:(\d+))/;

/**
 * Mint a PAT in the sandbox's data dir. Works whether or not a sandbox is
 * serving that dir. Returns the `spor_pat_…` string.
 */
export async function mintPat({ dataDir, name, email, org, memberOf = [], extraArgs = [] }) {
  const args = ['mint', '--data-dir', dataDir, '--name', name, '--email', email, '--org', org];
  for (const m of memberOf) args.push('--member-of', m);
  args.push(...extraArgs);
  const r = await run(SANDBOX, args, { timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new Error(`spor-sandbox ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  const m = /spor_pat_[A-Za-z0-9_-]+/.exec(r.stdout);
  if (!m) throw new Error(`spor-sandbox mint printed no spor_pat_ token:\n${r.stdout}\n${r.stderr}`);
  return m[0];
}

/**
 * Start `spor-sandbox serve --listen 127.0.0.1:0 --data-dir D`.
 * Returns {proc, url, port, dataDir}; `url` has no trailing slash.
 */
export async function startSandbox({ dataDir, env = {}, extraArgs = [], timeoutMs = 20_000 } = {}) {
  dataDir ??= await tempDir('spor-sandbox-');
  const proc = await start(SANDBOX, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs], {
    name: 'sandbox',
    env,
    ready: SANDBOX_READY,
    readyStream: 'any',
    timeoutMs,
  });
  const url = proc.ready[1];
  return { proc, url, port: Number(proc.ready[2]), dataDir };
}

/**
 * What a sandbox was asked so far (`GET /_sandbox/requests`):
 * {count, requests: {"GET /v1/me": n, …}}.
 */
export async function sandboxRequests(url) {
  const r = await fetch(`${url}/_sandbox/requests`, { signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`${url}/_sandbox/requests answered ${r.status}`);
  return r.json();
}

/**
 * Sends a sandbox started with `--wake-delay-ms` back to sleep now: the next
 * request is answered after `wakeMs` (a hosted graph waking up).
 */
export async function sleepSandbox(url, wakeMs) {
  const r = await fetch(`${url}/_sandbox/sleep?wake_ms=${wakeMs}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  const body = await r.json();
  if (r.status !== 200 || body.asleep !== true) throw new Error(`${url} did not go to sleep: ${r.status} ${JSON.stringify(body)}`);
}

/** `REST,MCP` for SPOR_COMPANION_HOSTED: the sandbox played as hosted Spor, its MCP on another origin as hosted Spor's is. */
export function hostedAs(sandbox) {
  return `${sandbox.url},http://localhost:${sandbox.port}/mcp`;
}
