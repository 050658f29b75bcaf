package mls

import (
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// TestJoinRefusesOverlongLeafLifetime (RFC 9420 §7.2: applications "MUST
// define a maximum total lifetime that is acceptable for a LeafNode, and
// reject any LeafNode where the total lifetime is longer"): a key_package
// leaf of the tree a joiner receives, by Welcome or for an external
// commit, is held to Config.MaxLeafLifetime like the KeyPackage it came
// from; but not to the current time, since members outlive their
// KeyPackages.
func TestJoinRefusesOverlongLeafLifetime(t *testing.T) {
	const max = DefaultMaxLifetime
	cfg := Config{RatchetTreeInWelcome: true, MaxLeafLifetime: max}
	for _, id := range gtSuites { // suite-independent
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := vtSmallGroup(t, id, cfg, 3)
			now := uint64(time.Now().Unix())
			const day = 24 * 3600
			withLifetime := func(l tree.Lifetime) vtWelcome {
				w := vtWelcomeOf(gg)
				vtResignLeafAt(t, w.nodes, gg.ms[1], func(ln *tree.LeafNode) { ln.Lifetime = l })
				return w
			}
			long := withLifetime(tree.Lifetime{NotBefore: now - day, NotAfter: now + 10*365*day})
			inverted := withLifetime(tree.Lifetime{NotBefore: now + day, NotAfter: now - day})
			// Long expired, but never longer than allowed: a member that
			// joined long ago.
			expired := withLifetime(tree.Lifetime{NotBefore: now - 300*day, NotAfter: now - 200*day})
			j := gtNewMember(t, gg.s, "j")
			vtJoinBoth(t, vtWelcomeOf(gg), j, cfg)
			vtJoinBoth(t, expired, j, cfg)
			vtJoinBoth(t, long, j, cfg, ErrInvalidLeafNode, ErrExpired)
			vtJoinBoth(t, inverted, j, cfg, ErrInvalidLeafNode, ErrExpired)
			// Without a configured maximum, the long leaf is accepted.
			vtJoinBoth(t, long, j, Config{})
			// The creator's own leaf is held to the same bound.
			_, err := CreateGroup(gg.s, gtSigner(t, gg.s), nil, LeafOptions{Credential: tree.NewBasicCredential([]byte("c")),
				Lifetime: 2 * max}, nil, cfg)
			vtExpect(t, err, ErrInvalidLeafNode, ErrExpired)
		})
	}
}

// TestEmptyEncryptionKeys (§7.3: encryption_key "unique among the members
// of the group"): an empty encryption_key is no HPKE key and is refused as
// malformed wherever a leaf arrives (TestRefuseInvalidHPKEKeys, "empty");
// and a tree holding two of them — which members used to accept, after
// which nobody could join by Welcome — is refused by a joiner for the
// duplicate.
func TestEmptyEncryptionKeys(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := vtSmallGroup(t, id, Config{RatchetTreeInWelcome: true}, 3)
			w := vtWelcomeOf(gg)
			empty := func(ln *tree.LeafNode) { ln.EncryptionKey = []byte{} }
			vtResignLeafAt(t, w.nodes, gg.ms[1], empty)
			vtJoinBoth(t, w, gtNewMember(t, gg.s, "j"), gg.cfg, suite.ErrInvalidKey)
			vtResignLeafAt(t, w.nodes, gg.ms[2], empty)
			vtJoinBoth(t, w, gtNewMember(t, gg.s, "j"), gg.cfg, tree.ErrDuplicateKey)
			// A member's uniqueness lookup sees the empty key: an Add whose
			// leaf shares it is a duplicate (as well as malformed).
			tr := vtTree(t, w.nodes)
			if x, ok := tr.FindEncryptionKey(nil); !ok || x != gg.ms[1].g.OwnLeafIndex().Node() {
				t.Fatalf("FindEncryptionKey(empty) = %d, %v", x, ok)
			}
		})
	}
}
