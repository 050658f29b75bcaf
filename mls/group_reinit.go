package mls

import (
	"bytes"
	"fmt"
	"slices"
)

// Reinitialization (RFC 9420 §11.2, §12.1.5).

// --- the old group ---

// checkNotFrozen refuses a proposal or commit received after a committed
// ReInit: the group waits for the new one (RFC 9420 §12.1.5), and its last
// commit stays the one that held the ReInit (§12.4.3.1).
func (g *Group) checkNotFrozen(ct ContentType) error {
	if g.reinit != nil && ct != ContentTypeApplication {
		return fmt.Errorf("%w: a %v after the committed ReInit", ErrReInitPending, ct)
	}
	return nil
}

// checkReInitRef checks that ref names a cached ReInit proposal
// (CommitOptions.ReInitRef).
func (g *Group) checkReInitRef(ref []byte) error {
	i := slices.IndexFunc(g.pending, func(pp *pendingProposal) bool { return bytes.Equal(pp.ref, ref) })
	if i < 0 {
		return fmt.Errorf("%w: %x", ErrUnknownProposal, ref)
	}
	if t := g.pending[i].proposal.ProposalType; t != ProposalTypeReInit {
		return fmt.Errorf("%w: ReInitRef names a %v proposal", ErrInvalidProposal, t)
	}
	return nil
}
