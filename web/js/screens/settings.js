// Settings: language, the payment PIN, the wallet and payment history, the apps the user has
// authorized (revoke one scope or all), the privacy record (which app used what of mine, when,
// and what was refused), and signing out.

import { h, mount, field, busy, toast } from '../dom.js';
import { get, put, del, seg } from '../api.js';
import { t, LOCALES, locale, setLocale, money, dateTime } from '../i18n.js';
import { state, emit } from '../store.js';
import { scopeName } from './sheets.js';

function section(title, ...body) {
  return h('section', { class: 'card-section', 'aria-label': title }, h('h2', {}, title), ...body);
}

export function settingsScreen({ signOut }) {
  const lang = h('select', { onchange: () => { setLocale(lang.value); emit('locale'); } },
    LOCALES.map(([v, n]) => h('option', { value: v, selected: v === locale() }, n)));

  // The payment PIN.
  const pin = h('input', { type: 'password', inputmode: 'numeric', autocomplete: 'off', name: 'new-pin' });
  const pinPassword = h('input', { type: 'password', autocomplete: 'current-password', name: 'pin-password' });
  const pinSave = h('button', { type: 'submit', class: 'primary' }, t('settings.pin_save'));
  const pinForm = h('form', { onsubmit: (e) => {
    e.preventDefault();
    busy(pinSave, async () => {
      try {
        await put('/api/v1/me/payment-pin', { pin: pin.value, password: pinPassword.value });
        pin.value = ''; pinPassword.value = '';
        toast(t('settings.pin_saved'));
      } catch (err) { toast(err.message, 'error'); }
    });
  } }, field(t('settings.pin'), pin, t('settings.pin_hint')), field(t('auth.password'), pinPassword), pinSave);

  const wallet = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('common.loading')));
  const grants = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('common.loading')));
  const privacy = h('div', {}, h('p', { class: 'loading' }, t('common.loading')));

  async function loadWallet() {
    try {
      const [accounts, history] = await Promise.all([get('/api/v1/me/wallet'), get('/api/v1/me/payments?limit=50')]);
      mount(wallet,
        accounts.length ? h('ul', { class: 'plain' }, accounts.map((a) => h('li', { class: 'balance' }, t('settings.balance'), ': ',
          h('strong', {}, a.balance_text)))) : h('p', { class: 'muted' }, t('settings.no_wallet')),
        history.length ? h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, [t('pay.app'), t('pay.description'), t('pay.amount'), t('settings.state'), t('settings.when')].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, history.map((p) => h('tr', {},
            h('td', {}, p.app_name), h('td', {}, p.description), h('td', { class: 'num' }, money(p.amount, p.currency, p.exponent)),
            h('td', {}, t(`pay.state.${p.state}`)), h('td', {}, dateTime(Date.parse(p.created_at)))))))
          : h('p', { class: 'muted' }, t('settings.no_payments')));
    } catch (err) { mount(wallet, h('p', { class: 'error' }, err.message)); }
  }

  async function loadGrants() {
    try {
      const list = await get('/api/v1/me/grants');
      if (!list.length) { mount(grants, h('p', { class: 'muted' }, t('settings.no_grants'))); return; }
      mount(grants, h('ul', { class: 'plain grants' }, list.map((g) => h('li', { class: 'grant' },
        h('div', { class: 'row between' }, h('strong', {}, g.app_id),
          h('button', { class: 'danger small', onclick: async () => {
            try { await del(`/api/v1/me/grants/${seg(g.app_id)}`); loadGrants(); } catch (err) { toast(err.message, 'error'); }
          } }, t('settings.revoke_all'))),
        g.scopes.length ? h('ul', { class: 'plain' }, g.scopes.map((s) => h('li', { class: 'row between' }, scopeName(s),
          h('button', { class: 'small', 'aria-label': t('settings.revoke_scope', { scope: scopeName(s), app: g.app_id }), onclick: async () => {
            try { await del(`/api/v1/me/grants/${seg(g.app_id)}/scopes/${seg(s)}`); loadGrants(); } catch (err) { toast(err.message, 'error'); }
          } }, t('settings.revoke')))))
          : h('p', { class: 'muted small' }, t('settings.nothing_granted'))))));
    } catch (err) { mount(grants, h('p', { class: 'error' }, err.message)); }
  }

  async function loadPrivacy() {
    try {
      const list = await get('/api/v1/me/privacy?limit=100');
      mount(privacy, list.length ? h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, [t('settings.app'), t('settings.used'), t('settings.outcome'), t('settings.when')].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, list.map((e) => h('tr', {}, h('td', {}, e.app_id), h('td', {}, scopeName(e.capability)),
          h('td', {}, e.outcome === 'ok' ? t('settings.ok') : e.outcome), h('td', {}, dateTime(e.at_ms))))))
        : h('p', { class: 'muted' }, t('settings.no_privacy')));
    } catch (err) { mount(privacy, h('p', { class: 'error' }, err.message)); }
  }

  loadWallet(); loadGrants(); loadPrivacy();
  const me = state.me;
  return {
    el: h('div', { class: 'page settings' },
      h('header', { class: 'pane-head' }, h('h1', {}, t('settings.title'))),
      section(t('settings.account'),
        h('p', {}, h('strong', {}, me.display_name), ' ', h('span', { class: 'muted' }, `@${me.username} · ${t(`role.${me.role}`)}`)),
        h('button', { onclick: signOut }, t('auth.sign_out'))),
      section(t('settings.language'), field(t('settings.language'), lang)),
      section(t('settings.payments'), pinForm, wallet),
      section(t('settings.authorized'), grants),
      section(t('settings.privacy'), h('p', { class: 'muted small' }, t('settings.privacy_hint')), privacy)),
  };
}
