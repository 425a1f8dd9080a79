// Localization: the user's language (from settings, else the browser), one message catalogue
// per locale (`locales/*.js`), and dates, times and amounts formatted for that locale with the
// browser's Intl (amounts come from the API in integer minor units with their exponent).

import en from './locales/en.js';
import zh from './locales/zh-CN.js';

const CATALOGUES = { en, 'zh-CN': zh };
export const LOCALES = [['en', 'English'], ['zh-CN', '简体中文']];
const KEY = 'mh.locale';

function fromBrowser() {
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const l of langs) {
    if (/^zh\b/i.test(l)) return 'zh-CN';
    if (/^en\b/i.test(l)) return 'en';
  }
  return 'en';
}

let current = CATALOGUES[localStorage.getItem(KEY)] ? localStorage.getItem(KEY) : fromBrowser();
document.documentElement.lang = current;

/** The user's locale (`en` or `zh-CN`). */
export function locale() {
  return current;
}

/** Chooses the locale (remembered in this browser). */
export function setLocale(l) {
  if (!CATALOGUES[l]) return;
  current = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l;
}

/** The message `key` in the user's language, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const s = CATALOGUES[current][key] ?? en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? `{${k}}`));
}

/** An amount in minor units, e.g. (650, 'EUR', 2) → "€6.50" / "€6.50" in zh-CN. */
export function money(amount, currency, exponent = 2) {
  const value = Number(amount) / 10 ** exponent;
  try {
    return new Intl.NumberFormat(current, {
      style: 'currency', currency, minimumFractionDigits: exponent, maximumFractionDigits: exponent,
    }).format(value);
  } catch {
    return `${value.toFixed(exponent)} ${currency}`;
  }
}

/** A time of day for today's messages, else a short date. */
export function when(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const now = new Date();
  const today = d.toDateString() === now.toDateString();
  return new Intl.DateTimeFormat(current, today ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric' }).format(d);
}

/** A full date and time. */
export function dateTime(ms) {
  if (!ms) return '';
  return new Intl.DateTimeFormat(current, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(ms));
}

/** An amount with the currency's name, e.g. "6.50 euros" / "6.50欧元" (read out, and shown
 * under the figure where the amount matters). */
export function moneyInWords(amount, currency, exponent = 2) {
  const value = Number(amount) / 10 ** exponent;
  try {
    return new Intl.NumberFormat(current, {
      style: 'currency', currency, currencyDisplay: 'name', minimumFractionDigits: exponent, maximumFractionDigits: exponent,
    }).format(value);
  } catch {
    return `${value.toFixed(exponent)} ${currency}`;
  }
}
