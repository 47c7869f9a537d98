// Child processes for the e2e tests: spawn, wait for a ready line (bounded, no
// sleeps), keep every line of stdout/stderr for later assertions (leak checks),
// and kill everything in after() hooks.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const live = new Set();

/** A spawned process with its collected output. */
export class Proc {
  constructor(name, child) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    /** every line of stdout and stderr, in arrival order, as {stream, line} */
    this.output = [];
    this.exited = false;
    this.exitCode = null;
    this.exitSignal = null;
    this._waiters = new Set();
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        live.delete(this);
        resolve({ code, signal });
      });
    });
    // 'error' (e.g. ENOENT) arrives instead of 'exit' when spawning fails.
    // 'close' comes once the process is gone AND its output is fully read.
    this.spawnError = null;
    this.closed = false;
    const closed = () => {
      if (this.closed) return;
      this.closed = true;
      live.delete(this);
      for (const w of [...this._waiters]) w.onExit();
    };
    child.once('error', (err) => {
      this.spawnError = err;
      this.exited = true;
      closed();
    });
    child.once('close', closed);
    for (const stream of ['stdout', 'stderr']) {
      if (!child[stream]) continue;
      const rl = createInterface({ input: child[stream], crlfDelay: Infinity });
      rl.on('line', (line) => {
        this.output.push({ stream, line });
        if (process.env.SPOR_E2E_VERBOSE) process.stderr.write(`[${this.name} ${stream}] ${line}\n`);
        for (const w of [...this._waiters]) w.onLine(stream, line);
      });
    }
  }

  /** All output lines as plain strings. */
  get lines() {
    return this.output.map((o) => o.line);
  }

  /** Lines of one stream. */
  linesOf(stream) {
    return this.output.filter((o) => o.stream === stream).map((o) => o.line);
  }

  /** The last n lines, for failure messages. */
  tail(n = 40) {
    return this.output.slice(-n).map((o) => `[${this.name} ${o.stream}] ${o.line}`).join('\n');
  }

  /**
   * Resolve with the regex match of the first line (already seen or future)
   * on `stream` ('stdout', 'stderr' or 'any') matching `regex`.
   * Rejects if the process exits first or after `timeoutMs`.
   */
  waitForLine(regex, { stream = 'stdout', timeoutMs = 20_000 } = {}) {
    for (const o of this.output) {
      if (stream !== 'any' && o.stream !== stream) continue;
      const m = regex.exec(o.line);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        onLine: (s, line) => {
          if (stream !== 'any' && s !== stream) return;
          const m = regex.exec(line);
          if (m) done(null, m);
        },
        onExit: () => {
          const why = this.spawnError
            ? `failed to start: ${this.spawnError.message}`
            : `exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`;
          done(new Error(`${this.name} ${why} before printing a line matching ${regex}\n${this.tail()}`));
        },
      };
      const timer = setTimeout(() => {
        done(new Error(`${this.name}: no line matching ${regex} on ${stream} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const done = (err, m) => {
        clearTimeout(timer);
        this._waiters.delete(waiter);
        if (err) reject(err);
        else resolve(m);
      };
      this._waiters.add(waiter);
      if (this.closed) waiter.onExit();
    });
  }

  /**
   * Call `fn(stream, line)` for every future output line; returns an
   * unsubscribe function.
   */
  onLine(fn) {
    const waiter = { onLine: fn, onExit: () => {} };
    this._waiters.add(waiter);
    return () => this._waiters.delete(waiter);
  }

  /** Write `text` to stdin (only for processes started with `stdin: 'pipe'`). */
  write(text) {
    if (!this.child.stdin) throw new Error(`${this.name}: stdin is not a pipe`);
    this.child.stdin.write(text);
  }

  /**
   * Send `signal` to the whole process group (processes started with
   * `detached: true` lead their own group), ignoring an already-gone group.
   */
  signalGroup(signal = 'SIGKILL') {
    if (!this.detached) return;
    try { process.kill(-this.pid, signal); } catch { /* group already gone */ }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async kill({ graceMs = 5_000 } = {}) {
    if (this.exited || this.spawnError || this.child.exitCode !== null || this.child.signalCode !== null) {
      live.delete(this);
      return;
    }
    this.child.kill('SIGTERM');
    let timer;
    const killed = await Promise.race([
      this.exitPromise.then(() => true),
      new Promise((resolve) => { timer = setTimeout(() => resolve(false), graceMs); }),
    ]);
    clearTimeout(timer);
    if (!killed) {
      this.child.kill('SIGKILL');
      let t2;
      await Promise.race([
        this.exitPromise,
        new Promise((resolve) => { t2 = setTimeout(resolve, graceMs); }),
      ]);
      clearTimeout(t2);
    }
    live.delete(this);
  }
}

/**
 * Spawn `cmd args` (no shell), stdout/stderr collected; stdin closed unless
 * `stdin: 'pipe'`. `detached: true` makes the child lead its own process
 * group, so `signalGroup()` reaches its children too.
 * With `ready` (a RegExp) resolves once a matching stdout line appeared and
 * exposes the match as `proc.ready`.
 */
export async function start(cmd, args = [], { name, env = {}, cwd, ready, readyStream = 'stdout', timeoutMs = 20_000, stdin = 'ignore', detached = false } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    // An `undefined` value removes the variable from the child's environment.
    env: { ...process.env, ...env },
    stdio: [stdin, 'pipe', 'pipe'],
    detached,
  });
  child.stdin?.on('error', () => {}); // the child may exit before reading stdin
  const proc = new Proc(name ?? cmd.split('/').pop(), child);
  proc.detached = detached;
  live.add(proc);
  if (ready) {
    try {
      proc.ready = await proc.waitForLine(ready, { stream: readyStream, timeoutMs });
    } catch (err) {
      await proc.kill({ graceMs: 2_000 });
      throw err;
    }
  }
  return proc;
}

/**
 * Run `cmd args` to completion (bounded), optional stdin text.
 * Resolves {code, signal, stdout, stderr}; never rejects on a non-zero exit.
 */
export function run(cmd, args = [], { env = {}, cwd, input, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the child may exit before reading stdin
    child.stdin.end(input ?? '');
  });
}

/**
 * Kill every process started with start() that is still running; detached
 * ones' process groups get a SIGKILL afterwards, so no grandchild survives.
 */
export async function killAll(opts) {
  const procs = [...live];
  await Promise.all(procs.map((p) => p.kill(opts)));
  for (const p of procs) p.signalGroup('SIGKILL');
}

/** Processes still running (for debugging). */
export function liveProcs() {
  return [...live];
}
