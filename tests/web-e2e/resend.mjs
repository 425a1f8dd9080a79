// A send whose answer is lost: the server stores alice's message, but the connection is reset
// before her browser reads the answer. The client sends it again with the same Idempotency-Key
// on its own; the server answers with the first message. Alice and Bob see it once, and the
// conversation holds it once.
import { run, page, signUp, check, shot } from './lib.mjs';

const line = (p, text) => p.getByRole('log').getByText(text, { exact: true });

await run(async (browser) => {
  const alice = await page(browser);
  await signUp(alice, 'alice');
  const bob = await page(browser);
  await signUp(bob, 'bob');
  await alice.getByRole('button', { name: 'New chat' }).click();
  await alice.getByLabel('Usernames').fill('bob');
  await alice.getByRole('button', { name: 'Start chat' }).click();
  await bob.getByRole('link', { name: /^Alice/ }).click();

  // The first send reaches the server; its answer never reaches the page.
  const sends = [];
  let lost = 0;
  await alice.route('**/api/v1/conversations/*/messages', async (route) => {
    const req = route.request();
    if (req.method() !== 'POST') return route.continue();
    sends.push(req.headers()['idempotency-key']);
    if (lost === 0) {
      lost += 1;
      const answer = await route.fetch();
      check(answer.status() === 201, `the first attempt is stored (${answer.status()})`);
      return route.abort('connectionreset');
    }
    const answer = await route.fetch();
    sends.push(answer.status());
    return route.fulfill({ response: answer });
  });
  const box = alice.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill('only once please');
  await box.press('Enter');
  await line(alice, 'only once please').waitFor();
  await line(bob, 'only once please').waitFor();
  // The composer empties once the message is stored and answered.
  await alice.waitForFunction(() => document.querySelector('.composer-input')?.value === '');

  check(sends.length === 3, `two attempts and one answer seen: ${JSON.stringify(sends)}`);
  check(typeof sends[0] === 'string' && /^[0-9a-f]{32}$/.test(sends[0]), `a key was sent: ${sends[0]}`);
  check(sends[1] === sends[0], `the retry carries the same key: ${JSON.stringify(sends)}`);
  check(sends[2] === 200, `the retry is answered as a repeat (200): ${sends[2]}`);

  // Once on both screens, and once in the conversation's history.
  check(await line(alice, 'only once please').count() === 1, 'alice sees it once');
  check(await line(bob, 'only once please').count() === 1, 'bob sees it once');
  const history = await alice.evaluate(async () => {
    const convs = await (await fetch('/api/v1/conversations', { headers: { authorization: `Bearer ${localStorage.getItem('mh.token')}` } })).json();
    const id = convs[0].id;
    const page = await (await fetch(`/api/v1/conversations/${id}/messages`, { headers: { authorization: `Bearer ${localStorage.getItem('mh.token')}` } })).json();
    return page.messages.map((m) => m.content.text);
  });
  check(JSON.stringify(history) === JSON.stringify(['only once please']), `history: ${JSON.stringify(history)}`);
  await shot(alice, 'alice-after-resend');
});
