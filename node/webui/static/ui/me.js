// "You": display name, user id, fingerprint, devices, device linking;
// and which relay the node uses.

import { $, h, show, setText, groups, busy, fmtTime } from './dom.js';
import { words } from './api.js';

let relayProbed = false;

export async function refresh(app) {
  const id = await app.api.get('/v1/identity');
  app.me = id;
  setText('me-name', id.display_name || id.name || '(no name)');
  setText('me-uid', id.user_id || '(none yet: link this device below)');
  show($('me-copy'), !!id.user_id);
  // An unlinked device has no identity key yet: the node's fingerprint
  // then is of no key (the same on every such device), not one to compare.
  const fp = id.user_id ? id.fingerprint || '' : '';
  setText('me-fp', groups(fp));
  show($('me-fp'), !!fp);
  show($('me-fp-t'), !!fp);
  setText('me-dev', id.device_id || '');
  show($('me-dev'), !!id.device_id);
  show($('me-dev-t'), !!id.device_id);
  if ('relay' in id) {
    // The contract's identity says where the relay is and if it answers.
    app.relay.mode = !!id.relay;
    app.relay.url = id.relay ? id.relay.url : '';
    // A device waiting to be linked has not talked to the relay yet: its
    // "not reachable" means "not tried".
    if (id.relay && typeof id.relay.reachable === 'boolean' && (id.user_id || id.relay.reachable)) app.setRelayReachable(id.relay.reachable);
    else app.setRelayReachable(null);
  } else if (!relayProbed) {
    // Today's node: GET /v1/relay exists only in relay mode.
    relayProbed = true;
    try {
      const st = await app.api.get('/v1/relay');
      app.relay.mode = true;
      app.relay.url = st.url || '';
    } catch (e) {
      if (e.status === 0) { relayProbed = false; throw e; }
      app.relay.mode = false;
    }
    app.setRelayReachable(app.relay.reachable);
  }
  if (app.caps.devices) await refreshDevices(app);
}

// The Devices card: this user's devices and linking. A device waiting to
// be linked (serve --link) answers 409 not_linked: it shows the form for
// the code instead of the list.
async function refreshDevices(app) {
  let r;
  try {
    r = await app.api.get('/v1/devices');
  } catch (e) {
    if (e.status === 0) throw e;
    const unlinked = e.code === 'not_linked';
    show($('devices'), true);
    show($('devices-unlinked'), unlinked);
    show($('link-accept-form'), unlinked);
    show($('link-start'), false);
    $('device-list').replaceChildren();
    delete $('device-list').dataset.sig; // drawn again once it loads
    if (!unlinked && !linking) { setText('link-error', words(e)); loadFailed = true; }
    return;
  }
  if (loadFailed) { setText('link-error', ''); loadFailed = false; }
  app.devices = r.devices || [];
  show($('devices'), true);
  show($('devices-unlinked'), false);
  show($('link-accept-form'), false);
  show($('link-start'), true);
  const sig = JSON.stringify(app.devices);
  if ($('device-list').dataset.sig !== sig) {
    $('device-list').dataset.sig = sig;
    $('device-list').replaceChildren(...app.devices.map((d) => h('li', { 'data-device': d.device_id },
      h('code', { class: 'uid' }, d.device_id), d.current ? ' (this device)' : '', d.revoked ? ' (revoked)' : '',
      !d.current && !d.revoked ? revokeButton(app, d.device_id) : null)));
  }
  if (offer) watchOffer(app);
}

// revokeButton revokes another device of the user (a lost phone), after
// a second click: the relay refuses it from then on and it is removed
// from every channel.
function revokeButton(app, id) {
  const b = h('button', { type: 'button', class: 'small danger', 'aria-label': `Revoke device ${id}` }, 'Revoke');
  let armed = null;
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = 'Confirm revoke';
      armed = setTimeout(() => { armed = null; b.textContent = 'Revoke'; }, 6000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    setText('link-error', '');
    try {
      const r = await busy(b, () => app.api.del(`/v1/devices/${encodeURIComponent(id)}`));
      const n = r.data.channels || 0;
      setText('link-status', `Revoked device ${id}; removed from ${n === 1 ? '1 channel' : n + ' channels'}.`);
      app.refresh('identity', 'current');
    } catch (e) { b.textContent = 'Revoke'; setText('link-error', words(e)); }
  });
  return h('div', { class: 'actions' }, b);
}

// offer is the link code on screen: the devices known when it was drawn
// and when it expires. The page polls the list until a new device shows
// (the result) or the code expires.
let offer = null;
let offerTimer = null;
let linking = false; // this device is typing in a code (accept in flight)
let loadFailed = false; // link-error holds why the list could not be loaded
const OFFER_POLL_MS = 2000;

function watchOffer(app) {
  if (!offer) return;
  const fresh = (app.devices || []).filter((d) => !d.revoked && !offer.before.has(d.device_id));
  if (fresh.length) {
    offer = null;
    show($('link-code'), false);
    setText('link-status', `Linked a new device: ${fresh.map((d) => d.device_id).join(', ')}. It joins your channels in a moment.`);
    return;
  }
  if (Date.now() > offer.expires) {
    offer = null;
    show($('link-code'), false);
    setText('link-status', '');
    setText('link-error', 'The code expired before a device used it. Draw a new one.');
    return;
  }
  clearTimeout(offerTimer);
  offerTimer = setTimeout(() => refreshDevices(app).catch(() => {}), OFFER_POLL_MS);
}

export function init(app) {
  $('me-copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(app.me ? app.me.user_id : '');
      $('me-copy').textContent = 'Copied';
    } catch {
      // No clipboard (not a secure context): select the text instead.
      const r = document.createRange();
      r.selectNodeContents($('me-uid'));
      const s = getSelection();
      s.removeAllRanges();
      s.addRange(r);
      $('me-copy').textContent = 'Selected';
    }
    setTimeout(() => { $('me-copy').textContent = 'Copy'; }, 2000);
  });
  $('link-start').addEventListener('click', async () => {
    setText('link-error', '');
    setText('link-status', '');
    try {
      const r = await busy($('link-start'), () => app.api.post('/v1/devices/link'));
      const code = $('link-code');
      code.replaceChildren(h('span', {}, 'Type this code on the new device (its page shows the field once it runs with --link):'),
        h('strong', { class: 'big-code' }, r.data.code),
        h('span', { class: 'muted' }, `Valid until ${fmtTime(r.data.expires_at)}. Keep this page open.`));
      show(code, true);
      const exp = Date.parse(r.data.expires_at);
      offer = { before: new Set((app.devices || []).map((d) => d.device_id)), expires: Number.isNaN(exp) ? Date.now() + 600000 : exp };
      setText('link-status', 'Waiting for the new device to type the code…');
      watchOffer(app);
    } catch (e) { setText('link-error', words(e)); }
  });
  $('link-accept-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setText('link-error', '');
    const code = $('link-accept-code').value.trim();
    if (!code) return;
    linking = true;
    setText('link-status', 'Linking… this takes a few seconds; keep your first device\'s page open.');
    try {
      const r = await busy(ev.submitter || $('link-accept-form').querySelector('button'), () => app.api.post('/v1/devices/link/accept', { code }));
      $('link-accept-code').value = '';
      setText('link-status', `Linked: this device now belongs to ${r.data.user_id}.`);
      app.refresh('identity', 'channels');
    } catch (e) {
      setText('link-status', '');
      setText('link-error', words(e));
    } finally { linking = false; }
  });
}
