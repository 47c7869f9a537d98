// The installed .deb as a person meets it, run by tests/install/run.sh
// inside tests/e2e/desktop/run.sh's session (Xvfb, a private D-Bus with an
// unlocked gnome-keyring, a throw-away HOME). The app is the one apt put in
// /usr/bin, launched by tauri-driver so its window can be read:
//   1. it serves its OAuth metadata on its port and shows its window;
//   2. "Download extension" saves a Claude Desktop extension whose bridge is
//      the installed app;
//   3. `xdg-open spor-companion://add-account?server=…`, resolved through
//      the package's desktop entry, reaches the running app, which opens the
//      add-account form with that server, flagged as unknown (and never a
//      token from the link);
//   4. the pasted token lands in the keychain;
//   5. the installed `spor-companiond connect claude-desktop --mcpb` writes
//      an extension whose bridge is itself;
//   6. `apt-get remove` takes the programs and the desktop entry away and
//      leaves the person's data folder and keychain entries alone.
// Screenshots: tests/e2e/artifacts/install/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACTS_DIR, withDiagnostics } from '../e2e/lib/artifacts.mjs';
import { freePort } from '../e2e/lib/net.mjs';
import { killAll, run, start } from '../e2e/lib/proc.mjs';
import { mintPat, startSandbox } from '../e2e/lib/sandbox.mjs';
import { removeTempDirs, tempDir } from '../e2e/lib/tmp.mjs';
import { WebDriver } from '../e2e/lib/webdriver.mjs';
import { checkExtension, readExtension } from './mcpb.mjs';

const APP = process.env.SPOR_APP;
const COMPANIOND = process.env.SPOR_COMPANIOND;
const TAURI_DRIVER = process.env.TAURI_DRIVER;
const SHOTS = join(ARTIFACTS_DIR, 'install');
const PACKAGE = 'spor-companion';
// What the package puts on the system (run.sh checks the full list).
const INSTALLED = ['/usr/bin/spor-companion', '/usr/bin/spor-companiond', '/usr/share/applications/Spor Companion.desktop'];
// The single-instance plugin's D-Bus name (`identifier` + ".SingleInstance").
const INSTANCE_NAME = 'app.spor.companion.SingleInstance';

let sandbox;
let pat;
let port;
let driver;
let wd;
let accountId;
// The person's data folder: the default one under the throw-away HOME.
const dataDir = join(process.env.XDG_DATA_HOME ?? join(process.env.HOME, '.local/share'), 'spor-companion');

after(async () => {
  await wd?.quit();
  await killAll();
  await removeTempDirs();
});

async function shot(name) {
  await mkdir(SHOTS, { recursive: true });
  await wd.waitFor(`return document.getAnimations().every((a) =>
    a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity);`, { what: 'animations to end' });
  await writeFile(join(SHOTS, `${name}.png`), await wd.screenshot());
}

async function instanceRunning() {
  const r = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus',
    '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${INSTANCE_NAME}`], { timeoutMs: 5_000 });
  assert.equal(r.code, 0, `dbus-send failed: ${r.stderr}`);
  return /boolean true/.test(r.stdout);
}

before(async () => {
  assert.ok(APP && COMPANIOND && TAURI_DRIVER, 'run through tests/install/run.sh');
  assert.ok(APP.startsWith('/usr/bin/'), `the installed app, not a build: ${APP}`);
  const sandboxDir = await tempDir('spor-install-sandbox-');
  pat = await mintPat({ dataDir: sandboxDir, name: 'Grace Hopper', email: 'grace@example.test', org: 'acme' });
  sandbox = await startSandbox({ dataDir: sandboxDir });
  port = await freePort();
  const driverPort = await freePort();
  driver = await start(TAURI_DRIVER, ['--port', String(driverPort), '--native-port', String(await freePort())], {
    name: 'tauri-driver',
    // No SPOR_COMPANION_DATA_DIR: the app uses the person's default folder.
    env: { SPOR_COMPANION_PORT: String(port), RUST_LOG: 'debug' },
  });
  driver.url = `http://127.0.0.1:${driverPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await fetch(`${driver.url}/status`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status < 500, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`tauri-driver did not start:\n${driver.tail(30)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

const diagnostics = (name, fn) => withDiagnostics(name, { procs: () => [driver, sandbox?.proc] }, fn);

test('the installed app serves its OAuth metadata on its port and shows its window', { timeout: 120_000 }, async () => {
  await diagnostics('install-launch', async () => {
    assert.equal(await instanceRunning(), false, 'no app running before the launch');
    wd = await WebDriver.launch(driver.url, APP);
    await wd.setWindowRect({ width: 1280, height: 800 }).catch(() => {});
    await wd.waitFor('return document.body.dataset.ready === "true";', { what: 'the main window to render', timeoutMs: 30_000 });
    const base = `http://127.0.0.1:${port}`;
    assert.equal(await wd.waitFor('return document.querySelector("#mcp-url").textContent;', { what: 'the MCP URL' }), `${base}/mcp`);
    const res = await fetch(`${base}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    const meta = await res.json();
    assert.equal(meta.issuer, base);
    assert.equal(meta.authorization_endpoint, `${base}/oauth/authorize`);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    const prm = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(prm.status, 200);
    assert.deepEqual((await prm.json()).authorization_servers, [base]);
    await wd.waitVisible('#accounts-empty');
    await shot('installed-main-window');
  });
});

test('"Download extension" saves a Claude Desktop extension that runs the installed app as the bridge', { timeout: 60_000 }, async () => {
  await diagnostics('install-download-extension', async () => {
    const file = join(process.env.HOME, 'Downloads', 'spor-companion.mcpb');
    assert.equal(existsSync(file), false);
    await wd.click('#connect-claude-desktop button[data-action="extension"]');
    const said = await wd.waitFor(
      'const r = document.querySelector("#connect-claude-desktop .connect-result"); return r && r.textContent;',
      { what: 'where the extension was saved' });
    assert.equal(said, `Saved ${file}. Open it with Claude Desktop to install Spor Companion.`);
    const ext = await readExtension(file, await tempDir('spor-install-download-'));
    await checkExtension(ext, { secrets: { pat } });
    assert.equal(ext.manifest.server.mcp_config.command, APP, 'the installed app is the bridge');
    assert.deepEqual(ext.manifest.server.mcp_config.args, ['bridge', `http://127.0.0.1:${port}/mcp`]);
    await shot('installed-download-extension');
  });
});

test('xdg-open of a spor-companion:// link goes through the package\'s desktop entry to the running app', { timeout: 120_000 }, async () => {
  await diagnostics('install-deep-link', async () => {
    assert.equal(await instanceRunning(), true, 'the installed app is running');
    // The running app also registers a per-user handler (in HOME); an empty
    // user config and data folder leave only the system's registration, so
    // the link is resolved through the entry the package installed.
    const bare = await tempDir('spor-install-xdg-');
    const env = {
      XDG_CONFIG_HOME: join(bare, 'config'),
      XDG_DATA_HOME: join(bare, 'data'),
      // The launched copy hands over to the running app; it must find the
      // same folder the person's app uses.
      SPOR_COMPANION_DATA_DIR: dataDir,
    };
    const handler = await run('xdg-mime', ['query', 'default', 'x-scheme-handler/spor-companion'], { env, timeoutMs: 10_000 });
    assert.equal(handler.stdout.trim(), 'Spor Companion.desktop', `the packaged entry handles the scheme: ${handler.stdout}${handler.stderr}`);
    const link = `spor-companion://add-account?server=${encodeURIComponent(sandbox.url)}&token=spor_pat_from_a_link_must_be_ignored`;
    const opened = await run('xdg-open', [link], { env, timeoutMs: 30_000 });
    assert.equal(opened.code, 0, `xdg-open: ${opened.stdout}${opened.stderr}`);
    await wd.waitVisible('#add-account-dialog', { what: 'the add-account form opened by the link' });
    assert.equal(await wd.exec('return document.querySelector("#add-server").value;'), sandbox.url, 'server from the link');
    assert.equal(await wd.exec('return document.querySelector("#add-token").value;'), '', 'never a token from a link');
    assert.equal(await wd.exec('return document.querySelector("#add-link-warning").hidden;'), false,
      'a fresh install uses no server yet: the link is flagged as coming from outside');
    assert.equal(await instanceRunning(), true, 'still one app: the second copy handed over and left');
    await shot('installed-link-add-account');
  });
});

test('the pasted token is kept in the keychain', { timeout: 120_000 }, async () => {
  await diagnostics('install-add-account', async () => {
    await wd.type('#add-token', pat);
    await wd.click('#add-submit');
    accountId = await wd.waitFor(
      'const a = document.querySelector("#accounts [data-account-id]"); return a && a.dataset.state === "valid" && a.dataset.accountId;',
      { what: 'the account card', timeoutMs: 30_000 });
    const stored = await run('secret-tool', ['lookup', 'service', 'spor-companion', 'username', accountId], { timeoutMs: 10_000 });
    assert.equal(stored.stdout.trim(), pat, 'the keychain holds the PAT');
    await shot('installed-account');
    await wd.quit();
    wd = undefined;
    const deadline = Date.now() + 15_000;
    while (await instanceRunning()) {
      if (Date.now() > deadline) throw new Error('the app did not exit after its session ended');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});

test('the Claude Desktop extension made by the installed spor-companiond runs the installed bridge', { timeout: 60_000 }, async () => {
  await diagnostics('install-mcpb', async () => {
    const dir = await tempDir('spor-install-mcpb-');
    const file = join(dir, 'spor.mcpb');
    const made = await run(COMPANIOND, ['connect', 'claude-desktop', '--mcpb', file], {
      env: { SPOR_COMPANION_PORT: String(port) },
      timeoutMs: 30_000,
    });
    assert.equal(made.code, 0, made.stderr);
    const ext = await readExtension(file, dir);
    await checkExtension(ext, { secrets: { pat } });
    assert.equal(ext.manifest.server.mcp_config.command, COMPANIOND, 'the installed bridge');
    assert.deepEqual(ext.manifest.server.mcp_config.args, ['bridge', `http://127.0.0.1:${port}/mcp`]);
  });
});

test('apt-get remove takes the programs away and leaves the person\'s data and keychain entries', { timeout: 180_000 }, async () => {
  await diagnostics('install-remove', async () => {
    const before = await readdir(dataDir);
    assert.ok(before.length > 0, `the app kept its data in ${dataDir}`);
    const removed = await run('apt-get', ['remove', '-y', '-q', PACKAGE], {
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: 150_000,
    });
    assert.equal(removed.code, 0, `apt-get remove: ${removed.stdout}${removed.stderr}`);
    for (const f of INSTALLED) assert.equal(existsSync(f), false, `${f} is gone`);
    assert.deepEqual(await readdir(dataDir), before, 'the data folder is untouched');
    const stored = await run('secret-tool', ['lookup', 'service', 'spor-companion', 'username', accountId], { timeoutMs: 10_000 });
    assert.equal(stored.stdout.trim(), pat, 'the keychain entry stays');
  });
});
