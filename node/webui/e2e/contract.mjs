// Drives the page against a fake of the node API contract (../fake_test.go):
// the code paths today's node does not reach yet — the event stream,
// pending invitations, queued then sent messages, roles through the relay,
// safety numbers and the key-change warning, removal by someone, leaving.

import {
  T, PHONE, DESKTOP, cfg, membersOpen, openChannel, removed, seeMessage, send, shot, step, uid, watch, withBrowser, finish,
} from './lib.mjs';

async function fake(page, path, body) {
  const r = await page.request.post(new URL(path, page.url()).href, { data: body });
  if (!r.ok()) throw new Error(`${path}: ${r.status()}`);
}

async function run(ctx) {
  const alice = ctx.pages()[0] || await ctx.newPage();
  const bob = await ctx.newPage();
  watch(alice, 'alice');
  watch(bob, 'bob');
  const uids = {};
  await step('contract: identity with fingerprint and devices, live event stream', async () => {
    for (const [who, p] of [['alice', alice], ['bob', bob]]) {
      await p.goto(cfg.nodes[who]);
      await p.locator('#me-name', { hasText: who }).waitFor({ timeout: T });
      await p.locator('#me-fp', { hasText: /\d{5} \d{5}/ }).waitFor({ timeout: T });
      await p.locator('#device-list li', { hasText: 'this device' }).waitFor({ timeout: T });
      await p.locator('#conn', { hasText: 'live' }).waitFor({ timeout: T });
      await p.locator('#relay', { hasText: 'Relay reachable' }).waitFor({ timeout: T });
      uids[who] = await uid(p);
    }
    await alice.locator('#link-start').click();
    await alice.locator('#link-code', { hasText: '482-193' }).waitFor({ timeout: T });
  });
  await step('contract: create with roles, invite, the invitee accepts', async () => {
    await alice.locator('#create-roles-row').waitFor({ timeout: T });
    await alice.locator('#create-name').fill('team');
    await alice.locator('#create-name').press('Enter');
    await alice.locator('#ch-name', { hasText: 'team' }).waitFor({ timeout: T });
    await membersOpen(alice);
    await alice.locator('#invite-role').waitFor({ timeout: T });
    await alice.locator('#invite-uid').fill(uids.bob);
    await alice.locator('#invite-form button[type=submit]').click();
    await bob.locator('#inv-list li', { hasText: 'team' }).waitFor({ timeout: T });
    await bob.locator('#inv-list li', { hasText: 'from alice' }).waitFor({ timeout: T });
    await bob.setViewportSize(PHONE);
    await bob.locator('#nav-toggle').click();
    await shot(bob, 'phone-invitation');
    await bob.setViewportSize(DESKTOP);
    await bob.locator('#inv-list button', { hasText: 'Accept' }).click();
    await bob.locator('#ch-name', { hasText: 'team' }).waitFor({ timeout: T });
    await bob.locator('#invitations').waitFor({ state: 'hidden', timeout: T });
    await alice.locator(`#member-list li[data-uid="${uids.bob}"]`).waitFor({ timeout: T });
  });
  await step('contract: live messages from the stream, names, replies', async () => {
    await send(alice, 'hello bob');
    await seeMessage(bob, 'hello bob');
    await bob.locator('#timeline .msg .who', { hasText: 'alice' }).waitFor({ timeout: T });
    await bob.locator('#timeline .msg', { hasText: 'hello bob' }).locator('button', { hasText: 'Reply' }).click();
    await send(bob, 'hi alice');
    await alice.locator('#timeline .msg', { hasText: 'hi alice' }).locator('.quote', { hasText: 'hello bob' }).waitFor({ timeout: T });
  });
  await step('contract: history paging, 50 at a time', async () => {
    const id = await alice.locator('#channel-list button[aria-current="true"]').getAttribute('data-channel');
    for (let i = 0; i < 60; i++) {
      const r = await alice.request.post(new URL(`/v1/channels/${id}/messages`, alice.url()).href, { data: { text: `backlog ${i}` } });
      if (r.status() !== 202) throw new Error(`seeding: ${r.status()}`);
    }
    await seeMessage(bob, 'backlog 59');
    await bob.locator('#older-btn').waitFor({ timeout: T });
    if (await bob.locator('#timeline .msg .text', { hasText: 'hello bob' }).count()) throw new Error('the first page shows more than 50');
    await bob.locator('#older-btn').click();
    await seeMessage(bob, 'hello bob');
    await bob.locator('#older-btn').waitFor({ state: 'hidden', timeout: T });
  });
  await step('contract: relay down, own message queued, then sent', async () => {
    await fake(alice, '/fake/relay', { up: false });
    await alice.locator('#relay', { hasText: 'unreachable' }).waitFor({ timeout: T });
    await send(alice, 'while the relay is away');
    const mine = alice.locator('#timeline .msg.mine', { hasText: 'while the relay is away' });
    await mine.locator('[data-status="queued"]').waitFor({ timeout: T });
    await shot(alice, 'desktop-queued');
    await fake(alice, '/fake/relay', { up: true });
    await mine.locator('[data-status="sent"]').waitFor({ timeout: T });
    await seeMessage(bob, 'while the relay is away');
    await alice.locator('#relay', { hasText: 'Relay reachable' }).waitFor({ timeout: T });
  });
  await step('contract: promote through the relay, both pages see the role', async () => {
    const row = (p) => p.locator(`#member-list li[data-uid="${uids.bob}"]`);
    await row(alice).locator('button', { hasText: 'Make admin' }).click();
    await row(alice).locator('[data-role="admin"]').waitFor({ timeout: T });
    await membersOpen(bob);
    await row(bob).locator('[data-role="admin"]').waitFor({ timeout: T });
    await row(alice).locator('button', { hasText: 'Make member' }).click();
    await row(bob).locator('[data-role="member"]').waitFor({ timeout: T });
  });
  await step('contract: safety number, mark verified, loud warning on a key change', async () => {
    await alice.locator(`#member-list li[data-uid="${uids.bob}"] button`, { hasText: 'Safety number' }).click();
    await alice.locator('#safety-number', { hasText: /\d{5} \d{5}/ }).waitFor({ timeout: T });
    await alice.locator('#safety-state', { hasText: 'Not verified' }).waitFor({ timeout: T });
    await alice.locator('#verify-btn').click();
    await alice.locator('#safety-state', { hasText: 'Verified' }).waitFor({ timeout: T });
    await alice.locator(`#member-list li[data-uid="${uids.bob}"] .badge.verified`).waitFor({ timeout: T });
    await shot(alice, 'desktop-safety-number');
    await fake(alice, '/fake/keychange', { user_id: uids.bob });
    await alice.locator('#keywarn', { hasText: 'has changed' }).waitFor({ timeout: T });
    await shot(alice, 'desktop-key-changed');
    await alice.locator('#keywarn button', { hasText: 'Compare now' }).click();
    await alice.locator('#safety-state', { hasText: 'changed' }).waitFor({ timeout: T });
    await alice.locator('#verify-btn').click();
    await alice.locator('#keywarn').waitFor({ state: 'hidden', timeout: T });
  });
  await step('contract: self-update, removal by alice, bob\'s page says who removed him', async () => {
    const before = await alice.locator('#ch-epoch').textContent();
    await alice.locator('#update-btn').click();
    await alice.waitForFunction((b) => document.getElementById('ch-epoch').textContent !== b, before, { timeout: T });
    removed.add('bob');
    const row = alice.locator(`#member-list li[data-uid="${uids.bob}"]`);
    await row.locator('button', { hasText: 'Remove' }).click();
    await row.locator('button', { hasText: 'Confirm remove' }).click();
    await row.waitFor({ state: 'detached', timeout: T });
    await bob.locator('#removed-note', { hasText: 'removed from this channel by alice' }).waitFor({ timeout: T });
    await bob.locator('#send-text:disabled').waitFor({ timeout: T });
  });
  await step('contract: unread count on another channel, leave', async () => {
    await alice.locator('#create-name').fill('side');
    await alice.locator('#create-name').press('Enter');
    await alice.locator('#ch-name', { hasText: 'side' }).waitFor({ timeout: T });
    await membersOpen(alice);
    await alice.locator('#invite-uid').fill(uids.bob);
    await alice.locator('#invite-form button[type=submit]').click();
    await bob.locator('#inv-list button', { hasText: 'Accept' }).click({ timeout: T });
    await bob.locator('#ch-name', { hasText: 'side' }).waitFor({ timeout: T });
    await openChannel(bob, 'team');
    await send(alice, 'unread for bob');
    await bob.locator('#channel-list button', { hasText: 'side' }).locator('.unread', { hasText: '1' }).waitFor({ timeout: T });
    await openChannel(bob, 'side');
    await seeMessage(bob, 'unread for bob');
    await bob.locator('#leave-btn').click();
    await bob.locator('#removed-note', { hasText: 'You left' }).waitFor({ timeout: T });
    await bob.locator('#channel-list .badge', { hasText: 'left' }).waitFor({ timeout: T });
  });
}

finish(withBrowser(run));
