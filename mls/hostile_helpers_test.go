package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Fixture and runner of the hostile-member suite (hostile_test.go). Names
// start with hs.

// hsFixture is what a suite's cases start from, built once per suite:
//   - gg: three members, the creator added the others with a path, so the
//     tree has parent nodes; member 1 is the usual attacker.
//   - flat: three members added without a path (no parent nodes), so a
//     forger may re-sign any key_package leaf of a tree it describes.
//
// Members send handshakes as PrivateMessage, or as PublicMessage when the
// fixture is public.
//
// Each case gets deep copies (hsClone), never the fixture itself.
type hsFixture struct {
	gg, flat *gtGroup
	// pool are outsiders with KeyPackages, made once per suite and shared
	// by the rows (never changed): joiners, proposers, external joiners.
	pool []*gtMember
}

func hsNewFixture(t testing.TB, id suite.ID, public bool) *hsFixture {
	t.Helper()
	cfg := Config{RatchetTreeInWelcome: true, HandshakeAsPublic: public}
	f := &hsFixture{gg: gtCreate(t, id, cfg, 3), flat: vtSmallGroup(t, id, cfg, 3)}
	for i := range 3 {
		f.pool = append(f.pool, gtNewMember(t, f.gg.s, fmt.Sprintf("outsider %d", i)))
	}
	return f
}

func (f *hsFixture) clone(t testing.TB) *hsFixture {
	return &hsFixture{gg: hsClone(t, f.gg), flat: hsClone(t, f.flat), pool: f.pool}
}

// hsClone deep-copies every member's state (secret trees included), so a
// case may send, receive and commit without touching the fixture.
func hsClone(t testing.TB, gg *gtGroup) *gtGroup {
	t.Helper()
	out := *gg
	out.t = t
	out.ms = make([]*gtMember, len(gg.ms))
	for i, m := range gg.ms {
		c := *m
		c.g = gtDeepCopy(t, m.g)
		out.ms[i] = &c
	}
	return &out
}

// hsSetExtensions gives every member's context the extensions es without a
// commit (a test shortcut, as gtSetEpoch: the members agree, so the group
// keeps working), for rows that need, say, an external sender.
func hsSetExtensions(t testing.TB, gg *gtGroup, es tree.Extensions) {
	t.Helper()
	for _, m := range gg.ms {
		ctx := m.g.ctx
		ctx.Extensions = es
		if err := m.g.setContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// hsState is a member's whole serialized state: epoch state (context,
// tree, keys, epoch secrets, pending proposals, ...) and sender ratchets.
// A refused input must leave it byte for byte as it was.
func hsState(t testing.TB, g *Group) []byte {
	t.Helper()
	es, err := g.MarshalEpochState()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := g.MarshalRatchetState()
	if err != nil {
		t.Fatal(err)
	}
	return append(es, rs...)
}

// hsAttack is a hostile input and who must refuse it.
type hsAttack struct {
	// msg is handed, as bytes from the wire, to every member of f.gg but
	// from (-1: the sender is an outsider).
	msg  *Message
	raw  []byte // when set, sent instead of msg's encoding (a wire edit)
	from int
	// join, when set, is an honest joiner's attempt on a forged Welcome or
	// GroupInfo; it returns what the join produced (nil when refused).
	join func() (any, error)
	// local, when set, is the attacker's own API asked to build the input:
	// it must refuse too, and leave the attacker's state unchanged.
	local func() error
	// localOn is the attacker's state local runs on.
	localOn *Group
}

// hsCase is one row of the suite. want are the sentinels every honest
// receiver's error must wrap (errors.Is); accept marks a control row that
// every receiver must accept.
type hsCase struct {
	name   string
	item   string // the issue 11 item or extra check it covers
	run    func(t *testing.T, f *hsFixture) hsAttack
	want   []error
	accept bool
}

// hsRun plays a: every honest receiver refuses (or, for an accepting row,
// accepts) with state unchanged byte for byte.
func hsRun(t *testing.T, c hsCase, a hsAttack, f *hsFixture) {
	t.Helper()
	if a.local != nil {
		before := hsState(t, a.localOn)
		vtExpect(t, a.local(), c.want...)
		if !bytes.Equal(before, hsState(t, a.localOn)) {
			t.Fatal("the attacker's refused send changed its state")
		}
		if a.msg == nil && a.raw == nil && a.join == nil {
			return
		}
	}
	if a.join != nil {
		res, err := a.join()
		if c.accept {
			if err != nil {
				t.Fatalf("control join refused: %v", err)
			}
			return
		}
		vtExpect(t, err, c.want...)
		if res != nil && !hsNil(res) {
			t.Fatalf("refused join returned %v", res)
		}
		return
	}
	if a.msg == nil && a.raw == nil {
		t.Fatal("case built no input")
	}
	b := a.raw
	if b == nil {
		b = gtWire(t, a.msg)
	}
	private := a.msg != nil && a.msg.WireFormat == WireFormatPrivateMessage
	var states []*Group
	for i, m := range f.gg.ms {
		if i == a.from {
			continue
		}
		before := hsState(t, m.g)
		p, err := m.g.ProcessBytes(b)
		if !bytes.Equal(before, hsState(t, m.g)) && !(c.accept && private) {
			t.Fatalf("%s: state changed by processing (err %v)", m.name, err)
		}
		if c.accept {
			if err != nil {
				t.Fatalf("%s refuses the control: %v", m.name, err)
			}
			if p.State != nil && !p.State.Removed() {
				states = append(states, p.State)
			}
			continue
		}
		if p != nil {
			t.Fatalf("%s: a result with the refusal", m.name)
		}
		vtExpect(t, err, c.want...)
	}
	if len(states) > 1 {
		gtAgree(t, states...)
	}
}

// hsNil: a typed nil (a *Joined or *Group) counts as no result.
func hsNil(v any) bool {
	switch x := v.(type) {
	case *Joined:
		return x == nil
	case *Group:
		return x == nil
	}
	return false
}

// hsJoinWelcome is a join attempt of joiner on w.
func hsJoinWelcome(t *testing.T, joiner *gtMember, w *Welcome, rt tree.RatchetTreeNodes, cfg Config) func() (any, error) {
	return func() (any, error) {
		j, err := JoinFromWelcome(w, rt, joiner.finder(t), cfg)
		if j == nil {
			return nil, err
		}
		return j, err
	}
}

// hsJoinExternal is an external join attempt on gi by an outsider.
func hsJoinExternal(t *testing.T, f *hsFixture, gi *GroupInfo, cfg Config) func() (any, error) {
	return func() (any, error) {
		x := f.pool[1]
		_, g, err := JoinByExternalCommit(f.gg.s, x.signer, gi, nil, LeafOptions{Credential: x.cred}, cfg)
		if g == nil {
			return nil, err
		}
		return g, err
	}
}

// hsRawEdit re-encodes msg with the first occurrence of old replaced by
// new: an edit on the wire, for what the encoder refuses to produce.
func hsRawEdit(t *testing.T, msg *Message, old, new []byte) []byte {
	t.Helper()
	b := gtWire(t, msg)
	i := bytes.Index(b, old)
	if i < 0 {
		t.Fatal("raw edit: pattern not in the message")
	}
	out := append(bytes.Clone(b[:i]), new...)
	return append(out, b[i+len(old):]...)
}
