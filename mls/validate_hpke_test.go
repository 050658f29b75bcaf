package mls

import (
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// TestRefuseInvalidHPKEKeys (RFC 9420 §5.1.1, §7.3, §10.1): an HPKE public
// key that is not a key of the suite — too short, empty, all zeros, of
// small order, off the curve — is refused wherever it arrives from a
// member or an outsider: a new_member_proposal's KeyPackage (init_key, leaf
// encryption_key), an Add committed by value, an Update proposal, a commit
// path's leaf and path nodes. Every member refuses, state unchanged; the
// sender refuses to send it; afterwards the group still works. Every suite.
//
// On the old code these were accepted (or, for a path node, refused only by
// the members that derive it), and the first broke every later default
// commit: "crypto/ecdh: low order point".
func TestRefuseInvalidHPKEKeys(t *testing.T) {
	type place struct {
		name string
		// all: every bad key, not only the suite's small-order or
		// off-curve one (the places share one check; these two reach it by
		// different code).
		all bool
		run func(t *testing.T, gg *gtGroup, outsider *gtMember, k []byte)
	}
	add := func(t *testing.T, gg *gtGroup, outsider *gtMember, kp *KeyPackage) {
		vtRejectAll(t, gg, -1, vtNewMemberProposal(t, gg.ms[0].g, outsider.signer, kp),
			ErrInvalidProposal, ErrInvalidKeyPackage, suite.ErrInvalidKey)
		g1 := gg.ms[1].g
		p := &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *kp}}
		vtRejectAll(t, gg, 1, vtForgeCommit(t, g1, vtCommit{props: []*Proposal{p}}),
			ErrInvalidProposal, ErrInvalidKeyPackage, suite.ErrInvalidKey)
		_, err := g1.Commit(CommitOptions{Add: []*KeyPackage{kp}})
		vtExpect(t, err, ErrInvalidKeyPackage, suite.ErrInvalidKey)
		_, _, err = g1.Propose(p)
		vtExpect(t, err, ErrInvalidKeyPackage, suite.ErrInvalidKey)
	}
	places := []place{
		{"key package init_key", true, func(t *testing.T, gg *gtGroup, outsider *gtMember, k []byte) {
			add(t, gg, outsider, vtKeyPackage(t, outsider, func(kp *KeyPackage) { kp.InitKey = k }))
		}},
		{"key package leaf", false, func(t *testing.T, gg *gtGroup, outsider *gtMember, k []byte) {
			add(t, gg, outsider, vtKeyPackage(t, outsider, func(kp *KeyPackage) { kp.LeafNode.EncryptionKey = k }))
		}},
		{"update leaf", false, func(t *testing.T, gg *gtGroup, _ *gtMember, k []byte) {
			g1 := gg.ms[1].g
			upd := &Proposal{ProposalType: tree.ProposalTypeUpdate, Update: &Update{
				LeafNode: *vtUpdateLeaf(t, g1, func(ln *tree.LeafNode) { ln.EncryptionKey = k })}}
			vtRejectAll(t, gg, 1, vtProposal(t, g1, upd), ErrInvalidProposal, ErrInvalidLeafNode, suite.ErrInvalidKey)
			_, _, err := g1.Propose(upd)
			vtExpect(t, err, ErrInvalidLeafNode, suite.ErrInvalidKey)
		}},
		{"commit path leaf", false, func(t *testing.T, gg *gtGroup, _ *gtMember, k []byte) {
			vtRejectAll(t, gg, 1, vtForgeCommit(t, gg.ms[1].g, vtCommit{path: true, leaf: func(ln *tree.LeafNode) { ln.EncryptionKey = k }}),
				ErrInvalidCommit, ErrInvalidLeafNode, suite.ErrInvalidKey)
		}},
		{"commit path node", true, func(t *testing.T, gg *gtGroup, _ *gtMember, k []byte) {
			vtRejectAll(t, gg, 1, vtForgeCommit(t, gg.ms[1].g, vtCommit{path: true, node: func([]byte) []byte { return k }}),
				ErrInvalidCommit, tree.ErrInvalidUpdatePath, suite.ErrInvalidKey)
		}},
	}
	for _, id := range suite.All() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			s := gg.s
			// Controls: the forgers' unmodified output is accepted.
			// (The path-node forgery exercises the plain one too.)
			vtAcceptAll(t, gg, 1, vtForgeCommit(t, gg.ms[1].g, vtCommit{path: true, node: func(k []byte) []byte { return k }}))
			outsider := gtNewMember(t, s, "outsider")
			vtAcceptAll(t, gg, -1, vtNewMemberProposal(t, gg.ms[0].g, outsider.signer, vtKeyPackage(t, outsider, func(*KeyPackage) {})))

			bad := vtBadHPKEKeys(t, s)
			for _, pl := range places {
				for _, name := range vtSortedNames(bad) {
					switch {
					case name == vtSuiteBadKeyName:
					case vtSlowSuite(id):
						continue
					case !pl.all && name != "empty":
						continue
					}
					t.Run(pl.name+"/"+name, func(t *testing.T) { pl.run(t, gg, outsider, bad[name]) })
				}
			}
			vtStillWorks(t, gg)
		})
	}
}

// TestJoinRefusesInvalidTreeKeys (RFC 9420 §12.4.3.1, §12.4.3.2): a joiner
// refuses a ratchet tree with a leaf or parent node key that is not an
// HPKE public key of the suite, and a GroupInfo whose external_pub is not
// one, whether it joins by Welcome or by external commit. The forged
// Welcomes are consistent in everything else (the unmodified forgery
// joins).
func TestJoinRefusesInvalidTreeKeys(t *testing.T) {
	for _, id := range suite.All() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			// A two-member group made with a path: node 1 is a parent.
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 2)
			s, g0 := gg.s, gg.ms[0].g
			joiner := gtNewMember(t, s, "joiner")
			leafKey := func(k []byte) vtWelcome {
				w := vtWelcomeOf(gg)
				vtResignLeafAt(t, w.nodes, gg.ms[1], func(ln *tree.LeafNode) { ln.EncryptionKey = k })
				// Leaf 1 is the sibling under node 1: carry its new hash
				// into leaf 0's parent_hash.
				w.nodes = vtReplacePathKey(t, g0, vtTree(t, w.nodes), 1, g0.tree.EncryptionKey(1)).Nodes()
				return w
			}
			parentKey := func(k []byte) vtWelcome {
				w := vtWelcomeOf(gg)
				w.nodes = vtReplacePathKey(t, g0, g0.tree, 1, k).Nodes()
				return w
			}
			extPub := func(k []byte) vtWelcome {
				w := vtWelcomeOf(gg)
				w.giExts = tree.Extensions{{ExtensionType: tree.ExtensionTypeExternalPub, ExtensionData: gtWireOf(t, &tree.ExternalPub{ExternalPub: k})}}
				return w
			}
			// Controls.
			_, valid, _ := s.GenerateHPKEKeyPair()
			controls := []vtWelcome{parentKey(g0.tree.EncryptionKey(1)), leafKey(joinerFreshKey(t, s)), extPub(valid)}
			if vtSlowSuite(id) {
				controls = controls[:1]
			}
			for _, w := range controls {
				vtJoinBoth(t, w, joiner, gg.cfg)
			}
			// Every bad key in a parent node; the suite's small-order or
			// off-curve one in the other places (the same check).
			bad := vtBadHPKEKeys(t, s)
			for _, name := range vtSortedNames(bad) {
				if vtSlowSuite(id) && name != vtSuiteBadKeyName {
					continue
				}
				t.Run("parent/"+name, func(t *testing.T) {
					vtJoinBoth(t, parentKey(bad[name]), joiner, gg.cfg, suite.ErrInvalidKey)
				})
			}
			k := vtSuiteBadKey(t, s)
			vtJoinBoth(t, leafKey(k), joiner, gg.cfg, suite.ErrInvalidKey)
			vtJoinBoth(t, extPub(k), joiner, gg.cfg, ErrInvalidExtension, suite.ErrInvalidKey)
		})
	}
}

func joinerFreshKey(t testing.TB, s *suite.Suite) []byte {
	t.Helper()
	_, pub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func vtTree(t testing.TB, nodes tree.RatchetTreeNodes) *tree.Tree {
	t.Helper()
	tr, err := tree.New(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// vtJoinBoth has joiner join the group w describes by Welcome and by
// external commit, with the tree in the GroupInfo and out of band. Without
// want every join must succeed; with it, every join must be refused with
// an error wrapping ErrInvalidWelcome (ErrInvalidGroupInfo for the
// external commit) and want.
func vtJoinBoth(t testing.TB, w vtWelcome, joiner *gtMember, cfg Config, want ...error) {
	t.Helper()
	check := func(what string, err error, sentinel error) {
		t.Helper()
		if len(want) == 0 {
			if err != nil {
				t.Fatalf("%s (tree out of band %v): %v", what, w.oobTree, err)
			}
			return
		}
		vtExpect(t, err, append([]error{sentinel}, want...)...)
	}
	for _, oob := range []bool{false, true} {
		w.oobTree = oob
		wel, rt, _ := vtForgeWelcome(t, w, joiner)
		if !oob {
			rt = nil
		}
		_, err := vtJoin(t, joiner, wel, rt, cfg)
		check("join", err, ErrInvalidWelcome)
		// The external joiner: a fresh client with the same signer.
		_, rt, gi := vtForgeWelcome(t, w, nil)
		if !oob {
			rt = nil
		}
		_, _, err = JoinByExternalCommit(w.s, joiner.signer, gi, rt, LeafOptions{Credential: joiner.cred}, cfg)
		check("external join", err, ErrInvalidGroupInfo)
	}
}
