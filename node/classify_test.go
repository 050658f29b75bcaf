package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/client"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// TestClassifyRelayErrors: every way a relay call can fail reaches the
// node's caller as a status it can act on (429 with Retry-After, 503 when
// the relay is away, 409/413/404/403 for its refusals), with a typed code
// and a one-line message; none is a 500.
func TestClassifyRelayErrors(t *testing.T) {
	rel := func(status int, code string) *relayclient.Error {
		return &relayclient.Error{Status: status, Code: code, Message: code + " said the relay"}
	}
	limited := &relayclient.Error{Status: 429, Code: "rate_limited", Message: "too many requests", RetryAfter: 30 * time.Second}
	quota := &relayclient.Error{Status: 429, Code: "commit_quota", Message: "commits: at most 600 per hour", RetryAfter: 1500 * time.Millisecond}
	refused := &url.Error{Op: "Post", URL: "http://127.0.0.1:9/v1/groups", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}
	unreachable := func(err error) error { return fmt.Errorf("%w: %w", client.ErrRelayUnreachable, err) }
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string // "" : no header
	}{
		{"429 as the relay client returns it", limited, 429, "rate_limited", "30"},
		{"429 the engine calls unreachable", unreachable(limited), 429, "rate_limited", "30"},
		{"429 quota, Retry-After rounded up", fmt.Errorf("claim: %w", quota), 429, "rate_limited", "2"},
		{"429 without Retry-After", rel(429, "rate_limited"), 429, "rate_limited", "1"},
		{"relay down, named by the engine", unreachable(refused), 503, "relay_unreachable", ""},
		{"relay down, raw network error", fmt.Errorf("devices: %w", refused), 503, "relay_unreachable", ""},
		{"relay 502", rel(502, "http_error"), 503, "relay_unreachable", ""},
		{"relay 503 with Retry-After", &relayclient.Error{Status: 503, Code: "not_ready", RetryAfter: 5 * time.Second}, 503, "relay_unreachable", "5"},
		{"413 message too large", rel(413, "message_too_large"), 413, "too_large", ""},
		{"413 group info too large", fmt.Errorf("post: %w", rel(413, "group_info_too_large")), 413, "too_large", ""},
		{"409 commit conflict", &relayclient.CommitConflictError{Err: rel(409, "commit_conflict"), CurrentEpoch: 7}, 409, "commit_conflict", ""},
		{"409 stale epoch", &relayclient.EpochError{Err: rel(409, "stale_epoch"), CurrentEpoch: 9}, 409, "stale_epoch", ""},
		{"409 future epoch", &relayclient.EpochError{Err: rel(409, "future_epoch"), CurrentEpoch: 2}, 409, "future_epoch", ""},
		{"409 mailbox taken", rel(409, "mailbox_taken"), 409, "relay_conflict", ""},
		{"409 device limit", rel(409, "device_limit"), 409, "relay_conflict", ""},
		{"403 removed from the group", rel(403, "forbidden"), 409, "channel_not_active", ""},
		{"403 device revoked", rel(403, "device_revoked"), 409, "device_revoked", ""},
		{"403 recipient not member", rel(403, "recipient_not_member"), 409, "recipient_not_member", ""},
		{"403 foreign key package", rel(403, "foreign_key_package"), 403, "relay_forbidden", ""},
		{"404 no mailbox", rel(404, "no_mailbox"), 404, "not_found", ""},
		{"404 no group info", rel(404, "no_group_info"), 404, "not_found", ""},
		{"400 invalid commit", rel(400, "invalid_commit"), 409, "commit_refused", ""},
		{"400 other", rel(400, "bad_request"), 502, "relay_refused", ""},
		{"401 after the relogin", rel(401, "unauthorized"), 502, "relay_unauthorized", ""},
		{"answer over its bound", fmt.Errorf("%w: GET /v1/x: over 10 bytes", relayclient.ErrResponseTooLarge), 502, "bad_relay_answer", ""},
		{"no device certificate", relayclient.ErrNoDevice, 409, "not_linked", ""},
		{"a bug stays a 500", errors.New("nil map"), 500, "internal", ""},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.fail(w, httptest.NewRequest(http.MethodPost, "/v1/channels/x/messages", nil), tc.err)
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tc.status || body.Error.Code != tc.code {
				t.Fatalf("got %d %s (%q), want %d %s", w.Code, body.Error.Code, body.Error.Message, tc.status, tc.code)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if m := body.Error.Message; m == "" || strings.Contains(m, "\n") {
				t.Errorf("message %q is not one line", m)
			}
		})
	}
}
