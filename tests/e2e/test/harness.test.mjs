// Smoke tests of the e2e harness itself: process helpers, headless Chromium,
// and the sandbox helpers every other e2e test depends on. If these fail, the
// other failures are about the harness, not the companion.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser } from '../lib/browser.mjs';
import { startEventSink } from '../lib/event_sink.mjs';
import { tryConnect } from '../lib/net.mjs';
import { killAll, run, start } from '../lib/proc.mjs';
import { mintPat, startSandbox } from '../lib/sandbox.mjs';
import { StdioRpc } from '../lib/stdio_rpc.mjs';
import { removeTempDirs, tempDir } from '../lib/tmp.mjs';

after(async () => {
  await killAll();
  await removeTempDirs();
});

describe('harness', () => {
  test('proc: waits for a ready line, collects output, kills', { timeout: 30_000 }, async () => {
    const script = `
      process.stderr.write('starting\\n');
      setTimeout(() => console.log('listening on http://127.0.0.1:4242'), 50);
      process.on('SIGTERM', () => { console.log('bye'); process.exit(0); });
      setInterval(() => {}, 1000);`;
    const p = await start(process.execPath, ['-e', script], {
      name: 'fake',
      ready: /listening on (http:\/\/127\.0\.0\.1:(\d+))/,
      timeoutMs: 10_000,
    });
    assert.equal(p.ready[1], 'http://127.0.0.1:4242');
    await p.kill({ graceMs: 5_000 });
    assert.equal(p.exited, true);
    assert.ok(p.linesOf('stderr').includes('starting'), p.tail());
  });

  test('proc: a process that exits before its ready line fails fast', { timeout: 30_000 }, async () => {
    await assert.rejects(
      start(process.execPath, ['-e', 'console.log("nope"); process.exit(3)'], { name: 'dies', ready: /never/, timeoutMs: 10_000 }),
      /dies exited \(code 3/,
    );
    await assert.rejects(start('/nonexistent/binary', [], { name: 'missing', ready: /x/, timeoutMs: 10_000 }), /failed to start/);
  });

  test('proc: SIGKILL after the grace period when SIGTERM is ignored', { timeout: 30_000 }, async () => {
    const p = await start(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)'], {
      name: 'stubborn',
      ready: /ready/,
    });
    await p.kill({ graceMs: 300 });
    assert.equal(p.exitSignal, 'SIGKILL');
  });

  test('proc: run() passes stdin and returns output', { timeout: 30_000 }, async () => {
    const r = await run(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], { input: 'hello' });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'hello');
  });

  test('stdio rpc: requests matched to answers by id, notifications collected, exit rejects pending', { timeout: 30_000 }, async () => {
    // A line-delimited JSON-RPC echo server that answers out of order.
    const script = `
      const rl = require('node:readline').createInterface({ input: process.stdin });
      const held = [];
      rl.on('line', (l) => {
        const m = JSON.parse(l);
        if (m.method === 'die') process.exit(7);
        if (m.id === undefined) { console.log(JSON.stringify({ jsonrpc: '2.0', method: 'seen', params: { method: m.method } })); return; }
        const answer = m.method === 'fail'
          ? { jsonrpc: '2.0', id: m.id, error: { code: -1, message: 'nope' } }
          : { jsonrpc: '2.0', id: m.id, result: { echo: m.params } };
        if (m.method === 'slow') { held.push(answer); return; }
        console.log(JSON.stringify(answer));
        for (const h of held.splice(0)) console.log(JSON.stringify(h));
      });
      console.error('ready');`;
    const p = await start(process.execPath, ['-e', script], { name: 'rpc', stdin: 'pipe', ready: /ready/, readyStream: 'stderr' });
    const rpc = new StdioRpc(p);
    const slow = rpc.call('slow', { n: 1 });
    const fast = await rpc.call('fast', { n: 2 });
    assert.deepEqual(fast, { echo: { n: 2 } });
    assert.deepEqual(await slow, { echo: { n: 1 } });
    await assert.rejects(rpc.call('fail', {}), /fail failed: .*nope/);
    rpc.notify('notifications/initialized');
    assert.deepEqual((await rpc.request('x')).result, {}, 'no params: an empty echo');
    assert.ok(rpc.messages.some((m) => m.method === 'seen' && m.params.method === 'notifications/initialized'));
    const pending = rpc.request('slow');
    rpc.notify('die');
    await assert.rejects(pending, /exited \(code 7/);
  });

  test('event sink and tryConnect', { timeout: 30_000 }, async () => {
    const sink = await startEventSink();
    try {
      const later = sink.waitFor((e) => e.event === 'b');
      await fetch(sink.url, { method: 'POST', body: JSON.stringify({ event: 'a' }) });
      await fetch(sink.url, { method: 'POST', body: JSON.stringify({ event: 'b', n: 2 }) });
      assert.equal((await later).n, 2);
      assert.equal((await sink.waitFor((e) => e.event === 'a')).event, 'a');
      await assert.rejects(sink.waitFor((e) => e.event === 'never', { timeoutMs: 200 }), /no event within 200 ms/);
      const port = Number(new URL(sink.url).port);
      assert.equal(await tryConnect(port), 'connected');
      await sink.close();
      assert.equal(await tryConnect(port), 'ECONNREFUSED');
    } finally {
      await sink.close().catch(() => {});
    }
  });

  test('chromium: headless launch, page, click', { timeout: 60_000 }, async () => {
    const b = await launchBrowser();
    try {
      const html = `<!doctype html><title>Smoke</title>
        <label for="t">Personal access token</label><input id="t">
        <button onclick="document.title='clicked:'+document.getElementById('t').value">Add token</button>`;
      await b.page.goto(`data:text/html,${encodeURIComponent(html)}`);
      assert.equal(await b.page.title(), 'Smoke');
      await b.page.getByLabel('Personal access token').fill('abc');
      await b.page.getByRole('button', { name: 'Add token' }).click();
      assert.equal(await b.page.title(), 'clicked:abc');
    } finally {
      await b.close();
    }
  });

  test('sandbox: serve on port 0, mint a PAT, GET /v1/me', { timeout: 60_000 }, async () => {
    const dataDir = await tempDir('spor-sandbox-');
    const pat = await mintPat({ dataDir, name: 'Smoke Test', email: 'smoke@example.test', org: 'acme' });
    assert.match(pat, /^spor_pat_/);
    const sb = await startSandbox({ dataDir });
    try {
      const me = await fetch(`${sb.url}/v1/me`, { headers: { authorization: `Bearer ${pat}` }, signal: AbortSignal.timeout(10_000) });
      assert.equal(me.status, 200, await me.clone().text());
      const body = await me.json();
      assert.equal(body.name, 'Smoke Test');
      assert.equal(body.email, 'smoke@example.test');
      const anon = await fetch(`${sb.url}/v1/me`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(anon.status, 401);
      await anon.body?.cancel();
      // A PAT minted while the sandbox is serving works too.
      const pat2 = await mintPat({ dataDir, name: 'Later', email: 'later@example.test', org: 'acme' });
      const me2 = await fetch(`${sb.url}/v1/me`, { headers: { authorization: `Bearer ${pat2}` }, signal: AbortSignal.timeout(10_000) });
      assert.equal(me2.status, 200, await me2.clone().text());
      assert.equal((await me2.json()).name, 'Later');
    } finally {
      await sb.proc.kill();
    }
  });
});
