package node_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/relay"
)

// TestRelayFailuresReachCaller: a node over a real relay (in this
// process) behind a switch that makes the relay answer 429 with a long
// Retry-After, a refusal (409, 413, 404, 400), or 503, or go away. The
// node's HTTP caller sees 429 rate_limited with the relay's Retry-After,
// the refusal as a typed 4xx (400: 502 relay_refused, the relay's answer
// to what the node sent), 503 relay_unreachable; never a 500.
func TestRelayFailuresReachCaller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := relay.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.New(st, relay.Options{Rate: 1e6, Burst: 1e6})
	var mode atomic.Int32 // 0: the relay answers; else the status it answers with
	h := rs.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch m := int(mode.Load()); m {
		case 0:
			h.ServeHTTP(w, r)
		default:
			if m == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "120") // an hourly quota: the relay client does not wait it out
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(m)
			w.Write([]byte(`{"error":{"code":"` + map[int]string{400: "bad_request", 404: "no_mailbox", 409: "mailbox_limit", 413: "too_large", 429: "claim_quota", 503: "not_ready"}[m] + `","message":"switched"}}`))
		}
	}))
	defer func() { hs.Close(); rs.Close(); st.Close() }()

	c, err := client.Open(ctx, client.Config{DataDir: filepath.Join(t.TempDir(), "alice"), DisplayName: "alice", RelayURL: hs.URL,
		Wait: time.Second, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ns := httptest.NewServer(node.New(c, node.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}).Handler())
	defer ns.Close()

	call := func(method, path, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, ns.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(res.Body).Decode(&eb)
		return res.StatusCode, eb.Error.Code, res.Header.Get("Retry-After")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s, code, _ := call("GET", "/v1/devices", ""); s == http.StatusOK {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("GET /v1/devices with the relay up: %d %s", s, code)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, tc := range []struct {
		name       string
		mode       int
		close      bool
		method     string
		path       string
		body       string
		status     int
		code       string
		retryAfter string
	}{
		{"relay rate-limits a listing", 429, false, "GET", "/v1/devices", "", 429, "rate_limited", "120"},
		{"relay rate-limits a link offer", 429, false, "POST", "/v1/devices/link", "{}", 429, "rate_limited", "120"},
		{"relay refuses a link mailbox: too many open", 409, false, "POST", "/v1/devices/link", "{}", 409, "relay_conflict", ""},
		{"relay refuses as too large", 413, false, "POST", "/v1/devices/link", "{}", 413, "too_large", ""},
		{"relay answers 404", 404, false, "GET", "/v1/devices", "", 404, "not_found", ""},
		{"relay refuses the request", 400, false, "GET", "/v1/devices", "", 502, "relay_refused", ""},
		{"relay answers 503", 503, false, "GET", "/v1/devices", "", 503, "relay_unreachable", ""},
		{"relay gone", 0, true, "GET", "/v1/devices", "", 503, "relay_unreachable", ""},
		{"relay gone, link offer", 0, true, "POST", "/v1/devices/link", "{}", 503, "relay_unreachable", ""},
	} {
		mode.Store(int32(tc.mode))
		if tc.close {
			hs.Close()
		}
		s, code, ra := call(tc.method, tc.path, tc.body)
		if s != tc.status || code != tc.code || ra != tc.retryAfter {
			t.Errorf("%s: %s %s answered %d %s (Retry-After %q), want %d %s (%q)", tc.name, tc.method, tc.path, s, code, ra, tc.status, tc.code, tc.retryAfter)
		}
	}
}
