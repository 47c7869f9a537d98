// Spor Companion — main window. Wires the app's commands and events to the views.

import { $, hydrateIcons, refreshTimes, errorText, show } from './dom.js';
import { invoke, listen, toast, copy, busy, state } from './core.js';
import {
  renderStatus, renderUpstreams, renderAccountBanners, renderAssistants, renderAccounts, renderSettings,
  reloadExpandedActivity,
} from './views.js';
import { initDialogs, openAddAccount, openReplace } from './dialogs.js';
import * as consent from './consent.js';
import { openConnect, loadHosts } from './connect.js';

// ---------------------------------------------------------------- overview

let inFlight = null;
let again = false;
let debounce = null;
let firstRendered = false;
let failures = 0;

function scheduleRefresh(delay = 100) {
  clearTimeout(debounce);
  debounce = setTimeout(refresh, delay);
}

async function refresh() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    try {
      const ov = await invoke('overview');
      failures = 0;
      applyOverview(ov);
    } catch (err) {
      if (err && err.code === 'not_started') {
        // Nothing works without the core (no keychain, unreadable data):
        // say why instead of an empty window, and stop asking.
        $('#fatal-text').textContent = errorText(err, 'Spor Companion could not open its data.');
        show($('#fatal-banner'), true);
        show($('#columns'), false);
        $('#status').dataset.state = 'failed';
        $('#status-text').textContent = 'Not running';
        document.body.dataset.ready = 'true';
        return;
      }
      failures += 1;
      if (!firstRendered || failures === 1) {
        toast(errorText(err, 'Spor Companion could not load its state.'), { kind: 'error' });
      }
      // Keep trying quietly; the app may still be starting.
      scheduleRefresh(Math.min(10000, 1000 * failures));
    }
  })();
  try {
    await inFlight;
  } finally {
    inFlight = null;
  }
  if (again) {
    again = false;
    await refresh();
  }
}

function applyOverview(ov) {
  state.overview = normalize(ov);
  renderAll();
  if (!firstRendered) {
    firstRendered = true;
    document.body.dataset.ready = 'true';
  }
  consent.syncPending(state.overview.pending);
  reloadExpandedActivity();
}

function normalize(ov) {
  const o = ov || {};
  return {
    ...o,
    server: o.server || { state: 'starting', port: null, mcpUrl: null, message: null },
    accounts: Array.isArray(o.accounts) ? o.accounts : [],
    assistants: Array.isArray(o.assistants) ? o.assistants : [],
    pending: Array.isArray(o.pending) ? o.pending : [],
    upstreams: Array.isArray(o.upstreams) ? o.upstreams : [],
  };
}

function renderAll() {
  renderStatus();
  renderAccountBanners();
  renderAssistants();
  renderAccounts();
  renderSettings();
}

// ---------------------------------------------------------------- upstream reachability

// Whether Spor answers comes from what the app already heard (token checks,
// assistants' calls: the overview's `upstreams`), plus one check when the
// window opens or is shown again and on "Check now". Never on a timer: a
// hosted organization's graph suspends when nobody uses it, and a window
// asking every minute would keep it awake all day.

/** Shown again within this long: no new check. */
const RECHECK_AFTER_MS = 60000;
let lastCheck = 0;

async function checkUpstreams() {
  if (state.checking) return;
  lastCheck = Date.now();
  state.checking = 'checking';
  renderUpstreams();
  const waking = setTimeout(() => {
    state.checking = 'waking';
    renderUpstreams();
  }, 2000);
  try {
    const list = await invoke('check_upstreams');
    if (state.overview && Array.isArray(list)) state.overview.upstreams = list;
  } catch (err) {
    toast(errorText(err, 'Could not check the Spor server.'), { kind: 'error' });
  } finally {
    clearTimeout(waking);
    state.checking = null;
    renderUpstreams();
  }
}

// ---------------------------------------------------------------- port banner

function setPortError(message) {
  const el = $('#port-error');
  el.textContent = message || '';
  show(el, Boolean(message));
}

async function usePort(port, button, label) {
  setPortError('');
  try {
    const server = await busy(button, label, () => invoke('use_port', { port }));
    if (server && state.overview) {
      state.overview.server = server;
      renderStatus();
    }
    if (server && server.state === 'running') {
      toast(`Listening on port ${server.port}`, { kind: 'success' });
    } else if (server && server.state === 'port_in_use') {
      setPortError(`Port ${server.port} is in use too. Try another one.`);
    } else if (server && server.state === 'failed') {
      setPortError(server.message || 'The server could not start on that port.');
    }
  } catch (err) {
    setPortError(errorText(err, 'Could not switch to that port.'));
  }
}

function initPortBanner() {
  $('#port-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const raw = $('#port-input').value.trim();
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port < 1024 || port > 65535) {
      setPortError('Choose a port number between 1024 and 65535.');
      $('#port-input').focus();
      return;
    }
    usePort(port, $('#port-use'), 'Starting…');
  });
  $('#port-retry').addEventListener('click', () => {
    const server = state.overview && state.overview.server;
    if (server && server.port) usePort(server.port, $('#port-retry'), 'Trying…');
  });
}

// ---------------------------------------------------------------- settings

async function initAutostart() {
  const box = $('#autostart');
  try {
    box.checked = Boolean(await invoke('get_autostart'));
  } catch {
    box.disabled = true;
    box.closest('.setting').classList.add('unavailable');
    box.closest('.setting').title = 'Not available on this system';
  }
  box.addEventListener('change', async () => {
    const enabled = box.checked;
    box.disabled = true;
    try {
      await invoke('set_autostart', { enabled });
      toast(enabled ? 'Spor Companion will start when you log in' : 'Spor Companion will not start at login', { kind: 'success' });
    } catch (err) {
      box.checked = !enabled;
      toast(errorText(err, 'Could not change the start-at-login setting.'), { kind: 'error' });
    } finally {
      box.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- events

async function initEvents() {
  const handlers = [
    listen('companion://changed', (p) => {
      const type = p && p.type;
      const id = p && (p.id || p.requestId || p.request_id);
      if (type === 'consent_requested') consent.request(id);
      else if (type === 'consent_decided') consent.decided(id);
      scheduleRefresh();
    }),
    listen('companion://server', (server) => {
      if (!server || !state.overview) {
        scheduleRefresh();
        return;
      }
      state.overview.server = server;
      renderStatus();
    }),
    listen('companion://add-account', (p) => {
      const server = p && typeof p.server === 'string' ? p.server : null;
      const unknownOrigin = p && typeof p.unknownOrigin === 'string' ? p.unknownOrigin : null;
      consent.whenClosed(() => openAddAccount({ server, unknownOrigin }));
    }),
    listen('companion://open-consent', (p) => {
      if (p && p.id) consent.request(p.id);
    }),
    listen('companion://replace-token', (p) => {
      const accountId = p && p.accountId;
      if (!accountId) return;
      consent.whenClosed(async () => {
        if (!state.overview) await refresh();
        openReplace(accountId);
      });
    }),
  ];
  const results = await Promise.allSettled(handlers);
  for (const r of results) if (r.status === 'rejected') console.error('listen failed', r.reason);
}

// ---------------------------------------------------------------- static wiring

function initStatic() {
  hydrateIcons();
  $('#copy-mcp-url').addEventListener('click', (ev) => copy($('#mcp-url').textContent, ev.currentTarget));
  $('#open-connect').addEventListener('click', () => openConnect());
  $('#copy-data-dir').addEventListener('click', (ev) => copy($('#data-dir').textContent, ev.currentTarget));
  $('#add-account').addEventListener('click', () => openAddAccount());
  initDialogs();
  initPortBanner();
  consent.initConsent();
  state.refresh = () => scheduleRefresh(50);
  state.checkUpstreams = checkUpstreams;

  setInterval(refreshTimes, 30000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      refreshTimes();
      // The person may have edited an assistant's settings meanwhile.
      loadHosts({ force: true });
      scheduleRefresh(0);
      // The window was opened again: one check, unless one just ran.
      if (Date.now() - lastCheck > RECHECK_AFTER_MS) checkUpstreams();
    }
  });
}

async function main() {
  initStatic();
  await initEvents();
  invoke('ui_ready').catch(() => {});
  await refresh();
  initAutostart();
  // The window opened: one check of each account's server.
  checkUpstreams();
}

main();
