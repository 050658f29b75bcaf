// The timeline of the open channel: history read forward by sequence
// number, kept per channel, rendered a page at a time ("Show earlier
// messages"), own messages with their delivery state.

import { $, h, show, fmtTime, shortId } from './dom.js';
import { enc } from './api.js';

const PAGE = 50;
const FETCH = 500;

const stores = new Map(); // channel id -> store

function get(id) {
  if (!stores.has(id)) stores.set(id, { msgs: new Map(), lastSeq: 0, hasSeq: null, shown: PAGE, local: new Map(), order: 0, failed: [] });
  return stores.get(id);
}

// norm accepts today's shape (sender a string, timestamp) and the
// contract's (sender an object, sent_at, status).
function norm(m, st) {
  const s = m.sender;
  const obj = s && typeof s === 'object';
  return {
    id: m.message_id, seq: typeof m.seq === 'number' ? m.seq : null,
    uid: obj ? s.user_id : s, name: obj ? s.display_name : '', verified: obj ? !!s.verified : false,
    text: m.text == null ? '' : String(m.text), replyTo: m.reply_to || '',
    at: m.sent_at || m.timestamp || '', status: m.status || st.local.get(m.message_id) || '',
  };
}

function merge(st, raw, me) {
  const m = norm(raw, st);
  if (!m.id) return;
  const old = st.msgs.get(m.id);
  if (!old && !m.status && m.uid === me) claimFailed(st, m);
  m.order = old ? old.order : st.order++;
  st.msgs.set(m.id, m);
  if (m.seq !== null) st.lastSeq = Math.max(st.lastSeq, m.seq);
  if (st.hasSeq === null) st.hasSeq = m.seq !== null;
}

function ordered(st) {
  return [...st.msgs.values()].sort((a, b) => (a.seq !== null && b.seq !== null ? a.seq - b.seq : a.order - b.order));
}

// refresh reads what is new since the last sequence number (and again
// from the oldest own message still queued, to see it become sent).
export async function refresh(app, id) {
  const st = get(id);
  let after = st.hasSeq ? st.lastSeq : 0;
  for (const m of st.msgs.values()) {
    if (m.status === 'queued' && m.seq !== null) after = Math.min(after, m.seq - 1);
  }
  for (let page = 0; page < 40; page++) {
    const q = st.hasSeq === false ? `limit=10000` : `after=${after}&limit=${FETCH}`;
    const r = await app.api.get(`/v1/channels/${enc(id)}/messages?${q}`);
    const ms = r.messages || [];
    for (const m of ms) merge(st, m, app.me && app.me.user_id);
    if (st.hasSeq === false || ms.length < FETCH) break;
    const next = 'next' in r ? r.next : ms[ms.length - 1].seq;
    if (next == null || next <= after) break;
    after = next;
  }
  if (id === app.current) render(app, id);
}

export function showEarlier(app) {
  const st = get(app.current);
  st.shown += PAGE;
  render(app, app.current);
}

// noteSent records the delivery state a send answered with.
export function noteSent(app, id, messageId, status) {
  const st = get(id);
  st.local.set(messageId, status);
  const m = st.msgs.get(messageId);
  if (m) m.status = status;
}

// claimFailed marks m as not delivered if a send of its text failed
// (today's node keeps such a message in its history without saying so).
function claimFailed(st, m) {
  const i = st.failed.indexOf(m.text);
  if (i < 0) return false;
  st.failed.splice(i, 1);
  st.local.set(m.id, 'failed');
  m.status = 'failed';
  return true;
}

export function noteFailed(app, id, text) {
  const st = get(id);
  st.failed.push(text);
  const me = app.me && app.me.user_id;
  const own = ordered(st).filter((m) => m.uid === me && !m.status && m.text === text);
  if (own.length) claimFailed(st, own[own.length - 1]);
}

export function delivery(app, id, messageId, status) {
  if (!id || !messageId || !status) return;
  noteSent(app, id, messageId, status);
  if (id === app.current) render(app, id);
}

export function find(id, messageId) { return get(id).msgs.get(messageId); }

const STATUS = { queued: 'Queued: sends when the relay is back', sent: 'Sent', sending: 'Sending…', failed: 'Not delivered' };

function senderName(app, m) {
  if (app.me && m.uid === app.me.user_id) return 'You';
  return m.name || app.names.get(m.uid) || shortId(m.uid);
}

function statusEl(m, mine) {
  if (!mine || !m.status) return h('span', { class: 'status' });
  return h('span', { class: 'status badge' + (m.status === 'queued' ? ' queued' : m.status === 'failed' ? ' failed' : ''), 'data-status': m.status }, STATUS[m.status] || m.status);
}

function node(app, st, m) {
  const mine = app.me && m.uid === app.me.user_id;
  const who = senderName(app, m);
  const li = h('li', { class: 'msg' + (mine ? ' mine' : ''), 'data-id': m.id });
  const meta = h('div', { class: 'meta' },
    h('span', { class: 'who', title: m.uid || '' }, who),
    m.verified ? h('span', { class: 'badge verified' }, 'verified') : null,
    h('time', { datetime: m.at, title: m.at }, fmtTime(m.at)),
    statusEl(m, mine),
    h('button', { type: 'button', class: 'link', 'aria-label': `Reply to ${who}`, onclick: () => app.startReply(m) }, 'Reply'));
  li.append(meta);
  if (m.replyTo) {
    const q = st.msgs.get(m.replyTo);
    li.append(h('div', { class: 'quote' }, q ? `${senderName(app, q)}: ${q.text.slice(0, 120)}` : 'In reply to an earlier message'));
  }
  li.append(h('div', { class: 'text' }, m.text));
  return li;
}

export function render(app, id) {
  const ol = $('timeline');
  const st = get(id);
  const all = ordered(st);
  const vis = all.slice(Math.max(0, all.length - st.shown));
  show($('older-btn'), all.length > vis.length);
  const fresh = ol.dataset.channel !== id;
  const atBottom = fresh || ol.scrollHeight - ol.scrollTop - ol.clientHeight < 60;
  const have = [...ol.children].map((li) => li.dataset.id);
  const keep = !fresh && have.length <= vis.length && have.every((x, i) => x === vis[i].id);
  if (!keep) {
    ol.replaceChildren();
    ol.dataset.channel = id;
  }
  vis.forEach((m, i) => {
    const li = keep && i < have.length ? ol.children[i] : null;
    if (!li) { ol.append(node(app, st, m)); return; }
    const mine = app.me && m.uid === app.me.user_id;
    const old = li.querySelector('.status');
    if (old && (old.dataset.status || '') !== (m.status || '')) old.replaceWith(statusEl(m, mine));
  });
  if (atBottom) ol.scrollTop = ol.scrollHeight;
}
