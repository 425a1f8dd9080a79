// Test guest: a JavaScript app that misbehaves on purpose, one command per fault, so that the
// tests can check that a JS app's faults end as a Rust app's do (host/runtime/test-guests/faults).
import { set } from 'minihost:app/storage@0.2.0';
import { send } from 'minihost:app/messaging@0.2.0';

export function handle(ctx, event) {
  if (event.tag !== 'command') return undefined;
  const { name, args } = event.val;
  switch (name) {
    case 'ok':
      return { tag: 'text', val: 'ok' };
    case 'throw':
      throw new Error('thrown on purpose');
    case 'fail':
      // A typed error, as the WIT's `result` allows.
      throw { tag: 'invalid', val: 'failed on purpose' };
    case 'loop':
      for (;;) {}
    case 'bomb': {
      const hoard = [];
      // Whole megabytes at a time, so the memory limit comes long before the deadline even
      // on a busy machine (filling element by element could take longer than the deadline).
      for (;;) hoard.push(new Uint8Array(1 << 20).fill(hoard.length & 0xff));
    }
    case 'recurse': {
      const down = (n) => down(n + 1) + 1;
      return { tag: 'text', val: String(down(0)) };
    }
    case 'remember':
      set('user', 'note', new TextEncoder().encode(args));
      return { tag: 'text', val: `ok:remembered` };
    case 'send':
      return { tag: 'text', val: `ok:${send(ctx.conversation, { tag: 'text', val: 'sent' })}` };
    default:
      return undefined;
  }
}
