package mls

import (
	"fmt"
	"testing"

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
		})
	}
}

func hsAdd(kp *KeyPackage) *Proposal {
	return &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *kp}}
}

func hsRemove(l tree.LeafIndex) *Proposal {
	return &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: l}}
}

func hsUpdateKey(t *testing.T, g *Group, key []byte) *Proposal {
	return &Proposal{ProposalType: tree.ProposalTypeUpdate, Update: &Update{
		LeafNode: *vtUpdateLeaf(t, g, func(ln *tree.LeafNode) { ln.EncryptionKey = key })}}
}

// outsiderKP is outsider i and a copy of its KeyPackage changed by mutate
// (and re-signed).
func (f *hsFixture) outsiderKP(t *testing.T, i int, mutate func(kp *KeyPackage)) (*gtMember, *KeyPackage) {
	o := f.pool[i]
	return o, vtKeyPackage(t, o, mutate)
}

var hsLeafDup = tree.Extensions{{ExtensionType: 0xf000}, {ExtensionType: 0xf000}}

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
				o, kp := f.outsiderKP(t, 0, func(kp *KeyPackage) { kp.InitKey = vtSuiteBadKey(t, f.gg.s) })
				return hsAttack{msg: vtNewMemberProposal(t, f.gg.ms[0].g, o.signer, kp), from: -1}
			}, want: append([]error{ErrInvalidProposal, ErrInvalidKeyPackage}, keyWant...)},
		{name: "KeyPackage init_key of 3 bytes, Add committed by value", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				_, kp := f.outsiderKP(t, 0, func(kp *KeyPackage) { kp.InitKey = []byte{1, 2, 3} })
				g1 := f.gg.ms[1].g
				return hsAttack{msg: vtForgeCommit(t, g1, vtCommit{props: []*Proposal{hsAdd(kp)}}), from: 1,
					localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Add: []*KeyPackage{kp}}); return err }}
			}, want: append([]error{ErrInvalidKeyPackage}, keyWant...)},
		{name: "KeyPackage leaf encryption_key of 4 bytes, new_member_proposal from an outsider", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o, kp := f.outsiderKP(t, 0, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = []byte{1, 2, 3, 4} })
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
				return hsAttack{join: hsWelcomeTo(t, f, w, f.flat.cfg)}
			}, want: append([]error{ErrInvalidWelcome}, keyWant...)},
		{name: "GroupInfo external_pub of small order or off the curve", item: "1",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.giExts = tree.Extensions{{ExtensionType: tree.ExtensionTypeExternalPub,
					ExtensionData: gtWireOf(t, &tree.ExternalPub{ExternalPub: vtSuiteBadKey(t, f.gg.s)})}}
				_, _, gi := vtForgeWelcome(t, w, nil)
				return hsAttack{join: hsJoinExternal(t, f, gi, f.gg.cfg)}
			}, want: append([]error{ErrInvalidGroupInfo, ErrInvalidExtension}, keyWant...)},
		{name: "Welcome whose tree has two leaves with empty encryption keys", item: "4",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.flat)
				empty := func(ln *tree.LeafNode) { ln.EncryptionKey = []byte{} }
				vtResignLeafAt(t, w.nodes, f.flat.ms[1], empty)
				vtResignLeafAt(t, w.nodes, f.flat.ms[2], empty)
				return hsAttack{join: hsWelcomeTo(t, f, w, f.flat.cfg)}
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
				x := f.pool[1] // another identity
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
				again := &gtMember{signer: f.pool[2].signer, cred: victim.cred} // the victim's identity, a new key
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
	emptyID := func(t *testing.T, s *suite.Suite) tree.Extensions {
		return tree.Extensions{vtExtSenders(t, tree.ExternalSender{SignatureKey: gtSigner(t, s).PublicKey(), Credential: tree.NewBasicCredential(nil)})}
	}
	undecodable := tree.Extensions{{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: []byte{0x05, 1, 2}}}
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
				w.ctx.Extensions = tree.Extensions{vtExtSenders(t, tree.ExternalSender{SignatureKey: gtSigner(t, f.gg.s).PublicKey(),
					Credential: tree.Credential{CredentialType: tree.CredentialTypeX509, Certificates: [][]byte{{1}}}})}
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: []error{ErrInvalidWelcome, ErrInvalidExtension, ErrInvalidCredential}},
		{name: "GroupContextExtensions by value with two required_capabilities", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				rc := vtReqCaps(t, tree.RequiredCapabilities{})
				return hsAttack{msg: vtForgeCommit(t, f.gg.ms[1].g, vtCommit{props: []*Proposal{vtGCE(tree.Extensions{rc, rc})}, path: true}), from: 1}
			}, want: onDecode},
		{name: "GroupContextExtensions by value with an extension no member supports", item: "extra",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				es := tree.Extensions{{ExtensionType: 0xf0f0, ExtensionData: []byte{}}}
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
					ln.Extensions = tree.Extensions{{ExtensionType: 0xf000, ExtensionData: []byte{}}}
				}}), from: 1}
			}, want: []error{ErrInvalidCommit, ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "Commit asked for two required_capabilities", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				g1 := f.gg.ms[1].g
				rc := vtReqCaps(t, tree.RequiredCapabilities{})
				return hsAttack{localOn: g1, local: func() error { _, err := g1.Commit(CommitOptions{Extensions: tree.Extensions{rc, rc}}); return err }}
			}, want: []error{ErrInvalidExtension, tree.ErrDuplicateExtension}},
		{name: "KeyPackage with a duplicate leaf extension, new_member_proposal from an outsider", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				o, kp := f.outsiderKP(t, 0, func(kp *KeyPackage) {
					kp.LeafNode.Extensions = hsLeafDup
					kp.LeafNode.Capabilities.Extensions = append(kp.LeafNode.Capabilities.Extensions, 0xf000)
				})
				return hsAttack{msg: vtNewMemberProposal(t, f.gg.ms[0].g, o.signer, kp), from: -1}
			}, want: onDecode},
		{name: "Welcome whose GroupInfo has a duplicate extension", item: "9",
			run: func(t *testing.T, f *hsFixture) hsAttack {
				w := vtWelcomeOf(f.gg)
				w.giExts = hsLeafDup
				return hsAttack{join: hsWelcomeTo(t, f, w, f.gg.cfg)}
			}, want: onDecode},
	}
}
