// Two people chat live: alice on a desktop-sized window, bob on a 375-px phone; bob sees the
// unread count before opening the chat; alice signed in on a second browser sees every message
// live too.
import { run, page, signUp, signIn, shot, check } from './lib.mjs';

async function say(p, text) {
  const box = p.getByRole('textbox', { name: /^(Message|消息)$/ });
  await box.fill(text);
  await box.press('Enter');
}

const line = (p, text) => p.getByRole('log').getByText(text, { exact: true });

await run(async (browser) => {
  const alice = await page(browser);
  await signUp(alice, 'alice');
  const bob = await page(browser, { width: 375, height: 740 });
  await signUp(bob, 'bob');

  await alice.getByRole('button', { name: 'New chat' }).click();
  await alice.getByLabel('Usernames').fill('bob');
  await alice.getByRole('button', { name: 'Start chat' }).click();
  await alice.getByRole('heading', { name: 'Bob' }).waitFor();
  await say(alice, 'hello bob');
  await line(alice, 'hello bob').waitFor();

  // Bob's list shows the new chat with one unread message, live.
  const entry = bob.getByRole('link', { name: 'Alice, 1 unread' });
  await entry.waitFor();
  check((await bob.getByTestId('unread').textContent()) === '1', 'one unread message');
  await shot(bob, 'bob-phone-list');
  await entry.click();
  await line(bob, 'hello bob').waitFor();
  await say(bob, 'hi alice!');
  await line(alice, 'hi alice!').waitFor();

  // The same account on a second browser sees the history and what comes next, live.
  const alice2 = await page(browser, { width: 390, height: 780 });
  await signIn(alice2, 'alice');
  await alice2.getByRole('link', { name: /^Bob/ }).click();
  await line(alice2, 'hello bob').waitFor();
  await line(alice2, 'hi alice!').waitFor();
  await say(bob, 'see you at noon');
  await line(alice, 'see you at noon').waitFor();
  await line(alice2, 'see you at noon').waitFor();
  check(await line(alice, 'see you at noon').count() === 1, 'each message shows once');

  // Bob read everything: his list shows no unread count.
  await bob.getByRole('link', { name: 'Back' }).click();
  await bob.getByRole('link', { name: 'Alice', exact: true }).waitFor();
  await shot(alice, 'alice-desktop-chat');
  await shot(bob, 'bob-phone-after');
  await shot(alice2, 'alice-second-browser');
});
