// JSON-RPC 2.0 over a child's stdin/stdout, one message per line: the MCP
// stdio transport, as Claude Desktop speaks it to a stdio server.

/**
 * Wrap a Proc started with `stdin: 'pipe'`. Every stdout line that parses as
 * JSON is a message; responses settle `request()` promises, everything else
 * lands in `messages`.
 */
export class StdioRpc {
  constructor(proc) {
    this.proc = proc;
    this.nextId = 1;
    this.pending = new Map();
    /** every message received, in order */
    this.messages = [];
    this.unsubscribe = proc.onLine((stream, line) => {
      if (stream !== 'stdout') return;
      let msg;
      try { msg = JSON.parse(line); } catch { return; }
      this.messages.push(msg);
      if (msg && msg.id !== undefined && !msg.method && this.pending.has(msg.id)) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        p.resolve(msg);
      }
    });
    proc.exitPromise.then(({ code, signal }) => {
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`${proc.name} exited (code ${code}, signal ${signal}) before answering request ${id}\n${proc.tail()}`));
      }
      this.pending.clear();
    });
  }

  send(message) {
    this.proc.write(`${JSON.stringify(message)}\n`);
  }

  notify(method, params) {
    this.send(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  /** Send a request; resolve with the whole response message (result or error). */
  request(method, params, { timeoutMs = 30_000 } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${method} (id ${id}) within ${timeoutMs} ms\n${this.proc.tail()}`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    });
  }

  /** Like request(), but throws on a JSON-RPC error and returns the result. */
  async call(method, params, opts) {
    const msg = await this.request(method, params, opts);
    if (msg.error) throw new Error(`${method} failed: ${JSON.stringify(msg.error)}`);
    return msg.result;
  }

  close() {
    this.unsubscribe();
  }
}
