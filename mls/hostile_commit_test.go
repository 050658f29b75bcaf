package mls

import (
	"bytes"
	"math"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Rows of TestHostileMembers: commits and proposal lists.

// hsProposeUpdate has member i propose an Update to a leaf with the key
// pair (priv, pub), keeping priv as ProposeUpdate does; everyone caches it.
func hsProposeUpdate(t *testing.T, gg *gtGroup, i int, priv, pub []byte) {
	p, _ := gtUpdateLeaf(t, gg.ms[i].g, func(ln *tree.LeafNode) { ln.EncryptionKey = pub })
	m, next, err := gg.ms[i].g.Propose(p)
	if err != nil {
		t.Fatal(err)
	}
	next.ownUpdates = map[string][]byte{string(next.pending[len(next.pending)-1].ref): priv}
	gg.ms[i].g = next
	gg.deliver(i, m)
}

// hsCommitCases: proposal lists and commits (items 6, 7, 12 and the
// extra checks of the "Done means").
func hsCommitCases() []hsCase {
	return []hsCase{
		{name: "control: a forged commit with a path, unmodified", item: "control", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{msg: vtForgeCommit(t, f.gg.ms[1].g, vtCommit{path: true, node: func(k []byte) []byte { return k }}), from: 1}
			}},
		{name: "GroupContextExtensions only a member removed in the same commit fails", item: "6", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				w := gtNewMember(t, gg.s, "weak")
				w.newKeyPackage(t, KeyPackageOptions{Capabilities: &tree.Capabilities{}})
				gg.commit(0, CommitOptions{NoPath: true}, w)
				gtPropose(t, gg, 1, vtGCE(tree.Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort}})}))
				res, err := gg.ms[0].g.Commit(CommitOptions{Remove: []tree.LeafIndex{w.g.OwnLeafIndex()}})
				if err != nil {
					t.Fatal(err)
				}
				if !res.State.Context().Extensions.Has(tree.ExtensionTypeRequiredCapabilities) {
					t.Fatal("the GroupContextExtensions was left out")
				}
				return hsAttack{msg: res.Commit, from: 0}
			}},
		{name: "Add that a GroupContextExtensions of the same commit makes valid", item: "6", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				gg.commit(1, CommitOptions{Extensions: tree.Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort}})}})
				w := gtNewMember(t, gg.s, "weak")
				w.newKeyPackage(t, KeyPackageOptions{Capabilities: &tree.Capabilities{}})
				gtPropose(t, gg, 2, hsAdd(w.kp))
				gtPropose(t, gg, 1, vtGCE(tree.Extensions{}))
				res, err := gg.ms[0].g.Commit(CommitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Added) != 1 {
					t.Fatal("the Add was left out")
				}
				return hsAttack{msg: res.Commit, from: 0}
			}},
		{name: "external join by an outsider: joiner and members keep no encryption secret", item: "11", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				x := f.pool[1]
				msg, g, err := JoinByExternalCommit(f.gg.s, x.signer, gtGroupInfo(t, f.gg.ms[0].g, true), nil, LeafOptions{Credential: x.cred}, f.gg.cfg)
				if err != nil {
					t.Fatal(err)
				}
				gtForgotten(t, "external joiner", g)
				p, err := f.gg.ms[0].g.Process(msg) // the others: hsRun
				if err != nil {
					t.Fatal(err)
				}
				gtForgotten(t, "member 0", p.State)
				return hsAttack{msg: msg, from: -1}
			}},
		{name: "removal of member 2 by a commit whose path leaf signature is bad", item: "7",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o := CommitOptions{Remove: []tree.LeafIndex{f.gg.ms[2].g.OwnLeafIndex()}}
				return hsAttack{msg: gtTamperCommit(t, f.gg, 1, o, func(g *Group, c *Commit) { c.Path.LeafNode.Signature[0] ^= 1 }), from: 1}
			}, want: []error{ErrInvalidCommit, ErrInvalidSignature}},
		{name: "Propose(nil)", item: "12",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{localOn: g1, local: func() error { _, _, err := g1.Propose(nil); return err }}
			}, want: []error{ErrInvalidProposal}},
		{name: "Commit with a nil KeyPackage", item: "12",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Add: []*KeyPackage{nil}}); return err }}
			}, want: []error{ErrInvalidProposal}},
		{name: "by-value proposal of an unknown type without a body, on the wire", item: "12",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				g1.cfg.HandshakeAsPublic = true
				m := gtForgeCommit(t, g1, byValue(hsRemove(2)))
				// ProposalOrRef proposal(1), proposal_type remove(3), removed leaf 2.
				raw := hsRawEdit(t, m, []byte{1, 0, 3, 0, 0, 0, 2}, []byte{1, 0x77, 0x77, 0, 0, 0, 2})
				return hsAttack{raw: raw, from: 1}
			}, want: []error{ErrUnknownProposalType, wire.ErrInvalidValue}},
		{name: "commit at the last epoch", item: "12",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gtSetEpoch(t, f.gg, math.MaxUint64)
				g1 := f.gg.ms[1].g
				return hsAttack{msg: gtForgeCommit(t, g1), from: 1, localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{}); return err }}
			}, want: []error{ErrEpochLimit}},
		{name: "commit of the next epoch", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{msg: gtForge(t, g1, &FramedContent{GroupID: g1.GroupID(), Epoch: g1.Epoch() + 1, Sender: MemberSender(1),
					ContentType: ContentTypeCommit, Commit: &Commit{}}, nil), from: 1}
			}, want: []error{ErrWrongEpoch}},
		{name: "commit for another group id", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{msg: gtForge(t, g1, &FramedContent{GroupID: append(g1.GroupID(), 0), Epoch: g1.Epoch(), Sender: MemberSender(1),
					ContentType: ContentTypeCommit, Commit: &Commit{}}, nil), from: 1}
			}, want: []error{ErrWrongGroup}},
		{name: "replayed commit", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				res, err := f.gg.ms[1].g.Commit(CommitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				f.gg.deliverCommit(1, res)
				return hsAttack{msg: res.Commit, from: 1}
			}, want: []error{ErrWrongEpoch}},
		{name: "commit that removes its committer", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{msg: gtForgeCommit(t, g1, byValue(hsRemove(g1.OwnLeafIndex()))), from: 1,
					localOn: g1, local: func() error {
						_, err := g1.Commit(CommitOptions{Remove: []tree.LeafIndex{g1.OwnLeafIndex()}})
						return err
					}}
			}, want: []error{ErrInvalidCommit}},
		{name: "Update and Remove of one leaf in one commit", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				gg.deliver(0, gtProposeUpdate(t, gg, 0))
				c := gg.ms[1].g
				return hsAttack{msg: gtForgeCommit(t, c, byRef(c.pending[0].ref), byValue(hsRemove(gg.ms[0].g.OwnLeafIndex()))), from: 1}
			}, want: []error{ErrInvalidCommit}},
		{name: "Add of an existing member's new KeyPackage", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				old := f.gg.ms[2]
				old.newKeyPackage(t, KeyPackageOptions{})
				g1 := f.gg.ms[1].g
				return hsAttack{msg: gtForgeCommit(t, g1, byValue(hsAdd(old.kp))), from: 1,
					localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Add: []*KeyPackage{old.kp}}); return err }}
			}, want: []error{ErrInvalidCommit}},
		{name: "two Adds whose leaves share an encryption key", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				_, kp1 := f.outsiderKP(t, 0, func(*KeyPackage) {})
				_, kp2 := f.outsiderKP(t, 1, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = kp1.LeafNode.EncryptionKey })
				return hsAttack{msg: gtForgeCommit(t, f.gg.ms[1].g, byValue(hsAdd(kp1)), byValue(hsAdd(kp2))), from: 1}
			}, want: []error{ErrInvalidProposal, tree.ErrDuplicateKey}},
		{name: "Add whose leaf reuses a parent node's key", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				_, kp := f.outsiderKP(t, 0, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = g1.tree.EncryptionKey(1) })
				return hsAttack{msg: gtForgeCommit(t, g1, byValue(hsAdd(kp))), from: 1}
			}, want: []error{tree.ErrDuplicateKey}},
		{name: "two members' Updates with one new encryption key", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				key := joinerFreshKey(t, gg.s)
				for _, i := range []int{0, 2} {
					p, _ := gtUpdateLeaf(t, gg.ms[i].g, func(ln *tree.LeafNode) { ln.EncryptionKey = key })
					gtPropose(t, gg, i, p)
				}
				c := gg.ms[1].g
				if len(c.pending) != 2 {
					t.Fatalf("%d pending", len(c.pending))
				}
				return hsAttack{msg: gtForgeCommit(t, c, byRef(c.pending[0].ref), byRef(c.pending[1].ref)), from: 1}
			}, want: []error{ErrInvalidProposal, tree.ErrDuplicateKey}},
		{name: "default commit of two pending Updates with one new key leaves one out", item: "6", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				priv, pub, err := gg.s.GenerateHPKEKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range []int{0, 2} {
					hsProposeUpdate(t, gg, i, priv, pub)
				}
				res, err := gg.ms[1].g.Commit(CommitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return hsAttack{msg: res.Commit, from: 1}
			}},
		{name: "default commit with a pending new_member_proposal of a present client leaves it out", item: "6", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				old := gg.ms[2]
				old.newKeyPackage(t, KeyPackageOptions{})
				gg.deliver(-1, vtNewMemberProposal(t, gg.ms[0].g, old.signer, old.kp))
				res, err := gg.ms[1].g.Commit(CommitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Added) != 0 {
					t.Fatal("a present client was added again")
				}
				return hsAttack{msg: res.Commit, from: 1}
			}},
		{name: "commit removing a leaf that a pending Remove removes too", item: "6", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				gtPropose(t, gg, 0, hsRemove(2))
				res, err := gg.ms[1].g.Commit(CommitOptions{Remove: []tree.LeafIndex{2}})
				if err != nil {
					t.Fatal(err)
				}
				return hsAttack{msg: res.Commit, from: 1}
			}},
		{name: "default commit with a pending Update and a pending Remove of one leaf", item: "6", accept: true,
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				gg.deliver(2, gtProposeUpdate(t, gg, 2))
				gtPropose(t, gg, 0, hsRemove(2))
				res, err := gg.ms[1].g.Commit(CommitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return hsAttack{msg: res.Commit, from: 1}
			}},
		{name: "proposal by reference to an unknown ref", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{msg: gtForgeCommit(t, f.gg.ms[1].g, byRef(bytes.Repeat([]byte{7}, f.gg.s.HashSize()))), from: 1}
			}, want: []error{ErrUnknownProposal}},
		{name: "PSK proposal with a nonce of the wrong length", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				p := &Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal,
					PSKID: []byte("psk"), Nonce: []byte{1, 2, 3, 4, 5}}}}
				return hsAttack{msg: gtForgeProposal(t, g1, p), from: 1, localOn: g1, local: func() error { _, _, err := g1.Propose(p); return err }}
			}, want: []error{ErrInvalidProposal}},
		{name: "external proposal naming an external sender the group does not have", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o := f.pool[0]
				return hsAttack{msg: vtOutsiderProposal(t, f.gg.ms[0].g, o.signer, Sender{SenderType: SenderTypeExternal, SenderIndex: 5},
					hsRemove(1)), from: -1}
			}, want: []error{ErrUnknownSender}},
		{name: "Update from the group's external sender", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				es := gtSigner(t, f.gg.s)
				hsSetExtensions(t, f.gg, tree.Extensions{vtExtSenders(t, tree.ExternalSender{SignatureKey: es.PublicKey(),
					Credential: tree.NewBasicCredential([]byte("delivery service"))})})
				upd, _ := gtUpdateLeaf(t, f.gg.ms[1].g, func(*tree.LeafNode) {})
				return hsAttack{msg: gtExternalProposal(t, f.gg.ms[0].g, es, 0, upd), from: -1}
			}, want: []error{ErrInvalidProposal}},
		{name: "external commit whose kem_output is not the suite's", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				x := f.pool[1]
				gi := gtGroupInfo(t, f.gg.ms[0].g, true)
				msg, _, err := JoinByExternalCommit(f.gg.s, x.signer, gi, nil, LeafOptions{Credential: x.cred}, f.gg.cfg)
				if err != nil {
					t.Fatal(err)
				}
				bad := gtResignExternal(t, f.gg.s, x.signer, &gi.GroupContext, msg, func(c *Commit) {
					c.Proposals[0].Proposal.ExternalInit.KEMOutput = []byte{1, 2, 3}
				})
				return hsAttack{msg: bad, from: -1}
			}, want: []error{ErrInvalidCommit}},
		{name: "path with one node too many", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{msg: gtTamperCommit(t, f.gg, 1, CommitOptions{}, func(g *Group, c *Commit) {
					c.Path.Nodes = append(c.Path.Nodes, c.Path.Nodes[0])
				}), from: 1}
			}, want: []error{ErrInvalidCommit, tree.ErrInvalidUpdatePath}},
		{name: "path with one node too few", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{msg: gtTamperCommit(t, f.gg, 1, CommitOptions{}, func(g *Group, c *Commit) {
					c.Path.Nodes = c.Path.Nodes[:len(c.Path.Nodes)-1]
				}), from: 1}
			}, want: []error{ErrInvalidCommit, tree.ErrInvalidUpdatePath}},
	}
}
