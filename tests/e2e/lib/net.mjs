// Small network checks.
import { connect, createServer } from 'node:net';

/**
 * Resolve with the error code of a TCP connect to 127.0.0.1:`port`
 * ('ECONNREFUSED' when nothing listens), or 'connected' if something answers.
 */
export function tryConnect(port, { host = '127.0.0.1', timeoutMs = 5_000 } = {}) {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => { sock.destroy(); resolve('timeout'); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve('connected'); });
    sock.once('error', (err) => { clearTimeout(timer); resolve(err.code ?? String(err)); });
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
