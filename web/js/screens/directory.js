// The app directory: released apps, searchable, each with its developer, commands and every
// scope with its reason (read before adding it); add one to a conversation or open it in the
// user's own app panel. Above the directory: the user's own panel (apps added without a group).

import { h, mount, dialog, field, busy, toast } from '../dom.js';
import { get, put, seg } from '../api.js';
import { t } from '../i18n.js';
import { state, titleOf } from '../store.js';
import { openOwnPanel, scopeName, openPanel } from './sheets.js';

export function directoryScreen() {
  const q = h('input', { type: 'search', placeholder: t('apps.search'), 'aria-label': t('apps.search') });
  const results = h('ul', { class: 'app-grid', 'aria-live': 'polite' });
  const mine = h('ul', { class: 'plain panel-list' });
  let timer = null;

  async function search() {
    mount(results, h('li', { class: 'loading', role: 'status' }, t('common.loading')));
    try {
      const list = await get(`/api/v1/directory${q.value.trim() ? `?q=${encodeURIComponent(q.value.trim())}` : ''}`);
      if (!list.length) { mount(results, h('li', { class: 'empty' }, t('apps.none'))); return; }
      mount(results, list.map(entry));
    } catch (err) { mount(results, h('li', { class: 'error' }, err.message)); }
  }

  async function panel() {
    try {
      const list = await get('/api/v1/me/apps');
      mount(mine, list.length ? list.map((p) => h('li', {}, h('button', { class: 'chip', onclick: () => openPanel(p.app, p.conversation) }, p.name)))
        : h('li', { class: 'muted' }, t('apps.panel_empty')));
    } catch { mount(mine); }
  }

  function entry(a) {
    return h('li', { class: 'app-card' },
      h('div', { class: 'sheet-app' }, h('span', { class: 'app-icon', 'aria-hidden': 'true' }, a.name.slice(0, 1)),
        h('div', {}, h('h3', {}, a.name), h('p', { class: 'muted small' }, t('consent.by', { developer: a.developer }), ` · v${a.version}`))),
      h('p', {}, a.description),
      a.commands.length ? h('p', { class: 'small' }, a.commands.map((c) => h('code', { title: c.help }, `/${c.name} `))) : null,
      h('details', {}, h('summary', {}, t('apps.scopes', { n: a.scopes.length })),
        h('ul', { class: 'scopes compact' }, a.scopes.map((s) => h('li', {}, h('strong', {}, scopeName(s.name)), h('p', { class: 'scope-reason' }, s.reason))))),
      a.reports ? h('p', { class: 'small warn-text' }, t('apps.reports', { n: a.reports })) : null,
      h('div', { class: 'row' },
        h('button', { class: 'primary', onclick: () => openOwnPanel(a.id).then(panel) }, t('apps.open')),
        h('button', { onclick: () => addTo(a) }, t('apps.add_to_chat'))));
  }

  function addTo(a) {
    dialog(t('apps.add_to_chat'), (close) => {
      const select = h('select', {}, [...state.convs.values()].map((c) => h('option', { value: c.id }, titleOf(c))));
      const go = h('button', { type: 'submit', class: 'primary' }, t('common.add'));
      const err = h('p', { class: 'error', role: 'alert', hidden: true });
      return h('form', { class: 'sheet-body', onsubmit: (e) => {
        e.preventDefault();
        busy(go, async () => {
          try {
            await put(`/api/v1/conversations/${seg(select.value)}/apps/${seg(a.id)}`);
            toast(t('apps.added', { app: a.name }));
            close();
            location.hash = `#/chats/${encodeURIComponent(select.value)}`;
          } catch (x) { err.textContent = x.message; err.hidden = false; }
        });
      } }, h('h2', {}, t('apps.add_named', { app: a.name })), field(t('apps.conversation'), select), err,
      h('div', { class: 'row end' }, h('button', { type: 'button', onclick: () => close() }, t('common.cancel')), go));
    });
  }

  q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  search();
  panel();
  return {
    el: h('div', { class: 'page' },
      h('header', { class: 'pane-head' }, h('h1', {}, t('apps.title'))),
      h('section', { 'aria-label': t('apps.my_panel') }, h('h2', {}, t('apps.my_panel')), mine),
      h('section', { 'aria-label': t('apps.directory') }, h('h2', {}, t('apps.directory')), q, results)),
  };
}
