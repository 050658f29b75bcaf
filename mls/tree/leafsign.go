package tree

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// leafNodeTBSLabel is the SignWithLabel label of LeafNode signatures (RFC 9420 §7.2).
const leafNodeTBSLabel = "LeafNodeTBS"

// Sign sets ln.Signature to SignWithLabel(., "LeafNodeTBS", LeafNodeTBS)
// (RFC 9420 §7.2). groupID and leafIndex enter the signed content for the
// update and commit sources and are ignored for key_package. s is the
// group's cipher suite; signer must be a key of that suite.
func (ln *LeafNode) Sign(s *suite.Suite, signer *suite.Signer, groupID []byte, leafIndex LeafIndex) error {
	_ = s
	tbs, err := ln.MarshalTBS(groupID, leafIndex)
	if err != nil {
		return fmt.Errorf("tree: sign leaf node: %w", err)
	}
	sig, err := signer.SignWithLabel(leafNodeTBSLabel, tbs)
	if err != nil {
		return fmt.Errorf("tree: sign leaf node: %w", err)
	}
	ln.Signature = sig
	return nil
}

// Verify checks ln.Signature with ln.SignatureKey over the LeafNodeTBS for
// (groupID, leafIndex) (RFC 9420 §7.2, §7.3). The error wraps
// ErrLeafSignature.
func (ln *LeafNode) Verify(s *suite.Suite, groupID []byte, leafIndex LeafIndex) error {
	tbs, err := ln.MarshalTBS(groupID, leafIndex)
	if err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrLeafSignature, leafIndex, err)
	}
	if err := s.VerifyWithLabel(ln.SignatureKey, leafNodeTBSLabel, tbs, ln.Signature); err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrLeafSignature, leafIndex, err)
	}
	return nil
}
