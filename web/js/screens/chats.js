// The chats screen: the conversation list (title, last message, time, unread count; newest
// first) beside the open conversation, and the dialog that starts a direct or group chat.
// Below 760 px wide only one of the two panes shows.

import { h, mount, dialog, field, busy, toast } from '../dom.js';
import { get, post, seg } from '../api.js';
import { t, when } from '../i18n.js';
import { state, on, titleOf } from '../store.js';
import { chatView } from './chat.js';

/** Loads the conversation list (and the members of direct chats, for their names). */
export async function loadConversations() {
  const list = await get('/api/v1/conversations');
  for (const c of list) {
    const old = state.convs.get(c.id);
    state.convs.set(c.id, { ...old, ...c });
  }
  await Promise.all(list.filter((c) => c.kind === 'direct' && !state.convs.get(c.id).members).map(loadMembers));
}

export async function loadMembers(c) {
  try {
    const full = await get(`/api/v1/conversations/${seg(c.id)}`);
    Object.assign(state.convs.get(c.id), { members: full.members, owner: full.owner });
  } catch { /* not a member any more */ }
}

function preview(m) {
  if (!m) return t('chats.no_messages');
  const who = m.sender.type === 'app' ? m.sender.name : (state.me && m.sender.id === state.me.id ? t('chats.you') : m.sender.username);
  const first = m.content.type === 'card' && (m.content.blocks || []).find((b) => b.kind === 'text');
  const what = m.content.type === 'text' ? m.content.text : first ? first.text : t('chats.card');
  return `${who}: ${what}`;
}

function initials(s) {
  return [...(s || '?')].slice(0, 1).join('').toUpperCase();
}

export function avatar(name) {
  let hash = 0;
  for (const ch of name || '') hash = (hash * 31 + ch.codePointAt(0)) % 360;
  return h('span', { class: `avatar hue-${hash % 8}`, 'aria-hidden': 'true' }, initials(name));
}

export function chatsScreen(activeId) {
  state.active = activeId;
  const list = h('ul', { class: 'conv-list', role: 'list' });
  const pane = h('section', { class: 'chat-pane', 'aria-label': t('chats.conversation') });
  const el = h('div', { class: `chats ${activeId ? 'has-active' : ''}` },
    h('section', { class: 'list-pane', 'aria-label': t('chats.title') },
      h('header', { class: 'pane-head' }, h('h1', {}, t('chats.title')),
        h('button', { class: 'primary small', onclick: newChat }, t('chats.new'))),
      list),
    pane);

  function drawList() {
    const convs = [...state.convs.values()].sort((a, b) =>
      (b.last_message?.created_at_ms || 0) - (a.last_message?.created_at_ms || 0));
    if (!convs.length) {
      mount(list, h('li', { class: 'empty' }, t('chats.none')));
      return;
    }
    mount(list, convs.map((c) => {
      const title = titleOf(c);
      const unread = c.id === state.active ? 0 : (c.unread || 0);
      return h('li', {},
        h('a', { href: `#/chats/${encodeURIComponent(c.id)}`, class: 'conv', 'aria-current': c.id === state.active ? 'true' : null,
          'aria-label': unread ? `${title}, ${t('chats.unread', { n: unread })}` : title },
        avatar(title),
        h('span', { class: 'conv-main' },
          h('span', { class: 'conv-top' }, h('span', { class: 'conv-title' }, title),
            h('time', { class: 'conv-time' }, when(c.last_message?.created_at_ms))),
          h('span', { class: 'conv-bottom' }, h('span', { class: 'conv-preview' }, preview(c.last_message)),
            unread ? h('span', { class: 'badge', 'data-testid': 'unread' }, String(unread)) : null))));
    }));
  }

  let view = null;
  if (activeId) {
    view = chatView(activeId, { onChange: drawList });
    mount(pane, view.el);
  } else {
    mount(pane, h('div', { class: 'empty-chat' }, h('p', {}, t('chats.pick'))));
  }
  drawList();
  // Read markers and unread counts move on the user's other devices too: refresh the list
  // when this window comes back, and now and then while it is shown.
  const refresh = async () => { if (!document.hidden) { await loadConversations().catch(() => {}); drawList(); } };
  const every = setInterval(refresh, 20000);
  window.addEventListener('focus', refresh);
  const offs = [
    on('message', drawList), on('updated', drawList),
    on('membership', async () => { await loadConversations().catch(() => {}); drawList(); }),
    on('resumed', async () => { await loadConversations().catch(() => {}); drawList(); }),
  ];
  return {
    el,
    cleanup: () => {
      offs.forEach((f) => f());
      clearInterval(every);
      window.removeEventListener('focus', refresh);
      if (view) view.cleanup();
      state.active = null;
    },
  };
}

/** The new-chat dialog: a direct chat with one person, or a titled group. */
function newChat() {
  dialog(t('chats.new'), (close) => {
    const kind = h('select', {}, h('option', { value: 'direct' }, t('chats.direct')), h('option', { value: 'group' }, t('chats.group')));
    const title = h('input', { name: 'title' });
    const members = h('input', { name: 'members', autocapitalize: 'none', placeholder: 'alice, bob' });
    const titleField = field(t('chats.group_title'), title);
    titleField.hidden = true;
    kind.addEventListener('change', () => { titleField.hidden = kind.value !== 'group'; });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const go = h('button', { type: 'submit', class: 'primary' }, t('chats.start'));
    return h('form', {
      class: 'sheet-body',
      onsubmit: (e) => {
        e.preventDefault();
        busy(go, async () => {
          try {
            const names = members.value.split(/[\s,]+/).filter(Boolean);
            const body = kind.value === 'group' ? { kind: 'group', title: title.value, members: names } : { kind: 'direct', members: names };
            const c = await post('/api/v1/conversations', body);
            state.convs.set(c.id, { ...c, unread: 0, loaded: true });
            close();
            location.hash = `#/chats/${encodeURIComponent(c.id)}`;
          } catch (err) {
            error.textContent = err.message;
            error.hidden = false;
          }
        });
      },
    },
    h('h2', {}, t('chats.new')),
    field(t('chats.kind'), kind), titleField, field(t('chats.members'), members, t('chats.members_hint')),
    error,
    h('div', { class: 'row end' }, h('button', { type: 'button', onclick: () => close() }, t('common.cancel')), go));
  }).then(() => {});
}

