// A mini-app's card, drawn from its blocks: text, buttons, images, one-line inputs and
// dividers. A press sends the button's id with the values of the card's inputs; the app's
// answer (often the same card, updated) arrives live and replaces the card in place.

import { h } from '../dom.js';
import { t } from '../i18n.js';

/** The card of message `m`; `onPress(buttonId, inputs)` is called on a button press. */
export function renderCard(m, { onPress }) {
  const inputs = new Map();
  const blocks = m.content.blocks || [];
  const buttons = [];
  const body = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'text':
        flush();
        body.push(h('p', { class: 'card-text' }, b.text));
        break;
      case 'image':
        flush();
        if (/^(https:|data:image\/)/.test(b.url)) body.push(h('img', { class: 'card-image', src: b.url, alt: '', loading: 'lazy' }));
        break;
      case 'input': {
        flush();
        const el = h('input', { class: 'card-input', type: 'text', placeholder: b.placeholder || '', 'aria-label': b.placeholder || b.id });
        inputs.set(b.id, el);
        body.push(el);
        break;
      }
      case 'divider':
        flush();
        body.push(h('hr', { class: 'card-divider' }));
        break;
      case 'button':
        buttons.push(h('button', {
          type: 'button', class: 'card-button', 'data-button': b.id,
          onclick: async (e) => {
            const btn = e.currentTarget;
            btn.disabled = true;
            btn.setAttribute('aria-busy', 'true');
            const values = {};
            for (const [id, el] of inputs) if (el.value) values[id] = el.value;
            try { await onPress(b.id, values); } finally {
              btn.disabled = false;
              btn.removeAttribute('aria-busy');
            }
          },
        }, b.label));
        break;
      default:
        break;
    }
  }
  flush();

  function flush() {
    if (buttons.length) body.push(h('div', { class: 'card-buttons' }, buttons.splice(0)));
  }

  return h('div', { class: 'card', role: 'group', 'aria-label': t('card.from', { app: m.sender.name || '' }) }, body);
}
