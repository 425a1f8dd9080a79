// The sheets that interrupt: consent (an app asks for scopes: its name, developer, each scope
// with its reason and a toggle), payment (app, merchant, the amount in the user's locale,
// description, PIN), and an app's panel (its private conversation with the user, in a side
// sheet). Each request is shown once, however often it is announced.

import { h, dialog, field, busy, toast } from '../dom.js';
import { get, post, put, seg } from '../api.js';
import { t, money, moneyInWords } from '../i18n.js';
import { chatView } from './chat.js';

const showing = new Set();

/** A scope's name in words (falls back to its id). */
export function scopeName(name) {
  const k = `scope.${name}`;
  const s = t(k);
  return s === k ? name : s;
}

/** Asks the user to answer consent request `c` (a `consent_request` frame). */
export async function openConsent(c) {
  const key = `consent:${c.request}`;
  if (showing.has(key)) return;
  showing.add(key);
  let developer = '';
  try { developer = (await get(`/api/v1/directory/${seg(c.app)}`)).developer; } catch { developer = ''; }
  await dialog(t('consent.title', { app: c.app_name }), (close) => {
    const toggles = c.scopes.map((s) => {
      const box = h('input', { type: 'checkbox', role: 'switch', checked: s.granted || s.new, 'data-scope': s.name });
      return { s, box };
    });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const allow = h('button', { type: 'submit', class: 'primary' }, t('consent.allow'));
    const answer = async (scopes) => {
      try {
        await put(`/api/v1/me/grants/${seg(c.app)}`, { scopes });
        close(true);
      } catch (err) { error.textContent = err.message; error.hidden = false; }
    };
    return h('form', { class: 'sheet-body consent', onsubmit: (e) => {
      e.preventDefault();
      busy(allow, () => answer(toggles.filter((x) => x.box.checked).map((x) => x.s.name)));
    } },
    h('div', { class: 'sheet-app' }, h('span', { class: 'app-icon', 'aria-hidden': 'true' }, (c.app_name || '?').slice(0, 1)),
      h('div', {}, h('h2', {}, c.app_name), developer ? h('p', { class: 'muted' }, t('consent.by', { developer })) : null)),
    h('p', {}, t('consent.asks', { app: c.app_name })),
    h('ul', { class: 'scopes' }, toggles.map(({ s, box }) => {
      box.id = `scope-${s.name.replace(/\W/g, '-')}`;
      return h('li', { class: 'scope' },
        h('div', { class: 'scope-text' },
          h('label', { for: box.id, class: 'scope-name' }, scopeName(s.name), s.new ? h('span', { class: 'tag' }, t('consent.new')) : null),
          h('p', { class: 'scope-reason' }, s.reason)),
        box);
    })),
    h('p', { class: 'muted small' }, t('consent.revoke_later')),
    error,
    h('div', { class: 'row end' },
      h('button', { type: 'button', onclick: () => answer([]) }, t('consent.deny')), allow));
  });
  showing.delete(key);
}

/** Asks the user to confirm payment `p` (a `PaymentView`) with their PIN. */
export async function openPayment(p) {
  const key = `pay:${p.id}`;
  if (!p || showing.has(key) || (p.state && p.state !== 'pending')) return;
  showing.add(key);
  await dialog(t('pay.title'), (close) => {
    const pin = h('input', { type: 'password', inputmode: 'numeric', autocomplete: 'off', pattern: '[0-9]*', maxlength: 12, required: true, name: 'pin' });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const pay = h('button', { type: 'submit', class: 'primary' }, t('pay.pay', { amount: money(p.amount, p.currency, p.exponent) }));
    return h('form', { class: 'sheet-body payment', onsubmit: (e) => {
      e.preventDefault();
      error.hidden = true;
      busy(pay, async () => {
        try {
          await post(`/api/v1/me/payments/${seg(p.id)}/confirm`, { pin: pin.value });
          toast(t('pay.done', { amount: money(p.amount, p.currency, p.exponent) }));
          close(true);
        } catch (err) {
          error.textContent = err.code === 'pin_not_set' ? t('pay.no_pin') : err.message;
          error.hidden = false;
          pin.value = '';
          pin.focus();
        }
      });
    } },
    h('h2', {}, t('pay.title')),
    h('p', { class: 'amount', 'data-testid': 'amount', 'aria-label': moneyInWords(p.amount, p.currency, p.exponent) }, money(p.amount, p.currency, p.exponent)),
    h('p', { class: 'amount-words muted', 'aria-hidden': 'true' }, moneyInWords(p.amount, p.currency, p.exponent)),
    h('dl', { class: 'facts' },
      h('dt', {}, t('pay.app')), h('dd', {}, p.app_name),
      h('dt', {}, t('pay.merchant')), h('dd', {}, p.merchant),
      h('dt', {}, t('pay.description')), h('dd', {}, p.description)),
    field(t('pay.pin'), pin, t('pay.pin_hint')),
    error,
    h('div', { class: 'row end' },
      h('button', { type: 'button', onclick: async () => {
        try { await post(`/api/v1/me/payments/${seg(p.id)}/decline`); } catch (err) { toast(err.message, 'error'); }
        close(false);
      } }, t('pay.decline')), pay));
  });
  showing.delete(key);
}

/** Shows app `app`'s panel: its conversation `conversation` in a side sheet. */
export async function openPanel(app, conversation) {
  const key = `panel:${conversation}`;
  if (showing.has(key)) return;
  showing.add(key);
  let name = app;
  try { name = (await get(`/api/v1/directory/${seg(app)}`)).name; } catch { name = app; }
  let view;
  await dialog(name, (close) => {
    view = chatView(conversation, { compact: true });
    return h('div', { class: 'panel' },
      h('header', { class: 'row between panel-head' }, h('h2', {}, name),
        h('button', { class: 'ghost', 'aria-label': t('common.close'), onclick: () => close() }, '✕')),
      view.el);
  }, { side: true });
  if (view) view.cleanup();
  showing.delete(key);
}

/** Adds `app` to the user's own panel and opens it there. */
export async function openOwnPanel(app) {
  try {
    const r = await post(`/api/v1/me/apps/${seg(app)}/open`);
    await openPanel(app, r.conversation);
  } catch (err) { toast(err.message, 'error'); }
}
