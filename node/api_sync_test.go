package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// TestCrossSite (13.9): without a token the node answers only a loopback
// Host and no foreign Origin; bodies need application/json; /healthz says
// nothing private.
func TestCrossSite(t *testing.T) {
	a := newInProc(t, "alice")
	do := func(method, path, host, origin, ctype, body string) (int, string) {
		req, _ := http.NewRequest(method, a.hs.URL+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 == 2 {
			return resp.StatusCode, string(data)
		}
		return resp.StatusCode, errorCode(t, resp, data)
	}
	own := a.hs.URL // http://127.0.0.1:port
	for _, tc := range []struct {
		name, method, path, host, origin, ctype, body string
		status                                        int
		code                                          string
	}{
		{"rebound host", "GET", "/v1/identity", "evil.example", "", "", "", 403, "cross_site"},
		{"rebound host with port", "GET", "/v1/channels", "evil.example:8080", "", "", "", 403, "cross_site"},
		{"foreign origin", "POST", "/v1/channels", "", "http://evil.example", "application/json", `{"name":"x"}`, 403, "cross_site"},
		{"null origin", "GET", "/v1/identity", "", "null", "", "", 403, "cross_site"},
		{"form post", "POST", "/v1/channels", "", "", "application/x-www-form-urlencoded", `name=x`, 415, "unsupported_media_type"},
		{"text post", "POST", "/v1/channels", "", "", "text/plain", `{"name":"x"}`, 415, "unsupported_media_type"},
		{"own origin", "POST", "/v1/channels", "", own, "application/json; charset=utf-8", `{"name":"x"}`, 201, ""},
		{"localhost", "GET", "/v1/identity", "localhost", "", "", "", 200, ""},
	} {
		status, code := do(tc.method, tc.path, tc.host, tc.origin, tc.ctype, tc.body)
		if status != tc.status || (tc.code != "" && code != tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
	if status, body := do("GET", "/healthz", "", "", "", ""); status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", status, body)
	}
	var ready node.ReadyResponse
	if err := a.c.Do(context.Background(), "GET", "/readyz", nil, &ready); err != nil || ready.Status != "ok" || ready.Relay != "none" {
		t.Fatalf("readyz: %+v %v", ready, err)
	}
}

// TestHistoryPaging: pages by seq both ways, with next, RFC 3339 times.
func TestHistoryPaging(t *testing.T) {
	alice, _, chn := inProcPair(t)
	for i := range 5 {
		chn.deliver(t, "alice", fmt.Sprintf("m%d", i), "bob")
	}
	ctx := context.Background()
	page := func(q string) node.MessagesResponse {
		var r node.MessagesResponse
		if err := alice.c.Do(ctx, "GET", "/v1/channels/"+chn.id+"/messages"+q, nil, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var all []string
	q := "?limit=2"
	for {
		r := page(q)
		for _, m := range r.Messages {
			all = append(all, m.Text)
			if _, err := time.Parse(time.RFC3339, m.SentAt); err != nil || m.Status != "sent" || m.Seq == 0 {
				t.Fatalf("message %+v", m)
			}
		}
		if r.Next == nil {
			break
		}
		q = fmt.Sprintf("?limit=2&after=%d", *r.Next)
	}
	if fmt.Sprint(all) != "[m0 m1 m2 m3 m4]" {
		t.Fatalf("forward pages %v", all)
	}
	r := page("?limit=2&before=5")
	if len(r.Messages) != 2 || r.Messages[0].Text != "m2" || r.Messages[1].Text != "m3" || r.Next == nil || *r.Next != 3 {
		t.Fatalf("backward page %+v next %v", r.Messages, r.Next)
	}
	status, code := rawDo(t, alice.c, "GET", "/v1/channels/"+chn.id+"/messages?after=1&before=3", nil)
	if status != 400 || code != "bad_request" {
		t.Fatalf("after and before: %d %s", status, code)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event string
	data      map[string]any
}

func readEvents(t *testing.T, url, lastID string, n int, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &cur.data); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		case line == "" && cur.event != "":
			out = append(out, cur)
			if len(out) >= n || stop(cur) {
				return out
			}
			cur = sseEvent{}
		}
	}
	t.Fatalf("event stream ended after %d events: %v", len(out), sc.Err())
	return nil
}

// TestEventsStream: messages, membership, roles and channel state arrive
// as SSE with increasing ids; Last-Event-ID resumes after one.
func TestEventsStream(t *testing.T) {
	alice, bob, chn := inProcPair(t)
	chn.deliver(t, "alice", "hello", "bob")
	evs := readEvents(t, bob.hs.URL, "", 100, func(e sseEvent) bool { return e.event == "message" })
	last := evs[len(evs)-1]
	if last.data["channel_id"] != chn.id || last.data["message_id"] == nil {
		t.Fatalf("message event %+v", last)
	}
	// The message itself comes with its event (no history read needed).
	m, _ := last.data["message"].(map[string]any)
	if m == nil || m["text"] != "hello" || m["message_id"] != last.data["message_id"] || m["sent_at"] == nil ||
		m["sender"].(map[string]any)["user_id"] != uidOf(t, alice.c) {
		t.Fatalf("message event without its message: %+v", last.data)
	}
	kinds := map[string]bool{}
	for i, e := range evs {
		kinds[e.event] = true
		if i > 0 && e.id <= evs[i-1].id && len(e.id) == len(evs[i-1].id) {
			t.Fatalf("ids not increasing: %v", evs)
		}
	}
	if !kinds["channel_state"] {
		t.Fatalf("no channel_state event for the join: %v", evs)
	}
	// A role change and a second message after the first stream ended.
	ctx := context.Background()
	cr, err := alice.c.SetRole(ctx, chn.id, uidOf(t, bob.c), "read_only")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Inbox(ctx, chn.id, cr.Commit); err != nil {
		t.Fatal(err)
	}
	more := readEvents(t, bob.hs.URL, last.id, 100, func(e sseEvent) bool { return e.event == "role" })
	if more[0].id <= last.id && len(more[0].id) == len(last.id) {
		t.Fatalf("resumed at %s after %s", more[0].id, last.id)
	}
	role := more[len(more)-1]
	if role.data["role"] != "read_only" || role.data["user_id"] != uidOf(t, bob.c) {
		t.Fatalf("role event %+v", role)
	}
}

// TestPlainChannelAndLeave: roles:false makes a channel without roles
// (12.8); DELETE members/me leaves it without an admin, keeping history.
func TestPlainChannelAndLeave(t *testing.T) {
	alice, bob := newInProc(t, "alice"), newInProc(t, "bob")
	ctx := context.Background()
	var ch node.ChannelResponse
	if err := alice.c.Do(ctx, "POST", "/v1/channels", map[string]any{"name": "plain", "roles": false}, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Roles || ch.State != "active" {
		t.Fatalf("plain channel %+v", ch)
	}
	kps, _ := bob.c.KeyPackages(ctx, 1)
	inv, err := alice.c.Invite(ctx, ch.ChannelID, kps[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Join(ctx, node.JoinRequest{Welcome: inv.Welcome, RatchetTree: inv.RatchetTree}); err != nil {
		t.Fatal(err)
	}
	ms, _ := alice.c.Members(ctx, ch.ChannelID)
	for _, m := range ms {
		if m.Role != "" {
			t.Fatalf("member with a role in a plain channel: %+v", m)
		}
	}
	var left node.CommitResponse
	if err := bob.c.Do(ctx, "DELETE", "/v1/channels/"+ch.ChannelID+"/members/me", nil, &left); err != nil {
		t.Fatal(err)
	}
	if got := must(bob.c.Channel(ctx, ch.ChannelID)); got.State != "left" {
		t.Fatalf("after leaving: %+v", got)
	}
	// Alice processes the proposal and commits it.
	if _, err := alice.c.Inbox(ctx, ch.ChannelID, left.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Update(ctx, ch.ChannelID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := alice.c.Members(ctx, ch.ChannelID); len(ms) != 1 {
		t.Fatalf("members after bob left: %+v", ms)
	}
}
