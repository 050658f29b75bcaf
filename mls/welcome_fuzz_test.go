package mls

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// FuzzJoinWelcome mutates real Welcomes of a 3-member group and the
// ratchet tree sent with them out of band, and has the invited client join
// (RFC 9420 §12.4.3.1). Joining must never panic, and a join that succeeds
// must be the genuine one: the GroupInfo is sealed with the welcome secret
// and the joiner secret is sealed to the joiner, so any accepted input puts
// the joiner in the same epoch (epoch authenticator, tree hash, own leaf)
// as the unmodified Welcome does.
func FuzzJoinWelcome(f *testing.F) {
	gg := gtCreate(f, 1, Config{RatchetTreeInWelcome: true}, 3)
	j := gtNewMember(f, gg.s, "joiner")
	find := j.finder(f)

	genuine := map[string]bool{} // epoch authenticators of the genuine joins
	seed := func(cfg Config, o CommitOptions) {
		g := gtDeepCopy(f, gg.ms[1].g)
		g.cfg = cfg
		o.Add = append(o.Add, j.kp)
		res, err := g.Commit(o)
		if err != nil {
			f.Fatal(err)
		}
		var rt []byte
		if !cfg.RatchetTreeInWelcome {
			rt = gtWireOf(f, res.RatchetTree)
		}
		wb := gtWireOf(f, res.Welcome)
		f.Add(wb, rt)
		jd, err := JoinFromWelcome(res.Welcome, res.RatchetTree, find, Config{})
		if err != nil {
			f.Fatal(err)
		}
		genuine[string(jd.Group.EpochAuthenticator())] = true
	}
	// Shapes for the mutator: tree in the GroupInfo or out of band, with
	// and without a path secret, GroupInfo extensions.
	seed(Config{}, CommitOptions{NoPath: true})
	seed(Config{RatchetTreeInWelcome: true}, CommitOptions{})
	seed(Config{}, CommitOptions{Remove: []tree.LeafIndex{2}})
	seed(Config{RatchetTreeInWelcome: true}, CommitOptions{Extensions: Extensions{}, GroupInfoExtensions: Extensions{{ExtensionType: 0xf0f0, ExtensionData: []byte{1}}}})

	f.Fuzz(func(t *testing.T, wb, rtb []byte) {
		var w Welcome
		if err := wire.Unmarshal(wb, &w); err != nil {
			return
		}
		var rt tree.RatchetTreeNodes
		if len(rtb) > 0 {
			if err := wire.Unmarshal(rtb, &rt); err != nil {
				return
			}
		}
		jd, err := JoinFromWelcome(&w, rt, find, Config{})
		if err != nil {
			if jd != nil {
				t.Fatal("a result with an error")
			}
			return
		}
		g := jd.Group
		if !bytes.Equal(g.Context().TreeHash, g.tree.TreeHash(g.suite)) {
			t.Fatal("joined a group whose tree does not match its tree hash")
		}
		if ln := g.tree.Leaf(g.OwnLeafIndex()); ln == nil || !bytes.Equal(ln.SignatureKey, j.signer.PublicKey()) {
			t.Fatal("joined at a leaf that is not the KeyPackage's")
		}
		if !genuine[string(g.EpochAuthenticator())] {
			t.Fatal("joined an epoch no genuine Welcome leads to")
		}
	})
}
