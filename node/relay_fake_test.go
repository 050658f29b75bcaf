package node_test

// fakeRelay is a minimal in-memory relay speaking relay/API.md, for the
// node's relay-mode tests until (and besides) the real server: it checks
// the login signature, orders commits per epoch, keeps per-reader windows,
// and long-polls. It does not decode key packages or rate-limit.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

type fakeEntry struct {
	Seq     uint64 `json:"seq"`
	Message string `json:"message"`
	Kind    string `json:"kind"`
	Epoch   uint64 `json:"epoch"`
	Sender  string `json:"sender"`
	At      string `json:"received_at"`
}

type fakeGroup struct {
	epoch   uint64
	log     []fakeEntry
	from    map[string]uint64 // reader -> first visible seq
	to      map[string]uint64 // removed reader -> last visible seq
	cursor  map[string]uint64
	gi      string
	giEpoch uint64
}

type fakeWelcome struct {
	ID                                          uint64 `json:"id"`
	Welcome, RatchetTree, GroupID, Invite, From string
}

type fakeRelay struct {
	URL string // set by the test after it starts the server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	tokens    map[string]string
	chals     map[string]string
	kps       map[string][]string
	lastRes   map[string]string
	groups    map[string]*fakeGroup
	welcomes  map[string][]fakeWelcome
	nextWID   uint64
	conflicts int
}

func newFakeRelay() *fakeRelay {
	return &fakeRelay{changed: make(chan struct{}), tokens: map[string]string{}, chals: map[string]string{},
		kps: map[string][]string{}, lastRes: map[string]string{}, groups: map[string]*fakeGroup{},
		welcomes: map[string][]fakeWelcome{}}
}

func (f *fakeRelay) bump() { close(f.changed); f.changed = make(chan struct{}) }

func fjson(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func ferr(w http.ResponseWriter, status int, code string, extra map[string]any) {
	body := map[string]any{"error": map[string]string{"code": code, "message": code}}
	for k, v := range extra {
		body[k] = v
	}
	fjson(w, status, body)
}

func (f *fakeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if r.Body != nil && (r.Method == "POST" || r.Method == "PUT") {
		json.NewDecoder(r.Body).Decode(&body)
	}
	str := func(k string) string {
		var s string
		json.Unmarshal(body[k], &s)
		return s
	}
	path := r.URL.Path
	switch {
	case path == "/v1/auth/challenge":
		c := make([]byte, 32)
		rand.Read(c)
		f.mu.Lock()
		f.chals[string(c)] = str("user_id")
		f.mu.Unlock()
		fjson(w, 200, map[string]any{"challenge": base64.StdEncoding.EncodeToString(c), "expires_at": time.Now().Add(time.Minute)})
		return
	case path == "/v1/auth/login":
		c, _ := base64.StdEncoding.DecodeString(str("challenge"))
		sig, _ := base64.StdEncoding.DecodeString(str("signature"))
		key, _ := base64.StdEncoding.DecodeString(str("signature_key"))
		var cs uint16
		json.Unmarshal(body["ciphersuite"], &cs)
		f.mu.Lock()
		user, ok := f.chals[string(c)]
		delete(f.chals, string(c))
		f.mu.Unlock()
		var b wire.Builder
		b.AddOpaque([]byte(f.URL))
		b.AddOpaque([]byte(user))
		b.AddOpaque(c)
		content, _ := b.Bytes()
		s, err := suite.New(suite.ID(cs))
		if !ok || user != str("user_id") || err != nil || s.VerifyWithLabel(key, relayclient.LoginLabel, content, sig) != nil {
			ferr(w, 401, "bad_login", nil)
			return
		}
		t := make([]byte, 16)
		rand.Read(t)
		tok := hex.EncodeToString(t)
		f.mu.Lock()
		f.tokens[tok] = user
		f.mu.Unlock()
		fjson(w, 200, map[string]any{"token": tok, "expires_at": time.Now().Add(24 * time.Hour)})
		return
	}
	f.mu.Lock()
	user, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	f.mu.Unlock()
	if !ok {
		ferr(w, 401, "unauthorized", nil)
		return
	}
	wait := func(q string) time.Duration {
		n, _ := strconv.Atoi(r.URL.Query().Get(q))
		return time.Duration(n) * time.Second
	}
	switch {
	case path == "/v1/key-packages" && r.Method == "POST":
		var kps []string
		json.Unmarshal(body["key_packages"], &kps)
		f.mu.Lock()
		f.kps[user] = append(f.kps[user], kps...)
		if lr := str("last_resort"); lr != "" {
			f.lastRes[user] = lr
		}
		f.mu.Unlock()
		fjson(w, 200, map[string]int{"stored": len(kps)})
	case path == "/v1/key-packages/count":
		f.mu.Lock()
		fjson(w, 200, map[string]any{"available": len(f.kps[user]), "last_resort": f.lastRes[user] != ""})
		f.mu.Unlock()
	case path == "/v1/key-packages/claim":
		f.mu.Lock()
		defer f.mu.Unlock()
		u := str("user_id")
		// One device per user here (nodes have no device certificates yet).
		one := func(kp string, lr bool) map[string]any {
			return map[string]any{"key_packages": []map[string]any{{"device_id": "", "key_package": kp, "last_resort": lr}}}
		}
		if l := f.kps[u]; len(l) > 0 {
			f.kps[u] = l[1:]
			fjson(w, 200, one(l[0], false))
		} else if lr := f.lastRes[u]; lr != "" {
			fjson(w, 200, one(lr, true))
		} else {
			ferr(w, 404, "no_key_package", nil)
		}
	case path == "/v1/groups" && r.Method == "POST":
		gid, _ := fakeGroupInfo(str("group_info"))
		k := base64.RawURLEncoding.EncodeToString(gid)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.groups[k] != nil {
			ferr(w, 409, "group_exists", nil)
			return
		}
		f.groups[k] = &fakeGroup{from: map[string]uint64{user: 1}, to: map[string]uint64{}, cursor: map[string]uint64{}}
		fjson(w, 201, map[string]any{})
	case path == "/v1/welcomes" && r.Method == "POST":
		var rcpt []string
		json.Unmarshal(body["recipients"], &rcpt)
		f.mu.Lock()
		var ids []uint64
		for _, u := range rcpt {
			f.nextWID++
			f.welcomes[u] = append(f.welcomes[u], fakeWelcome{ID: f.nextWID, Welcome: str("welcome"), RatchetTree: str("ratchet_tree"),
				GroupID: str("group_id"), Invite: str("invite"), From: user})
			ids = append(ids, f.nextWID)
		}
		f.bump()
		f.mu.Unlock()
		fjson(w, 200, map[string]any{"ids": ids})
	case path == "/v1/welcomes" && r.Method == "GET":
		d := wait("wait")
		for deadline := time.Now().Add(d); ; {
			f.mu.Lock()
			ws := f.welcomes[user]
			ch := f.changed
			f.mu.Unlock()
			if len(ws) > 0 || time.Now().After(deadline) {
				out := []map[string]any{}
				for _, x := range ws {
					out = append(out, map[string]any{"id": x.ID, "welcome": x.Welcome, "ratchet_tree": x.RatchetTree,
						"group_id": x.GroupID, "invite": x.Invite, "from": x.From})
				}
				fjson(w, 200, map[string]any{"welcomes": out})
				return
			}
			select {
			case <-ch:
			case <-time.After(time.Until(deadline)):
			case <-r.Context().Done():
				return
			}
		}
	case strings.HasPrefix(path, "/v1/welcomes/") && r.Method == "DELETE":
		id, _ := strconv.ParseUint(strings.TrimPrefix(path, "/v1/welcomes/"), 10, 64)
		f.mu.Lock()
		ws := f.welcomes[user]
		for i, x := range ws {
			if x.ID == id {
				f.welcomes[user] = append(ws[:i:i], ws[i+1:]...)
			}
		}
		f.mu.Unlock()
		w.WriteHeader(204)
	case strings.HasPrefix(path, "/v1/groups/"):
		rest := strings.TrimPrefix(path, "/v1/groups/")
		k, sub, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		g := f.groups[k]
		if g == nil {
			f.mu.Unlock()
			ferr(w, 404, "unknown_group", nil)
			return
		}
		from, reader := g.from[user]
		to, removed := g.to[user]
		if !reader {
			f.mu.Unlock()
			ferr(w, 403, "forbidden", nil)
			return
		}
		switch {
		case sub == "messages" && r.Method == "POST":
			defer f.mu.Unlock()
			if removed {
				ferr(w, 403, "forbidden", nil)
				return
			}
			kind, ep := fakeFraming(str("message"))
			if kind == "commit" {
				if ep != g.epoch {
					f.conflicts++
					ferr(w, 409, "commit_conflict", map[string]any{"current_epoch": g.epoch})
					return
				}
				g.epoch++
			}
			e := fakeEntry{Seq: uint64(len(g.log)) + 1, Message: str("message"), Kind: kind, Epoch: ep, Sender: user,
				At: time.Now().UTC().Format(time.RFC3339Nano)}
			g.log = append(g.log, e)
			if kind == "commit" {
				// The members are the users of the new epoch's tree.
				_, users := fakeGroupInfo(str("group_info"))
				for u := range users {
					if _, in := g.from[u]; !in || g.to[u] != 0 {
						g.from[u] = e.Seq
						delete(g.to, u)
					}
				}
				for u := range g.from {
					if _, gone := g.to[u]; !users[u] && !gone {
						g.to[u] = e.Seq
					}
				}
				g.gi, g.giEpoch = str("group_info"), ep+1
			}
			f.bump()
			fjson(w, 200, map[string]uint64{"seq": e.Seq})
		case sub == "messages":
			after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
			f.mu.Unlock()
			d := wait("wait")
			for deadline := time.Now().Add(d); ; {
				f.mu.Lock()
				var out []fakeEntry
				for _, e := range g.log {
					if e.Seq > after && e.Seq >= from && (!removed || e.Seq <= to) {
						out = append(out, e)
					}
				}
				to, removed = g.to[user]
				next := uint64(len(g.log))
				ch := f.changed
				f.mu.Unlock()
				if out == nil {
					out = []fakeEntry{}
				}
				if len(out) > 0 || time.Now().After(deadline) || removed {
					fjson(w, 200, map[string]any{"messages": out, "next": max(next, after)})
					return
				}
				select {
				case <-ch:
				case <-time.After(time.Until(deadline)):
				case <-r.Context().Done():
					return
				}
			}
		case sub == "cursor" && r.Method == "GET":
			c := g.cursor[user]
			f.mu.Unlock()
			fjson(w, 200, map[string]uint64{"after": c})
		case sub == "cursor":
			var c uint64
			json.Unmarshal(body["after"], &c)
			g.cursor[user] = c
			f.mu.Unlock()
			fjson(w, 200, map[string]any{})
		case sub == "group-info" && r.Method == "PUT":
			g.gi = str("group_info")
			json.Unmarshal(body["epoch"], &g.giEpoch)
			f.mu.Unlock()
			fjson(w, 200, map[string]any{})
		case sub == "group-info":
			gi, ep := g.gi, g.giEpoch
			f.mu.Unlock()
			fjson(w, 200, map[string]any{"group_info": gi, "epoch": ep})
		default:
			f.mu.Unlock()
			ferr(w, 404, "no_route", nil)
		}
	default:
		ferr(w, 404, "no_route", nil)
	}
}

func (f *fakeRelay) conflictCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conflicts
}
