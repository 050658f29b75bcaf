package mls

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Rejection paths of the group state machine. Every case asserts the
// sentinel with errors.Is, that the receiver's state is unchanged (epoch,
// epoch authenticator, pending proposals, context) and that a valid message
// still processes afterwards.

// gtReject processes bad at g, asserts want and an unchanged state.
func gtReject(t testing.TB, g *Group, bad *Message, want error) {
	t.Helper()
	snap := gtSnapshot(g)
	b, err := wire.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ProcessBytes(b)
	gtExpectErr(t, err, want)
	if !snap.equal(gtSnapshot(g)) {
		t.Fatal("state changed by a rejected message")
	}
}

// gtCloneMsg deep-copies a message through its encoding.
func gtCloneMsg(t testing.TB, m *Message) *Message {
	t.Helper()
	out, err := UnmarshalMessage(gtWire(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gtForge signs fc as g's member and protects it in g's handshake wire
// format; tag is the confirmation tag of a commit (nil: Nh bytes of 0xa5).
func gtForge(t testing.TB, g *Group, fc *FramedContent, tag []byte) *Message {
	t.Helper()
	ac, err := SignContent(g.signer, g.handshakeWireFormat(), fc, &g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fc.ContentType == ContentTypeCommit {
		if tag == nil {
			tag = bytes.Repeat([]byte{0xa5}, g.suite.HashSize())
		}
		ac.Auth.ConfirmationTag = tag
	}
	msg, err := g.protectSigned(ac)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// gtForgeCommit forges a commit with the given proposals (no path).
func gtForgeCommit(t testing.TB, g *Group, pors ...ProposalOrRef) *Message {
	t.Helper()
	return gtForge(t, g, &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(g.OwnLeafIndex()),
		ContentType: ContentTypeCommit, Commit: &Commit{Proposals: pors}}, nil)
}

func byValue(p *Proposal) ProposalOrRef {
	return ProposalOrRef{Type: ProposalOrRefTypeProposal, Proposal: p}
}

func byRef(ref []byte) ProposalOrRef {
	return ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: ref}
}

type rejectCase struct {
	name string
	// run builds a bad message against the 4-member group gg and returns
	// the receiver's index, the message and the sentinel expected.
	run func(t *testing.T, gg *gtGroup) (recv int, bad *Message, want error)
}

func rejectCases() []rejectCase {
	return []rejectCase{
		{"old epoch commit", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			// A commit of epoch n replayed after the group moved to n+1.
			res, err := gg.ms[1].g.Commit(CommitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			gg.deliverCommit(1, res)
			return 2, res.Commit, ErrWrongEpoch
		}},
		{"future epoch", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtProposeUpdate(t, gg, 1))
			if m.PublicMessage != nil {
				m.PublicMessage.Content.Epoch++
			} else {
				m.PrivateMessage.Epoch++
			}
			return 2, m, ErrWrongEpoch
		}},
		{"future epoch application", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtEncrypt(t, gg.ms[1].g, "x"))
			m.PrivateMessage.Epoch += 5
			return 2, m, ErrWrongEpoch
		}},
		{"old epoch application beyond retention", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtEncrypt(t, gg.ms[1].g, "x")
			for range DefaultMaxPastEpochs + 1 {
				gg.commit(0, CommitOptions{})
			}
			return 2, m, ErrWrongEpoch
		}},
		{"wrong group id", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtProposeUpdate(t, gg, 1))
			if m.PublicMessage != nil {
				m.PublicMessage.Content.GroupID[0] ^= 1
			} else {
				m.PrivateMessage.GroupID[0] ^= 1
			}
			return 2, m, ErrWrongGroup
		}},
		{"wrong group id application", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtEncrypt(t, gg.ms[1].g, "x"))
			m.PrivateMessage.GroupID = append(m.PrivateMessage.GroupID, 0)
			return 2, m, ErrWrongGroup
		}},
		{"replayed application message", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtEncrypt(t, gg.ms[1].g, "once")
			if _, err := gg.ms[2].g.Process(m); err != nil {
				t.Fatal(err)
			}
			return 2, m, schedule.ErrKeyConsumed
		}},
		{"replayed proposal", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtProposeUpdate(t, gg, 1)
			gg.deliver(1, m)
			if m.PrivateMessage != nil {
				return 2, m, schedule.ErrKeyConsumed
			}
			return 2, m, ErrInvalidProposal
		}},
		{"bit-flipped ciphertext", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtEncrypt(t, gg.ms[1].g, "hello"))
			m.PrivateMessage.Ciphertext[3] ^= 0x10
			return 2, m, ErrDecryption
		}},
		{"bit-flipped sender data", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtEncrypt(t, gg.ms[1].g, "hello"))
			m.PrivateMessage.EncryptedSenderData[0] ^= 0x01
			return 2, m, ErrDecryption
		}},
		{"bit-flipped authenticated data", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtEncrypt(t, gg.ms[1].g, "hello"))
			m.PrivateMessage.AuthenticatedData = []byte("ad:hellO")
			return 2, m, ErrDecryption
		}},
		{"bit-flipped private handshake", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtPrivateHandshake(t, gg, 1))
			m.PrivateMessage.Ciphertext[len(m.PrivateMessage.Ciphertext)-1] ^= 0x80
			return 2, m, ErrDecryption
		}},
		{"bit-flipped membership tag", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtCloneMsg(t, gtPublicHandshake(t, gg, 1))
			m.PublicMessage.MembershipTag[0] ^= 1
			return 2, m, ErrInvalidMembershipTag
		}},
		{"bit-flipped public signature", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			g := gg.ms[1].g
			m := gtCloneMsg(t, gtPublicHandshake(t, gg, 1))
			// Flip the signature and recompute the membership tag, so
			// that only the signature is wrong.
			ac := m.PublicMessage.AuthenticatedContent()
			ac.Auth.Signature[len(ac.Auth.Signature)/2] ^= 4
			pm, err := ProtectPublic(g.suite, ac, &g.ctx, g.secrets.MembershipKey)
			if err != nil {
				t.Fatal(err)
			}
			m.PublicMessage = pm
			return 2, m, ErrInvalidSignature
		}},
		{"bad confirmation tag", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			g := gg.ms[1].g
			ac := gtRealCommitContent(t, g)
			tag := append([]byte(nil), ac.Auth.ConfirmationTag...)
			tag[0] ^= 1
			return 2, gtForge(t, g, &ac.Content, tag), ErrInvalidConfirmationTag
		}},
		{"missing confirmation tag", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			g := gg.ms[1].g
			ac := gtRealCommitContent(t, g)
			return 2, gtForge(t, g, &ac.Content, []byte{}), ErrInvalidCommit
		}},
		{"unknown proposal reference", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			return 2, gtForgeCommit(t, gg.ms[1].g, byRef(bytes.Repeat([]byte{7}, gg.s.HashSize()))), ErrUnknownProposal
		}},
		{"commit removes its committer", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			g := gg.ms[1].g
			if _, err := g.Commit(CommitOptions{Remove: []tree.LeafIndex{g.OwnLeafIndex()}}); err == nil {
				t.Fatal("Commit removing the committer succeeded")
			}
			return 2, gtForgeCommit(t, g, byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: g.OwnLeafIndex()}})), ErrInvalidCommit
		}},
		{"commit with its committer's own update", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			m := gtProposeUpdate(t, gg, 1)
			gg.deliver(1, m)
			p := gg.ms[1].g.pending[0]
			return 2, gtForgeCommit(t, gg.ms[1].g, byRef(p.ref)), ErrInvalidCommit
		}},
		{"two updates for one leaf", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			gg.deliver(0, gtProposeUpdate(t, gg, 0))
			gg.deliver(0, gtProposeUpdate(t, gg, 0))
			c := gg.ms[1].g
			if len(c.pending) != 2 {
				t.Fatalf("%d pending", len(c.pending))
			}
			return 2, gtForgeCommit(t, c, byRef(c.pending[0].ref), byRef(c.pending[1].ref)), ErrInvalidCommit
		}},
		{"update and remove of one leaf", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			gg.deliver(0, gtProposeUpdate(t, gg, 0))
			c := gg.ms[1].g
			return 2, gtForgeCommit(t, c, byRef(c.pending[0].ref),
				byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: gg.ms[0].g.OwnLeafIndex()}})), ErrInvalidCommit
		}},
		{"add of an existing member", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			old := gg.ms[3]
			old.newKeyPackage(t, KeyPackageOptions{}) // same signature key, new KeyPackage
			_, err := gg.ms[1].g.Commit(CommitOptions{Add: []*KeyPackage{old.kp}})
			gtExpectErr(t, err, ErrInvalidCommit)
			return 2, gtForgeCommit(t, gg.ms[1].g, byValue(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *old.kp}})), ErrInvalidCommit
		}},
		{"two adds of one client", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			j := gtNewMember(t, gg.s, "j")
			kp1 := *j.kp
			j.newKeyPackage(t, KeyPackageOptions{})
			add := func(kp KeyPackage) ProposalOrRef {
				return byValue(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: kp}})
			}
			return 2, gtForgeCommit(t, gg.ms[1].g, add(kp1), add(*j.kp)), ErrInvalidCommit
		}},
		{"add with expired key package", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			j := gtNewMember(t, gg.s, "j")
			j.newKeyPackage(t, KeyPackageOptions{Now: time.Now().Add(-48 * time.Hour), Lifetime: time.Hour})
			return 2, gtForgeCommit(t, gg.ms[1].g, byValue(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}})), ErrInvalidKeyPackage
		}},
		{"add proposal with bad key package signature", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			j := gtNewMember(t, gg.s, "j")
			kp := *j.kp
			kp.Signature = append([]byte(nil), kp.Signature...)
			kp.Signature[5] ^= 1
			p := &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: kp}}
			_, _, err := gg.ms[1].g.Propose(p)
			gtExpectErr(t, err, ErrInvalidKeyPackage)
			g := gg.ms[1].g
			return 2, gtForge(t, g, &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(g.OwnLeafIndex()),
				ContentType: ContentTypeProposal, Proposal: p}, nil), ErrInvalidKeyPackage
		}},
		{"PSK proposal with reinit usage", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			g := gg.ms[1].g
			p := &Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption,
				Usage: schedule.UsageReinit, PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch(), Nonce: bytes.Repeat([]byte{1}, gg.s.HashSize())}}}
			_, _, err := g.Propose(p)
			gtExpectErr(t, err, ErrInvalidProposal)
			return 2, gtForge(t, g, &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(g.OwnLeafIndex()),
				ContentType: ContentTypeProposal, Proposal: p}, nil), ErrInvalidProposal
		}},
		{"remove of a blank leaf", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			return 2, gtForgeCommit(t, gg.ms[1].g, byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 1000}})), ErrInvalidProposal
		}},
		{"two GroupContextExtensions", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			gce := byValue(&Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: tree.Extensions{}}})
			return 2, gtForgeCommit(t, gg.ms[1].g, gce, gce), ErrInvalidCommit
		}},
		{"ExternalInit in a member commit", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			return 2, gtForgeCommit(t, gg.ms[1].g, byValue(&Proposal{ProposalType: tree.ProposalTypeExternalInit, ExternalInit: &ExternalInit{KEMOutput: []byte{1}}})), ErrInvalidCommit
		}},
		{"remove without a path", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			return 2, gtForgeCommit(t, gg.ms[1].g, byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: gg.ms[3].g.OwnLeafIndex()}})), ErrPathRequired
		}},
		{"empty commit without a path", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			return 2, gtForgeCommit(t, gg.ms[1].g), ErrPathRequired
		}},
		{"own commit", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			res, err := gg.ms[1].g.Commit(CommitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return 1, res.Commit, ErrOwnCommit
		}},
		{"application data as PublicMessage", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			g := gg.ms[1].g
			fc := FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(g.OwnLeafIndex()),
				ContentType: ContentTypeApplication, ApplicationData: []byte("in the clear")}
			tbs, err := fc.MarshalTBS(WireFormatPublicMessage, &g.ctx)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := g.signer.SignWithLabel("FramedContentTBS", tbs)
			if err != nil {
				t.Fatal(err)
			}
			ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: fc, Auth: FramedContentAuthData{Signature: sig}}
			tag, err := membershipTag(g.suite, ac, &g.ctx, g.secrets.MembershipKey)
			if err != nil {
				t.Fatal(err)
			}
			return 2, &Message{Version: tree.ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage,
				PublicMessage: &PublicMessage{Content: fc, Auth: ac.Auth, MembershipTag: tag}}, ErrInvalidMessage
		}},
		{"message to a removed member", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			victim := gg.ms[3]
			gg.commit(0, CommitOptions{Remove: []tree.LeafIndex{victim.g.OwnLeafIndex()}})
			gg.ms = append(gg.ms, victim) // keep it as the receiver
			return 3, gtEncrypt(t, gg.ms[1].g, "gone"), ErrNotMember
		}},
		{"sender leaf blank", func(t *testing.T, gg *gtGroup) (int, *Message, error) {
			// A message of this epoch claiming a blank leaf (encrypted
			// with a member's keys, as a malicious insider could).
			victim := gg.ms[1]
			leaf := victim.g.OwnLeafIndex()
			gg.commit(0, CommitOptions{Remove: []tree.LeafIndex{leaf}})
			g := gg.ms[0].g.clone()
			fc := &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(leaf),
				ContentType: ContentTypeApplication, ApplicationData: []byte("ghost")}
			ac, err := SignContent(g.signer, WireFormatPrivateMessage, fc, &g.ctx)
			if err != nil {
				t.Fatal(err)
			}
			m, err := g.protectSigned(ac)
			if err != nil {
				t.Fatal(err)
			}
			return 1, m, ErrUnknownSender
		}},
	}
}

func gtEncrypt(t testing.TB, g *Group, s string) *Message {
	t.Helper()
	m, err := g.Encrypt([]byte(s), []byte("ad:"+s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gtProposeUpdate has member i propose an update (adopting its state).
func gtProposeUpdate(t testing.TB, gg *gtGroup, i int) *Message {
	t.Helper()
	m, next, err := gg.ms[i].g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	gg.ms[i].g = next
	return m
}

// gtPublicHandshake / gtPrivateHandshake: a proposal of member i in the
// given wire format, whatever the group's configuration.
func gtPublicHandshake(t testing.TB, gg *gtGroup, i int) *Message {
	return gtHandshakeAs(t, gg, i, true)
}

func gtPrivateHandshake(t testing.TB, gg *gtGroup, i int) *Message {
	return gtHandshakeAs(t, gg, i, false)
}

func gtHandshakeAs(t testing.TB, gg *gtGroup, i int, public bool) *Message {
	t.Helper()
	g := gg.ms[i].g
	saved := g.cfg.HandshakeAsPublic
	g.cfg.HandshakeAsPublic = public
	defer func() { g.cfg.HandshakeAsPublic = saved }()
	m, _, err := g.Propose(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: gg.ms[3].g.OwnLeafIndex()}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gtRealCommitContent returns the AuthenticatedContent of a real commit of
// g (made as a PublicMessage, so it can be read back), without adopting it.
func gtRealCommitContent(t testing.TB, g *Group) *AuthenticatedContent {
	t.Helper()
	c := g.clone()
	c.cfg.HandshakeAsPublic = true
	res, err := c.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit.PublicMessage.AuthenticatedContent()
}

// TestGroupRejects runs every rejection case under suites 1-3, with
// handshakes as PrivateMessage and as PublicMessage. After the rejection
// the group still works: another member commits, everyone processes it
// (the receiver included), and everyone talks.
func TestGroupRejects(t *testing.T) {
	for _, id := range gtSuites {
		for _, public := range []bool{false, true} {
			for _, tc := range rejectCases() {
				t.Run(fmt.Sprintf("suite=%d/public=%v/%s", id, public, tc.name), func(t *testing.T) {
					gg := gtCreate(t, id, Config{HandshakeAsPublic: public, RatchetTreeInWelcome: true}, 4)
					recv, bad, want := tc.run(t, gg)
					r := gg.ms[recv]
					gtReject(t, r.g, bad, want)
					if r.g.Removed() {
						return
					}
					// Still working: a commit by a member other than the
					// receiver (pending proposals included), then messages.
					committer := (recv + 1) % len(gg.ms)
					gg.commit(committer, CommitOptions{})
					gg.check()
					gg.appAll("after rejection")
				})
			}
		}
	}
}

// TestGroupEncryptWithPendingProposals: application data may not be sent
// while proposals are pending (§15 SHOULD NOT is enforced here as a MUST).
func TestGroupEncryptWithPendingProposals(t *testing.T) {
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	gg.deliver(1, gtProposeUpdate(t, gg, 1))
	for i := range gg.ms {
		_, err := gg.ms[i].g.Encrypt([]byte("x"), nil)
		gtExpectErr(t, err, ErrPendingProposals)
	}
	gg.commit(0, CommitOptions{})
	gg.appAll("ok")
}

// TestGroupLateApplicationMessages: a message of epoch n opens after the
// receiver moved on, within Config.MaxPastEpochs, and not beyond.
func TestGroupLateApplicationMessages(t *testing.T) {
	for _, id := range gtSuites {
		for _, maxPast := range []int{-1, 1, 2, 3} {
			t.Run(fmt.Sprintf("suite=%d/maxPast=%d", id, maxPast), func(t *testing.T) {
				gg := gtCreate(t, id, Config{MaxPastEpochs: maxPast, RatchetTreeInWelcome: true}, 3)
				kept := maxPast
				if kept < 0 {
					kept = 0
				}
				// One message per epoch distance 1..kept+1, sent before the commits.
				var msgs []*Message
				for range kept + 2 {
					msgs = append(msgs, gtEncrypt(t, gg.ms[1].g, fmt.Sprintf("epoch %d", gg.ms[1].g.Epoch())))
					gg.commit(0, CommitOptions{})
				}
				// msgs[k] was sent kept+2-k epochs ago.
				recv := gg.ms[2].g
				for k, m := range msgs {
					age := len(msgs) - k
					snap := gtSnapshot(recv)
					p, err := recv.Process(m)
					if age <= kept {
						if err != nil {
							t.Fatalf("message %d epochs old: %v", age, err)
						}
						if p.Epoch != m.PrivateMessage.Epoch || string(p.ApplicationData) != fmt.Sprintf("epoch %d", m.PrivateMessage.Epoch) {
							t.Fatalf("late message: %+v", p)
						}
						// And only once.
						_, err = recv.Process(m)
						gtExpectErr(t, err, schedule.ErrKeyConsumed)
					} else {
						gtExpectErr(t, err, ErrWrongEpoch)
					}
					if !snap.equal(gtSnapshot(recv)) {
						t.Fatal("state changed")
					}
				}
				gg.appAll("current")
			})
		}
	}
}

var _ = suite.ID(0)

// TestGroupRejectKeepsKey: a tampered copy of a PrivateMessage burns no
// key: the genuine message still opens afterwards, once.
func TestGroupRejectKeepsKey(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 4)
			for _, mk := range []func() *Message{
				func() *Message { return gtEncrypt(t, gg.ms[0].g, "app") },
				func() *Message { return gtPrivateHandshake(t, gg, 0) },
			} {
				good := mk()
				for _, tamper := range []func(pm *PrivateMessage){
					func(pm *PrivateMessage) { pm.Ciphertext[0] ^= 1 },
					func(pm *PrivateMessage) { pm.EncryptedSenderData[len(pm.EncryptedSenderData)-1] ^= 1 },
					func(pm *PrivateMessage) { pm.AuthenticatedData = append(pm.AuthenticatedData, 0) },
				} {
					bad := gtCloneMsg(t, good)
					tamper(bad.PrivateMessage)
					gtReject(t, gg.ms[1].g, bad, ErrDecryption)
				}
				// The result is not adopted (a proposal would stay unknown
				// to the others); the key is consumed all the same.
				if _, err := gg.ms[1].g.Process(good); err != nil {
					t.Fatalf("genuine message after tampered copies: %v", err)
				}
				_, err := gg.ms[1].g.Process(good)
				gtExpectErr(t, err, schedule.ErrKeyConsumed)
			}
		})
	}
}

// TestGroupOutOfOrder: application messages open in any order within the
// window (Config.SecretTree); one too far ahead is refused without burning
// anything, and the ones in between still open.
func TestGroupOutOfOrder(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			cfg := Config{RatchetTreeInWelcome: true, SecretTree: schedule.Options{MaxForward: 8}}
			gg := gtCreate(t, id, cfg, 3)
			var msgs []*Message
			for i := range 12 {
				msgs = append(msgs, gtEncrypt(t, gg.ms[0].g, fmt.Sprint(i)))
			}
			r := gg.ms[1].g
			gtReject(t, r, msgs[11], schedule.ErrGenerationTooFar)
			for _, i := range []int{5, 0, 8, 3, 1, 2, 4, 7, 6} {
				p, err := r.Process(msgs[i])
				if err != nil || string(p.ApplicationData) != fmt.Sprint(i) {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			for _, i := range []int{9, 10, 11} {
				if _, err := r.Process(msgs[i]); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			gtReject(t, r, msgs[4], schedule.ErrKeyConsumed)
		})
	}
}
