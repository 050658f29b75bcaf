package sqlite_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
)

// TestHistorySeqs: history seqs stay gapless and per channel through what
// a batch of Update calls can do to them: a call that appends and then
// fails (its seq is given again), a channel deleted and created again in
// the batch (its seqs start again at 1, also for the calls after), a call
// that fails after such a delete; and across batches and a reopen. The
// store answers seqs from what it appended, not from a query per message
// (seqcache.go): these are the cases where that could go wrong.
func TestHistorySeqs(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	defer func() { s.Close() }()
	n := 0
	msg := func(ch string) store.Message {
		n++
		now := time.Now()
		return store.Message{ChannelID: ch, ID: fmt.Sprint("m", n), Sender: "alice", Timestamp: now, Body: []byte(fmt.Sprint("body ", n)), ReceivedAt: now}
	}
	channel := func(id string) store.Channel {
		return store.Channel{ID: id, GroupID: []byte("g-" + id), Name: id, CreatedAt: time.Now()}
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		return errors.Join(tx.PutChannel(ctx, channel("a")), tx.PutChannel(ctx, channel("b")))
	}); err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("refused after appending")
	// got[i] is what call i's appends were given, by channel.
	got := make([]map[string][]uint64, 8)
	appendTo := func(i int, tx store.Tx, chs ...string) error {
		for _, ch := range chs {
			seq, err := tx.AppendMessage(ctx, msg(ch))
			if err != nil {
				return err
			}
			if got[i] == nil {
				got[i] = map[string][]uint64{}
			}
			got[i][ch] = append(got[i][ch], seq)
		}
		return nil
	}
	recreate := func(tx store.Tx, id string) error {
		return errors.Join(tx.DeleteChannel(ctx, id), tx.PutChannel(ctx, channel(id)))
	}
	fns := []func(store.Tx) error{
		func(tx store.Tx) error { return appendTo(0, tx, "a", "a") },
		func(tx store.Tx) error { appendTo(1, tx, "a", "b"); return errRefused },
		func(tx store.Tx) error { return appendTo(2, tx, "a", "b") },
		func(tx store.Tx) error {
			if err := appendTo(3, tx, "a", "b"); err != nil {
				return err
			}
			if err := recreate(tx, "b"); err != nil {
				return err
			}
			return appendTo(3, tx, "b", "a")
		},
		func(tx store.Tx) error { return appendTo(4, tx, "b", "a") },
		func(tx store.Tx) error {
			if err := recreate(tx, "a"); err != nil {
				return err
			}
			appendTo(5, tx, "a")
			return errRefused
		},
		func(tx store.Tx) error { return appendTo(6, tx, "a", "b") },
	}
	release := holdWriter(t, s)
	outs := queue(t, s, nil, fns)
	release()
	for i, o := range outs {
		r := <-o
		if want := (i == 1 || i == 5); (r.err != nil) != want {
			t.Fatalf("call %d: %v", i, r.err)
		}
	}
	want := []map[string][]uint64{
		{"a": {1, 2}},
		{"a": {3}, "b": {1}}, // rolled back
		{"a": {3}, "b": {1}},
		{"a": {4, 5}, "b": {2, 1}}, // b deleted and created again after its 2
		{"b": {2}, "a": {6}},
		{"a": {1}}, // a deleted, then rolled back
		{"a": {7}, "b": {3}},
	}
	for i := range want {
		for ch, seqs := range want[i] {
			if !slices.Equal(got[i][ch], seqs) {
				t.Errorf("call %d: %s given %v, want %v", i, ch, got[i][ch], seqs)
			}
		}
	}
	history := func(ch string) []uint64 {
		t.Helper()
		ms, err := s.Messages(ctx, ch, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, m := range ms {
			seqs = append(seqs, m.Seq)
		}
		return seqs
	}
	check := func(ch string, n uint64) {
		t.Helper()
		var want []uint64
		for i := uint64(1); i <= n; i++ {
			want = append(want, i)
		}
		if h := history(ch); !slices.Equal(h, want) {
			t.Fatalf("%s's history has seqs %v, want 1..%d", ch, h, n)
		}
	}
	check("a", 7)
	check("b", 3)
	// The next batch, then after a reopen.
	for round := range 2 {
		if err := s.Update(ctx, func(tx store.Tx) error { return appendTo(7, tx, "a", "b") }); err != nil {
			t.Fatal(err)
		}
		check("a", uint64(8+round))
		check("b", uint64(4+round))
		if round == 0 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openAt(t, dir)
		}
	}
}

// BenchmarkAppendMessage: one history message per Update, as a node
// stores each message it receives (a commit and an fsync each).
func BenchmarkAppendMessage(b *testing.B) {
	s := openAt(b, b.TempDir())
	defer s.Close()
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: []byte("g"), Name: "c", CreatedAt: time.Now()})
	}); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 200)
	b.ResetTimer()
	for i := range b.N {
		now := time.Now()
		if err := s.Update(ctx, func(tx store.Tx) error {
			_, err := tx.AppendMessage(ctx, store.Message{ChannelID: "c", ID: fmt.Sprint("m", i), Sender: "alice", Timestamp: now, Body: body, ReceivedAt: now})
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}
