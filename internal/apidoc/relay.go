package apidoc

import "net/http"

// Relay is the relay's API (relay/API.md).
func Relay() *API {
	gid := Str("group id, unpadded base64url (RFC 4648 §5); padded base64url and standard base64 with %2F are accepted")
	page := []Param{
		{"after", Int("the seq to read after (default 0)")},
		{"wait", withDesc(S{"type": "number", "minimum": 0}, "long-poll: seconds to wait for an entry when none is newer (max 60, fractional allowed)")},
	}
	messageEntry := Obj("seq", Int("position in the log"), "message", B64("MLSMessage"),
		"kind", Enum("", "commit", "proposal", "application"), "epoch", Int("the message's epoch"),
		"sender", Str("the poster's user id"), "sender_device", Str("the poster's device id (empty for entries from before devices)"),
		"received_at", Time("when the relay stored it"))
	welcome := Obj("id", Int(""), "welcome", B64("MLSMessage(Welcome)"), "ratchet_tree", Null(B64("ratchet_tree extension, TLS encoding")),
		"group_id", B64(""), "from", Str("the sender's user id"), "from_device", Str("the sender's device id"), "created_at", Time(""))
	status := func(vals ...string) S { return Obj("status", Enum("", vals...)) }
	ops := []Op{
		{Method: "POST", Path: "/v1/auth/challenge", ID: "authChallenge", Tag: "auth", Public: true,
			Summary: "Start a login: the relay verifies the device certificate and issues a 60 s single-use challenge",
			Body:    Obj("certificate", B64("identity.Certificate")),
			Status:  200, Resp: Obj("challenge", B64("32 random bytes"), "expires_at", Time("")),
			Errs: Errs{400: {"invalid_certificate"}, 401: {"bad_certificate"}, 403: {"device_revoked"}}},
		{Method: "POST", Path: "/v1/auth/login", ID: "authLogin", Tag: "auth", Public: true,
			Summary: "Finish a login with SignWithLabel(device key, \"SpacePanda relay login\", LoginContent)",
			Body:    Obj("certificate", B64(""), "challenge", B64(""), "signature", B64("")),
			Status:  200, Resp: Obj("token", Str("bearer token"), "expires_at", Time(""), "user_id", UserID(""), "device_id", Str("")),
			Errs: Errs{400: {"invalid_certificate"}, 401: {"bad_certificate", "bad_challenge", "bad_signature"}, 403: {"device_revoked"}, 409: {"device_limit"}, 429: {"identity_quota"}}},
		{Method: "GET", Path: "/v1/users/{user_id}/devices", ID: "userDevices", Tag: "directory",
			Summary: "A user's unrevoked devices and its revocations (verify both: the relay is not trusted with them)",
			Status:  200, Resp: Obj("user_id", UserID(""), "devices", Arr(Obj("device_id", Str(""), "certificate", B64("")), ""),
				"revocations", Arr(B64("identity.Revocation"), "")),
		},
		{Method: "POST", Path: "/v1/devices/revocations", ID: "revokeDevice", Tag: "directory",
			Summary: "Post a revocation signed by the identity key, by a device of the same user",
			Body:    Obj("revocation", B64("identity.Revocation")),
			Status:  200, Resp: Obj("user_id", UserID(""), "device_id", Str("")),
			Errs: Errs{400: {"invalid_revocation"}, 403: {"forbidden"}, 409: {"revocation_limit"}}},
		{Method: "POST", Path: "/v1/key-packages", ID: "publishKeyPackages", Tag: "directory",
			Summary: "Publish this device's key packages (each carries the caller's device certificate)",
			Body:    Obj("key_packages?", Arr(B64("MLSMessage(KeyPackage)"), "one-time key packages"), "last_resort?", B64("replaces the device's last-resort key package")),
			Status:  200, Resp: Obj("stored", Int("")),
			Errs: Errs{400: {"invalid_key_package"}, 403: {"foreign_key_package", "device_revoked"}, 409: {"key_package_exists", "key_package_limit"},
				413: {"key_package_too_large"}}},
		{Method: "GET", Path: "/v1/key-packages/count", ID: "countKeyPackages", Tag: "directory",
			Summary: "This device's one-time key packages left, and whether it has a last-resort one",
			Status:  200, Resp: Obj("available", Int(""), "last_resort", Bool(""))},
		{Method: "POST", Path: "/v1/key-packages/claim", ID: "claimKeyPackages", Tag: "directory",
			Summary: "One key package per unrevoked device of a user (one-time ones never twice)",
			Body:    Obj("user_id", Str("")),
			Status:  200, Resp: Obj("key_packages", Arr(Obj("device_id", Str(""), "key_package", B64(""), "last_resort", Bool("")), "")),
			Errs: Errs{404: {"no_key_package"}, 429: {"claim_quota"}}},
		{Method: "POST", Path: "/v1/groups", ID: "createGroup", Tag: "groups",
			Summary: "Register a new group from its signed GroupInfo; every user in its tree becomes a reader",
			Desc:    "The relay verifies the GroupInfo and its tree and derives group id and epoch.",
			Body:    Obj("group_info", B64("MLSMessage(GroupInfo) with the ratchet_tree extension; the caller's device is in the tree")),
			Status:  200, Resp: Obj("group_id", B64(""), "epoch", Int("")),
			Errs: Errs{400: {"invalid_group_info"}, 409: {"group_exists"}}},
		{Method: "GET", Path: "/v1/groups/{gid}", ID: "getGroup", Tag: "groups",
			Summary: "A group's epoch, current member users (sorted) and last seq",
			Status:  200, Resp: Obj("group_id", B64(""), "epoch", Int(""), "tree_hash?", Null(B64("the public state's tree hash (null for a group registered before the relay verified commits)")),
				"members", Arr(Str("user id"), ""), "last_seq", Int("")),
			Errs: Errs{403: {"forbidden"}, 404: {"not_found"}}},
		{Method: "POST", Path: "/v1/groups/{gid}/messages", ID: "postMessage", Tag: "groups",
			Summary: "Append a message to the group's log: one commit per epoch",
			Desc: "kind and epoch come from the framing (when given they must agree). A commit or proposal is a PublicMessage " +
				"the relay verifies against the group's public state; a commit carries the new epoch's group_info.",
			Body: Obj("message", B64("MLSMessage: PublicMessage or PrivateMessage of this group"), "kind?", Enum("", "commit", "proposal", "application"),
				"epoch?", Int(""), "group_info?", B64("the new epoch's GroupInfo with ratchet_tree (commits only)")),
			Status: 200, Resp: Obj("seq", Int(""), "epoch", Int(""), "kind", Enum("", "commit", "proposal", "application")),
			Errs: Errs{400: {"invalid_message", "private_handshake", "invalid_commit", "invalid_proposal"}, 403: {"forbidden"}, 404: {"not_found"},
				409: {"commit_conflict", "future_epoch", "stale_epoch", "group_full", "state_changed"}, 413: {"message_too_large"}}},
		{Method: "POST", Path: "/v1/groups/{gid}/messages/batch", ID: "postMessages", Tag: "groups",
			Summary: "Append up to 64 application messages to the group's log, in order, in one request",
			Desc: "Each message is accepted or refused as POST /v1/groups/{gid}/messages would (its result says which); " +
				"they share the relay's transactions. A request holding anything but application messages (PrivateMessages) " +
				"of this group is refused whole before anything is appended.",
			Body:   Obj("messages", Arr(B64("MLSMessage: PrivateMessage (application) of this group"), "1 to 64")),
			Status: 200, Resp: Obj("results", Arr(Obj("seq?", Int("the entry's seq, when accepted"), "epoch", Int(""),
				"error?", Obj("code", Str("as the single post's error code: forbidden, not_found, future_epoch, ..."), "message", Str("")),
				"current_epoch?", Int("with future_epoch and stale_epoch")), "one per message, in order")),
			Errs: Errs{400: {"bad_request", "invalid_message"}, 403: {"forbidden"}, 413: {"message_too_large", "too_large"}}},
		{Method: "GET", Path: "/v1/groups/{gid}/messages", ID: "readMessages", Tag: "groups",
			Summary: "A page of the log after a seq, bounded in entries and bytes, with long-poll",
			Query: append(append([]Param{}, page...), Param{"limit", withDesc(S{"type": "integer", "minimum": 1}, "entries, default 100, max 1000")},
				Param{"max_bytes", withDesc(S{"type": "integer", "minimum": 1}, "bytes of message data, default and max 4 MiB (a larger entry comes alone)")}),
			Status: 200, Resp: Obj("messages", Arr(messageEntry, ""), "next", Int("the last seq returned, or after: pass it as the next after")),
			Errs: Errs{403: {"forbidden"}, 404: {"not_found"}}},
		{Method: "GET", Path: "/v1/groups/{gid}/cursor", ID: "getCursor", Tag: "groups", Summary: "This device's saved read position",
			Status: 200, Resp: Obj("after", Int("")), Errs: Errs{403: {"forbidden"}, 404: {"not_found"}}},
		{Method: "PUT", Path: "/v1/groups/{gid}/cursor", ID: "putCursor", Tag: "groups", Summary: "Save this device's read position",
			Body: Obj("after", Int("")), Status: 200, Resp: Obj("after", Int("")), Errs: Errs{403: {"forbidden"}, 404: {"not_found"}}},
		{Method: "PUT", Path: "/v1/groups/{gid}/group-info", ID: "putGroupInfo", Tag: "groups",
			Summary: "Store the latest GroupInfo (for external joins), posted by the committer",
			Body:    Obj("group_info", B64("MLSMessage(GroupInfo)"), "epoch", Int("its group_context.epoch")),
			Status:  200, Resp: Obj("epoch", Int("")),
			Errs: Errs{400: {"invalid_group_info"}, 403: {"forbidden"}, 404: {"not_found"}, 409: {"stale_group_info"}, 413: {"group_info_too_large"}}},
		{Method: "GET", Path: "/v1/groups/{gid}/group-info", ID: "getGroupInfo", Tag: "groups", Summary: "The latest GroupInfo",
			Status: 200, Resp: Obj("group_info", B64(""), "epoch", Int("")),
			Errs: Errs{403: {"forbidden"}, 404: {"not_found", "no_group_info"}}},
		{Method: "GET", Path: "/v1/groups/{gid}/epochs/{epoch}", ID: "epochState", Tag: "groups",
			Summary: "What a joiner compares with the group its Welcome put it in",
			Status:  200, Resp: Obj("epoch", Int(""), "tree_hash", B64(""), "confirmed_transcript_hash", B64("")),
			Errs: Errs{403: {"forbidden"}, 404: {"not_found", "no_epoch"}}},
		{Method: "POST", Path: "/v1/welcomes", ID: "postWelcome", Tag: "welcomes",
			Summary: "Queue a Welcome for recipients who are members by an accepted commit",
			Body: Obj("recipients", Arr(UserID(""), ""), "welcome", B64("MLSMessage(Welcome)"), "ratchet_tree?", B64("ratchet_tree extension"),
				"group_id", B64("")),
			Status: 200, Resp: Obj("ids", Arr(Int(""), "one per recipient")),
			Errs: Errs{400: {"invalid_welcome"}, 403: {"forbidden", "recipient_not_member"}, 404: {"not_found", "unknown_recipient"},
				413: {"welcome_too_large", "welcome_queue_too_large"}, 429: {"welcome_queue_full"}}},
		{Method: "GET", Path: "/v1/welcomes", ID: "readWelcomes", Tag: "welcomes",
			Summary: "The Welcomes queued for the caller's user this device has not acknowledged, oldest first",
			Query:   []Param{page[1], {"max_bytes", withDesc(S{"type": "integer", "minimum": 1}, "default and max 4 MiB")}},
			Status:  200, Resp: Obj("welcomes", Arr(welcome, "at most 100"))},
		{Method: "DELETE", Path: "/v1/welcomes/{id}", ID: "ackWelcome", Tag: "welcomes", Summary: "This device is done with the Welcome",
			Status: 204, Errs: Errs{404: {"not_found"}}},
		{Method: "PUT", Path: "/v1/link/{mailbox}", ID: "openMailbox", Tag: "link", Summary: "Open a device-linking mailbox for 10 minutes",
			Status: 200, Resp: Obj("mailbox", Str(""), "expires_at", Time("")),
			Errs: Errs{404: {"no_mailbox"}, 409: {"mailbox_taken", "mailbox_limit"}}},
		{Method: "DELETE", Path: "/v1/link/{mailbox}", ID: "closeMailbox", Tag: "link", Summary: "Close one's mailbox",
			Status: 204, Errs: Errs{404: {"no_mailbox"}}},
		{Method: "POST", Path: "/v1/link/{mailbox}/messages", ID: "postLinkMessage", Tag: "link", Public: true,
			Summary: "Post a link message: from \"offer\" needs the owner's bearer token, from \"join\" none (rate-limited per IP)",
			Body:    Obj("from", Enum("", "offer", "join"), "message", B64("a link message of the side's types, at most 2048 bytes")),
			Status:  200, Resp: Obj("seq", Int("")),
			Errs: Errs{400: {"invalid_link_message"}, 401: {"unauthorized"}, 403: {"forbidden"}, 404: {"no_mailbox"}, 409: {"mailbox_full"},
				413: {"link_message_too_large"}}},
		{Method: "GET", Path: "/v1/link/{mailbox}/messages", ID: "readLinkMessages", Tag: "link", Public: true,
			Summary: "One side's messages after N, with long-poll: the offer side's without a token, the join side's for the owner only",
			Query:   []Param{{"from", Enum("", "offer", "join")}, page[0], page[1]},
			Status:  200, Resp: Obj("messages", Arr(Obj("seq", Int(""), "message", B64("")), ""), "next", Int("")),
			Errs: Errs{401: {"unauthorized"}, 403: {"forbidden"}, 404: {"no_mailbox"}}},
		{Method: "GET", Path: "/v1/events", ID: "events", Tag: "events",
			Summary: "Server-sent events: message {group_id, seq}, welcome {id}, resync {}; \":\" lines are keep-alives every 25 s",
			Errs:    Errs{429: {"stream_quota"}},
			Status:  200, RespType: "text/event-stream", Ext: S{"x-sse-events": S{
				"message": Ref("MessageEvent"), "welcome": Ref("WelcomeEvent"), "resync": Ref("ResyncEvent")}}},
		{Method: "GET", Path: "/v1/openapi.json", ID: "openapi", Tag: "meta", Public: true, Summary: "This document",
			Status: 200, Resp: S{"type": "object"}},
		{Method: "GET", Path: "/healthz", ID: "healthz", Tag: "meta", Public: true, Summary: "Liveness",
			Status: 200, Resp: status("ok")},
		{Method: "GET", Path: "/readyz", ID: "readyz", Tag: "meta", Public: true, Summary: "Readiness: the database answers",
			Status: 200, Resp: Obj("status", Enum("", "ok"), "database", Enum("", "reachable", "unknown")), Errs: Errs{503: {"not_ready"}}},
		{Method: "GET", Path: "/metrics", ID: "metrics", Tag: "meta", Public: true, Summary: "Prometheus metrics",
			Status: 200, RespType: "text/plain"},
	}
	return &API{
		Title:   "SpacePanda relay",
		Version: "1",
		Desc: "The delivery service (relay/API.md). JSON bodies with Content-Type application/json; binary values standard base64; " +
			"times RFC 3339 in UTC; unknown request fields refused (400 bad_request); errors {\"error\":{\"code\",\"message\"}} with a one-line message.",
		Ops: ops,
		Schemas: map[string]S{
			"MessageEvent": withDesc(Obj("group_id", B64(""), "seq", Int("read the log after seq-1")), "event: message — a new log entry"),
			"WelcomeEvent": withDesc(Obj("id", Int("")), "event: welcome — a Welcome queued for the caller's user"),
			"ResyncEvent":  withDesc(Obj(), "event: resync — events may have been lost: re-read groups and Welcomes"),
		},
		PathParams: map[string]S{
			"gid":     gid,
			"user_id": UserID(""),
			"id":      Str("Welcome id"),
			"mailbox": withDesc(S{"type": "string"}, "the public part of a link code (4 characters of 0-9A-HJKMNP-TV-Z)"),
			"epoch":   Str("an epoch number"),
		},
		ErrorExtra: []any{"current_epoch?", Int("the group's epoch at the relay (commit_conflict, future_epoch, stale_epoch)")},
		Common:     relayCommon,
	}
}

func relayCommon(op *Op) Errs {
	e := Errs{500: {"internal"}, 429: {"rate_limited"}}
	if !op.Public {
		e[401] = append(e[401], "unauthorized")
	}
	if op.Body != nil || op.Query != nil || len(pathParam.FindAllString(op.Path, -1)) > 0 {
		e[400] = append(e[400], "bad_request")
	}
	if op.Body != nil {
		e[413] = append(e[413], "too_large")
	}
	if op.Method == http.MethodGet && op.Path == "/v1/openapi.json" {
		return Errs{}
	}
	return e
}
