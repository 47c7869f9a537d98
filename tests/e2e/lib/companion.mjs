// spor-companiond: the headless daemon and its CLI.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMPANIOND } from './paths.mjs';
import { run, start } from './proc.mjs';
import { tempDir } from './tmp.mjs';

export const COMPANION_READY = /listening on (http:\/\/127\.0\.0\.1:(\d+))\/mcp/;

/**
 * Start `spor-companiond --data-dir D --secret-store S serve --listen L` (L: 127.0.0.1:0)
 * with RUST_LOG=debug (so the leak checks see everything it logs).
 * Returns {proc, url, mcpUrl, port, dataDir}; `url` is the issuer (no trailing slash).
 */
export async function startCompanion({ dataDir, secretStore = 'file', env = {}, serveArgs = [], listen = '127.0.0.1:0', timeoutMs = 20_000 } = {}) {
  dataDir ??= await tempDir('spor-companion-');
  const proc = await start(
    COMPANIOND,
    ['--data-dir', dataDir, '--secret-store', secretStore, 'serve', '--listen', listen, ...serveArgs],
    { name: 'companion', env: { RUST_LOG: 'debug', ...env }, ready: COMPANION_READY, readyStream: 'stdout', timeoutMs },
  );
  const url = proc.ready[1];
  return { proc, url, mcpUrl: `${url}/mcp`, port: Number(proc.ready[2]), dataDir };
}

/** Run a companion CLI command to completion: {code, stdout, stderr}. */
export function companionCli(dataDir, args, { secretStore = 'file', input, env = {}, timeoutMs = 30_000 } = {}) {
  return run(COMPANIOND, ['--data-dir', dataDir, '--secret-store', secretStore, ...args], {
    input,
    env: { RUST_LOG: 'debug', ...env },
    timeoutMs,
  });
}

/** `account list --json`, parsed; throws on a non-zero exit. Returns {accounts, raw}. */
export async function accountList(dataDir, opts) {
  const r = await companionCli(dataDir, ['account', 'list', '--json'], opts);
  if (r.code !== 0) throw new Error(`account list --json exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return { accounts: JSON.parse(r.stdout), raw: r };
}

/** Every regular file under `dir`, recursively, as {path, bytes}. */
export async function readAllFiles(dir) {
  const out = [];
  for (const ent of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!ent.isFile()) continue;
    const path = join(ent.parentPath ?? ent.path, ent.name);
    out.push({ path, bytes: await readFile(path) });
  }
  return out;
}

/**
 * `account add --server URL --token-stdin` with the PAT on stdin; throws on
 * a non-zero exit. Returns the CLI result (for leak checks of its output).
 */
export async function addAccount(dataDir, serverUrl, pat, opts) {
  const r = await companionCli(dataDir, ['account', 'add', '--server', serverUrl, '--token-stdin'], { ...opts, input: pat });
  if (r.code !== 0) throw new Error(`account add exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** `grants list --json` (needs the daemon), parsed. Returns {grants, raw}. */
export async function grantsList(dataDir, { all = false, ...opts } = {}) {
  const r = await companionCli(dataDir, ['grants', 'list', '--json', ...(all ? ['--all'] : [])], opts);
  if (r.code !== 0) throw new Error(`grants list --json exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return { grants: JSON.parse(r.stdout), raw: r };
}

/** `grants activity ID --json --limit N` (needs the daemon), parsed, newest first. Returns {rows, raw}. */
export async function grantActivity(dataDir, grantId, { limit = 200, ...opts } = {}) {
  const r = await companionCli(dataDir, ['grants', 'activity', grantId, '--json', '--limit', String(limit)], opts);
  if (r.code !== 0) throw new Error(`grants activity exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return { rows: JSON.parse(r.stdout), raw: r };
}

/**
 * The grant's call log once `done(rows)` holds. Rows are written off the
 * request path, so a call just answered may not be in yet: poll (bounded).
 * Returns {rows, raws} (every CLI result, for leak checks).
 */
export async function waitForActivity(dataDir, grantId, done, { timeoutMs = 10_000, intervalMs = 100, ...opts } = {}) {
  const raws = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows, raw } = await grantActivity(dataDir, grantId, opts);
    raws.push(raw);
    if (done(rows)) return { rows, raws };
    if (Date.now() > deadline) {
      throw new Error(`grants activity ${grantId}: not as expected within ${timeoutMs} ms: ${JSON.stringify(rows)}`);
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}
