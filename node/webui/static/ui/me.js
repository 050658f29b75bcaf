// "You": display name, user id, fingerprint, devices, device linking;
// and which relay the node uses.

import { $, h, show, setText, groups, busy, fmtTime } from './dom.js';
import { words } from './api.js';

let relayProbed = false;

export async function refresh(app) {
  const id = await app.api.get('/v1/identity');
  app.me = id;
  setText('me-name', id.display_name || id.name || '(no name)');
  setText('me-uid', id.user_id);
  const fp = id.fingerprint || '';
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
    if (id.relay && typeof id.relay.reachable === 'boolean') app.setRelayReachable(id.relay.reachable);
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

async function refreshDevices(app) {
  const r = await app.api.get('/v1/devices');
  show($('devices'), true);
  $('device-list').replaceChildren(...(r.devices || []).map((d) => h('li', {},
    h('code', { class: 'uid' }, d.device_id), d.current ? ' (this device)' : '', d.revoked ? ' (revoked)' : '')));
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
    try {
      const r = await busy($('link-start'), () => app.api.post('/v1/devices/link'));
      const code = $('link-code');
      code.replaceChildren(h('strong', { class: 'big-code' }, r.data.code),
        h('span', { class: 'muted' }, ` Enter it on the new device before ${fmtTime(r.data.expires_at)}.`));
      show(code, true);
    } catch (e) { setText('link-error', words(e)); }
  });
  $('link-accept-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setText('link-error', '');
    const code = $('link-accept-code').value.trim();
    if (!code) return;
    try {
      await busy(ev.submitter || $('link-accept-form').querySelector('button'), () => app.api.post('/v1/devices/link/accept', { code }));
      $('link-accept-code').value = '';
      app.refresh('identity', 'channels');
    } catch (e) { setText('link-error', words(e)); }
  });
}
