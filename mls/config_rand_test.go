package mls

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// TestConfigRandDrawsLeafKeys: CreateGroup and ProposeUpdate draw the leaf's
// HPKE key from Config.Rand (they used crypto/rand), so that a group made
// with a fixed source is reproducible: two runs agree on the creator's
// leaf key and on the key of its Update.
func TestConfigRandDrawsLeafKeys(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			s := gtSuite(t, id)
			signer := gtSigner(t, s)
			run := func() (leafKey, updateKey []byte) {
				cfg := Config{Rand: rand.NewChaCha8([32]byte{1})}
				g, err := CreateGroup(s, signer, []byte("group"), LeafOptions{Credential: tree.NewBasicCredential([]byte("c"))}, nil, cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, next, err := g.ProposeUpdate()
				if err != nil {
					t.Fatal(err)
				}
				return g.tree.Leaf(0).EncryptionKey, next.pending[0].proposal.Update.LeafNode.EncryptionKey
			}
			l1, u1 := run()
			l2, u2 := run()
			if !bytes.Equal(l1, l2) || !bytes.Equal(u1, u2) {
				t.Fatal("leaf keys differ under the same Config.Rand")
			}
			if bytes.Equal(l1, u1) {
				t.Fatal("the update reuses the leaf key")
			}
		})
	}
}
