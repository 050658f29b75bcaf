package mls

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
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
	seed(Config{RatchetTreeInWelcome: true}, CommitOptions{Extensions: tree.Extensions{}, GroupInfoExtensions: tree.Extensions{{ExtensionType: 0xf0f0, ExtensionData: []byte{1}}}})

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

// FuzzJoinGroupInfo goes past the Welcome's encryption: the fuzzer mutates
// the GroupInfo (and the out-of-band tree) that a malicious member 0 then
// signs, gives the confirmation tag of a joiner secret of its choice, and
// seals into a Welcome to the joiner — as a member holding valid keys can
// (RFC 9420 §12.4.3.1). The tree, extensions, PSK-free key schedule and
// path checks thus see arbitrary content. Joining must not panic; a group
// that is joined must hold up: its tree matches its tree hash and is
// valid, the joiner sits at its KeyPackage's leaf, and its state survives
// a save and load.
func FuzzJoinGroupInfo(f *testing.F) {
	gg := vtSmallGroup(f, 1, Config{RatchetTreeInWelcome: true}, 3)
	j := gtNewMember(f, gg.s, "joiner")
	find := j.finder(f)
	s, signer := gg.s, gg.ms[0].signer
	joinerSecret := bytes.Repeat([]byte{0x5a}, s.HashSize())

	for _, oob := range []bool{false, true} {
		w := vtWelcomeOf(gg)
		w.oobTree = oob
		_, rt, gi := vtForgeWelcome(f, w, j)
		var rtb []byte
		if oob {
			rtb = gtWireOf(f, rt)
		}
		f.Add(gtWireOf(f, gi), rtb, true)
	}

	f.Fuzz(func(t *testing.T, gib, rtb []byte, retag bool) {
		var gi GroupInfo
		if err := wire.Unmarshal(gib, &gi); err != nil || gi.GroupContext.CipherSuite != s.ID() {
			return
		}
		var rt tree.RatchetTreeNodes
		if len(rtb) > 0 {
			if err := wire.Unmarshal(rtb, &rt); err != nil {
				return
			}
		}
		ctxBytes, err := wire.Marshal(&gi.GroupContext)
		if err != nil {
			return
		}
		psk, err := schedule.PSKSecret(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := schedule.Derive(s, joinerSecret, psk, ctxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if retag {
			gi.ConfirmationTag = s.MAC(ep.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash)
		}
		if err := SignGroupInfo(signer, &gi); err != nil {
			return
		}
		welcomeSecret, err := schedule.WelcomeSecret(s, joinerSecret, psk)
		if err != nil {
			t.Fatal(err)
		}
		w, err := newWelcome(s, &gi, welcomeSecret, joinerSecret, nil, []welcomeRecipient{{KeyPackage: j.kp}})
		if err != nil {
			return
		}
		jd, err := JoinFromWelcome(vtRoundTrip(t, w, new(Welcome)), rt, find, Config{})
		if err != nil {
			if jd != nil {
				t.Fatal("a result with an error")
			}
			return
		}
		g := jd.Group
		if err := g.tree.Validate(s, g.ctx.GroupID, g.ctx.TreeHash); err != nil {
			t.Fatalf("joined an invalid tree: %v", err)
		}
		if ln := g.tree.Leaf(g.OwnLeafIndex()); ln == nil || !bytes.Equal(ln.SignatureKey, j.signer.PublicKey()) {
			t.Fatal("joined at a leaf that is not the KeyPackage's")
		}
		es, err := g.MarshalEpochState()
		if err != nil {
			t.Fatalf("joined group does not save: %v", err)
		}
		rs, err := g.MarshalRatchetState()
		if err != nil {
			t.Fatalf("joined group does not save: %v", err)
		}
		if _, err := LoadGroup(es, rs, j.signer, Config{}); err != nil {
			t.Fatalf("joined group does not load: %v", err)
		}
	})
}
