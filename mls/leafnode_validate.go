package mls

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Leaf node validation (RFC 9420 §7.3), shared by every place a LeafNode
// enters a group: KeyPackages (§10.1) and Add proposals, Update proposals,
// commit paths (including external commits), and the ratchet tree a joiner
// receives (§12.4.3.1).

// Errors of leaf node and KeyPackage validation. A rejection of a leaf node
// wraps ErrInvalidLeafNode together with the reason (ErrExpired,
// ErrUnsupportedCapability, ErrInvalidCredential, ErrInvalidSignature,
// tree.ErrDuplicateKey, ...); test with errors.Is.
var (
	// ErrInvalidLeafNode: a LeafNode that fails RFC 9420 §7.3.
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrExpired: the current time is outside a key_package leaf's
	// lifetime, or the lifetime is empty or longer than allowed (§7.2, §7.3).
	ErrExpired = errors.New("mls: lifetime not valid now")
	// ErrUnsupportedCapability: a leaf's capabilities lack something the
	// group, the other members or the leaf itself uses (§7.2, §7.3, §11.1,
	// §13.4).
	ErrUnsupportedCapability = errors.New("mls: unsupported capability")
)

// LeafUse says where a LeafNode appears, which fixes the leaf_node_source it
// must have and how its signature is computed (RFC 9420 §7.3).
type LeafUse uint8

const (
	// LeafUseKeyPackage: the leaf of a KeyPackage, downloaded or in an Add
	// proposal. Source key_package; lifetime checked.
	LeafUseKeyPackage LeafUse = iota + 1
	// LeafUseUpdate: the leaf of an Update proposal for the member at the
	// given index. Source update; its encryption_key must differ from the
	// leaf it replaces.
	LeafUseUpdate
	// LeafUseCommit: the leaf_node of a Commit's UpdatePath (also of an
	// external commit, at the index the joiner will occupy). Source commit.
	LeafUseCommit
	// LeafUseTree: a leaf of a ratchet tree being validated (joining via
	// Welcome, §12.4.3.1). Any source; a key_package leaf's lifetime is
	// held to ValidateOptions.MaxLifetime but not to the current time,
	// because a member added long ago legitimately outlives its KeyPackage
	// lifetime (the check is only RECOMMENDED for received leaves, §7.3).
	LeafUseTree
)

func (u LeafUse) String() string {
	switch u {
	case LeafUseKeyPackage:
		return "key package"
	case LeafUseUpdate:
		return "update"
	case LeafUseCommit:
		return "commit"
	case LeafUseTree:
		return "tree"
	}
	return fmt.Sprintf("LeafUse(%d)", uint8(u))
}

// LeafSet is the group's current members, as the uniqueness and
// credential-compatibility checks of RFC 9420 §7.3 need them. *tree.Tree
// implements it. Pass the membership the leaf will join: for a Commit, the
// tree after the Commit's Removes (and earlier Adds) are applied.
type LeafSet interface {
	// NumLeaves is the number of leaf positions (blank or not).
	NumLeaves() uint32
	// Leaf returns the leaf node at i, nil when blank.
	Leaf(i tree.LeafIndex) *tree.LeafNode
	// FindEncryptionKey returns a node (leaf or parent) holding key.
	FindEncryptionKey(key []byte) (tree.NodeIndex, bool)
	// FindSignatureKey returns a leaf whose signature_key is key.
	FindSignatureKey(key []byte) (tree.LeafIndex, bool)
}

// ValidateOptions is the context a LeafNode or KeyPackage is validated in.
// The zero value validates a KeyPackage on its own, outside any group.
type ValidateOptions struct {
	// GroupContext is the group the leaf joins or lives in: its group_id
	// enters update/commit signatures, and its extensions (including
	// required_capabilities) must be supported. Nil outside a group; it is
	// required for LeafUseUpdate, LeafUseCommit and LeafUseTree.
	GroupContext *GroupContext
	// Members is the group's membership (nil outside a group: no
	// uniqueness or credential-compatibility checks).
	Members LeafSet
	// Credentials is the Authentication Service (nil: BasicCredentialValidator).
	Credentials CredentialValidator
	// Replaces is the leaf a LeafUseCommit leaf of an external commit
	// replaces (the resynchronizing member's removed leaf), for the
	// successor rule of §5.3.1. For Update and member commits the replaced
	// leaf is Members.Leaf(index) and this is not needed.
	Replaces *tree.LeafNode
	// MaxLifetime is the longest not_after - not_before accepted for a
	// key_package leaf (0: no limit), also in a received tree
	// (LeafUseTree). RFC 9420 §7.2 has applications define one;
	// DefaultMaxLifetime is a sensible choice.
	MaxLifetime time.Duration
}

// DefaultMaxLifetime is a suggested ValidateOptions.MaxLifetime: a little
// over a year, which admits our own DefaultKeyPackageLifetime with room.
const DefaultMaxLifetime = 400 * 24 * time.Hour

// ValidateLeafNode checks ln as RFC 9420 §7.3 requires when it appears as
// use. index is the leaf position it occupies (update, commit, tree; for
// an external commit the index the joiner will get); it is ignored for
// LeafUseKeyPackage. now is the current time for the lifetime check of
// key_package leaves (the zero time skips it).
//
// Checked: encryption_key and signature_key are keys of the suite
// (suite.ValidateHPKEPublicKey, ValidateSignaturePublicKey), signature (with
// group_id and index for the update and commit sources), credential
// (opts.Credentials), leaf_node_source against use,
// capabilities: the protocol version of the group, the leaf's own
// credential type and non-default extensions, the GroupContext's
// required_capabilities and extensions, the credential types of all other
// members and theirs of this leaf's; lifetime; extensions (one of each
// type, the known ones well formed); encryption and signature key unique
// among the other members (and for Update, a new encryption key).
func ValidateLeafNode(s *suite.Suite, ln *tree.LeafNode, use LeafUse, index tree.LeafIndex, now time.Time, opts ValidateOptions) error {
	if err := validateLeafNode(s, ln, use, index, now, &opts, nil); err != nil {
		return fmt.Errorf("%w: %v leaf: %w", ErrInvalidLeafNode, use, err)
	}
	return nil
}

// ValidateTreeLeaves runs the checks of ValidateLeafNode with LeafUseTree on
// every non-blank leaf of t (opts.Members is ignored: t is the membership),
// except the key validity, leaf signatures and key uniqueness, which
// tree.(*Tree).Validate covers. Together they are the ratchet tree
// validation a joiner performs (RFC 9420 §12.4.3.1). The member
// compatibility checks are done in one pass, so this is O(N) for N leaves,
// not O(N²).
func ValidateTreeLeaves(s *suite.Suite, t LeafSet, opts ValidateOptions) error {
	if opts.GroupContext == nil {
		return fmt.Errorf("%w: tree validation needs the group context", ErrIncompleteValue)
	}
	opts.Members = t
	agg := newCredAggregate(t)
	for i := range tree.LeafIndex(t.NumLeaves()) {
		ln := t.Leaf(i)
		if ln == nil {
			continue
		}
		if err := validateLeafNode(s, ln, LeafUseTree, i, time.Time{}, &opts, agg); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidLeafNode, i, err)
		}
	}
	return nil
}

// validateLeafNode is ValidateLeafNode. With agg non-nil (tree validation)
// the member compatibility checks use the aggregate, and the signature and
// uniqueness checks are skipped (tree.Validate does them).
func validateLeafNode(s *suite.Suite, ln *tree.LeafNode, use LeafUse, index tree.LeafIndex, now time.Time, opts *ValidateOptions, agg *credAggregate) error {
	gc := opts.GroupContext
	// leaf_node_source against where the leaf appears (§7.3).
	var want tree.LeafNodeSource
	switch use {
	case LeafUseKeyPackage:
		want = tree.LeafNodeSourceKeyPackage
	case LeafUseUpdate:
		want = tree.LeafNodeSourceUpdate
	case LeafUseCommit:
		want = tree.LeafNodeSourceCommit
	case LeafUseTree:
		switch ln.LeafNodeSource {
		case tree.LeafNodeSourceKeyPackage, tree.LeafNodeSourceUpdate, tree.LeafNodeSourceCommit:
		default:
			return fmt.Errorf("leaf_node_source %v", ln.LeafNodeSource)
		}
		want = ln.LeafNodeSource
	default:
		return fmt.Errorf("%w: unknown leaf use %d", ErrIncompleteValue, use)
	}
	if ln.LeafNodeSource != want {
		return fmt.Errorf("leaf_node_source is %v, want %v", ln.LeafNodeSource, want)
	}
	if use != LeafUseKeyPackage && gc == nil {
		return fmt.Errorf("%w: validating a %v leaf needs the group context", ErrIncompleteValue, use)
	}
	if gc != nil && gc.CipherSuite != s.ID() {
		return fmt.Errorf("%w: group uses %v, validating with %v", ErrIncompleteValue, gc.CipherSuite, s.ID())
	}

	// Keys (§5.1.1, §7.3, §10): encryption_key must be an HPKE public key
	// that encryption to it can use, signature_key a key of the suite's
	// scheme. In tree validation tree.Validate checks every node's
	// encryption key, and each leaf signature its signature key.
	if agg == nil {
		if err := s.ValidateHPKEPublicKey(ln.EncryptionKey); err != nil {
			return fmt.Errorf("encryption_key: %w", err)
		}
		if err := s.ValidateSignaturePublicKey(ln.SignatureKey); err != nil {
			return fmt.Errorf("signature_key: %w", err)
		}
	}

	// Signature (§7.2): group_id and leaf_index enter update/commit TBS. Checked
	// before the credential, so that the Authentication Service only sees
	// leaves their key really signed.
	if agg == nil {
		var groupID []byte
		if gc != nil {
			groupID = gc.GroupID
		}
		if err := ln.Verify(s, groupID, index); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
		}
	}

	// Credential (§5.3.1), and for a leaf that replaces another the
	// successor rule.
	check := &CredentialCheck{Credential: &ln.Credential, SignatureKey: ln.SignatureKey, Leaf: ln, Use: use,
		Previous: opts.Replaces, GroupContext: gc}
	if check.Previous == nil && opts.Members != nil && (use == LeafUseUpdate || use == LeafUseCommit) &&
		uint32(index) < opts.Members.NumLeaves() {
		check.Previous = opts.Members.Leaf(index)
	}
	if err := validateCredential(opts.Credentials, check); err != nil {
		return err
	}

	// Lifetime (§7.2, §7.3). A key_package leaf of a received tree is held
	// to the maximum total lifetime its KeyPackage was, but not to the
	// current time: members legitimately outlive their KeyPackage.
	switch {
	case use == LeafUseKeyPackage:
		if err := checkLifetime(&ln.Lifetime, now, opts.MaxLifetime); err != nil {
			return err
		}
	case use == LeafUseTree && ln.LeafNodeSource == tree.LeafNodeSourceKeyPackage && opts.MaxLifetime > 0:
		if err := checkLifetime(&ln.Lifetime, time.Time{}, opts.MaxLifetime); err != nil {
			return err
		}
	}

	// Extensions (§13.4): one of each type, known bodies well formed.
	if err := checkExtensions(s, ln.Extensions, true); err != nil {
		return err
	}

	// Capabilities (§7.2, §7.3, §11.1, §13.4).
	if err := checkCapabilities(ln, gc); err != nil {
		return err
	}

	// Other members: credential types both ways, key uniqueness.
	if agg != nil {
		return agg.check(ln)
	}
	if m := opts.Members; m != nil {
		// The leaf's own position (not for a KeyPackage, which has none yet).
		self, hasSelf := index, use != LeafUseKeyPackage
		if err := checkMemberCredentials(ln, m, self, hasSelf); err != nil {
			return err
		}
		if x, ok := m.FindEncryptionKey(ln.EncryptionKey); ok && (!hasSelf || x != self.Node()) {
			return fmt.Errorf("%w: encryption_key already used by node %d", tree.ErrDuplicateKey, x)
		}
		if j, ok := m.FindSignatureKey(ln.SignatureKey); ok && (!hasSelf || j != self) {
			return fmt.Errorf("%w: signature_key already used by leaf %d", tree.ErrDuplicateKey, j)
		}
		if use == LeafUseUpdate {
			old := m.Leaf(index)
			if old == nil {
				return fmt.Errorf("%w: update for blank leaf %d", tree.ErrBlankLeaf, index)
			}
			if string(old.EncryptionKey) == string(ln.EncryptionKey) {
				return fmt.Errorf("%w: update keeps the encryption_key of leaf %d", tree.ErrDuplicateKey, index)
			}
		}
	}
	return nil
}

// checkLifetime checks a key_package leaf's lifetime (§7.2, §7.3).
func checkLifetime(l *tree.Lifetime, now time.Time, maxLifetime time.Duration) error {
	if l.NotBefore > l.NotAfter {
		return fmt.Errorf("%w: not_before %d after not_after %d", ErrExpired, l.NotBefore, l.NotAfter)
	}
	if maxLifetime > 0 && l.NotAfter-l.NotBefore > uint64(maxLifetime/time.Second) {
		return fmt.Errorf("%w: lifetime of %ds exceeds the maximum %v", ErrExpired, l.NotAfter-l.NotBefore, maxLifetime)
	}
	if now.IsZero() {
		return nil
	}
	// Times before the epoch are before any not_before but 0.
	t := now.Unix()
	if t < 0 {
		t = 0
	}
	if u := uint64(t); u < l.NotBefore || u > l.NotAfter {
		return fmt.Errorf("%w: now %d outside [%d, %d]", ErrExpired, u, l.NotBefore, l.NotAfter)
	}
	return nil
}

// checkCapabilities checks what a leaf must support on its own and for the
// group: the protocol version in use (§11.1), its own credential type and
// non-default leaf extensions (§7.2), and, in a group, every non-default
// extension of the GroupContext (§13.4) and its required_capabilities
// (§11.1).
func checkCapabilities(ln *tree.LeafNode, gc *GroupContext) error {
	c := &ln.Capabilities
	version := tree.ProtocolVersionMLS10
	if gc != nil {
		version = gc.Version
	}
	if !slices.Contains(c.Versions, version) {
		return fmt.Errorf("%w: protocol version %d not in capabilities", ErrUnsupportedCapability, version)
	}
	// The group's cipher suite is deliberately not required in
	// capabilities.cipher_suites: §7.3 does not list that check, and the
	// reference implementation omits suites it supports (the official
	// welcome.json key package of suite 7 lists only suites 1-6).
	if !slices.Contains(c.Credentials, ln.Credential.CredentialType) {
		return fmt.Errorf("%w: own credential type 0x%04x not in capabilities", ErrUnsupportedCapability, uint16(ln.Credential.CredentialType))
	}
	for _, e := range ln.Extensions {
		if err := supportsExtension(c, e.ExtensionType, "leaf node"); err != nil {
			return err
		}
	}
	if gc == nil {
		return nil
	}
	for _, e := range gc.Extensions {
		if err := supportsExtension(c, e.ExtensionType, "group context"); err != nil {
			return err
		}
	}
	rc, err := requiredCapabilities(gc.Extensions)
	if err != nil || rc == nil {
		return err
	}
	for _, t := range rc.ExtensionTypes {
		if err := supportsExtension(c, t, "required_capabilities"); err != nil {
			return err
		}
	}
	for _, t := range rc.ProposalTypes {
		if !t.IsDefault() && !slices.Contains(c.Proposals, t) {
			return fmt.Errorf("%w: required proposal type %v not in capabilities", ErrUnsupportedCapability, t)
		}
	}
	for _, t := range rc.CredentialTypes {
		if !slices.Contains(c.Credentials, t) {
			return fmt.Errorf("%w: required credential type 0x%04x not in capabilities", ErrUnsupportedCapability, uint16(t))
		}
	}
	return nil
}

// supportsExtension: default extension types need not (and must not) be
// listed (§7.2); any other must be.
func supportsExtension(c *tree.Capabilities, t tree.ExtensionType, where string) error {
	if t.IsDefault() || slices.Contains(c.Extensions, t) {
		return nil
	}
	return fmt.Errorf("%w: %s extension 0x%04x not in capabilities", ErrUnsupportedCapability, where, uint16(t))
}

// requiredCapabilities decodes the required_capabilities extension of a
// GroupContext, nil when absent.
func requiredCapabilities(exts tree.Extensions) (*tree.RequiredCapabilities, error) {
	e := exts.Find(tree.ExtensionTypeRequiredCapabilities)
	if e == nil {
		return nil, nil
	}
	rc := new(tree.RequiredCapabilities)
	if err := wire.Unmarshal(e.ExtensionData, rc); err != nil {
		return nil, fmt.Errorf("required_capabilities extension: %w", err)
	}
	return rc, nil
}

// checkMemberCredentials: the leaf's credential type is supported by every
// other member, and it supports every other member's credential type (§7.3).
func checkMemberCredentials(ln *tree.LeafNode, m LeafSet, self tree.LeafIndex, hasSelf bool) error {
	if t, ok := m.(*tree.Tree); ok && memberCredentialsOK(ln, t, self, hasSelf) {
		return nil
	}
	// The scan below finds the offending leaf (or passes a LeafSet that is
	// not a Tree).
	ct := ln.Credential.CredentialType
	for i := range tree.LeafIndex(m.NumLeaves()) {
		other := m.Leaf(i)
		if other == nil || (hasSelf && i == self) {
			continue
		}
		if !slices.Contains(other.Capabilities.Credentials, ct) {
			return fmt.Errorf("%w: credential type 0x%04x not supported by leaf %d", ErrUnsupportedCapability, uint16(ct), i)
		}
		if oct := other.Credential.CredentialType; !slices.Contains(ln.Capabilities.Credentials, oct) {
			return fmt.Errorf("%w: credential type 0x%04x of leaf %d not in capabilities", ErrUnsupportedCapability, uint16(oct), i)
		}
	}
	return nil
}

// memberCredentialsOK is checkMemberCredentials from the tree's credential
// type counts, O(types) instead of O(N): the members other than self all
// list ln's type, and ln lists every type the other members use.
func memberCredentialsOK(ln *tree.LeafNode, t *tree.Tree, self tree.LeafIndex, hasSelf bool) bool {
	members, inUse, supported := t.CredentialCounts()
	var old *tree.LeafNode
	if hasSelf {
		old = t.Leaf(self)
	}
	ct := ln.Credential.CredentialType
	others, supporters := members, supported[ct]
	if old != nil {
		others--
		if slices.Contains(old.Capabilities.Credentials, ct) {
			supporters--
		}
	}
	if supporters != others {
		return false
	}
	for typ, n := range inUse {
		if old != nil && old.Credential.CredentialType == typ {
			n--
		}
		if n > 0 && !slices.Contains(ln.Capabilities.Credentials, typ) {
			return false
		}
	}
	return true
}

// credAggregate summarises the members' credential types for tree
// validation: how many leaves use each type and how many support it.
type credAggregate struct {
	members   int
	inUse     map[tree.CredentialType]int
	supported map[tree.CredentialType]int
}

func newCredAggregate(m LeafSet) *credAggregate {
	a := &credAggregate{inUse: map[tree.CredentialType]int{}, supported: map[tree.CredentialType]int{}}
	for i := range tree.LeafIndex(m.NumLeaves()) {
		ln := m.Leaf(i)
		if ln == nil {
			continue
		}
		a.members++
		a.inUse[ln.Credential.CredentialType]++
		// Count each listed type once per leaf, even if listed twice.
		seen := make(map[tree.CredentialType]bool, len(ln.Capabilities.Credentials))
		for _, t := range ln.Capabilities.Credentials {
			if !seen[t] {
				seen[t] = true
				a.supported[t]++
			}
		}
	}
	return a
}

// check is checkMemberCredentials for a leaf of the aggregated set. The leaf
// lists its own credential type (checkCapabilities ran first), so "every
// other member supports it" is "every member supports it", and "it supports
// every other member's type" is "it supports every type in use".
func (a *credAggregate) check(ln *tree.LeafNode) error {
	ct := ln.Credential.CredentialType
	if a.supported[ct] != a.members {
		return fmt.Errorf("%w: credential type 0x%04x not supported by all members", ErrUnsupportedCapability, uint16(ct))
	}
	for t := range a.inUse {
		if !slices.Contains(ln.Capabilities.Credentials, t) {
			return fmt.Errorf("%w: credential type 0x%04x in use but not in capabilities", ErrUnsupportedCapability, uint16(t))
		}
	}
	return nil
}
