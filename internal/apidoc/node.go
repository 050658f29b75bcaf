package apidoc

// Node is the node's API (CONTRACT.md "Node HTTP API", implemented by the
// sync branch): one route set with or without a relay.
func Node() *API {
	status := Enum("queued: in the durable outbox; sent: the relay has it; merged: no relay, applied at once (the caller carries the output)", "queued", "sent", "merged")
	role := Enum("", "admin", "member", "read_only")
	commit := Obj("status", status, "id?", Str("relay: the change in the outbox (GET .../changes, delivery events)"),
		"epoch", Int("the epoch the change makes (0 while queued)"), "commit?", B64("no relay: the commit (MLSMessage) for the other members"))
	changeStatus := Enum("queued: in the durable outbox; sent: the relay ordered the commit (or nothing was to commit); failed: impossible now (error says why), not retried", "queued", "sent", "failed")
	change := Obj("id", Str(""), "op", Enum("", "invite", "remove", "role", "update"), "user_id?", UserID("the invitee or target"),
		"role?", role, "status", changeStatus, "error?", Str("why it failed"), "epoch?", Int("the epoch the change made"),
		"queued_at", Time(""), "done_at?", Time(""))
	queuedDesc := "With a relay the change is stored in the durable outbox first and carried out on the channel's current epoch when the relay takes it: " +
		"202 sent with the epoch it made, or 202 queued with its id while the relay is unreachable (GET .../changes and delivery events tell the outcome; " +
		"a change that became impossible ends failed, with the reason). An impossible change with the relay up answers its error."
	channel := Obj("channel_id", Str(""), "name", Str(""), "group_id", B64(""), "epoch", Int(""),
		"state", Enum("", "active", "removed", "left"), "roles", Bool("roles enforced in the group (false: a plain RFC 9420 channel)"),
		"is_public", Bool("listed for anyone with the invite link to join by external commit"),
		"member_count", Int(""), "unread", Int(""), "removed_by?", UserID("who removed us (state removed)"),
		"recovery_caused_by?", UserID("the member whose commit we could not process, forcing our last rejoin by external commit"))
	contact := Obj("user_id", UserID(""), "display_name", Str(""), "fingerprint", Str("30 digits"), "verified", Bool(""),
		"key_changed", Bool("the identity key changed since it was verified"))
	message := Obj("seq", Int("position in this channel's history, the paging cursor"), "message_id", Str(""),
		"sender", Obj("user_id", Str("user id (or the name a plain RFC 9420 member gives)"), "display_name", Str(""), "verified", Bool("")),
		"text", Str(""), "reply_to?", Str("message_id"), "sent_at", Time(""), "received_at?", Time("when this node stored it"), "status?", status)
	member := Obj("user_id", Str(""), "display_name", Str(""), "role", role, "fingerprint", Str(""), "verified", Bool(""),
		"unverified", Bool("admitted without a certificate (plain channels)"),
		"devices", Arr(Obj("device_id", Str(""), "leaf_index", Int("")), ""), "leaf_index?", Int("the first device's leaf (older clients)"))
	ch := "/v1/channels/{id}"
	events := S{
		"message":       Ref("MessageEvent"),
		"delivery":      Ref("DeliveryEvent"),
		"membership":    Ref("MembershipEvent"),
		"role":          Ref("RoleEvent"),
		"channel_state": Ref("ChannelStateEvent"),
		"invitation":    Ref("InvitationEvent"),
		"relay_status":  Ref("RelayStatusEvent"),
	}
	schemas := map[string]S{
		"Channel": channel, "Contact": contact, "Message": message, "Member": member,
		"MessageEvent": withDesc(Obj("channel_id", Str(""), "message", Ref("Message")), "event: message — a message arrived or was sent"),
		"DeliveryEvent": withDesc(Obj("channel_id", Str(""), "kind?", Enum("", "message", "change", "welcome", "proposal", "group"),
			"message_id?", Str(""), "change_id?", Str(""), "op?", Str("a change's op"), "user_id?", UserID("a change's invitee or target"),
			"epoch?", Int("the epoch a sent change made"), "status", Enum("", "queued", "sent", "failed", "dropped", "skipped", "refused"),
			"error?", Str("")), "event: delivery — an own message, state change or Welcome changed status in the outbox"),
		"Change":          change,
		"MembershipEvent": withDesc(Obj("channel_id", Str(""), "epoch", Int(""), "added", Arr(Str("user id"), ""), "removed", Arr(Str("user id"), "")), "event: membership"),
		"RoleEvent":       withDesc(Obj("channel_id", Str(""), "epoch", Int(""), "user_id", Str(""), "role", role), "event: role"),
		"ChannelStateEvent": withDesc(Obj("channel_id", Str(""), "state", Enum("", "active", "removed", "left"), "epoch", Int(""), "removed_by?", UserID(""),
			"recovered?", Bool("we rejoined by external commit"), "reason?", Str("why we rejoined"),
			"caused_by?", UserID("the member whose commit we could not process")), "event: channel_state"),
		"InvitationEvent":  withDesc(Obj("invitation_id", Str(""), "channel_name", Str(""), "inviter", Obj("user_id", UserID(""), "display_name", Str(""))), "event: invitation"),
		"RelayStatusEvent": withDesc(Obj("relay", Enum("", "reachable", "unreachable")), "event: relay_status"),
	}
	ops := []Op{
		{Method: "GET", Path: "/healthz", ID: "healthz", Tag: "meta", Public: true, Summary: "Liveness (nothing private)",
			Status: 200, Resp: Obj("status", Enum("", "ok"))},
		{Method: "GET", Path: "/readyz", ID: "readyz", Tag: "meta", Public: true, Summary: "Readiness and the relay's reachability",
			Status: 200, Resp: Obj("status", Enum("", "ok", "degraded"), "relay", Enum("", "none", "reachable", "unreachable"))},
		{Method: "GET", Path: "/metrics", ID: "metrics", Tag: "meta", Summary: "Prometheus metrics", Status: 200, RespType: "text/plain"},
		{Method: "GET", Path: "/v1/openapi.json", ID: "openapi", Tag: "meta", Summary: "This document", Status: 200, Resp: S{"type": "object"}},
		{Method: "GET", Path: "/v1/identity", ID: "identity", Tag: "identity", Summary: "This node's user and device",
			Status: 200, Resp: Obj("user_id", UserID(""), "display_name", Str(""), "device_id", Str(""), "fingerprint", Str(""),
				"ciphersuite", Int(""), "signature_key", B64(""), "relay", Null(Obj("url", Str(""), "reachable", Bool(""))),
				"name?", Str("display_name (older clients)"))},
		{Method: "GET", Path: "/v1/devices", ID: "devices", Tag: "identity", Summary: "The user's devices (relay: as its directory lists them, each certificate checked)",
			Status: 200, Resp: Obj("devices", Arr(Obj("device_id", Str(""), "current", Bool("this node"), "revoked", Bool("")), "")),
			Errs: Errs{409: {"not_linked", "device_revoked"}, 503: {"relay_unreachable"}}},
		{Method: "POST", Path: "/v1/devices/link", ID: "linkOffer", Tag: "identity", Summary: "Offer to link a new device: a short code to type on it",
			Desc: "On the device holding the user's identity key. In the background the node certifies the device that answers with the code " +
				"and adds it to the user's active channels; the offer ends then, at expires_at, or when an answer fails to authenticate.",
			Status: 200, Resp: Obj("code", Str("XXXX-XXXX-XXXX: a secret until the link completes"), "expires_at", Time("")),
			Errs: Errs{409: {"no_identity_key", "not_linked"}, 412: {"relay_required"}, 503: {"relay_unreachable"}}},
		{Method: "POST", Path: "/v1/devices/link/accept", ID: "linkAccept", Tag: "identity", Summary: "On the new device: join the user with the code",
			Desc: "On a node started with serve --link. Waits (at most 90 s) for the other device's certificate; then the node logs in as the user " +
				"and publishes its key packages, and the other device adds it to the user's channels.",
			Body: Obj("code", Str("")), Status: 200, Resp: Obj("user_id", UserID(""), "device_id", Str("")),
			Errs: Errs{400: {"bad_link_code"}, 409: {"already_linked", "link_failed"}, 412: {"relay_required"}, 503: {"relay_unreachable"}}},
		{Method: "DELETE", Path: "/v1/devices/{id}", ID: "revokeDevice", Tag: "identity", Summary: "Revoke another device of the user and remove it from every channel",
			Desc:   "On the device holding the user's identity key. The relay refuses the device from then on; revoking again completes what a failure left undone.",
			Status: 200, Resp: Obj("device_id", Str(""), "revoked", Bool(""), "channels", Int("channels it was removed from")),
			Errs: Errs{400: {"revoke_self"}, 409: {"no_identity_key", "channel_not_active"}, 412: {"relay_required"}, 503: {"relay_unreachable"}}},
		{Method: "POST", Path: "/v1/key-packages", ID: "createKeyPackages", Tag: "identity", Summary: "Make key packages (published to the relay in relay mode)",
			Body: Obj("count", withDesc(S{"type": "integer", "minimum": 1}, "")), Status: 201,
			Resp: Obj("key_packages", Arr(B64("MLSMessage(KeyPackage)"), ""))},
		{Method: "GET", Path: "/v1/key-packages", ID: "countKeyPackages", Tag: "identity", Summary: "Unused key packages",
			Status: 200, Resp: Obj("available", Int(""), "valid?", Int("available (older clients)"), "last_resort?", Bool("a last-resort key package is published"))},
		{Method: "POST", Path: "/v1/channels", ID: "createChannel", Tag: "channels", Summary: "Create a channel",
			Body:   Obj("name", Str(""), "is_public?", Bool("default false"), "roles?", Bool("default true")),
			Status: 201, Resp: Ref("Channel")},
		{Method: "GET", Path: "/v1/channels", ID: "listChannels", Tag: "channels", Summary: "All channels",
			Status: 200, Resp: Obj("channels", Arr(Ref("Channel"), ""))},
		{Method: "GET", Path: ch, ID: "getChannel", Tag: "channels", Summary: "One channel", Status: 200, Resp: Ref("Channel")},
		{Method: "POST", Path: ch + "/invites", ID: "invite", Tag: "channels",
			Summary: "Invite a user (relay: by user id, all their devices) or a key package (no relay)",
			Body:    OneOf(Obj("user_id", UserID(""), "role?", role), Obj("key_package", B64("MLSMessage(KeyPackage)"), "role?", role)),
			Status:  202, Resp: Obj("status", status, "epoch", Int(""), "welcome?", B64("no relay: hand to the invitee"),
				"ratchet_tree?", B64(""), "invite?", Str("no relay: the whole invitation in one string"),
				"commit?", B64("no relay: the commit for the other members"), "user_ids?", Arr(UserID(""), "the users invited"),
				"id?", Str("relay: the change in the outbox")),
			Desc: queuedDesc + " The invitee's key packages are claimed when the change is carried out.",
			Errs: Errs{403: {"forbidden"}, 404: {"no_key_package"}, 409: {"already_member", "channel_not_active"}, 412: {"relay_required"}}},
		{Method: "POST", Path: "/v1/join", ID: "join", Tag: "channels", Summary: "Join by a Welcome (no relay)",
			Body:   OneOf(Obj("welcome", B64("MLSMessage(Welcome)"), "ratchet_tree?", B64("")), Obj("invite", Str(""))),
			Status: 201, Resp: Ref("Channel"), Errs: Errs{409: {"already_member"}}},
		{Method: "GET", Path: "/v1/invitations", ID: "invitations", Tag: "channels", Summary: "Invitations received and not yet answered",
			Status: 200, Resp: Obj("invitations", Arr(Obj("invitation_id", Str(""), "channel_name", Str(""),
				"inviter", Obj("user_id", UserID(""), "display_name", Str("")), "received_at", Time("")), ""))},
		{Method: "POST", Path: "/v1/invitations/{id}/accept", ID: "acceptInvitation", Tag: "channels", Summary: "Join the channel",
			Status: 200, Resp: Ref("Channel"), Errs: Errs{409: {"already_member"}}},
		{Method: "POST", Path: "/v1/invitations/{id}/decline", ID: "declineInvitation", Tag: "channels", Summary: "Drop the invitation", Status: 204},
		{Method: "GET", Path: "/v1/contacts", ID: "contacts", Tag: "contacts", Summary: "Contacts", Status: 200,
			Resp: Obj("contacts", Arr(Ref("Contact"), ""))},
		{Method: "PUT", Path: "/v1/contacts/{user_id}", ID: "putContact", Tag: "contacts", Summary: "Add a contact; mark it verified",
			Body: Obj("verified?", Bool("")), Status: 200, Resp: Ref("Contact"), Errs: Errs{503: {"relay_unreachable"}}},
		{Method: "DELETE", Path: "/v1/contacts/{user_id}", ID: "deleteContact", Tag: "contacts", Summary: "Forget a contact", Status: 204},
		{Method: "GET", Path: "/v1/contacts/{user_id}/safety-number", ID: "safetyNumber", Tag: "contacts",
			Summary: "The 60-digit safety number to compare out of band", Status: 200,
			Resp: Obj("user_id", UserID(""), "safety_number", Str(""), "verified", Bool("")), Errs: Errs{503: {"relay_unreachable"}}},
		{Method: "POST", Path: ch + "/messages", ID: "send", Tag: "messages", Summary: "Send a message (queued in the outbox when the relay is away)",
			Body:   Obj("text", Str(""), "reply_to?", Str("message_id")),
			Status: 202, Resp: Obj("message_id", Str(""), "status", status, "sent_at", Time(""), "epoch?", Int(""),
				"ciphertext?", B64("no relay: the PrivateMessage for the other members")),
			Errs: Errs{403: {"forbidden"}, 409: {"channel_not_active"}}},
		{Method: "GET", Path: ch + "/messages", ID: "messages", Tag: "messages", Summary: "History, paged by seq (both modes)",
			Query: []Param{{"before", Int("seq: older than")}, {"after", Int("seq: newer than")},
				{"limit", withDesc(S{"type": "integer", "minimum": 1}, "page size")}},
			Status: 200, Resp: Obj("messages", Arr(Ref("Message"), "in seq order"), "next", Null(Int("the cursor of the next page, null at the end")))},
		{Method: "POST", Path: ch + "/inbox", ID: "inbox", Tag: "messages", Summary: "No relay: hand a received MLSMessage to the node",
			Body: Obj("message", B64("MLSMessage")), Status: 200, Resp: S{"type": "object"},
			Errs: Errs{409: {"already_processed", "wrong_epoch", "channel_not_active"}}},
		{Method: "GET", Path: ch + "/members", ID: "members", Tag: "members", Summary: "Members, by user",
			Status: 200, Resp: Obj("members", Arr(Ref("Member"), ""))},
		{Method: "DELETE", Path: ch + "/members/{user_id}", ID: "removeMember", Tag: "members", Summary: "Remove a user (all their devices)",
			Desc: queuedDesc, Status: 202, Resp: commit, Errs: Errs{403: {"forbidden"}, 409: {"channel_not_active", "wrong_epoch"}}},
		{Method: "DELETE", Path: ch + "/members/me", ID: "leave", Tag: "members", Summary: "Leave the channel",
			Status: 202, Resp: commit, Errs: Errs{409: {"channel_not_active"}}},
		{Method: "PUT", Path: ch + "/members/{user_id}/role", ID: "setRole", Tag: "members", Summary: "Set a role (the same role again: 200, no commit)",
			Desc: "202 with the commit's epoch; the member's role already: 200 with the current epoch, no commit. " + queuedDesc,
			Body: Obj("role", role), Status: 202, Also: []int{200}, Resp: commit, Errs: Errs{403: {"forbidden"}, 409: {"channel_not_active", "wrong_epoch"}}},
		{Method: "POST", Path: ch + "/update", ID: "update", Tag: "members", Summary: "Self-update (fresh keys)",
			Desc: queuedDesc, Status: 202, Resp: commit, Errs: Errs{409: {"channel_not_active", "wrong_epoch"}}},
		{Method: "GET", Path: ch + "/changes", ID: "changes", Tag: "members", Summary: "Recent state changes through the outbox (relay), oldest first, with their status",
			Status: 200, Resp: Obj("changes", Arr(Ref("Change"), ""))},
		{Method: "GET", Path: "/v1/events", ID: "events", Tag: "events",
			Summary: "Server-sent events: id increasing, Last-Event-ID resumes; event one of message, delivery, membership, role, channel_state, invitation, relay_status; data one JSON object (x-sse-events)",
			Header:  []Param{{"Last-Event-ID", Str("resume after this event id")}},
			Status:  200, RespType: "text/event-stream", Ext: S{"x-sse-events": events}},
	}
	return &API{
		Title:   "SpacePanda node",
		Version: "1",
		Desc: "The HTTP API of one device of one user, with or without a relay. JSON bodies need Content-Type application/json; " +
			"binary values standard base64; times RFC 3339 in UTC; errors {\"error\":{\"code\",\"message\"}} with a one-line message. " +
			"A bearer token is needed when the node listens beyond loopback (--token-file).",
		Ops:     ops,
		Schemas: schemas,
		PathParams: map[string]S{
			"id":      Str("channel id (or invitation id, device id)"),
			"user_id": Str("user id"),
		},
		Common:       nodeCommon,
		OptionalAuth: true,
	}
}

func nodeCommon(op *Op) Errs {
	e := Errs{500: {"internal"}}
	if op.Path == "/healthz" || op.Path == "/readyz" {
		return e
	}
	e[401] = []string{"unauthorized"}
	e[403] = []string{"cross_site"}
	if op.Body != nil {
		e[400] = append(e[400], "bad_request")
		e[413] = []string{"too_large"}
		e[415] = []string{"unsupported_media_type"}
	}
	if op.Query != nil || len(pathParam.FindAllString(op.Path, -1)) > 0 {
		e[400] = append(e[400], "bad_request")
	}
	if len(pathParam.FindAllString(op.Path, -1)) > 0 {
		e[404] = []string{"not_found"}
	}
	if relayOps[op.ID] {
		// The relay's answers, passed on as what the caller can act on
		// (node/server.go classify): never a 500.
		e[403] = append(e[403], "relay_forbidden")
		e[409] = append(e[409], "commit_conflict", "stale_epoch", "future_epoch", "relay_conflict")
		e[429] = []string{"rate_limited"}
		e[502] = []string{"relay_refused", "relay_unauthorized", "bad_relay_answer"}
		e[503] = append(e[503], "relay_unreachable")
	}
	return e
}

// relayOps are the operations that call the relay while they run (with a
// relay): its failures can be their answers.
var relayOps = map[string]bool{
	"devices": true, "linkOffer": true, "linkAccept": true, "revokeDevice": true, "createKeyPackages": true,
	"createChannel": true, "invite": true, "acceptInvitation": true, "putContact": true, "safetyNumber": true,
	"send": true, "removeMember": true, "leave": true, "setRole": true, "update": true,
}
