// SpacePanda interoperability peer built on ts-mls (an independent RFC 9420
// implementation in TypeScript). Driven by Go tests (interop/tsmls/*.go) over
// JSON lines: one command per line on stdin, one reply per line on stdout.
// Binary values are standard base64 of RFC 9420 wire bytes: MLSMessage framing
// for KeyPackage, Welcome, GroupInfo, PublicMessage and PrivateMessage; the
// ratchet tree as the TLS encoding of the ratchet_tree extension data
// (RFC 9420 §12.4.3.3: optional<Node> ratchet_tree<V>, trailing blanks stripped).
//
// Every reply is {"ok":true,...} or {"ok":false,"error":"..."}. The peer never
// exits on bad input; it exits when stdin closes.
//
// The commands are listed in README.md next to this file.

import readline from "node:readline";
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  createProposal,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  mlsExporter,
  processMessage,
} from "ts-mls";
import { getCiphersuiteNameFromId } from "ts-mls/crypto/ciphersuite.js";
import { createGroupInfo } from "ts-mls/createCommit.js";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { decryptSenderData } from "ts-mls/privateMessage.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";

// ---- encoding helpers -------------------------------------------------------

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromB64(s, what) {
  if (typeof s !== "string" || s.length % 4 !== 0 || !B64.test(s)) {
    throw new Error(`${what}: expected standard base64 string`);
  }
  return new Uint8Array(Buffer.from(s, "base64"));
}

function toB64(u8) {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString("base64");
}

function identityOf(cred) {
  if (cred && cred.credentialType === "basic") return Buffer.from(cred.identity).toString("utf8");
  return "";
}

// decodeMessage decodes a whole MLSMessage and rejects trailing bytes.
function decodeMessage(bytes, what) {
  let res;
  try {
    res = decodeMlsMessage(bytes, 0);
  } catch (e) {
    throw new Error(`${what}: cannot decode MLSMessage: ${e?.message ?? e}`);
  }
  if (res === undefined) throw new Error(`${what}: cannot decode MLSMessage`);
  const [msg, n] = res;
  if (n !== bytes.length) throw new Error(`${what}: ${bytes.length - n} trailing bytes after MLSMessage`);
  return msg;
}

function encodeMessage(m) {
  return toB64(encodeMlsMessage({ version: "mls10", ...m }));
}

// withLength prefixes u8 with its MLS variable-size length (RFC 9420 §2.1.2).
function withLength(u8) {
  const n = u8.length;
  let head;
  if (n < 0x40) head = [n];
  else if (n < 0x4000) head = [0x40 | (n >> 8), n & 0xff];
  else head = [0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return new Uint8Array([...head, ...u8]);
}

// withoutLength is the inverse of withLength: u8 must be exactly one
// length-prefixed vector.
function withoutLength(u8, what) {
  if (u8.length === 0) throw new Error(`${what}: empty`);
  const len = u8[0] >> 6;
  let n;
  let off;
  if (len === 0) [n, off] = [u8[0] & 0x3f, 1];
  else if (len === 1 && u8.length >= 2) [n, off] = [((u8[0] & 0x3f) << 8) | u8[1], 2];
  else if (len === 2 && u8.length >= 4) [n, off] = [(((u8[0] & 0x3f) << 24) | (u8[1] << 16) | (u8[2] << 8) | u8[3]) >>> 0, 4];
  else throw new Error(`${what}: bad length prefix`);
  if (off + n !== u8.length) throw new Error(`${what}: length ${n} does not match ${u8.length - off} bytes`);
  return u8.subarray(off);
}

// members lists the non-blank leaves (leaf i is node 2i, RFC 9420 §4.1.1).
function members(tree) {
  const out = [];
  for (let n = 0; n < tree.length; n += 2) {
    const node = tree[n];
    if (node?.nodeType === "leaf") out.push({ identity: identityOf(node.leaf.credential), leaf_index: n / 2 });
  }
  return out;
}

function leafIdentity(tree, leafIndex) {
  const node = tree[2 * leafIndex];
  return node?.nodeType === "leaf" ? identityOf(node.leaf.credential) : "";
}

function wireAsPublic(cmd) {
  const wf = cmd.wire_format ?? "private";
  if (wf !== "public" && wf !== "private") throw new Error(`wire_format must be "public" or "private"`);
  return wf === "public";
}

// ---- peer state -------------------------------------------------------------

const peer = {
  identity: undefined,
  suiteId: undefined,
  impl: undefined,
  credential: undefined,
  sigKeys: undefined,
  lifetime: defaultLifetime,
  keyPackages: [], // {ref: b64, publicPackage, privatePackage}
  groups: new Map(), // b64(group_id) -> ClientState
};

function needInit() {
  if (peer.impl === undefined) throw new Error("not initialised: send init first");
}

function group(cmd) {
  needInit();
  const id = toB64(fromB64(cmd.group_id, "group_id"));
  const st = peer.groups.get(id);
  if (st === undefined) throw new Error(`unknown group ${id}`);
  return [id, st];
}

function epochOf(st) {
  return Number(st.groupContext.epoch);
}

async function commitReply(id, res) {
  peer.groups.set(id, res.newState);
  const out = { commit: encodeMessage(res.commit), epoch: epochOf(res.newState) };
  if (res.welcome !== undefined) {
    out.welcome = encodeMessage({ wireformat: "mls_welcome", welcome: res.welcome });
    out.ratchet_tree = toB64(encodeRatchetTree(res.newState.ratchetTree));
  }
  return out;
}

function leafOf(st, identity) {
  if (typeof identity !== "string") throw new Error("identity: expected string");
  const m = members(st.ratchetTree).filter((x) => x.identity === identity);
  if (m.length !== 1) throw new Error(`identity ${JSON.stringify(identity)} matches ${m.length} members`);
  return m[0].leaf_index;
}

function keyPackageFrom(b64, what) {
  const msg = decodeMessage(fromB64(b64, what), what);
  if (msg.wireformat !== "mls_key_package") throw new Error(`${what}: not a KeyPackage (${msg.wireformat})`);
  return msg.keyPackage;
}

// ---- commands ---------------------------------------------------------------

const commands = {
  async init(cmd) {
    if (peer.impl !== undefined) throw new Error("already initialised");
    if (typeof cmd.identity !== "string" || cmd.identity === "") throw new Error("identity: expected non-empty string");
    const suiteId = cmd.suite ?? 1;
    let name;
    try {
      name = getCiphersuiteNameFromId(suiteId);
    } catch {
      name = undefined;
    }
    if (name === undefined) throw new Error(`unknown cipher suite ${suiteId}`);
    let impl;
    try {
      impl = await getCiphersuiteImpl(getCiphersuiteFromName(name));
    } catch (e) {
      throw new Error(`cipher suite ${suiteId} (${name}) unavailable: ${e?.message ?? e}`);
    }
    // RFC 9420 §7.2: applications MUST bound a leaf's total lifetime, and our
    // provider does (400 days). ts-mls's own default is [0, 2^63-1], which
    // any bound rejects, so the peer defaults to 90 days like our key packages.
    let lifetimeSeconds = 90 * 24 * 3600;
    if (cmd.lifetime_seconds !== undefined) {
      if (!Number.isInteger(cmd.lifetime_seconds) || cmd.lifetime_seconds <= 0) throw new Error("lifetime_seconds: positive integer");
      lifetimeSeconds = cmd.lifetime_seconds;
    }
    {
      const now = BigInt(Math.floor(Date.now() / 1000));
      peer.lifetime = { notBefore: now - 3600n, notAfter: now + BigInt(lifetimeSeconds) };
    }
    peer.sigKeys = await impl.signature.keygen();
    // ts-mls 1.6.4 makes ECDSA signature public keys with noble's default,
    // the 33/49/67-byte compressed SEC1 point, but RFC 9420 §5.1.1 requires
    // the UncompressedPointRepresentation of RFC 8446. Re-derive the
    // uncompressed key (ts-mls's verify accepts both forms) unless the test
    // asks for ts-mls's own behaviour.
    const curve = { P256: "p256", P384: "p384", P521: "p521" }[getCiphersuiteFromName(name).signature];
    if (curve !== undefined && cmd.ecdsa_compressed_keys !== true) {
      const nist = await import("@noble/curves/nist.js");
      peer.sigKeys = { ...peer.sigKeys, publicKey: nist[curve].getPublicKey(peer.sigKeys.signKey, false) };
    }
    peer.credential = { credentialType: "basic", identity: new TextEncoder().encode(cmd.identity) };
    peer.identity = cmd.identity;
    peer.suiteId = suiteId;
    peer.impl = impl;
    return { suite: suiteId, suite_name: name };
  },

  async key_package() {
    needInit();
    const kp = await generateKeyPackageWithKey(peer.credential, defaultCapabilities(), peer.lifetime, [], peer.sigKeys, peer.impl);
    const ref = toB64(await makeKeyPackageRef(kp.publicPackage, peer.impl.hash));
    peer.keyPackages.push({ ref, ...kp });
    return {
      key_package: encodeMessage({ wireformat: "mls_key_package", keyPackage: kp.publicPackage }),
      ref,
    };
  },

  async create_group(cmd) {
    needInit();
    const gid = fromB64(cmd.group_id, "group_id");
    const id = toB64(gid);
    if (peer.groups.has(id)) throw new Error(`group ${id} exists`);
    const kp = await generateKeyPackageWithKey(peer.credential, defaultCapabilities(), peer.lifetime, [], peer.sigKeys, peer.impl);
    const st = await createGroup(gid, kp.publicPackage, kp.privatePackage, [], peer.impl);
    peer.groups.set(id, st);
    return { epoch: epochOf(st) };
  },

  async add(cmd) {
    const [id, st] = group(cmd);
    if (!Array.isArray(cmd.key_packages) || cmd.key_packages.length === 0) throw new Error("key_packages: non-empty array");
    const proposals = cmd.key_packages.map((k, i) => ({
      proposalType: "add",
      add: { keyPackage: keyPackageFrom(k, `key_packages[${i}]`) },
    }));
    const res = await createCommit(
      { state: st, cipherSuite: peer.impl },
      { extraProposals: proposals, wireAsPublicMessage: wireAsPublic(cmd), ratchetTreeExtension: cmd.ratchet_tree_extension === true },
    );
    return commitReply(id, res);
  },

  async join(cmd) {
    needInit();
    const msg = decodeMessage(fromB64(cmd.welcome, "welcome"), "welcome");
    if (msg.wireformat !== "mls_welcome") throw new Error(`welcome: not a Welcome (${msg.wireformat})`);
    let tree;
    if (cmd.ratchet_tree !== undefined && cmd.ratchet_tree !== null) {
      const bytes = fromB64(cmd.ratchet_tree, "ratchet_tree");
      let r;
      try {
        r = decodeRatchetTree(bytes, 0);
      } catch (e) {
        throw new Error(`ratchet_tree: ${e?.message ?? e}`);
      }
      if (r === undefined || r[1] !== bytes.length) throw new Error("ratchet_tree: cannot decode");
      tree = r[0];
    }
    const refs = new Set(msg.welcome.secrets.map((s) => toB64(s.newMember)));
    const i = peer.keyPackages.findIndex((k) => refs.has(k.ref));
    if (i < 0) throw new Error("welcome: no EncryptedGroupSecrets for any of our key packages");
    const kp = peer.keyPackages[i];
    const st = await joinGroup(msg.welcome, kp.publicPackage, kp.privatePackage, emptyPskIndex, peer.impl, tree);
    const id = toB64(st.groupContext.groupId);
    const old = peer.groups.get(id);
    if (old !== undefined && old.groupActiveState?.kind !== "removedFromGroup") throw new Error(`group ${id} exists`);
    peer.keyPackages.splice(i, 1); // key packages are single use (RFC 9420 §16.8)
    peer.groups.set(id, st);
    return { group_id: id, epoch: epochOf(st) };
  },

  // external_join joins the group of a GroupInfo (an MLSMessage with the
  // external_pub extension) by external commit (RFC 9420 §12.4.3.2) with a
  // fresh key package. ratchet_tree is the tree when it is not in the
  // GroupInfo. The commit is a PublicMessage from a new_member_commit sender.
  async external_join(cmd) {
    needInit();
    const msg = decodeMessage(fromB64(cmd.group_info, "group_info"), "group_info");
    if (msg.wireformat !== "mls_group_info") throw new Error(`group_info: not a GroupInfo (${msg.wireformat})`);
    let tree;
    if (cmd.ratchet_tree !== undefined && cmd.ratchet_tree !== null) {
      const bytes = fromB64(cmd.ratchet_tree, "ratchet_tree");
      const r = decodeRatchetTree(bytes, 0);
      if (r === undefined || r[1] !== bytes.length) throw new Error("ratchet_tree: cannot decode");
      tree = r[0];
    }
    const kp = await generateKeyPackageWithKey(peer.credential, defaultCapabilities(), peer.lifetime, [], peer.sigKeys, peer.impl);
    // ts-mls 1.6.4 reads external_pub's extension_data as the bare key, but
    // it is struct { HPKEPublicKey external_pub; } with HPKEPublicKey
    // opaque<V> (RFC 9420 §12.4.3.2): a length-prefixed key. The GroupInfo
    // is signed as received, so instead of editing it, hand ts-mls's HPKE the
    // unprefixed key when it imports exactly that extension's bytes.
    let impl = peer.impl;
    const ext = msg.groupInfo.extensions.find((e) => e.extensionType === "external_pub");
    if (ext !== undefined && cmd.raw_external_pub !== true) {
      const key = withoutLength(ext.extensionData, "external_pub");
      const hpke = peer.impl.hpke;
      impl = { ...peer.impl, hpke: { ...hpke, importPublicKey: (k) => hpke.importPublicKey(k === ext.extensionData ? key : k) } };
    }
    const resync = cmd.resync === true; // replace our own leaf (same signature key)
    const res = await joinGroupExternal(msg.groupInfo, kp.publicPackage, kp.privatePackage, resync, impl, tree);
    const id = toB64(res.newState.groupContext.groupId);
    const old = peer.groups.get(id);
    if (old !== undefined && !resync && old.groupActiveState?.kind !== "removedFromGroup") throw new Error(`group ${id} exists`);
    peer.groups.set(id, res.newState);
    return {
      commit: encodeMessage({ wireformat: "mls_public_message", publicMessage: res.publicMessage }),
      group_id: id,
      epoch: epochOf(res.newState),
    };
  },

  async send(cmd) {
    const [id, st] = group(cmd);
    const data = fromB64(cmd.data, "data");
    const aad = cmd.aad === undefined ? undefined : fromB64(cmd.aad, "aad");
    const res = await createApplicationMessage(st, data, peer.impl, aad);
    peer.groups.set(id, res.newState);
    return { message: encodeMessage({ wireformat: "mls_private_message", privateMessage: res.privateMessage }) };
  },

  async process(cmd) {
    const [id, st] = group(cmd);
    const msg = decodeMessage(fromB64(cmd.message, "message"), "message");
    let kind;
    let senderLeaf;
    let treeBefore = st.ratchetTree;
    if (msg.wireformat === "mls_public_message") {
      const c = msg.publicMessage.content;
      kind = c.contentType;
      if (c.sender.senderType === "member") senderLeaf = c.sender.leafIndex;
    } else if (msg.wireformat === "mls_private_message") {
      const pm = msg.privateMessage;
      kind = pm.contentType;
      let secret = st.keySchedule.senderDataSecret;
      if (pm.epoch < st.groupContext.epoch) {
        const old = st.historicalReceiverData.get(pm.epoch);
        if (old !== undefined) {
          secret = old.senderDataSecret;
          treeBefore = old.ratchetTree;
        }
      }
      try {
        senderLeaf = (await decryptSenderData(pm, secret, peer.impl))?.leafIndex;
      } catch {
        senderLeaf = undefined; // processMessage reports the real error
      }
    } else {
      throw new Error(`message: expected PublicMessage or PrivateMessage, got ${msg.wireformat}`);
    }
    const res = await processMessage(msg, st, emptyPskIndex, acceptAll, peer.impl);
    peer.groups.set(id, res.newState);
    const out = {
      kind,
      data: res.kind === "applicationMessage" ? toB64(res.message) : null,
      epoch: epochOf(res.newState),
      sender: senderLeaf === undefined ? "" : leafIdentity(treeBefore, senderLeaf),
      sender_leaf: senderLeaf ?? null,
    };
    if (res.newState.groupActiveState?.kind === "removedFromGroup") out.removed = true;
    return out;
  },

  async update(cmd) {
    const [id, st] = group(cmd);
    if (Object.keys(st.unappliedProposals).length > 0) {
      throw new Error("pending proposals: use commit (an update must be a path-only commit)");
    }
    // An empty commit always carries an UpdatePath in ts-mls (RFC 9420 §12.4).
    const res = await createCommit({ state: st, cipherSuite: peer.impl }, { wireAsPublicMessage: wireAsPublic(cmd) });
    return commitReply(id, res);
  },

  async commit(cmd) {
    const [id, st] = group(cmd);
    const res = await createCommit(
      { state: st, cipherSuite: peer.impl },
      { wireAsPublicMessage: wireAsPublic(cmd), ratchetTreeExtension: cmd.ratchet_tree_extension === true },
    );
    return commitReply(id, res);
  },

  async remove(cmd) {
    const [id, st] = group(cmd);
    const leaf = leafOf(st, cmd.identity);
    if (leaf === st.privatePath.leafIndex) throw new Error("cannot remove self with a commit (RFC 9420 §12.2)");
    const res = await createCommit(
      { state: st, cipherSuite: peer.impl },
      { extraProposals: [{ proposalType: "remove", remove: { removed: leaf } }], wireAsPublicMessage: wireAsPublic(cmd) },
    );
    return commitReply(id, res);
  },

  async propose_add(cmd) {
    const [id, st] = group(cmd);
    const p = { proposalType: "add", add: { keyPackage: keyPackageFrom(cmd.key_package, "key_package") } };
    const res = await createProposal(st, wireAsPublic(cmd), p, peer.impl);
    peer.groups.set(id, res.newState);
    return { message: encodeMessage(res.message) };
  },

  async propose_remove(cmd) {
    const [id, st] = group(cmd);
    const p = { proposalType: "remove", remove: { removed: leafOf(st, cmd.identity) } };
    const res = await createProposal(st, wireAsPublic(cmd), p, peer.impl);
    peer.groups.set(id, res.newState);
    return { message: encodeMessage(res.message) };
  },

  async members(cmd) {
    const [, st] = group(cmd);
    return { members: members(st.ratchetTree), own_leaf: st.privatePath.leafIndex };
  },

  async epoch(cmd) {
    const [, st] = group(cmd);
    return { epoch: epochOf(st) };
  },

  async epoch_authenticator(cmd) {
    const [, st] = group(cmd);
    return { epoch_authenticator: toB64(st.keySchedule.epochAuthenticator), epoch: epochOf(st) };
  },

  async export(cmd) {
    const [, st] = group(cmd);
    if (typeof cmd.label !== "string") throw new Error("label: expected string");
    const context = cmd.context === undefined || cmd.context === null ? new Uint8Array() : fromB64(cmd.context, "context");
    if (!Number.isInteger(cmd.length) || cmd.length < 0 || cmd.length > 0xffff) throw new Error("length: integer in [0, 65535]");
    const out = await mlsExporter(st.keySchedule.exporterSecret, cmd.label, context, cmd.length, peer.impl);
    return { secret: toB64(out), epoch: epochOf(st) };
  },

  async ratchet_tree(cmd) {
    const [, st] = group(cmd);
    return { ratchet_tree: toB64(encodeRatchetTree(st.ratchetTree)) };
  },

  async group_info(cmd) {
    const [, st] = group(cmd);
    let gi;
    if (cmd.raw_external_pub === true) {
      gi = await createGroupInfoWithExternalPubAndRatchetTree(st, [], peer.impl);
    } else {
      // As createGroupInfoWithExternalPubAndRatchetTree, but with the
      // external_pub extension_data length-prefixed as RFC 9420 §12.4.3.2
      // requires (ts-mls 1.6.4 writes the bare key).
      const kp = await peer.impl.hpke.deriveKeyPair(st.keySchedule.externalSecret);
      const pub = await peer.impl.hpke.exportPublicKey(kp.publicKey);
      gi = await createGroupInfo(st.groupContext, st.confirmationTag, st, [
        { extensionType: "external_pub", extensionData: withLength(pub) },
        { extensionType: "ratchet_tree", extensionData: encodeRatchetTree(st.ratchetTree) },
      ], peer.impl);
    }
    return { group_info: encodeMessage({ wireformat: "mls_group_info", groupInfo: gi }) };
  },
};

// ---- main loop --------------------------------------------------------------

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function handle(line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return { ok: false, error: "invalid JSON" };
  }
  if (cmd === null || typeof cmd !== "object" || Array.isArray(cmd)) return { ok: false, error: "command must be a JSON object" };
  const f = Object.hasOwn(commands, cmd.cmd) ? commands[cmd.cmd] : undefined;
  if (f === undefined) return { ok: false, error: `unknown cmd ${JSON.stringify(cmd.cmd)}` };
  try {
    return { ok: true, ...(await f(cmd)) };
  } catch (e) {
    const name = e?.constructor?.name && e.constructor.name !== "Error" ? `${e.constructor.name}: ` : "";
    return { ok: false, error: `${cmd.cmd}: ${name}${e?.message ?? String(e)}` };
  }
}

process.on("uncaughtException", (e) => process.stderr.write(`peer: uncaught: ${e?.stack ?? e}\n`));
process.on("unhandledRejection", (e) => process.stderr.write(`peer: unhandled rejection: ${e?.stack ?? e}\n`));

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.trim() === "") continue;
  reply(await handle(line));
}
