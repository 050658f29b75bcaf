// SpacePanda's web client: the page a person opens on their own node.
// It talks only to the node's API (same origin). Live updates come from
// the event stream when the node has one, else from polling every 2 s;
// routes the node lacks (404/405) hide their feature.

import { $, h, show, setText, shortId, busy } from './dom.js';
import { createApi, words, enc } from './api.js';
import { startEvents } from './events.js';
import * as timeline from './timeline.js';
import * as members from './members.js';
import * as me from './me.js';

const KNOWN_KEY = 'spacepanda.channels';
const CURRENT_KEY = 'spacepanda.current';
const POLL_MS = 2000;
const SAFETY_MS = 20000;

const app = {
  api: null,
  caps: { events: false, invitations: false, contacts: false, devices: false, v2: false },
  me: null,
  relay: { mode: false, url: '', reachable: null },
  channels: new Map(),
  known: JSON.parse(sessionStorage.getItem(KNOWN_KEY) || '{}'),
  current: null,
  members: [],
  changes: [], // the open channel's queued (and recently failed) state changes
  myRole: '',
  contacts: new Map(),
  names: new Map(),
  online: null,
  live: false,
  replyTo: null,
};

// --- token -----------------------------------------------------------

function askToken(rejected) {
  return new Promise((resolve) => {
    const dlg = $('token-dialog');
    setText('token-why', rejected
      ? 'That token was not accepted. Paste the token from the node\'s token file.'
      : 'Paste the token from the node\'s token file. It is kept for this browser tab only.');
    $('token-form').onsubmit = (ev) => {
      ev.preventDefault();
      const t = $('token-input').value.trim();
      if (!t) return;
      $('token-input').value = '';
      dlg.close();
      resolve(t);
    };
    if (!dlg.open) dlg.showModal();
    $('token-input').focus();
  });
}

// --- connection state --------------------------------------------------

function setOnline(on) {
  if (app.online === on) return;
  const was = app.online;
  app.online = on;
  const conn = $('conn');
  conn.textContent = on ? (app.live ? 'Connected, live' : 'Connected') : 'Reconnecting…';
  conn.className = 'pill ' + (on ? 'good' : 'bad');
  const b = $('banner');
  b.textContent = on ? '' : 'Cannot reach your node. It may be restarting; the page reconnects by itself.';
  show(b, !on);
  if (on && was === false) refresh('all');
}

function setLive(on) {
  app.live = on;
  if (app.online) $('conn').textContent = on ? 'Connected, live' : 'Connected';
}

app.setRelayReachable = (r) => {
  app.relay.reachable = r;
  renderRelay();
};

function renderRelay() {
  const el = $('relay');
  const r = app.relay;
  if (!r.mode) { el.textContent = 'No relay'; el.className = 'pill'; return; }
  el.title = r.url || '';
  el.textContent = r.reachable === false ? 'Relay unreachable' : r.reachable === true ? 'Relay reachable' : 'Relay in use';
  el.className = 'pill ' + (r.reachable === false ? 'bad' : r.reachable === true ? 'good' : '');
}

// --- refresh scheduling ------------------------------------------------

const pending = new Set();
let running = false;
let timer = null;

function refresh(...what) {
  for (const w of what) pending.add(w);
  if (!timer && !running) timer = setTimeout(run, 30);
}
app.refresh = refresh;

async function run() {
  timer = null;
  running = true;
  const what = new Set(pending);
  pending.clear();
  const all = what.has('all');
  try {
    if (all || what.has('identity')) await me.refresh(app);
    if (all || what.has('channels')) await refreshChannels();
    if ((all || what.has('invitations')) && app.caps.invitations) await refreshInvitations();
    if ((all || what.has('contacts')) && app.caps.contacts) await refreshContacts();
    if (all || what.has('current')) await refreshCurrent();
    setOnline(true);
  } catch (e) {
    if (e.status === 0) setOnline(false);
    else setText('channels-error', words(e));
  } finally {
    running = false;
    if (pending.size) timer = setTimeout(run, 30);
  }
}

function loop() {
  // Without the event stream (or while it is down) poll every 2 s; with
  // it, a slow safety refresh.
  const every = app.live && app.online ? SAFETY_MS : POLL_MS;
  setTimeout(() => { refresh('all'); loop(); }, every);
}

// --- channels ----------------------------------------------------------

function remember(list) {
  for (const c of list) app.known[c.channel_id] = c.name;
  sessionStorage.setItem(KNOWN_KEY, JSON.stringify(app.known));
}

async function refreshChannels() {
  let list;
  try {
    list = (await app.api.get('/v1/channels')).channels || [];
  } catch (e) {
    if (e.status === 0 || e.status !== 409) throw e;
    // Today's node answers 409 for the whole list once one channel's group
    // is gone (we were removed): ask channel by channel.
    list = [];
    for (const [id, name] of Object.entries(app.known)) {
      try {
        list.push(await app.api.get(`/v1/channels/${enc(id)}`));
      } catch (e2) {
        if (e2.status === 409) list.push({ channel_id: id, name, state: 'removed' });
        else if (e2.status !== 404) throw e2;
      }
    }
  }
  setText('channels-error', '');
  remember(list);
  const seen = new Set();
  for (const c of list) {
    const prev = app.channels.get(c.channel_id) || {};
    // A removal seen on today's node stays: its list cannot say so.
    const state = c.state || (prev.state === 'removed' ? 'removed' : 'active');
    app.channels.set(c.channel_id, { ...prev, ...c, state });
    seen.add(c.channel_id);
  }
  for (const id of [...app.channels.keys()]) if (!seen.has(id)) app.channels.delete(id);
  renderChannels();
}

const STATE_WORDS = { active: 'active', removed: 'removed', left: 'left' };

function renderChannels() {
  const ul = $('channel-list');
  const cs = [...app.channels.values()].sort((a, b) => a.name.localeCompare(b.name) || a.channel_id.localeCompare(b.channel_id));
  show($('channels-empty'), cs.length === 0);
  const sig = JSON.stringify([app.current, cs.map((c) => [c.channel_id, c.name, c.state, c.unread])]);
  if (ul.dataset.sig === sig) return;
  ul.dataset.sig = sig;
  ul.replaceChildren(...cs.map((c) => {
    const unread = c.channel_id === app.current ? 0 : c.unread || 0;
    const label = `${c.name}${c.state !== 'active' ? ', ' + STATE_WORDS[c.state] : ''}${unread ? `, ${unread} unread` : ''}`;
    return h('li', {},
      h('button', { type: 'button', 'aria-current': c.channel_id === app.current ? 'true' : 'false', 'aria-label': label,
        'data-channel': c.channel_id, onclick: () => select(c.channel_id) },
      h('span', { class: 'name' }, '# ' + c.name),
      c.state !== 'active' ? h('span', { class: 'badge ' + c.state }, STATE_WORDS[c.state] || c.state) : null,
      unread ? h('span', { class: 'unread' }, String(unread)) : null));
  }));
}

function select(id) {
  sessionStorage.setItem(CURRENT_KEY, id);
  if (app.current !== id) {
    app.current = id;
    app.members = [];
    app.changes = [];
    app.myRole = '';
    cancelReply();
    setText('ch-error', '');
    setText('send-error', '');
    setText('members-error', '');
    setText('invite-status', '');
    show($('invite-out'), false);
    show($('invite-out-label'), false);
    $('timeline').replaceChildren();
    delete $('timeline').dataset.channel;
  }
  $('sidebar').classList.remove('open');
  $('nav-toggle').setAttribute('aria-expanded', 'false');
  renderChannels();
  renderHeader();
  refresh('current');
  $('send-text').focus();
}

async function refreshCurrent() {
  const id = app.current;
  if (!id) return;
  const prev = app.channels.get(id) || {};
  let ch;
  try {
    ch = await app.api.get(`/v1/channels/${enc(id)}`);
    ch.state = ch.state || (prev.state === 'removed' ? 'removed' : 'active');
  } catch (e) {
    if (e.status === 409) ch = { ...prev, state: 'removed' };
    else if (e.status === 404) { app.channels.delete(id); app.current = null; renderChannels(); renderHeader(); return; }
    else throw e;
  }
  app.channels.set(id, { ...prev, ...ch });
  renderHeader();
  await timeline.refresh(app, id);
  try {
    await members.refresh(app, id);
    if (app.current === id) setText('members-error', '');
  } catch (e) {
    if (e.status === 0) throw e;
    if (e.status === 409) { app.channels.set(id, { ...app.channels.get(id), state: 'removed' }); renderHeader(); members.render(app); }
    else setText('members-error', words(e));
  }
}

function renderHeader() {
  const id = app.current;
  const ch = id && app.channels.get(id);
  show($('empty'), !ch);
  show($('channel'), !!ch);
  if (!ch) { show($('panel'), false); return; }
  setText('ch-name', '# ' + ch.name);
  const st = ch.state || 'active';
  const badge = $('ch-state');
  badge.textContent = STATE_WORDS[st] || st;
  badge.className = 'badge ' + st;
  setText('ch-epoch', typeof ch.epoch === 'number' ? `epoch ${ch.epoch}` : '');
  const active = st === 'active';
  const note = $('removed-note');
  if (st === 'removed') {
    const by = ch.removed_by ? ` by ${app.names.get(ch.removed_by) || shortId(ch.removed_by)}` : '';
    note.textContent = `You were removed from this channel${by}. You keep the history up to then; nothing new arrives and you cannot send.`;
  } else if (st === 'left') {
    note.textContent = 'You left this channel. Nothing new arrives and you cannot send.';
  }
  show(note, !active);
  $('send-text').disabled = !active;
  $('send-btn').disabled = !active;
  $('update-btn').disabled = !active;
  show($('leave-btn'), active && app.caps.v2);
  renderChannels();
}

// --- invitations and contacts -----------------------------------------

async function refreshInvitations() {
  const r = await app.api.get('/v1/invitations');
  const inv = r.invitations || [];
  show($('invitations'), inv.length > 0 || $('inv-error').textContent !== '');
  const sig = JSON.stringify(inv);
  if ($('inv-list').dataset.sig === sig) return;
  $('inv-list').dataset.sig = sig;
  $('inv-list').replaceChildren(...inv.map((i) => {
    const from = i.inviter ? (i.inviter.display_name || shortId(i.inviter.user_id)) : 'someone';
    const accept = h('button', { type: 'button', class: 'small', 'aria-label': `Accept invitation to ${i.channel_name}` }, 'Accept');
    const decline = h('button', { type: 'button', class: 'small secondary', 'aria-label': `Decline invitation to ${i.channel_name}` }, 'Decline');
    const base = `/v1/invitations/${enc(i.invitation_id)}`;
    accept.addEventListener('click', async () => {
      setText('inv-error', '');
      try {
        const res = await busy(accept, () => app.api.post(base + '/accept'));
        refresh('channels', 'invitations');
        if (res.data && res.data.channel_id) { app.channels.set(res.data.channel_id, { state: 'active', ...res.data }); select(res.data.channel_id); }
      } catch (e) { setText('inv-error', words(e)); }
    });
    decline.addEventListener('click', async () => {
      setText('inv-error', '');
      try { await busy(decline, () => app.api.post(base + '/decline')); refresh('invitations'); } catch (e) { setText('inv-error', words(e)); }
    });
    return h('li', { 'data-invitation': i.invitation_id },
      h('div', {}, h('strong', {}, '# ' + i.channel_name), ` from ${from}`),
      h('div', { class: 'actions' }, accept, ' ', decline));
  }));
}

async function refreshContacts() {
  const r = await app.api.get('/v1/contacts');
  app.contacts = new Map((r.contacts || []).map((c) => [c.user_id, c]));
  for (const c of app.contacts.values()) if (c.display_name) app.names.set(c.user_id, c.display_name);
  const changed = [...app.contacts.values()].filter((c) => c.key_changed);
  const w = $('keywarn');
  w.replaceChildren(...changed.map((c) => h('p', {},
    `Warning: the safety number with ${c.display_name || shortId(c.user_id)} has changed. Their identity key is not the one you verified: `
    + 'it may be a new device or someone else. Compare the safety number again before you trust them.',
    h('button', { type: 'button', class: 'small', onclick: () => members.openSafety(app, c.user_id, c.display_name) }, 'Compare now'))));
  show(w, changed.length > 0);
}

// --- composer ------------------------------------------------------------

app.startReply = (m) => {
  app.replyTo = m.id;
  setText('reply-to-text', `Replying to ${m.uid === (app.me && app.me.user_id) ? 'yourself' : (m.name || app.names.get(m.uid) || shortId(m.uid))}: ${m.text.slice(0, 80)}`);
  show($('reply-to'), true);
  $('send-text').focus();
};

function cancelReply() {
  app.replyTo = null;
  show($('reply-to'), false);
}

async function send(ev) {
  ev.preventDefault();
  const box = $('send-text');
  const text = box.value;
  if (!text.trim() || !app.current) return;
  const id = app.current;
  setText('send-error', '');
  const body = { text };
  if (app.replyTo) body.reply_to = app.replyTo;
  try {
    const r = await busy($('send-btn'), () => app.api.post(`/v1/channels/${enc(id)}/messages`, body));
    const status = r.data.status || 'sent';
    timeline.noteSent(app, id, r.data.message_id, status);
    if (app.relay.mode && !app.caps.v2) app.setRelayReachable(true);
    box.value = '';
    cancelReply();
    refresh('current', 'channels');
  } catch (e) {
    if (e.status === 0) { setText('send-error', words(e) + ' Your text is still in the box.'); return; }
    // Today's relay-mode node answers 502 relay_* (or 500 when it cannot
    // connect at all) and keeps the message in its history, undelivered.
    const legacyRelay = app.relay.mode && !app.caps.v2 && e.status >= 500;
    if ((e.code || '').startsWith('relay_') || e.status === 502 || e.status === 503 || legacyRelay) {
      app.setRelayReachable(false);
      setText('send-error', 'The relay could not be reached, so this message was not delivered. It stays in your history here.');
      timeline.noteFailed(app, id, text);
      box.value = '';
      cancelReply();
      refresh('current');
      return;
    }
    setText('send-error', words(e));
  }
}

// --- wiring ----------------------------------------------------------------

function wire() {
  $('send-form').addEventListener('submit', send);
  $('send-text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('send-form').requestSubmit();
    }
  });
  $('reply-cancel').addEventListener('click', () => { cancelReply(); $('send-text').focus(); });
  $('older-btn').addEventListener('click', () => timeline.showEarlier(app));
  $('members-toggle').addEventListener('click', () => {
    const open = $('panel').hidden;
    show($('panel'), open);
    $('members-toggle').setAttribute('aria-expanded', String(open));
    if (open) refresh('current');
  });
  $('nav-toggle').addEventListener('click', () => {
    const open = !$('sidebar').classList.contains('open');
    $('sidebar').classList.toggle('open', open);
    $('nav-toggle').setAttribute('aria-expanded', String(open));
  });
  $('update-btn').addEventListener('click', async () => {
    setText('ch-error', '');
    try {
      const r = await busy($('update-btn'), () => app.api.post(`/v1/channels/${enc(app.current)}/update`));
      setText('ch-error', '');
      if (typeof r.data.epoch === 'number') setText('ch-epoch', `epoch ${r.data.epoch}`);
      refresh('current');
    } catch (e) { setText('ch-error', words(e)); }
  });
  $('leave-btn').addEventListener('click', async () => {
    setText('ch-error', '');
    try {
      await busy($('leave-btn'), () => app.api.del(`/v1/channels/${enc(app.current)}/members/me`));
      refresh('current', 'channels');
    } catch (e) { setText('ch-error', words(e)); }
  });
  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setText('create-error', '');
    const name = $('create-name').value.trim();
    if (!name) { setText('create-error', 'Give the channel a name.'); return; }
    const body = { name };
    // Today's node refuses unknown fields: "roles" only where it is known.
    if (app.caps.v2) body.roles = $('create-roles').checked;
    try {
      const r = await busy(ev.submitter || $('create-form').querySelector('button'), () => app.api.post('/v1/channels', body));
      $('create-name').value = '';
      app.channels.set(r.data.channel_id, { state: 'active', ...r.data });
      remember([r.data]);
      select(r.data.channel_id);
      show($('panel'), true);
      $('members-toggle').setAttribute('aria-expanded', 'true');
    } catch (e) { setText('create-error', words(e)); }
  });
  $('kp-btn').addEventListener('click', async () => {
    setText('join-error', '');
    try {
      const r = await busy($('kp-btn'), () => app.api.post('/v1/key-packages', { count: 1 }));
      $('kp-out').value = (r.data.key_packages || [])[0] || '';
      show($('kp-out'), true);
      $('kp-out').select();
    } catch (e) { setText('join-error', words(e)); }
  });
  $('join-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setText('join-error', '');
    const invite = $('join-code').value.replace(/\s+/g, '');
    if (!invite) return;
    try {
      const r = await busy(ev.submitter || $('join-form').querySelector('button'), () => app.api.post('/v1/join', { invite }));
      $('join-code').value = '';
      app.channels.set(r.data.channel_id, { state: 'active', ...r.data });
      remember([r.data]);
      select(r.data.channel_id);
    } catch (e) { setText('join-error', words(e)); }
  });
  members.init(app);
  me.init(app);
}

function onEvent(type, data) {
  const ch = data && data.channel_id;
  switch (type) {
    case 'delivery':
      // A state change queued, sent or failed: the members panel shows it.
      if (data.kind !== 'change') timeline.delivery(app, ch, data.message_id, data.status);
      refresh('current');
      break;
    case 'invitation': refresh('invitations', 'channels'); break;
    case 'relay_status':
      if (typeof data.reachable === 'boolean') app.setRelayReachable(data.reachable);
      // What needed the relay (the devices list) loads again.
      if (data.reachable !== false) refresh('identity');
      break;
    default:
      refresh('channels');
      if (!ch || ch === app.current) refresh('current');
      if (type === 'membership' || type === 'role') refresh('contacts');
  }
}

async function main() {
  app.api = createApi({ askToken });
  wire();
  await me.refresh(app).catch(() => {});
  const [inv, contacts, devices] = await Promise.all(['/v1/invitations', '/v1/contacts', '/v1/devices'].map((p) => app.api.probe(p)));
  Object.assign(app.caps, { invitations: inv, contacts, devices });
  app.caps.v2 = inv || contacts;
  show($('direct'), !app.relay.mode);
  show($('create-roles-row'), app.caps.v2);
  startEvents(app.api, {
    onOpen: () => { app.caps.events = app.caps.v2 = true; show($("create-roles-row"), true); setLive(true); setOnline(true); refresh("all"); },
    onDown: () => setLive(false),
    onEvent,
    onUnsupported: () => setLive(false),
  });
  renderRelay();
  const last = sessionStorage.getItem(CURRENT_KEY);
  if (last && app.known[last]) {
    app.current = last;
    app.channels.set(last, { channel_id: last, name: app.known[last], state: 'active' });
  }
  refresh('all');
  loop();
}

main();
