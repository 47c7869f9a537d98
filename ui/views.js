// The main window: status line, banners, connected assistants, accounts, settings.

import { h, $, clear, show, icon, timeEl, relTime, fullTime, clockTime, onDay, plural, errorText } from './dom.js';
import { invoke, toast, toastError, busy, state } from './core.js';
import { openReplace, openRemove } from './dialogs.js';
import { loadHosts, placeConnect } from './connect.js';
import { accessEditor, accessText } from './access.js';

// ---------------------------------------------------------------- status

const STATE_TEXT = {
  running: 'Running',
  starting: 'Starting…',
  port_in_use: 'Not running — port in use',
  failed: 'Not running',
};

export function renderStatus() {
  const ov = state.overview;
  const server = (ov && ov.server) || { state: 'starting', port: null, mcpUrl: null, message: null };
  const status = $('#status');
  status.dataset.state = server.state;
  $('#status-text').textContent = STATE_TEXT[server.state] || 'Not running';
  const url = server.state === 'running' ? server.mcpUrl : null;
  $('#mcp-url').textContent = url || '';
  show($('.status-endpoint', status), Boolean(url));
  renderUpstreams();
  renderPortBanner(server);
  renderHowTo(server);
}

export function renderUpstreams() {
  const el = $('#upstream-status');
  const ov = state.overview;
  if (!ov || !(ov.accounts || []).length) {
    show(el, false);
    return;
  }
  clear(el);
  const list = ov.upstreams || [];
  const down = list.filter((u) => !u.reachable);
  let text;
  let title = '';
  if (state.checking) {
    text = state.checking === 'waking' ? 'Waking your Spor graph…' : 'Checking Spor…';
    title = 'The first request after a quiet spell wakes your organization\'s Spor graph; this can take up to a minute.';
    el.dataset.state = 'checking';
  } else if (!list.length) {
    text = 'Spor not checked yet';
    el.dataset.state = 'unknown';
  } else if (!down.length) {
    text = list.length === 1 ? 'Spor server reachable' : 'Spor servers reachable';
    title = list.map((u) => `${u.serverHost || u.server}: ${heardText(u)}`).join('\n');
    el.dataset.state = 'ok';
  } else {
    const u = down[0];
    const host = u.serverHost || u.server;
    text = `${host} unreachable${u.message ? `: ${u.message}` : ''}`;
    if (down.length > 1) text += ` (+${down.length - 1} more)`;
    title = down.map((d) => `${d.serverHost || d.server}: ${d.message || 'unreachable'} (${heardText(d)})`).join('\n');
    el.dataset.state = 'down';
  }
  el.title = title;
  el.appendChild(h('span', { class: 'dot', 'aria-hidden': 'true' }));
  el.appendChild(h('span', { class: 'truncate', text }));
  if (!state.checking) {
    el.appendChild(h('button', {
      id: 'check-upstreams', type: 'button', class: 'link-button small',
      onClick: () => state.checkUpstreams(),
    }, 'Check now'));
  }
  show(el, true);
}

const HEARD_FROM = { validation: 'token checked', check: 'checked', traffic: 'an assistant\'s call' };

/** When and how a server was last heard from, for the pill's tooltip. */
function heardText(u) {
  const how = HEARD_FROM[u.source] || 'heard';
  return u.at ? `${how} ${relTime(u.at)}` : how;
}

let portBannerShown = false;

function renderPortBanner(server) {
  const banner = $('#port-banner');
  const visible = server.state === 'port_in_use' || server.state === 'failed';
  if (!visible) {
    show(banner, false);
    portBannerShown = false;
    return;
  }
  const port = server.port;
  $('#port-banner-title').textContent = server.state === 'port_in_use'
    ? `Port ${port} is in use by another program.`
    : `Spor Companion could not start its server${server.message ? `: ${server.message}` : '.'}`;
  if (!portBannerShown) {
    const input = $('#port-input');
    const suggestion = server.state === 'port_in_use' && port ? Math.min(65535, port + 1) : port;
    input.value = suggestion ? String(suggestion) : '';
    show($('#port-error'), false);
  }
  show(banner, true);
  portBannerShown = true;
}

function renderHowTo(server) {
  const ov = state.overview;
  const url = (server && server.mcpUrl) || (server && server.port ? `http://127.0.0.1:${server.port}/mcp` : 'http://127.0.0.1:7767/mcp');
  $('#howto-url').textContent = url;
  // The hosts' state depends on the URL (a new port makes entries outdated).
  if (ov && server && (server.state === 'running' || server.state === 'port_in_use')) loadHosts({ url });
}

// ---------------------------------------------------------------- account banners

export function renderAccountBanners() {
  const root = $('#account-banners');
  clear(root);
  const accounts = (state.overview && state.overview.accounts) || [];
  for (const a of accounts) {
    if (a.state !== 'rejected' && a.state !== 'expired') continue;
    const name = accountName(a);
    const serverName = a.kind === 'spor' ? 'The Spor server' : `The server ${a.serverHost || a.server}`;
    const title = a.state === 'expired'
      ? `The token for ${name} has expired. Paste a new one.`
      : `${serverName} rejected the token for ${name}. Paste a new one.`;
    const text = a.assistants > 0
      ? `Assistants using it can't reach ${a.kind === 'spor' ? 'Spor' : 'the server'} until you do.`
      : 'Assistants connected with it were disconnected; they ask again once the new token is in.';
    const button = h('button', {
      type: 'button', class: 'secondary small', 'data-action': 'replace-token', 'data-account-id': a.id,
      onClick: () => openReplace(a.id),
    }, 'Replace token');
    root.appendChild(h('section', { class: 'banner warning', role: 'alert', 'data-account-id': a.id },
      h('span', { class: 'banner-icon' }, icon('key')),
      h('div', { class: 'banner-body' },
        h('p', { class: 'banner-title', text: title }),
        h('p', { class: 'banner-text', text })),
      h('div', { class: 'banner-actions' }, button)));
  }
}

export function accountName(a) {
  if (!a) return 'this account';
  return a.label || a.org || a.serverHost || 'this account';
}

// ---------------------------------------------------------------- assistants

const OUTCOME_TEXT = {
  ok: 'OK',
  rejected: 'Token rejected',
  unreachable: 'Server unreachable',
  timeout: 'Timed out',
  stream_broken: 'Stream interrupted',
  denied: 'Denied',
  error: 'Error',
  cancelled: 'Cancelled',
};

export function outcomeText(outcome) {
  if (!outcome) return '';
  if (OUTCOME_TEXT[outcome]) return OUTCOME_TEXT[outcome];
  const m = /^http_(\d{3})$/.exec(outcome);
  if (m) return `HTTP ${m[1]}`;
  const words = String(outcome).replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function callName(entry) {
  if (entry.tool) return entry.tool;
  return entry.method || 'request';
}

function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60000)} min`;
}

function outcomeBadge(outcome) {
  return h('span', { class: `outcome ${outcome === 'ok' ? 'ok' : 'bad'}`, text: outcomeText(outcome) });
}

function sortedRecent(list) {
  return (list || []).slice().sort((a, b) => String(b.at).localeCompare(String(a.at)));
}

const AVATAR_TINTS = 5;

function avatar(name) {
  const letter = (String(name || '?').trim().match(/[\p{L}\p{N}]/u) || ['?'])[0].toUpperCase();
  let hash = 0;
  for (const ch of String(name || '')) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return h('span', { class: `avatar tint-${hash % AVATAR_TINTS}`, 'aria-hidden': 'true', text: letter });
}

export function renderAssistants() {
  const list = $('#assistants');
  const assistants = (state.overview && state.overview.assistants) || [];
  const focus = rememberFocus(list, 'data-grant-id');
  clear(list);
  const count = $('#assistants-count');
  count.textContent = String(assistants.length);
  show(count, assistants.length > 0);
  show(list, assistants.length > 0);
  show($('#assistants-empty'), assistants.length === 0);
  placeConnect(assistants.length === 0);
  for (const id of Array.from(state.expanded)) {
    if (!assistants.some((a) => a.id === id)) state.expanded.delete(id);
  }
  for (const a of assistants) list.appendChild(assistantRow(a));
  restoreFocus(list, 'data-grant-id', focus);
}

function assistantRow(a) {
  const name = a.name || 'Unnamed assistant';
  const expanded = state.expanded.has(a.id);
  const panelId = `activity-${cssId(a.id)}`;

  const account = a.accountId
    ? h('span', { class: 'chip', title: a.org ? `${a.accountLabel || a.org} (${a.org})` : (a.accountLabel || '') },
      h('span', { class: 'truncate', text: a.accountLabel || a.org || 'Account' }))
    : h('span', { class: 'chip muted-chip', text: 'No account' });

  const meta = h('p', { class: 'row-meta' },
    timeEl(a.connectedAt, 'Connected '),
    h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
    a.lastUsedAt ? timeEl(a.lastUsedAt, 'Last used ') : h('span', { text: 'Not used yet' }));

  const toggle = h('button', {
    type: 'button', class: `link-button small toggle${expanded ? ' open' : ''}`, 'data-action': 'activity',
    'aria-expanded': expanded ? 'true' : 'false', 'aria-controls': panelId,
    onClick: () => toggleActivity(a.id),
  }, expanded ? 'Hide activity' : 'Activity', icon('chevron', 'icon chevron'));

  const recent = sortedRecent(a.recent);
  let last;
  if (recent.length) {
    const r = recent[0];
    last = h('div', { class: 'row-last' },
      h('span', { class: `status-dot ${r.outcome === 'ok' ? 'ok' : 'bad'}`, 'aria-hidden': 'true' }),
      h('span', { class: 'row-last-label', text: 'Last call' }),
      h('code', { class: 'mono call truncate', text: callName(r), title: r.method || '' }),
      h('span', { class: `row-last-outcome ${r.outcome === 'ok' ? 'ok' : 'bad'}`, text: outcomeText(r.outcome) }),
      r.durationMs != null ? h('span', { class: 'row-last-dur', text: duration(r.durationMs) }) : null,
      h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
      toggle);
  } else {
    last = h('div', { class: 'row-last quiet' }, h('span', { text: 'No calls yet' }),
      h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }), toggle);
  }

  const accessLine = h('p', { class: 'row-access' },
    h('span', { class: 'row-access-label', text: 'Access' }),
    h('span', { class: 'row-access-value', 'data-access': (a.access && a.access.kind) || 'full', text: accessText(a.access) }),
    h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
    h('button', {
      type: 'button', class: 'link-button small', 'data-action': 'access',
      'aria-label': `Change what ${name} may do`,
      onClick: (ev) => openAccess(a, ev.currentTarget.closest('li')),
    }, 'Change'));

  const disconnect = h('button', {
    type: 'button', class: 'danger small', 'data-action': 'disconnect',
    'aria-label': `Disconnect ${name}`,
    onClick: (ev) => disconnectGrant(a, ev.currentTarget),
  }, 'Disconnect');

  const row = h('li', { class: `assistant${expanded ? ' expanded' : ''}`, 'data-grant-id': a.id },
    h('div', { class: 'assistant-main' },
      avatar(name),
      h('div', { class: 'assistant-info' },
        h('div', { class: 'row-title' },
          h('span', { class: 'assistant-name truncate', title: a.verifiedBy ? `${name} — verified by ${a.verifiedBy}` : `${name} — name as stated by the app` }, h('bdi', { text: name })),
          a.verifiedBy ? h('span', { class: 'tag verified', 'data-verified-by': a.verifiedBy, text: `verified by ${a.verifiedBy}` }) : null,
          account),
        meta,
        accessLine,
        last),
      h('div', { class: 'row-actions' }, disconnect)),
    activityPanel(a.id, panelId, expanded));
  return row;
}

/** The access editor under an assistant's row; saving applies from its next request. */
function openAccess(a, row) {
  if (!row || row.querySelector('.access-panel')) return;
  const editor = accessEditor({
    idPrefix: `access-${cssId(a.id)}`,
    initial: a.access,
    loadTools: () => invoke('account_tools', { grantId: a.id }),
  });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const close = () => panel.remove();
  const save = h('button', {
    type: 'button', class: 'primary small', 'data-action': 'save-access',
    onClick: async (ev) => {
      const chosen = editor.read();
      if (chosen.error) {
        error.textContent = chosen.error;
        error.hidden = false;
        return;
      }
      try {
        await busy(ev.currentTarget, 'Saving…', () => invoke('set_access', { grantId: a.id, access: chosen.access }));
      } catch (err) {
        error.textContent = errorText(err, 'Could not change the access.');
        error.hidden = false;
        return;
      }
      close();
      const words = { full: 'full access', 'read-only': 'read-only access' }[chosen.access] || 'access to the chosen tools';
      toast(`${a.name || 'The assistant'} now has ${words}`, { kind: 'success' });
      state.refresh();
    },
  }, 'Save');
  const cancel = h('button', { type: 'button', class: 'secondary small', onClick: close }, 'Cancel');
  const panel = h('div', { class: 'access-panel' }, editor.el, error,
    h('p', { class: 'access-note', text: 'Applies from the assistant\'s next request; it stays connected.' }),
    h('div', { class: 'buttons' }, cancel, save));
  row.appendChild(panel);
  const first = panel.querySelector('input:checked');
  if (first) first.focus();
}

function activityPanel(grantId, panelId, expanded) {
  const panel = h('div', { class: 'activity', id: panelId, hidden: !expanded });
  if (!expanded) return panel;
  const entry = state.activity.get(grantId);
  if (!entry || (entry.loading && !entry.items)) {
    panel.appendChild(h('p', { class: 'activity-note' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading recent activity…'));
    return panel;
  }
  if (entry.error && !entry.items) {
    panel.appendChild(h('p', { class: 'activity-note error-text', text: entry.error }));
    return panel;
  }
  const items = sortedRecent(entry.items);
  if (!items.length) {
    panel.appendChild(h('p', { class: 'activity-note', text: 'No calls yet. Activity appears here once the assistant uses Spor.' }));
    return panel;
  }
  const tbody = h('tbody');
  for (const r of items) {
    tbody.appendChild(h('tr', null,
      h('td', { class: 'col-time' }, h('time', { datetime: r.at, title: fullTime(r.at), text: activityTime(r.at) })),
      h('td', { class: 'col-call' }, h('span', { class: 'call-cell' },
        h('code', { class: 'mono truncate', text: callName(r), title: callName(r) }),
        r.tool && r.method ? h('span', { class: 'call-method', text: r.method }) : null)),
      h('td', { class: 'col-outcome' }, outcomeBadge(r.outcome)),
      h('td', { class: 'col-dur', text: duration(r.durationMs) })));
  }
  panel.appendChild(h('table', { class: 'activity-table' },
    h('caption', { class: 'visually-hidden', text: 'Recent activity' }),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', class: 'col-time', text: 'Time' }),
      h('th', { scope: 'col', class: 'col-call', text: 'Call' }),
      h('th', { scope: 'col', class: 'col-outcome', text: 'Result' }),
      h('th', { scope: 'col', class: 'col-dur', text: 'Duration' }))),
    tbody));
  return panel;
}

function activityTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return clockTime(iso);
  return `${onDay(iso)}, ${clockTime(iso)}`;
}

function toggleActivity(grantId) {
  if (state.expanded.has(grantId)) {
    state.expanded.delete(grantId);
    renderAssistants();
    return;
  }
  state.expanded.add(grantId);
  renderAssistants();
  loadActivity(grantId);
}

export async function loadActivity(grantId) {
  const prev = state.activity.get(grantId);
  state.activity.set(grantId, { loading: true, error: null, items: prev ? prev.items : null });
  try {
    const items = await invoke('activity', { grantId, limit: 20 });
    state.activity.set(grantId, { loading: false, error: null, items: Array.isArray(items) ? items : [] });
  } catch (err) {
    state.activity.set(grantId, { loading: false, error: errorText(err, 'Could not load the activity.'), items: prev ? prev.items : null });
  }
  if (state.expanded.has(grantId)) renderAssistants();
}

export function reloadExpandedActivity() {
  for (const id of state.expanded) loadActivity(id);
}

async function disconnectGrant(a, button) {
  const name = a.name || 'The assistant';
  try {
    await busy(button, 'Disconnecting…', () => invoke('disconnect', { grantId: a.id }));
    toast(`${name} is disconnected`, { kind: 'success' });
    state.expanded.delete(a.id);
    state.activity.delete(a.id);
    const ov = state.overview;
    if (ov && Array.isArray(ov.assistants)) {
      ov.assistants = ov.assistants.filter((x) => x.id !== a.id);
      renderAssistants();
    }
  } catch (err) {
    toastError(err, `Could not disconnect ${name}.`);
  }
  state.refresh();
}

// ---------------------------------------------------------------- accounts

const BADGE = { valid: 'Valid', rejected: 'Rejected', expired: 'Expired' };

export function renderAccounts() {
  const list = $('#accounts');
  const ov = state.overview;
  const accounts = (ov && ov.accounts) || [];
  const focus = rememberFocus(list, 'data-account-id');
  clear(list);
  show(list, accounts.length > 0);
  show($('#accounts-empty'), accounts.length === 0);

  // One #add-account button: in the empty state it is the call to action,
  // otherwise it sits in the section header.
  const add = $('#add-account');
  if (accounts.length === 0) {
    $('#add-account-empty-slot').appendChild(add);
    add.className = 'primary icon-text';
    add.lastChild.textContent = 'Add your token';
  } else {
    $('#add-account-slot').appendChild(add);
    add.className = 'secondary small icon-text';
    add.lastChild.textContent = 'Add account';
  }

  for (const a of accounts) list.appendChild(accountCard(a));
  restoreFocus(list, 'data-account-id', focus);
}

function accountCard(a) {
  const name = accountName(a);
  const st = BADGE[a.state] ? a.state : 'rejected';
  const badge = h('span', { class: `badge badge-${st}` }, BADGE[st] || a.state);

  const sub = [];
  if (a.org && a.org !== a.label) sub.push(h('span', { class: 'org', text: a.org }));
  if (a.kind === 'generic') sub.push(h('span', { text: 'MCP server' }));
  sub.push(h('span', { class: 'host truncate', text: a.serverHost || a.server || '', title: a.server || '' }));
  const subLine = h('p', { class: 'card-sub' });
  sub.forEach((el, i) => {
    if (i) subLine.appendChild(h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }));
    subLine.appendChild(el);
  });

  let who = null;
  if (a.name || a.email) {
    who = h('p', { class: 'card-who' },
      a.name ? h('span', { class: 'who-name truncate', text: a.name }) : null,
      a.email ? h('span', { class: 'who-email truncate', text: a.email, title: a.email }) : null);
  } else if (a.who) {
    who = h('p', { class: 'card-who' }, h('span', { class: 'who-name truncate', text: a.who, title: a.who }));
  }
  const unbound = a.kind === 'spor' && a.bound === false
    ? h('p', { class: 'card-warn' }, icon('alert'), 'Token not linked to a person — writes are not attributed to you.')
    : null;

  const usage = h('p', {
    class: 'card-usage',
    title: a.addedAt ? `Added ${fullTime(a.addedAt)}` : null,
    text: a.assistants > 0 ? plural(a.assistants, 'assistant', 'assistants') : 'No assistants',
  });

  const replace = h('button', {
    type: 'button', class: `${st === 'valid' ? 'secondary' : 'primary'} small`, 'data-action': 'replace',
    'aria-label': `Replace token for ${name}`, onClick: () => openReplace(a.id),
  }, 'Replace token');
  const remove = h('button', {
    type: 'button', class: 'ghost danger-text small', 'data-action': 'remove',
    'aria-label': `Remove ${name}`, onClick: () => openRemove(a.id),
  }, 'Remove');

  return h('li', { class: `account state-${st}`, 'data-account-id': a.id, 'data-state': a.state },
    h('div', { class: 'card-head' },
      h('h3', { class: 'card-title truncate', text: name, title: name }),
      badge),
    subLine,
    who,
    unbound,
    h('div', { class: 'card-foot' }, usage, h('div', { class: 'card-actions' }, replace, remove)));
}

// ---------------------------------------------------------------- settings

export function renderSettings() {
  const ov = state.overview;
  if (!ov) return;
  $('#secret-store').textContent = capitalize(ov.secretStore || 'system keychain');
  const dir = $('#data-dir');
  dir.textContent = ov.dataDir || '';
  dir.title = ov.dataDir || '';
}

function capitalize(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

// ---------------------------------------------------------------- focus keeping across re-renders

function rememberFocus(list, attr) {
  const active = document.activeElement;
  if (!active || !list.contains(active)) return null;
  const row = active.closest(`[${attr}]`);
  if (!row) return null;
  return { key: row.getAttribute(attr), action: active.getAttribute('data-action') };
}

function restoreFocus(list, attr, focus) {
  if (!focus) return;
  const row = Array.from(list.querySelectorAll(`[${attr}]`)).find((r) => r.getAttribute(attr) === focus.key);
  const target = row && focus.action ? row.querySelector(`[data-action="${focus.action}"]`) : row;
  if (target && typeof target.focus === 'function') target.focus();
}

function cssId(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, '_');
}

export { relTime };
