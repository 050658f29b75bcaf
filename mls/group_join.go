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
func JoinFromWelcome(w *Welcome, ratchetTree tree.RatchetTreeNodes, find KeyPackageFinder, cfg Config) (*Joined, error) {
	s, err := suite.New(w.CipherSuite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	// Find the entry for one of our KeyPackages.
	var (
		bundle *KeyPackageBundle
		ref    KeyPackageRef
		tried  []string
	)
	for _, egs := range w.Secrets {
		b, err := find(egs.NewMember)
		if errors.Is(err, ErrKeyPackageNotFound) {
			tried = append(tried, hex.EncodeToString(egs.NewMember))
			continue
		}
		if err != nil {
			return nil, err
		}
		bundle, ref = b, egs.NewMember
		break
	}
	if bundle == nil {
		return nil, fmt.Errorf("%w: welcome is for key package refs [%s], none of them ours", ErrNoMatchingKeyPackage, strings.Join(tried, ", "))
	}
	kp := bundle.KeyPackage
	if kp.CipherSuite != w.CipherSuite {
		return nil, fmt.Errorf("%w: welcome suite %v, key package suite %v", ErrInvalidWelcome, w.CipherSuite, kp.CipherSuite)
	}
	gs, err := DecryptGroupSecrets(s, w, ref, bundle.Private.InitKey)
	if err != nil {
		return nil, err
	}

	// PSKs (§8.4): all must be available; at most one reinit/branch.
	var psks []schedule.PSK
	special := 0
	for i := range gs.PSKs {
		id := &gs.PSKs[i]
		if id.Type == schedule.PSKTypeResumption && id.Usage != schedule.UsageApplication {
			special++
		}
		if cfg.PSKs == nil {
			return nil, fmt.Errorf("%w: welcome needs a PSK and none are configured", ErrMissingPSK)
		}
		sec, err := cfg.PSKs(id)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMissingPSK, err)
		}
		psks = append(psks, schedule.PSK{ID: *id, Secret: sec})
	}
	if special > 1 {
		return nil, fmt.Errorf("%w: several reinit/branch PSKs", ErrInvalidWelcome)
	}
	pskSecret, err := schedule.PSKSecret(s, psks)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := schedule.WelcomeSecret(s, gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	gi, err := DecryptGroupInfo(s, w, welcomeSecret)
	if err != nil {
		return nil, err
	}
	gc := gi.GroupContext
	if gc.CipherSuite != kp.CipherSuite {
		return nil, fmt.Errorf("%w: group suite %v, key package suite %v", ErrInvalidWelcome, gc.CipherSuite, kp.CipherSuite)
	}
	if gc.Version != ProtocolVersionMLS10 {
		return nil, ErrUnsupportedVersion
	}

	// The ratchet tree: out of band or from the extension.
	treeGiven := ratchetTree != nil
	if ratchetTree == nil {
		ext := gi.Extensions.Find(tree.ExtensionTypeRatchetTree)
		if ext == nil {
			return nil, fmt.Errorf("%w: no ratchet tree given and none in the GroupInfo", ErrInvalidWelcome)
		}
		if err := wire.Unmarshal(ext.ExtensionData, &ratchetTree); err != nil {
			return nil, fmt.Errorf("%w: ratchet_tree extension: %w", ErrInvalidWelcome, err)
		}
	}
	t, err := tree.NewTree(ratchetTree)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	signerKey, err := leafSignatureKey(t, gi.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: GroupInfo signer: %w", ErrInvalidGroupInfo, err)
	}
	if err := VerifyGroupInfo(s, gi, signerKey); err != nil {
		return nil, err
	}
	if err := validateGroupInfo(s, gi, cfg.Credentials, treeGiven); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	if err := t.Validate(s, gc.GroupID, gc.TreeHash); err != nil {
		return nil, fmt.Errorf("%w: ratchet tree: %w", ErrInvalidWelcome, err)
	}
	if err := ValidateTreeLeaves(s, t, ValidateOptions{GroupContext: &gc, Credentials: cfg.Credentials, MaxLifetime: cfg.MaxLeafLifetime}); err != nil {
		return nil, fmt.Errorf("%w: ratchet tree: %w", ErrInvalidWelcome, err)
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
	if g.secrets, err = schedule.Derive(s, gs.JoinerSecret, pskSecret, g.ctxBytes); err != nil {
		return nil, err
	}
	g.secrets.ForgetJoiner()
	if err := VerifyConfirmationTag(s, gi.ConfirmationTag, g.secrets.ConfirmationKey, gc.ConfirmedTranscriptHash); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	g.confirmationTag = gi.ConfirmationTag
	if g.interim, err = NextInterimTranscriptHash(s, gc.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		return nil, err
	}
	if g.secretTree, err = schedule.NewSecretTree(s, g.secrets.EncryptionSecret, t.NumLeaves(), cfg.SecretTree); err != nil {
		return nil, err
	}
	g.secrets.ForgetEncryptionSecret() // §9.2: the tree now holds what is needed
	if special > 0 && gc.Epoch != 1 {
		return nil, fmt.Errorf("%w: a reinit/branch welcome must start at epoch 1", ErrInvalidWelcome)
	}
	g.resumption = map[uint64][]byte{gc.Epoch: g.secrets.ResumptionPSK}
	return &Joined{Group: g, KeyPackageRef: ref, GroupInfo: gi}, nil
}
