package mls

import (
	"fmt"
	"io"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// ExternalCommitOptions are the choices of an external commit beyond
// JoinByExternalCommit's defaults (RFC 9420 §12.2, §12.4.3.2).
type ExternalCommitOptions struct {
	// RemovePrior, when set, is the joiner's prior leaf, which the commit
	// removes: a resync under a new signature key. The new leaf must be an
	// acceptable successor of it (the same identity for basic credentials,
	// §12.2) and has fresh encryption keys. When nil, a leaf holding the
	// joiner's own signature key is removed, as JoinByExternalCommit does.
	RemovePrior *tree.LeafIndex
	// PSKs are injected with PreSharedKey proposals by value (§12.2 allows
	// them in an external commit); their secrets come from cfg.PSKs, and an
	// empty psk_nonce is filled in. A reinit or branch resumption PSK is
	// refused (§8.6: only in a new group's first commit).
	PSKs []schedule.PreSharedKeyID
}

// JoinByExternalCommitWith is JoinByExternalCommit with options: the prior
// leaf to remove (a resync) and PSKs to inject. Every member that processes
// the commit needs the PSKs too.
func JoinByExternalCommitWith(s *suite.Suite, signer *suite.Signer, gi *GroupInfo, ratchetTree tree.RatchetTreeNodes, leaf LeafOptions, cfg Config, o ExternalCommitOptions) (*Message, *Group, error) {
	tw := externalCommitTweaks{prior: o.RemovePrior}
	if len(o.PSKs) > 0 {
		ids, sec, err := externalCommitPSKs(s, o.PSKs, cfg)
		if err != nil {
			return nil, nil, err
		}
		tw.psks, tw.pskSecret = ids, sec
	}
	return joinByExternalCommit(s, signer, gi, ratchetTree, leaf, cfg, tw)
}

// externalCommitPSKs fills in the nonces of ids (a copy) and looks up and
// chains their secrets (§8.4).
func externalCommitPSKs(s *suite.Suite, in []schedule.PreSharedKeyID, cfg Config) ([]schedule.PreSharedKeyID, []byte, error) {
	if cfg.PSKs == nil {
		return nil, nil, fmt.Errorf("%w: no PSK source configured", ErrMissingPSK)
	}
	ids := make([]schedule.PreSharedKeyID, len(in))
	psks := make([]schedule.PSK, len(in))
	for i, id := range in {
		if isSuccessorPSK(&id) {
			return nil, nil, fmt.Errorf("%w: a %v PSK in an external commit", ErrInvalidProposal, id.Usage)
		}
		if len(id.Nonce) == 0 {
			id.Nonce = make([]byte, s.HashSize())
			if _, err := io.ReadFull(cfg.rand(), id.Nonce); err != nil {
				return nil, nil, err
			}
		}
		sec, err := cfg.PSKs(&id)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrMissingPSK, err)
		}
		ids[i], psks[i] = id, schedule.PSK{ID: id, Secret: sec}
	}
	sec, err := schedule.PSKSecret(s, psks)
	if err != nil {
		return nil, nil, err
	}
	return ids, sec, nil
}
