package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Hostile commits and proposals from members holding valid keys (RFC 9420
// §12.1-§12.4): each is refused by every honest member with a typed error
// and no change of state, and the group goes on afterwards.

// gtTableSuites are the suites case k of a table test runs under: every
// suite for the first case, and the cheap ones for the others (suites 5
// and 7, P-521 and P-384, cost ten times as much; every case runs under
// three other curves already).
func gtTableSuites(k int) []suite.ID {
	if k == 0 {
		return gtAllSuites()
	}
	return []suite.ID{1, 2, 3, 4, 6}
}

// gtRejectAll has every member but the sender process bad and refuse it
// with every error in want, its state unchanged.
func gtRejectAll(t *testing.T, gg *gtGroup, sender int, bad *Message, want ...error) {
	t.Helper()
	for i, m := range gg.ms {
		if i == sender {
			continue
		}
		for _, w := range want {
			gtReject(t, m.g, bad, w)
		}
	}
}

// gtPropose has member i send p (adopting its state) and everyone else
// cache it.
func gtPropose(t testing.TB, gg *gtGroup, i int, p *Proposal) {
	t.Helper()
	m, next, err := gg.ms[i].g.Propose(p)
	if err != nil {
		t.Fatalf("%s proposes %v: %v", gg.ms[i].name, p.ProposalType, err)
	}
	gg.ms[i].g = next
	gg.deliver(i, m)
}

// gtUpdateLeaf is the leaf ProposeUpdate would make for g, changed by
// mutate before it is signed, and its private key.
func gtUpdateLeaf(t testing.TB, g *Group, mutate func(*tree.LeafNode)) (*Proposal, []byte) {
	t.Helper()
	priv, pub, err := g.suite.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ln := *g.tree.Leaf(g.myLeaf)
	ln.EncryptionKey, ln.LeafNodeSource, ln.Lifetime, ln.ParentHash = pub, tree.LeafNodeSourceUpdate, tree.Lifetime{}, nil
	mutate(&ln)
	if err := ln.Sign(g.suite, g.signer, g.ctx.GroupID, g.myLeaf); err != nil {
		t.Fatal(err)
	}
	return &Proposal{ProposalType: tree.ProposalTypeUpdate, Update: &Update{LeafNode: ln}}, priv
}

// gtForgeProposal sends p as g's member without g's own checks.
func gtForgeProposal(t testing.TB, g *Group, p *Proposal) *Message {
	t.Helper()
	return gtForge(t, g, &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(g.OwnLeafIndex()),
		ContentType: ContentTypeProposal, Proposal: p}, nil)
}

func gtRename(id string) func(*tree.LeafNode) {
	return func(ln *tree.LeafNode) { ln.Credential = tree.NewBasicCredential([]byte(id)) }
}

// gtAfter checks that the group still works: a commit by member i that
// every other member processes, then a message from each.
func gtAfter(t *testing.T, gg *gtGroup, i int) {
	t.Helper()
	gg.commit(i, CommitOptions{})
	gg.check()
	gg.appAll("after the refusal")
}

// TestSuccessorRule: a member cannot change its identity (RFC 9420
// §5.3.1, §12.1.2, §12.2): not by an Update proposal, not by the leaf of
// its commit path (also in a commit that removes someone, whom the path
// check protects as well), not by an external resync of another identity
// — on the joiner's side and on the members'.
func TestSuccessorRule(t *testing.T) {
	cases := []struct {
		name string
		// run returns the sender's index and the message the others refuse.
		run func(t *testing.T, gg *gtGroup) (int, *Message)
	}{
		{"update with another credential", func(t *testing.T, gg *gtGroup) (int, *Message) {
			p, _ := gtUpdateLeaf(t, gg.ms[1].g, gtRename("impostor"))
			_, _, err := gg.ms[1].g.Propose(p)
			gtExpectErr(t, err, ErrInvalidCredential)
			return 1, gtForgeProposal(t, gg.ms[1].g, p)
		}},
		{"commit path with another credential", func(t *testing.T, gg *gtGroup) (int, *Message) {
			res, err := gg.ms[1].g.commit(CommitOptions{}, commitTweaks{leaf: gtRename("impostor")})
			if err != nil {
				t.Fatal(err)
			}
			return 1, res.Commit
		}},
		{"commit path with another credential removing a member", func(t *testing.T, gg *gtGroup) (int, *Message) {
			res, err := gg.ms[1].g.commit(CommitOptions{Remove: []tree.LeafIndex{gg.ms[3].g.OwnLeafIndex()}}, commitTweaks{leaf: gtRename("impostor")})
			if err != nil {
				t.Fatal(err)
			}
			return 1, res.Commit
		}},
		{"external resync with another identity", func(t *testing.T, gg *gtGroup) (int, *Message) {
			victim := gg.ms[2].g.OwnLeafIndex()
			x := gtNewMember(t, gg.s, "impostor")
			gi := gtGroupInfo(t, gg.ms[0].g, true)
			_, _, err := joinByExternalCommit(gg.s, x.signer, gi, nil, LeafOptions{Credential: x.cred}, gg.cfg, externalCommitTweaks{remove: &victim})
			gtExpectErr(t, err, ErrInvalidCredential)
			bad, _, err := joinByExternalCommit(gg.s, x.signer, gi, nil, LeafOptions{Credential: x.cred}, gg.cfg, externalCommitTweaks{remove: &victim, noSelf: true})
			if err != nil {
				t.Fatal(err)
			}
			return -1, bad
		}},
	}
	for k, tc := range cases {
		for _, id := range gtTableSuites(k) {
			t.Run(fmt.Sprintf("suite=%d/%s", id, tc.name), func(t *testing.T) {
				gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 4)
				sender, bad := tc.run(t, gg)
				gtRejectAll(t, gg, sender, bad, ErrInvalidCredential)
				gtAfter(t, gg, 0)
			})
		}
	}
}

// renameValidator lets a member take an identity that extends its own
// (alice -> alice/2), nothing else.
type renameValidator struct{ BasicCredentialValidator }

func (renameValidator) ValidateSuccessor(prev, next *tree.LeafNode) error {
	if !bytes.HasPrefix(next.Credential.Identity, prev.Credential.Identity) {
		return fmt.Errorf("%w: %q may not become %q", ErrInvalidCredential, prev.Credential.Identity, next.Credential.Identity)
	}
	return nil
}

// TestSuccessorValidatorHonoured: an application's SuccessorValidator
// decides which identity changes are acceptable: its renames go through by
// Update, by commit path and by external resync; other changes do not.
func TestSuccessorValidatorHonoured(t *testing.T) {
	for _, id := range gtTableSuites(1) {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true, Credentials: renameValidator{}}, 4)
			name := func(i int) string { return string(gg.ms[i].cred.Identity) }
			identity := func(i int) string {
				m, _ := gg.ms[0].g.Member(gg.ms[i].g.OwnLeafIndex())
				return string(m.Credential.Identity)
			}

			// By Update, committed by another member.
			p, priv := gtUpdateLeaf(t, gg.ms[1].g, gtRename(name(1)+"/2"))
			m, next, err := gg.ms[1].g.Propose(p)
			if err != nil {
				t.Fatal(err)
			}
			next.ownUpdates = map[string][]byte{string(next.pending[0].ref): priv}
			gg.ms[1].g = next
			gg.deliver(1, m)
			gg.commit(0, CommitOptions{})
			gg.check()
			if identity(1) != name(1)+"/2" {
				t.Fatalf("update: identity %q", identity(1))
			}
			gg.ms[1].cred = tree.NewBasicCredential([]byte(identity(1)))

			// By commit path.
			res, err := gg.ms[2].g.commit(CommitOptions{}, commitTweaks{leaf: gtRename(name(2) + "/2")})
			if err != nil {
				t.Fatal(err)
			}
			gg.deliverCommit(2, res)
			gg.check()
			if identity(2) != name(2)+"/2" {
				t.Fatalf("commit: identity %q", identity(2))
			}
			gg.ms[2].cred = tree.NewBasicCredential([]byte(identity(2)))
			// Not to an unrelated identity.
			bad, err := gg.ms[2].g.commit(CommitOptions{}, commitTweaks{leaf: gtRename("someone else")})
			if err != nil {
				t.Fatal(err)
			}
			gtRejectAll(t, gg, 2, bad.Commit, ErrInvalidCredential)

			// By external resync of member 3, under a new signature key.
			victim := gg.ms[3]
			again := gtNewMember(t, gg.s, string(victim.cred.Identity)+"/2")
			leaf := victim.g.OwnLeafIndex()
			msg, g, err := joinByExternalCommit(gg.s, again.signer, gtGroupInfo(t, gg.ms[0].g, true), nil,
				LeafOptions{Credential: again.cred}, gg.cfg, externalCommitTweaks{remove: &leaf})
			if err != nil {
				t.Fatal(err)
			}
			gg.deliverAll(msg)
			if !victim.g.Removed() {
				t.Fatal("the resynchronized member's old state is not removed")
			}
			again.g = g
			gg.ms[3] = again
			gg.check()
			gg.appAll("renamed")
		})
	}
}

// TestProposalsJudgedInCommit: a proposal's validity depends on the commit
// that includes it (RFC 9420 §12.1.7, §12.2): a GroupContextExtensions
// that only a member removed in the same commit fails, and an Add that a
// GroupContextExtensions of the same commit makes valid, are cached on
// arrival and committed — by the default commit of a member that received
// them, and with the Remove by value — and every receiver accepts the
// commit. A pending proposal that fits no commit is left out of the
// default commit, and a commit that references it is refused.
func TestProposalsJudgedInCommit(t *testing.T) {
	needLastResort := func(t *testing.T) tree.Extensions {
		return tree.Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort}})}
	}
	gce := func(e tree.Extensions) *Proposal {
		return &Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: e}}
	}
	// weak lacks last_resort in its capabilities.
	weak := func(t *testing.T, gg *gtGroup) *gtMember {
		w := gtNewMember(t, gg.s, "weak")
		w.newKeyPackage(t, KeyPackageOptions{Capabilities: &tree.Capabilities{}})
		return w
	}
	hasLastResort := func(g *Group) bool { return g.Context().Extensions.Has(tree.ExtensionTypeRequiredCapabilities) }
	cases := []struct {
		name string
		run  func(t *testing.T, gg *gtGroup)
	}{
		{"GCE failing only for a member removed by reference", func(t *testing.T, gg *gtGroup) {
			w := weak(t, gg)
			gg.add(0, w)
			gtPropose(t, gg, 1, gce(needLastResort(t)))
			gtPropose(t, gg, 2, &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: w.g.OwnLeafIndex()}})
			gg.commit(0, CommitOptions{})
			if len(gg.lastCommit.Proposals) != 2 || !hasLastResort(gg.ms[0].g) || !w.g.Removed() {
				t.Fatalf("%d proposals committed, requirement %v, weak removed %v", len(gg.lastCommit.Proposals), hasLastResort(gg.ms[0].g), w.g.Removed())
			}
		}},
		{"GCE failing only for a member removed by value", func(t *testing.T, gg *gtGroup) {
			w := weak(t, gg)
			gg.add(0, w)
			gtPropose(t, gg, 1, gce(needLastResort(t)))
			gg.commit(0, CommitOptions{Remove: []tree.LeafIndex{w.g.OwnLeafIndex()}})
			if len(gg.lastCommit.Proposals) != 2 || !hasLastResort(gg.ms[0].g) || !w.g.Removed() {
				t.Fatalf("%d proposals committed", len(gg.lastCommit.Proposals))
			}
		}},
		{"Add made valid by a GCE", func(t *testing.T, gg *gtGroup) {
			gg.commit(1, CommitOptions{Extensions: needLastResort(t)})
			w := weak(t, gg)
			gtPropose(t, gg, 2, &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *w.kp}})
			gtPropose(t, gg, 1, gce(tree.Extensions{}))
			res := gg.commit(0, CommitOptions{})
			gg.join(res, w)
			if len(gg.lastCommit.Proposals) != 2 || hasLastResort(gg.ms[0].g) {
				t.Fatalf("%d proposals committed", len(gg.lastCommit.Proposals))
			}
		}},
		{"pending GCE that fits no commit", func(t *testing.T, gg *gtGroup) {
			bad := tree.Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0x7a7a}})}
			gtPropose(t, gg, 1, gce(bad))
			j := gtNewMember(t, gg.s, "j")
			gtPropose(t, gg, 2, &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}})
			c := gg.ms[2].g
			gtRejectAll(t, gg, 2, gtForgeCommit(t, c, byRef(c.pending[0].ref)), ErrInvalidProposal, ErrUnsupportedCapability)
			gtRejectAll(t, gg, 2, gtForgeCommit(t, c, byRef(c.pending[0].ref), byRef(c.pending[1].ref)), ErrUnsupportedCapability)
			res := gg.commit(3, CommitOptions{})
			gg.join(res, j)
			if len(gg.lastCommit.Proposals) != 1 || len(res.Added) != 1 {
				t.Fatalf("%d proposals committed", len(gg.lastCommit.Proposals))
			}
		}},
		{"pending GCE after the Adds it invalidates", func(t *testing.T, gg *gtGroup) {
			js := []*gtMember{gtNewMember(t, gg.s, "j1"), gtNewMember(t, gg.s, "j2")}
			for _, j := range js {
				gtPropose(t, gg, 2, &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}})
			}
			gtPropose(t, gg, 1, gce(tree.Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0x7a7a}})}))
			res := gg.commit(3, CommitOptions{})
			gg.join(res, js...)
			if len(gg.lastCommit.Proposals) != 2 || len(res.Added) != 2 {
				t.Fatalf("%d proposals committed", len(gg.lastCommit.Proposals))
			}
		}},
		{"pending Add that no GCE rescues", func(t *testing.T, gg *gtGroup) {
			gg.commit(1, CommitOptions{Extensions: needLastResort(t)})
			w := weak(t, gg)
			gtPropose(t, gg, 2, &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *w.kp}})
			c := gg.ms[1].g
			gtRejectAll(t, gg, 1, gtForgeCommit(t, c, byRef(c.pending[0].ref)), ErrInvalidProposal, ErrUnsupportedCapability)
			gg.commit(0, CommitOptions{})
			if len(gg.lastCommit.Proposals) != 0 {
				t.Fatalf("%d proposals committed", len(gg.lastCommit.Proposals))
			}
		}},
	}
	// The list rules do not depend on the suite: the cheap suites only.
	for _, tc := range cases {
		for _, id := range gtTableSuites(1) {
			t.Run(fmt.Sprintf("suite=%d/%s", id, tc.name), func(t *testing.T) {
				gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 4)
				tc.run(t, gg)
				gg.check()
				gg.appAll("committed")
				gtAfter(t, gg, 1)
			})
		}
	}
}

// gtTamperCommit makes member i's real commit of o, lets tamper change its
// content, and re-signs it (the committer is the attacker: signature and
// membership tag are valid; the confirmation tag is the original one).
func gtTamperCommit(t *testing.T, gg *gtGroup, i int, o CommitOptions, tamper func(g *Group, c *Commit)) *Message {
	t.Helper()
	g := gg.ms[i].g
	c := g.clone()
	c.cfg.HandshakeAsPublic = true
	res, err := c.Commit(o)
	if err != nil {
		t.Fatal(err)
	}
	ac := gtCloneMsg(t, res.Commit).PublicMessage.AuthenticatedContent()
	tamper(g, ac.Content.Commit)
	return gtForge(t, g, &ac.Content, ac.Auth.ConfirmationTag)
}

// gtResignLeaf re-signs a commit path's leaf as the committer g.
func gtResignLeaf(t *testing.T, g *Group, ln *tree.LeafNode) {
	t.Helper()
	if err := ln.Sign(g.suite, g.signer, g.ctx.GroupID, g.myLeaf); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedMemberValidatesPath: a commit that removes a member and whose
// path every other member refuses is refused by the removed member too
// (RFC 9420 §12.4.2): a removed member checks the path's leaf, signature,
// structure, keys and parent hashes before it accepts its removal, so an
// insider cannot split it off the group.
func TestRemovedMemberValidatesPath(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, g *Group, c *Commit)
		want   error
	}{
		{"leaf signature", func(t *testing.T, g *Group, c *Commit) {
			c.Path.LeafNode.Signature[0] ^= 1
		}, ErrInvalidSignature},
		{"leaf source", func(t *testing.T, g *Group, c *Commit) {
			c.Path.LeafNode.LeafNodeSource = tree.LeafNodeSourceUpdate
			gtResignLeaf(t, g, &c.Path.LeafNode)
		}, ErrInvalidLeafNode},
		{"parent hash", func(t *testing.T, g *Group, c *Commit) {
			c.Path.LeafNode.ParentHash[0] ^= 1
			gtResignLeaf(t, g, &c.Path.LeafNode)
		}, tree.ErrParentHash},
		{"path too short", func(t *testing.T, g *Group, c *Commit) {
			c.Path.Nodes = c.Path.Nodes[:len(c.Path.Nodes)-1]
		}, tree.ErrInvalidUpdatePath},
		{"ciphertext missing", func(t *testing.T, g *Group, c *Commit) {
			c.Path.Nodes[0].EncryptedPathSecret = nil
		}, tree.ErrInvalidUpdatePath},
		{"path key already in the tree", func(t *testing.T, g *Group, c *Commit) {
			c.Path.Nodes[0].EncryptionKey = g.tree.Leaf(0).EncryptionKey
		}, tree.ErrDuplicateKey},
		{"leaf keeps the committer's key", func(t *testing.T, g *Group, c *Commit) {
			c.Path.LeafNode.EncryptionKey = g.tree.Leaf(g.myLeaf).EncryptionKey
			gtResignLeaf(t, g, &c.Path.LeafNode)
		}, tree.ErrDuplicateKey},
	}
	// Handshakes alternate between PrivateMessage and PublicMessage, so
	// every case meets both.
	for k, tc := range cases {
		for _, id := range gtTableSuites(k) {
			public := (k+int(id))%2 == 1
			t.Run(fmt.Sprintf("suite=%d/public=%v/%s", id, public, tc.name), func(t *testing.T) {
				gg := gtCreate(t, id, Config{HandshakeAsPublic: public, RatchetTreeInWelcome: true}, 4)
				victim := gg.ms[3].g.OwnLeafIndex()
				o := CommitOptions{Remove: []tree.LeafIndex{victim}}
				bad := gtTamperCommit(t, gg, 1, o, func(g *Group, c *Commit) { tc.tamper(t, g, c) })
				gtRejectAll(t, gg, 1, bad, ErrInvalidCommit, tc.want)
				gg.commit(1, o) // the genuine removal goes through
				if len(gg.ms) != 3 {
					t.Fatalf("%d members", len(gg.ms))
				}
				gg.check()
				gg.appAll("after the removal")
			})
		}
	}
}

// gtResignExternal re-signs an external commit after mutate changed it, as
// its joiner (signer) would: the joiner is the attacker.
func gtResignExternal(t *testing.T, s *suite.Suite, signer *suite.Signer, gc *GroupContext, msg *Message, mutate func(c *Commit)) *Message {
	t.Helper()
	ac := gtCloneMsg(t, msg).PublicMessage.AuthenticatedContent()
	mutate(ac.Content.Commit)
	out, err := SignContent(signer, WireFormatPublicMessage, &ac.Content, gc)
	if err != nil {
		t.Fatal(err)
	}
	out.Auth.ConfirmationTag = ac.Auth.ConfirmationTag
	pm, err := ProtectPublic(s, out, gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMessage(pm)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestResyncReusesEncryptionKey: an external commit that resynchronizes a
// member must meet the criteria of an Update of the removed leaf (RFC 9420
// §12.2, §12.1.2): its path may not bring back the removed leaf's
// encryption key, in the leaf or a parent node. Every member refuses it,
// the one being replaced included; the honest resync then goes through.
// (The leaf is the real hole: no member derives the leaf's key, so only a
// comparison catches it. A parent node's key also breaks the parent hash,
// and its derivation at the members that decrypt there.)
func TestResyncReusesEncryptionKey(t *testing.T) {
	for k, where := range []string{"leaf", "parent node"} {
		for _, id := range gtTableSuites(k) {
			t.Run(fmt.Sprintf("suite=%d/%s", id, where), func(t *testing.T) {
				gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
				victim := gg.ms[2]
				leaf := victim.g.OwnLeafIndex()
				oldKey := victim.g.tree.Leaf(leaf).EncryptionKey
				again := gtNewMember(t, gg.s, string(victim.cred.Identity))
				gi := gtGroupInfo(t, gg.ms[0].g, true)
				lo := LeafOptions{Credential: again.cred}
				tw := externalCommitTweaks{remove: &leaf}
				if where == "leaf" {
					tw.leaf = func(ln *tree.LeafNode) { ln.EncryptionKey = oldKey }
				}
				bad, _, err := joinByExternalCommit(gg.s, again.signer, gi, nil, lo, gg.cfg, tw)
				if err != nil {
					t.Fatal(err)
				}
				if where == "parent node" {
					bad = gtResignExternal(t, gg.s, again.signer, &gi.GroupContext, bad, func(c *Commit) {
						c.Path.Nodes[len(c.Path.Nodes)-1].EncryptionKey = oldKey
					})
				}
				gtRejectAll(t, gg, -1, bad, ErrInvalidCommit, tree.ErrDuplicateKey)

				ok, g, err := joinByExternalCommit(gg.s, again.signer, gi, nil, lo, gg.cfg, externalCommitTweaks{remove: &leaf})
				if err != nil {
					t.Fatal(err)
				}
				gg.deliverAll(ok)
				if !victim.g.Removed() {
					t.Fatal("old state not removed")
				}
				again.g = g
				gg.ms[2] = again
				gg.check()
				gg.appAll("resynchronized")
			})
		}
	}
}

// TestLocalAPINil: nil proposals, proposals without their body and nil
// KeyPackages given to the local API are refused with an error, not a
// panic, and change nothing.
func TestLocalAPINil(t *testing.T) {
	types := []tree.ProposalType{tree.ProposalTypeAdd, tree.ProposalTypeUpdate, tree.ProposalTypeRemove, tree.ProposalTypePSK,
		tree.ProposalTypeReInit, tree.ProposalTypeExternalInit, tree.ProposalTypeGroupContextExtensions, 0x7777}
	type call struct {
		name string
		do   func(g *Group) error
		want error
	}
	calls := []call{{"Propose(nil)", func(g *Group) error { _, _, err := g.Propose(nil); return err }, ErrInvalidProposal}}
	for _, pt := range types {
		calls = append(calls, call{fmt.Sprintf("Propose(%v without body)", pt), func(g *Group) error {
			_, _, err := g.Propose(&Proposal{ProposalType: pt})
			return err
		}, ErrInvalidProposal})
	}
	calls = append(calls,
		call{"Commit(Add: nil)", func(g *Group) error {
			_, err := g.Commit(CommitOptions{Add: []*KeyPackage{nil}})
			return err
		}, ErrInvalidProposal},
		call{"Commit(Add: kp, nil)", func(g *Group) error {
			j := gtNewMember(t, g.suite, "j")
			_, err := g.Commit(CommitOptions{Add: []*KeyPackage{j.kp, nil}})
			return err
		}, ErrInvalidProposal},
		call{"Commit(ReInit: zero value)", func(g *Group) error {
			_, err := g.Commit(CommitOptions{ReInit: &ReInit{}})
			return err
		}, ErrInvalidProposal},
		call{"Commit(PSKs: zero value)", func(g *Group) error {
			_, err := g.Commit(CommitOptions{PSKs: []schedule.PreSharedKeyID{{}}})
			return err
		}, ErrMissingPSK},
		call{"Commit(Extensions: zero value)", func(g *Group) error {
			_, err := g.Commit(CommitOptions{Extensions: tree.Extensions{{}}})
			return err
		}, ErrInvalidProposal},
		call{"Commit with a nil by-value proposal", func(g *Group) error {
			_, err := g.stageProposals(&Commit{Proposals: []ProposalOrRef{{Type: ProposalOrRefTypeProposal}}}, MemberSender(g.myLeaf))
			return err
		}, ErrInvalidCommit},
	)
	for _, id := range gtAllSuites() {
		gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
		for _, c := range calls {
			t.Run(fmt.Sprintf("suite=%d/%s", id, c.name), func(t *testing.T) {
				g := gg.ms[1].g
				snap := gtSnapshot(g)
				err := func() (err error) {
					defer func() {
						if r := recover(); r != nil {
							err = fmt.Errorf("panic: %v", r)
						}
					}()
					return c.do(g)
				}()
				gtExpectErr(t, err, c.want)
				if !snap.equal(gtSnapshot(g)) {
					t.Fatal("state changed")
				}
			})
		}
		// A removed member's state refuses to send, without panicking.
		victim := gg.ms[2]
		gg.commit(0, CommitOptions{Remove: []tree.LeafIndex{victim.g.OwnLeafIndex()}})
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("suite %d: ProposeUpdate of a removed member panics: %v", id, r)
				}
			}()
			_, _, err := victim.g.ProposeUpdate()
			gtExpectErr(t, err, ErrNotMember)
		}()
		gtAfter(t, gg, 1)
	}
}

// BenchmarkDefaultCommitWithMisfit: a default commit of 30 pending Adds
// and a GroupContextExtensions that fits none of them (it is left out).
func BenchmarkDefaultCommitWithMisfit(b *testing.B) {
	gg := gtCreate(b, 1, Config{RatchetTreeInWelcome: true}, 3)
	for range 30 {
		j := gtNewMember(b, gg.s, "j")
		gtPropose(b, gg, 1, &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}})
	}
	bad := tree.Extensions{gtRequiredCaps(b, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0x7a7a}})}
	gtPropose(b, gg, 2, &Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: bad}})
	g := gg.ms[0].g
	b.ResetTimer()
	for b.Loop() {
		res, err := g.Commit(CommitOptions{})
		if err != nil || len(res.Added) != 30 {
			b.Fatalf("%v, %d added", err, len(res.Added))
		}
	}
}
