// Sign in and sign up: one form with two modes; errors from the API are shown beside it.

import { h, field, busy } from '../dom.js';
import { post, setToken } from '../api.js';
import { t, LOCALES, locale, setLocale } from '../i18n.js';
import { emit } from '../store.js';

export function authScreen(done) {
  let mode = 'in';
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const display = h('input', { name: 'display_name', autocomplete: 'name' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const displayField = field(t('auth.display_name'), display);
  const submit = h('button', { type: 'submit', class: 'primary' });
  const toggle = h('button', { type: 'button', class: 'link' });
  const title = h('h1', {});
  const lang = h('select', { 'aria-label': t('settings.language'), onchange: () => { setLocale(lang.value); emit('locale'); } },
    LOCALES.map(([v, n]) => h('option', { value: v, selected: v === locale() }, n)));

  function show() {
    title.textContent = mode === 'in' ? t('auth.sign_in') : t('auth.sign_up');
    submit.textContent = mode === 'in' ? t('auth.sign_in') : t('auth.create');
    toggle.textContent = mode === 'in' ? t('auth.need_account') : t('auth.have_account');
    displayField.hidden = mode === 'in';
    password.autocomplete = mode === 'in' ? 'current-password' : 'new-password';
    error.hidden = true;
  }

  const form = h('form', {
    class: 'auth-card', 'aria-labelledby': 'auth-title',
    onsubmit: (e) => {
      e.preventDefault();
      error.hidden = true;
      busy(submit, async () => {
        try {
          if (mode === 'up') {
            await post('/api/v1/accounts', {
              username: username.value.trim(), display_name: display.value.trim() || username.value.trim(), password: password.value,
            });
          }
          const s = await post('/api/v1/sessions', { username: username.value.trim(), password: password.value });
          setToken(s.token);
          await done();
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        }
      });
    },
  },
  title, h('p', { class: 'muted' }, t('auth.tagline')),
  field(t('auth.username'), username), displayField, field(t('auth.password'), password),
  error, submit,
  h('div', { class: 'row between' }, toggle, lang));
  title.id = 'auth-title';
  toggle.addEventListener('click', () => { mode = mode === 'in' ? 'up' : 'in'; show(); });
  show();
  return h('div', { class: 'auth' }, form);
}
