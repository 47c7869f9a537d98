// Add account, Replace token and Remove account dialogs.

import { h, $, $$, show, clear, icon, plural, errorText } from './dom.js';
import { invoke, toast, busy, state, knownServer, findAccount } from './core.js';

let current = null; // {dialog, returnFocus}

function setError(el, message) {
  el.textContent = message || '';
  show(el, Boolean(message));
}

function open(dialog, focusEl) {
  closeAll();
  current = { dialog, returnFocus: document.activeElement };
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
  if (focusEl) focusEl.focus();
}

function close(dialog) {
  if (dialog.open) {
    if (typeof dialog.close === 'function') dialog.close();
    else dialog.removeAttribute('open');
  }
}

/** Closes whichever dialog is open (a consent request takes over the window). */
export function closeAll() {
  for (const d of $$('dialog.modal')) close(d);
}

export function anyOpen() {
  return $$('dialog.modal').some((d) => d.open);
}

function onClosed(dialog) {
  for (const input of $$('input[type=password]', dialog)) input.value = '';
  if (current && current.dialog === dialog) {
    const back = current.returnFocus;
    current = null;
    if (back && document.contains(back) && typeof back.focus === 'function') back.focus();
  }
}

function firstEmpty(...inputs) {
  return inputs.find((i) => i && !i.hidden && !i.value) || inputs[inputs.length - 1];
}

/** A pasted token: trimmed, whitespace inside removed (copied tokens often wrap). */
function cleanToken(v) {
  return String(v || '').replace(/\s+/g, '');
}

/** '' → null; otherwise a valid http(s) URL or an Error message. */
export function checkServer(value) {
  const v = String(value || '').trim();
  if (!v) return { server: null };
  let u;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `https://${v}`);
  } catch {
    return { error: 'Enter the server address, like https://spor.example.com.' };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    return { error: 'The server address must start with https://.' };
  }
  return { server: u.href.replace(/\/$/, '') };
}

// ---------------------------------------------------------------- hosted or own server

/** Hosted Spor as the app knows it (tests may map a stand-in). */
function hostedSpor() {
  const ov = state.overview;
  return (ov && ov.hosted) || { rest: 'https://api.sporhq.io', mcp: 'https://mcp.sporhq.io/mcp' };
}

/**
 * Where a new token goes: hosted Spor, or, once "My organization runs its
 * own Spor server" is ticked, the server URL typed (and under Advanced an
 * MCP URL). `server` preselects: anything but hosted Spor ticks the box.
 * Element ids start with `prefix` (add-server, add-mcp-url, …).
 */
export function serverChoice(prefix, { server } = {}) {
  const hosted = hostedSpor();
  const own = Boolean(server) && server !== hosted.rest;
  const fields = h('div', { id: `${prefix}-own-fields`, class: 'own-fields', hidden: !own },
    h('label', { for: `${prefix}-server`, text: 'Spor server URL' }),
    h('input', {
      id: `${prefix}-server`, name: 'server', type: 'url', autocomplete: 'url', spellcheck: 'false',
      placeholder: 'https://spor.example.com', value: own ? server : '',
    }),
    h('details', { class: 'advanced' },
      h('summary', { text: 'Advanced' }),
      h('label', { for: `${prefix}-mcp-url`, text: 'MCP URL' }),
      h('input', {
        id: `${prefix}-mcp-url`, name: 'mcp_url', type: 'url', autocomplete: 'off', spellcheck: 'false',
        placeholder: 'the server URL + /mcp',
      }),
      h('p', { class: 'hint', text: "Only if your server's MCP endpoint is not at its URL + /mcp." })));
  const line = h('p', { id: `${prefix}-hosted`, class: 'server-line', hidden: own },
    'Hosted Spor', h('code', { class: 'mono', text: hosted.rest }));
  const box = h('input', {
    id: `${prefix}-own-server`, type: 'checkbox', checked: own,
    onChange: () => {
      show(fields, box.checked);
      show(line, !box.checked);
      if (box.checked) fields.querySelector('input').focus();
    },
  });
  return h('div', { class: 'server-choice' },
    line,
    h('label', { class: 'check', for: `${prefix}-own-server` }, box,
      h('span', null,
        h('span', { class: 'check-title', text: 'My organization runs its own Spor server' }),
        h('span', { class: 'check-desc', text: 'Leave this off for hosted Spor.' }))),
    fields);
}

/** What serverChoice(prefix) says: {server, mcpUrl}, or {error, focus}. */
export function readServerChoice(prefix) {
  const box = $(`#${prefix}-own-server`);
  if (!box || !box.checked) return { server: hostedSpor().rest, mcpUrl: null };
  const serverInput = $(`#${prefix}-server`);
  const server = checkServer(serverInput.value);
  if (server.error || !server.server) {
    return { error: server.error || "Enter your Spor server's address, like https://spor.example.com.", focus: serverInput };
  }
  const mcpInput = $(`#${prefix}-mcp-url`);
  const mcp = checkServer(mcpInput.value);
  if (mcp.error) {
    mcpInput.closest('details').open = true;
    return { error: 'Enter the MCP URL, like https://spor.example.com/mcp, or leave it empty.', focus: mcpInput };
  }
  return { server: server.server, mcpUrl: mcp.server };
}

// ---------------------------------------------------------------- a token being checked

/** How long a token check may take before the window says the graph is waking. */
const WAKE_NOTICE_MS = 2000;

/** The note `checking` shows once a check takes long. */
export function wakeNote(id) {
  return h('p', {
    id, class: 'hint wake-note', role: 'status', hidden: true,
    text: "The first request after a quiet spell wakes your organization's Spor graph; this can take up to a minute.",
  });
}

/**
 * busy() for a check that asks the Spor server: "Checking…", and after two
 * seconds "Waking your Spor graph…" with `note` shown, so a hosted graph
 * waking from sleep (up to about a minute) does not look stuck.
 */
export async function checking(button, note, work) {
  const timer = setTimeout(() => {
    const label = Array.from(button.childNodes).find((n) => n.nodeType === Node.TEXT_NODE);
    if (label) label.textContent = 'Waking your Spor graph…';
    show(note, true);
  }, WAKE_NOTICE_MS);
  try {
    return await busy(button, 'Checking…', work);
  } finally {
    clearTimeout(timer);
    show(note, false);
  }
}

/** Toasts for addAccount/replaceToken results. */
export function reportAccountResult(result, verb) {
  if (!result) return;
  const acct = result.account || {};
  const name = acct.label || acct.org || acct.serverHost || 'The account';
  let msg;
  if (verb === 'replace' || result.replaced) msg = `New token saved for ${name}`;
  else msg = `${name} added`;
  if (result.disconnected > 0) {
    msg += ` · ${plural(result.disconnected, 'assistant', 'assistants')} disconnected`;
  }
  toast(msg, { kind: 'success' });
  for (const w of result.warnings || []) toast(w, { kind: 'warning' });
}

// ---------------------------------------------------------------- add account

/**
 * Opens the add-account form. `unknownOrigin` is set when a
 * spor-companion:// link named a server no account or setting uses here:
 * any web page can fire such a link, so the form says where it came from.
 */
export function openAddAccount({ server, unknownOrigin } = {}) {
  const dialog = $('#add-account-dialog');
  const slot = $('#add-server-slot');
  clear(slot);
  slot.appendChild(serverChoice('add', { server: server || knownServer() }));
  const serverInput = $('#add-server');
  const tokenInput = $('#add-token');
  tokenInput.value = '';
  setError($('#add-error'), '');
  linkWarning(unknownOrigin || null);
  open(dialog, $('#add-own-server').checked ? firstEmpty(serverInput, tokenInput) : tokenInput);
}

function linkWarning(origin) {
  const el = $('#add-link-warning');
  clear(el);
  if (origin) {
    el.appendChild(icon('alert'));
    el.appendChild(h('span', null,
      'This link came from outside Spor Companion, from a web page or another program. It names a server not used here: ',
      h('strong', { class: 'mono', text: origin }),
      '. Add a token only if you trust that server.'));
  }
  show(el, Boolean(origin));
}

async function submitAdd(ev) {
  ev.preventDefault();
  if ($('#add-submit').disabled) return;
  const errEl = $('#add-error');
  const token = cleanToken($('#add-token').value);
  const where = readServerChoice('add');
  if (where.error) {
    setError(errEl, where.error);
    where.focus.focus();
    return;
  }
  if (!token) {
    setError(errEl, 'Paste your personal access token.');
    $('#add-token').focus();
    return;
  }
  setError(errEl, '');
  try {
    const result = await checking($('#add-submit'), $('#add-wake'),
      () => invoke('add_account', { server: where.server, mcpUrl: where.mcpUrl, token }));
    close($('#add-account-dialog'));
    reportAccountResult(result, 'add');
    state.refresh();
  } catch (err) {
    setError(errEl, errorText(err, 'The token could not be added.'));
    $('#add-token').select();
  }
}

// ---------------------------------------------------------------- replace token

let replaceId = null;

export function openReplace(accountId) {
  const a = findAccount(accountId);
  if (!a) {
    toast('That account is no longer stored here.', { kind: 'warning' });
    return;
  }
  replaceId = accountId;
  const name = a.label || a.org || a.serverHost;
  let lead = `Paste a new token for ${name}`;
  if (a.org && a.org !== name) lead += ` (${a.org})`;
  lead += ` on ${a.serverHost || a.server}.`;
  if (a.assistants > 0) {
    lead += ` The ${plural(a.assistants, 'assistant', 'assistants')} using the old token will be disconnected and ask you again when they next connect.`;
  }
  $('#replace-lead').textContent = lead;
  $('#replace-token').value = '';
  setError($('#replace-error'), '');
  open($('#replace-dialog'), $('#replace-token'));
}

async function submitReplace(ev) {
  ev.preventDefault();
  if ($('#replace-submit').disabled) return;
  const errEl = $('#replace-error');
  const token = cleanToken($('#replace-token').value);
  if (!token) {
    setError(errEl, 'Paste the new personal access token.');
    $('#replace-token').focus();
    return;
  }
  setError(errEl, '');
  try {
    const result = await checking($('#replace-submit'), $('#replace-wake'),
      () => invoke('replace_token', { accountId: replaceId, token }));
    close($('#replace-dialog'));
    reportAccountResult(result, 'replace');
    state.refresh();
  } catch (err) {
    setError(errEl, errorText(err, 'The token could not be replaced.'));
    $('#replace-token').select();
  }
}

// ---------------------------------------------------------------- remove account

let removeId = null;

export function openRemove(accountId) {
  const a = findAccount(accountId);
  if (!a) {
    toast('That account is no longer stored here.', { kind: 'warning' });
    return;
  }
  removeId = accountId;
  const name = a.label || a.org || a.serverHost;
  const store = (state.overview && state.overview.secretStore) || 'keychain';
  $('#remove-title').textContent = `Remove ${name}?`;
  $('#remove-text').textContent = `Spor Companion deletes this token from the ${store}.`;
  const countEl = $('#remove-count');
  countEl.textContent = a.assistants > 0
    ? `${plural(a.assistants, 'connected assistant', 'connected assistants')} will be disconnected.`
    : 'No connected assistant uses this account.';
  countEl.classList.toggle('has-count', a.assistants > 0);
  const revoke = $('#remove-revoke-upstream');
  revoke.checked = false;
  show($('#remove-revoke-row'), a.kind !== 'generic');
  setError($('#remove-error'), '');
  open($('#remove-dialog'), revoke.closest('[hidden]') ? $('#remove-confirm') : revoke);
}

async function submitRemove(ev) {
  ev.preventDefault();
  if ($('#remove-confirm').disabled) return;
  const a = findAccount(removeId);
  const name = a ? (a.label || a.org || a.serverHost) : 'The account';
  const revokeUpstream = !$('#remove-revoke-row').hidden && $('#remove-revoke-upstream').checked;
  try {
    const result = await busy($('#remove-confirm'), 'Removing…', () => invoke('remove_account', { accountId: removeId, revokeUpstream }));
    close($('#remove-dialog'));
    let msg = `${name} removed`;
    if (result && result.disconnected > 0) msg += ` · ${plural(result.disconnected, 'assistant', 'assistants')} disconnected`;
    toast(msg, { kind: 'success' });
    if (revokeUpstream) {
      if (result && result.revokedUpstream) toast('The token was also revoked on the Spor server.', { kind: 'info' });
      else toast('The token could not be revoked on the Spor server. Revoke it in Spor under Settings → Access tokens.', { kind: 'warning' });
    }
    state.refresh();
  } catch (err) {
    setError($('#remove-error'), errorText(err, 'The account could not be removed.'));
  }
}

// ---------------------------------------------------------------- wiring

export function initDialogs() {
  for (const dialog of $$('dialog.modal')) {
    for (const b of $$('[data-close]', dialog)) b.addEventListener('click', () => close(dialog));
    dialog.addEventListener('close', () => onClosed(dialog));
    // A click on the backdrop (outside the form) closes, like Esc.
    dialog.addEventListener('mousedown', (ev) => {
      if (ev.target === dialog) {
        const r = dialog.getBoundingClientRect();
        const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
        if (!inside) close(dialog);
      }
    });
  }
  $('#add-error').before(wakeNote('add-wake'));
  $('#replace-error').before(wakeNote('replace-wake'));
  $('#add-form').addEventListener('submit', submitAdd);
  $('#replace-form').addEventListener('submit', submitReplace);
  $('#remove-form').addEventListener('submit', submitRemove);
}
