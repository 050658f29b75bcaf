package tsmls_test

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// checker decodes everything ts-mls emits with SpacePanda's codecs and
// checks it against our crypto where that needs no ts-mls secret.
type checker struct {
	t  testing.TB
	id suite.ID
	s  *suite.Suite
	// counts of messages checked, by wire format, for the test log.
	seen map[mls.WireFormat]int
}

func newChecker(t testing.TB, id suite.ID) *checker {
	t.Helper()
	s, err := suite.New(id)
	if err != nil {
		t.Fatalf("suite.New(%d): %v", id, err)
	}
	return &checker{t: t, id: id, s: s, seen: map[mls.WireFormat]int{}}
}

// message decodes an MLSMessage with mls.UnmarshalMessage, checks its wire
// format and that wire.Marshal re-encodes it byte for byte.
func (c *checker) message(what string, raw []byte, want mls.WireFormat) *mls.Message {
	c.t.Helper()
	m, err := mls.UnmarshalMessage(raw)
	if err != nil {
		c.t.Fatalf("%s: our decoder rejects ts-mls bytes: %v\n%x", what, err, raw)
	}
	if m.WireFormat != want {
		c.t.Fatalf("%s: wire format %v, want %v", what, m.WireFormat, want)
	}
	again, err := wire.Marshal(m)
	if err != nil {
		c.t.Fatalf("%s: re-encoding: %v", what, err)
	}
	if !bytes.Equal(again, raw) {
		c.t.Fatalf("%s: re-encoding differs from ts-mls bytes\nts-mls: %x\nours:   %x", what, raw, again)
	}
	c.seen[want]++
	return m
}

// keyPackage checks a KeyPackage: codec round trip, suite, our
// MakeKeyPackageRef equal to ts-mls's ref, KeyPackage and LeafNode
// signatures (RFC 9420 §10.1).
func (c *checker) keyPackage(what string, raw, tsRef []byte) []byte {
	c.t.Helper()
	m := c.message(what, raw, mls.WireFormatKeyPackage)
	kp := m.KeyPackage
	if kp.CipherSuite != c.id {
		c.t.Fatalf("%s: cipher suite %v, want %v", what, kp.CipherSuite, c.id)
	}
	enc, err := wire.Marshal(kp)
	if err != nil {
		c.t.Fatalf("%s: encoding KeyPackage: %v", what, err)
	}
	ref := c.s.MakeKeyPackageRef(enc)
	if tsRef != nil && !bytes.Equal(ref, tsRef) {
		c.t.Fatalf("%s: KeyPackageRef: ours %x, ts-mls %x", what, ref, tsRef)
	}
	tbs, err := kp.MarshalTBS()
	if err != nil {
		c.t.Fatalf("%s: KeyPackageTBS: %v", what, err)
	}
	if err := c.s.VerifyWithLabel(kp.LeafNode.SignatureKey, "KeyPackageTBS", tbs, kp.Signature); err != nil {
		c.t.Fatalf("%s: KeyPackage signature does not verify with our suite: %v", what, err)
	}
	if err := kp.LeafNode.Verify(c.s, nil, 0); err != nil {
		c.t.Fatalf("%s: LeafNode signature does not verify with our suite: %v", what, err)
	}
	if kp.LeafNode.LeafNodeSource != tree.LeafNodeSourceKeyPackage {
		c.t.Fatalf("%s: leaf_node_source %v", what, kp.LeafNode.LeafNodeSource)
	}
	return ref
}

// welcome checks a Welcome: codec round trip, suite, and that it has exactly
// one EncryptedGroupSecrets per added key package, whose new_member is our
// KeyPackageRef of that key package (RFC 9420 §12.4.3.1).
func (c *checker) welcome(what string, raw []byte, keyPackages ...[]byte) {
	c.t.Helper()
	m := c.message(what, raw, mls.WireFormatWelcome)
	w := m.Welcome
	if w.CipherSuite != c.id {
		c.t.Fatalf("%s: cipher suite %v, want %v", what, w.CipherSuite, c.id)
	}
	if len(w.Secrets) != len(keyPackages) {
		c.t.Fatalf("%s: %d EncryptedGroupSecrets for %d key packages", what, len(w.Secrets), len(keyPackages))
	}
	for i, raw := range keyPackages {
		kpm, err := mls.UnmarshalMessage(raw)
		if err != nil {
			c.t.Fatalf("%s: key package %d: %v", what, i, err)
		}
		enc, err := wire.Marshal(kpm.KeyPackage)
		if err != nil {
			c.t.Fatalf("%s: key package %d: %v", what, i, err)
		}
		ref := c.s.MakeKeyPackageRef(enc)
		found := 0
		for _, egs := range w.Secrets {
			if bytes.Equal(egs.NewMember, ref) {
				found++
			}
		}
		if found != 1 {
			c.t.Fatalf("%s: our KeyPackageRef %x of key package %d appears %d times in new_member fields", what, ref, i, found)
		}
	}
}

// handshake checks a commit or proposal in the expected framing and returns
// the decoded message.
func (c *checker) handshake(what string, raw []byte, public bool) *mls.Message {
	c.t.Helper()
	if public {
		m := c.message(what, raw, mls.WireFormatPublicMessage)
		if m.PublicMessage.Content.Sender.SenderType != mls.SenderTypeMember {
			c.t.Fatalf("%s: sender type %v", what, m.PublicMessage.Content.Sender.SenderType)
		}
		return m
	}
	return c.message(what, raw, mls.WireFormatPrivateMessage)
}

// groupInfo checks a GroupInfo from the peer: codec round trip, ratchet tree
// in its ratchet_tree extension (round trip, our tree hash equal to the
// GroupContext's, full tree validation of RFC 9420 §12.4.3.1), and the
// GroupInfo signature with the signer's key from that tree.
func (c *checker) groupInfo(what string, raw []byte) (*mls.GroupInfo, *tree.Tree) {
	c.t.Helper()
	m := c.message(what, raw, mls.WireFormatGroupInfo)
	gi := m.GroupInfo
	if gi.GroupContext.CipherSuite != c.id {
		c.t.Fatalf("%s: cipher suite %v, want %v", what, gi.GroupContext.CipherSuite, c.id)
	}
	var treeData []byte
	for _, e := range gi.Extensions {
		if e.ExtensionType == tree.ExtensionTypeRatchetTree {
			treeData = e.ExtensionData
		}
	}
	if treeData == nil {
		c.t.Fatalf("%s: no ratchet_tree extension", what)
	}
	tr := c.ratchetTree(what+" ratchet_tree", treeData, gi.GroupContext.GroupID, gi.GroupContext.TreeHash)
	signer := tr.Leaf(gi.Signer)
	if signer == nil {
		c.t.Fatalf("%s: signer leaf %d is blank", what, gi.Signer)
	}
	tbs, err := gi.MarshalTBS()
	if err != nil {
		c.t.Fatalf("%s: GroupInfoTBS: %v", what, err)
	}
	if err := c.s.VerifyWithLabel(signer.SignatureKey, "GroupInfoTBS", tbs, gi.Signature); err != nil {
		c.t.Fatalf("%s: GroupInfo signature does not verify with our suite: %v", what, err)
	}
	return gi, tr
}

// ratchetTree checks ratchet_tree extension data: codec round trip, and, when
// treeHash is non-nil, that our engine validates the tree against it.
func (c *checker) ratchetTree(what string, raw, groupID, treeHash []byte) *tree.Tree {
	c.t.Helper()
	var nodes tree.RatchetTreeNodes
	if err := wire.Unmarshal(raw, &nodes); err != nil {
		c.t.Fatalf("%s: our decoder rejects ts-mls ratchet tree: %v\n%x", what, err, raw)
	}
	again, err := wire.Marshal(nodes)
	if err != nil {
		c.t.Fatalf("%s: re-encoding: %v", what, err)
	}
	if !bytes.Equal(again, raw) {
		c.t.Fatalf("%s: re-encoding differs\nts-mls: %x\nours:   %x", what, raw, again)
	}
	tr, err := tree.New(nodes)
	if err != nil {
		c.t.Fatalf("%s: NewTree: %v", what, err)
	}
	if treeHash != nil {
		if got := tr.TreeHash(c.s); !bytes.Equal(got, treeHash) {
			c.t.Fatalf("%s: our tree hash %x, ts-mls GroupContext tree_hash %x", what, got, treeHash)
		}
		if err := tr.Validate(c.s, groupID, treeHash); err != nil {
			c.t.Fatalf("%s: our tree validation rejects ts-mls tree: %v", what, err)
		}
	}
	return tr
}

// transcript checks, for a PublicMessage commit, that our transcript hashes
// (RFC 9420 §8.2) carry before's confirmed hash to after's, and that the
// commit's signature verifies under before's GroupContext with the sender's
// key from before's tree.
func (c *checker) transcript(what string, commit *mls.Message, before *mls.GroupInfo, beforeTree *tree.Tree, after *mls.GroupInfo) {
	c.t.Helper()
	ac := commit.PublicMessage.AuthenticatedContent()
	interim, err := mls.NextInterimTranscriptHash(c.s, before.GroupContext.ConfirmedTranscriptHash, before.ConfirmationTag)
	if err != nil {
		c.t.Fatalf("%s: interim transcript hash: %v", what, err)
	}
	confirmed, err := mls.NextConfirmedTranscriptHash(c.s, interim, ac)
	if err != nil {
		c.t.Fatalf("%s: confirmed transcript hash: %v", what, err)
	}
	if !bytes.Equal(confirmed, after.GroupContext.ConfirmedTranscriptHash) {
		c.t.Fatalf("%s: our confirmed transcript hash %x, ts-mls %x", what, confirmed, after.GroupContext.ConfirmedTranscriptHash)
	}
	if !bytes.Equal(ac.Auth.ConfirmationTag, after.ConfirmationTag) {
		c.t.Fatalf("%s: commit confirmation_tag %x differs from next GroupInfo's %x", what, ac.Auth.ConfirmationTag, after.ConfirmationTag)
	}
	leaf, ok := mls.SenderLeaf(ac)
	if !ok {
		c.t.Fatalf("%s: not a member sender", what)
	}
	ln := beforeTree.Leaf(leaf)
	if ln == nil {
		c.t.Fatalf("%s: sender leaf %d blank", what, leaf)
	}
	if err := mls.VerifySignature(c.s, ln.SignatureKey, ac, &before.GroupContext); err != nil {
		c.t.Fatalf("%s: commit signature does not verify with our code: %v", what, err)
	}
}
