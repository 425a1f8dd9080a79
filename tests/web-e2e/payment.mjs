// A payment through the PIN sheet: alice runs /shop, allows it, taps Buy, and sees the payment
// sheet (app, merchant, amount, description); a wrong PIN is refused on the sheet, the right one
// pays and the shop's receipt card arrives. Then she switches the UI to Chinese in Settings: the
// screens are in Chinese, her history shows the payment, and the next payment sheet shows the
// amount formatted for zh-CN.
import { run, page, signIn, shot, check } from './lib.mjs';

await run(async (browser) => {
  const alice = await page(browser);
  await signIn(alice, 'alice');
  await alice.getByRole('link', { name: /^Tea lovers/ }).click();
  const box = alice.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill('/shop');
  await box.press('Enter');
  const consent = alice.getByRole('dialog', { name: 'Tea Shop asks for permission' });
  await consent.getByText('To ask you to pay for what you buy. You confirm every payment yourself.').waitFor();
  await consent.getByRole('button', { name: 'Allow', exact: true }).click();

  const shop = alice.getByRole('group', { name: 'Card from Tea Shop' });
  await shop.getByRole('button', { name: 'Buy Sencha, 100 g' }).click();
  const sheet = alice.getByRole('dialog', { name: 'Confirm payment' });
  await sheet.waitFor();
  check((await sheet.getByTestId('amount').textContent()) === '€6.50', 'the amount in English');
  await sheet.getByText('Tea Shop', { exact: true }).waitFor();
  await sheet.getByText('6.50 euros').waitFor();
  await shot(alice, 'payment-sheet');

  await sheet.getByLabel('Payment PIN').fill('135790');
  await sheet.getByRole('button', { name: 'Pay €6.50' }).click();
  await sheet.getByRole('alert').filter({ hasText: /PIN/i }).waitFor();
  check(await sheet.isVisible(), 'a wrong PIN leaves the sheet open');
  await sheet.getByLabel('Payment PIN').fill('246810');
  await sheet.getByRole('button', { name: 'Pay €6.50' }).click();
  await sheet.waitFor({ state: 'hidden' });
  await alice.getByRole('status').filter({ hasText: 'Paid €6.50' }).waitFor();
  await alice.getByRole('group', { name: 'Card from Tea Shop' }).getByText('Sencha, 100 g — paid').waitFor();
  await shot(alice, 'receipt');

  // The card's panel button brings the shop to her own panel, in a side sheet.
  await alice.getByRole('group', { name: 'Card from Tea Shop' }).first().getByRole('button', { name: 'Open the shop in my apps' }).click();
  const panel = alice.getByRole('dialog', { name: 'Tea Shop' });
  await panel.getByRole('group', { name: 'Card from Tea Shop' }).getByText('Tea Shop: what would you like?').waitFor();
  await shot(alice, 'app-panel');
  await panel.getByRole('button', { name: 'Close' }).click();
  await panel.waitFor({ state: 'hidden' });

  // 简体中文, chosen in Settings.
  await alice.getByRole('link', { name: 'Settings' }).click();
  await alice.getByRole('combobox', { name: 'Language' }).selectOption('zh-CN');
  await alice.getByRole('heading', { name: '设置', exact: true }).waitFor();
  await alice.getByRole('link', { name: '聊天' }).waitFor();
  const history = alice.getByRole('region', { name: '支付' });
  await history.getByRole('cell', { name: '已支付' }).waitFor();
  await history.getByRole('cell', { name: '€6.50' }).waitFor();
  await alice.screenshot({ path: `${process.env.MINIHOST_WEB_OUT}/settings-zh.png`, fullPage: true });

  await alice.getByRole('link', { name: '聊天' }).click();
  await alice.getByRole('link', { name: /^Tea lovers/ }).click();
  await alice.getByRole('textbox', { name: '消息', exact: true }).waitFor();
  await alice.getByRole('group', { name: '来自 Tea Shop 的卡片' }).first().getByRole('button', { name: 'Buy Oolong, 100 g' }).click();
  const zh = alice.getByRole('dialog', { name: '确认付款' });
  await zh.waitFor();
  await zh.getByText('8.90欧元').waitFor();
  check((await zh.getByTestId('amount').textContent()) === '€8.90', 'the amount in zh-CN');
  await zh.getByText('商户').waitFor();
  await shot(alice, 'payment-sheet-zh');
  await zh.getByLabel('支付密码').fill('246810');
  await zh.getByRole('button', { name: '支付 €8.90' }).click();
  await zh.waitFor({ state: 'hidden' });
  await alice.getByRole('status').filter({ hasText: '已支付 €8.90' }).waitFor();
  await alice.getByText('Oolong, 100 g — paid').waitFor();
  await shot(alice, 'receipt-zh');
});
