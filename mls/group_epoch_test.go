package mls

import (
	"fmt"
	"math"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// gtForgotten asserts g keeps none of the secrets RFC 9420 §9.2 has
// deleted once the epoch is set up: encryption_secret (the secret tree
// holds what is needed), joiner_secret and welcome_secret.
func gtForgotten(t testing.TB, path string, g *Group) {
	t.Helper()
	sec := g.secrets
	switch {
	case sec.EncryptionSecret != nil:
		t.Errorf("%s: encryption_secret kept", path)
	case sec.JoinerSecret != nil:
		t.Errorf("%s: joiner_secret kept", path)
	case sec.WelcomeSecret != nil:
		t.Errorf("%s: welcome_secret kept", path)
	case g.secretTree == nil || len(g.confirmationTag) == 0 || len(g.interim) == 0:
		t.Errorf("%s: epoch not set up", path)
	}
}

// TestEpochSetUpForgetsSecrets: every way into an epoch — creating a
// group, committing (with a Welcome built), processing a commit, joining
// from a Welcome, joining by external commit and processing that — leaves
// no encryption, joiner or welcome secret behind, and the states work.
func TestEpochSetUpForgetsSecrets(t *testing.T) {
	for _, id := range gtAllSuites() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 1)
			gtForgotten(t, "create", gg.ms[0].g)

			j := gg.newMembers(1)[0]
			res := gg.commit(0, CommitOptions{}, j) // adds j: a Welcome is built
			gtForgotten(t, "commit", res.State)
			gtForgotten(t, "welcome join", j.g)

			res = gg.commit(1, CommitOptions{})
			gtForgotten(t, "commit", res.State)
			gtForgotten(t, "process", gg.ms[0].g)

			x := gtNewMember(t, gg.s, "external")
			msg, g, err := JoinByExternalCommit(gg.s, x.signer, gtGroupInfo(t, gg.ms[0].g, true), nil, LeafOptions{Credential: x.cred}, gg.cfg)
			if err != nil {
				t.Fatal(err)
			}
			gtForgotten(t, "external join", g)
			for _, p := range gg.deliverAll(msg) {
				gtForgotten(t, "process external commit", p.State)
			}
			x.g = g
			gg.ms = append(gg.ms, x)
			gg.check()
			gg.appAll("after every way in")
		})
	}
}

// gtSetEpoch moves every member's state to epoch e without a commit (a
// test-only shortcut: all members agree, so the group keeps working).
func gtSetEpoch(t testing.TB, gg *gtGroup, e uint64) {
	t.Helper()
	for _, m := range gg.ms {
		ctx := m.g.ctx
		ctx.Epoch = e
		if err := m.g.setContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEpochLimit: a group at epoch 2^64-2 commits once more; at 2^64-1 no
// commit is made or accepted and no external join is made (the epoch would
// wrap to 0), while application messages still flow.
func TestEpochLimit(t *testing.T) {
	for _, id := range gtAllSuites() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			gtSetEpoch(t, gg, math.MaxUint64-1)
			gg.commit(1, CommitOptions{})
			gg.check()
			if e := gg.ms[0].g.Epoch(); e != math.MaxUint64 {
				t.Fatalf("epoch %d", e)
			}
			for i, m := range gg.ms {
				snap := gtSnapshot(m.g)
				_, err := m.g.Commit(CommitOptions{})
				gtExpectErr(t, err, ErrEpochLimit)
				_, err = m.g.Commit(CommitOptions{Remove: []tree.LeafIndex{gg.ms[(i+1)%3].g.OwnLeafIndex()}})
				gtExpectErr(t, err, ErrEpochLimit)
				if !snap.equal(gtSnapshot(m.g)) {
					t.Fatal("state changed")
				}
			}
			forged := gtForgeCommit(t, gg.ms[1].g)
			for _, r := range []int{0, 2} {
				gtReject(t, gg.ms[r].g, forged, ErrEpochLimit)
			}
			x := gtNewMember(t, gg.s, "late")
			_, _, err := JoinByExternalCommit(gg.s, x.signer, gtGroupInfo(t, gg.ms[0].g, true), nil, LeafOptions{Credential: x.cred}, gg.cfg)
			gtExpectErr(t, err, ErrEpochLimit)
			gg.appAll("at the last epoch")
		})
	}
}
