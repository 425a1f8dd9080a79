// The client's entry: signs in (or shows the sign-in screen), draws the shell (navigation and
// the screen of the current `#/route`), starts the live connection, and routes the live events
// that concern the whole app (consent and payment sheets, app panels, notices, the offline
// banner) to their screens.

import { h, mount, toast, icon } from './dom.js';
import { get, put, setToken, token, whenSignedOut, del } from './api.js';
import { t, money, locale } from './i18n.js';
import { state, on } from './store.js';
import * as live from './live.js';
import { authScreen } from './screens/auth.js';
import { chatsScreen, loadConversations } from './screens/chats.js';
import { openConsent, openPayment, openPanel } from './screens/sheets.js';
import { directoryScreen } from './screens/directory.js';
import { settingsScreen } from './screens/settings.js';
import { developerScreen } from './screens/developer.js';
import { reviewScreen } from './screens/review.js';

const root = document.getElementById('app');
let cleanup = () => {};

function can(...roles) {
  return state.me && (roles.includes(state.me.role) || state.me.role === 'admin');
}

function nav(route) {
  const item = (href, key, glyph, when = true) => when
    ? h('a', { href, class: 'nav-item', 'aria-current': route === href.slice(2).split('/')[0] ? 'page' : null },
      h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, icon(glyph)), h('span', { class: 'nav-label' }, t(key)))
    : null;
  return h('nav', { class: 'rail', 'aria-label': t('nav.label') },
    h('div', { class: 'brand', 'aria-hidden': 'true' }, 'M'),
    item('#/chats', 'nav.chats', 'chats'),
    item('#/apps', 'nav.apps', 'apps'),
    item('#/settings', 'nav.settings', 'settings'),
    item('#/dev', 'nav.developer', 'dev', can('developer')),
    item('#/review', 'nav.review', 'review', can('reviewer')));
}

/** Draws the screen of the current hash route. */
export function render() {
  cleanup();
  cleanup = () => {};
  if (!state.me) {
    mount(root, authScreen(signedIn));
    return;
  }
  const parts = (location.hash || '#/chats').slice(2).split('/').map(decodeURIComponent);
  const route = parts[0] || 'chats';
  const main = h('main', { class: 'main', id: 'main' });
  mount(root, nav(route), main);
  let screen;
  switch (route) {
    case 'apps': screen = directoryScreen(); break;
    case 'settings': screen = settingsScreen({ signOut }); break;
    case 'dev': screen = can('developer') ? developerScreen(parts[1]) : null; break;
    case 'review': screen = can('reviewer') ? reviewScreen(parts[1], parts[2]) : null; break;
    default: screen = chatsScreen(parts[1] || null); break;
  }
  if (!screen) screen = { el: h('p', { class: 'empty' }, t('error.forbidden')) };
  mount(main, screen.el);
  if (screen.cleanup) cleanup = screen.cleanup;
}

async function signedIn() {
  try {
    state.me = await get('/api/v1/me');
  } catch {
    setToken(null);
    state.me = null;
    render();
    return;
  }
  tellLocale();
  await loadConversations().catch(() => {});
  live.start();
  render();
  pendingSheets();
}

/** Consent and payment requests that were waiting before this page loaded. */
async function pendingSheets() {
  try {
    for (const c of await get('/api/v1/me/consent-requests')) await openConsent(c);
    for (const p of await get('/api/v1/me/payments/pending')) await openPayment(p);
  } catch { /* shown again at the next event */ }
}

export async function signOut() {
  try { await del('/api/v1/sessions/current'); } catch { /* already gone */ }
  live.stop();
  setToken(null);
  state.me = null;
  state.convs.clear();
  state.msgs.clear();
  location.hash = '#/chats';
  render();
}

whenSignedOut(() => {
  live.stop();
  setToken(null);
  state.me = null;
  render();
});
on('revoked', () => { setToken(null); state.me = null; live.stop(); render(); toast(t('auth.revoked')); });
on('online', (up) => {
  const banner = document.getElementById('offline');
  banner.textContent = t('live.reconnecting');
  banner.hidden = up;
});
on('consent_request', (c) => openConsent(c));
on('payment_request', (f) => openPayment(f.payment));
on('panel_opened', (f) => openPanel(f.app, f.conversation));
on('app_error', (f) => toast(f.message, 'error'));
on('payout', (f) => toast(t('pay.payout', { app: f.payout?.app_name || '', amount: money(f.payout?.amount, f.payout?.currency, f.payout?.exponent) })));
/** Tells the server the user's language: mini-apps get it in their context and profiles. */
function tellLocale() {
  if (state.me) put('/api/v1/me/locale', { locale: locale() }).catch(() => {});
}
on('locale', () => { tellLocale(); render(); });
window.addEventListener('hashchange', render);

if (token()) signedIn(); else render();
