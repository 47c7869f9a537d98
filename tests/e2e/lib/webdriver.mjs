// A small W3C WebDriver client (plain fetch) for tauri-driver, which fronts
// WebKitWebDriver for the real desktop app. Only what the desktop test uses.
import { setTimeout as sleep } from 'node:timers/promises';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(base, sessionId) {
    this.base = base;
    this.sessionId = sessionId;
  }

  /** Start the app: a new session with `tauri:options.application`. */
  static async launch(driverUrl, application, { args = [], timeoutMs = 60_000 } = {}) {
    const body = { capabilities: { alwaysMatch: { 'tauri:options': { application, args } } } };
    const res = await call('POST', `${driverUrl}/session`, body, timeoutMs);
    return new WebDriver(driverUrl, res.sessionId ?? res.value?.sessionId);
  }

  cmd(method, path, body, timeoutMs = 30_000) {
    return call(method, `${this.base}/session/${this.sessionId}${path}`, body, timeoutMs).then((r) => r.value);
  }

  /** Run `script` (a function body) in the page with `args`. */
  exec(script, ...args) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  async find(css) {
    const v = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return v[ELEMENT];
  }

  /** Waits until `css` matches a displayed element; returns its id. */
  async waitVisible(css, { timeoutMs = 20_000, what = css } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const shown = await this.exec(
        `const el = document.querySelector(arguments[0]);
         if (!el || el.hidden || el.closest('[hidden]')) return false;
         const r = el.getBoundingClientRect();
         return r.width > 0 && r.height > 0;`, css);
      if (shown) return this.find(css);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} to be visible`);
      await sleep(100);
    }
  }

  /** Waits until `predicate` (a script returning truthy) holds; returns its value. */
  async waitFor(script, { timeoutMs = 20_000, what = 'a condition', args = [] } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.exec(script, ...args);
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  async click(css) {
    const id = await this.waitVisible(css);
    await this.cmd('POST', `/element/${id}/click`, {});
  }

  async type(css, text) {
    const id = await this.waitVisible(css);
    await this.cmd('POST', `/element/${id}/clear`, {});
    await this.cmd('POST', `/element/${id}/value`, { text });
  }

  async text(css) {
    const id = await this.find(css);
    return this.cmd('GET', `/element/${id}/text`);
  }

  async exists(css) {
    return this.exec('return document.querySelector(arguments[0]) !== null;', css);
  }

  /** PNG bytes of the window's content. */
  async screenshot() {
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  setWindowRect(rect) {
    return this.cmd('POST', '/window/rect', rect);
  }

  async quit() {
    await call('DELETE', `${this.base}/session/${this.sessionId}`, undefined, 30_000).catch(() => {});
  }
}

async function call(method, url, body, timeoutMs) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`WebDriver ${method} ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
  if (!res.ok || json.value?.error) {
    throw new Error(`WebDriver ${method} ${url}: ${json.value?.error ?? res.status}: ${json.value?.message ?? text.slice(0, 300)}`);
  }
  return json;
}
