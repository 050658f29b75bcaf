package mls

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// GroupInfo signing (RFC 9420 §12.4.3).

// groupInfoTBSLabel is the SignWithLabel label of GroupInfo (RFC 9420 §12.4.3).
const groupInfoTBSLabel = "GroupInfoTBS"

// SignGroupInfo sets gi.Signature to SignWithLabel(., "GroupInfoTBS",
// GroupInfoTBS) (RFC 9420 §12.4.3). The caller sets gi.Signer to the leaf
// index of the signing member first: it is part of the signed content.
func SignGroupInfo(signer *suite.Signer, gi *GroupInfo) error {
	tbs, err := gi.MarshalTBS()
	if err != nil {
		return fmt.Errorf("mls: sign group info: %w", err)
	}
	sig, err := signer.SignWithLabel(groupInfoTBSLabel, tbs)
	if err != nil {
		return fmt.Errorf("mls: sign group info: %w", err)
	}
	gi.Signature = sig
	return nil
}

// VerifyGroupInfo checks gi.Signature with pub, the signature_key of the
// leaf at gi.Signer in the group's ratchet tree (RFC 9420 §12.4.3,
// §12.4.3.1; the caller looks it up and rejects a blank leaf). It also
// checks that the GroupContext is of suite s. The error wraps
// ErrInvalidSignature.
func VerifyGroupInfo(s *suite.Suite, gi *GroupInfo, pub []byte) error {
	if gi.GroupContext.CipherSuite != s.ID() {
		return fmt.Errorf("%w: group info of %v verified as %v", suite.ErrUnsupportedSuite, gi.GroupContext.CipherSuite, s.ID())
	}
	tbs, err := gi.MarshalTBS()
	if err != nil {
		return fmt.Errorf("mls: verify group info: %w", err)
	}
	if err := s.VerifyWithLabel(pub, groupInfoTBSLabel, tbs, gi.Signature); err != nil {
		return fmt.Errorf("%w: group info from leaf %d: %w", ErrInvalidSignature, gi.Signer, err)
	}
	return nil
}
