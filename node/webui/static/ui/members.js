// The members panel: who is in the open channel, their roles and
// fingerprints; promote, demote, remove; invite; safety numbers.

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
    render(app);
    return;
  }
  const r = await app.api.get(`/v1/channels/${enc(id)}/members`);
  if (id !== app.current) return;
  app.members = group(r.members || []);
  for (const m of app.members) if (m.uid && m.name) app.names.set(m.uid, m.name);
  const mine = app.members.find((m) => app.me && m.uid === app.me.user_id);
  app.myRole = mine ? mine.role : '';
  render(app);
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
    await busy(button, fn);
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
  if (!me && active && m.uid) {
    if (roles && admin && rolesEditable(app)) {
      const to = m.role === 'admin' ? 'member' : 'admin';
      const b = h('button', { type: 'button', class: 'small secondary', 'aria-label': `${to === 'admin' ? 'Make admin' : 'Make member'}: ${label}` },
        to === 'admin' ? 'Make admin' : 'Make member');
      b.addEventListener('click', () => act(app, b, () => app.api.put(`${base}/role`, { role: to })));
      actions.append(b);
    }
    if (!roles || admin) {
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
        act(app, b, () => app.api.del(base));
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
      m.unverified ? h('span', { class: 'badge' }, 'unverified (plain client)') : null),
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
    [...app.contacts.values()], app.me && app.me.user_id]);
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  list.replaceChildren(...app.members.map((m) => memberItem(app, m)));
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
