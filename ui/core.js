// The bridge to the app (Tauri commands and events), toasts and clipboard.

import { h, icon, errorText } from './dom.js';

function tauri() {
  return window.__TAURI__ || null;
}

/** Calls a command. Rejects with {code, message} like the Rust side does. */
export function invoke(cmd, args) {
  const t = tauri();
  if (!t || !t.core || typeof t.core.invoke !== 'function') {
    return Promise.reject({ code: 'no_app', message: 'This window is not connected to Spor Companion.' });
  }
  try {
    return Promise.resolve(t.core.invoke(cmd, args || {}));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Subscribes to an app event; the handler receives the payload. */
export async function listen(name, handler) {
  const t = tauri();
  if (!t || !t.event || typeof t.event.listen !== 'function') return () => {};
  return t.event.listen(name, (ev) => {
    try {
      handler(ev ? ev.payload : undefined);
    } catch (e) {
      console.error(e);
    }
  });
}

// ---------------------------------------------------------------- toasts

const TOAST_ICON = { success: 'check', error: 'alert', warning: 'alert', info: 'info' };

/**
 * toast('Claude Code is connected', {kind: 'success'}).
 * Kinds: success, info, warning, error. Errors and warnings stay longer.
 */
export function toast(message, { kind = 'info', timeout } = {}) {
  const region = document.getElementById('toast');
  if (!region || !message) return;
  const ms = timeout ?? (kind === 'error' || kind === 'warning' ? 8000 : 4500);
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, icon('x'));
  const el = h('div', { class: `toast toast-${kind}` },
    h('span', { class: 'toast-icon' }, icon(TOAST_ICON[kind] || 'info')),
    h('p', { class: 'toast-text', text: message }),
    close);
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 180);
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(dismiss, ms);
  };
  close.addEventListener('click', dismiss);
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', arm);
  region.appendChild(el);
  // At most four at a time.
  while (region.children.length > 4) region.firstElementChild.remove();
  arm();
}

export function toastError(err, fallback) {
  toast(errorText(err, fallback), { kind: 'error' });
}

// ---------------------------------------------------------------- clipboard

/** Copies through the app; the button briefly says "Copied". */
export async function copy(text, button) {
  if (!text) return;
  try {
    await invoke('copy_text', { text });
  } catch (err) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      toastError(err, 'Could not copy to the clipboard.');
      return;
    }
  }
  if (button) flashCopied(button);
  else toast('Copied to the clipboard', { kind: 'success' });
}

function flashCopied(button) {
  if (button.dataset.copied === '1') return;
  const label = Array.from(button.childNodes).find((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const svg = button.querySelector('svg.icon');
  const oldText = label ? label.textContent : null;
  const newIcon = icon('check');
  button.dataset.copied = '1';
  button.classList.add('copied');
  if (label) label.textContent = 'Copied';
  if (svg) svg.replaceWith(newIcon);
  setTimeout(() => {
    if (label) label.textContent = oldText;
    if (svg) newIcon.replaceWith(svg);
    button.classList.remove('copied');
    delete button.dataset.copied;
  }, 1600);
}

/** Disables a button and shows a working label until the promise settles. */
export async function busy(button, label, work) {
  const saved = Array.from(button.childNodes);
  const wasDisabled = button.disabled;
  button.disabled = true;
  button.classList.add('busy');
  button.setAttribute('aria-busy', 'true');
  while (button.firstChild) button.removeChild(button.firstChild);
  button.appendChild(h('span', { class: 'spinner', 'aria-hidden': 'true' }));
  button.appendChild(document.createTextNode(label));
  try {
    return await work();
  } finally {
    while (button.firstChild) button.removeChild(button.firstChild);
    for (const n of saved) button.appendChild(n);
    button.disabled = wasDisabled;
    button.classList.remove('busy');
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------- shared state

export const state = {
  /** The last `overview()` result. */
  overview: null,
  /** A check of the Spor servers under way: 'checking', then 'waking'; else null. */
  checking: null,
  /** Set by app.js: check the Spor servers now ("Check now"). */
  checkUpstreams: () => {},
  /** Grant ids whose activity list is expanded. */
  expanded: new Set(),
  /** grantId → {loading, error, items} */
  activity: new Map(),
  /** Set by app.js: re-fetch the overview (debounced). */
  refresh: () => {},
};

/** The server new tokens most likely belong to: a deep link's, else the accounts' most common. */
export function knownServer() {
  const ov = state.overview;
  if (!ov) return null;
  if (typeof ov.knownServer === 'string' && ov.knownServer) return ov.knownServer;
  const counts = new Map();
  for (const a of ov.accounts || []) {
    if (a.kind === 'spor' && a.server) counts.set(a.server, (counts.get(a.server) || 0) + 1);
  }
  let best = null;
  for (const [server, n] of counts) if (!best || n > counts.get(best)) best = server;
  return best;
}

export function findAccount(id) {
  const ov = state.overview;
  return (ov && (ov.accounts || []).find((a) => a.id === id)) || null;
}
