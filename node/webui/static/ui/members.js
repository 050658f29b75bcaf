// The members panel: who is in the open channel, their roles and
// fingerprints; promote, demote, remove; invite; safety numbers; and the
// state changes the node queued (relay away or busy) until they land or
// fail (GET /v1/channels/{id}/changes, refreshed on "delivery" events).

import { $, h, show, setText, shortId, groups, busy } from './dom.js';
import { enc, words } from './api.js';

const ROLE_WORDS = { admin: 'admin', member: 'member', read_only: 'read-only', 'read-only': 'read-only' };

function normRole(r) { return r === 'read-only' || r === 'readonly' ? 'read_only' : (r || ''); }

// group merges leaves (today's shape: one entry per device) into users.
function group(raw) {
  const by = new Map();
  for (const m of raw) {
    const key = m.user_id || m.display_name || String(m.leaf_index);
    const u = by.get(key) || { uid: m.user_id || '', name: m.display_name || '', role: normRole(m.role),
      fingerprint: m.fingerprint || '', verified: !!m.verified, unverified: !!m.unverified, devices: [] };
    if (m.devices) u.devices.push(...m.devices);
    else u.devices.push({ leaf_index: m.leaf_index });
    by.set(key, u);
  }
  return [...by.values()];
}

export async function refresh(app, id) {
  const ch = app.channels.get(id);
  if (!ch || (ch.state && ch.state !== 'active')) {
    app.members = [];
    app.changes = [];
    render(app);
    return;
  }
  const r = await app.api.get(`/v1/channels/${enc(id)}/members`);
  const changes = await fetchChanges(app, id);
  if (id !== app.current) return;
  app.changes = changes;
  app.members = group(r.members || []);
  for (const m of app.members) if (m.uid && m.name) app.names.set(m.uid, m.name);
  const mine = app.members.find((m) => app.me && m.uid === app.me.user_id);
  app.myRole = mine ? mine.role : '';
  render(app);
}

// --- queued state changes ---------------------------------------------

const FAILED_SHOWN_MS = 24 * 3600 * 1000; // older failures are history
const DISMISSED_KEY = 'spacepanda.dismissed-changes';
const dismissed = new Set(JSON.parse(sessionStorage.getItem(DISMISSED_KEY) || '[]'));

// fetchChanges is the channel's queued changes and its recent failures
// ([] where the node has no such route: no relay, or an older node).
async function fetchChanges(app, id) {
  if (!app.relay.mode || app.caps.changes === false) return [];
  try {
    const r = await app.api.get(`/v1/channels/${enc(id)}/changes`);
    app.caps.changes = true;
    const now = Date.now();
    return (r.changes || []).filter((c) => c.status === 'queued'
      || (c.status === 'failed' && !dismissed.has(c.id) && now - Date.parse(c.done_at || c.queued_at) < FAILED_SHOWN_MS));
  } catch (e) {
    if (e.unsupported) { app.caps.changes = false; return []; }
    throw e;
  }
}

const PENDING_WORDS = { remove: 'removal', role: 'role change', invite: 'invitation', update: 'key rotation' };

// changeWords says what a change does, for a person.
function changeWords(app, c) {
  const who = c.user_id ? (app.names.get(c.user_id) || shortId(c.user_id)) : '';
  switch (c.op) {
    case 'remove': return `Removal of ${who}`;
    case 'role': return `Making ${who} ${ROLE_WORDS[normRole(c.role)] || c.role}`;
    case 'invite': return `Invitation of ${who}`;
    case 'update': return 'Rotating your keys';
    default: return `Change ${c.op}`;
  }
}

// reason is the node's one-line refusal with user ids as names and long
// hex ids (a group's) shortened: it is for a person.
function reason(app, err) {
  if (!err) return 'no reason given';
  return err.replace(/"?(sp1[a-z0-9]{20,})"?/g, (_, u) => app.names.get(u) || shortId(u))
    .replace(/ in [0-9a-f]{16,}$/, ' in this channel').replace(/\b[0-9a-f]{24,}\b/g, (x) => x.slice(0, 8) + '…');
}

const WHEN_RELAY = 'will be sent when the relay is reachable';

// pendingFor is the queued changes that concern member uid.
function pendingFor(app, uid) { return (app.changes || []).filter((c) => c.status === 'queued' && c.user_id === uid); }

function changeItem(app, c) {
  const failed = c.status === 'failed';
  const li = h('li', { 'data-change': c.id, 'data-op': c.op, 'data-status': c.status, class: failed ? 'failed' : 'queued' },
    h('div', { class: 'row' },
      h('span', { class: 'badge ' + (failed ? 'failed' : 'queued') }, failed ? 'failed' : 'pending'),
      h('strong', {}, changeWords(app, c))),
    failed
      ? h('div', { class: 'reason' }, 'Refused: ', reason(app, c.error))
      : h('div', { class: 'muted' }, `${PENDING_WORDS[c.op] || 'change'} pending — ${WHEN_RELAY}`));
  if (failed) {
    const b = h('button', { type: 'button', class: 'small secondary', 'aria-label': `Dismiss: ${changeWords(app, c)} failed` }, 'Dismiss');
    b.addEventListener('click', () => {
      dismissed.add(c.id);
      sessionStorage.setItem(DISMISSED_KEY, JSON.stringify([...dismissed]));
      app.changes = app.changes.filter((x) => x.id !== c.id);
      render(app);
    });
    li.append(h('div', { class: 'actions' }, b));
  }
  return li;
}

function hasRoles(app) {
  const ch = app.channels.get(app.current);
  if (ch && typeof ch.roles === 'boolean') return ch.roles;
  return app.members.some((m) => m.role);
}

// rolesEditable: today's relay mode does not deliver role commits through
// the relay (the contract's node does), so the buttons wait for it.
function rolesEditable(app) { return app.caps.v2 || !app.relay.mode; }

async function act(app, button, fn) {
  setText('members-error', '');
  try {
    const r = await busy(button, fn);
    if (r && r.data && r.data.status === 'queued' && r.data.id && !(app.changes || []).some((c) => c.id === r.data.id)) {
      // Shown at once; the node's list (refreshed below) has the details.
      app.changes = [...(app.changes || []), { id: r.data.id, status: 'queued', ...r.change }];
      render(app);
    }
    app.refresh('current', 'channels');
  } catch (e) {
    setText('members-error', words(e));
  }
}

function memberItem(app, m) {
  const me = app.me && m.uid === app.me.user_id;
  const ch = app.channels.get(app.current);
  const active = !ch.state || ch.state === 'active';
  const roles = hasRoles(app);
  const admin = app.myRole === 'admin';
  const label = (m.name || shortId(m.uid)) + (me ? ' (you)' : '');
  const base = `/v1/channels/${enc(app.current)}/members/${enc(m.uid)}`;
  const actions = h('div', { class: 'actions' });
  const pending = m.uid ? pendingFor(app, m.uid) : [];
  const removing = pending.some((c) => c.op === 'remove');
  if (!me && active && m.uid) {
    if (roles && admin && rolesEditable(app) && !pending.some((c) => c.op === 'role')) {
      const to = m.role === 'admin' ? 'member' : 'admin';
      const b = h('button', { type: 'button', class: 'small secondary', 'aria-label': `${to === 'admin' ? 'Make admin' : 'Make member'}: ${label}` },
        to === 'admin' ? 'Make admin' : 'Make member');
      b.addEventListener('click', () => act(app, b, () => app.api.put(`${base}/role`, { role: to })
        .then((r) => ({ ...r, change: { op: 'role', user_id: m.uid, role: to } }))));
      actions.append(b);
    }
    if ((!roles || admin) && !removing) {
      const b = h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${label}` }, 'Remove');
      let armed = null;
      b.addEventListener('click', () => {
        if (!armed) {
          b.textContent = 'Confirm remove';
          armed = setTimeout(() => { armed = null; b.textContent = 'Remove'; }, 6000);
          return;
        }
        clearTimeout(armed);
        armed = null;
        act(app, b, () => app.api.del(base).then((r) => ({ ...r, change: { op: 'remove', user_id: m.uid } })));
      });
      actions.append(b);
    }
    if (app.caps.contacts && !m.unverified) {
      const b = h('button', { type: 'button', class: 'small secondary', 'aria-label': `Safety number with ${label}` }, 'Safety number');
      b.addEventListener('click', () => openSafety(app, m.uid, m.name));
      actions.append(b);
    }
  }
  const c = app.contacts.get(m.uid);
  return h('li', { 'data-uid': m.uid },
    h('div', { class: 'row' },
      h('strong', { title: m.uid }, label),
      m.role ? h('span', { class: 'badge' + (m.role === 'admin' ? ' admin' : ''), 'data-role': m.role }, ROLE_WORDS[m.role] || m.role) : null,
      (c ? c.verified && !c.key_changed : m.verified) ? h('span', { class: 'badge verified' }, 'verified') : null,
      c && c.key_changed ? h('span', { class: 'badge removed' }, 'key changed') : null,
      m.unverified ? h('span', { class: 'badge' }, 'unverified (plain client)') : null,
      pending.map((c) => h('span', { class: 'badge queued', 'data-pending': c.op },
        c.op === 'role' ? `${ROLE_WORDS[normRole(c.role)] || c.role} pending` : `${PENDING_WORDS[c.op] || c.op} pending`))),
    pending.map((c) => h('div', { class: 'pending-note', role: 'status' },
      `${PENDING_WORDS[c.op] || 'change'} pending — ${WHEN_RELAY}`)),
    m.uid ? h('div', { class: 'uid' }, m.uid) : null,
    m.fingerprint ? h('div', { class: 'fp digits' }, 'Fingerprint ', groups(m.fingerprint)) : null,
    h('div', { class: 'muted' }, m.devices.length === 1 ? '1 device' : `${m.devices.length} devices`),
    actions);
}

export function render(app) {
  const list = $('member-list');
  const ch = app.channels.get(app.current);
  // Re-render only on a change: a poll must not take focus (or a half
  // confirmed "Remove") away from the person.
  const sig = JSON.stringify([app.current, ch && ch.state, app.myRole, app.members, app.caps, app.relay.mode,
    [...app.contacts.values()], app.me && app.me.user_id, app.changes]);
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  list.replaceChildren(...app.members.map((m) => memberItem(app, m)));
  // A change about a listed member shows on its row; the others (an
  // invitation, a key rotation) and every failure show here.
  const listed = new Set(app.members.map((m) => m.uid));
  const changes = (app.changes || []).filter((c) => c.status === 'failed' || !listed.has(c.user_id));
  $('change-list').replaceChildren(...changes.map((c) => changeItem(app, c)));
  show($('changes'), changes.length > 0);
  const active = ch && (!ch.state || ch.state === 'active');
  const canInvite = active && (!hasRoles(app) || app.myRole === 'admin');
  show($('invite-form'), !!canInvite);
  const relay = app.relay.mode;
  for (const [id, on] of [['invite-uid', relay], ['invite-uid-label', relay], ['invite-kp', !relay], ['invite-kp-label', !relay]]) show($(id), on);
  const role = hasRoles(app) && rolesEditable(app);
  show($('invite-role'), role);
  show($('invite-role-label'), role);
}

export function init(app) {
  $('invite-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = ev.submitter || $('invite-form').querySelector('button');
    setText('invite-error', '');
    setText('invite-status', '');
    show($('invite-out'), false);
    show($('invite-out-label'), false);
    const body = {};
    if (app.relay.mode) {
      body.user_id = $('invite-uid').value.trim();
      if (!body.user_id) { setText('invite-error', 'Paste their user id (it starts with sp1).'); return; }
    } else {
      body.key_package = $('invite-kp').value.replace(/\s+/g, '');
      if (!body.key_package) { setText('invite-error', 'Paste the key package they gave you.'); return; }
    }
    if (!$('invite-role').hidden && $('invite-role').value !== 'member') body.role = $('invite-role').value;
    try {
      const r = await busy(btn, () => app.api.post(`/v1/channels/${enc(app.current)}/invites`, body));
      const d = r.data;
      $('invite-uid').value = '';
      $('invite-kp').value = '';
      if (d.invite && !app.relay.mode) {
        $('invite-out').value = d.invite;
        show($('invite-out'), true);
        show($('invite-out-label'), true);
      }
      setText('invite-status', d.status === 'queued'
        ? 'Invitation queued: it goes out when the relay is reachable.'
        : (app.relay.mode ? 'Invited. They join when their node picks up the invitation.' : 'Invited. Give them the invite code below.'));
      app.refresh('current', 'channels');
    } catch (e) {
      setText('invite-error', words(e));
    }
  });
  $('verify-btn').addEventListener('click', async () => {
    const uid = $('safety').dataset.uid;
    setText('safety-error', '');
    try {
      await busy($('verify-btn'), () => app.api.put(`/v1/contacts/${enc(uid)}`, { verified: true }));
      await openSafety(app, uid, $('safety').dataset.name);
      app.refresh('contacts', 'current');
    } catch (e) {
      setText('safety-error', words(e));
    }
  });
  $('safety-close').addEventListener('click', () => show($('safety'), false));
}

// openSafety shows the safety number with a user (adding them as a
// contact first if the node does not know them yet).
export async function openSafety(app, uid, name) {
  const box = $('safety');
  box.dataset.uid = uid;
  box.dataset.name = name || '';
  setText('safety-h', `Safety number with ${name || shortId(uid)}`);
  setText('safety-error', '');
  setText('safety-number', '…');
  setText('safety-state', '');
  show(box, true);
  show($('panel'), true);
  const path = `/v1/contacts/${enc(uid)}/safety-number`;
  try {
    // A user the node does not know as a contact yet is added first
    // (PUT without "verified" changes nothing for a known one).
    if (!app.contacts.has(uid)) await app.api.put(`/v1/contacts/${enc(uid)}`, {});
    const sn = await app.api.get(path);
    setText('safety-number', groups(sn.safety_number));
    const c = app.contacts.get(uid);
    setText('safety-state', c && c.key_changed ? 'Their key changed since you verified them. Compare again before you trust them.'
      : sn.verified ? 'Verified: you compared these digits.' : 'Not verified yet.');
    show($('verify-btn'), !sn.verified || !!(c && c.key_changed));
  } catch (e) {
    setText('safety-number', '');
    setText('safety-error', words(e));
  }
  $('safety-number').focus?.();
}
