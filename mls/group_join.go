package mls

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Joining a group from a Welcome (RFC 9420 §12.4.3.1).

// KeyPackageBundle is one of our KeyPackages with what joining needs: its
// private keys and the signature key of its leaf.
type KeyPackageBundle struct {
	KeyPackage *KeyPackage
	Private    *KeyPackagePrivate
	Signer     *suite.Signer
}

// ErrKeyPackageNotFound is what a KeyPackageFinder returns for a ref it
// does not hold.
var ErrKeyPackageNotFound = errors.New("mls: key package not found")

// KeyPackageFinder looks one of our KeyPackages up by reference, returning
// an error wrapping ErrKeyPackageNotFound when it is not ours. The
// identity's provider implements it over its store: the same store the
// KeyPackage was generated into.
type KeyPackageFinder func(ref KeyPackageRef) (*KeyPackageBundle, error)

// Joined is the result of a successful join.
type Joined struct {
	Group *Group
	// KeyPackageRef is the KeyPackage consumed: delete its private keys
	// (unless last-resort) in the same transaction that stores Group.
	KeyPackageRef KeyPackageRef
	// GroupInfo is the decrypted, verified GroupInfo (its extensions may
	// carry application data, e.g. a channel descriptor).
	GroupInfo *GroupInfo
}

// JoinFromWelcome joins the group a Welcome invites us to. ratchetTree is
// the tree when it travels out of band; nil means the ratchet_tree
// extension of the GroupInfo. The caller must check that the group id is
// not one it is already in (§12.4.3.1 MUST) before keeping the group.
//
// A Welcome of a reinitialized or branched group is refused with
// ErrOldGroupRequired: join it with JoinReInitWelcome or JoinBranchWelcome.
func JoinFromWelcome(w *Welcome, ratchetTree tree.RatchetTreeNodes, find KeyPackageFinder, cfg Config) (*Joined, error) {
	return joinWelcome(w, ratchetTree, find, cfg, nil)
}

// joinWelcome is JoinFromWelcome; succ, when not nil, is the old group a
// reinit or branch Welcome is checked against (group_reinit.go).
func joinWelcome(w *Welcome, ratchetTree tree.RatchetTreeNodes, find KeyPackageFinder, cfg Config, succ *successorJoin) (*Joined, error) {
	s, err := suite.New(w.CipherSuite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	bundle, ref, err := findWelcomeKeyPackage(w, find)
	if err != nil {
		return nil, err
	}
	kp := bundle.KeyPackage
	if kp.CipherSuite != w.CipherSuite {
		return nil, fmt.Errorf("%w: welcome suite %v, key package suite %v", ErrInvalidWelcome, w.CipherSuite, kp.CipherSuite)
	}
	gs, err := decryptGroupSecrets(s, w, ref, bundle.Private.InitKey)
	if err != nil {
		return nil, err
	}
	defer func() { clear(gs.JoinerSecret); clear(gs.PathSecret) }() // §9.2: consumed by the join

	pskSecret, special, err := welcomePSKs(s, gs.PSKs, cfg, succ)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := schedule.WelcomeSecret(s, gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	gi, err := decryptGroupInfo(s, w, welcomeSecret)
	if err != nil {
		return nil, err
	}
	gc := gi.GroupContext
	if gc.CipherSuite != kp.CipherSuite {
		return nil, fmt.Errorf("%w: group suite %v, key package suite %v", ErrInvalidWelcome, gc.CipherSuite, kp.CipherSuite)
	}
	if gc.Version != tree.ProtocolVersionMLS10 {
		return nil, ErrUnsupportedVersion
	}

	t, err := verifiedTree(s, gi, ratchetTree, cfg, ErrInvalidWelcome)
	if err != nil {
		return nil, err
	}
	myLeaf, ok := findLeaf(t, &kp.LeafNode)
	if !ok {
		return nil, fmt.Errorf("%w: our key package's leaf is not in the tree", ErrInvalidWelcome)
	}

	g := &Group{cfg: cfg, suite: s, signer: bundle.Signer, tree: t, myLeaf: myLeaf,
		keys: tree.PrivateKeys{myLeaf.Node(): bundle.Private.EncryptionKey}}
	if err := g.setContext(gc); err != nil {
		return nil, err
	}
	if gs.PathSecret != nil {
		start := tree.CommonAncestor(myLeaf.Node(), gi.Signer.Node())
		pathKeys, _, err := t.DerivePathKeys(s, start, gs.PathSecret)
		if err != nil {
			return nil, fmt.Errorf("%w: path secret: %w", ErrInvalidWelcome, err)
		}
		for x, k := range pathKeys {
			g.keys[x] = k
		}
	}
	// The private keys match their nodes: the leaf's is the KeyPackage's own
	// (the leaf is byte-identical to it, findLeaf) and DerivePathKeys checked
	// every derived public key against the tree (§12.4.3.1 MUST).
	if err := succ.check(&gc, t); err != nil {
		return nil, err
	}
	if special > 0 && gc.Epoch != 1 {
		return nil, fmt.Errorf("%w: a reinit/branch welcome must start at epoch 1", ErrInvalidWelcome)
	}
	if err := g.setUpEpoch(epochInput{joinerSecret: gs.JoinerSecret, pskSecret: pskSecret,
		confirmationTag: gi.ConfirmationTag}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	return &Joined{Group: g, KeyPackageRef: ref, GroupInfo: gi}, nil
}

// verifiedTree returns the ratchet tree of the group gi describes —
// ratchetTree when it travels out of band, else gi's ratchet_tree extension
// — once gi's signature verifies with its signer's leaf and the tree is
// valid for gi (§12.4.3.1: tree hash, parent hashes, unmerged leaves,
// unique keys, every leaf valid in the GroupContext). Errors wrap bad
// (ErrInvalidWelcome or ErrInvalidGroupInfo, for the caller).
func verifiedTree(s *suite.Suite, gi *GroupInfo, ratchetTree tree.RatchetTreeNodes, cfg Config, bad error) (*tree.Tree, error) {
	gc := &gi.GroupContext
	treeGiven := ratchetTree != nil
	if ratchetTree == nil {
		ext := gi.Extensions.Find(tree.ExtensionTypeRatchetTree)
		if ext == nil {
			return nil, fmt.Errorf("%w: no ratchet tree given and none in the GroupInfo", bad)
		}
		if err := wire.Unmarshal(ext.ExtensionData, &ratchetTree); err != nil {
			return nil, fmt.Errorf("%w: ratchet_tree extension: %w", bad, err)
		}
	}
	t, err := tree.New(ratchetTree)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", bad, err)
	}
	signerKey, err := leafSignatureKey(t, gi.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: GroupInfo signer: %w", ErrInvalidGroupInfo, err)
	}
	if err := VerifyGroupInfo(s, gi, signerKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	// Its extensions and the GroupContext's, once the signature says who
	// wrote them (§12.4.3.1, §13).
	if err := validateGroupInfo(s, gi, cfg.Credentials, treeGiven); err != nil {
		if errors.Is(err, bad) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", bad, err)
	}
	if err := t.Validate(s, gc.GroupID, gc.TreeHash); err != nil {
		return nil, fmt.Errorf("%w: ratchet tree: %w", bad, err)
	}
	if err := ValidateTreeLeaves(s, t, ValidateOptions{GroupContext: gc, Credentials: cfg.Credentials, MaxLifetime: cfg.MaxLeafLifetime}); err != nil {
		return nil, fmt.Errorf("%w: ratchet tree: %w", bad, err)
	}
	return t, nil
}

// findWelcomeKeyPackage finds the entry of a Welcome for one of our
// KeyPackages (§12.4.3.1).
func findWelcomeKeyPackage(w *Welcome, find KeyPackageFinder) (*KeyPackageBundle, KeyPackageRef, error) {
	var tried []string
	for _, egs := range w.Secrets {
		b, err := find(egs.NewMember)
		if errors.Is(err, ErrKeyPackageNotFound) {
			tried = append(tried, hex.EncodeToString(egs.NewMember))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return b, egs.NewMember, nil
	}
	return nil, nil, fmt.Errorf("%w: welcome is for key package refs [%s], none of them ours", ErrNoMatchingKeyPackage, strings.Join(tried, ", "))
}

// welcomePSKs looks up a Welcome's PSKs (§8.4, §12.4.3.1): all must be
// available, at most one of reinit/branch usage (special counts them).
func welcomePSKs(s *suite.Suite, ids []schedule.PreSharedKeyID, cfg Config, succ *successorJoin) (pskSecret []byte, special int, err error) {
	psks := make([]schedule.PSK, 0, len(ids))
	for i := range ids {
		id := &ids[i]
		if id.Type == schedule.PSKTypeResumption && id.Usage != schedule.UsageApplication {
			special++
		}
		sec, err := succ.psk(id, cfg)
		if err != nil {
			return nil, 0, err
		}
		psks = append(psks, schedule.PSK{ID: *id, Secret: sec})
	}
	if special > 1 {
		return nil, 0, fmt.Errorf("%w: several reinit/branch PSKs", ErrInvalidWelcome)
	}
	if pskSecret, err = schedule.PSKSecret(s, psks); err != nil {
		return nil, 0, err
	}
	return pskSecret, special, nil
}
