// Helpers of the browser tests: Debian's Chromium driven by playwright-core (no browser
// download), pages that fail the test on any script error or CSP violation, sign-up and
// sign-in through the UI, assertions that wait for what a person would see, and screenshots
// under the test output directory.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const BASE = process.env.MINIHOST_URL;
export const OUT = process.env.MINIHOST_WEB_OUT || 'out';
/** How long to wait for something to appear: a guard against hangs, not a performance bound. */
export const WAIT = 60_000;

fs.mkdirSync(OUT, { recursive: true });

export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  return browser;
}

const problems = [];
const pages = [];

/** A new page (own context: own storage) of `width`, failing on script errors. */
export async function page(browser, { width = 1280, height = 800, locale = 'en-US', url = BASE } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale });
  context.setDefaultTimeout(WAIT);
  const p = await context.newPage();
  pages.push(p);
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  p.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await p.goto(url + '/');
  return p;
}

/** Fails if any page had a script error or a CSP violation. */
export function noProblems() {
  if (problems.length) throw new Error(problems.join('\n'));
}

export async function signUp(p, username, password = `password-${username}`, display = username[0].toUpperCase() + username.slice(1)) {
  await p.getByRole('button', { name: /Create an account|立即注册/ }).click();
  await p.getByLabel(/Username|用户名/).fill(username);
  await p.getByLabel(/Your name|昵称/).fill(display);
  await p.getByLabel(/^Password$|^密码$/).fill(password);
  await p.getByRole('button', { name: /Create account|创建账号/ }).click();
  await p.getByRole('navigation').waitFor();
}

export async function signIn(p, username, password = `password-${username}`) {
  await p.getByLabel(/Username|用户名/).fill(username);
  await p.getByLabel(/^Password$|^密码$/).fill(password);
  await p.getByRole('button', { name: /^Sign in$|^登录$/ }).click();
  await p.getByRole('navigation').waitFor();
}

export async function shot(p, name) {
  await p.screenshot({ path: path.join(OUT, `${name}.png`) });
}

export function check(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

/** Runs `body(browser)`, closes the browser, exits non-zero on failure. */
export async function run(body) {
  const browser = await launch();
  try {
    await body(browser);
    noProblems();
    console.log('ok');
  } catch (e) {
    console.error(e && e.stack ? e.stack : e);
    process.exitCode = 1;
    for (const [i, p] of pages.entries()) await p.screenshot({ path: path.join(OUT, `failure-${i}.png`) }).catch(() => {});
  } finally {
    await browser.close();
  }
}
