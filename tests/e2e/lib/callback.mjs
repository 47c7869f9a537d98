// A tiny loopback HTTP server standing in for an OAuth client's redirect URI.
import { createServer } from 'node:http';

/**
 * Start a server on 127.0.0.1:0. `redirectUrl` is http://127.0.0.1:PORT/callback.
 * `next({timeoutMs})` resolves with the URLSearchParams of the next /callback hit.
 */
export async function startCallbackServer() {
  const hits = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Callback received</title><p>You can close this window.</p>');
    const w = waiters.shift();
    if (w) w(url.searchParams);
    else hits.push(url.searchParams);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    redirectUrl: `http://127.0.0.1:${port}/callback`,
    next({ timeoutMs = 20_000 } = {}) {
      if (hits.length) return Promise.resolve(hits.shift());
      return new Promise((resolve, reject) => {
        let timer;
        const w = (params) => { clearTimeout(timer); resolve(params); };
        timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no request to the OAuth callback within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
