package webui_test

// A fake of the node API contract (CONTRACT.md: events stream,
// invitations, 202 queued sends, channel state, contacts, safety numbers),
// in memory, for driving the page's code paths that today's node does not
// reach yet. It is not the node: only shapes and event kinds matter. Test
// hooks under /fake/ (relay up or down, a key change) stand in for the
// world outside.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/node/webui"
)

type fakeMsg struct {
	Seq       int    `json:"seq"`
	MessageID string `json:"message_id"`
	Sender    string `json:"-"`
	Text      string `json:"text"`
	ReplyTo   string `json:"reply_to,omitempty"`
	SentAt    string `json:"sent_at"`
	Status    string `json:"-"`
}

type fakeChannel struct {
	id, name string
	roles    bool
	epoch    int
	members  map[string]string // user id -> role
	state    map[string]string // user id -> removed | left
	by       map[string]string // removed user -> remover
	msgs     []*fakeMsg
	read     map[string]int // user id -> seq read
}

type fakeInvite struct{ id, channel, from string }

type fakeEvent struct {
	id         int
	kind, data string
}

type fakeWorld struct {
	mu       sync.Mutex
	users    []string // user ids
	names    map[string]string
	channels map[string]*fakeChannel
	invites  map[string][]fakeInvite        // by invitee
	contacts map[string]map[string]*[2]bool // owner -> user -> {verified, key_changed}
	events   map[string][]fakeEvent         // by user
	wake     map[string]chan struct{}
	relayUp  bool
	n        int
}

func newFakeWorld(names ...string) *fakeWorld {
	w := &fakeWorld{names: map[string]string{}, channels: map[string]*fakeChannel{}, invites: map[string][]fakeInvite{},
		contacts: map[string]map[string]*[2]bool{}, events: map[string][]fakeEvent{}, wake: map[string]chan struct{}{}, relayUp: true}
	for _, n := range names {
		uid := "sp1" + strings.Repeat(n[:1], 52)
		w.users = append(w.users, uid)
		w.names[uid] = n
		w.contacts[uid] = map[string]*[2]bool{}
		w.wake[uid] = make(chan struct{})
	}
	return w
}

func (w *fakeWorld) next() int { w.n++; return w.n }

// emit queues an event for user (w.mu held).
func (w *fakeWorld) emit(user, kind string, data map[string]any) {
	b, _ := json.Marshal(data)
	w.events[user] = append(w.events[user], fakeEvent{id: len(w.events[user]) + 1, kind: kind, data: string(b)})
	close(w.wake[user])
	w.wake[user] = make(chan struct{})
}

func (w *fakeWorld) emitAll(c *fakeChannel, kind string, data map[string]any) {
	for u := range c.members {
		w.emit(u, kind, data)
	}
}

func fingerprint(uid string) string { return strings.Repeat(fmt.Sprint(len(uid)%10), 30) }

func (w *fakeWorld) channelJSON(c *fakeChannel, me string) map[string]any {
	st := "active"
	if s, ok := c.state[me]; ok {
		st = s
	}
	unread := 0
	for _, m := range c.msgs {
		if m.Seq > c.read[me] && m.Sender != me {
			unread++
		}
	}
	out := map[string]any{"channel_id": c.id, "name": c.name, "group_id": "Zg==", "epoch": c.epoch, "state": st, "roles": c.roles,
		"is_public": false, "member_count": len(c.members), "unread": unread}
	if by := c.by[me]; by != "" {
		out["removed_by"] = by
	}
	return out
}

func fjson(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func ferr(w http.ResponseWriter, status int, code, msg string) {
	fjson(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// node returns the handler of one user's node: the page at / and the API.
func (w *fakeWorld) node(me string) http.Handler {
	mux := http.NewServeMux()
	webui.Mount(mux)
	h := func(pattern string, f func(rw http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
			if r.Method != "GET" && r.Method != "DELETE" && r.ContentLength != 0 && r.Header.Get("Content-Type") != "application/json" {
				ferr(rw, 415, "unsupported_media_type", "Content-Type must be application/json")
				return
			}
			if pattern != "GET /v1/events" {
				w.mu.Lock()
				defer w.mu.Unlock()
			}
			f(rw, r)
		})
	}
	body := func(r *http.Request) map[string]any {
		m := map[string]any{}
		json.NewDecoder(r.Body).Decode(&m)
		return m
	}
	ch := func(rw http.ResponseWriter, r *http.Request) *fakeChannel {
		c := w.channels[r.PathValue("id")]
		if c == nil {
			ferr(rw, 404, "not_found", "no such channel")
		}
		return c
	}
	active := func(rw http.ResponseWriter, c *fakeChannel) bool {
		if _, ok := c.members[me]; !ok {
			ferr(rw, 409, "channel_not_active", "not a member any more")
			return false
		}
		return true
	}
	h("GET /v1/identity", func(rw http.ResponseWriter, r *http.Request) {
		fjson(rw, 200, map[string]any{"user_id": me, "display_name": w.names[me], "device_id": "dev" + w.names[me],
			"fingerprint": fingerprint(me), "ciphersuite": 1, "signature_key": "",
			"relay": map[string]any{"url": "http://relay.invalid", "reachable": w.relayUp}})
	})
	h("GET /v1/devices", func(rw http.ResponseWriter, r *http.Request) {
		fjson(rw, 200, map[string]any{"devices": []map[string]any{{"device_id": "dev" + w.names[me], "current": true, "revoked": false}}})
	})
	h("POST /v1/devices/link", func(rw http.ResponseWriter, r *http.Request) {
		fjson(rw, 200, map[string]any{"code": "482-193", "expires_at": time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)})
	})
	h("POST /v1/channels", func(rw http.ResponseWriter, r *http.Request) {
		b := body(r)
		name, _ := b["name"].(string)
		roles, ok := b["roles"].(bool)
		if !ok {
			roles = true
		}
		c := &fakeChannel{id: fmt.Sprintf("c%d", w.next()), name: name, roles: roles, members: map[string]string{me: "admin"},
			state: map[string]string{}, by: map[string]string{}, read: map[string]int{}}
		w.channels[c.id] = c
		fjson(rw, 201, w.channelJSON(c, me))
	})
	h("GET /v1/channels", func(rw http.ResponseWriter, r *http.Request) {
		out := []any{}
		for _, c := range w.channels {
			if _, in := c.members[me]; in || c.state[me] != "" {
				out = append(out, w.channelJSON(c, me))
			}
		}
		fjson(rw, 200, map[string]any{"channels": out})
	})
	h("GET /v1/channels/{id}", func(rw http.ResponseWriter, r *http.Request) {
		if c := ch(rw, r); c != nil {
			fjson(rw, 200, w.channelJSON(c, me))
		}
	})
	h("POST /v1/channels/{id}/invites", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil || !active(rw, c) {
			return
		}
		uid, _ := body(r)["user_id"].(string)
		if w.names[uid] == "" {
			ferr(rw, 404, "not_found", "the relay has no key package for that user")
			return
		}
		iv := fakeInvite{id: fmt.Sprintf("i%d", w.next()), channel: c.id, from: me}
		w.invites[uid] = append(w.invites[uid], iv)
		w.emit(uid, "invitation", map[string]any{"invitation_id": iv.id})
		fjson(rw, 202, map[string]any{"status": "sent", "epoch": c.epoch})
	})
	h("GET /v1/invitations", func(rw http.ResponseWriter, r *http.Request) {
		out := []any{}
		for _, iv := range w.invites[me] {
			out = append(out, map[string]any{"invitation_id": iv.id, "channel_name": w.channels[iv.channel].name,
				"inviter": map[string]any{"user_id": iv.from, "display_name": w.names[iv.from]}, "received_at": time.Now().UTC().Format(time.RFC3339)})
		}
		fjson(rw, 200, map[string]any{"invitations": out})
	})
	take := func(id string) *fakeInvite {
		for i, iv := range w.invites[me] {
			if iv.id == id {
				w.invites[me] = append(w.invites[me][:i:i], w.invites[me][i+1:]...)
				return &iv
			}
		}
		return nil
	}
	h("POST /v1/invitations/{id}/accept", func(rw http.ResponseWriter, r *http.Request) {
		iv := take(r.PathValue("id"))
		if iv == nil {
			ferr(rw, 404, "not_found", "no such invitation")
			return
		}
		c := w.channels[iv.channel]
		c.members[me] = "member"
		c.epoch++
		w.emitAll(c, "membership", map[string]any{"channel_id": c.id})
		fjson(rw, 200, w.channelJSON(c, me))
	})
	h("POST /v1/invitations/{id}/decline", func(rw http.ResponseWriter, r *http.Request) {
		if take(r.PathValue("id")) == nil {
			ferr(rw, 404, "not_found", "no such invitation")
			return
		}
		rw.WriteHeader(204)
	})
	h("POST /v1/channels/{id}/messages", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil || !active(rw, c) {
			return
		}
		b := body(r)
		text, _ := b["text"].(string)
		reply, _ := b["reply_to"].(string)
		m := &fakeMsg{Seq: len(c.msgs) + 1, MessageID: fmt.Sprintf("m%d", w.next()), Sender: me, Text: text, ReplyTo: reply,
			SentAt: time.Now().UTC().Format(time.RFC3339), Status: "queued"}
		c.msgs = append(c.msgs, m)
		if w.relayUp {
			m.Status = "sent"
			w.emitAll(c, "message", map[string]any{"channel_id": c.id, "message_id": m.MessageID})
		}
		fjson(rw, 202, map[string]any{"message_id": m.MessageID, "status": m.Status, "sent_at": m.SentAt})
	})
	h("GET /v1/channels/{id}/messages", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil {
			return
		}
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		out := []any{}
		for _, m := range c.msgs {
			// Others see a message once it is sent; a removed member sees
			// nothing after the removal (the fake keeps it simple: nothing new).
			if m.Seq <= after || (m.Sender != me && m.Status != "sent") || (c.state[me] != "" && m.Seq > c.read["gone:"+me]) {
				continue
			}
			o := map[string]any{"seq": m.Seq, "message_id": m.MessageID, "text": m.Text, "sent_at": m.SentAt,
				"sender": map[string]any{"user_id": m.Sender, "display_name": w.names[m.Sender], "verified": false}}
			if m.ReplyTo != "" {
				o["reply_to"] = m.ReplyTo
			}
			if m.Sender == me {
				o["status"] = m.Status
			}
			out = append(out, o)
			c.read[me] = max(c.read[me], m.Seq)
		}
		fjson(rw, 200, map[string]any{"messages": out, "next": nil})
	})
	h("GET /v1/channels/{id}/members", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil || !active(rw, c) {
			return
		}
		out := []any{}
		for _, u := range w.users {
			if role, ok := c.members[u]; ok {
				ct := w.contacts[me][u]
				out = append(out, map[string]any{"user_id": u, "display_name": w.names[u], "role": role, "fingerprint": fingerprint(u),
					"verified": ct != nil && ct[0] && !ct[1], "unverified": false, "devices": []any{map[string]any{"device_id": "dev" + w.names[u], "leaf_index": 0}}})
			}
		}
		fjson(rw, 200, map[string]any{"members": out})
	})
	h("DELETE /v1/channels/{id}/members/{user_id}", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil || !active(rw, c) {
			return
		}
		u := r.PathValue("user_id")
		if u == "me" {
			delete(c.members, me)
			c.state[me] = "left"
			c.read["gone:"+me] = len(c.msgs)
			w.emitAll(c, "membership", map[string]any{"channel_id": c.id})
			w.emit(me, "channel_state", map[string]any{"channel_id": c.id, "state": "left"})
			fjson(rw, 202, map[string]any{"status": "sent", "epoch": c.epoch})
			return
		}
		if c.members[me] != "admin" {
			ferr(rw, 403, "forbidden", "only admins remove members")
			return
		}
		delete(c.members, u)
		c.state[u], c.by[u] = "removed", me
		c.read["gone:"+u] = len(c.msgs)
		c.epoch++
		w.emit(u, "channel_state", map[string]any{"channel_id": c.id, "state": "removed"})
		w.emitAll(c, "membership", map[string]any{"channel_id": c.id})
		fjson(rw, 202, map[string]any{"status": "sent", "epoch": c.epoch})
	})
	h("PUT /v1/channels/{id}/members/{user_id}/role", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil || !active(rw, c) {
			return
		}
		role, _ := body(r)["role"].(string)
		c.members[r.PathValue("user_id")] = role
		c.epoch++
		w.emitAll(c, "role", map[string]any{"channel_id": c.id})
		fjson(rw, 200, map[string]any{"status": "sent", "epoch": c.epoch})
	})
	h("POST /v1/channels/{id}/update", func(rw http.ResponseWriter, r *http.Request) {
		c := ch(rw, r)
		if c == nil || !active(rw, c) {
			return
		}
		c.epoch++
		w.emitAll(c, "channel_state", map[string]any{"channel_id": c.id})
		fjson(rw, 202, map[string]any{"status": "sent", "epoch": c.epoch})
	})
	contact := func(u string) map[string]any {
		ct := w.contacts[me][u]
		return map[string]any{"user_id": u, "display_name": w.names[u], "fingerprint": fingerprint(u), "verified": ct[0], "key_changed": ct[1]}
	}
	h("GET /v1/contacts", func(rw http.ResponseWriter, r *http.Request) {
		out := []any{}
		for u := range w.contacts[me] {
			out = append(out, contact(u))
		}
		fjson(rw, 200, map[string]any{"contacts": out})
	})
	h("PUT /v1/contacts/{user_id}", func(rw http.ResponseWriter, r *http.Request) {
		u := r.PathValue("user_id")
		if w.names[u] == "" {
			ferr(rw, 404, "not_found", "unknown user")
			return
		}
		ct := w.contacts[me][u]
		if ct == nil {
			ct = &[2]bool{}
			w.contacts[me][u] = ct
		}
		if v, ok := body(r)["verified"].(bool); ok {
			ct[0], ct[1] = v, false
		}
		fjson(rw, 200, contact(u))
	})
	h("GET /v1/contacts/{user_id}/safety-number", func(rw http.ResponseWriter, r *http.Request) {
		u := r.PathValue("user_id")
		ct := w.contacts[me][u]
		if ct == nil {
			ferr(rw, 404, "not_found", "not a contact")
			return
		}
		sn := fingerprint(me) + fingerprint(u)
		if me > u {
			sn = fingerprint(u) + fingerprint(me)
		}
		fjson(rw, 200, map[string]any{"user_id": u, "safety_number": sn, "verified": ct[0] && !ct[1]})
	})
	mux.HandleFunc("GET /v1/events", func(rw http.ResponseWriter, r *http.Request) { w.stream(rw, r, me) })
	mux.HandleFunc("POST /fake/relay", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.relayUp = body(r)["up"] == true
		for _, u := range w.users {
			w.emit(u, "relay_status", map[string]any{"reachable": w.relayUp})
		}
		if w.relayUp {
			for _, c := range w.channels {
				for _, m := range c.msgs {
					if m.Status == "queued" {
						m.Status = "sent"
						w.emit(m.Sender, "delivery", map[string]any{"channel_id": c.id, "message_id": m.MessageID, "status": "sent"})
						w.emitAll(c, "message", map[string]any{"channel_id": c.id, "message_id": m.MessageID})
					}
				}
			}
		}
		rw.WriteHeader(204)
	})
	mux.HandleFunc("POST /fake/keychange", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		u, _ := body(r)["user_id"].(string)
		for _, o := range w.users {
			if ct := w.contacts[o][u]; ct != nil && ct[0] {
				ct[1] = true
				for _, c := range w.channels {
					if _, ok := c.members[o]; ok {
						w.emit(o, "membership", map[string]any{"channel_id": c.id})
					}
				}
			}
		}
		rw.WriteHeader(204)
	})
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) { ferr(rw, 404, "no_route", "no endpoint") })
	return mux
}

// stream is GET /v1/events: every event of the user after Last-Event-ID.
func (w *fakeWorld) stream(rw http.ResponseWriter, r *http.Request, me string) {
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(200)
	fl := rw.(http.Flusher)
	fmt.Fprint(rw, ": hello\n\n")
	fl.Flush()
	sent, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
	for {
		w.mu.Lock()
		evs := w.events[me][min(sent, len(w.events[me])):]
		wake := w.wake[me]
		w.mu.Unlock()
		for _, e := range evs {
			fmt.Fprintf(rw, "id: %d\nevent: %s\ndata: %s\n\n", e.id, e.kind, e.data)
			sent = e.id
		}
		fl.Flush()
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
}

// startFake serves one fake node per user on loopback.
func startFake(names ...string) (*fakeWorld, map[string]string, func()) {
	w := newFakeWorld(names...)
	urls := map[string]string{}
	var srvs []*httptest.Server
	for i, n := range names {
		s := httptest.NewServer(w.node(w.users[i]))
		srvs = append(srvs, s)
		urls[n] = s.URL + "/"
	}
	return w, urls, func() {
		for _, s := range srvs {
			s.CloseClientConnections()
			s.Close()
		}
	}
}
