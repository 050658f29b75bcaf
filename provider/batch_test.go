package provider_test

// ProcessWith, ProcessBatch and EncryptWith: extra writes share the
// transaction of the state, and a batch is stored once.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/memory"
)

// countingStore counts the transactions that commit.
type countingStore struct {
	store.Store
	commits atomic.Int64
}

func (s *countingStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	err := s.Store.Update(ctx, fn)
	if err == nil {
		s.commits.Add(1)
	}
	return err
}

func openOn(t testing.TB, st store.Store, name string) *provider.Provider {
	t.Helper()
	p, err := provider.New(ctx, st, provider.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// batchPair makes a group of alice and bob; bob's store counts commits.
// restart gives a new provider over bob's store: it knows only what was
// committed.
func batchPair(t *testing.T) (alice, bob *provider.Provider, bst *countingStore, gid []byte, restart func() *provider.Provider) {
	t.Helper()
	bst = &countingStore{Store: memory.New()}
	alice, bob = openOn(t, memory.New(), "alice"), openOn(t, bst, "bob")
	kps, err := bob.GenerateKeyPackages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if gid, err = alice.CreateGroup(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{keyPackage(t, enc(kps[0]))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	return alice, bob, bst, gid, func() *provider.Provider { return openOn(t, bst, "bob") }
}

func msgOf(t testing.TB, s string) *mls.Message {
	t.Helper()
	m, err := mls.UnmarshalMessage(mustDec(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func texts(t testing.TB, p *provider.Provider, gid []byte, n int, prefix string) []*mls.Message {
	t.Helper()
	out := make([]*mls.Message, n)
	for i := range out {
		out[i] = msgOf(t, encrypt(t, p, gid, fmt.Sprintf("%s%d", prefix, i)))
	}
	return out
}

// psk is a marker row written by callbacks: found only if their
// transaction committed.
func pskID(i int) []byte { return fmt.Appendf(nil, "marker-%d", i) }

func hasMarker(t testing.TB, st store.Store, i int) bool {
	t.Helper()
	_, err := st.ExternalPSK(ctx, pskID(i))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

var errBoom = errors.New("history write failed")

// The callback's write failing (a history row that cannot be written)
// leaves the ratchet where it was: the message processes again, even
// after a restart, and only then counts as consumed.
func TestProcessWithFailureKeepsMessage(t *testing.T) {
	alice, bob, bst, gid, restart := batchPair(t)
	m := msgOf(t, encrypt(t, alice, gid, "hello"))
	_, err := bob.ProcessWith(ctx, gid, m, func(tx store.Tx, res *mls.Processed) error {
		if err := tx.PutExternalPSK(ctx, pskID(0), []byte("x")); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("ProcessWith: %v, want %v", err, errBoom)
	}
	if hasMarker(t, bst, 0) {
		t.Fatal("the failed transaction's write was kept")
	}
	bob = restart()
	res, err := bob.ProcessWith(ctx, gid, m, func(tx store.Tx, res *mls.Processed) error {
		return tx.PutExternalPSK(ctx, pskID(0), res.ApplicationData)
	})
	if err != nil || string(res.ApplicationData) != "hello" {
		t.Fatalf("processing again after the failure: %v", err)
	}
	if !hasMarker(t, bst, 0) {
		t.Fatal("the callback's write is missing")
	}
	if _, err := restart().Process(ctx, gid, m); err == nil {
		t.Fatal("replay after a stored receive was accepted")
	}
	// The same without a restart: the cached state must not have advanced.
	m2 := msgOf(t, encrypt(t, alice, gid, "again"))
	if _, err := bob.ProcessWith(ctx, gid, m2, func(store.Tx, *mls.Processed) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if got := receive(t, bob, gid, marshal(t, m2)); got != "again" {
		t.Fatalf("got %q", got)
	}
}

func TestProcessBatchInOrderOneCommit(t *testing.T) {
	alice, bob, bst, gid, restart := batchPair(t)
	msgs := texts(t, alice, gid, 6, "m")
	before := bst.commits.Load()
	var got []string
	n, err := bob.ProcessBatch(ctx, gid, msgs, func(tx store.Tx, i int, res *mls.Processed) error {
		got = append(got, fmt.Sprintf("%d:%s", i, res.ApplicationData))
		return tx.PutExternalPSK(ctx, pskID(i), res.ApplicationData)
	})
	if n != len(msgs) || err != nil {
		t.Fatalf("ProcessBatch: %d, %v", n, err)
	}
	if fmt.Sprint(got) != "[0:m0 1:m1 2:m2 3:m3 4:m4 5:m5]" {
		t.Fatalf("callbacks %v", got)
	}
	if c := bst.commits.Load() - before; c != 1 {
		t.Fatalf("%d transactions for one batch, want 1", c)
	}
	for i := range msgs {
		if !hasMarker(t, bst, i) {
			t.Fatalf("marker %d missing", i)
		}
	}
	// Replaying the batch is refused, before and after a restart, and
	// changes nothing.
	for _, p := range []*provider.Provider{bob, restart()} {
		if n, err := p.ProcessBatch(ctx, gid, msgs, nil); n != 0 || err == nil {
			t.Fatalf("replayed batch: %d, %v", n, err)
		}
		if n, err := p.ProcessBatch(ctx, gid, msgs[3:], nil); n != 0 || err == nil {
			t.Fatalf("replayed tail: %d, %v", n, err)
		}
	}
	bob = restart()
	if got := receive(t, bob, gid, encrypt(t, alice, gid, "next")); got != "next" {
		t.Fatalf("got %q", got)
	}
}

// A rejected message stops the batch: what came before it is stored, it
// changes nothing, and the rest can follow in another batch.
func TestProcessBatchBadMessageInMiddle(t *testing.T) {
	alice, bob, bst, gid, restart := batchPair(t)
	msgs := texts(t, alice, gid, 5, "m")
	bad := msgOf(t, marshal(t, msgs[2]))
	ct := bad.PrivateMessage.Ciphertext
	ct[len(ct)-1] ^= 1
	batch := []*mls.Message{msgs[0], msgs[1], bad, msgs[3], msgs[4]}
	var called []int
	n, err := bob.ProcessBatch(ctx, gid, batch, func(tx store.Tx, i int, res *mls.Processed) error {
		called = append(called, i)
		return tx.PutExternalPSK(ctx, pskID(i), res.ApplicationData)
	})
	if n != 2 || err == nil {
		t.Fatalf("ProcessBatch: %d, %v; want 2 and the tampered message's error", n, err)
	}
	if fmt.Sprint(called) != "[0 1]" || !hasMarker(t, bst, 0) || !hasMarker(t, bst, 1) || hasMarker(t, bst, 2) {
		t.Fatalf("callbacks %v", called)
	}
	bob = restart()
	if n, err := bob.ProcessBatch(ctx, gid, batch[3:], nil); n != 2 || err != nil {
		t.Fatalf("rest of the batch: %d, %v", n, err)
	}
	if got := receive(t, restart(), gid, marshal(t, msgs[2])); got != "m2" {
		t.Fatalf("the untampered message: %q", got)
	}
	if _, err := restart().Process(ctx, gid, msgs[0]); err == nil {
		t.Fatal("message before the bad one not stored as consumed")
	}
}

// A commit in the middle: the messages after it are processed in the new
// epoch and the state after the last one is stored.
func TestProcessBatchCommitInMiddle(t *testing.T) {
	alice, bob, bst, gid, restart := batchPair(t)
	old := texts(t, alice, gid, 2, "old")
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newer := texts(t, alice, gid, 2, "new")
	batch := []*mls.Message{old[0], old[1], res.Commit, newer[0], newer[1]}
	before := bst.commits.Load()
	var kinds []string
	n, err := bob.ProcessBatch(ctx, gid, batch, func(tx store.Tx, i int, r *mls.Processed) error {
		kinds = append(kinds, fmt.Sprintf("%v@%d", r.ContentType, r.State.Epoch()))
		return nil
	})
	if n != len(batch) || err != nil {
		t.Fatalf("ProcessBatch: %d, %v", n, err)
	}
	if c := bst.commits.Load() - before; c != 1 {
		t.Fatalf("%d transactions, want 1", c)
	}
	e := epochOf(t, alice, gid)
	want := fmt.Sprintf("[%v@%d %v@%d %v@%d %v@%d %v@%d]", mls.ContentTypeApplication, e-1, mls.ContentTypeApplication, e-1,
		mls.ContentTypeCommit, e, mls.ContentTypeApplication, e, mls.ContentTypeApplication, e)
	if fmt.Sprint(kinds) != want {
		t.Fatalf("results %v, want %v", kinds, want)
	}
	bob = restart()
	if epochOf(t, bob, gid) != e {
		t.Fatalf("stored epoch %d, want %d", epochOf(t, bob, gid), e)
	}
	if n, err := bob.ProcessBatch(ctx, gid, newer, nil); n != 0 || err == nil {
		t.Fatalf("replay after restart: %d, %v", n, err)
	}
	if got := receive(t, bob, gid, encrypt(t, alice, gid, "later")); got != "later" {
		t.Fatalf("got %q", got)
	}
	if got := receive(t, alice, gid, encrypt(t, bob, gid, "back")); got != "back" {
		t.Fatalf("got %q", got)
	}
}

// The callback failing on message 2: messages 0 and 1 are stored (their
// callbacks run again), message 2 on is not processed.
func TestProcessBatchCallbackFails(t *testing.T) {
	alice, bob, bst, gid, restart := batchPair(t)
	msgs := texts(t, alice, gid, 4, "m")
	var called []int
	n, err := bob.ProcessBatch(ctx, gid, msgs, func(tx store.Tx, i int, res *mls.Processed) error {
		called = append(called, i)
		if i == 2 {
			return errBoom
		}
		return tx.PutExternalPSK(ctx, pskID(i), res.ApplicationData)
	})
	if n != 2 || !errors.Is(err, errBoom) {
		t.Fatalf("ProcessBatch: %d, %v", n, err)
	}
	if fmt.Sprint(called) != "[0 1 2 0 1]" {
		t.Fatalf("callbacks %v", called)
	}
	if !hasMarker(t, bst, 0) || !hasMarker(t, bst, 1) || hasMarker(t, bst, 2) {
		t.Fatal("wrong writes kept")
	}
	for _, p := range []*provider.Provider{bob, restart()} {
		if _, err := p.Process(ctx, gid, msgs[1]); err == nil {
			t.Fatal("stored message processed again")
		}
	}
	if n, err := bob.ProcessBatch(ctx, gid, msgs[2:], nil); n != 2 || err != nil {
		t.Fatalf("the rest: %d, %v", n, err)
	}
}

// EncryptWith: a failing write returns no message and nothing of it is
// stored; every message that was returned decrypts, in order, across
// restarts too (a generation handed out twice would be refused).
func TestEncryptWith(t *testing.T) {
	alice, bob, bst, gid, restart := batchPair(t)
	for i := range 2 * provider.DefaultSendReservation {
		fail := i%5 == 0
		m, err := bob.EncryptWith(ctx, gid, fmt.Appendf(nil, "b%d", i), nil, func(tx store.Tx, m *mls.Message) error {
			if m == nil {
				return errors.New("no message")
			}
			if err := tx.PutExternalPSK(ctx, pskID(i), []byte("x")); err != nil {
				return err
			}
			if fail {
				return errBoom
			}
			return nil
		})
		switch {
		case fail && (m != nil || !errors.Is(err, errBoom)):
			t.Fatalf("send %d: %v, %v", i, m, err)
		case fail:
			if hasMarker(t, bst, i) {
				t.Fatalf("send %d: failed write kept", i)
			}
		case err != nil:
			t.Fatalf("send %d: %v", i, err)
		default:
			if !hasMarker(t, bst, i) {
				t.Fatalf("send %d: write missing", i)
			}
			if got := receive(t, alice, gid, marshal(t, m)); got != fmt.Sprintf("b%d", i) {
				t.Fatalf("send %d: alice got %q", i, got)
			}
		}
		if i%7 == 6 {
			bob = restart()
		}
	}
}
