// "Connect an assistant": one row per host with Add / Remove buttons (Claude
// Code: "Add with claude" and the command to copy; Claude Desktop also
// "Download extension", an .mcpb file it installs). The one list lives in
// the empty Connected-assistants state, or in the Connect dialog once
// assistants exist.

import { h, $, clear, show, errorText, hydrateIcons } from './dom.js';
import { invoke, copy, busy, toast } from './core.js';

const ADD_LABEL = {
  'claude-desktop': 'Add to Claude Desktop',
  'claude-code': 'Add with claude',
  vscode: 'Add to VS Code',
  cursor: 'Add to Cursor',
};

const BADGE = {
  connected: ['ok', 'Connected'],
  outdated: ['warn', 'Other address'],
  unavailable: ['muted', 'Not installed'],
  error: ['bad', 'Unreadable'],
};

const ABOUT = {
  'claude-desktop': 'Runs Spor Companion as a local bridge. No Node.js needed.',
  'claude-code': 'Added for your user, in every project.',
  vscode: 'Your VS Code user settings (mcp.json).',
  cursor: 'Your Cursor settings (mcp.json).',
};

let hosts = [];
/** host → {ok, text}: the last action's outcome, shown under the row. */
const results = new Map();
let loadedFor = null;

function list() {
  let el = $('#connect-list');
  if (!el) el = h('ul', { id: 'connect-list', class: 'list connect-list', 'aria-label': 'Assistants you can connect' });
  return el;
}

/** Puts the list in the empty state (no assistants yet) or in the dialog. */
export function placeConnect(empty) {
  const slot = empty ? $('#connect-empty-slot') : $('#connect-dialog-slot');
  const el = list();
  if (el.parentElement !== slot) slot.appendChild(el);
  show($('#open-connect'), !empty);
}

/** Reads the hosts again when the MCP URL changed (or when forced). */
export async function loadHosts({ url, force = false } = {}) {
  if (!force && url && url === loadedFor) return;
  if (url) loadedFor = url;
  // Marks the list while it is being read (a re-render replaces the rows).
  list().dataset.loading = 'true';
  try {
    const found = await invoke('connect_hosts');
    hosts = Array.isArray(found) ? found : [];
    results.delete('*');
  } catch (err) {
    hosts = [];
    results.set('*', { ok: false, text: errorText(err, 'Could not read the assistants’ settings.') });
  }
  render();
  delete list().dataset.loading;
}

function render() {
  const el = list();
  clear(el);
  const general = results.get('*');
  if (!hosts.length && general) {
    el.appendChild(h('li', { class: 'connect-row' }, h('p', { class: 'connect-result', 'data-outcome': 'error', text: general.text })));
    return;
  }
  for (const v of hosts) el.appendChild(row(v));
}

function row(v) {
  const id = v.host;
  const badge = BADGE[v.state]
    ? h('span', { class: `badge badge-${BADGE[v.state][0]}`, text: BADGE[v.state][1] })
    : null;
  let where;
  if (v.command) {
    where = h('div', { class: 'codebox connect-command' },
      h('code', { class: 'mono', text: v.command }),
      h('button', {
        type: 'button', class: 'ghost small icon-text', 'data-action': 'copy', 'data-icon': 'copy',
        onClick: (ev) => copy(v.command, ev.currentTarget),
      }, 'Copy'));
  } else if (v.file) {
    where = h('p', { class: 'connect-where' }, h('code', { class: 'mono truncate', text: v.file, title: v.file }));
  }
  const actions = h('div', { class: 'connect-actions' });
  const action = (name, label, cls) => h('button', {
    type: 'button', class: `${cls} small`, 'data-action': name,
    'aria-label': name === 'remove' ? `Remove Spor from ${v.name}` : null,
    onClick: (ev) => run(v, name, ev.currentTarget),
  }, label);
  if (v.state === 'not-connected') actions.appendChild(action('write', ADD_LABEL[id] || `Add to ${v.name}`, 'primary'));
  if (v.state === 'outdated') actions.appendChild(action('write', 'Update', 'primary'));
  if (v.state === 'connected' || v.state === 'outdated') actions.appendChild(action('remove', 'Remove', 'ghost danger-text'));
  // Claude Desktop also installs Spor Companion as an extension file.
  if (id === 'claude-desktop') {
    actions.appendChild(h('button', {
      type: 'button', class: 'secondary small', 'data-action': 'extension',
      onClick: (ev) => saveExtension(v, ev.currentTarget),
    }, 'Download extension'));
  }

  const note = v.message ? h('p', { class: `connect-note${v.state === 'error' ? ' error-text' : ''}`, text: v.message }) : null;
  const result = results.get(id);
  const outcome = result
    ? h('p', { class: 'connect-result', role: 'status', 'data-outcome': result.ok ? 'ok' : 'error', text: result.text })
    : null;

  const li = h('li', { id: `connect-${id}`, class: 'connect-row', 'data-host': id, 'data-state': v.state },
    h('div', { class: 'connect-main' },
      h('div', { class: 'connect-info' },
        h('div', { class: 'connect-title' }, h('h3', { text: v.name }), badge),
        h('p', { class: 'connect-about', text: ABOUT[id] || '' })),
      actions),
    note,
    where,
    outcome);
  hydrateIcons(li);
  return li;
}

async function run(v, action, button) {
  const label = action === 'remove' ? 'Removing…' : 'Adding…';
  try {
    const result = await busy(button, label, () => invoke('connect_host', { host: v.host, action }));
    results.set(v.host, { ok: true, text: result.message });
    hosts = hosts.map((x) => (x.host === v.host ? result.view : x));
    toast(result.message, { kind: 'success' });
  } catch (err) {
    results.set(v.host, { ok: false, text: errorText(err, `Could not change ${v.name}’s settings.`) });
  }
  render();
  const again = document.querySelector(`#connect-${v.host} [data-action]`);
  if (again) again.focus();
}

/** Saves the Claude Desktop extension (.mcpb) and says where it went. */
async function saveExtension(v, button) {
  try {
    const saved = await busy(button, 'Saving…', () => invoke('save_extension'));
    results.set(v.host, { ok: true, text: saved.message });
    toast(saved.message, { kind: 'success' });
  } catch (err) {
    results.set(v.host, { ok: false, text: errorText(err, 'Could not save the extension.') });
  }
  render();
  const again = document.querySelector(`#connect-${v.host} [data-action="extension"]`);
  if (again) again.focus();
}

/** Opens the Connect dialog (when assistants exist). */
export function openConnect() {
  const dialog = $('#connect-dialog');
  placeConnect(false);
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
  loadHosts({ force: true });
}
