// The consent sheet: shown above everything while an assistant asks to connect.

import { h, $, clear, show, icon, plural, errorText } from './dom.js';
import { invoke, toast, busy, state } from './core.js';
import { closeAll, checking, readServerChoice, serverChoice, wakeNote } from './dialogs.js';
import { accessEditor } from './access.js';

const c = {
  id: null, // request shown (or being loaded)
  view: null, // consentView() result
  queue: [], // ids waiting their turn
  failed: new Set(), // ids that could not be loaded (expired, decided)
  tokenFor: undefined, // undefined: token form closed; null: any org; option: that org
  selected: null, // chosen accountId
  access: null, // the access editor on screen (accessEditor())
  note: null, // warnings after a token was added
  expired: false,
  timer: null,
  returnFocus: null,
  afterClose: [],
};

const root = () => $('#consent');
const card = () => $('#consent-card');

export function isOpen() {
  return c.id !== null;
}

/** Runs fn once no consent request is on screen (deep links wait their turn). */
export function whenClosed(fn) {
  if (!isOpen()) fn();
  else c.afterClose.push(fn);
}

/** Shows request `id` now, or after the one on screen. */
export function request(id) {
  if (!id || c.failed.has(id)) return;
  if (c.id === id) return;
  if (c.id !== null) {
    if (!c.queue.includes(id)) c.queue.push(id);
    updateQueueNote();
    return;
  }
  load(id);
}

/** The request was decided elsewhere (browser, CLI, another window). */
export function decided(id) {
  if (!id) return;
  c.queue = c.queue.filter((q) => q !== id);
  c.failed.add(id);
  if (c.id === id) finish();
  else updateQueueNote();
}

/** Called after each overview: opens the first pending request if none is shown. */
export function syncPending(pending) {
  const ids = (pending || []).map((p) => p.id);
  c.queue = c.queue.filter((q) => ids.includes(q) || q === c.id);
  if (c.id === null) {
    const next = ids.find((id) => !c.failed.has(id));
    if (next) load(next);
  } else {
    updateQueueNote();
  }
}

async function load(id) {
  c.id = id;
  let view;
  try {
    view = await invoke('consent_view', { id });
  } catch (err) {
    if (c.id !== id) return;
    c.failed.add(id);
    c.id = null;
    toast(errorText(err, 'That connection request is no longer open.'), { kind: 'warning' });
    next();
    return;
  }
  if (c.id !== id) return; // decided while loading
  c.view = view;
  c.tokenFor = undefined;
  c.note = null;
  c.expired = false;
  c.selected = defaultSelection(view, null);
  open();
}

function usable(view) {
  return (view.options || []).filter((o) => o.accountId && !o.rejected);
}

function defaultSelection(view, preferred) {
  const ok = usable(view);
  if (preferred && ok.some((o) => o.accountId === preferred)) return preferred;
  return ok.length ? ok[0].accountId : null;
}

function needsToken(view) {
  return Boolean(view.needsToken) || usable(view).length === 0;
}

function open() {
  const el = root();
  if (el.hidden) {
    c.returnFocus = document.activeElement;
    closeAll();
    $('#app').inert = true;
    $('#app').setAttribute('aria-hidden', 'true');
  }
  render();
  el.dataset.requestId = c.id;
  el.hidden = false;
  startTimer();
  focusFirst();
}

function finish() {
  clearInterval(c.timer);
  c.timer = null;
  c.id = null;
  c.view = null;
  c.tokenFor = undefined;
  const el = root();
  el.hidden = true;
  el.removeAttribute('data-request-id');
  clear(card());
  $('#app').inert = false;
  $('#app').removeAttribute('aria-hidden');
  const back = c.returnFocus;
  c.returnFocus = null;
  if (back && document.contains(back) && typeof back.focus === 'function') back.focus();
  next();
}

function next() {
  while (c.queue.length) {
    const id = c.queue.shift();
    if (!c.failed.has(id)) {
      load(id);
      return;
    }
  }
  const pending = (state.overview && state.overview.pending) || [];
  const id = pending.map((p) => p.id).find((p) => !c.failed.has(p));
  if (id) {
    load(id);
    return;
  }
  const deferred = c.afterClose.splice(0);
  for (const fn of deferred) fn();
}

function focusFirst() {
  const own = $('#consent-own-server');
  const server = own && own.checked ? $('#consent-server') : null;
  const target = server || $('#consent-token') || $('#consent-options input[name=account]:checked')
    || $('#consent-options input[name=account]') || $('#consent-allow');
  if (target) target.focus();
}

// ---------------------------------------------------------------- rendering

function render() {
  const v = c.view;
  const el = card();
  clear(el);
  const firstTime = needsToken(v);
  const name = v.clientName || 'An assistant';

  const scroll = h('div', { class: 'consent-scroll' });
  scroll.appendChild(h('div', { class: 'consent-top' },
    h('span', { class: 'consent-brand' },
      h('img', { src: 'logo.svg', alt: '', width: 22, height: 22 }),
      'Spor Companion'),
    h('span', { id: 'consent-expiry', class: 'expiry' }, icon('clock'), h('span', { id: 'consent-expiry-text' }))));

  scroll.appendChild(h('h1', { id: 'consent-title', text: 'Connect an assistant' }));
  // The name is the client's own claim: isolated, so bidi controls in it
  // cannot reorder the sentence around it.
  scroll.appendChild(h('p', { class: 'consent-lead' },
    h('strong', { class: 'client-name', title: name }, h('bdi', { text: name })),
    ' ',
    v.verifiedBy
      ? h('span', { id: 'consent-verified', class: 'tag verified', title: `The assistant's name comes from a document served by ${v.verifiedBy}.`, text: `verified by ${v.verifiedBy}` })
      : h('span', { class: 'tag', title: 'Assistants choose their own names; Spor Companion cannot verify them.', text: 'name as stated by the app' }),
    ' wants to use your Spor account.'));

  const who = v.requester || {};
  scroll.appendChild(h('dl', { class: 'facts' },
    h('dt', null, 'Program'),
    h('dd', { id: 'consent-program', title: 'As the operating system reports it, not as the assistant claims.' }, who.program || 'unknown program'),
    h('dt', null, 'Returns to'),
    h('dd', null, h('code', { class: 'mono', text: v.redirectHost || '' }),
      who.listener ? h('span', { id: 'consent-listener', class: 'listener', text: ` · ${who.listener}` }) : null),
    h('dt', null, 'Acts'),
    h('dd', null, "On your team graph through Spor's tools, as you.")));
  for (const w of who.warnings || []) {
    scroll.appendChild(h('p', { class: 'form-note requester-warning', role: 'alert', 'data-warning': w.kind }, icon('alert'), h('span', { text: w.message })));
  }

  if (firstTime) {
    const rejected = (v.options || []).some((o) => o.rejected);
    scroll.appendChild(h('section', { class: 'consent-step' },
      h('h2', { text: rejected ? 'Paste a new Spor token' : 'First, add your Spor token' }),
      h('p', {
        class: 'step-text',
        text: rejected
          ? 'The Spor server rejected the token stored here. Paste a new personal access token to continue.'
          : 'Paste a personal access token once; Spor Companion remembers it for every assistant you connect.',
      }),
      tokenForm({ inline: false, option: firstRejected(v) })));
  } else {
    scroll.appendChild(picker(v));
    c.access = consentAccess(v, 'full');
    scroll.appendChild(c.access.el);
    if (c.tokenFor !== undefined) {
      scroll.appendChild(h('section', { class: 'consent-step inline' }, tokenForm({ inline: true, option: c.tokenFor })));
    } else {
      scroll.appendChild(h('button', {
        type: 'button', class: 'link-button add-other', onClick: () => openTokenForm(null),
      }, icon('plus'), 'Add a token for another organization'));
    }
  }

  const note = h('p', { id: 'consent-note', class: 'form-note', role: 'status', hidden: !c.note }, icon('alert'), h('span', { text: c.note || '' }));
  scroll.appendChild(note);
  scroll.appendChild(h('p', { id: 'consent-error', class: 'form-error', role: 'alert', hidden: true }));
  el.appendChild(scroll);

  const deny = h('button', { id: 'consent-deny', type: 'button', class: 'secondary', onClick: onDeny }, 'Deny');
  let primary;
  if (firstTime) {
    primary = h('button', { id: 'consent-add-token', type: 'submit', form: 'consent-token-form', class: 'primary' }, 'Add token');
  } else {
    primary = h('button', { id: 'consent-allow', type: 'button', class: 'primary', onClick: onAllow }, 'Allow');
  }
  el.appendChild(h('div', { class: 'consent-foot' },
    h('p', { id: 'consent-queue', class: 'queue-note', hidden: true }),
    h('div', { class: 'buttons' }, deny, primary)));
  updateQueueNote();
  updateExpiry();
}

/** The access choice for the picked account; its tools are read when asked for. */
function consentAccess(v, kind) {
  return accessEditor({
    idPrefix: 'consent-access',
    initial: { kind, tools: [] },
    loadTools: () => {
      const known = (v.tools || []).find((t) => t.account_id === c.selected && !t.pending);
      return known ? Promise.resolve(known) : invoke('consent_tools', { accountId: c.selected });
    },
  });
}

function firstRejected(v) {
  return (v.options || []).find((o) => o.rejected) || undefined;
}

/** Scheme, host and port of a server URL, so look-alike accounts differ visibly. */
function originOf(server) {
  try {
    const origin = new URL(server).origin;
    return origin && origin !== 'null' ? origin : server;
  } catch {
    return server || '';
  }
}

/** Text from outside (a label, a person's name) as its own bidi run. */
function isolated(text, attrs) {
  return h('bdi', { ...(attrs || {}), text });
}

function picker(v) {
  const options = v.options || [];
  const fs = h('fieldset', { id: 'consent-options', class: 'options' },
    h('legend', { text: options.length > 1 ? 'Organization' : 'Account' }));
  options.forEach((o, i) => {
    const origin = originOf(o.server);
    const who = [o.who, origin].filter(Boolean).join(' · ');
    if (o.accountId && !o.rejected) {
      const inputId = `consent-opt-${i}`;
      const radio = h('input', {
        type: 'radio', name: 'account', id: inputId, value: o.accountId, checked: o.accountId === c.selected,
        onChange: () => {
          c.selected = o.accountId;
          setError('');
          // The checklist is the picked account's: start it again, same choice.
          if (c.access) {
            const fresh = consentAccess(v, c.access.kind());
            c.access.el.replaceWith(fresh.el);
            c.access = fresh;
          }
        },
      });
      fs.appendChild(h('label', { class: 'option', for: inputId },
        radio,
        h('span', { class: 'option-body' },
          h('span', { class: 'option-title' },
            h('span', { class: 'truncate' }, isolated(o.label || o.org)),
            o.org && o.org !== o.label ? isolated(o.org, { class: 'org-slug' }) : null),
          h('span', { class: 'option-who truncate', title: who },
            o.who ? isolated(o.who) : null,
            o.who ? ' · ' : null,
            h('span', { class: 'option-origin mono', text: origin })))));
    } else {
      const label = o.label || o.org;
      const action = o.rejected ? 'Paste a new one' : 'Add a token for this org';
      fs.appendChild(h('div', { class: `option disabled${o.rejected ? ' rejected' : ''}` },
        h('span', { class: 'radio-placeholder', 'aria-hidden': 'true' }),
        h('span', { class: 'option-body' },
          h('span', { class: 'option-title' },
            h('span', { class: 'truncate', title: label }, isolated(label)),
            o.org && o.org !== o.label ? isolated(o.org, { class: 'org-slug' }) : null),
          h('span', { class: 'option-who option-missing' },
            h('span', { class: 'option-origin mono', text: origin }),
            h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
            h('span', { class: o.rejected ? 'bad' : '', text: o.rejected ? 'Token rejected' : 'No token yet' }),
            h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
            h('button', {
              type: 'button', class: 'link-button small', 'data-org': o.org,
              'aria-label': `${action}: ${label}`, onClick: () => openTokenForm(o),
            }, action)))));
    }
  });
  return fs;
}

function tokenForm({ inline, option }) {
  const v = c.view;
  const server = (option && option.server) || v.knownServer || null;
  const form = h('form', {
    id: 'consent-token-form', class: 'token-form', novalidate: true, 'data-server': server || '', onSubmit: onAddToken,
  });
  if (inline) {
    form.appendChild(h('p', { class: 'form-title' },
      option ? h('span', null, 'Token for ', isolated(option.label || option.org)) : 'Token for another organization',
      option && option.org && option.org !== option.label ? isolated(option.org, { class: 'org-slug' }) : null));
  }
  if (server) {
    form.appendChild(h('p', { class: 'server-line' }, 'Server ', h('code', { class: 'mono', text: server })));
  } else {
    // Nothing in use yet: hosted Spor, unless the person's organization
    // runs its own server.
    form.appendChild(serverChoice('consent'));
  }
  form.appendChild(h('label', { for: 'consent-token', text: 'Personal access token' }));
  form.appendChild(h('input', {
    id: 'consent-token', name: 'token', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'spor_pat_…',
  }));
  form.appendChild(h('p', { class: 'hint', text: "Create one in Spor under Settings → Access tokens. It is kept in this computer's keychain and never shown to the assistant." }));
  form.appendChild(wakeNote('consent-wake'));
  if (inline) {
    form.appendChild(h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'ghost small', onClick: closeTokenForm }, 'Cancel'),
      h('button', { id: 'consent-add-token', type: 'submit', class: 'secondary small' }, 'Add token')));
  }
  return form;
}

function openTokenForm(option) {
  c.tokenFor = option;
  render();
  const target = $('#consent-token');
  if (target) {
    target.focus();
    target.scrollIntoView({ block: 'nearest' });
  }
}

function closeTokenForm() {
  c.tokenFor = undefined;
  render();
  focusFirst();
}

function setError(message) {
  const el = $('#consent-error');
  if (!el) return;
  el.textContent = message || '';
  show(el, Boolean(message));
  if (message) el.scrollIntoView({ block: 'nearest' });
}

function updateQueueNote() {
  const el = $('#consent-queue');
  if (!el || !c.id) return;
  const pending = ((state.overview && state.overview.pending) || []).map((p) => p.id);
  const others = new Set([...c.queue, ...pending].filter((id) => id !== c.id && !c.failed.has(id)));
  el.textContent = others.size ? `${plural(others.size, 'more request', 'more requests')} waiting` : '';
  show(el, others.size > 0);
}

// ---------------------------------------------------------------- expiry

function startTimer() {
  clearInterval(c.timer);
  c.timer = setInterval(updateExpiry, 1000);
}

function updateExpiry() {
  const text = $('#consent-expiry-text');
  const wrap = $('#consent-expiry');
  if (!text || !c.view) return;
  const end = Date.parse(c.view.expiresAt);
  if (!Number.isFinite(end)) {
    show(wrap, false);
    return;
  }
  const left = Math.round((end - Date.now()) / 1000);
  if (left <= 0) {
    text.textContent = 'Expired';
    wrap.classList.add('expired');
    markExpired();
    return;
  }
  wrap.classList.toggle('soon', left < 60);
  if (left >= 3600) text.textContent = `Expires in ${Math.round(left / 60)} min`;
  else text.textContent = `Expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

function markExpired() {
  const first = !c.expired;
  c.expired = true;
  clearInterval(c.timer);
  c.timer = null;
  if (first || $('#consent-error').hidden) setError('This request has expired. Ask the assistant to connect again.');
  for (const sel of ['#consent-allow', '#consent-add-token']) {
    const b = $(sel);
    if (b) b.disabled = true;
  }
  const deny = $('#consent-deny');
  if (deny) deny.textContent = 'Close';
}

// ---------------------------------------------------------------- actions

async function onAddToken(ev) {
  ev.preventDefault();
  const button = $('#consent-add-token');
  if (!button || button.disabled || c.expired) return;
  const id = c.id;
  const tokenInput = $('#consent-token');
  const token = String(tokenInput.value || '').replace(/\s+/g, '');
  let server = ($('#consent-token-form').getAttribute('data-server')) || null;
  let mcpUrl = null;
  if ($('#consent-own-server')) {
    const where = readServerChoice('consent');
    if (where.error) {
      setError(where.error);
      where.focus.focus();
      return;
    }
    ({ server, mcpUrl } = where);
  }
  if (!token) {
    setError('Paste your personal access token.');
    tokenInput.focus();
    return;
  }
  setError('');
  let result;
  try {
    result = await checking(button, $('#consent-wake'), () => invoke('add_account', { server, mcpUrl, token }));
  } catch (err) {
    if (c.id !== id) return;
    setError(errorText(err, 'The token could not be added.'));
    tokenInput.select();
    return;
  }
  state.refresh();
  if (c.id !== id) return;
  let view;
  try {
    view = await invoke('consent_view', { id });
  } catch (err) {
    if (c.id !== id) return;
    setError(errorText(err, 'This request is no longer open. Ask the assistant to connect again.'));
    return;
  }
  if (c.id !== id) return;
  c.view = view;
  c.tokenFor = undefined;
  const warnings = (result && result.warnings) || [];
  c.note = warnings.length ? warnings.join(' ') : null;
  c.selected = defaultSelection(view, result && result.account ? result.account.id : c.selected);
  render();
  focusFirst();
}

async function onAllow() {
  const button = $('#consent-allow');
  if (!button || button.disabled || c.expired) return;
  const id = c.id;
  const name = (c.view && c.view.clientName) || 'The assistant';
  const checked = $('#consent-options input[name=account]:checked');
  const accountId = checked ? checked.value : null;
  if (!accountId && usable(c.view).length > 1) {
    setError('Choose the organization this assistant works in.');
    return;
  }
  const chosen = c.access ? c.access.read() : { access: 'full' };
  if (chosen.error) {
    setError(chosen.error);
    return;
  }
  setError('');
  try {
    await busy(button, 'Allowing…', () => invoke('approve', { id, accountId, access: chosen.access }));
  } catch (err) {
    if (c.id === id) setError(errorText(err, 'Could not allow this request.'));
    return;
  }
  c.failed.add(id);
  if (c.id === id) finish();
  toast(`${name} is connected`, { kind: 'success' });
  state.refresh();
}

async function onDeny() {
  const button = $('#consent-deny');
  if (!button || button.disabled) return;
  const id = c.id;
  if (c.expired) {
    c.failed.add(id);
    finish();
    state.refresh();
    return;
  }
  try {
    await busy(button, 'Denying…', () => invoke('deny', { id }));
  } catch (err) {
    if (c.id === id) setError(errorText(err, 'Could not deny this request.'));
    return;
  }
  c.failed.add(id);
  if (c.id === id) finish();
  toast('Request denied', { kind: 'info' });
  state.refresh();
}

export function initConsent() {
  // The sheet needs an explicit decision: Esc does not dismiss it.
  root().addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') ev.preventDefault();
  });
}
