// A mini-app in a group: alice types `/po`, picks the suggested `/poll` command, gets the
// consent sheet (app, developer, each scope with its reason and a toggle), allows, and votes on
// the poll's card: the card's tally changes in place (one card, new text), for bob too.
import { run, page, signIn, shot, check } from './lib.mjs';

await run(async (browser) => {
  const alice = await page(browser);
  await signIn(alice, 'alice');
  await alice.getByRole('link', { name: /^Lunch club/ }).click();
  const box = alice.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill('/po');
  const option = alice.getByRole('option', { name: /\/poll/ });
  await option.waitFor();
  check((await option.textContent()).includes('QUESTION'), 'the suggestion shows the command help');
  await box.press('Tab');
  check((await box.inputValue()) === '/poll ', 'Tab completes the command');
  await box.pressSequentially('Lunch? | Noodles | Dumplings');
  await box.press('Enter');

  const consent = alice.getByRole('dialog', { name: 'Polls asks for permission' });
  await consent.waitFor();
  await consent.getByText(/^by /).waitFor();
  await consent.getByText('To post the poll card and keep its tally up to date.').waitFor();
  await consent.getByText('To remember the poll and who voted for what.').waitFor();
  const send = consent.getByRole('switch', { name: /Post messages in the chat/ });
  const store = consent.getByRole('switch', { name: /Keep data for this app/ });
  check(await send.isChecked() && await store.isChecked(), 'asked scopes start switched on');
  await shot(alice, 'consent-sheet');
  await consent.getByRole('button', { name: 'Allow', exact: true }).click();
  await consent.waitFor({ state: 'hidden' });

  const card = alice.getByRole('group', { name: 'Card from Polls' });
  await card.getByText('Lunch?').waitFor();
  await card.getByText('Noodles: 0 · Dumplings: 0').waitFor();
  const bob = await page(browser, { width: 375, height: 740 });
  await signIn(bob, 'bob');
  await bob.getByRole('link', { name: /^Lunch club/ }).click();
  await bob.getByRole('group', { name: 'Card from Polls' }).getByText('Noodles: 0 · Dumplings: 0').waitFor();

  await card.getByRole('button', { name: 'Noodles' }).click();
  await card.getByText('Noodles: 1 · Dumplings: 0').waitFor();
  check(await alice.getByRole('group', { name: 'Card from Polls' }).count() === 1, 'the card was updated in place, not posted again');
  await bob.getByRole('group', { name: 'Card from Polls' }).getByText('Noodles: 1 · Dumplings: 0').waitFor();
  await shot(alice, 'chat-with-card');
  await shot(bob, 'bob-phone-card');

  // The directory: search, and each scope's reason before adding the app.
  await alice.getByRole('link', { name: 'Apps' }).click();
  await alice.getByRole('searchbox', { name: 'Search apps' }).fill('poll');
  const entry = alice.getByRole('listitem').filter({ has: alice.getByRole('heading', { name: 'Polls' }) });
  await entry.getByText('What it may use (2)').click();
  await entry.getByText('To remember the poll and who voted for what.').waitFor();
  await shot(alice, 'directory');

  // The grant is in Settings, with the privacy record.
  await alice.getByRole('link', { name: 'Settings' }).click();
  await alice.getByRole('button', { name: 'Revoke Keep data for this app from polls' }).waitFor();
  await alice.getByRole('region', { name: 'Privacy record' }).getByRole('cell', { name: 'polls' }).first().waitFor();
  await alice.screenshot({ path: `${process.env.MINIHOST_WEB_OUT}/settings.png`, fullPage: true });
});
