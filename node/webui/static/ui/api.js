// The node's HTTP API, as the page sees it: JSON in and out, the bearer
// token asked for once (on the first 401) and kept in sessionStorage only,
// errors as ApiError with a sentence a person understands.

const TOKEN_KEY = 'spacepanda.token';

export class ApiError extends Error {
  constructor(status, code, message, path, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.path = path;
    this.retryAfter = retryAfter || 0; // seconds, from Retry-After (429, 503)
  }
  get unsupported() { return this.status === 404 && (this.code === 'no_route' || this.code === 'not_found' || this.code === 'http_404') || this.status === 405; }
}

// Plain words for the codes the API documents; anything else shows the
// node's own one-line message.
const WORDS = {
  unreachable: 'Cannot reach your node. It may be restarting; the page keeps trying.',
  unauthorized: 'The node did not accept the access token.',
  forbidden: 'Your role in this channel does not allow that.',
  cross_site: 'The node refused a request from another site.',
  unknown_channel: 'That channel does not exist on this node.',
  unknown_member: 'That person is not a member of this channel.',
  no_key_package: 'The relay has no key package for that user id. Check the id, or ask them to start their node once.',
  not_member: 'You are no longer a member of this channel.',
  channel_not_active: 'This channel is no longer active for you.',
  already_member: 'Already a member of that channel.',
  already_processed: 'That was already done.',
  invite_self: 'You cannot invite yourself.',
  last_admin: 'You are the last admin: make someone else admin first.',
  remove_self: 'To leave, use Leave instead of removing yourself.',
  wrong_epoch: 'The channel changed meanwhile. Try again.',
  commit_conflict: 'Others changed the channel at the same moment. Try again.',
  relay_required: 'This needs a relay, and this node runs without one.',
  relay_unreachable: 'The relay cannot be reached right now.',
  relay_forbidden: 'The relay refused that.',
  stale_epoch: 'The channel moved on meanwhile. Try again.',
  future_epoch: 'The channel changed meanwhile. Try again.',
  link_failed: 'Linking did not complete: check the code, or draw a new one on your first device.',
  bad_link_code: 'That is not a link code: type it as your other device shows it.',
  already_linked: 'This device belongs to a user already.',
  no_identity_key: 'Link new devices from your first device.',
  too_large: 'That is too large.',
  text_too_large: 'That message is too long (64 KiB at most).',
  body_too_large: 'That is too large for the node.',
  bad_name: 'Give the channel a name (up to 200 bytes).',
  bad_base64: 'That code is not valid: copy it again, whole.',
  bad_invite: 'That invite code is not valid: copy it again, whole.',
  bad_encoding: 'That key package or code is damaged or incomplete: copy it again, whole.',
  malformed_message: 'That key package or code is damaged or incomplete: copy it again, whole.',
  invalid_welcome: 'That invite code is not valid for this node.',
  unsupported_media_type: 'The page sent something the node does not accept (please report this).',
  method_not_allowed: 'This node does not offer that (it may be an older version).',
  no_route: 'This node does not offer that (it may be an older version).',
  invite_expired: 'That invite code has expired: ask for a new one.',
  invalid_key_package: 'That key package is not valid.',
  no_matching_key_package: 'This invite was made for another device or an older key package.',
  no_roles: 'This channel has no roles.',
  bad_role: 'That role does not exist.',
  roles_unsupported: 'Roles are not supported here.',
  missing_field: 'Something required is missing.',
  bad_json: 'This node does not understand that request (it may be an older version).',
};

export function words(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong in the page: ' + (err && err.message || err);
  if (err.code === 'rate_limited') {
    const s = err.retryAfter;
    return `The relay is busy (too many requests). Try again ${s ? `in ${s < 120 ? s + ' s' : Math.ceil(s / 60) + ' min'}` : 'in a moment'}.`;
  }
  if (WORDS[err.code]) return WORDS[err.code];
  if (err.code && err.code.startsWith('relay_')) return 'The relay could not be used: ' + err.message;
  if (err.status >= 500) return 'The node failed to do that (' + err.message + ').';
  return err.message.charAt(0).toUpperCase() + err.message.slice(1);
}

export function createApi({ askToken }) {
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let asking = null;

  // getToken asks once; concurrent 401s wait for the same answer.
  function getToken(rejected) {
    if (!asking) {
      asking = askToken(rejected).then((t) => {
        token = t;
        sessionStorage.setItem(TOKEN_KEY, t);
        asking = null;
        return t;
      });
    }
    return asking;
  }

  function headers(extra = {}) {
    const hs = { Accept: 'application/json', ...extra };
    if (token) hs.Authorization = 'Bearer ' + token;
    return hs;
  }

  async function request(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const hs = headers(body === undefined ? {} : { 'Content-Type': 'application/json' });
      let res;
      try {
        res = await fetch(path, { method, headers: hs, cache: 'no-store', credentials: 'same-origin',
          body: body === undefined ? undefined : JSON.stringify(body) });
      } catch {
        throw new ApiError(0, 'unreachable', 'the node does not answer', path);
      }
      if (res.status === 401 && attempt < 5) {
        await getToken(token !== '');
        continue;
      }
      const text = await res.text();
      let data = null;
      if (text) { try { data = JSON.parse(text); } catch { data = null; } }
      if (!res.ok) {
        const e = (data && data.error) || {};
        throw new ApiError(res.status, e.code || 'http_' + res.status, e.message || res.statusText, path,
          parseInt(res.headers.get('Retry-After') || '0', 10) || 0);
      }
      return { status: res.status, data: data || {} };
    }
  }

  // probe says whether a route exists: false on 404/405, true otherwise
  // (a 412 relay_required route exists).
  async function probe(path) {
    try {
      await request('GET', path);
      return true;
    } catch (e) {
      return !(e instanceof ApiError && (e.unsupported || e.status === 0));
    }
  }

  return {
    get: (p) => request('GET', p).then((r) => r.data),
    post: (p, b) => request('POST', p, b === undefined ? {} : b),
    put: (p, b) => request('PUT', p, b),
    del: (p) => request('DELETE', p),
    probe,
    headers,
    getToken,
  };
}

export const enc = encodeURIComponent;
