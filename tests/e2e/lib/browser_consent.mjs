// The person deciding a consent that a child process opened with $BROWSER
// (the stdio bridge and mcp-remote open the authorization URL through
// xdg-open, which runs $BROWSER when there is no desktop): headless Chromium
// through bin/browser-consent.mjs, reporting to an event sink.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEventSink } from './event_sink.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const BROWSER_SCRIPT = resolve(here, '../bin/browser-consent.mjs');

/** No desktop session: xdg-open then runs $BROWSER. */
export const NO_DESKTOP = {
  DISPLAY: undefined,
  WAYLAND_DISPLAY: undefined,
  XDG_CURRENT_DESKTOP: undefined,
  XDG_SESSION_DESKTOP: undefined,
  DESKTOP_SESSION: undefined,
  KDE_FULL_SESSION: undefined,
  GNOME_DESKTOP_SESSION_ID: undefined,
};

/**
 * An event sink and the environment that sends a child's consent to it.
 * `env` holds `undefined` for the desktop variables to remove (as
 * `proc.start` takes it); `definedEnv` leaves them out, for spawners that
 * start from a clean environment. `close()` stops the sink and any
 * $BROWSER still running (it runs detached, its output discarded).
 */
export async function startBrowserConsent(extra = {}) {
  const sink = await startEventSink();
  const settings = {
    BROWSER: BROWSER_SCRIPT,
    SPOR_E2E_CONSENT_EVENTS: sink.url,
    SPOR_E2E_CONSENT_TIMEOUT_MS: '60000',
    ...extra,
  };
  const close = async () => {
    for (const pid of new Set(sink.events.map((e) => e.pid).filter(Boolean))) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await sink.close();
  };
  return { sink, env: { ...NO_DESKTOP, ...settings }, definedEnv: settings, close };
}
