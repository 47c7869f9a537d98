// A loopback HTTP endpoint that helper processes the tests do not spawn
// themselves (e.g. the $BROWSER that mcp-remote launches through xdg-open,
// detached and with its output discarded) POST JSON events to.
import { createServer } from 'node:http';

/**
 * Start on 127.0.0.1:0. `url` takes `POST` bodies of one JSON object each.
 * `waitFor(predicate, {timeoutMs})` resolves with the first event (seen or
 * future) matching `predicate`.
 */
export async function startEventSink() {
  const events = [];
  const waiters = new Set();
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      res.writeHead(204).end();
      let ev;
      try { ev = JSON.parse(body); } catch { ev = { event: 'unparseable', body }; }
      events.push(ev);
      for (const w of [...waiters]) w(ev);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/events`,
    events,
    waitFor(predicate, { timeoutMs = 30_000, what = 'event' } = {}) {
      const seen = events.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = (ev) => {
          if (!predicate(ev)) return;
          clearTimeout(timer);
          waiters.delete(w);
          resolve(ev);
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no ${what} within ${timeoutMs} ms; events so far: ${JSON.stringify(events)}`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
