package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

func newTestTree(t testing.TB, leaves uint32, opts Options) *SecretTree {
	t.Helper()
	s := suite.MustNew(1)
	st, err := NewSecretTree(s, seq(32, 0x42), leaves, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// senderKeys returns the first n keys a sender on leaf derives.
func senderKeys(t testing.TB, leaves uint32, leaf tree.LeafIndex, rt RatchetType, n int) []KeyNonce {
	t.Helper()
	st := newTestTree(t, leaves, Options{})
	var out []KeyNonce
	for i := 0; i < n; i++ {
		kn, err := st.NextSenderKey(leaf, rt)
		if err != nil {
			t.Fatal(err)
		}
		if kn.Generation != uint32(i) {
			t.Fatalf("sender generation %d, want %d", kn.Generation, i)
		}
		out = append(out, kn)
	}
	return out
}

func sameKey(t *testing.T, got, want KeyNonce) {
	t.Helper()
	if got.Generation != want.Generation || !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Nonce, want.Nonce) {
		t.Fatalf("key of generation %d differs from the sender's (generation %d)", got.Generation, want.Generation)
	}
}

func TestOutOfOrderWithinWindow(t *testing.T) {
	want := senderKeys(t, 8, 5, ApplicationRatchet, 20)
	st := newTestTree(t, 8, Options{})
	for _, g := range []uint32{3, 0, 10, 1, 2, 19, 4, 11, 9, 5, 6, 7, 8, 12, 18, 13, 14, 15, 16, 17} {
		kn, err := st.ReceiverKey(5, ApplicationRatchet, g)
		if err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
		sameKey(t, kn, want[g])
	}
	// Everything consumed: every generation is now a replay.
	for g := uint32(0); g < 20; g++ {
		if _, err := st.ReceiverKey(5, ApplicationRatchet, g); !errors.Is(err, ErrKeyConsumed) {
			t.Fatalf("replay of %d: %v", g, err)
		}
	}
	if r := st.leaves[5].application; len(r.retained) != 0 {
		t.Errorf("%d keys retained after all were used", len(r.retained))
	}
	// The handshake ratchet of the same leaf is independent.
	hs := senderKeys(t, 8, 5, HandshakeRatchet, 1)
	kn, err := st.ReceiverKey(5, HandshakeRatchet, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, kn, hs[0])
}

func TestReplayFails(t *testing.T) {
	st := newTestTree(t, 4, Options{})
	if _, err := st.ReceiverKey(2, HandshakeRatchet, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReceiverKey(2, HandshakeRatchet, 0); !errors.Is(err, ErrKeyConsumed) {
		t.Fatalf("replay: %v", err)
	}
	// A skipped and then used key, replayed.
	if _, err := st.ReceiverKey(2, HandshakeRatchet, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReceiverKey(2, HandshakeRatchet, 1); err != nil {
		t.Fatal(err)
	}
	for _, g := range []uint32{1, 3} {
		if _, err := st.ReceiverKey(2, HandshakeRatchet, g); !errors.Is(err, ErrKeyConsumed) {
			t.Fatalf("replay of %d: %v", g, err)
		}
	}
	// A sender's own key is gone once handed out.
	snd := newTestTree(t, 4, Options{})
	kn, _ := snd.NextSenderKey(1, ApplicationRatchet)
	if _, err := snd.ReceiverKey(1, ApplicationRatchet, kn.Generation); !errors.Is(err, ErrKeyConsumed) {
		t.Fatalf("sender key reuse: %v", err)
	}
	if g, _ := snd.NextGeneration(1, ApplicationRatchet); g != 1 {
		t.Fatalf("next generation %d", g)
	}
}

func TestGenerationBeyondWindow(t *testing.T) {
	st := newTestTree(t, 4, Options{})
	if _, err := st.ReceiverKey(0, ApplicationRatchet, DefaultMaxForward+1); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("beyond default window: %v", err)
	}
	if _, err := st.ReceiverKey(0, ApplicationRatchet, DefaultMaxForward); err != nil {
		t.Fatalf("at the edge of the window: %v", err)
	}
	// The window moves with the ratchet.
	if _, err := st.ReceiverKey(0, ApplicationRatchet, 2*DefaultMaxForward+1); err != nil {
		t.Fatalf("edge of the moved window: %v", err)
	}
	if _, err := st.ReceiverKey(0, ApplicationRatchet, 3*DefaultMaxForward+3); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("beyond moved window: %v", err)
	}

	small := newTestTree(t, 4, Options{MaxForward: 5})
	if _, err := small.ReceiverKey(3, HandshakeRatchet, 6); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("beyond configured window: %v", err)
	}
	if _, err := small.ReceiverKey(3, HandshakeRatchet, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := small.ReceiverKey(3, HandshakeRatchet, 0xffffffff); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("max generation: %v", err)
	}
}

func TestRetentionCap(t *testing.T) {
	want := senderKeys(t, 2, 1, ApplicationRatchet, 40)
	st := newTestTree(t, 2, Options{MaxRetained: 4})
	// Skip 0..9: only 6..9 are retained.
	if _, err := st.ReceiverKey(1, ApplicationRatchet, 10); err != nil {
		t.Fatal(err)
	}
	for g := uint32(0); g < 6; g++ {
		if _, err := st.ReceiverKey(1, ApplicationRatchet, g); !errors.Is(err, ErrGenerationTooOld) {
			t.Fatalf("generation %d: %v", g, err)
		}
	}
	kn, err := st.ReceiverKey(1, ApplicationRatchet, 7)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, kn, want[7])
	// 6, 8, 9 retained; skipping 11..12 adds two and evicts 6.
	if _, err := st.ReceiverKey(1, ApplicationRatchet, 13); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReceiverKey(1, ApplicationRatchet, 6); !errors.Is(err, ErrGenerationTooOld) {
		t.Fatalf("evicted generation: %v", err)
	}
	for _, g := range []uint32{8, 9, 11, 12} {
		kn, err := st.ReceiverKey(1, ApplicationRatchet, g)
		if err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
		sameKey(t, kn, want[g])
	}
	// Strictly in order: nothing retained.
	strict := newTestTree(t, 2, Options{MaxRetained: -1})
	if _, err := strict.ReceiverKey(0, HandshakeRatchet, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := strict.ReceiverKey(0, HandshakeRatchet, 2); !errors.Is(err, ErrGenerationTooOld) {
		t.Fatalf("strict: %v", err)
	}
}

func TestOpenWithFailureKeepsKey(t *testing.T) {
	want := senderKeys(t, 4, 3, ApplicationRatchet, 6)
	st := newTestTree(t, 4, Options{})
	bad := errors.New("forged")
	fail := func(KeyNonce) error { return bad }
	before := fmt.Sprint(st.State())
	if err := st.OpenWith(3, ApplicationRatchet, 5, fail); !errors.Is(err, bad) {
		t.Fatalf("OpenWith: %v", err)
	}
	// Not even the first use of the leaf is stored (its derivation).
	if after := fmt.Sprint(st.State()); after != before || st.leaves[3] != nil {
		t.Fatalf("failed open changed the tree: %s -> %s", before, after)
	}
	var got KeyNonce
	if err := st.OpenWith(3, ApplicationRatchet, 5, func(kn KeyNonce) error { got = kn; return nil }); err != nil {
		t.Fatal(err)
	}
	sameKey(t, got, want[5])
	// A failed open of a retained key keeps it too.
	if err := st.OpenWith(3, ApplicationRatchet, 2, fail); !errors.Is(err, bad) {
		t.Fatal(err)
	}
	kn, err := st.ReceiverKey(3, ApplicationRatchet, 2)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, kn, want[2])
}

func TestLazyDerivation(t *testing.T) {
	st := newTestTree(t, 10000, Options{})
	if _, err := st.NextSenderKey(7777, ApplicationRatchet); err != nil {
		t.Fatal(err)
	}
	// 10000 leaves are shaped as 16384 = 2^14: the path to one leaf leaves
	// exactly the 14 copath secrets behind, and no ancestor of the leaf.
	if len(st.nodes) != 14 || len(st.leaves) != 1 {
		t.Fatalf("%d node secrets and %d leaves stored", len(st.nodes), len(st.leaves))
	}
	for _, x := range tree.DirectPath(7777, 16384) {
		if _, ok := st.nodes[x]; ok {
			t.Fatalf("consumed node %d still stored", x)
		}
	}
	if _, ok := st.nodes[tree.LeafIndex(7777).Node()]; ok {
		t.Fatal("consumed leaf secret still stored")
	}
	// Keys agree with a tree that derives the leaves in another order.
	other := newTestTree(t, 10000, Options{})
	for _, l := range []tree.LeafIndex{0, 9999, 7776, 7778} {
		if _, err := other.ReceiverKey(l, HandshakeRatchet, 0); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := st.NextSenderKey(7777, ApplicationRatchet)
	b, err := other.ReceiverKey(7777, ApplicationRatchet, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, b, a)
	for _, l := range []tree.LeafIndex{10000, 16383, 1 << 31} {
		if _, err := st.NextSenderKey(l, ApplicationRatchet); !errors.Is(err, ErrLeafOutOfRange) {
			t.Fatalf("leaf %d: %v", l, err)
		}
		if _, err := st.NextGeneration(l, ApplicationRatchet); !errors.Is(err, ErrLeafOutOfRange) {
			t.Fatalf("leaf %d: %v", l, err)
		}
	}
	if _, err := st.ReceiverKey(1, 0, 0); !errors.Is(err, ErrInvalidRatchetType) {
		t.Fatalf("ratchet type 0: %v", err)
	}
}

func TestSingleLeafTree(t *testing.T) {
	st := newTestTree(t, 1, Options{})
	if _, err := st.NextSenderKey(0, HandshakeRatchet); err != nil {
		t.Fatal(err)
	}
	if len(st.nodes) != 0 {
		t.Fatal("leaf secret kept")
	}
}

func roundTrip(t testing.TB, st *SecretTree, opts Options) *SecretTree {
	t.Helper()
	enc, err := wire.Marshal(st.State())
	if err != nil {
		t.Fatal(err)
	}
	var dec SecretTreeState
	if err := wire.Unmarshal(enc, &dec); err != nil {
		t.Fatal(err)
	}
	again, err := wire.Marshal(&dec)
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("state re-encoding differs: %v", err)
	}
	back, err := RestoreSecretTree(st.suite, &dec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestStateRoundTrip(t *testing.T) {
	want := senderKeys(t, 32, 9, ApplicationRatchet, 30)
	st := newTestTree(t, 32, Options{})
	if _, err := st.ReceiverKey(9, ApplicationRatchet, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReceiverKey(20, HandshakeRatchet, 2); err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, st, Options{})
	for _, g := range []uint32{3, 25, 11, 0} {
		kn, err := back.ReceiverKey(9, ApplicationRatchet, g)
		if err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
		sameKey(t, kn, want[g])
	}
	if _, err := back.ReceiverKey(9, ApplicationRatchet, 10); !errors.Is(err, ErrKeyConsumed) {
		t.Fatalf("replay after restore: %v", err)
	}
	// A fresh tree's state and an untouched leaf also survive.
	fresh := roundTrip(t, newTestTree(t, 32, Options{}), Options{})
	kn, err := fresh.ReceiverKey(9, ApplicationRatchet, 29)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, kn, want[29])
}

func TestStateRoundTripPartialTree(t *testing.T) {
	// 5 leaves are shaped as 8: using leaf 4 must not keep secrets for 5..7.
	st := newTestTree(t, 5, Options{})
	want, err := st.NextSenderKey(4, ApplicationRatchet)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.nodes) != 1 { // node 3 (leaves 0..3); node 13 and leaf 5 dropped
		t.Fatalf("%d node secrets stored", len(st.nodes))
	}
	back := roundTrip(t, st, Options{})
	for l := tree.LeafIndex(0); l < 5; l++ {
		if _, err := back.NextSenderKey(l, HandshakeRatchet); err != nil {
			t.Fatalf("leaf %d: %v", l, err)
		}
	}
	other := newTestTree(t, 5, Options{})
	kn, err := other.ReceiverKey(4, ApplicationRatchet, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, kn, want)
}

func TestRatchetExhaustion(t *testing.T) {
	st := newTestTree(t, 2, Options{})
	if _, err := st.NextSenderKey(0, ApplicationRatchet); err != nil {
		t.Fatal(err)
	}
	state := st.State()
	state.Leaves[0].Application.Next = 0xfffffffe
	st, err := RestoreSecretTree(st.suite, state, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []uint32{0xfffffffe, 0xffffffff} {
		kn, err := st.NextSenderKey(0, ApplicationRatchet)
		if err != nil || kn.Generation != g {
			t.Fatalf("generation %d: %v", kn.Generation, err)
		}
	}
	if _, err := st.NextSenderKey(0, ApplicationRatchet); !errors.Is(err, ErrRatchetExhausted) {
		t.Fatalf("after 2^32-1: %v", err)
	}
	if _, err := st.NextGeneration(0, ApplicationRatchet); !errors.Is(err, ErrRatchetExhausted) {
		t.Fatalf("next generation: %v", err)
	}
	if _, err := st.ReceiverKey(0, ApplicationRatchet, 0xffffffff); !errors.Is(err, ErrKeyConsumed) {
		t.Fatalf("receive after exhaustion: %v", err)
	}
	roundTrip(t, st, Options{})
}

func TestRestoreRejectsInconsistentState(t *testing.T) {
	s := suite.MustNew(1)
	st := newTestTree(t, 8, Options{})
	if _, err := st.ReceiverKey(3, ApplicationRatchet, 4); err != nil {
		t.Fatal(err)
	}
	good := st.State()
	sec := seq(32, 0)
	for name, mutate := range map[string]func(*SecretTreeState){
		"zero leaves":        func(s *SecretTreeState) { s.LeafCount = 0 },
		"node outside":       func(s *SecretTreeState) { s.Nodes = append(s.Nodes, NodeSecret{Node: 15, Secret: sec}) },
		"leaf outside":       func(s *SecretTreeState) { s.Leaves[0].Leaf = 8 },
		"ancestor stored":    func(s *SecretTreeState) { s.Nodes = append(s.Nodes, NodeSecret{Node: 7, Secret: sec}) },
		"leaf and secret":    func(s *SecretTreeState) { s.Nodes = append(s.Nodes, NodeSecret{Node: 6, Secret: sec}) },
		"short node secret":  func(s *SecretTreeState) { s.Nodes[0].Secret = sec[:5] },
		"duplicate node":     func(s *SecretTreeState) { s.Nodes = append(s.Nodes, s.Nodes[0]) },
		"short ratchet":      func(s *SecretTreeState) { s.Leaves[0].Handshake.Secret = sec[:1] },
		"short retained key": func(s *SecretTreeState) { s.Leaves[0].Application.Retained[0].Key = sec[:3] },
		"floor above next":   func(s *SecretTreeState) { s.Leaves[0].Application.Floor = 9 },
		"retained unsorted": func(s *SecretTreeState) {
			r := s.Leaves[0].Application.Retained
			r[0], r[1] = r[1], r[0]
		},
		"exhausted with secret": func(s *SecretTreeState) { s.Leaves[0].Handshake.Next = exhausted },
		"leaf uncovered":        func(s *SecretTreeState) { s.Nodes = s.Nodes[1:] },
		"no secrets":            func(s *SecretTreeState) { s.Nodes, s.Leaves = nil, nil },
		"next beyond 2^32":      func(s *SecretTreeState) { s.Leaves[0].Handshake.Next = exhausted + 1 },
	} {
		bad := *good
		bad.Nodes = append([]NodeSecret(nil), good.Nodes...)
		bad.Leaves = []LeafRatchetState{{Leaf: good.Leaves[0].Leaf,
			Handshake:   good.Leaves[0].Handshake,
			Application: RatchetState{Next: good.Leaves[0].Application.Next, Secret: good.Leaves[0].Application.Secret, Retained: cloneKeys(good.Leaves[0].Application.Retained)}}}
		mutate(&bad)
		if _, err := RestoreSecretTree(s, &bad, Options{}); !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := RestoreSecretTree(s, good, Options{}); err != nil {
		t.Fatalf("good state: %v", err)
	}
}

func FuzzSecretTreeState(f *testing.F) {
	st := newTestTree(f, 8, Options{})
	st.ReceiverKey(3, ApplicationRatchet, 4)
	st.NextSenderKey(6, HandshakeRatchet)
	enc, err := wire.Marshal(st.State())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(wire.MustMarshal(newTestTree(f, 1, Options{}).State()))
	s := suite.MustNew(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		var dec SecretTreeState
		if wire.Unmarshal(data, &dec) != nil {
			return
		}
		enc, err := wire.Marshal(&dec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs")
		}
		var back SecretTreeState
		if err := wire.Unmarshal(enc, &back); err != nil {
			t.Fatal(err)
		}
		// Restoring may fail but must not panic; a restored tree must work.
		if tr, err := RestoreSecretTree(s, &dec, Options{MaxForward: 8}); err == nil && tr.LeafCount() > 0 {
			for _, l := range []tree.LeafIndex{0, tree.LeafIndex(tr.LeafCount() - 1)} {
				tr.ReceiverKey(l, ApplicationRatchet, 3)
				tr.NextSenderKey(l, HandshakeRatchet)
			}
			if _, err := wire.Marshal(tr.State()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// BenchmarkFreshTreeFirstKey10k: a new epoch's secret tree for 10,000
// leaves, then one application key for one leaf (the path derivation).
func BenchmarkFreshTreeFirstKey10k(b *testing.B) {
	s := suite.MustNew(1)
	sec := seq(32, 1)
	for b.Loop() {
		st, err := NewSecretTree(s, sec, 10000, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.NextSenderKey(7777, ApplicationRatchet); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSteadyStateKey10k: the next application key of a leaf whose
// ratchet already exists, in a 10,000-leaf tree.
func BenchmarkSteadyStateKey10k(b *testing.B) {
	st := newTestTree(b, 10000, Options{})
	if _, err := st.NextSenderKey(7777, ApplicationRatchet); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := st.NextSenderKey(7777, ApplicationRatchet); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceiveInOrder10k: a receiver taking the next generation.
func BenchmarkReceiveInOrder10k(b *testing.B) {
	st := newTestTree(b, 10000, Options{})
	g := uint32(0)
	for b.Loop() {
		if _, err := st.ReceiverKey(4242, ApplicationRatchet, g); err != nil {
			b.Fatal(err)
		}
		g++
	}
}
