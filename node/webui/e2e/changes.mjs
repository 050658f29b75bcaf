// Queued state changes and devices, in Debian's chromium against real
// processes (started by ../e2e_changes_test.go, which stops and starts
// them on "@@ctl stop|start NAME"): a removal and a role change made
// while the relay is down show as pending in the Members view, survive a
// reload, and clear when they land or show as failed with the reason;
// then alice's devices, a link code, a second device linked with it, and
// that device revoked.

import {
  T, allowed, cfg, ctl, down, membersOpen, openChannel, openPages, removed, shot, step, uid, watch, withBrowser, finish,
} from './lib.mjs';

const pages = {};

async function run(ctx) {
  let uids = {};
  await step('three pages load', async () => {
    uids = await openPages(ctx, pages, ['alice', 'bob', 'carol'],
      (page) => page.locator('#relay', { hasText: 'reachable' }).waitFor({ timeout: T }));
  });
  const { alice, carol } = pages;

  await step('alice creates a channel with roles; bob and carol join', async () => {
    await alice.locator('#create-name').fill('team');
    await alice.locator('#create-form button[type=submit]').click();
    await alice.locator('#ch-name', { hasText: 'team' }).waitFor({ timeout: T });
    for (const who of ['bob', 'carol']) {
      await membersOpen(alice);
      await alice.locator('#invite-uid').fill(uids[who]);
      await alice.locator('#invite-form button[type=submit]').click();
      await alice.locator('#invite-status', { hasText: /Invit/ }).waitFor({ timeout: T });
      const page = pages[who];
      await page.locator('#inv-list button', { hasText: 'Accept' }).first().click({ timeout: T });
      await openChannel(page, 'team');
      await alice.locator(`#member-list li[data-uid="${uids[who]}"]`).waitFor({ timeout: T });
    }
  });

  const row = (p, who) => p.locator(`#member-list li[data-uid="${uids[who]}"]`);
  await step('relay down: a removal and a role change queue and show as pending', async () => {
    down.add('relay');
    await ctl('stop', 'relay');
    await alice.locator('#relay', { hasText: 'unreachable' }).waitFor({ timeout: T });
    await membersOpen(alice);
    await row(alice, 'carol').locator('button', { hasText: 'Remove' }).click();
    await row(alice, 'carol').locator('button', { hasText: 'Confirm remove' }).click();
    await row(alice, 'carol').locator('[data-pending="remove"]', { hasText: 'removal pending' }).waitFor({ timeout: T });
    await row(alice, 'carol').locator('.pending-note', { hasText: 'removal pending — will be sent when the relay is reachable' })
      .waitFor({ timeout: T });
    if (await row(alice, 'carol').locator('button', { hasText: 'Remove' }).count()) throw new Error('Remove offered again while the removal is pending');
    // Queued behind the removal: once carol is out it cannot be carried out.
    await row(alice, 'carol').locator('button', { hasText: 'Make admin' }).click();
    await row(alice, 'carol').locator('[data-pending="role"]', { hasText: 'admin pending' }).waitFor({ timeout: T });
    if ((await alice.locator('#members-error').textContent()).trim()) throw new Error('a queued change showed an error');
    await shot(alice, 'desktop-change-pending');
  });

  await step('the pending changes come from the node: they survive a reload', async () => {
    await alice.reload();
    await alice.locator('#ch-name', { hasText: 'team' }).waitFor({ timeout: T });
    await membersOpen(alice);
    await row(alice, 'carol').locator('[data-pending="remove"]').waitFor({ timeout: T });
    await row(alice, 'carol').locator('[data-pending="role"]').waitFor({ timeout: T });
  });

  await step('relay back: the removal lands, the role change fails with the reason', async () => {
    removed.add('carol');
    await ctl('start', 'relay');
    await row(alice, 'carol').waitFor({ state: 'detached', timeout: 60_000 });
    await carol.locator('#removed-note', { hasText: 'removed' }).waitFor({ timeout: T });
    const failed = alice.locator('#change-list li[data-op="role"][data-status="failed"]');
    await failed.waitFor({ timeout: T });
    const reason = (await failed.locator('.reason').textContent()).trim();
    console.log(`the page says: ${reason}`);
    if (!/^Refused: .{4,}/.test(reason)) throw new Error(`no reason shown for the failed change: "${reason}"`);
    if (await alice.locator('#change-list li[data-status="queued"]').count()) throw new Error('a landed change still shows as pending');
    await alice.locator('#relay', { hasText: 'reachable' }).waitFor({ timeout: T });
    down.delete('relay');
    await shot(alice, 'desktop-change-failed');
    await failed.locator('button', { hasText: 'Dismiss' }).click();
    await alice.locator('#changes').waitFor({ state: 'hidden', timeout: T });
  });

  await devices(ctx, alice, uids.alice);
}

async function devices(ctx, alice, aliceUid) {
  await step('devices: alice sees her one device (listed again after the relay was down)', async () => {
    await alice.locator('#devices').waitFor({ timeout: T });
    await alice.locator('#device-list li').first().waitFor({ timeout: T });
    const n = await alice.locator('#device-list li').count();
    if (n !== 1) throw new Error(`${n} devices listed, want 1`);
    await alice.locator('#device-list li', { hasText: 'this device' }).waitFor({ timeout: T });
  });
  let code = '';
  await step('devices: alice draws a link code', async () => {
    await alice.locator('#link-start').click();
    await alice.locator('#link-code .big-code').waitFor({ timeout: T });
    code = (await alice.locator('#link-code .big-code').textContent()).trim();
    if (code.length < 6) throw new Error(`link code "${code}"`);
    await alice.locator('#link-status', { hasText: 'Waiting for the new device' }).waitFor({ timeout: T });
    await shot(alice, 'desktop-devices-offer');
  });
  await step('devices: the new device types the code; both pages show the result', async () => {
    const phone = await ctx.newPage();
    watch(phone, 'phone');
    allowed.add('phone:409'); // GET /v1/devices before linking: 409 not_linked, shown as such
    await phone.goto(cfg.nodes.phone);
    await phone.locator('#link-accept-form').waitFor({ timeout: T });
    await phone.locator('#devices', { hasText: 'not linked' }).waitFor({ timeout: T });
    await shot(phone, 'desktop-devices-accept');
    await phone.locator('#link-accept-code').fill(code);
    await phone.locator('#link-accept-form button[type=submit]').click();
    await phone.locator('#me-uid', { hasText: aliceUid }).waitFor({ timeout: 90_000 });
    await phone.locator('#link-accept-form').waitFor({ state: 'hidden', timeout: T });
    allowed.delete('phone:409');
    await alice.locator('#link-status', { hasText: 'Linked' }).waitFor({ timeout: 60_000 });
    await alice.locator('#device-list li').nth(1).waitFor({ timeout: T });
    await shot(alice, 'desktop-devices-linked');
    await phone.close();
  });
  await step('devices: alice revokes the new device; the list says so', async () => {
    const other = alice.locator('#device-list li', { hasNotText: 'this device' });
    const id = await other.getAttribute('data-device');
    await other.locator('button', { hasText: 'Revoke' }).click();
    await other.locator('button', { hasText: 'Confirm revoke' }).click();
    await alice.locator('#link-status', { hasText: `Revoked device ${id}` }).waitFor({ timeout: 60_000 });
    await alice.locator(`#device-list li[data-device="${id}"]`, { hasText: '(revoked)' }).waitFor({ timeout: T });
    if (await alice.locator(`#device-list li[data-device="${id}"] button`).count()) throw new Error('Revoke still offered on a revoked device');
  });
}

finish(withBrowser(run));
