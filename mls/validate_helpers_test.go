package mls

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Helpers for the input validation tests (validate_*_test.go): forgers
// that build, with the package's own pieces, messages that are valid in
// every respect a receiver checks except the one a test changes. Names
// start with vt.

// vtExpect asserts err wraps every sentinel of want.
func vtExpect(t testing.TB, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("error %q does not wrap %q", err, w)
		}
	}
}

// vtRejectAll hands bad to every member of gg but sender (-1: none) and
// asserts each refuses it with want, its state unchanged.
func vtRejectAll(t testing.TB, gg *gtGroup, sender int, bad *Message, want ...error) {
	t.Helper()
	b := gtWire(t, bad)
	for i, m := range gg.ms {
		if i == sender {
			continue
		}
		snap := gtSnapshot(m.g)
		_, err := m.g.ProcessBytes(b)
		vtExpect(t, err, want...)
		if !snap.equal(gtSnapshot(m.g)) {
			t.Fatalf("%s: state changed by a rejected message", m.name)
		}
	}
}

// vtAcceptAll hands msg to every member but sender and asserts each
// accepts it, without adopting the result (a control for a forger).
func vtAcceptAll(t testing.TB, gg *gtGroup, sender int, msg *Message) {
	t.Helper()
	b := gtWire(t, msg)
	for i, m := range gg.ms {
		if i == sender {
			continue
		}
		if _, err := m.g.ProcessBytes(b); err != nil {
			t.Fatalf("%s refuses the unmodified forgery: %v", m.name, err)
		}
	}
}

// vtStillWorks: a member commits (pending proposals included), everyone
// processes it, and everyone talks.
func vtStillWorks(t testing.TB, gg *gtGroup) {
	t.Helper()
	gg.commit(len(gg.ms)-1, CommitOptions{})
	gg.check()
	gg.appAll("after the rejections")
}

// vtBadHPKEKeys are HPKE public keys suite s must refuse: the lengths of
// the issue (3 and 4 bytes), empty, all zeros of the right length (the
// small-order point 0 for X25519/X448, not a point for the NIST curves),
// and vtSuiteBadKey.
func vtBadHPKEKeys(t testing.TB, s *suite.Suite) map[string][]byte {
	t.Helper()
	_, pub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"empty":    {},
		"3 bytes":  {1, 2, 3},
		"4 bytes":  {1, 2, 3, 4},
		"all zero": make([]byte, len(pub)),
	}
	bad[vtSuiteBadKeyName] = vtSuiteBadKey(t, s)
	return bad
}

const vtSuiteBadKeyName = "small order or off the curve"

// vtSlowSuite: P-384 and P-521 have no assembly in the standard library
// and are slow under the race detector; their tables of bad inputs are
// cut to the entries specific to the suite (package suite's tests cover
// the rest for every suite).
func vtSlowSuite(id suite.ID) bool { return id == 5 || id == 7 }

// vtSuiteBadKey is a key of the right length for s's KEM that only a
// check of the curve refuses: an X25519 u-coordinate of order 8, the X448
// p-1 (order 2), a NIST point off the curve.
func vtSuiteBadKey(t testing.TB, s *suite.Suite) []byte {
	t.Helper()
	_, pub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	switch len(pub) {
	case 32:
		return vtHex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
	case 56:
		k := bytes.Repeat([]byte{0xff}, 56)
		k[0], k[28] = 0xfe, 0xfe
		return k
	}
	k := bytes.Clone(pub)
	k[len(k)-1] ^= 1
	return k
}

func vtHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vtSortedNames returns the keys of m in order, for deterministic subtests.
func vtSortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// vtResignKP re-signs kp's leaf (key_package source) and kp itself.
func vtResignKP(t testing.TB, s *suite.Suite, signer *suite.Signer, kp *KeyPackage) {
	t.Helper()
	if err := kp.LeafNode.Sign(s, signer, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := SignKeyPackage(signer, kp); err != nil {
		t.Fatal(err)
	}
}

// vtKeyPackage returns a copy of m's KeyPackage changed by mutate and
// re-signed, so that only what mutate changed is wrong.
func vtKeyPackage(t testing.TB, m *gtMember, mutate func(kp *KeyPackage)) *KeyPackage {
	t.Helper()
	var kp KeyPackage
	if err := wire.Unmarshal(gtWireOf(t, m.kp), &kp); err != nil {
		t.Fatal(err)
	}
	mutate(&kp)
	vtResignKP(t, m.s, m.signer, &kp)
	return &kp
}

func gtWireOf(t testing.TB, v wire.Marshaler) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vtNewMemberProposal is the new_member_proposal of RFC 9420 §12.1.8: an
// outsider asks to be added with kp, signed with its own key.
func vtNewMemberProposal(t testing.TB, g *Group, signer *suite.Signer, kp *KeyPackage) *Message {
	t.Helper()
	return vtOutsiderProposal(t, g, signer, Sender{SenderType: SenderTypeNewMemberProposal},
		&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *kp}})
}

// vtOutsiderProposal is proposal p from a sender outside the group
// (external or new_member_proposal), a PublicMessage signed by signer.
func vtOutsiderProposal(t testing.TB, g *Group, signer *suite.Signer, sender Sender, p *Proposal) *Message {
	t.Helper()
	fc := &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: sender, ContentType: ContentTypeProposal, Proposal: p}
	ac, err := SignContent(signer, WireFormatPublicMessage, fc, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ProtectPublic(g.Suite(), ac, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := NewMessage(pm)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// vtProposal is a proposal of member g, signed and protected as g sends
// handshakes.
func vtProposal(t testing.TB, g *Group, p *Proposal) *Message {
	t.Helper()
	return gtForge(t, g, &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: MemberSender(g.OwnLeafIndex()),
		ContentType: ContentTypeProposal, Proposal: p}, nil)
}

// vtUpdateLeaf returns g's own leaf as the leaf of an Update proposal,
// changed by mutate and signed for the group and leaf.
func vtUpdateLeaf(t testing.TB, g *Group, mutate func(ln *tree.LeafNode)) *tree.LeafNode {
	t.Helper()
	ln := *g.tree.Leaf(g.myLeaf)
	_, ln.EncryptionKey, _ = g.suite.GenerateHPKEKeyPair()
	ln.LeafNodeSource = tree.LeafNodeSourceUpdate
	ln.Lifetime = tree.Lifetime{}
	ln.ParentHash = nil
	mutate(&ln)
	if err := ln.Sign(g.suite, g.signer, g.ctx.GroupID, g.myLeaf); err != nil {
		t.Fatal(err)
	}
	return &ln
}

// vtCommit describes a commit for vtForgeCommit.
type vtCommit struct {
	// props go by value. Adds and GroupContextExtensions are applied
	// to the tree and context; other types are not supported.
	props []*Proposal
	// path adds an UpdatePath.
	path bool
	// leaf changes the committer's new leaf before it is signed.
	leaf func(ln *tree.LeafNode)
	// node, when set, replaces the encryption key of the lowest node of
	// the path by node(key), its parent hash carried into the leaf and the
	// leaf re-signed.
	node func(key []byte) []byte
}

// vtForgeCommit builds a commit of member g as RFC 9420 §12.4.1 does,
// with the package's pieces and without the sender's validation, so that
// it is valid in every other respect (signature, parent hashes, tree hash,
// path secrets, confirmation tag). A test first checks that the receivers
// accept the unmodified forgery.
func vtForgeCommit(t testing.TB, g *Group, c vtCommit) *Message {
	t.Helper()
	s, me := g.suite, g.myLeaf
	nt := g.tree.Clone()
	newCtx := g.Context()
	newCtx.Epoch++
	var pors []ProposalOrRef
	var added []tree.LeafIndex
	for _, p := range c.props {
		pors = append(pors, byValue(p))
		switch p.ProposalType {
		case tree.ProposalTypeAdd:
			ln := p.Add.KeyPackage.LeafNode
			i, err := nt.AddLeaf(&ln)
			if err != nil {
				t.Fatal(err)
			}
			added = append(added, i)
		case tree.ProposalTypeGroupContextExtensions:
			newCtx.Extensions = p.GroupContextExtensions.Extensions
		default:
			t.Fatalf("vtForgeCommit: %v not supported", p.ProposalType)
		}
	}
	commit := &Commit{Proposals: pors}
	var commitSecret []byte
	if c.path {
		cp, err := nt.NewCommitPath(s, rand.Reader, me, g.tree.Leaf(me), func(ln *tree.LeafNode) error {
			if c.leaf != nil {
				c.leaf(ln)
			}
			return ln.Sign(s, g.signer, g.ctx.GroupID, me)
		})
		if err != nil {
			t.Fatal(err)
		}
		nt = cp.Tree
		var nodeKey []byte
		if c.node != nil {
			x := cp.FilteredDirectPath()[0]
			nodeKey = c.node(nt.EncryptionKey(x))
			nt = vtReplacePathKey(t, g, nt, x, nodeKey)
		}
		newCtx.TreeHash = nt.TreeHash(s)
		provisional, err := wire.Marshal(&newCtx)
		if err != nil {
			t.Fatal(err)
		}
		if commit.Path, err = cp.Encrypt(s, provisional, added); err != nil {
			t.Fatal(err)
		}
		if c.node != nil {
			commit.Path.Nodes[0].EncryptionKey = nodeKey
			commit.Path.LeafNode = *nt.Leaf(me)
		}
		commitSecret = cp.CommitSecret
	}
	newCtx.TreeHash = nt.TreeHash(s)
	fc := &FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: MemberSender(me),
		ContentType: ContentTypeCommit, Commit: commit}
	ac, err := SignContent(g.signer, g.handshakeWireFormat(), fc, &g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newCtx.ConfirmedTranscriptHash, err = NextConfirmedTranscriptHash(s, g.interim, ac); err != nil {
		t.Fatal(err)
	}
	ctxBytes, err := wire.Marshal(&newCtx)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := schedule.NewEpoch(s, g.secrets.InitSecret, commitSecret, nil, ctxBytes)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = s.MAC(ep.ConfirmationKey, newCtx.ConfirmedTranscriptHash)
	msg, err := g.protectSigned(ac)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// vtParentHash is ParentHash(P) of RFC 9420 §7.9, computed here from the
// encoding so that the tests do not lean on the tree's own code.
func vtParentHash(s *suite.Suite, key, parentHash, siblingHash []byte) []byte {
	var b wire.Builder
	b.AddOpaque(key)
	b.AddOpaque(parentHash)
	b.AddOpaque(siblingHash)
	enc, _ := b.Bytes()
	return s.Hash(enc)
}

// vtReplacePathKey returns t with the key of parent x (the lowest node of
// g's new path, whose unmerged leaves are empty) set to key, and g's leaf
// (the child on that path) given the matching parent_hash and re-signed.
func vtReplacePathKey(t testing.TB, g *Group, nt *tree.Tree, x tree.NodeIndex, key []byte) *tree.Tree {
	t.Helper()
	s, me := g.suite, g.myLeaf
	n := nt.NumLeaves()
	l, _ := tree.Left(x, n)
	r, _ := tree.Right(x, n)
	sib := r
	if !tree.IsInSubtree(me.Node(), l) {
		sib = l
	}
	nodes := slices.Clone(nt.Nodes())
	p := *nodes[x].Parent
	p.EncryptionKey = key
	nodes[x] = &tree.Node{Parent: &p}
	ln := *nodes[me.Node()].Leaf
	ln.ParentHash = vtParentHash(s, key, p.ParentHash, nt.NodeTreeHash(s, sib))
	if err := ln.Sign(s, g.signer, g.ctx.GroupID, me); err != nil {
		t.Fatal(err)
	}
	nodes[me.Node()] = &tree.Node{Leaf: &ln}
	out, err := tree.New(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// vtWelcome is a group as a (possibly malicious) member describes it to a
// joiner, for vtForgeWelcome.
type vtWelcome struct {
	s       *suite.Suite
	ctx     GroupContext // tree hash filled in
	nodes   tree.RatchetTreeNodes
	signer  *suite.Signer   // the GroupInfo signer
	leaf    tree.LeafIndex  // its leaf
	giExts  tree.Extensions // GroupInfo extensions; external_pub and ratchet_tree are added unless given
	oobTree bool            // the tree travels out of band
	// gi, when set, changes the GroupInfo before it is signed.
	gi func(gi *GroupInfo)
	// pathSecret, when set, is sent to the joiner as its path_secret.
	pathSecret []byte
}

// vtForgeWelcome adds joiner's KeyPackage leaf to w's tree and builds a
// Welcome to it, consistent in everything a joiner checks (tree hash,
// GroupInfo signature, confirmation tag from a joiner secret of the
// forger's choice, which joiners cannot tell from a real one). It returns
// the Welcome, the tree (for out-of-band delivery) and the GroupInfo with
// external_pub, for external joins.
func vtForgeWelcome(t testing.TB, w vtWelcome, joiner *gtMember) (*Welcome, tree.RatchetTreeNodes, *GroupInfo) {
	t.Helper()
	s := w.s
	tr, err := tree.New(w.nodes)
	if err != nil {
		t.Fatal(err)
	}
	if joiner != nil {
		ln := joiner.kp.LeafNode
		if _, err := tr.AddLeaf(&ln); err != nil {
			t.Fatal(err)
		}
	}
	gc := w.ctx
	gc.TreeHash = tr.TreeHash(s)
	ctxBytes, err := wire.Marshal(&gc)
	if err != nil {
		t.Fatal(err)
	}
	joinerSecret := make([]byte, s.HashSize())
	if _, err := io.ReadFull(rand.Reader, joinerSecret); err != nil {
		t.Fatal(err)
	}
	psk, err := schedule.PSKSecret(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := schedule.Derive(s, joinerSecret, psk, ctxBytes)
	if err != nil {
		t.Fatal(err)
	}
	welcomeSecret, err := schedule.WelcomeSecret(s, joinerSecret, psk)
	if err != nil {
		t.Fatal(err)
	}
	_, extPub, err := ep.ExternalKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	exts := slices.Clone(w.giExts)
	if !exts.Has(tree.ExtensionTypeExternalPub) {
		exts = append(exts, tree.Extension{ExtensionType: tree.ExtensionTypeExternalPub, ExtensionData: gtWireOf(t, &tree.ExternalPub{ExternalPub: extPub})})
	}
	if !w.oobTree && !exts.Has(tree.ExtensionTypeRatchetTree) {
		exts = append(exts, tree.Extension{ExtensionType: tree.ExtensionTypeRatchetTree, ExtensionData: gtWireOf(t, tr.Nodes())})
	}
	gi := &GroupInfo{GroupContext: gc, Extensions: exts, ConfirmationTag: s.MAC(ep.ConfirmationKey, gc.ConfirmedTranscriptHash), Signer: w.leaf}
	if w.gi != nil {
		w.gi(gi)
	}
	if err := SignGroupInfo(w.signer, gi); err != nil {
		t.Fatal(err)
	}
	var wel *Welcome
	if joiner != nil {
		if wel, err = newWelcome(s, gi, welcomeSecret, joinerSecret, nil, []welcomeRecipient{{KeyPackage: joiner.kp, PathSecret: w.pathSecret}}); err != nil {
			t.Fatal(err)
		}
		// The joiner reads it from the wire.
		wel = vtRoundTrip(t, wel, new(Welcome))
	}
	return wel, tr.Nodes(), gi
}

func vtRoundTrip[T wire.Unmarshaler](t testing.TB, v wire.Marshaler, out T) T {
	t.Helper()
	if err := wire.Unmarshal(gtWireOf(t, v), out); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	return out
}

// vtJoin has joiner process w (with the tree out of band when rt is not
// nil) under cfg.
func vtJoin(t testing.TB, joiner *gtMember, w *Welcome, rt tree.RatchetTreeNodes, cfg Config) (*Joined, error) {
	t.Helper()
	return JoinFromWelcome(w, rt, joiner.finder(t), cfg)
}

// vtSmallGroup is a group of n members added without a path, so that its
// tree has no parent nodes and a forger may change any leaf (re-signing
// it) without parent hashes to keep.
func vtSmallGroup(t testing.TB, id suite.ID, cfg Config, n int) *gtGroup {
	t.Helper()
	gg := gtCreate(t, id, cfg, 1)
	gg.commit(0, CommitOptions{NoPath: true}, gg.newMembers(n-1)...)
	return gg
}

// vtWelcomeOf describes gg's current epoch as member 0 would to a joiner.
func vtWelcomeOf(gg *gtGroup) vtWelcome {
	g := gg.ms[0].g
	return vtWelcome{s: gg.s, ctx: g.Context(), nodes: slices.Clone(g.RatchetTree()), signer: gg.ms[0].signer, leaf: g.OwnLeafIndex()}
}

// vtResignLeafAt replaces the key_package leaf of member m in nodes by a
// copy changed by mutate and re-signed (such leaves sign no group id).
func vtResignLeafAt(t testing.TB, nodes tree.RatchetTreeNodes, m *gtMember, mutate func(ln *tree.LeafNode)) {
	t.Helper()
	x := m.g.OwnLeafIndex().Node()
	ln := *nodes[x].Leaf
	if ln.LeafNodeSource != tree.LeafNodeSourceKeyPackage {
		t.Fatalf("leaf %d has source %v", x/2, ln.LeafNodeSource)
	}
	mutate(&ln)
	if err := ln.Sign(m.s, m.signer, nil, 0); err != nil {
		t.Fatal(err)
	}
	nodes[x] = &tree.Node{Leaf: &ln}
}
