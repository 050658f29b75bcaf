// Package fromtree lets the engine's own tools make the members of a group
// straight from a generated ratchet tree and one epoch's secrets, as if
// they had joined that epoch: the benchmark does not build a
// 10,000-member group with 10,000 commits.
//
// The constructor is mls.Internals(access.Key{}).GroupFromTree: package
// mls cannot be imported here (it imports this package), and being internal
// to mls, neither this package nor the key is in reach of anything outside
// the engine.
package fromtree

import (
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Epoch is one epoch of a generated group, shared by every member made
// from it.
type Epoch struct {
	Suite   *suite.Suite
	Tree    *tree.Tree
	GroupID []byte
	Epoch   uint64
	// InitSecret is the previous epoch's init secret; with no commit
	// secret and no PSK it gives this epoch's secrets (RFC 9420 §8).
	InitSecret              []byte
	ConfirmedTranscriptHash []byte
}

// Member is what one member holds of its own.
type Member struct {
	Leaf   tree.LeafIndex
	Signer *suite.Signer
	// Keys are the private keys of the nodes the member knows: its leaf's
	// and those of the parents on its path it shares with the tree.
	Keys tree.PrivateKeys
}
