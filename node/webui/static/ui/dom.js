// Small DOM helpers. Text from the network only ever goes in as text
// (textContent), never as markup.

export const $ = (id) => document.getElementById(id);

// h builds an element: h('button', {class: 'x', onclick: f}, 'label', child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function show(el, on) { el.hidden = !on; }

export function setText(id, text) { $(id).textContent = text || ''; }

// shortId shortens a user id for display ("sp1abcd…wxyz"); the full id is
// always available in the title and the members list.
export function shortId(uid) {
  if (!uid) return 'unknown';
  return uid.length > 16 ? uid.slice(0, 8) + '…' + uid.slice(-4) : uid;
}

// groups splits digits into groups of five for reading aloud.
export function groups(digits) {
  return (digits || '').replace(/\s+/g, '').replace(/(.{5})(?=.)/g, '$1 ');
}

export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === now.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
}

// busy disables a button while the promise runs.
export async function busy(button, fn) {
  button.disabled = true;
  try { return await fn(); } finally { button.disabled = false; }
}
