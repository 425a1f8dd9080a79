// The echo-js example in the simulator (`npm run build && npm test`; `cargo test` runs it too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulate } from './minihost-test.mjs';

test('/echo TEXT answers TEXT and logs a line', () => {
  const result = simulate({ command: '/echo  hello there ' });
  assert.equal(result.status, 'ok', result.error);
  assert.deepEqual(result.reply, { type: 'text', text: 'hello there' });
  assert.deepEqual(result.messages.map((m) => m.content), [{ type: 'text', text: 'hello there' }]);
  assert.deepEqual(result.runs[0].logs.map((l) => l.level), ['debug']);
  assert.deepEqual(result.runs[0].calls.map((c) => `${c.interface}.${c.function}`), ['log.write']);
});

test('a bare /echo answers with a usage card', () => {
  const result = simulate({ command: '/echo' });
  assert.equal(result.status, 'ok', result.error);
  assert.deepEqual(result.reply, {
    type: 'card',
    blocks: [{ kind: 'text', text: 'Usage: /echo TEXT' }, { kind: 'divider' }],
  });
});

test('an undeclared command is refused, as on a server', () => {
  assert.equal(simulate({ command: '/shout hi' }).status, 'refused');
});
