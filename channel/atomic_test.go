package channel_test

// A received message is in the history exactly when its key is consumed;
// ReceiveBatchFor gives each message the outcome ReceiveFor would.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/memory"
)

// flakyStore fails AppendMessage while armed, and counts the
// transactions that commit.
type flakyStore struct {
	store.Store
	fail    atomic.Bool
	commits atomic.Int64
}

var errDiskFull = errors.New("disk full")

func (s *flakyStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	err := s.Store.Update(ctx, func(tx store.Tx) error { return fn(flakyTx{tx, s}) })
	if err == nil {
		s.commits.Add(1)
	}
	return err
}

type flakyTx struct {
	store.Tx
	s *flakyStore
}

func (t flakyTx) AppendMessage(ctx context.Context, m store.Message) (uint64, error) {
	if t.s.fail.Load() {
		return 0, errDiskFull
	}
	return t.Tx.AppendMessage(ctx, m)
}

func historyOf(t testing.TB, p *peer, ch string) string {
	t.Helper()
	var out []string
	for _, m := range must[[]store.Message](t)(p.History(context.Background(), ch, 0, 1000)) {
		out = append(out, fmt.Sprintf("%d:%s", m.Seq, m.Body))
	}
	return fmt.Sprint(out)
}

// The history write failing leaves the ratchet where it was: the message
// is not lost but processes again, after a restart too.
func TestReceiveHistoryFailureKeepsMessage(t *testing.T) {
	ctx := context.Background()
	st := &flakyStore{Store: memory.New()}
	alice, bob := newPeer(t, "alice", nil), newPeerOn(t, "bob", nil, st)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	invite(t, alice, bob, ch)
	ct := send(t, alice, ch, "one")
	st.fail.Store(true)
	if _, err := bob.Receive(ctx, ct); !errors.Is(err, errDiskFull) {
		t.Fatalf("receive with a failing history: %v", err)
	}
	// The batch path too.
	if rs := bob.ReceiveBatchFor(ctx, ch, [][]byte{ct}); !errors.Is(rs[0].Err, errDiskFull) {
		t.Fatalf("batch receive with a failing history: %v", rs[0].Err)
	}
	st.fail.Store(false)
	if h := historyOf(t, bob, ch); h != "[]" {
		t.Fatalf("history %s", h)
	}
	bob = newPeerOn(t, "bob", nil, st) // a restart: only what was committed
	deliver(t, bob, ct, "alice", "one")
	if _, err := bob.Receive(ctx, ct); err == nil {
		t.Fatal("replay accepted")
	}
	// Without a restart as well.
	ct2 := send(t, alice, ch, "two")
	st.fail.Store(true)
	if _, err := bob.Receive(ctx, ct2); !errors.Is(err, errDiskFull) {
		t.Fatal(err)
	}
	st.fail.Store(false)
	deliver(t, bob, ct2, "alice", "two")
	if h := historyOf(t, bob, ch); h != "[1:one 2:two]" {
		t.Fatalf("history %s", h)
	}
	// Sending with a failing history returns no ciphertext.
	st.fail.Store(true)
	if _, ct, err := bob.SendMessage(ctx, ch, "lost", ""); !errors.Is(err, errDiskFull) || ct != nil {
		t.Fatalf("send with a failing history: %v", err)
	}
	st.fail.Store(false)
	deliver(t, alice, send(t, bob, ch, "three"), "bob", "three")
}

// evString is what must be identical between batch and one-by-one
// receipt.
func evString(r channel.Received) string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	ev := r.Event
	s := fmt.Sprintf("%v e%d from %s", ev.Kind, ev.Epoch, ev.Sender.Identity)
	if ev.Message != nil {
		s += fmt.Sprintf(" %q id=%s", ev.Message.Body, ev.Message.ID)
	}
	if len(ev.Joined)+len(ev.Removed)+len(ev.ProposedRemovals) > 0 {
		s += fmt.Sprintf(" +%v -%v ?%v", identities(ev.Joined), identities(ev.Removed), identities(ev.ProposedRemovals))
	}
	return s
}

// A batch mixing chat messages, refused messages, a proposal and a commit
// gives bob (batch) the same events, errors and history as dave (one by
// one), in fewer transactions; so does a batch passed again after each
// refused message (ReceiveUntilRefused, which ends at each of them).
func TestReceiveBatchSameAsOneByOne(t *testing.T) {
	for _, mode := range []string{"batch", "until refused"} {
		t.Run(mode, func(t *testing.T) { testReceiveBatch(t, mode) })
	}
}

// receiveAll passes batch to m's ReceiveBatchFor, or to ReceiveUntilRefused
// again after each refusal, checking that it ends there.
func receiveAll(t *testing.T, m *peer, ch string, batch [][]byte, mode string) []channel.Received {
	t.Helper()
	ctx := context.Background()
	if mode == "batch" {
		return m.ReceiveBatchFor(ctx, ch, batch)
	}
	var out []channel.Received
	for len(batch) > 0 {
		rs := m.ReceiveUntilRefused(ctx, ch, batch)
		if len(rs) == 0 || len(rs) > len(batch) {
			t.Fatalf("%d outcomes for %d messages", len(rs), len(batch))
		}
		for i, r := range rs[:len(rs)-1] {
			if r.Err != nil {
				t.Fatalf("went on past refused message %d: %v", len(out)+i, r.Err)
			}
		}
		if last := rs[len(rs)-1]; last.Err == nil && len(rs) < len(batch) {
			t.Fatalf("stopped at message %d, which it accepted", len(out)+len(rs)-1)
		}
		out = append(out, rs...)
		batch = batch[len(rs):]
	}
	return out
}

func testReceiveBatch(t *testing.T, mode string) {
	ctx := context.Background()
	alice, _, carol, ch := threeParty(t)
	bst, dst := &flakyStore{Store: memory.New()}, &flakyStore{Store: memory.New()}
	bob, dave := newPeerOn(t, "bob", nil, bst), newPeerOn(t, "dave", nil, dst)
	for _, p := range []*peer{bob, dave} {
		commit := invite(t, alice, p, ch)
		receiveKind(t, carol, commit, channel.EventMemberJoined)
		if p == dave {
			receiveKind(t, bob, commit, channel.EventMemberJoined)
		}
	}
	a0, a1, c0 := send(t, alice, ch, "a0"), send(t, alice, ch, "a1"), send(t, carol, ch, "c0")
	tampered := bytes.Clone(a1)
	tampered[len(tampered)-3] ^= 1
	a2 := send(t, alice, ch, "a2")
	leave := must[[]byte](t)(carol.Leave(ctx, ch))
	receiveKind(t, alice, leave, channel.EventProposal)
	commit := must[[]byte](t)(alice.SelfUpdate(ctx, ch))
	a3, a4 := send(t, alice, ch, "a3"), send(t, alice, ch, "a4")
	batch := [][]byte{a0, tampered, a1, c0, []byte("garbage"), a2, leave, a0, commit, a3, a4, a3}

	var want []string
	for _, m := range batch {
		ev, err := dave.ReceiveFor(ctx, ch, m)
		want = append(want, evString(channel.Received{Event: ev, Err: err}))
	}
	before := bst.commits.Load()
	var got []string
	for _, r := range receiveAll(t, bob, ch, batch, mode) {
		got = append(got, evString(r))
	}
	txs := bst.commits.Load() - before
	for i := range batch {
		if got[i] != want[i] {
			t.Errorf("message %d: batch %s, one by one %s", i, got[i], want[i])
		}
	}
	if t.Failed() {
		return
	}
	oneByOne := 0
	for _, w := range want {
		if !strings.HasPrefix(w, "error") {
			oneByOne++
		}
	}
	t.Logf("%d messages: %d transactions in a batch, %d one by one", len(batch), txs, oneByOne)
	if txs >= int64(oneByOne) {
		t.Errorf("%d transactions for the batch", txs)
	}
	if hb, hd := historyOf(t, bob, ch), historyOf(t, dave, ch); hb != hd || hb != `[1:a0 2:a1 3:c0 4:a2 5:a3 6:a4]` {
		t.Fatalf("bob's history %s, dave's %s", hb, hd)
	}
	// Replaying the batch changes nothing.
	for i, r := range receiveAll(t, bob, ch, batch, mode) {
		if r.Err == nil {
			t.Fatalf("replayed message %d accepted", i)
		}
	}
	// A restart finds everything stored.
	bob = newPeerOn(t, "bob", nil, bst)
	deliver(t, bob, send(t, alice, ch, "a5"), "alice", "a5")
}

// Removed in the middle of a batch: the removal is the event, the rest is
// refused as it would be one by one.
func TestReceiveBatchRemoved(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	a0 := send(t, alice, ch, "a0")
	rm := must[[]byte](t)(alice.RemoveMember(ctx, ch, uid("bob")))
	a1 := send(t, alice, ch, "a1")
	receiveKind(t, carol, rm, channel.EventMemberRemoved)
	rs := bob.ReceiveBatchFor(ctx, ch, [][]byte{a0, rm, a1})
	if rs[0].Err != nil || rs[1].Err != nil || rs[1].Event.Kind != channel.EventRemoved || !errors.Is(rs[2].Err, channel.ErrNotMember) {
		t.Fatalf("%v / %v / %v", evString(rs[0]), evString(rs[1]), rs[2].Err)
	}
	if h := historyOf(t, bob, ch); h != "[1:a0]" {
		t.Fatalf("history %s", h)
	}
}

// A GroupProvider whose state is not in the Manager's store (the fake)
// gets one message at a time.
func TestReceiveBatchFake(t *testing.T) {
	ctx := context.Background()
	alice, bob := newFake("alice"), newFake("bob")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	fakeInvite(t, alice, bob, ch)
	var ms [][]byte
	for _, body := range []string{"m0", "m1"} {
		_, m, err := alice.SendMessage(ctx, ch, body, "")
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	rs := bob.ReceiveBatchFor(ctx, ch, [][]byte{ms[0], []byte("garbage"), ms[0], ms[1]})
	if rs[0].Err != nil || string(rs[0].Event.Message.Body) != "m0" || rs[1].Err == nil || rs[2].Err == nil ||
		rs[3].Err != nil || string(rs[3].Event.Message.Body) != "m1" {
		t.Fatalf("%s / %s / %s / %s", evString(rs[0]), evString(rs[1]), evString(rs[2]), evString(rs[3]))
	}
}

// SendChatWith runs its hook in the transaction that appends the message,
// with the ciphertext returned: a failing hook records nothing and
// returns no ciphertext, and the next message still reaches the receiver
// (no generation is used twice).
func TestSendChatWithHookInTransaction(t *testing.T) {
	ctx := context.Background()
	st := &flakyStore{Store: memory.New()}
	alice, bob := newPeer(t, "alice", nil), newPeerOn(t, "bob", nil, st)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	invite(t, alice, bob, ch)
	commits := st.commits.Load()
	_, ct, err := bob.SendChatWith(ctx, ch, "lost", "", func(tx store.Tx, cm *channel.ChatMessage, ct []byte) error {
		// The history row is in this transaction already.
		if ms, err := tx.Messages(ctx, ch, 0, 10); err != nil || len(ms) != 1 || ms[0].ID != cm.ID {
			t.Errorf("history row not in the hook's transaction: %v %v", ms, err)
		}
		return errDiskFull
	})
	if !errors.Is(err, errDiskFull) || ct != nil {
		t.Fatalf("failing hook: ct %d bytes, %v", len(ct), err)
	}
	if h := historyOf(t, bob, ch); h != "[]" || st.commits.Load() != commits {
		t.Fatalf("failing hook left history %s, %d commits", h, st.commits.Load()-commits)
	}
	var seen []byte
	cm, ct, err := bob.SendChatWith(ctx, ch, "kept", "", func(tx store.Tx, _ *channel.ChatMessage, ct []byte) error {
		seen = bytes.Clone(ct)
		return nil
	})
	if err != nil || !bytes.Equal(seen, ct) {
		t.Fatalf("hook saw %d bytes of %d, %v", len(seen), len(ct), err)
	}
	if ev := deliver(t, alice, ct, "bob", "kept"); ev.Message.ID != cm.ID {
		t.Fatalf("delivered id %s, sent %s", ev.Message.ID, cm.ID)
	}
	if h := historyOf(t, bob, ch); h != "[1:kept]" {
		t.Fatalf("history %s", h)
	}
}

// ReceiveUntilRefused with a GroupProvider outside the store (the fake)
// ends at the first refused message too.
func TestReceiveUntilRefusedFake(t *testing.T) {
	ctx := context.Background()
	alice, bob := newFake("alice"), newFake("bob")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	fakeInvite(t, alice, bob, ch)
	_, m0, err := alice.SendMessage(ctx, ch, "m0", "")
	if err != nil {
		t.Fatal(err)
	}
	_, m1, err := alice.SendMessage(ctx, ch, "m1", "")
	if err != nil {
		t.Fatal(err)
	}
	rs := bob.ReceiveUntilRefused(ctx, ch, [][]byte{m0, []byte("garbage"), m1})
	if len(rs) != 2 || rs[0].Err != nil || rs[1].Err == nil {
		t.Fatalf("%d outcomes: %v", len(rs), rs)
	}
	if rs := bob.ReceiveUntilRefused(ctx, ch, [][]byte{m1}); len(rs) != 1 || rs[0].Err != nil || string(rs[0].Event.Message.Body) != "m1" {
		t.Fatalf("then: %v", rs)
	}
}
