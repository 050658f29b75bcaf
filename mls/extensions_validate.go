package mls

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Extension and capabilities validation (RFC 9420 §7.2, §12.1.7, §12.1.8.1,
// §13.4), for every list of extensions that enters or leaves a group:
// GroupContext (creation, GroupContextExtensions, ReInit, joining),
// GroupInfo, KeyPackage and LeafNode extensions.

var (
	// ErrInvalidExtension: an extension list with two extensions of one
	// type (§13.4), or an extension of a type this implementation
	// understands whose extension_data does not decode or holds an invalid
	// key or credential. It wraps the reason (tree.ErrDuplicateExtension,
	// a wire decoding error, suite.ErrInvalidKey, ErrInvalidCredential).
	ErrInvalidExtension = errors.New("mls: invalid extension")
	// ErrInvalidCapabilities: capabilities of our own that list a default
	// extension or proposal type, which §7.2 forbids.
	ErrInvalidCapabilities = errors.New("mls: invalid capabilities")
)

// checkExtensionList checks what every extension list must satisfy,
// wherever it appears: at most one extension of each type (§13.4), and
// the extension_data of each type this implementation understands decodes
// as that type's structure (all of it). The bodies of unknown types are
// not looked at (§13.4: they are ignored). A ratchet_tree body is decoded
// only if decodeTree: where a join uses the tree it decodes it anyway.
func checkExtensionList(es tree.Extensions, decodeTree bool) error {
	if t, dup := es.Duplicate(); dup {
		return fmt.Errorf("%w: %w: type 0x%04x twice", ErrInvalidExtension, tree.ErrDuplicateExtension, uint16(t))
	}
	for i := range es {
		e := &es[i]
		var err error
		switch e.ExtensionType {
		case tree.ExtensionTypeApplicationID:
			err = wire.Unmarshal(e.ExtensionData, new(tree.ApplicationID))
		case tree.ExtensionTypeRatchetTree:
			if decodeTree {
				err = wire.Unmarshal(e.ExtensionData, new(tree.RatchetTreeNodes))
			}
		case tree.ExtensionTypeRequiredCapabilities:
			err = wire.Unmarshal(e.ExtensionData, new(tree.RequiredCapabilities))
		case tree.ExtensionTypeExternalPub:
			err = wire.Unmarshal(e.ExtensionData, new(tree.ExternalPub))
		case tree.ExtensionTypeExternalSenders:
			err = wire.Unmarshal(e.ExtensionData, new(tree.ExternalSenders))
		case tree.ExtensionTypeLastResort:
			if len(e.ExtensionData) != 0 {
				err = fmt.Errorf("%d bytes of data, want none", len(e.ExtensionData))
			}
		}
		if err != nil {
			return fmt.Errorf("%w: type 0x%04x: %w", ErrInvalidExtension, uint16(e.ExtensionType), err)
		}
	}
	return nil
}

// checkExtensions is checkExtensionList plus the keys the known
// extensions carry, which must be keys of suite s: external_pub an HPKE
// public key, and every external sender's signature_key a signature key
// (§5.1.1).
func checkExtensions(s *suite.Suite, es tree.Extensions, decodeTree bool) error {
	if err := checkExtensionList(es, decodeTree); err != nil {
		return err
	}
	if e := es.Find(tree.ExtensionTypeExternalPub); e != nil {
		var ep tree.ExternalPub
		if err := wire.Unmarshal(e.ExtensionData, &ep); err != nil {
			return fmt.Errorf("%w: external_pub: %w", ErrInvalidExtension, err)
		}
		if err := s.ValidateHPKEPublicKey(ep.ExternalPub); err != nil {
			return fmt.Errorf("%w: external_pub: %w", ErrInvalidExtension, err)
		}
	}
	senders, err := externalSenders(es)
	if err != nil {
		return err
	}
	for i := range senders {
		if err := s.ValidateSignaturePublicKey(senders[i].SignatureKey); err != nil {
			return fmt.Errorf("%w: external sender %d: %w", ErrInvalidExtension, i, err)
		}
	}
	return nil
}

// externalSenders decodes the external_senders extension of es, nil when
// absent.
func externalSenders(es tree.Extensions) (tree.ExternalSenders, error) {
	e := es.Find(tree.ExtensionTypeExternalSenders)
	if e == nil {
		return nil, nil
	}
	var senders tree.ExternalSenders
	if err := wire.Unmarshal(e.ExtensionData, &senders); err != nil {
		return nil, fmt.Errorf("%w: external_senders: %w", ErrInvalidExtension, err)
	}
	return senders, nil
}

// ValidateGroupContextExtensions checks the extensions of a GroupContext
// of suite s, whether a group is created with them, a
// GroupContextExtensions proposal installs them, or a joiner finds them in
// a GroupInfo: checkExtensions, and every external sender's credential is
// validated with the Authentication Service v (nil:
// BasicCredentialValidator) with Leaf nil and Use 0 (§5.3.1: "When an
// external_senders extension is added to the group" and "updated").
//
// That every member supports these extensions (§12.1.7, §13.4) is leaf
// validation's (ValidateTreeLeaves). The error wraps ErrInvalidExtension.
func ValidateGroupContextExtensions(s *suite.Suite, es tree.Extensions, v CredentialValidator) error {
	if err := checkExtensions(s, es, true); err != nil {
		return err
	}
	senders, err := externalSenders(es)
	if err != nil {
		return err
	}
	for i := range senders {
		es := &senders[i]
		if err := validateCredential(v, &CredentialCheck{Credential: &es.Credential, SignatureKey: es.SignatureKey}); err != nil {
			return fmt.Errorf("%w: external sender %d: %w", ErrInvalidExtension, i, err)
		}
	}
	return nil
}

// checkProposalExtensions checks the extension list a proposal carries:
// the new GroupContext extensions of a GroupContextExtensions proposal
// (ValidateGroupContextExtensions), and those of the group a ReInit
// creates (checkExtensionList: its suite may differ, and its keys and
// credentials are checked when that group is created or joined). Other
// proposals carry none of their own (an Add's are its KeyPackage's,
// checked by ValidateKeyPackage; an Update's its leaf's).
func (g *Group) checkProposalExtensions(p *Proposal) error {
	var err error
	switch p.ProposalType {
	case tree.ProposalTypeGroupContextExtensions:
		err = ValidateGroupContextExtensions(g.suite, p.GroupContextExtensions.Extensions, g.cfg.Credentials)
	case tree.ProposalTypeReInit:
		err = checkExtensionList(p.ReInit.Extensions, true)
	}
	if err != nil {
		return fmt.Errorf("%w: %v: %w", ErrInvalidProposal, p.ProposalType, err)
	}
	return nil
}

// validateGroupInfo checks the extensions of a GroupInfo a joiner received
// (§12.4.3.1, §12.4.3.2, §13.4): its own (one of each type, known bodies
// decode, external_pub is an HPKE key of s) and its GroupContext's
// (ValidateGroupContextExtensions). treeGiven says the ratchet tree came
// out of band, so the join does not decode a ratchet_tree extension and
// this does. The error wraps ErrInvalidGroupInfo and ErrInvalidExtension.
func validateGroupInfo(s *suite.Suite, gi *GroupInfo, v CredentialValidator, treeGiven bool) error {
	if err := checkExtensions(s, gi.Extensions, treeGiven); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	if err := ValidateGroupContextExtensions(s, gi.GroupContext.Extensions, v); err != nil {
		return fmt.Errorf("%w: group context: %w", ErrInvalidGroupInfo, err)
	}
	return nil
}

// checkOwnCapabilities checks capabilities this member is about to send:
// no default extension or proposal type is listed (§7.2). Received
// capabilities are not held to this: the MUST binds their creator, the
// default types are treated as supported whether listed or not, and the
// official vectors (messages.json) carry KeyPackages that list them.
func checkOwnCapabilities(c *tree.Capabilities) error {
	for _, t := range c.Extensions {
		if t.IsDefault() {
			return fmt.Errorf("%w: default extension type 0x%04x listed", ErrInvalidCapabilities, uint16(t))
		}
	}
	for _, t := range c.Proposals {
		if t.IsDefault() {
			return fmt.Errorf("%w: default proposal type %v listed", ErrInvalidCapabilities, t)
		}
	}
	return nil
}

// checkLeafOptions checks the leaf this member is about to create from o
// (CreateGroup, JoinByExternalCommit): its capabilities (checkOwnCapabilities)
// and its extensions (checkExtensionList).
func checkLeafOptions(o *LeafOptions) error {
	if o.Capabilities != nil {
		if err := checkOwnCapabilities(o.Capabilities); err != nil {
			return err
		}
	}
	return checkExtensionList(o.Extensions, true)
}

// checkNewGroup checks what CreateGroup is given: the creator's leaf
// options, and the GroupContext extensions (ValidateGroupContextExtensions).
func checkNewGroup(s *suite.Suite, leaf *LeafOptions, extensions tree.Extensions, v CredentialValidator) error {
	if err := checkLeafOptions(leaf); err != nil {
		return err
	}
	return ValidateGroupContextExtensions(s, extensions, v)
}
