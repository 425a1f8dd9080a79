// The live connection: a WebSocket opened with a one-time ticket (the session token never goes
// in a URL), `resume` from the seqs this client holds so that after any drop the server sends
// exactly what was missed (the store drops what it already has), acks for read messages, and
// reconnection with backoff while the offline banner shows. Frames other than messages
// (consent and payment requests, panels, app errors, payouts) are handed to the screens as
// store events.

import { post, token } from './api.js';
import { state, emit, addMessage, updateMessage, cursors } from './store.js';

const DEVICE_KEY = 'mh.device';
let socket = null;
let stopped = true;
let attempt = 0;
let timer = null;
/** The highest seq this socket delivered per conversation (what an ack may name). */
let delivered = {};

/** This browser's device name (delivery cursors and unread counts are kept per device). */
function device() {
  let d = localStorage.getItem(DEVICE_KEY);
  if (!d) {
    d = 'web-' + Math.random().toString(36).slice(2, 12);
    localStorage.setItem(DEVICE_KEY, d);
  }
  return d;
}

function setOnline(up) {
  if (state.online === up) return;
  state.online = up;
  emit('online', up);
}

/** Connects (again) and keeps the connection up until `stop`. */
export function start() {
  stopped = false;
  connect();
}

export function stop() {
  stopped = true;
  clearTimeout(timer);
  if (socket) socket.close(1000);
  socket = null;
  setOnline(false);
}

function retry() {
  setOnline(false);
  if (stopped) return;
  clearTimeout(timer);
  const wait = Math.min(10000, 500 * 2 ** Math.min(attempt, 5));
  attempt += 1;
  timer = setTimeout(connect, wait);
}

async function connect() {
  if (stopped || !token()) return;
  let ticket;
  try {
    ticket = (await post('/api/v1/ws/tickets')).ticket;
  } catch {
    retry();
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws?ticket=${encodeURIComponent(ticket)}`);
  socket = ws;
  delivered = {};
  ws.onmessage = (e) => {
    let frame;
    try { frame = JSON.parse(e.data); } catch { return; }
    handle(ws, frame);
  };
  ws.onclose = (e) => {
    if (socket !== ws) return;
    socket = null;
    if (e.code === 4001) {
      emit('revoked');
      return;
    }
    retry();
  };
}

function handle(ws, f) {
  switch (f.type) {
    case 'ready':
      ws.send(JSON.stringify({ type: 'resume', cursors: cursors(), device: device() }));
      break;
    case 'resumed':
      attempt = 0;
      setOnline(true);
      emit('resumed');
      break;
    case 'message':
      delivered[f.conversation] = Math.max(delivered[f.conversation] || 0, f.seq);
      addMessage(f.message);
      break;
    case 'message_updated':
      updateMessage(f.message);
      break;
    case 'joined':
    case 'left':
      emit('membership', f);
      break;
    case 'consent_request':
    case 'payment_request':
    case 'payment_update':
    case 'panel_opened':
    case 'app_error':
    case 'payout':
      emit(f.type, f);
      break;
    default:
      break;
  }
}

/** Tells the server this device has seen `conv` up to `seq` (as far as this socket delivered). */
export function ack(conv, seq) {
  const upTo = Math.min(seq, delivered[conv] || 0);
  if (socket && socket.readyState === WebSocket.OPEN && upTo > 0) {
    socket.send(JSON.stringify({ type: 'ack', conversation: conv, seq: upTo }));
  }
}

window.addEventListener('online', () => { if (!socket && !stopped) { attempt = 0; connect(); } });
