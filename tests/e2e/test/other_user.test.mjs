// Another OS user of the same machine against the person's companion: the
// real daemon (browser consent mode) and the real sandbox upstream run as the
// person (this test's user, root in CI); the attacker is `other_user/attacker.py`
// run as a second OS user through setpriv. Every attack must fail with the
// exact refusal and store nothing, and the same steps must still work for the
// person. Creating a user needs root: outside root this test says it was
// skipped, and under CI=true it fails instead, so CI always runs it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDiagnostics } from '../lib/artifacts.mjs';
import { accountList, addAccount, companionCli, startCompanion } from '../lib/companion.mjs';
import { COMPANIOND } from '../lib/paths.mjs';
import { killAll, run, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ATTACKER = await readFile(resolve(here, '../other_user/attacker.py'), 'utf8');
const OTHER = 'spor-other';
const PY = '/usr/bin/python3';
const REFUSED = 'this Spor Companion belongs to another user of this computer';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await killAll();
  await removeTempDirs();
});

/** Makes sure the second OS user exists; removes it afterwards if we made it. */
async function otherUser() {
  let r = await run('id', ['-u', OTHER]);
  if (r.code !== 0) {
    r = await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OTHER]);
    assert.equal(r.code, 0, `useradd: ${r.stderr}`);
    cleanups.push(async () => { await run('userdel', [OTHER]); });
    r = await run('id', ['-u', OTHER]);
  }
  return Number(r.stdout.trim());
}

const asOther = (args) => ['--reuid', OTHER, '--regid', OTHER, '--clear-groups', '--reset-env', PY, '-c', ATTACKER, ...args];

/** One attacker action run to completion; its JSON lines. */
async function attack(...args) {
  const r = await run('setpriv', asOther(args), { cwd: '/', timeoutMs: 30_000 });
  assert.equal(r.code, 0, `attacker ${args[0]} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * A long-running attacker action, once it printed `ready`: `.first` is that
 * line parsed; `.finish(done)` closes its stdin and returns the line matching
 * `done`, parsed.
 */
async function attackerHolding(args, ready) {
  const proc = await start('setpriv', asOther(args), { name: `attacker-${args[0]}`, cwd: '/', stdin: 'pipe', ready, timeoutMs: 15_000 });
  return {
    proc,
    first: JSON.parse(proc.ready.input),
    async finish(done) {
      proc.child.stdin.end();
      const m = await proc.waitForLine(done, { timeoutMs: 10_000 });
      // Gone, so whatever it held is free again.
      await proc.exitPromise;
      return JSON.parse(m.input);
    },
  };
}

/** A single attacker request, answered. */
async function attackHttp(method, url, headers = {}, body) {
  const args = ['http', method, url, JSON.stringify(headers)];
  if (body !== undefined) args.push(body);
  const [reply] = await attack(...args);
  return reply;
}

function assertRefused(reply, what) {
  assert.equal(reply.status, 403, `${what}: ${JSON.stringify(reply)}`);
  const body = JSON.parse(reply.body);
  assert.equal(body.error, 'forbidden', what);
  assert.equal(body.error_description, REFUSED, what);
}

/** Row counts straight from the person's database (read-only). */
async function counts(dataDir) {
  const script = `import json, sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(json.dumps({t: c.execute("SELECT count(*) FROM " + t).fetchone()[0]
                  for t in ["clients", "accounts", "auth_codes", "grants", "access_tokens", "refresh_tokens"]}))`;
  const r = await run(PY, ['-c', script, join(dataDir, 'companion.db')]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const b64url = (b) => b.toString('base64url');
const escapeRe = (t) => t.replace(/[[\].]/g, '\\$&');

/**
 * `spor-companiond bridge URL` as the person, fed one initialize line: it
 * registers, opens no browser (BROWSER=true), waits one second for a
 * consent nobody gives and exits. Returns {code, stdout, stderr}.
 */
function runBridge(url, dataDir, initialize) {
  return run(COMPANIOND, ['bridge', url, '--secret-store', 'file', '--name', 'other-user e2e',
    '--callback-port', '0', '--auth-timeout', '1', '--data-dir', dataDir],
  { input: `${initialize}\n`, env: { BROWSER: 'true', RUST_LOG: 'info' }, timeoutMs: 30_000 });
}

async function json(resp) {
  const text = await resp.text();
  try { return JSON.parse(text); } catch { return { text }; }
}

test('another OS user gets nothing from the person\'s companion; the person still gets everything', { timeout: 240_000 }, async (t) => {
  if (process.getuid() !== 0) {
    if (process.env.CI === 'true') assert.fail('the second-OS-user test must run as root in CI (it creates a user)');
    t.skip('not root: cannot create a second OS user here (CI runs this as root)');
    return;
  }
  let sandbox;
  let companion;
  await withDiagnostics('other_user', { procs: () => [companion?.proc, sandbox?.proc] }, async () => {
    const otherUid = await otherUser();
    const sandboxDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir: sandboxDir, name: 'Ada Person', email: 'ada@example.test', org: 'acme' });
    sandbox = await startSandbox({ dataDir: sandboxDir });
    const dataDir = await tempDir('spor-companion-');
    await addAccount(dataDir, sandbox.url, pat);
    const [account] = (await accountList(dataDir)).accounts;
    companion = await startCompanion({ dataDir });
    const base = companion.url;
    const port = companion.port;

    // The person's host registers and asks; the person's browser opens the page.
    const callback = 'http://127.0.0.1:1/callback';
    const reg = await fetch(`${base}/oauth/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Person Host', redirect_uris: [callback] }),
    });
    assert.equal(reg.status, 201);
    const clientId = (await reg.json()).client_id;
    const verifier = b64url(randomBytes(32));
    const challenge = b64url(createHash('sha256').update(verifier).digest());
    const q = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: callback, code_challenge: challenge,
      code_challenge_method: 'S256', state: 's1', scope: 'mcp', resource: `${base}/mcp`,
    });
    const auth = await fetch(`${base}/oauth/authorize?${q}`, { redirect: 'manual' });
    assert.equal(auth.status, 303);
    const requestId = auth.headers.get('location').replace('/oauth/consent/', '');
    const page = await (await fetch(`${base}/oauth/consent/${requestId}`)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)[1];
    const before = await counts(dataDir);

    // 1. Self-approval: register, read the page, Allow with a forged Origin,
    //    on both loopback families — even knowing the id and the CSRF token.
    const origin = { origin: base, 'content-type': 'application/x-www-form-urlencoded' };
    assertRefused(await attackHttp('POST', `${base}/oauth/register`, { 'content-type': 'application/json' },
      JSON.stringify({ client_name: 'Claude Desktop', redirect_uris: ['http://127.0.0.1:7768/callback'] })), 'register');
    assertRefused(await attackHttp('GET', `http://[::1]:${port}/.well-known/oauth-authorization-server`), 'metadata over [::1]');
    assertRefused(await attackHttp('GET', `${base}/oauth/consent/${requestId}`), 'consent page');
    assertRefused(await attackHttp('POST', `${base}/oauth/consent/${requestId}`, origin,
      new URLSearchParams({ csrf, decision: 'allow', account_id: account.id }).toString()), 'forged Allow');

    // 2. Account planting: a look-alike Spor server pasted through the page.
    const fake = await attackerHolding(['fake-spor'], /"url"/);
    const fakeUrl = fake.first.url;
    assertRefused(await attackHttp('POST', `${base}/oauth/consent/${requestId}/account`, origin,
      new URLSearchParams({ csrf, server_url: fakeUrl, pat: 'spor_pat_planted' }).toString()), 'planted account');
    assert.equal((await fake.finish(/"requests"/)).requests, 0, 'the companion never called the planted server');

    // 3. Collecting the code: poll the status while the person approves.
    assertRefused(await attackHttp('GET', `${base}/oauth/consent/${requestId}/status?csrf=${csrf}`), 'status poll');
    assert.deepEqual(await counts(dataDir), before, 'nothing stored by any attack so far');
    const listed = await companionCli(dataDir, ['consent', 'list', '--json']);
    assert.ok(JSON.parse(listed.stdout).some((r) => r.id === requestId), 'the request still waits for the person');
    const approved = await companionCli(dataDir, ['consent', 'approve', requestId, '--account', account.id]);
    assert.equal(approved.code, 0, approved.stderr);
    assertRefused(await attackHttp('GET', `${base}/oauth/consent/${requestId}/status?csrf=${csrf}`), 'status poll after approval');
    const status = await json(await fetch(`${base}/oauth/consent/${requestId}/status?csrf=${csrf}`));
    assert.equal(status.status, 'decided', 'the person\'s page still gets the decision the attacker could not');
    const code = new URL(status.redirect).searchParams.get('code');
    assert.ok(code);

    // 4. A captured token replayed: refused, and nothing revoked by trying.
    const tok = await json(await fetch(`${base}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: callback, resource: `${base}/mcp` }),
    }));
    assert.ok(tok.access_token, JSON.stringify(tok));
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    const mcpHeaders = (token) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
    assertRefused(await attackHttp('POST', `${base}/mcp`, mcpHeaders(tok.access_token), init), 'captured access token');
    assertRefused(await attackHttp('POST', `http://[::1]:${port}/oauth/token`, { 'content-type': 'application/x-www-form-urlencoded' },
      new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: clientId }).toString()), 'captured refresh token');
    const mine = await fetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders(tok.access_token), body: init });
    assert.equal(mine.status, 200, 'the person\'s token still works');
    await mine.body?.cancel();

    // 5. The bridge's files: a bridge run as the person (it registers, waits
    //    a second for a consent nobody gives, and exits) leaves its folder
    //    owner-only, so the other user cannot open its lock file to hold it.
    const bridgeDir = join(await tempDir('spor-bridge-'), 'data');
    const bridged = await runBridge(`${base}/mcp`, bridgeDir, init);
    assert.equal(bridged.code, 0, bridged.stderr);
    const locks = (await readdir(join(bridgeDir, 'bridge'))).filter((f) => f.endsWith('.lock'));
    assert.equal(locks.length, 1, `one lock file: ${locks}`);
    for (const path of [join(bridgeDir, 'bridge', locks[0]), join(bridgeDir, 'bridge', 'planted.lock')]) {
      const [held] = await attack('lock', path);
      assert.deepEqual(held, { error: 'PermissionError', errno: 13 }, `flock ${path}`);
    }
    assert.equal((await stat(bridgeDir)).mode & 0o777, 0o700);
    // The person's bridge registered a client of its own; nothing else may appear.
    const settled = await counts(dataDir);

    // 6. Port squatting: while the companion is stopped, the other user holds
    //    one loopback family of its port; the companion will not start
    //    beside it and says who holds it, and the bridge sends nothing there.
    await companion.proc.kill();
    for (const host of ['::1', '127.0.0.1']) {
      const squat = await attackerHolding(['hold', host, String(port)], /"holding"/);
      const r = await companionCli(dataDir, ['serve', '--listen', `127.0.0.1:${port}`], { timeoutMs: 20_000 });
      const shown = host.includes(':') ? `[${host}]` : host;
      assert.notEqual(r.code, 0, 'the companion does not start beside a squatter');
      assert.match(r.stderr, new RegExp(`${escapeRe(shown)}:${port} is already in use by another OS user \\(uid ${otherUid}\\)`), r.stderr);
      if (host === '127.0.0.1') {
        const b = await runBridge(`http://127.0.0.1:${port}/mcp`, bridgeDir, init);
        assert.equal(b.code, 1, b.stderr);
        assert.match(b.stderr, new RegExp(`refusing to send anything to 127\\.0\\.0\\.1:${port}: the socket listening there belongs to another user of this computer \\(uid ${otherUid}\\)`), b.stderr);
      }
      const seen = await squat.finish(/"connections"/);
      assert.equal(seen.connections, 0, `nothing reached the squatter on ${host}`);
      assert.equal(seen.saw_authorization, false);
    }

    // The squatter gone, the person's companion comes back on its port, on
    // both families, and the person's token still works there.
    companion = await startCompanion({ dataDir, listen: `127.0.0.1:${port}` });
    for (const host of ['127.0.0.1', '[::1]']) {
      const again = await fetch(`http://${host}:${port}/mcp`, { method: 'POST', headers: mcpHeaders(tok.access_token), body: init });
      assert.equal(again.status, 200, `the person over ${host}`);
      await again.body?.cancel();
      assertRefused(await attackHttp('POST', `http://${host}:${port}/mcp`, mcpHeaders(tok.access_token), init), `captured token over ${host}`);
    }
    const after = await counts(dataDir);
    assert.equal(after.clients, settled.clients, 'no client was registered by the other user');
    assert.equal(after.accounts, before.accounts, 'no account was planted');
  });
});
