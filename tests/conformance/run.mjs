#!/usr/bin/env node
// The official MCP conformance suite (server mode) against the fixture
// server, directly and through the real companion daemon, for each
// requirement set. Fails when a check that passes directly does not pass
// through the companion, or when the direct run has a scored failure that
// is not in its expected-failures baseline (or a baseline entry that now
// passes). Then the suite's authorization-server mode against the
// companion's OAuth server, with the consent allowed on the consent page as
// a person would; fails when any of its checks fails or a scenario is missing.
//
//   run.sh [--requirements 2025-11-25,2026-07-28] [--out DIR] [--write-docs]
//   (run.sh is `node run.mjs …` with the pinned Node 22)
//
// Needs Node 22 (the suite's own requirement; scripts/setup.sh --test pins
// one into .tools/node22), the built daemon (target/debug/spor-companiond or
// $SPOR_COMPANIOND), and tests/e2e's node_modules and Chromium: the access
// token the suite presents is a real grant, approved on the consent page.
//
// Through the companion the suite speaks plain HTTP to the daemon's /mcp
// (no bridge); bearer-preload.mjs adds the grant's access token to its
// requests, as any host holding one would. The fixture behind the companion
// is a generic upstream whose own token the companion swaps in.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser } from '../e2e/lib/browser.mjs';
import { startCallbackServer } from '../e2e/lib/callback.mjs';
import { companionCli, startCompanion } from '../e2e/lib/companion.mjs';
import { consentInBrowser } from '../e2e/lib/consent.mjs';
import { freePort } from '../e2e/lib/net.mjs';
import { killAll, start } from '../e2e/lib/proc.mjs';
import { removeTempDirs, tempDir } from '../e2e/lib/tmp.mjs';
import { renderCompatibility } from './compatibility.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const SUITE = join(HERE, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const FIXTURE_READY = /listening on (http:\/\/127\.0\.0\.1:(\d+)\/mcp)/;
/** One scenario may take this long (the suite's default). */
const SCENARIO_TIMEOUT_MS = 30_000;
/**
 * The whole authorization-server run may take this long. The suite itself
 * waits five minutes for a person to consent; the automated consent takes a
 * second or two, so a run that has not ended by then never will.
 */
const AUTHORIZATION_TIMEOUT_MS = 30_000;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const REQUIREMENTS = option('--requirements', '2025-11-25,2026-07-28').split(',');
const OUT = resolve(option('--out', join(HERE, 'results')));
const WRITE_DOCS = process.argv.includes('--write-docs');

const log = (...a) => console.log('[conformance]', ...a);

if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`run.mjs: the conformance suite needs Node 22 or later; this is ${process.version}. ` +
    'Run it with .tools/node22/bin/node (scripts/setup.sh --test installs it).');
  process.exit(2);
}

/** Starts a fixture server; with `token`, it requires that bearer token. */
async function startFixture(name, token) {
  const args = [join(HERE, 'fixture/server.mjs'), '--port', '0', ...(token ? ['--token', token] : [])];
  const proc = await start(process.execPath, args, { name, ready: FIXTURE_READY, readyStream: 'stdout', timeoutMs: 20_000 });
  return { proc, url: proc.ready[1] };
}

/** `account add --generic` for the fixture, its token on stdin. */
async function addGenericAccount(dataDir, mcpUrl, label, token) {
  const r = await companionCli(dataDir, ['account', 'add', '--generic', '--mcp-url', mcpUrl, '--label', label, '--token-stdin'], { input: token });
  if (r.code !== 0) throw new Error(`account add exited ${r.code}\n${r.stdout}\n${r.stderr}`);
}

/** Registers a public client with the companion (dynamic registration); returns its client_id. */
async function registerClient(companion, clientName, redirectUri) {
  const reg = await fetch(`${companion.url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: clientName,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  if (reg.status !== 201 && reg.status !== 200) throw new Error(`registration: HTTP ${reg.status} ${await reg.text()}`);
  return (await reg.json()).client_id;
}

/**
 * An access token of a grant for `companion`, as a host gets one: register,
 * authorize with PKCE, Allow on the consent page (Chromium), exchange.
 */
async function grantToken(companion) {
  const callback = await startCallbackServer();
  const browser = await launchBrowser();
  try {
    const clientName = 'MCP conformance suite';
    const clientId = await registerClient(companion, clientName, callback.redirectUrl);
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const authorize = new URL(`${companion.url}/oauth/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: callback.redirectUrl,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
      scope: 'mcp',
      resource: companion.mcpUrl,
    })) authorize.searchParams.set(k, v);
    await consentInBrowser(browser.page, authorize.href, { clientName });
    const params = await callback.next({ timeoutMs: 20_000 });
    if (params.get('state') !== state || !params.get('code')) throw new Error(`authorization failed: ${params}`);
    const tok = await fetch(`${companion.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: callback.redirectUrl,
        client_id: clientId,
        code_verifier: verifier,
        resource: companion.mcpUrl,
      }),
    });
    if (tok.status !== 200) throw new Error(`token: HTTP ${tok.status} ${await tok.text()}`);
    return (await tok.json()).access_token;
  } finally {
    await browser.close();
    await callback.close();
  }
}

/**
 * Runs the suite once: `conformance server --url URL --requirements R
 * --expected-failures …`, results under `dir`. Returns the exit code, the
 * output, and per scenario its checks.
 */
async function runSuite(label, url, requirements, dir, env = {}, nodeArgs = []) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const args = [
    ...nodeArgs,
    SUITE,
    'server',
    '--url', url,
    '--requirements', requirements,
    '--expected-failures', join(HERE, `expected-failures/${requirements}.yaml`),
    '--timeout', String(SCENARIO_TIMEOUT_MS),
    '-o', dir,
  ];
  const started = Date.now();
  const { code, output } = await new Promise((done) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('close', (code) => done({ code, output }));
  });
  await writeFile(join(dir, 'output.txt'), output);
  const scored = await scoredScenarios(requirements);
  const scenarios = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry.name);
    if (!entry.isDirectory() || !m) continue;
    const file = join(dir, entry.name, 'checks.json');
    scenarios[m[1]] = await readFile(file, 'utf8').then(JSON.parse, () => [
      { id: m[1], status: 'FAILURE', errorMessage: 'no checks.json: the scenario did not finish' },
    ]);
  }
  const unscored = new Set(Object.keys(scenarios).filter((s) => !scored.has(s)));
  log(`${label} ${requirements}: exit ${code}, ${Object.keys(scenarios).length} scenarios, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { code, output, scenarios, unscored };
}

/** The server scenarios a requirement set scores, as `conformance list` names them. */
async function scoredScenarios(requirements) {
  const output = await new Promise((done, fail) => {
    const child = spawn(process.execPath, [SUITE, 'list', '--requirements', requirements], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.on('close', (code) => (code === 0 ? done(text) : fail(new Error(`conformance list exited ${code}`))));
  });
  const section = output.split(/^Server scenarios.*$/m)[1]?.split(/\n\s*\n/)[0] ?? '';
  const names = [...section.matchAll(/^\s+- (\S+)$/gm)].map((m) => m[1]);
  if (names.length === 0) throw new Error(`conformance list --requirements ${requirements} named no server scenarios`);
  return new Set(names);
}

/** The authorization-server scenarios, as `conformance list --authorization` names them. */
async function authorizationScenarios() {
  const output = await new Promise((done, fail) => {
    const child = spawn(process.execPath, [SUITE, 'list', '--authorization'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.on('close', (code) => (code === 0 ? done(text) : fail(new Error(`conformance list --authorization exited ${code}`))));
  });
  const names = [...output.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]);
  if (names.length === 0) throw new Error('conformance list --authorization named no scenarios');
  return names;
}

/**
 * Runs the suite's authorization-server mode against the companion:
 * `conformance authorization --url ISSUER --client-id ID --resource MCP_URL
 * --port P`, results under `dir`. The mode needs a client registered
 * beforehand with http://127.0.0.1:P/callback as its redirect URI; it prints
 * the authorization URL for a person to open and waits for the redirect on
 * that port. Here Chromium opens it and clicks Allow on the consent page,
 * the companion staying in its ordinary browser-consent mode.
 *
 * Returns {code, scenarios, expected, problems}: per scenario its checks,
 * and what went wrong outside the checks (consent, timeout, missing
 * scenarios).
 */
async function runAuthorizationSuite(companion, dir) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const expected = await authorizationScenarios();
  const port = await freePort();
  const clientName = 'MCP conformance suite (authorization server)';
  const clientId = await registerClient(companion, clientName, `http://127.0.0.1:${port}/callback`);
  const started = Date.now();
  const problems = [];
  const suite = await start(process.execPath, [
    SUITE,
    'authorization',
    '--url', companion.url,
    '--client-id', clientId,
    '--resource', companion.mcpUrl,
    '--port', String(port),
    '-o', dir,
  ], { name: 'conformance-authorization' });
  let timer;
  const timedOut = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), AUTHORIZATION_TIMEOUT_MS);
  });
  const consent = (async () => {
    const [, url] = await suite.waitForLine(/^(http:\/\/127\.0\.0\.1:\d+\/\S*\?\S+)$/, { timeoutMs: AUTHORIZATION_TIMEOUT_MS });
    // The suite prints the URL first and starts its callback server after;
    // the redirect must find it listening.
    await suite.waitForLine(/^Callback server started: /, { timeoutMs: AUTHORIZATION_TIMEOUT_MS });
    const browser = await launchBrowser();
    try {
      await consentInBrowser(browser.page, url, { clientName });
      // The redirect to the suite's callback, the suite's token request and
      // its results follow; the suite's exit is the end of the flow.
      await suite.exitPromise;
    } finally {
      await browser.close();
    }
  })();
  // Failing before the suite prints the URL is the suite's own failure
  // (e.g. the metadata scenario failed); its checks say why.
  const consentOutcome = consent.then(() => 'done', (e) => e);
  const outcome = await Promise.race([suite.exitPromise.then(() => 'exited'), consentOutcome, timedOut]);
  if (outcome === 'timeout') {
    problems.push(`no end within ${AUTHORIZATION_TIMEOUT_MS / 1000} s (the consent was not given, or the redirect did not reach the suite)`);
    await suite.kill({ graceMs: 2_000 });
  } else if (outcome instanceof Error) {
    problems.push(`the consent step failed: ${outcome.message.split('\n')[0]}`);
    await suite.kill({ graceMs: 2_000 });
  }
  await Promise.race([suite.exitPromise, timedOut]);
  clearTimeout(timer);
  await consentOutcome;
  await writeFile(join(dir, 'output.txt'), `${suite.lines.join('\n')}\n`);

  const scenarios = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const m = /^authorization-server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry.name);
    if (!entry.isDirectory() || !m) continue;
    scenarios[m[1]] = await readFile(join(dir, entry.name, 'checks.json'), 'utf8').then(JSON.parse, () => [
      { id: m[1], status: 'FAILURE', errorMessage: 'no checks.json: the scenario did not finish' },
    ]);
  }
  for (const name of expected) if (!scenarios[name]) problems.push(`${name} did not run`);
  const code = suite.exitCode;
  const failedChecks = Object.values(scenarios).flat().some((c) => c.status === 'FAILURE');
  if (code !== 0 && problems.length === 0 && !failedChecks) problems.push(`the suite exited ${code ?? suite.exitSignal}`);
  log(`authorization server ${companion.url}: exit ${code ?? suite.exitSignal}, ${Object.keys(scenarios).length} scenarios, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { code, scenarios, expected, problems };
}

/** Passed/failed checks (SUCCESS/FAILURE; warnings and skips do not count). */
function tally(checks) {
  const passed = checks.filter((c) => c.status === 'SUCCESS').length;
  const failed = checks.filter((c) => c.status === 'FAILURE').length;
  return { passed, failed, total: passed + failed };
}

/** Checks that pass directly but not through the companion. */
function regressions(direct, companion) {
  const found = [];
  for (const [scenario, checks] of Object.entries(direct.scenarios)) {
    const through = companion.scenarios[scenario];
    if (!through) {
      found.push({ scenario, check: '(scenario)', why: 'did not run through the companion' });
      continue;
    }
    for (const c of checks.filter((c) => c.status === 'SUCCESS')) {
      const t = through.find((x) => x.id === c.id);
      if (t?.status !== 'SUCCESS') {
        found.push({ scenario, check: c.id, why: t ? `${t.status}: ${t.errorMessage ?? ''}` : 'missing' });
      }
    }
  }
  return found;
}

function summarize(run) {
  const out = { scored: { passed: 0, failed: 0, total: 0 }, all: { passed: 0, failed: 0, total: 0 }, scenarios: {} };
  for (const [name, checks] of Object.entries(run.scenarios)) {
    const t = tally(checks);
    const scored = !run.unscored.has(name);
    out.scenarios[name] = { ...t, scored };
    for (const k of ['passed', 'failed', 'total']) {
      out.all[k] += t[k];
      if (scored) out.scored[k] += t[k];
    }
  }
  return out;
}

async function main() {
  const startedAt = Date.now();
  await mkdir(OUT, { recursive: true });
  const summary = { suite: '', fixture: '', requirements: {} };
  const pkg = async (p) => JSON.parse(await readFile(join(HERE, 'node_modules', p, 'package.json'), 'utf8')).version;
  summary.suite = await pkg('@modelcontextprotocol/conformance');
  summary.fixture = `@modelcontextprotocol/server ${await pkg('@modelcontextprotocol/server')}`;

  const direct = await startFixture('fixture-direct');
  const token = `fixture-${randomBytes(16).toString('hex')}`;
  const upstream = await startFixture('fixture-upstream', token);
  const dataDir = await tempDir('spor-conformance-');
  await addGenericAccount(dataDir, upstream.url, 'Conformance fixture', token);
  const companion = await startCompanion({ dataDir });
  const access = await grantToken(companion);
  log(`companion ${companion.mcpUrl} in front of ${upstream.url}; fixture direct at ${direct.url}`);

  const bearer = {
    SPOR_CONFORMANCE_ORIGIN: new URL(companion.url).origin,
    SPOR_CONFORMANCE_BEARER: access,
  };
  const failures = [];
  for (const r of REQUIREMENTS) {
    const d = await runSuite('direct', direct.url, r, join(OUT, `direct-${r}`));
    const c = await runSuite('companion', companion.mcpUrl, r, join(OUT, `companion-${r}`), bearer, ['--import', join(HERE, 'bearer-preload.mjs')]);
    const lost = regressions(d, c);
    summary.requirements[r] = { direct: summarize(d), companion: summarize(c), regressions: lost };
    if (d.code !== 0) {
      failures.push(`${r}: the direct run failed against its baseline (exit ${d.code}); see ${join(OUT, `direct-${r}`, 'output.txt')}`);
    }
    for (const l of lost) failures.push(`${r}: ${l.scenario} / ${l.check} passes directly but not through the companion (${l.why})`);
    const s = summary.requirements[r];
    log(`${r}: scored checks direct ${s.direct.scored.passed}/${s.direct.scored.total}, through the companion ${s.companion.scored.passed}/${s.companion.scored.total}; ` +
      `all checks ${s.direct.all.passed}/${s.direct.all.total} and ${s.companion.all.passed}/${s.companion.all.total}`);
  }
  const auth = await runAuthorizationSuite(companion, join(OUT, 'authorization'));
  summary.authorization = { all: { passed: 0, failed: 0, total: 0 }, scenarios: {} };
  const ordered = [...auth.expected, ...Object.keys(auth.scenarios).filter((n) => !auth.expected.includes(n))];
  for (const name of ordered.filter((n) => auth.scenarios[n])) {
    const checks = auth.scenarios[name];
    const t = tally(checks);
    summary.authorization.scenarios[name] = { ...t, warnings: checks.filter((c) => c.status === 'WARNING').length };
    for (const k of ['passed', 'failed', 'total']) summary.authorization.all[k] += t[k];
    for (const c of checks) {
      log(`authorization server: ${name} / ${c.id}: ${c.status}${c.errorMessage ? ` (${c.errorMessage})` : ''}`);
      if (c.status === 'FAILURE') failures.push(`authorization server: ${name} / ${c.id} failed: ${c.errorMessage ?? ''}`);
    }
  }
  for (const p of auth.problems) failures.push(`authorization server: ${p}; see ${join(OUT, 'authorization', 'output.txt')}`);
  log(`authorization server: checks ${summary.authorization.all.passed}/${summary.authorization.all.total} ` +
    `(${auth.expected.map((n) => `${n} ${summary.authorization.scenarios[n] ? `${summary.authorization.scenarios[n].passed}/${summary.authorization.scenarios[n].total}` : 'missing'}`).join(', ')})`);
  summary.seconds = Math.round((Date.now() - startedAt) / 1000);
  await writeFile(join(OUT, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (WRITE_DOCS) {
    const doc = join(REPO, 'docs/compatibility.md');
    await writeFile(doc, renderCompatibility(await readFile(doc, 'utf8'), summary));
    log(`wrote ${doc}`);
  }
  if (failures.length) {
    for (const f of failures) console.error(`[conformance] FAIL ${f}`);
    return 1;
  }
  log(`through the companion equals direct for ${REQUIREMENTS.join(' and ')}; the authorization server passes ` +
    `${Object.keys(summary.authorization.scenarios).join(' and ')} (${summary.seconds} s)`);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`[conformance] ${e?.stack ?? e}`);
} finally {
  await killAll();
  await removeTempDirs();
}
process.exit(code);
