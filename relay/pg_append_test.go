package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBulkAppendAcrossInstances: two relay instances on one PostgreSQL
// database take concurrent application messages (the one-statement batch
// path, several groups a batch) and commits (the row-by-row path) for the
// same groups. Every group's log ends gapless, each accepted post is in it
// once at the seq it was answered, and every epoch has exactly one commit.
func TestBulkAppendAcrossInstances(t *testing.T) {
	ctx := context.Background()
	url := freshPG(t)
	var sts [2]Store
	for i := range sts {
		sts[i] = openPostgresAt(t, url)
	}
	now := time.Now()
	const groups, posters, posts = 6, 16, 40
	gid := func(g int) []byte { return fmt.Appendf(nil, "bulk-%d", g) }
	for g := range groups {
		if err := sts[0].CreateGroup(ctx, gid(g), "alice", 0, now); err != nil {
			t.Fatal(err)
		}
	}
	type key struct {
		g   int
		seq int64
	}
	var mu sync.Mutex
	accepted := map[key]string{} // what each answered seq holds
	var commits atomic.Int64
	record := func(g int, seq int64, data string) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := accepted[key{g, seq}]; ok {
			t.Errorf("group %d seq %d answered twice: %q and %q", g, seq, prev, data)
		}
		accepted[key{g, seq}] = data
	}
	var wg sync.WaitGroup
	for p := range posters {
		wg.Go(func() {
			st := sts[p%2]
			for i := range posts {
				g := (p + i) % groups
				data := fmt.Sprintf("app %d/%d", p, i)
				// The epoch may move under us: post for the current one.
				cur, err := st.Group(ctx, gid(g))
				if err != nil {
					t.Error(err)
					return
				}
				seq, _, err := st.Append(ctx, Message{GroupID: gid(g), Kind: "application", Epoch: cur.Epoch, Sender: "alice", Data: []byte(data), ReceivedAt: now})
				if errors.Is(err, ErrFutureEpoch) || errors.Is(err, ErrStaleEpoch) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				record(g, seq, data)
			}
		})
	}
	for c := range 4 {
		wg.Go(func() {
			st := sts[c%2]
			for i := range 30 {
				g := i % groups
				cur, err := st.Group(ctx, gid(g))
				if err != nil {
					t.Error(err)
					return
				}
				data := fmt.Sprintf("commit %d/%d of epoch %d", c, i, cur.Epoch)
				seq, _, err := st.Append(ctx, Message{GroupID: gid(g), Kind: "commit", Epoch: cur.Epoch, Sender: "alice", Data: []byte(data), ReceivedAt: now})
				if errors.Is(err, ErrCommitConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				commits.Add(1)
				record(g, seq, data)
			}
		})
	}
	wg.Wait()
	var total int64
	for g := range groups {
		var all []Message
		for after := int64(0); ; {
			ms, err := sts[1].Messages(ctx, gid(g), "alice", after, 1000, 1<<22)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) == 0 {
				break
			}
			all = append(all, ms...)
			after = ms[len(ms)-1].Seq
		}
		epochs := map[uint64]int{}
		for i, m := range all {
			if m.Seq != int64(i+1) {
				t.Fatalf("group %d: entry %d has seq %d (a gap)", g, i, m.Seq)
			}
			if want := accepted[key{g, m.Seq}]; want != string(m.Data) {
				t.Fatalf("group %d seq %d holds %q, answered for %q", g, m.Seq, m.Data, want)
			}
			if m.Kind == "commit" {
				epochs[m.Epoch]++
			}
		}
		st, err := sts[0].Group(ctx, gid(g))
		if err != nil {
			t.Fatal(err)
		}
		for e := range st.Epoch {
			if epochs[e] != 1 {
				t.Fatalf("group %d epoch %d has %d commits", g, e, epochs[e])
			}
		}
		if st.LastSeq != int64(len(all)) {
			t.Fatalf("group %d: last_seq %d, %d entries", g, st.LastSeq, len(all))
		}
		total += int64(len(all))
	}
	if total != int64(len(accepted)) {
		t.Fatalf("%d entries in the logs, %d answered", total, len(accepted))
	}
	t.Logf("%d entries (%d commits) over %d groups", total, commits.Load(), groups)
}

// TestBulkAppendWriteFails: a batch whose write statement fails on the
// server (a sender device that is not UTF-8, which PostgreSQL's text
// refuses) leaves nothing of itself: the transaction is rolled back, the
// connection goes back clean, the batcher passes each entry alone, the
// good ones land gapless and the store keeps working.
func TestBulkAppendWriteFails(t *testing.T) {
	ctx := context.Background()
	st := openPostgresAt(t, freshPG(t))
	now := time.Now()
	gid := []byte("bulk-fail")
	if err := st.CreateGroup(ctx, gid, "alice", 0, now); err != nil {
		t.Fatal(err)
	}
	msg := func(data, device string) Message {
		return Message{GroupID: gid, Kind: "application", Epoch: 0, Sender: "alice", SenderDevice: device, Data: []byte(data), ReceivedAt: now}
	}
	rs := st.AppendAll(ctx, []Message{msg("a", "d1"), msg("bad", "\xff\xfe"), msg("b", "d1")})
	if rs[0].Err != nil || rs[1].Err == nil || rs[2].Err != nil {
		t.Fatalf("outcomes %v / %v / %v", rs[0].Err, rs[1].Err, rs[2].Err)
	}
	for range 20 { // more than the pool's connections: none is left broken
		if _, _, err := st.Append(ctx, msg("c", "d1")); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := st.Messages(ctx, gid, "alice", 0, 1000, 1<<22)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 22 || string(ms[0].Data) != "a" || string(ms[1].Data) != "b" {
		t.Fatalf("%d entries, first %q", len(ms), ms[0].Data)
	}
	for i, m := range ms {
		if m.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d: a gap", i, m.Seq)
		}
	}
}
