// The node's event stream (GET /v1/events, text/event-stream), read with
// fetch so that the bearer token can travel in a header (EventSource
// cannot send one). Reconnects with Last-Event-ID; a 404/405 means the node
// has no stream, and the page polls instead.

export function startEvents(api, { onEvent, onOpen, onDown, onUnsupported }) {
  let lastId = '';
  let stopped = false;
  let ctrl = null;
  let wait = 500;

  async function connectOnce() {
    ctrl = new AbortController();
    const hs = api.headers({ Accept: 'text/event-stream' });
    if (lastId) hs['Last-Event-ID'] = lastId;
    let res;
    try {
      res = await fetch('/v1/events', { headers: hs, cache: 'no-store', signal: ctrl.signal });
    } catch {
      return 'down';
    }
    if (res.status === 404 || res.status === 405) return 'unsupported';
    if (res.status === 401) { await api.getToken(true); return 'retry'; }
    if (!res.ok || !res.body) return 'down';
    wait = 500;
    onOpen();
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
          dispatch(block);
        }
        if (buf.length > 1 << 20) return 'down'; // a runaway event: reconnect
      }
    } catch {
      // the connection dropped (node restart): reconnect below
    }
    return 'down';
  }

  function dispatch(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'id') lastId = value;
      else if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    let obj = {};
    try { obj = JSON.parse(data.join('\n')); } catch { obj = {}; }
    onEvent(type, obj);
  }

  (async () => {
    while (!stopped) {
      const r = await connectOnce();
      if (stopped) return;
      if (r === 'unsupported') { onUnsupported(); return; }
      if (r === 'retry') continue;
      onDown();
      await new Promise((res) => setTimeout(res, wait));
      wait = Math.min(wait * 2, 4000);
    }
  })();

  return { stop() { stopped = true; if (ctrl) ctrl.abort(); } };
}
