// Example mini-app in JavaScript: replies to `/echo TEXT` with TEXT (and with a usage card to a
// bare `/echo`), the twin of examples/echo. Built by ComponentizeJS (`npm run build`).
import { write } from 'minihost:app/log@0.2.0';

/** @typedef {import('minihost:app/types@0.2.0').Content} Content */

/**
 * The reply to `/echo ARGS`.
 * @param {string} args
 * @returns {Content}
 */
export function echo(args) {
  const text = args.trim();
  if (text === '') {
    return {
      tag: 'card',
      val: { blocks: [{ tag: 'text', val: 'Usage: /echo TEXT' }, { tag: 'divider' }] },
    };
  }
  return { tag: 'text', val: text };
}

/**
 * Handles one event.
 * @param {import('minihost:app/types@0.2.0').Context} ctx
 * @param {import('minihost:app/types@0.2.0').Event} event
 * @returns {Content | undefined}
 */
export function handle(ctx, event) {
  if (event.tag !== 'command' || event.val.name !== 'echo') return undefined;
  write('debug', `echo for ${ctx.user} in ${ctx.conversation}`);
  return echo(event.val.args);
}
