// One conversation: its header (title, members, the apps installed in it), the messages in seq
// order (text bubbles and mini-app cards, a card replaced in place when its app updates it), read
// markers (the marker and this device's delivery cursor follow what is on screen), and the
// composer with `/command` suggestions from the apps installed here. Used in the chats screen
// and, compact, in the app panel side sheet.

import { h, mount, dialog, field, busy, toast } from '../dom.js';
import { get, post, put, del, seg, newKey, postOnce } from '../api.js';
import { t, when, dateTime } from '../i18n.js';
import { state, on, addMessage, messagesOf, titleOf } from '../store.js';
import * as live from '../live.js';
import { renderCard } from './card.js';
import { avatar, loadMembers } from './chats.js';

/** Commands of released apps, by app id (from the directory), cached for the page's life. */
const commandCache = new Map();

async function commandsOf(app) {
  if (!commandCache.has(app)) {
    commandCache.set(app, get(`/api/v1/directory/${seg(app)}`)
      .then((e) => e.commands)
      .catch(() => [{ name: app, help: `/${app}` }]));
  }
  return commandCache.get(app);
}

export function chatView(convId, { onChange = () => {}, compact = false } = {}) {
  const conv = () => state.convs.get(convId) || { id: convId };
  const log = h('ol', { class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': t('chat.messages') });
  const nodes = new Map(); // seq → <li>
  const title = h('h2', { class: 'chat-title' });
  const subtitle = h('span', { class: 'chat-sub' });
  let installs = [];
  let commands = []; // [{name, help, app}]

  const header = h('header', { class: 'chat-head' },
    compact ? null : h('a', { href: '#/chats', class: 'back', 'aria-label': t('common.back') }, '‹'),
    compact ? null : avatar(titleOf(conv())),
    h('div', { class: 'chat-names' }, title, subtitle),
    h('div', { class: 'chat-actions' },
      compact ? null : h('button', { class: 'ghost', onclick: appsDialog }, t('chat.apps')),
      compact ? null : h('button', { class: 'ghost', onclick: addMember }, t('chat.add_member'))));

  function drawHeader() {
    const c = conv();
    title.textContent = titleOf(c);
    const other = c.kind === 'direct' && (c.members || []).find((m) => !state.me || m.id !== state.me.id);
    subtitle.textContent = other ? `@${other.username}` : c.members ? t('chat.members', { n: c.members.length }) : '';
  }

  function bubble(m) {
    const mine = m.sender.type === 'user' && state.me && m.sender.id === state.me.id;
    const who = m.sender.type === 'app' ? m.sender.name : m.sender.username;
    const body = m.content.type === 'card'
      ? renderCard(m, { onPress: (button, inputs) => press(m, button, inputs) })
      : h('p', { class: 'text' }, m.content.text);
    return h('li', { class: `msg ${mine ? 'mine' : ''} ${m.content.type === 'card' ? 'has-card' : ''}`, 'data-seq': m.seq, 'data-id': m.id },
      mine ? null : h('span', { class: `sender ${m.sender.type === 'app' ? 'from-app' : ''}` }, who,
        m.sender.type === 'app' ? h('span', { class: 'tag' }, t('chat.app')) : null),
      body,
      h('time', { class: 'msg-time', datetime: m.created_at, title: dateTime(m.created_at_ms) }, when(m.created_at_ms)));
  }

  function place(m) {
    const node = bubble(m);
    const old = nodes.get(m.seq);
    if (old) {
      old.replaceWith(node);
    } else {
      const after = [...nodes.keys()].filter((s) => s > m.seq).sort((a, b) => a - b)[0];
      if (after !== undefined) log.insertBefore(node, nodes.get(after));
      else log.appendChild(node);
    }
    nodes.set(m.seq, node);
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      const c = conv();
      const last = Math.max(0, ...nodes.keys());
      if (!last || document.hidden) return;
      live.ack(convId, last);
      if (last > (c.read_seq || 0)) {
        try {
          const r = await post(`/api/v1/conversations/${seg(convId)}/read`, { seq: last });
          c.read_seq = r.read_seq;
          c.unread = 0;
          onChange();
        } catch { /* the next message tries again */ }
      } else if (c.unread) {
        c.unread = 0;
        onChange();
      }
    }, 150);
  }

  async function press(m, button, inputs) {
    try {
      // A key per press: resent after a lost answer, the press still reaches the app once.
      await postOnce(`/api/v1/conversations/${seg(m.conversation)}/messages/${seg(m.id)}/actions`, { button, inputs }, newKey());
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  // The composer.
  const input = h('textarea', { rows: 1, class: 'composer-input', placeholder: t('chat.placeholder'), 'aria-label': t('chat.message'),
    'aria-autocomplete': 'list', 'aria-controls': `sugg-${convId}`, 'aria-expanded': 'false' });
  const suggestions = h('ul', { class: 'suggestions', role: 'listbox', id: `sugg-${convId}`, 'aria-label': t('chat.commands'), hidden: true });
  const send = h('button', { type: 'submit', class: 'primary send', 'aria-label': t('chat.send') }, t('chat.send'));
  let picked = 0;
  let shown = [];

  function suggest() {
    const v = input.value;
    const m = /^\/(\S*)$/.exec(v);
    shown = m ? commands.filter((c) => c.name.startsWith(m[1])) : [];
    if (!shown.length) {
      suggestions.hidden = true;
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
      return;
    }
    picked = Math.min(picked, shown.length - 1);
    mount(suggestions, shown.map((c, i) => h('li', {
      role: 'option', id: `sugg-${convId}-${i}`, 'aria-selected': i === picked ? 'true' : 'false', class: 'suggestion',
      onmousedown: (e) => { e.preventDefault(); choose(i); },
    }, h('strong', {}, `/${c.name}`), ' ', h('span', { class: 'muted' }, c.help))));
    suggestions.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    input.setAttribute('aria-activedescendant', `sugg-${convId}-${picked}`);
  }

  function choose(i) {
    input.value = `/${shown[i].name} `;
    picked = 0;
    suggest();
    input.focus();
  }

  input.addEventListener('input', () => { picked = 0; suggest(); });
  input.addEventListener('keydown', (e) => {
    if (!suggestions.hidden) {
      if (e.key === 'ArrowDown') { e.preventDefault(); picked = (picked + 1) % shown.length; suggest(); return; }
      if (e.key === 'ArrowUp') { e.preventDefault(); picked = (picked - 1 + shown.length) % shown.length; suggest(); return; }
      const partial = /^\/\S*$/.test(input.value) && input.value !== `/${shown[picked].name}`;
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey && partial)) {
        e.preventDefault(); choose(picked); return;
      }
      if (e.key === 'Escape') { e.preventDefault(); shown = []; suggestions.hidden = true; return; }
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  /** The text being sent and its idempotency key, until it is stored. */
  let unsent = null;
  const form = h('form', {
    class: 'composer',
    onsubmit: (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      error.hidden = true;
      // One key per text composed: sending it again (after a failure) cannot store it twice.
      if (!unsent || unsent.text !== text) unsent = { text, key: newKey() };
      const { key } = unsent;
      busy(send, async () => {
        try {
          const m = await postOnce(`/api/v1/conversations/${seg(convId)}/messages`, { content: { type: 'text', text } }, key);
          if (unsent && unsent.key === key) unsent = null;
          input.value = '';
          suggest();
          if (addMessage(m)) { place(m); scrollDown(); }
          markRead();
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        }
      });
      input.focus();
    },
  }, suggestions, input, send);

  const el = h('div', { class: `chat ${compact ? 'compact' : ''}` }, compact ? null : header, log, error, form);

  async function load() {
    const c = conv();
    if (!c.members) await loadMembers(c).catch(() => {});
    drawHeader();
    try {
      const page = await get(`/api/v1/conversations/${seg(convId)}/messages?limit=100`);
      for (const m of page.messages) addMessage(m);
      const cc = state.convs.get(convId);
      if (cc) cc.loaded = true;
    } catch (err) {
      mount(log, h('li', { class: 'error' }, err.message));
      return;
    }
    for (const m of messagesOf(convId)) place(m);
    scrollDown();
    markRead();
    loadApps();
  }

  async function loadApps() {
    try {
      installs = await get(`/api/v1/conversations/${seg(convId)}/apps`);
    } catch { installs = []; }
    const lists = await Promise.all(installs.map(async (i) => (await commandsOf(i.app)).map((c) => ({ ...c, app: i.app }))));
    commands = lists.flat();
    if (input.value.startsWith('/')) suggest();
  }

  function appsDialog() {
    dialog(t('chat.apps'), (close) => h('div', { class: 'sheet-body' },
      h('h2', {}, t('chat.apps_here')),
      installs.length ? h('ul', { class: 'plain' }, installs.map((i) => h('li', { class: 'row between' },
        h('span', {}, h('strong', {}, i.name), ' ', h('span', { class: 'muted' }, `v${i.version}`),
          i.sideloaded ? h('span', { class: 'tag warn' }, t('chat.unreviewed')) : null),
        h('span', { class: 'row' },
          h('button', { onclick: async () => { close(); await openApp(i.app); } }, t('chat.open')),
          h('button', { class: 'danger', onclick: async () => {
            try { await del(`/api/v1/conversations/${seg(convId)}/apps/${seg(i.app)}`); close(); loadApps(); } catch (err) { toast(err.message, 'error'); }
          } }, t('common.remove'))))))
        : h('p', { class: 'muted' }, t('chat.no_apps')),
      h('div', { class: 'row end' }, h('a', { href: '#/apps', class: 'button', onclick: () => close() }, t('chat.find_apps')),
        h('button', { onclick: () => close() }, t('common.close')))));
  }

  async function openApp(app) {
    try {
      await post(`/api/v1/conversations/${seg(convId)}/apps/${seg(app)}/open`);
    } catch (err) { toast(err.message, 'error'); }
  }

  function addMember() {
    dialog(t('chat.add_member'), (close) => {
      const names = h('input', { autocapitalize: 'none', placeholder: 'carol' });
      const err = h('p', { class: 'error', role: 'alert', hidden: true });
      const go = h('button', { type: 'submit', class: 'primary' }, t('common.add'));
      return h('form', { class: 'sheet-body', onsubmit: (e) => {
        e.preventDefault();
        busy(go, async () => {
          try {
            await post(`/api/v1/conversations/${seg(convId)}/members`, { usernames: names.value.split(/[\s,]+/).filter(Boolean) });
            await loadMembers(conv());
            drawHeader();
            close();
          } catch (x) { err.textContent = x.message; err.hidden = false; }
        });
      } }, h('h2', {}, t('chat.add_member')), field(t('chats.members'), names, t('chats.members_hint')), err,
      h('div', { class: 'row end' }, h('button', { type: 'button', onclick: () => close() }, t('common.cancel')), go));
    });
  }

  const offs = [
    on('message', (m) => {
      if (m.conversation !== convId) return;
      const near = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
      place(m);
      if (near || (state.me && m.sender.id === state.me.id)) scrollDown();
      markRead();
    }),
    on('updated', (m) => { if (m.conversation === convId && nodes.has(m.seq)) place(m); }),
  ];
  const visible = () => { if (!document.hidden) markRead(); };
  document.addEventListener('visibilitychange', visible);
  load();
  return {
    el,
    focus: () => input.focus(),
    cleanup: () => { offs.forEach((f) => f()); document.removeEventListener('visibilitychange', visible); clearTimeout(readTimer); },
  };
}
