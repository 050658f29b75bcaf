// Package fromtree lets the engine's own tools make the members of a group
// straight from a generated ratchet tree and one epoch's secrets, as if
// they had joined that epoch: the benchmark does not build a
// 10,000-member group with 10,000 commits.
//
// Package mls provides the constructor: its init sets NewGroup, once, and
// nothing changes it afterwards. Being internal to mls, this package is
// out of reach of anything outside the engine; package mls exports nothing
// for it.
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

// NewGroup returns m's state in e, an *mls.Group, with cfg, an mls.Config
// (this package cannot name either: package mls imports it).
var NewGroup func(e *Epoch, m Member, cfg any) (any, error)
