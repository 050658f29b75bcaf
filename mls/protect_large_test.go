package mls

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/mls/internal/parallel"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Large messages are authenticated with their hashes (signature, membership
// tag, confirmed transcript hash) running concurrently (authenticate). These
// tests give commits 100 KB of authenticated data so that path is taken,
// and check it refuses what the sequential path refuses, with the same
// errors, and accepts with the same result.

// largeAD is authenticated data big enough for the concurrent path.
var largeAD = bytes.Repeat([]byte("ad"), parallel.HashBytes)

// largeCommit is a real commit by member i of gg with largeAD, not adopted.
func largeCommit(t *testing.T, gg *gtGroup, i int) *CommitResult {
	t.Helper()
	res, err := gg.ms[i].g.Commit(CommitOptions{AuthenticatedData: largeAD})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// reprotect re-signs (if resign) and re-tags the public commit m as member
// i after edit changed its content, so that only what edit broke is wrong.
func reprotect(t *testing.T, g *Group, m *Message, resign bool, edit func(ac *AuthenticatedContent)) *Message {
	t.Helper()
	ac := m.PublicMessage.AuthenticatedContent()
	if resign {
		signed, err := SignContent(g.signer, WireFormatPublicMessage, &ac.Content, &g.ctx)
		if err != nil {
			t.Fatal(err)
		}
		signed.Auth.ConfirmationTag = ac.Auth.ConfirmationTag
		ac = signed
	}
	edit(ac)
	pm, err := ProtectPublic(g.suite, ac, &g.ctx, g.secrets.MembershipKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Message{Version: tree.ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}
}

// TestLargeCommitRejects: every way of breaking a large public commit is
// refused with the sentinel the small-message path gives, in the same
// order (membership tag before the sender's key before the signature),
// and leaves the receiver unchanged; at GOMAXPROCS 1 and 2.
func TestLargeCommitRejects(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, gg *gtGroup, m *Message) *Message
		want   error
	}{
		{"membership tag", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			m.PublicMessage.MembershipTag[0] ^= 1
			return m
		}, ErrInvalidMembershipTag},
		{"body byte", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			m.PublicMessage.Content.AuthenticatedData[len(largeAD)/2] ^= 1
			return m
		}, ErrInvalidMembershipTag},
		{"signature", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			return reprotect(t, gg.ms[1].g, m, false, func(ac *AuthenticatedContent) { ac.Auth.Signature[5] ^= 1 })
		}, ErrInvalidSignature},
		{"signature and membership tag", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			m = reprotect(t, gg.ms[1].g, m, false, func(ac *AuthenticatedContent) { ac.Auth.Signature[5] ^= 1 })
			m.PublicMessage.MembershipTag[0] ^= 1
			return m
		}, ErrInvalidMembershipTag},
		{"content changed after signing", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			return reprotect(t, gg.ms[1].g, m, false, func(ac *AuthenticatedContent) { ac.Content.AuthenticatedData[7] ^= 1 })
		}, ErrInvalidSignature},
		{"confirmation tag", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			return reprotect(t, gg.ms[1].g, m, true, func(ac *AuthenticatedContent) { ac.Auth.ConfirmationTag[0] ^= 1 })
		}, ErrInvalidConfirmationTag},
		{"sender outside the tree", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			return reprotect(t, gg.ms[1].g, m, false, func(ac *AuthenticatedContent) { ac.Content.Sender.LeafIndex = 1000 })
		}, ErrUnknownSender},
		{"sender outside the tree and membership tag", func(t *testing.T, gg *gtGroup, m *Message) *Message {
			m = reprotect(t, gg.ms[1].g, m, false, func(ac *AuthenticatedContent) { ac.Content.Sender.LeafIndex = 1000 })
			m.PublicMessage.MembershipTag[0] ^= 1
			return m
		}, ErrInvalidMembershipTag},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		for _, id := range gtSuites {
			gg := gtCreate(t, id, Config{HandshakeAsPublic: true, RatchetTreeInWelcome: true}, 3)
			for _, tc := range cases {
				t.Run(fmt.Sprintf("procs=%d/suite=%d/%s", procs, id, tc.name), func(t *testing.T) {
					runtime.GOMAXPROCS(procs)
					m := gtCloneMsg(t, largeCommit(t, gg, 1).Commit)
					gtReject(t, gg.ms[2].g, tc.break_(t, gg, m), tc.want)
				})
			}
			// The receiver still takes the real commit.
			gg.deliverCommit(1, largeCommit(t, gg, 1))
			gg.check()
		}
	}
}

// TestLargeCommitAccepted: a large commit, public or private, processed
// with its hashes concurrent gives the state the committer computed, at
// GOMAXPROCS 1 and 2.
func TestLargeCommitAccepted(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		for _, id := range gtSuites {
			for _, public := range []bool{true, false} {
				t.Run(fmt.Sprintf("procs=%d/suite=%d/public=%v", procs, id, public), func(t *testing.T) {
					runtime.GOMAXPROCS(procs)
					gg := gtCreate(t, id, Config{HandshakeAsPublic: public, RatchetTreeInWelcome: true}, 3)
					for round := range 3 {
						gg.deliverCommit(round%3, largeCommit(t, gg, round%3)) // fails unless every member reaches the new epoch
						gg.check()                                             // every member agrees with the committer
					}
					gg.appAll("after large commits")
				})
			}
		}
	}
}

// TestLargeCommitsConcurrently: groups processing large commits at the same
// time share nothing but recycled buffers; run with -race.
func TestLargeCommitsConcurrently(t *testing.T) {
	const groups = 4
	ggs := make([]*gtGroup, groups)
	msgs := make([][]byte, groups)
	for i := range ggs {
		ggs[i] = gtCreate(t, 1, Config{HandshakeAsPublic: true, RatchetTreeInWelcome: true}, 2)
		res, err := ggs[i].ms[0].g.Commit(CommitOptions{AuthenticatedData: bytes.Repeat([]byte{byte(i)}, 2*parallel.HashBytes)})
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = gtWire(t, res.Commit)
		ggs[i].ms[0].g = res.State
	}
	var wg sync.WaitGroup
	errs := make([]error, groups)
	for i := range ggs {
		wg.Go(func() {
			for range 5 {
				p, err := ggs[i].ms[1].g.ProcessBytes(msgs[i])
				if err != nil {
					errs[i] = err
					return
				}
				if !bytes.Equal(p.State.EpochAuthenticator(), ggs[i].ms[0].g.EpochAuthenticator()) {
					errs[i] = fmt.Errorf("group %d: epoch authenticators differ", i)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
