package relay

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

// gauge reads one unlabelled metric from /metrics.
func gauge(t *testing.T, base, name string) int64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", name, l)
			}
			return int64(f)
		}
	}
	t.Fatalf("metrics lack %s", name)
	return 0
}

// scanLog counts the log the slow way.
func scanLog(t *testing.T, st Store) (entries, bytes int64) {
	t.Helper()
	s := sqlOf(t, st)
	if err := s.r.QueryRow(`SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM messages`).Scan(&entries, &bytes); err != nil {
		t.Fatal(err)
	}
	return entries, bytes
}

// TestLogGaugesKeptOnAppendAndPrune: the log size gauges of /metrics,
// kept up to date by the appends (batched, handshakes verified alone,
// refused ones not counted) and by retention rather than counted at each
// scrape, match a count of the log after each.
func TestLogGaugesKeptOnAppendAndPrune(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		_, base := newTestServer(t, st, Options{})
		check := func(when string) {
			t.Helper()
			n, b := scanLog(t, st)
			if ge, gb := gauge(t, base, "spacepanda_relay_log_entries"), gauge(t, base, "spacepanda_relay_log_bytes"); ge != n || gb != b {
				t.Fatalf("%s: gauges %d entries %d bytes, the log holds %d entries %d bytes", when, ge, gb, n, b)
			}
			// Each group's counters, not a scan, are what the gauges sum.
			rows, err := sqlOf(t, st).r.Query(`SELECT g.log_entries, g.log_bytes, COUNT(m.seq), COALESCE(SUM(LENGTH(m.data)), 0)
				FROM groups g LEFT JOIN messages m ON m.group_id = g.group_id GROUP BY g.group_id, g.log_entries, g.log_bytes`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var ce, cb, se, sb int64
				if err := rows.Scan(&ce, &cb, &se, &sb); err != nil {
					t.Fatal(err)
				}
				if ce != se || cb != sb {
					t.Fatalf("%s: a group counts %d entries %d bytes, holds %d entries %d bytes", when, ce, cb, se, sb)
				}
			}
			t.Logf("%s: %d entries, %d bytes", when, n, b)
		}
		check("empty")
		alice := newIdent(t, "alice")
		ca := login(t, base, alice)
		gid := []byte("gauges")
		gp := "/v1/groups/" + gidPath(gid)
		mg := setupGroup(t, ca, gid, alice)
		ca.must(200, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication)})
		first, second := mg.commit(alice, mls.CommitOptions{}), mg.commit(alice, mls.CommitOptions{})
		if r := ca.postCommit(gid, first); r.status != 200 {
			t.Fatalf("commit: %d %s", r.status, r.raw)
		}
		first.merge()
		if r := ca.postCommit(gid, second); r.status != 409 { // refused: not counted
			t.Fatalf("second commit of epoch 0: %d %s", r.status, r.raw)
		}
		check("after a message and a commit")

		now := time.Now()
		for _, g := range []string{"old", "big"} {
			if err := st.CreateGroup(ctx, []byte(g), "bob", 0, now); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error)
		for i := range 20 { // concurrent: several share a batch
			go func() {
				g, at := "big", now
				if i%4 == 0 {
					g, at = "old", now.Add(-48*time.Hour)
				}
				_, _, err := st.Append(ctx, Message{GroupID: []byte(g), Kind: "application", Sender: "bob", Data: make([]byte, 10+i), ReceivedAt: at})
				done <- err
			}()
		}
		for range 20 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		check("after 20 concurrent appends")
		if n, err := st.Retain(ctx, RetentionPolicy{MaxAge: 24 * time.Hour}, now); err != nil || n != 5 {
			t.Fatalf("retain by age: %d %v", n, err)
		}
		check("after retention by age")
		st.SetCursor(ctx, []byte("big"), "bob", "d1", 12)
		if n, err := st.Retain(ctx, RetentionPolicy{MaxEntries: 4}, now); err != nil || n != 11 {
			t.Fatalf("retain by count: %d %v", n, err)
		}
		check("after retention by count")
		if _, _, err := st.Append(ctx, Message{GroupID: []byte("big"), Kind: "application", Sender: "bob", Data: []byte("after"), ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
		check("after an append following retention")
	})
}

// TestLogGaugesMigrated: migration 5 counts the logs a relay holds from
// before it.
func TestLogGaugesMigrated(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, g := range []string{"a", "b"} {
		st.CreateGroup(ctx, []byte(g), "bob", 0, time.Now())
		for i := range 3 {
			if _, _, err := st.Append(ctx, Message{GroupID: []byte(g), Kind: "application", Sender: "bob", Data: make([]byte, 7*i+1), ReceivedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{`ALTER TABLE groups DROP COLUMN log_entries`, `ALTER TABLE groups DROP COLUMN log_bytes`, `UPDATE relay_schema SET version = 4`} {
		if _, err := sqlOf(t, st).w.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	st, err = OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	z, err := st.(sizer).Sizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, b := scanLog(t, st); z.Messages != n || z.MessageBytes != b || n != 6 {
		t.Fatalf("after migrating: sizes %d entries %d bytes, the log %d entries %d bytes", z.Messages, z.MessageBytes, n, b)
	}
}
