// A network drop: bob's browser reaches the server through a TCP proxy that this script cuts
// (open connections reset, new ones refused) while alice sends messages, then restores. Bob
// sees the offline banner, then every message, once each and in order.
import net from 'node:net';
import { run, page, signUp, shot, check, BASE } from './lib.mjs';

/** A TCP proxy to the server that can be cut and restored. */
function proxy(target) {
  const url = new URL(target);
  const open = new Set();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) { client.resetAndDestroy(); return; }
    const upstream = net.connect(Number(url.port), url.hostname);
    open.add(client); open.add(upstream);
    const done = () => { open.delete(client); open.delete(upstream); client.destroy(); upstream.destroy(); };
    client.on('error', done); upstream.on('error', done); client.on('close', done); upstream.on('close', done);
    client.pipe(upstream); upstream.pipe(client);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    cut() { up = false; for (const s of open) s.resetAndDestroy(); open.clear(); },
    restore() { up = true; },
    close() { server.close(); },
  })));
}

const line = (p, text) => p.getByRole('log').getByText(text, { exact: true });

async function say(p, text) {
  const box = p.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill(text);
  await box.press('Enter');
  await line(p, text).waitFor();
}

await run(async (browser) => {
  const net1 = await proxy(BASE);
  const alice = await page(browser);
  await signUp(alice, 'alice');
  const bob = await page(browser, { url: net1.url });
  await signUp(bob, 'bob');

  await alice.getByRole('button', { name: 'New chat' }).click();
  await alice.getByLabel('Usernames').fill('bob');
  await alice.getByRole('button', { name: 'Start chat' }).click();
  await say(alice, 'before the drop');
  await bob.getByRole('link', { name: /^Alice/ }).click();
  await line(bob, 'before the drop').waitFor();

  net1.cut();
  const banner = bob.getByRole('status').filter({ hasText: 'Offline — reconnecting…' });
  await banner.waitFor();
  const sent = [];
  for (let i = 1; i <= 6; i++) {
    sent.push(`while you were away ${i}`);
    await say(alice, sent.at(-1));
  }
  await shot(bob, 'bob-offline');
  net1.restore();
  await banner.waitFor({ state: 'hidden' });
  await say(alice, 'after the drop');
  await line(bob, 'after the drop').waitFor();

  // Every message once, in seq order.
  const texts = await bob.getByRole('log').locator('.msg .text').allTextContents();
  const expected = ['before the drop', ...sent, 'after the drop'];
  check(JSON.stringify(texts) === JSON.stringify(expected), `bob sees ${JSON.stringify(texts)}`);
  await shot(bob, 'bob-after-reconnect');
  net1.close();
});
