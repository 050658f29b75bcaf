package mls

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// TestHostileMembers is the hostile-member suite of issue 11: a table of
// forged proposals, commits, Welcomes and GroupInfos, built with the
// package's own pieces (and a wire edit where the encoder refuses) by a
// member holding valid keys — or by an outsider with a KeyPackage — each
// refused by every honest receiver with an exported sentinel (errors.Is)
// and its whole serialized state (epoch state and sender ratchets)
// unchanged byte for byte. Control rows show the forgers' honest output
// is accepted, and that proposals valid only in the context of their
// commit are accepted (RFC 9420 §12.2). Every row runs in all seven
// suites with handshakes as PrivateMessage, and in suite 1 as
// PublicMessage; each run builds its groups once and every row starts
// from deep copies of them.
func TestHostileMembers(t *testing.T) {
	cases := hsCases()
	type run struct {
		id     suite.ID
		public bool
	}
	var runs []run
	for _, id := range suite.All() {
		runs = append(runs, run{id, false})
	}
	// Handshakes as PublicMessage too, in one cheap suite: the rows do
	// not depend on the suite there, but the refusal must come before the
	// membership tag and signature are of any use.
	runs = append(runs, run{1, true})
	for _, r := range runs {
		t.Run(fmt.Sprintf("suite=%d/public=%v", r.id, r.public), func(t *testing.T) {
			t.Parallel()
			fx := hsNewFixture(t, r.id, r.public)
			for _, c := range cases {
				t.Run(c.item+"/"+c.name, func(t *testing.T) {
					f := fx.clone(t)
					hsRun(t, c, c.run(t, f), f)
				})
			}
			// The fixture itself still works after all the rows.
			gtAfter(t, hsClone(t, fx.gg), 2)
		})
	}
}

func hsAdd(kp *KeyPackage) *Proposal {
	return &Proposal{ProposalType: ProposalTypeAdd, Add: &Add{KeyPackage: *kp}}
}

func hsRemove(l tree.LeafIndex) *Proposal {
	return &Proposal{ProposalType: ProposalTypeRemove, Remove: &Remove{Removed: l}}
}

func hsUpdateKey(t *testing.T, g *Group, key []byte) *Proposal {
	return &Proposal{ProposalType: ProposalTypeUpdate, Update: &Update{
		LeafNode: *vtUpdateLeaf(t, g, func(ln *tree.LeafNode) { ln.EncryptionKey = key })}}
}

// hsOutsiderKP is an outsider and a KeyPackage of it changed by mutate.
func hsOutsiderKP(t *testing.T, s *suite.Suite, mutate func(kp *KeyPackage)) (*gtMember, *KeyPackage) {
	o := gtNewMember(t, s, "outsider")
	return o, vtKeyPackage(t, o, mutate)
}

// hsWelcomeTo forges a Welcome of w to a new joiner and returns the join.
func hsWelcomeTo(t *testing.T, w vtWelcome, cfg Config) func() (any, error) {
	j := gtNewMember(t, w.s, "joiner")
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

var hsLeafDup = Extensions{{ExtensionType: 0xf000}, {ExtensionType: 0xf000}}

func hsCases() []hsCase {
	var cases []hsCase
	for _, part := range [][]hsCase{hsKeyCases(), hsIdentityCases(), hsExtensionCases(), hsCommitCases(), hsJoinCases()} {
		cases = append(cases, part...)
	}
	return cases
}

// hsKeyCases: HPKE keys (issue 11 item 1, RFC 9420 §5.1.1, §7.3, §10.1),
// empty keys (item 4).
func hsKeyCases() []hsCase {
	keyWant := []error{suite.ErrInvalidKey}
	return []hsCase{
		{name: "KeyPackage init_key of small order, new_member_proposal from an outsider", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o, kp := hsOutsiderKP(t, f.gg.s, func(kp *KeyPackage) { kp.InitKey = vtSuiteBadKey(t, f.gg.s) })
				return hsAttack{msg: vtNewMemberProposal(t, f.gg.ms[0].g, o.signer, kp), from: -1}
			}, want: append([]error{ErrInvalidProposal, ErrInvalidKeyPackage}, keyWant...)},
		{name: "KeyPackage init_key of 3 bytes, Add committed by value", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				_, kp := hsOutsiderKP(t, f.gg.s, func(kp *KeyPackage) { kp.InitKey = []byte{1, 2, 3} })
				g1 := f.gg.ms[1].g
				return hsAttack{msg: vtForgeCommit(t, g1, vtCommit{props: []*Proposal{hsAdd(kp)}}), from: 1,
					localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Add: []*KeyPackage{kp}}); return err }}
			}, want: append([]error{ErrInvalidKeyPackage}, keyWant...)},
		{name: "KeyPackage leaf encryption_key of 4 bytes, new_member_proposal from an outsider", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o, kp := hsOutsiderKP(t, f.gg.s, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = []byte{1, 2, 3, 4} })
				return hsAttack{msg: vtNewMemberProposal(t, f.gg.ms[0].g, o.signer, kp), from: -1}
			}, want: append([]error{ErrInvalidProposal, ErrInvalidKeyPackage}, keyWant...)},
		{name: "Update leaf with an all-zero key", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				p := hsUpdateKey(t, g1, make([]byte, len(g1.tree.Leaf(0).EncryptionKey)))
				return hsAttack{msg: vtProposal(t, g1, p), from: 1, localOn: g1, local: func() error { _, _, err := g1.Propose(p); return err }}
			}, want: append([]error{ErrInvalidLeafNode}, keyWant...)},
		{name: "Update leaf with a key of small order or off the curve", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{msg: vtProposal(t, g1, hsUpdateKey(t, g1, vtSuiteBadKey(t, f.gg.s))), from: 1}
			}, want: append([]error{ErrInvalidProposal, ErrInvalidLeafNode}, keyWant...)},
		{name: "Update leaf with an empty key", item: "4",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{msg: vtProposal(t, g1, hsUpdateKey(t, g1, []byte{})), from: 1}
			}, want: append([]error{ErrInvalidProposal, ErrInvalidLeafNode}, keyWant...)},
		{name: "UpdatePath node key of small order or off the curve", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				bad := vtSuiteBadKey(t, f.gg.s)
				return hsAttack{msg: vtForgeCommit(t, f.gg.ms[1].g, vtCommit{path: true, node: func([]byte) []byte { return bad }}), from: 1}
			}, want: append([]error{ErrInvalidCommit, tree.ErrInvalidUpdatePath}, keyWant...)},
		{name: "UpdatePath leaf key of small order or off the curve", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				bad := vtSuiteBadKey(t, f.gg.s)
				return hsAttack{msg: vtForgeCommit(t, f.gg.ms[1].g, vtCommit{path: true, leaf: func(ln *tree.LeafNode) { ln.EncryptionKey = bad }}), from: 1}
			}, want: append([]error{ErrInvalidCommit, ErrInvalidLeafNode}, keyWant...)},
		{name: "Welcome whose tree has a leaf key of small order or off the curve", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.flat)
				bad := vtSuiteBadKey(t, f.flat.s)
				vtResignLeafAt(t, w.nodes, f.flat.ms[1], func(ln *tree.LeafNode) { ln.EncryptionKey = bad })
				return hsAttack{join: hsWelcomeTo(t, w, f.flat.cfg)}
			}, want: append([]error{ErrInvalidWelcome}, keyWant...)},
		{name: "GroupInfo external_pub of small order or off the curve", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.giExts = Extensions{{ExtensionType: tree.ExtensionTypeExternalPub,
					ExtensionData: gtWireOf(t, &tree.ExternalPub{ExternalPub: vtSuiteBadKey(t, f.gg.s)})}}
				_, _, gi := vtForgeWelcome(t, w, nil)
				return hsAttack{join: hsJoinExternal(t, f.gg.s, gi, f.gg.cfg)}
			}, want: append([]error{ErrInvalidGroupInfo, ErrInvalidExtension}, keyWant...)},
		{name: "Welcome whose tree has two leaves with empty encryption keys", item: "4",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.flat)
				empty := func(ln *tree.LeafNode) { ln.EncryptionKey = []byte{} }
				vtResignLeafAt(t, w.nodes, f.flat.ms[1], empty)
				vtResignLeafAt(t, w.nodes, f.flat.ms[2], empty)
				return hsAttack{join: hsWelcomeTo(t, w, f.flat.cfg)}
			}, want: []error{ErrInvalidWelcome, tree.ErrDuplicateKey}},
	}
}

// hsIdentityCases: the successor rule (item 2, RFC 9420 §5.3.1): no
// member takes another identity (here the creator's) by Update, commit
// path or external resync.
func hsIdentityCases() []hsCase {
	want := []error{ErrInvalidCredential}
	admin := func(f *hsFixture) func(*tree.LeafNode) { return gtRename(string(f.gg.ms[0].cred.Identity)) }
	return []hsCase{
		{name: "Update taking the creator's identity", item: "2",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				p, _ := gtUpdateLeaf(t, g1, admin(f))
				return hsAttack{msg: gtForgeProposal(t, g1, p), from: 1, localOn: g1, local: func() error { _, _, err := g1.Propose(p); return err }}
			}, want: want},
		{name: "commit path leaf taking the creator's identity", item: "2",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				res, err := f.gg.ms[1].g.commit(CommitOptions{}, commitTweaks{leaf: admin(f)})
				if err != nil {
					t.Fatal(err)
				}
				return hsAttack{msg: res.Commit, from: 1}
			}, want: want},
		{name: "external resync of member 2 as another identity", item: "2",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				victim := f.gg.ms[2].g.OwnLeafIndex()
				x := gtNewMember(t, f.gg.s, "impostor")
				gi := gtGroupInfo(t, f.gg.ms[0].g, true)
				_, _, err := joinByExternalCommit(f.gg.s, x.signer, gi, nil, LeafOptions{Credential: x.cred}, f.gg.cfg, externalCommitTweaks{remove: &victim})
				vtExpect(t, err, want...)
				bad, _, err := joinByExternalCommit(f.gg.s, x.signer, gi, nil, LeafOptions{Credential: x.cred}, f.gg.cfg, externalCommitTweaks{remove: &victim, noSelf: true})
				if err != nil {
					t.Fatal(err)
				}
				return hsAttack{msg: bad, from: -1}
			}, want: want},
		{name: "external resync reusing the removed leaf's encryption key", item: "8",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				victim := f.gg.ms[2]
				leaf := victim.g.OwnLeafIndex()
				oldKey := victim.g.tree.Leaf(leaf).EncryptionKey
				again := gtNewMember(t, f.gg.s, string(victim.cred.Identity))
				tw := externalCommitTweaks{remove: &leaf, leaf: func(ln *tree.LeafNode) { ln.EncryptionKey = oldKey }}
				bad, _, err := joinByExternalCommit(f.gg.s, again.signer, gtGroupInfo(t, f.gg.ms[0].g, true), nil,
					LeafOptions{Credential: again.cred}, f.gg.cfg, tw)
				if err != nil {
					t.Fatal(err)
				}
				return hsAttack{msg: bad, from: -1}
			}, want: []error{ErrInvalidCommit, tree.ErrDuplicateKey}},
	}
}

// hsExtensionCases: external_senders (item 3), duplicate extension types
// (item 9, RFC 9420 §13.4).
func hsExtensionCases() []hsCase {
	emptyID := func(t *testing.T, s *suite.Suite) Extensions {
		return Extensions{vtExtSenders(t, tree.ExternalSender{SignatureKey: gtSigner(t, s).PublicKey(), Credential: tree.NewBasicCredential(nil)})}
	}
	undecodable := Extensions{{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: []byte{0x05, 1, 2}}}
	onDecode := []error{tree.ErrDuplicateExtension, wire.ErrInvalidValue}
	return []hsCase{
		{name: "GroupContextExtensions installing an external sender with an empty identity", item: "3",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				p := vtGCE(emptyID(t, f.gg.s))
				return hsAttack{msg: vtProposal(t, g1, p), from: 1, localOn: g1, local: func() error { _, _, err := g1.Propose(p); return err }}
			}, want: []error{ErrInvalidExtension, ErrInvalidCredential}},
		{name: "GroupContextExtensions by value with an undecodable external_senders body", item: "3",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				return hsAttack{msg: vtForgeCommit(t, g1, vtCommit{props: []*Proposal{vtGCE(undecodable)}, path: true}), from: 1,
					localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Extensions: undecodable}); return err }}
			}, want: []error{ErrInvalidExtension, wire.ErrTruncated}},
		{name: "Welcome whose group has an external sender with an x509 credential nobody validates", item: "3",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.ctx.Extensions = Extensions{vtExtSenders(t, tree.ExternalSender{SignatureKey: gtSigner(t, f.gg.s).PublicKey(),
					Credential: tree.Credential{CredentialType: tree.CredentialTypeX509, Certificates: [][]byte{{1}}}})}
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, ErrInvalidExtension, ErrInvalidCredential}},
		{name: "GroupContextExtensions by value with two required_capabilities", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				rc := vtReqCaps(t, tree.RequiredCapabilities{})
				return hsAttack{msg: vtForgeCommit(t, f.gg.ms[1].g, vtCommit{props: []*Proposal{vtGCE(Extensions{rc, rc})}, path: true}), from: 1}
			}, want: onDecode},
		{name: "GroupContextExtensions by value with an extension no member supports", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				es := Extensions{{ExtensionType: 0xf0f0, ExtensionData: []byte{}}}
				g1 := f.gg.ms[1].g
				return hsAttack{msg: vtForgeCommit(t, g1, vtCommit{props: []*Proposal{vtGCE(es)}, path: true}), from: 1,
					localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Extensions: es}); return err }}
			}, want: []error{ErrUnsupportedCapability}},
		{name: "one Remove committed twice by reference", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gtPropose(t, f.gg, 0, hsRemove(2))
				c := f.gg.ms[1].g
				return hsAttack{msg: gtForgeCommit(t, c, byRef(c.pending[0].ref), byRef(c.pending[0].ref)), from: 1}
			}, want: []error{ErrInvalidCommit}},
		{name: "commit path leaf with an extension its capabilities do not list", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{msg: vtForgeCommit(t, f.gg.ms[1].g, vtCommit{path: true, leaf: func(ln *tree.LeafNode) {
					ln.Extensions = Extensions{{ExtensionType: 0xf000, ExtensionData: []byte{}}}
				}}), from: 1}
			}, want: []error{ErrInvalidCommit, ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "Commit asked for two required_capabilities", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				rc := vtReqCaps(t, tree.RequiredCapabilities{})
				return hsAttack{localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Extensions: Extensions{rc, rc}}); return err }}
			}, want: []error{ErrInvalidExtension, tree.ErrDuplicateExtension}},
		{name: "KeyPackage with a duplicate leaf extension, new_member_proposal from an outsider", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o, kp := hsOutsiderKP(t, f.gg.s, func(kp *KeyPackage) {
					kp.LeafNode.Extensions = hsLeafDup
					kp.LeafNode.Capabilities.Extensions = append(kp.LeafNode.Capabilities.Extensions, 0xf000)
				})
				return hsAttack{msg: vtNewMemberProposal(t, f.gg.ms[0].g, o.signer, kp), from: -1}
			}, want: onDecode},
		{name: "Welcome whose GroupInfo has a duplicate extension", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.giExts = hsLeafDup
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: onDecode},
	}
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
				gg.add(0, w)
				gtPropose(t, gg, 1, vtGCE(Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []ExtensionType{ExtensionTypeLastResort}})}))
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
				gg.commit(1, CommitOptions{Extensions: Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []ExtensionType{ExtensionTypeLastResort}})}})
				w := gtNewMember(t, gg.s, "weak")
				w.newKeyPackage(t, KeyPackageOptions{Capabilities: &tree.Capabilities{}})
				gtPropose(t, gg, 2, hsAdd(w.kp))
				gtPropose(t, gg, 1, vtGCE(Extensions{}))
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
				x := gtNewMember(t, f.gg.s, "joiner")
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
				_, kp1 := hsOutsiderKP(t, f.gg.s, func(*KeyPackage) {})
				_, kp2 := hsOutsiderKP(t, f.gg.s, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = kp1.LeafNode.EncryptionKey })
				return hsAttack{msg: gtForgeCommit(t, f.gg.ms[1].g, byValue(hsAdd(kp1)), byValue(hsAdd(kp2))), from: 1}
			}, want: []error{ErrInvalidProposal, tree.ErrDuplicateKey}},
		{name: "Add whose leaf reuses a parent node's key", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				_, kp := hsOutsiderKP(t, f.gg.s, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = g1.tree.EncryptionKey(1) })
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
				p := &Proposal{ProposalType: ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: PreSharedKeyID{Type: schedule.PSKTypeExternal,
					PSKID: []byte("psk"), Nonce: []byte{1, 2, 3, 4, 5}}}}
				return hsAttack{msg: gtForgeProposal(t, g1, p), from: 1, localOn: g1, local: func() error { _, _, err := g1.Propose(p); return err }}
			}, want: []error{ErrInvalidProposal}},
		{name: "external proposal naming an external sender the group does not have", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o := gtNewMember(t, f.gg.s, "outsider")
				return hsAttack{msg: vtOutsiderProposal(t, f.gg.ms[0].g, o.signer, Sender{SenderType: SenderTypeExternal, SenderIndex: 5},
					hsRemove(1)), from: -1}
			}, want: []error{ErrUnknownSender}},
		{name: "Update from the group's external sender", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				es := gtExternalSender(t, f.gg)
				upd, _ := gtUpdateLeaf(t, f.gg.ms[1].g, func(*tree.LeafNode) {})
				return hsAttack{msg: gtExternalProposal(t, f.gg.ms[0].g, es, 0, upd), from: -1}
			}, want: []error{ErrInvalidProposal}},
		{name: "external commit whose kem_output is not the suite's", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				x := gtNewMember(t, f.gg.s, "joiner")
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
				return hsAttack{join: hsWelcomeTo(t, vtWelcomeOf(f.gg), f.gg.cfg)}
			}},
		{name: "Welcome whose tree has a leaf living beyond the maximum lifetime", item: "5",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				return hsAttack{join: hsWelcomeTo(t, longLife(t, f), maxCfg)}
			}, want: []error{ErrInvalidWelcome, ErrInvalidLeafNode, ErrExpired}},
		{name: "GroupInfo whose tree has a leaf living beyond the maximum lifetime", item: "5",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				_, _, gi := vtForgeWelcome(t, longLife(t, f), nil)
				return hsAttack{join: hsJoinExternal(t, f.flat.s, gi, maxCfg)}
			}, want: []error{ErrInvalidGroupInfo, ErrInvalidLeafNode, ErrExpired}},
		{name: "branch Welcome adding a client that was not in the old group", item: "10",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				gg := f.gg
				p := successorParams{usage: schedule.UsageBranch, suite: gg.s, pskEpoch: gg.ms[0].g.Epoch()}
				return hsAttack{join: hsSuccessorJoin(t, gg, p, gtNewMember(t, gg.s, "mallory").kp)}
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
				w.ctx.Extensions = Extensions{{ExtensionType: 0xf0f0, ExtensionData: []byte{}}}
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, ErrUnsupportedCapability}},
		{name: "Welcome whose GroupInfo signer is a blank leaf", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.leaf = 7
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: []error{ErrInvalidGroupInfo}},
		{name: "Welcome without a ratchet tree, none sent out of band", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.oobTree = true
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome}},
		{name: "Welcome whose path_secret does not lead to the tree's keys", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.pathSecret = bytes.Repeat([]byte{9}, f.gg.s.HashSize())
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, tree.ErrPublicKeyMismatch}},
		{name: "Welcome whose GroupInfo signature is not its signer's", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.signer = gtSigner(t, f.gg.s)
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
			}, want: []error{ErrInvalidGroupInfo, ErrInvalidSignature}},
		{name: "Welcome whose confirmation tag is wrong", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.gi = func(gi *GroupInfo) { gi.ConfirmationTag[0] ^= 1 }
				return hsAttack{join: hsWelcomeTo(t, w, f.gg.cfg)}
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
				return hsAttack{join: hsJoinExternal(t, f.flat.s, gi, f.flat.cfg)}
			}, want: []error{ErrInvalidGroupInfo, tree.ErrTreeHashMismatch}},
	}
}
