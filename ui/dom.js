// Small DOM helpers. Everything is built with createElement/textContent:
// client names and other fields come from outside and are never parsed as HTML.

const PROPS = new Set(['checked', 'disabled', 'value', 'hidden', 'selected', 'open']);

/**
 * h('button', {class: 'primary', onClick: fn, 'data-action': 'x'}, 'Text', childEl)
 * Attributes with null/undefined/false values are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const key of Object.keys(attrs)) {
      const v = attrs[key];
      if (v === null || v === undefined || v === false) continue;
      if (key === 'class') el.className = v;
      else if (key === 'text') el.textContent = String(v);
      else if (key.length > 2 && key.startsWith('on') && typeof v === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), v);
      } else if (PROPS.has(key)) el[key] = v;
      else el.setAttribute(key, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

export function $$(sel, root = document) {
  return Array.from(root.querySelectorAll(sel));
}

export function show(el, visible) {
  if (el) el.hidden = !visible;
}

// ---------------------------------------------------------------- icons

const SVG = 'http://www.w3.org/2000/svg';

// 24×24 stroke icons.
const ICONS = {
  copy: [['rect', { x: 9, y: 9, width: 12, height: 12, rx: 2 }], ['path', { d: 'M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1' }]],
  plus: [['path', { d: 'M12 5v14M5 12h14' }]],
  chevron: [['path', { d: 'm6 9 6 6 6-6' }]],
  check: [['path', { d: 'M20 6 9 17l-5-5' }]],
  x: [['path', { d: 'M18 6 6 18M6 6l12 12' }]],
  alert: [['path', { d: 'M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z' }], ['path', { d: 'M12 9v4M12 17h.01' }]],
  info: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 16v-4M12 8h.01' }]],
  key: [['circle', { cx: 7.5, cy: 15.5, r: 5.5 }], ['path', { d: 'm21 2-9.6 9.6M15.5 7.5l3 3L22 7l-3-3' }]],
  plug: [['path', { d: 'M12 22v-5M9 8V2M15 8V2M18 8v5a4 4 0 0 1-4 4h-4a4 4 0 0 1-4-4V8z' }]],
  shield: [['path', { d: 'M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z' }], ['path', { d: 'm9 12 2 2 4-4' }]],
  arrow: [['path', { d: 'M5 12h14M13 6l6 6-6 6' }]],
  clock: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 6v6l4 2' }]],
  server: [['rect', { x: 2, y: 3, width: 20, height: 8, rx: 2 }], ['rect', { x: 2, y: 13, width: 20, height: 8, rx: 2 }], ['path', { d: 'M6 7h.01M6 17h.01' }]],
  activity: [['path', { d: 'M22 12h-4l-3 9L9 3l-3 9H2' }]],
};

export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const [tag, attrs] of ICONS[name] || []) {
    const el = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs)) el.setAttribute(k, String(attrs[k]));
    svg.appendChild(el);
  }
  return svg;
}

/** Prepends the icon named by data-icon to each such element under root. */
export function hydrateIcons(root = document) {
  for (const el of $$('[data-icon]', root)) {
    if (el.querySelector(':scope > svg.icon')) continue;
    el.insertBefore(icon(el.getAttribute('data-icon')), el.firstChild);
  }
}

// ---------------------------------------------------------------- time

function toDate(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', year: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", "Mar 3". */
export function relTime(iso, now = Date.now()) {
  const d = toDate(iso);
  if (!d) return '';
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.round(m / 60);
  if (hrs < 24) return `${hrs} h ago`;
  const days = Math.round(hrs / 24);
  if (days < 2) return 'yesterday';
  if (days < 7) return `${days} days ago`;
  return onDay(iso);
}

/** "Mar 3" (this year) or "Mar 3, 2024". */
export function onDay(iso) {
  const d = toDate(iso);
  if (!d) return '';
  return d.getFullYear() === new Date().getFullYear() ? dayFmt.format(d) : dayYearFmt.format(d);
}

export function fullTime(iso) {
  const d = toDate(iso);
  return d ? fullFmt.format(d) : '';
}

export function clockTime(iso) {
  const d = toDate(iso);
  return d ? clockFmt.format(d) : '';
}

/**
 * A <time> element whose text is `prefix + relTime(iso)`, refreshed by
 * refreshTimes(). Its title holds the full local date and time.
 */
export function timeEl(iso, prefix = '') {
  const el = h('time', { datetime: iso, 'data-rel': iso, 'data-prefix': prefix, title: fullTime(iso) });
  el.textContent = prefix + relTime(iso);
  return el;
}

export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of $$('time[data-rel]', root)) {
    el.textContent = (el.getAttribute('data-prefix') || '') + relTime(el.getAttribute('data-rel'), now);
  }
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** The user-facing text of a rejected command ({code, message}, a string, or an Error). */
export function errorText(err, fallback = 'Something went wrong. Please try again.') {
  if (!err) return fallback;
  if (typeof err === 'string') return err;
  if (typeof err.message === 'string' && err.message) return err.message;
  return fallback;
}
