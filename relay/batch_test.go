package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

func sqlOf(t testing.TB, st Store) *sqlStore {
	switch s := st.(type) {
	case *sqlStore:
		return s
	case *PostgresStore:
		return s.sqlStore
	}
	t.Fatalf("not an SQL store: %T", st)
	return nil
}

// TestAppendBatchRefusalsStayAlone puts accepted and refused entries into
// one batch: each refusal (commit for a past or future epoch, a second
// commit for the epoch just won, an unknown group, a sender who is not a
// member, a message the database itself refuses) fails only itself; the
// others are written, in order, with gapless sequence numbers.
func TestAppendBatchRefusalsStayAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		s := sqlOf(t, st)
		now := time.Now()
		for _, g := range []string{"g1", "g2"} {
			if err := st.CreateGroup(ctx, []byte(g), "alice", 0, now); err != nil {
				t.Fatal(err)
			}
		}
		msg := func(g, kind string, epoch uint64, sender string) Message {
			ct := mls.ContentTypeApplication
			if kind == "commit" {
				ct = mls.ContentTypeCommit
			}
			return Message{GroupID: []byte(g), Kind: kind, Epoch: epoch, Sender: sender, SenderDevice: "d",
				Data: privMsg(t, []byte(g), epoch, ct), ReceivedAt: now}
		}
		nullData := msg("g2", "application", 0, "alice")
		nullData.Data = nil // NOT NULL: a database failure, not a refusal
		cases := []struct {
			name string
			m    Message
			err  error // nil: accepted
			seq  int64
		}{
			{"app g1", msg("g1", "application", 0, "alice"), nil, 1},
			{"future commit", msg("g1", "commit", 5, "alice"), ErrCommitConflict, 0},
			{"commit g1 e0", msg("g1", "commit", 0, "alice"), nil, 2},
			{"second commit e0", msg("g1", "commit", 0, "alice"), ErrCommitConflict, 0},
			{"future app", msg("g1", "application", 3, "alice"), ErrFutureEpoch, 0},
			{"unknown group", msg("nope", "application", 0, "alice"), ErrNotFound, 0},
			{"not a member", msg("g2", "application", 0, "mallory"), ErrForbidden, 0},
			{"database refuses", nullData, errAny, 0},
			{"app g2", msg("g2", "application", 0, "alice"), nil, 1},
			{"app g1 e1", msg("g1", "application", 1, "alice"), nil, 3},
		}
		batch := make([]appendReq, len(cases))
		for i, c := range cases {
			batch[i] = appendReq{ctx: ctx, m: c.m, done: make(chan appendRes, 1)}
		}
		s.appendBatch(batch)
		for i, c := range cases {
			r := <-batch[i].done
			switch {
			case c.err == nil && (r.err != nil || r.seq != c.seq):
				t.Errorf("%s: seq %d, err %v; want seq %d", c.name, r.seq, r.err, c.seq)
			case c.err == errAny && r.err == nil:
				t.Errorf("%s: accepted", c.name)
			case c.err != nil && c.err != errAny && !errors.Is(r.err, c.err):
				t.Errorf("%s: err %v, want %v", c.name, r.err, c.err)
			}
		}
		for g, want := range map[string][]string{"g1": {"application", "commit", "application"}, "g2": {"application"}} {
			ms, err := st.Messages(ctx, []byte(g), "alice", 0, 100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(want) {
				t.Fatalf("%s: %d entries, want %d", g, len(ms), len(want))
			}
			for i, m := range ms {
				if m.Seq != int64(i+1) || m.Kind != want[i] {
					t.Errorf("%s: entry %d is seq %d %s", g, i, m.Seq, m.Kind)
				}
			}
		}
		if gs, err := st.Group(ctx, []byte("g1")); err != nil || gs.Epoch != 1 || gs.LastSeq != 3 {
			t.Fatalf("g1: %+v %v", gs, err)
		}
	})
}

var errAny = errors.New("any error")

// TestAppendAfterClose: an append to a closed store fails, never hangs.
func TestAppendAfterClose(t *testing.T) {
	st, err := OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateGroup(ctx, []byte("g"), "alice", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, _, err := st.Append(ctx, Message{GroupID: []byte("g"), Kind: "application", Sender: "alice", Data: []byte("x")}); err == nil {
		t.Fatal("append after close accepted")
	}
}

// TestUnsynced: entries committed but not flushed stay invisible until
// their flush, batch by batch.
func TestUnsynced(t *testing.T) {
	var u unsynced
	b1 := []*groupTx{{id: []byte("g"), first: 3, last: 5}}
	b2 := []*groupTx{{id: []byte("g"), first: 5, last: 9}}
	u.add(b1)
	u.add(b2)
	steps := []struct {
		name string
		do   func()
		want int64
	}{
		{"both outstanding", func() {}, 3},
		{"first flushed", func() { u.done(b1) }, 5},
		{"both flushed", func() { u.done(b2) }, 100},
	}
	for _, s := range steps {
		s.do()
		if got := u.limit([]byte("g"), 100); got != s.want {
			t.Fatalf("%s: limit %d, want %d", s.name, got, s.want)
		}
	}
	if got := u.limit([]byte("other"), 7); got != 7 {
		t.Fatalf("untouched group limited to %d", got)
	}
}
