package mls

import (
	"bytes"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Rows of TestHostileMembers: Welcomes, GroupInfos and successor groups.

// hsWelcomeTo forges a Welcome of w to outsider 0 and returns its join.
func hsWelcomeTo(t *testing.T, f *hsFixture, w vtWelcome, cfg Config) func() (any, error) {
	j := f.pool[0]
	wel, _, _ := vtForgeWelcome(t, w, j)
	return hsJoinWelcome(t, j, wel, nil, cfg)
}

// hsSuccessorJoin has member 0 of gg create a successor of params p with
// the given members, and member 1 (victim) try to join it; the victim's
// old group must not change.
func hsSuccessorJoin(t *testing.T, gg *gtGroup, p successorParams, extra ...*KeyPackage) func() (any, error) {
	victim, other := riNext(t, gg.ms[1], p.suite), riNext(t, gg.ms[2], p.suite)
	o := SuccessorOptions{Signer: gtSigner(t, p.suite), Members: append([]*KeyPackage{victim.kp, other.kp}, extra...)}
	cfg := Config{RatchetTreeInWelcome: true}
	res, err := gg.ms[0].g.createSuccessor(p, o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, rt := riWelcome(t, res, cfg)
	join := JoinReInitWelcome
	if p.usage == schedule.UsageBranch {
		join = JoinBranchWelcome
	}
	return func() (any, error) {
		old := gg.ms[1].g
		before := hsState(t, old)
		j, err := join(w, rt, victim.finder(t), old, cfg)
		if !bytes.Equal(before, hsState(t, old)) {
			t.Fatal("the victim's old group changed")
		}
		if j == nil {
			return nil, err
		}
		return j, err
	}
}

// hsJoinCases: Welcomes and GroupInfos (items 5 and 10, and the extra
// checks).
func hsJoinCases() []hsCase {
	longLife := func(t *testing.T, f *hsFixture) vtWelcome {
		w := vtWelcomeOf(f.flat)
		now := uint64(time.Now().Unix())
		vtResignLeafAt(t, w.nodes, f.flat.ms[1], func(ln *tree.LeafNode) {
			ln.Lifetime = tree.Lifetime{NotBefore: now - 3600, NotAfter: now + 10*365*24*3600}
		})
		return w
	}
	maxCfg := Config{RatchetTreeInWelcome: true, MaxLeafLifetime: DefaultMaxLifetime}
	return []hsCase{
		{name: "control: a forged Welcome, unmodified", item: "control", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{join: hsWelcomeTo(t, f, vtWelcomeOf(f.gg), f.gg.cfg)}
			}},
		{name: "Welcome whose tree has a leaf living beyond the maximum lifetime", item: "5",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{join: hsWelcomeTo(t, f, longLife(t, f), maxCfg)}
			}, want: []error{ErrInvalidWelcome, ErrInvalidLeafNode, ErrExpired}},
		{name: "GroupInfo whose tree has a leaf living beyond the maximum lifetime", item: "5",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				_, _, gi := vtForgeWelcome(t, longLife(t, f), nil)
				return hsAttack{join: hsJoinExternal(t, f, gi, maxCfg)}
			}, want: []error{ErrInvalidGroupInfo, ErrInvalidLeafNode, ErrExpired}},
		{name: "branch Welcome adding a client that was not in the old group", item: "10",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				p := successorParams{usage: schedule.UsageBranch, suite: gg.s, pskEpoch: gg.ms[0].g.Epoch()}
				return hsAttack{join: hsSuccessorJoin(t, gg, p, f.pool[2].kp)}
			}, want: []error{ErrInvalidWelcome, ErrSuccessorMembers}},
		{name: "branch Welcome with the old group's id", item: "10",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				p := successorParams{usage: schedule.UsageBranch, suite: gg.s, groupID: gg.ms[0].g.GroupID(), pskEpoch: gg.ms[0].g.Epoch()}
				return hsAttack{join: hsSuccessorJoin(t, gg, p)}
			}, want: []error{ErrInvalidWelcome, ErrSuccessorMismatch}},
		{name: "reinit Welcome for a group whose last commit held no ReInit", item: "10",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				p := successorParams{usage: schedule.UsageReinit, suite: gg.s, groupID: []byte("new"), pskEpoch: gg.ms[0].g.Epoch()}
				return hsAttack{join: hsSuccessorJoin(t, gg, p)}
			}, want: []error{ErrInvalidWelcome, ErrNoReInit}},
		{name: "Welcome whose group uses an extension no member supports", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.ctx.Extensions = tree.Extensions{{ExtensionType: 0xf0f0, ExtensionData: []byte{}}}
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, ErrUnsupportedCapability}},
		{name: "Welcome whose GroupInfo signer is a blank leaf", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.leaf = 7
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidGroupInfo}},
		{name: "Welcome without a ratchet tree, none sent out of band", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.oobTree = true
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome}},
		{name: "Welcome whose path_secret does not lead to the tree's keys", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.pathSecret = bytes.Repeat([]byte{9}, f.gg.s.HashSize())
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, tree.ErrPublicKeyMismatch}},
		{name: "Welcome whose GroupInfo signature is not its signer's", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.signer = gtSigner(t, f.gg.s)
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidGroupInfo, ErrInvalidSignature}},
		{name: "Welcome whose confirmation tag is wrong", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.gi = func(gi *GroupInfo) { gi.ConfirmationTag[0] ^= 1 }
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, ErrInvalidConfirmationTag}},
		{name: "GroupInfo for an external join whose tree does not match its tree hash", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.flat.ms[1]
				gi := gtGroupInfo(t, g1.g, true)
				nodes := g1.g.RatchetTree()
				vtResignLeafAt(t, nodes, f.flat.ms[2], func(ln *tree.LeafNode) { ln.Lifetime.NotAfter-- })
				for i := range gi.Extensions {
					if gi.Extensions[i].ExtensionType == tree.ExtensionTypeRatchetTree {
						gi.Extensions[i].ExtensionData = gtWireOf(t, nodes)
					}
				}
				if err := SignGroupInfo(g1.signer, gi); err != nil {
					t.Fatal(err)
				}
				return hsAttack{join: hsJoinExternal(t, f, gi, f.flat.cfg)}
			}, want: []error{ErrInvalidGroupInfo, tree.ErrTreeHashMismatch}},
	}
}
