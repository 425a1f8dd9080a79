// The developer and reviewer consoles: a developer registers `polls` (the secret is shown
// once) and uploads version 1.0.0 in the console; a reviewer finds it in the queue, claims,
// approves and releases it to everyone. The developer uploads 1.1.0 asking for a new scope; the
// reviewer sees it highlighted in the manifest diff and rejects it with a reason the developer
// then reads.
import fs from 'node:fs';
import { run, page, signIn, shot, check } from './lib.mjs';

await run(async (browser) => {
  const dev = await page(browser);
  await signIn(dev, 'pollster');
  await dev.getByRole('link', { name: 'Developer' }).click();
  await dev.getByLabel('App id', { exact: true }).fill('polls');
  await dev.getByLabel('Name', { exact: true }).fill('Polls');
  await dev.getByRole('button', { name: 'Register an app' }).click();
  const creds = dev.getByRole('dialog', { name: 'Your app’s credentials' });
  check((await creds.getByTestId('client-secret').textContent()).startsWith('mhcs_'), 'the client secret is shown');
  await creds.getByRole('button', { name: 'I saved it' }).click();
  await dev.getByRole('heading', { name: 'polls', exact: true }).waitFor();

  await dev.getByLabel('miniapp.toml file').setInputFiles(process.env.POLLS_MANIFEST);
  await dev.waitForFunction(() => document.querySelector('textarea[name="manifest-text"]').value.includes('id = "polls"'));
  await dev.getByLabel('Component (.wasm)').setInputFiles(process.env.POLLS_WASM);
  await dev.getByLabel('Notes for the reviewer').fill('First version.');
  await dev.getByRole('button', { name: 'Upload a version' }).click();
  await dev.getByText('Version 1.0.0 uploaded.').waitFor();
  const versions = dev.getByRole('region', { name: 'Versions' });
  await versions.getByText('v1.0.0').waitFor();
  await versions.getByText('submitted').waitFor();
  await dev.screenshot({ path: `${process.env.MINIHOST_WEB_OUT}/developer-console.png`, fullPage: true });

  const rita = await page(browser);
  await signIn(rita, 'rita');
  await rita.getByRole('link', { name: 'Review' }).click();
  await rita.getByRole('link', { name: /polls 1\.0\.0/ }).click();
  await rita.getByRole('heading', { name: 'Findings' }).waitFor();
  await rita.getByText('First version.').waitFor();
  await rita.getByRole('button', { name: 'Claim' }).click();
  await rita.getByText('claimed by rita').waitFor();
  await rita.getByRole('button', { name: 'Approve' }).click();
  await rita.locator('.status').filter({ hasText: 'approved' }).waitFor();
  await rita.getByLabel('Release to % of users').fill('100');
  await rita.getByRole('button', { name: 'Release', exact: true }).click();
  await rita.getByText('Released: 1.0.0').waitFor();
  await shot(rita, 'reviewer-released');

  // 1.1.0 asks for profiles too.
  const manifest = fs.readFileSync(process.env.POLLS_MANIFEST, 'utf8')
    .replace('version = "1.0.0"', 'version = "1.1.0"')
    .replace('[[commands]]', '[[scopes]]\nname = "profile.read"\nreason = "To show voters by name."\n\n[[commands]]');
  await dev.getByLabel('Manifest', { exact: true }).fill(manifest);
  await dev.getByLabel('Notes for the reviewer').fill('Shows who voted.');
  await dev.getByRole('button', { name: 'Upload a version' }).click();
  await dev.getByText('Version 1.1.0 uploaded.').waitFor();
  await dev.locator('.finding.changed').first().waitFor();

  await rita.getByRole('link', { name: 'Back' }).click();
  await rita.getByRole('link', { name: /polls 1\.1\.0/ }).click();
  await rita.getByRole('heading', { name: 'Manifest changes since 1.0.0' }).waitFor();
  const scope = rita.locator('.chip.new-scope');
  check((await scope.textContent()).includes('See your name and profile'), 'the new scope is highlighted');
  await rita.locator('.diff-line.add').filter({ hasText: 'name = "profile.read"' }).waitFor();
  await rita.getByRole('button', { name: 'Claim' }).click();
  await rita.getByText('claimed by rita').waitFor();
  await rita.waitForFunction(() => !document.querySelector('#toasts .toast'));
  await rita.locator('main').evaluate((m) => { m.scrollTop = 0; });
  await shot(rita, 'reviewer-console');
  await rita.getByLabel('Reason (shown to the developer)').fill('Please explain why polls need profiles.');
  await rita.getByRole('button', { name: 'Reject' }).click();
  await rita.locator('.status').filter({ hasText: 'rejected' }).waitFor();

  await dev.reload();
  await dev.getByText('Reviewer’s reason: Please explain why polls need profiles.').waitFor();
  await dev.screenshot({ path: `${process.env.MINIHOST_WEB_OUT}/developer-rejected.png`, fullPage: true });
});
