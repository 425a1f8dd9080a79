// DOM helpers: `h` builds elements (no HTML strings, so nothing a user or an app wrote is ever
// parsed as markup), `mount` replaces an element's children, and `dialog` opens a modal or side
// sheet on the native <dialog> element (focus kept inside, Escape closes, focus returns).

/** Builds an element. `attrs`: `class`, `on<event>` handlers, properties `value`, `checked`,
 * `disabled`, `hidden`, `selected`, anything else as an attribute (null/false skipped). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Opens a modal dialog (`side` for a side sheet) built by `build(close)`; resolves with what
 * `close` was given (undefined on Escape). */
export function dialog(label, build, { side = false } = {}) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const d = h('dialog', { class: side ? 'sheet side' : 'sheet', 'aria-label': label });
    let result;
    const close = (value) => { result = value; d.close(); };
    d.addEventListener('close', () => {
      d.remove();
      if (opener && opener.focus) opener.focus();
      resolve(result);
    });
    append(d, [build(close)]);
    document.body.appendChild(d);
    d.showModal();
    const first = d.querySelector('[autofocus], input, select, textarea, button');
    if (first) first.focus();
  });
}

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text, kind = 'info') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  region.appendChild(el);
  setTimeout(() => el.remove(), 6000);
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id }, label), input, hint ? h('small', { class: 'hint' }, hint) : null);
}

/** Disables `button` and shows it busy while `work` runs. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

const ICONS = {
  chats: 'M4 5h16v11H9l-5 4z',
  apps: 'M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z',
  settings: 'M4 7h16M4 12h16M4 17h16M9 5v4M15 10v4M8 15v4',
  dev: 'M8 8l-4 4 4 4M16 8l4 4-4 4M13.5 5l-3 14',
  review: 'M12 3l8 3v6c0 5-4 8-8 9-4-1-8-4-8-9V6zM8.5 12l2.5 2.5 4.5-5',
};

/** A line icon (decorative: hidden from screen readers). */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '22');
  svg.setAttribute('height', '22');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', ICONS[name] || '');
  svg.appendChild(p);
  return svg;
}
