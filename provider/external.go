package provider

import (
	"context"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/store"
)

// ExternalJoin is a join by external commit (RFC 9420 §12.4.3.2) made but
// not adopted yet: send Commit to the group and, once the delivery service
// has accepted it, MergeExternalJoin. Until then nothing is stored.
type ExternalJoin struct {
	GroupID []byte
	Commit  *mls.Message
	State   *mls.Group
}

// JoinByExternalCommit joins, or rejoins (resynchronizes, when the tree
// holds a leaf with this device's signature key), the group gi describes,
// with a leaf carrying this device's certificate and display name. The
// tree is checked as for a Welcome (Join). ratchetTree nil: the tree is in
// gi's ratchet_tree extension.
func (p *Provider) JoinByExternalCommit(ctx context.Context, gi *mls.GroupInfo, ratchetTree tree.RatchetTreeNodes) (*ExternalJoin, error) {
	leaf, err := p.leafOptions()
	if err != nil {
		return nil, err
	}
	msg, g, err := mls.JoinByExternalCommit(p.suite, p.signer, gi, ratchetTree, leaf, p.cfg)
	if err != nil {
		return nil, err
	}
	if err := checkGroupDevices(g); err != nil {
		return nil, fmt.Errorf("%w: %w", mls.ErrInvalidGroupInfo, err)
	}
	return &ExternalJoin{GroupID: g.GroupID(), Commit: msg, State: g}, nil
}

// MergeExternalJoin stores and adopts the group an external join leads to,
// replacing this device's earlier state of it (a resync) and any pending
// commit of that state.
func (p *Provider) MergeExternalJoin(ctx context.Context, ej *ExternalJoin) error {
	s := p.slot(ej.GroupID)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := p.st.Update(ctx, func(tx store.Tx) error { return p.putGroupDropPending(ctx, tx, ej.State) })
	if err != nil {
		s.g = nil
		return err
	}
	s.g = ej.State
	return nil
}
