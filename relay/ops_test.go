package relay

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestHealth: /healthz and /readyz answer without a token; /readyz says
// 503 once the database is gone.
func TestHealth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Fatalf("healthz: %d %s", code, body)
		}
		if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"reachable"`) {
			t.Fatalf("readyz: %d %s", code, body)
		}
		st.Close()
		if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, `"not_ready"`) {
			t.Fatalf("readyz with the database closed: %d %s", code, body)
		}
		if code, _ := get(t, base+"/healthz"); code != 200 {
			t.Fatalf("healthz with the database closed: %d", code)
		}
	})
}

// TestMetrics: posts, refusals by code, deliveries, sizes and open
// streams show in /metrics.
func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice := newIdent(t, "alice")
		ca := login(t, base, alice)
		gid := []byte("metrics")
		gp := "/v1/groups/" + gidPath(gid)
		mg := setupGroup(t, ca, gid, alice)
		ca.must(200, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication)})
		first, second := mg.commit(alice, mls.CommitOptions{}), mg.commit(alice, mls.CommitOptions{})
		if r := ca.postCommit(gid, first); r.status != 200 {
			t.Fatalf("commit: %d %s", r.status, r.raw)
		}
		first.merge()
		if r := ca.postCommit(gid, second); r.status != 409 {
			t.Fatalf("second commit of epoch 0: %d %s", r.status, r.raw)
		}
		ca.must(409, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 7, mls.ContentTypeApplication)})
		ca.must(200, "GET", gp+"/messages", nil)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+ca.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		want := []string{
			`spacepanda_relay_posts_total{kind="application"} 1`,
			`spacepanda_relay_posts_total{kind="commit"} 1`,
			`spacepanda_relay_posts_refused_total{code="commit_conflict"} 1`,
			`spacepanda_relay_posts_refused_total{code="future_epoch"} 1`,
			`spacepanda_relay_deliveries_total 2`,
			`spacepanda_relay_log_entries 2`,
			`spacepanda_relay_groups 1`,
			`spacepanda_relay_event_streams 1`,
			`spacepanda_relay_db_seconds_count{op="append"}`,
		}
		code, body := get(t, base+"/metrics")
		if code != 200 {
			t.Fatalf("metrics: %d", code)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("metrics lack %q", w)
			}
		}
	})
}

// TestGracefulShutdownLogs: SIGTERM ends the relay process with exit 0
// and a log line saying so.
func TestGracefulShutdownLogs(t *testing.T) {
	p := startRelay(t, "--data", t.TempDir())
	if code, _ := get(t, p.base+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v; stderr %s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
	for _, w := range []string{"relay: shutting down", "relay: shut down"} {
		if !strings.Contains(p.stderr.String(), w) {
			t.Errorf("stderr lacks %q: %s", w, p.stderr)
		}
	}
}
