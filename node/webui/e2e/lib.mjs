// Shared by the browser drivers: the control channel to the Go test, the
// console policy, steps, and page helpers.

import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';

export const cfg = JSON.parse(process.env.E2E_CONFIG);
export const T = 30_000; // generous per-wait deadline on a loaded machine
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

// --- control channel to the Go test -----------------------------------

const replies = [];
const waiters = [];
createInterface({ input: process.stdin }).on('line', (l) => {
  const w = waiters.shift();
  if (w) w(l); else replies.push(l);
});
export async function ctl(cmd, name) {
  process.stdout.write(`@@ctl ${cmd} ${name}\n`);
  const r = replies.length ? replies.shift() : await new Promise((res) => waiters.push(res));
  if (r !== 'ok') throw new Error(`ctl ${cmd} ${name}: ${r}`);
}

// --- console policy ------------------------------------------------------

// Any console error fails the run, except the network lines Chromium logs
// for answers the page expects and shows in place: 404/405 on the
// feature probes, 409 for a channel we were removed from (today's node),
// 502/503 and refused connections while a process is down on purpose.
const PROBES = /\/v1\/(events|invitations|contacts|devices|relay)(\?|$)|\/v1\/channels\/[^/]+\/changes$/;
export const problems = [];
export const down = new Set(); // processes stopped on purpose
export function watch(page, who) {
  page.on('pageerror', (e) => problems.push(`${who}: uncaught ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const url = (msg.location() && msg.location().url) || '';
    const status = /status of (\d{3})/.exec(text);
    if (status) {
      const s = +status[1];
      if ((s === 404 || s === 405) && PROBES.test(url)) return;
      if (s === 409 && removed.has(who)) return;
      if (s === 401 && askedToken.has(who)) return; // how the page learns it needs the token
      if (allowed.has(`${who}:${s}`)) return; // a refusal the step provokes on purpose
      if ((s === 502 || s === 503) && down.size) return;
      // Today's node answers a send it cannot deliver (relay down) with 500.
      if (s === 500 && down.has('relay') && /\/messages$/.test(url)) return;
    }
    if (/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|ERR_INCOMPLETE_CHUNKED/.test(text) && down.size) return;
    problems.push(`${who}: console error: ${text} (${url})`);
  });
}
export const removed = new Set();
export const askedToken = new Set();
export const allowed = new Set();

// --- steps -------------------------------------------------------------------

export async function step(name, fn) {
  const t0 = Date.now();
  console.log(`step: ${name}`);
  await fn();
  if (problems.length) throw new Error(`console errors during "${name}":\n  ${problems.join('\n  ')}`);
  process.stdout.write(`@@ran ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
}
export function skipped(name, why) { process.stdout.write(`@@skipped ${name}: ${why}\n`); }

export async function shot(page, name) {
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: `${cfg.screenshots}/${name}.png` });
}

export const msgText = (page, text) => page.locator('#timeline .msg .text', { hasText: text });
export async function seeMessage(page, text) { await msgText(page, text).first().waitFor({ timeout: T }); }
export async function send(page, text) {
  await page.locator('#send-text').fill(text);
  await page.locator('#send-text').press('Enter');
}
export async function uid(page) { return (await page.locator('#me-uid').textContent()).trim(); }
// openPages opens one page per name (the first in the context's own
// tab) on that name's node, watched, into pages; it waits until each shows
// a user id and ready(page, who) holds, and returns the user ids by name.
export async function openPages(ctx, pages, names, ready) {
  const uids = {};
  for (const who of names) {
    const page = ctx.pages().length && !Object.keys(pages).length ? ctx.pages()[0] : await ctx.newPage();
    pages[who] = page;
    watch(page, who);
    await page.goto(cfg.nodes[who]);
    await page.locator('#me-uid', { hasText: 'sp1' }).waitFor({ timeout: T });
    await ready(page, who);
    uids[who] = await uid(page);
  }
  return uids;
}
export async function openChannel(page, name) {
  await page.locator('#channel-list button', { hasText: name }).first().click({ timeout: T });
  await page.locator('#ch-name', { hasText: name }).waitFor({ timeout: T });
}
export async function membersOpen(page) {
  if (await page.locator('#panel').isHidden()) await page.locator('#members-toggle').click();
}
export const v2 = (page) => page.locator('#create-roles-row').isVisible();

// launch starts Debian's chromium (never a downloaded browser) with a
// fresh profile, runs fn(ctx) and cleans up.
export async function withBrowser(fn) {
  const profile = cfg.profile;
  rmSync(profile, { recursive: true, force: true });
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: cfg.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    viewport: DESKTOP,
  });
  try {
    await fn(ctx);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// finish exits 0 only if fn succeeded and no console error was seen.
export function finish(p) {
  p.then(() => {
    if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
    process.exit(0);
  }, (e) => {
    console.error(String((e && e.stack) || e));
    if (problems.length) console.error(problems.join('\n'));
    process.exit(1);
  });
}
