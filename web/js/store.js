// The one store of the client: who is signed in, the conversation list, the messages seen per
// conversation (keyed by seq, so a message delivered twice is kept once), and whether the live
// connection is up. Screens read it and listen to its events; only `live.js` and the screens'
// API calls change it, through the functions below.

export const events = new EventTarget();

export const state = {
  me: null,
  /** id → conversation (as `GET /api/v1/conversations` shows it, members added when known). */
  convs: new Map(),
  /** conversation id → Map(seq → message). */
  msgs: new Map(),
  /** The conversation on screen. */
  active: null,
  online: false,
};

export function emit(kind, detail) {
  events.dispatchEvent(new CustomEvent(kind, { detail }));
}

export function on(kind, f) {
  const g = (e) => f(e.detail);
  events.addEventListener(kind, g);
  return () => events.removeEventListener(kind, g);
}

/** The highest seq held for each conversation: the cursors a WebSocket `resume` sends. */
export function cursors() {
  const out = {};
  for (const [id, m] of state.msgs) {
    let max = 0;
    for (const seq of m.keys()) if (seq > max) max = seq;
    if (max > 0) out[id] = max;
  }
  for (const [id, c] of state.convs) if (!(id in out) && c.loaded) out[id] = 0;
  return out;
}

function bucket(conv) {
  if (!state.msgs.has(conv)) state.msgs.set(conv, new Map());
  return state.msgs.get(conv);
}

/** Adds a message; returns false if it was already there (a duplicate is dropped). */
export function addMessage(m) {
  const b = bucket(m.conversation);
  if (b.has(m.seq)) return false;
  b.set(m.seq, m);
  const c = state.convs.get(m.conversation);
  if (c) {
    if (!c.last_message || m.seq >= c.last_message.seq) {
      c.last_message = m;
      c.last_seq = Math.max(c.last_seq || 0, m.seq);
    }
    const mine = m.sender.type === 'user' && state.me && m.sender.id === state.me.id;
    if (!mine && m.seq > (c.read_seq || 0) && state.active !== m.conversation) c.unread = (c.unread || 0) + 1;
  }
  emit('message', m);
  return true;
}

/** Replaces a message (a card an app updated) and tells the screens. */
export function updateMessage(m) {
  bucket(m.conversation).set(m.seq, m);
  emit('updated', m);
}

/** The messages of a conversation in seq order. */
export function messagesOf(conv) {
  return [...bucket(conv).values()].sort((a, b) => a.seq - b.seq);
}

/** The name shown for a conversation: a group's title, else the other member's name. */
export function titleOf(c) {
  if (!c) return '';
  if (c.title) return c.title;
  const other = (c.members || []).find((m) => !state.me || m.id !== state.me.id);
  return other ? other.display_name : '…';
}
