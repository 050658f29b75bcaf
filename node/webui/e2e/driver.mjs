// Drives three SpacePanda pages (alice, bob, carol, each on their own
// node) in Debian's chromium through playwright-core. Started by
// ../e2e_test.go, which owns the processes: "@@ctl stop|start NAME" on
// stdout asks it to stop or start one and waits for "ok" on stdin.
// "@@ran STEP" / "@@skipped STEP: why" say what was covered. Any failed
// step or console error exits non-zero.

import {
  T, DESKTOP, PHONE, allowed, askedToken, cfg, ctl, down, membersOpen, msgText, openChannel, openPages, removed,
  seeMessage, send, shot, skipped, step, uid, v2, watch, withBrowser, finish,
} from './lib.mjs';

const pages = {};

async function run(ctx) {
  let uids = {};
  await step('three pages load, each shows its own identity', async () => {
    uids = await openPages(ctx, pages, ['alice', 'bob', 'carol'], async (page, who) => {
      await page.locator('#me-name', { hasText: who }).waitFor({ timeout: T });
      await page.locator('#relay', { hasText: 'Relay' }).waitFor({ timeout: T });
    });
  });
  const { alice, bob, carol } = pages;
  const contract = await v2(alice);
  console.log(`node API: ${contract ? 'the contract (events, invitations, contacts)' : "today's (polling every 2 s)"}`);

  await step('an error is shown in place, in words', async () => {
    await alice.locator('#create-form button[type=submit]').click();
    // the browser's own required-field check, or ours: the form does not submit
    await alice.locator('#create-name:invalid').waitFor({ timeout: T });
  });

  await step('alice creates a channel', async () => {
    await alice.locator('#create-name').fill('general');
    await alice.locator('#create-form button[type=submit]').click();
    await alice.locator('#ch-name', { hasText: 'general' }).waitFor({ timeout: T });
    await alice.locator('#ch-state', { hasText: 'active' }).waitFor({ timeout: T });
    await alice.locator('#ch-epoch', { hasText: 'epoch' }).waitFor({ timeout: T });
  });

  for (const who of ['bob', 'carol']) {
    await step(`alice invites ${who} by user id; ${who} joins`, async () => {
      await membersOpen(alice);
      await alice.locator('#invite-uid').fill(uids[who]);
      await alice.locator('#invite-form button[type=submit]').click();
      await alice.locator('#invite-status', { hasText: /Invit/ }).waitFor({ timeout: T });
      const page = pages[who];
      if (await page.locator('#create-roles-row').isVisible()) {
        // The contract's node: a pending invitation to accept.
        await page.locator('#inv-list button', { hasText: 'Accept' }).first().click({ timeout: T });
      }
      await openChannel(page, 'general');
      await alice.locator(`#member-list li[data-uid="${uids[who]}"]`).waitFor({ timeout: T });
    });
  }
  if (!contract) skipped('accept/decline a pending invitation', "today's node joins from the relay's queued Welcome at once (no /v1/invitations)");

  await step('chat: messages appear live on the other pages, replies, delivery state', async () => {
    await send(alice, 'hello from alice');
    await seeMessage(bob, 'hello from alice');
    await seeMessage(carol, 'hello from alice');
    await alice.locator('#timeline .msg.mine [data-status]').first().waitFor({ timeout: T });
    const m = bob.locator('#timeline .msg', { hasText: 'hello from alice' }).first();
    await m.locator('button', { hasText: 'Reply' }).click();
    await bob.locator('#reply-to', { hasText: 'hello from alice' }).waitFor({ timeout: T });
    await send(bob, 'hi alice, bob here');
    for (const p of [alice, carol]) {
      await seeMessage(p, 'hi alice, bob here');
      await p.locator('#timeline .msg', { hasText: 'hi alice, bob here' }).locator('.quote', { hasText: 'hello from alice' })
        .waitFor({ timeout: T });
    }
    await send(carol, 'carol says hi');
    await seeMessage(alice, 'carol says hi');
    await seeMessage(bob, 'carol says hi');
  });

  await step('rotate own keys (self-update) moves the epoch', async () => {
    const before = await alice.locator('#ch-epoch').textContent();
    await alice.locator('#update-btn').click();
    await alice.waitForFunction((b) => document.getElementById('ch-epoch').textContent !== b, before, { timeout: T });
    await alice.locator('#ch-error').filter({ hasText: /./ }).waitFor({ state: 'detached', timeout: 1000 }).catch(() => {});
    if ((await alice.locator('#ch-error').textContent()).trim()) throw new Error('update showed an error');
  });

  const bobRow = (p) => p.locator(`#member-list li[data-uid="${uids.bob}"]`);
  const promote = bobRow(alice).locator('button', { hasText: 'Make admin' });
  if (await promote.count()) {
    await step('alice promotes bob; both pages show him as admin', async () => {
      await promote.click();
      await bobRow(alice).locator('[data-role="admin"]').waitFor({ timeout: T });
      await membersOpen(bob);
      await bobRow(bob).locator('[data-role="admin"]').waitFor({ timeout: T });
    });
  } else {
    skipped('promote/demote', "today's relay mode does not deliver role commits through the relay; the page hides the buttons");
  }

  await step('alice removes carol; carol\'s page says so and shows nothing new', async () => {
    const row = alice.locator(`#member-list li[data-uid="${uids.carol}"]`);
    await row.locator('button', { hasText: 'Remove' }).click();
    removed.add('carol');
    await row.locator('button', { hasText: 'Confirm remove' }).click();
    await row.waitFor({ state: 'detached', timeout: T });
    await carol.locator('#removed-note', { hasText: 'removed' }).waitFor({ timeout: T });
    await carol.locator('#send-text:disabled').waitFor({ timeout: T });
    await carol.locator('#channel-list .badge', { hasText: 'removed' }).waitFor({ timeout: T });
    await send(alice, 'for bob only');
    await seeMessage(bob, 'for bob only');
    // A poll round later carol's page still shows nothing new.
    await carol.waitForTimeout(2500);
    if (await msgText(carol, 'for bob only').count()) throw new Error('the removed page shows a message sent after the removal');
  });

  await step('screenshots (desktop)', async () => {
    await membersOpen(alice);
    await shot(alice, 'desktop-channel');
    await shot(carol, 'desktop-removed');
  });

  await step("bob's node restarts; his page reconnects", async () => {
    down.add('bob');
    await ctl('stop', 'bob');
    await bob.locator('#banner', { hasText: 'Cannot reach your node' }).waitFor({ timeout: T });
    await bob.locator('#conn', { hasText: 'Reconnecting' }).waitFor({ timeout: T });
    await shot(bob, 'desktop-reconnecting');
    await ctl('start', 'bob');
    await bob.locator('#banner').waitFor({ state: 'hidden', timeout: T });
    down.delete('bob');
    await send(alice, 'welcome back bob');
    await seeMessage(bob, 'welcome back bob');
    await send(bob, 'bob is back');
    await seeMessage(alice, 'bob is back');
  });

  await step('the relay goes down and comes back', async () => {
    down.add('relay');
    await ctl('stop', 'relay');
    await send(alice, 'sent while the relay is down');
    if (contract) {
      await alice.locator('#timeline .msg.mine', { hasText: 'sent while the relay is down' }).locator('[data-status="queued"]')
        .waitFor({ timeout: T });
      await shot(alice, 'desktop-queued');
      await ctl('start', 'relay');
      await alice.locator('#timeline .msg.mine', { hasText: 'sent while the relay is down' }).locator('[data-status="sent"]')
        .waitFor({ timeout: T });
      await seeMessage(bob, 'sent while the relay is down');
    } else {
      // Today's node cannot queue: the page says the message was not delivered.
      await alice.locator('#send-error', { hasText: 'relay could not be reached' }).waitFor({ timeout: T });
      await alice.locator('#relay', { hasText: 'unreachable' }).waitFor({ timeout: T });
      await alice.locator('#timeline .msg.mine', { hasText: 'sent while the relay is down' }).locator('[data-status="failed"]')
        .waitFor({ timeout: T });
      await shot(alice, 'desktop-relay-down');
      await ctl('start', 'relay');
      // A person sends again once the relay is back; the node's log
      // followers reconnect by themselves.
      const deadline = Date.now() + 60_000;
      for (let i = 0; ; i++) {
        await send(alice, `relay is back ${i}`);
        await alice.waitForFunction(() => document.getElementById('send-text').value === ''
          && !document.getElementById('send-btn').disabled, null, { timeout: T });
        const err = (await alice.locator('#send-error').textContent()).trim();
        if (!err) { await seeMessage(bob, `relay is back ${i}`); break; }
        if (Date.now() > deadline) throw new Error('sends keep failing after the relay came back: ' + err);
        await alice.waitForTimeout(1000);
      }
      await alice.locator('#relay', { hasText: 'reachable' }).waitFor({ timeout: T });
      skipped('own messages show queued, then sent', "today's node does not queue sends (it answers 500 while the relay is down)");
    }
    down.delete('relay');
  });

  await step('screenshots (phone width)', async () => {
    await alice.setViewportSize(PHONE);
    if (await alice.locator('#panel').isVisible()) await alice.locator('#members-toggle').click();
    await shot(alice, 'phone-channel');
    await alice.locator('#nav-toggle').click();
    await alice.locator('#sidebar.open').waitFor({ timeout: T });
    await shot(alice, 'phone-menu');
    await alice.locator('#nav-toggle').click();
    await alice.locator('#members-toggle').click();
    await alice.locator('#member-list').scrollIntoViewIfNeeded();
    await shot(alice, 'phone-members');
    await carol.setViewportSize(PHONE);
    await shot(carol, 'phone-removed');
    // Nothing wider than the phone: no horizontal scrolling.
    for (const p of [alice, carol]) {
      const w = await p.evaluate(() => document.documentElement.scrollWidth);
      if (w > PHONE.width) throw new Error(`the page is ${w}px wide at ${PHONE.width}px`);
    }
    await alice.setViewportSize(DESKTOP);
  });

  await direct(ctx);

  await step('keyboard: Tab reaches the skip link, Enter jumps to the message box, focus is visible', async () => {
    // A reload keeps the open channel (sessionStorage) and starts focus at the top.
    await alice.reload();
    await alice.locator('#ch-name', { hasText: 'general' }).waitFor({ timeout: T });
    await seeMessage(alice, 'bob is back');
    await alice.keyboard.press('Tab');
    const first = await alice.evaluate(() => document.activeElement.className);
    if (first !== 'skip') throw new Error(`first Tab stop is "${first}", want the skip link`);
    const outline = await alice.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    if (outline === 'none') throw new Error('no visible focus on the skip link');
    await alice.keyboard.press('Enter');
    await alice.waitForFunction(() => document.activeElement && document.activeElement.id === 'send-text', null, { timeout: T });
    await alice.keyboard.type('typed with the keyboard');
    await alice.keyboard.press('Enter');
    await seeMessage(bob, 'typed with the keyboard');
  });
}

// Without a relay: the token prompt (dave's node needs a bearer token),
// a key package and an invite code carried by hand, roles.
async function direct(ctx) {
  const dave = await ctx.newPage();
  const erin = await ctx.newPage();
  watch(dave, 'dave');
  watch(erin, 'erin');
  await step('a node with a token: the page asks once, keeps it for the tab', async () => {
    askedToken.add('dave');
    await dave.goto(cfg.nodes.dave);
    await dave.locator('#token-dialog[open]').waitFor({ timeout: T });
    await shot(dave, 'desktop-token');
    await dave.locator('#token-input').fill('not-the-token-at-all');
    await dave.locator('#token-input').press('Enter');
    await dave.locator('#token-why', { hasText: 'not accepted' }).waitFor({ timeout: T });
    await dave.locator('#token-input').fill(cfg.token);
    await dave.locator('#token-input').press('Enter');
    await dave.locator('#me-name', { hasText: 'dave' }).waitFor({ timeout: T });
    await dave.locator('#relay', { hasText: 'No relay' }).waitFor({ timeout: T });
    await dave.waitForTimeout(300); // requests sent with the wrong token have come back
    askedToken.delete('dave');
    await dave.reload();
    await dave.locator('#me-name', { hasText: 'dave' }).waitFor({ timeout: T });
    if (await dave.locator('#token-dialog[open]').count()) throw new Error('asked for the token again after a reload');
  });
  await step('without a relay: invite by key package, join by invite code', async () => {
    await erin.goto(cfg.nodes.erin);
    await erin.locator('#me-name', { hasText: 'erin' }).waitFor({ timeout: T });
    await erin.locator('#kp-btn').click();
    await erin.waitForFunction(() => document.getElementById('kp-out').value.length > 100, null, { timeout: T });
    const kp = await erin.locator('#kp-out').inputValue();
    await dave.locator('#create-name').fill('direct');
    await dave.locator('#create-name').press('Enter');
    await dave.locator('#ch-name', { hasText: 'direct' }).waitFor({ timeout: T });
    await membersOpen(dave);
    allowed.add('dave:400');
    await dave.locator('#invite-kp').fill('bm90IGEga2V5IHBhY2thZ2U=');
    await dave.locator('#invite-form button[type=submit]').click();
    await dave.locator('#invite-error', { hasText: 'copy it again' }).waitFor({ timeout: T });
    console.log(`the page says: ${await dave.locator('#invite-error').textContent()}`);
    await shot(dave, 'desktop-error');
    allowed.delete('dave:400');
    await dave.locator('#invite-kp').fill(kp);
    await dave.locator('#invite-form button[type=submit]').click();
    await dave.waitForFunction(() => document.getElementById('invite-out').value.length > 100, null, { timeout: T });
    if ((await dave.locator('#invite-error').textContent()).trim()) throw new Error('an old error stayed after a good invite');
    const code = await dave.locator('#invite-out').inputValue();
    await erin.locator('#join-code').fill(code);
    await erin.locator('#join-form button[type=submit]').click();
    await erin.locator('#ch-name', { hasText: 'direct' }).waitFor({ timeout: T });
    await erin.locator('#ch-state', { hasText: 'active' }).waitFor({ timeout: T });
  });
  await step('dave promotes erin to admin and demotes her again', async () => {
    const uidErin = await uid(erin);
    const row = dave.locator(`#member-list li[data-uid="${uidErin}"]`);
    await row.locator('button', { hasText: 'Make admin' }).click({ timeout: T });
    await row.locator('[data-role="admin"]').waitFor({ timeout: T });
    await row.locator('button', { hasText: 'Make member' }).click({ timeout: T });
    await row.locator('[data-role="member"]').waitFor({ timeout: T });
    await shot(dave, 'desktop-direct-members');
  });
  await dave.close();
  await erin.close();
}

finish(withBrowser(run));
