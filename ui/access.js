// What an assistant may do with the account's tools: the three choices the
// consent sheet and the assistants list both offer (full, read only, chosen
// tools with a checklist read from the server when asked for), and how an
// access is named.

import { h, clear, errorText } from './dom.js';

/** An access (`{kind, tools}` as the core sends it) in words. */
export function accessText(access) {
  const kind = access && access.kind;
  if (kind === 'read_only') return 'Read only';
  if (kind === 'tools') return `Chosen tools: ${(access.tools || []).join(', ')}`;
  return 'Full';
}

let editors = 0;

/**
 * The access choice. `initial` is an access (`{kind, tools}`) or null for
 * full; `loadTools()` resolves to `{tools:[{name,title,read_only,destructive}], error}`
 * (called once, when "Chosen tools" is first picked). `read()` returns
 * `{access: 'full' | 'read-only' | 'tools:a,b'}` or `{error}`; `kind()` the
 * choice on screen.
 */
export function accessEditor({ initial, loadTools, idPrefix }) {
  const n = ++editors;
  const prefix = idPrefix || `access-${n}`;
  const ticked = new Set(initial && initial.kind === 'tools' ? initial.tools || [] : []);
  let kind = (initial && initial.kind) || 'full';
  let list = null; // {tools, error} once loaded
  let loading = false;

  const tools = h('div', { class: 'access-tools', id: `${prefix}-tools`, hidden: true });
  const choice = (value, title, text) => {
    const id = `${prefix}-${value}`;
    return h('label', { class: 'access-choice', for: id },
      h('input', {
        type: 'radio', name: `${prefix}-kind`, id, value, checked: kind === value,
        onChange: () => { kind = value; renderTools(); },
      }),
      h('span', null, h('strong', { text: title }), ` — ${text}`));
  };
  const el = h('fieldset', { class: 'access-editor', id: prefix },
    h('legend', { text: 'Access' }),
    choice('full', 'Full', 'every tool, reading and writing, as you'),
    choice('read_only', 'Read only', 'only tools the server marks read-only'),
    choice('tools', 'Chosen tools', 'only the ones you tick'),
    tools);

  function renderTools() {
    tools.hidden = kind !== 'tools';
    if (kind !== 'tools') return;
    clear(tools);
    if (!list) {
      tools.appendChild(h('p', { class: 'access-note', role: 'status' },
        h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Reading the tools from the server…'));
      if (!loading) {
        loading = true;
        loadTools()
          .then((r) => { list = { tools: r.tools || [], error: r.error || null }; })
          .catch((err) => { list = { tools: [], error: errorText(err, 'The tool list could not be read.') }; })
          .finally(() => { loading = false; renderTools(); });
      }
      return;
    }
    if (list.error) {
      tools.appendChild(h('p', { class: 'access-note error-text', text: `The tool list could not be read: ${list.error}. Choose Full or Read only.` }));
    }
    for (const t of list.tools) {
      const id = `${prefix}-tool-${t.name}`;
      const tag = t.read_only
        ? h('span', { class: 'tag', text: 'read only' })
        : t.destructive
          ? h('span', { class: 'tag destructive', title: 'The server says this tool may change or delete data.', text: 'may change or delete data' })
          : h('span', { class: 'tag', text: 'adds data' });
      tools.appendChild(h('label', { class: 'access-tool', for: id },
        h('input', {
          type: 'checkbox', id, value: t.name, checked: ticked.has(t.name),
          onChange: (ev) => { if (ev.currentTarget.checked) ticked.add(t.name); else ticked.delete(t.name); },
        }),
        t.title && t.title !== t.name ? h('bdi', { class: 'tool-title', text: t.title }) : null,
        h('code', { class: 'mono', text: t.name }),
        tag));
    }
  }
  renderTools();

  function read() {
    if (kind === 'full') return { access: 'full' };
    if (kind === 'read_only') return { access: 'read-only' };
    const names = list ? list.tools.map((t) => t.name).filter((name) => ticked.has(name)) : [];
    if (!names.length) return { error: 'Tick at least one tool, or choose Read only.' };
    return { access: `tools:${names.join(',')}` };
  }

  return { el, read, kind: () => kind };
}
