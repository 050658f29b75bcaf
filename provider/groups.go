package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/store"
)

// Group operations. Each takes the group's lock, works on the cached state
// (loaded from the store on first use), writes the new state to the store,
// and only then adopts it and returns. If the write fails, the cached state
// is dropped so the next operation reloads what the store holds.

func (p *Provider) slot(groupID []byte) *groupSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.groups[string(groupID)]
	if !ok {
		s = &groupSlot{}
		p.groups[string(groupID)] = s
	}
	return s
}

// withGroup runs fn on the group under its lock.
func (p *Provider) withGroup(ctx context.Context, groupID []byte, fn func(s *groupSlot) error) error {
	s := p.slot(groupID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g == nil {
		g, err := p.load(ctx, groupID)
		if err != nil {
			return err
		}
		s.g = g
	}
	return fn(s)
}

func (p *Provider) load(ctx context.Context, groupID []byte) (*mls.Group, error) {
	rec, err := p.st.Group(ctx, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %x", ErrGroupNotFound, groupID)
	}
	if err != nil {
		return nil, err
	}
	ratchet, err := p.st.GroupBlob(ctx, groupID, ratchetBlob)
	if err != nil {
		return nil, fmt.Errorf("provider: load ratchets of group %x: %w", groupID, err)
	}
	return mls.LoadGroup(rec.State, ratchet, p.signer, p.cfg)
}

// putGroup writes both state blobs of g in tx.
func (p *Provider) putGroup(ctx context.Context, tx store.Tx, g *mls.Group) error {
	es, err := g.MarshalEpochState()
	if err != nil {
		return err
	}
	rs, err := g.MarshalRatchetState()
	if err != nil {
		return err
	}
	if err := tx.PutGroup(ctx, store.Group{ID: g.GroupID(), Epoch: g.Epoch(), State: es, UpdatedAt: p.now()}); err != nil {
		return err
	}
	return tx.PutGroupBlob(ctx, g.GroupID(), ratchetBlob, rs)
}

// saveRatchets writes only the ratchet blob (after a send or a received
// application message).
func (p *Provider) saveRatchets(ctx context.Context, g *mls.Group) error {
	rs, err := g.MarshalRatchetState()
	if err != nil {
		return err
	}
	return p.st.Update(ctx, func(tx store.Tx) error { return tx.PutGroupBlob(ctx, g.GroupID(), ratchetBlob, rs) })
}

// CreateGroup creates a one-member group and stores it. groupID nil picks a
// random one.
func (p *Provider) CreateGroup(ctx context.Context, groupID []byte, extensions tree.Extensions) ([]byte, error) {
	g, err := mls.CreateGroup(p.suite, p.signer, groupID, mls.LeafOptions{Credential: p.cred}, extensions, p.cfg)
	if err != nil {
		return nil, err
	}
	s := p.slot(g.GroupID())
	s.mu.Lock()
	defer s.mu.Unlock()
	err = p.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Group(ctx, g.GroupID()); err == nil {
			return fmt.Errorf("%w: %x", ErrGroupExists, g.GroupID())
		}
		return p.putGroup(ctx, tx, g)
	})
	if err != nil {
		return nil, err
	}
	s.g = g
	return g.GroupID(), nil
}

// Join joins the group of a Welcome with one of this identity's key
// packages, found in the store by its reference. In one transaction it
// stores the group and consumes the key package (a last-resort one stays);
// if the join fails nothing changes and the key package stays usable.
func (p *Provider) Join(ctx context.Context, w *mls.Welcome, ratchetTree tree.RatchetTreeNodes) (*mls.Joined, error) {
	joined, err := mls.JoinFromWelcome(w, ratchetTree, p.findKeyPackage(ctx), p.cfg)
	if err != nil {
		return nil, err
	}
	g := joined.Group
	s := p.slot(g.GroupID())
	s.mu.Lock()
	defer s.mu.Unlock()
	err = p.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Group(ctx, g.GroupID()); err == nil {
			return fmt.Errorf("%w: %x", ErrGroupExists, g.GroupID())
		}
		if err := p.putGroup(ctx, tx, g); err != nil {
			return err
		}
		return tx.ConsumeKeyPackage(ctx, joined.KeyPackageRef)
	})
	if err != nil {
		return nil, err
	}
	s.g = g
	return joined, nil
}

// Encrypt protects application data for the group. The advanced ratchet is
// stored before the ciphertext is returned, so no generation is ever used
// twice, even across a crash.
func (p *Provider) Encrypt(ctx context.Context, groupID, data, authenticatedData []byte) (*mls.MLSMessage, error) {
	var out *mls.MLSMessage
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		m, err := s.g.Encrypt(data, authenticatedData)
		if err != nil {
			return err
		}
		if err := p.saveRatchets(ctx, s.g); err != nil {
			s.g = nil // the generation is burnt in memory, not on disk: reload
			return err
		}
		out = m
		return nil
	})
	return out, err
}

// Process handles one incoming message for the group and stores the result
// before returning it. A rejected message changes nothing.
func (p *Provider) Process(ctx context.Context, groupID []byte, m *mls.MLSMessage) (*mls.Processed, error) {
	var out *mls.Processed
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		res, err := s.g.Process(m)
		if err != nil {
			return err
		}
		if res.State == s.g {
			err = p.saveRatchets(ctx, s.g)
		} else {
			err = p.st.Update(ctx, func(tx store.Tx) error { return p.putGroup(ctx, tx, res.State) })
		}
		if err != nil {
			s.g = nil
			return err
		}
		s.g = res.State
		out = res
		return nil
	})
	return out, err
}

// PendingCommit is a commit created but not yet merged: the caller sends
// res.Commit (and the Welcome) and, once the delivery service accepts it,
// calls MergeCommit. Until then the group stays in the old epoch.
type PendingCommit struct {
	GroupID []byte
	Result  *mls.CommitResult
}

// Commit creates a commit. The group's handshake ratchet, which the commit
// may have advanced, is stored before the commit is returned; the new
// epoch is stored only by MergeCommit.
func (p *Provider) Commit(ctx context.Context, groupID []byte, o mls.CommitOptions) (*PendingCommit, error) {
	var out *PendingCommit
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		res, err := s.g.Commit(o)
		if err != nil {
			return err
		}
		if err := p.saveRatchets(ctx, s.g); err != nil {
			s.g = nil
			return err
		}
		out = &PendingCommit{GroupID: groupID, Result: res}
		return nil
	})
	return out, err
}

// MergeCommit stores and adopts the epoch a pending commit starts. It fails
// if the group moved on meanwhile (another commit was processed first).
func (p *Provider) MergeCommit(ctx context.Context, pc *PendingCommit) error {
	return p.withGroup(ctx, pc.GroupID, func(s *groupSlot) error {
		next := pc.Result.State
		if next.Epoch() != s.g.Epoch()+1 {
			return fmt.Errorf("%w: commit for epoch %d, group now in epoch %d", mls.ErrWrongEpoch, next.Epoch()-1, s.g.Epoch())
		}
		if err := p.st.Update(ctx, func(tx store.Tx) error { return p.putGroup(ctx, tx, next) }); err != nil {
			s.g = nil
			return err
		}
		s.g = next
		return nil
	})
}

// CommitNow creates a commit and merges it at once (no delivery service to
// wait for).
func (p *Provider) CommitNow(ctx context.Context, groupID []byte, o mls.CommitOptions) (*mls.CommitResult, error) {
	pc, err := p.Commit(ctx, groupID, o)
	if err != nil {
		return nil, err
	}
	if err := p.MergeCommit(ctx, pc); err != nil {
		return nil, err
	}
	return pc.Result, nil
}

// Propose sends a proposal and stores the group with it cached.
func (p *Provider) Propose(ctx context.Context, groupID []byte, prop *mls.Proposal) (*mls.MLSMessage, error) {
	return p.propose(ctx, groupID, func(g *mls.Group) (*mls.MLSMessage, *mls.Group, error) { return g.Propose(prop) })
}

// ProposeUpdate proposes a fresh leaf key for this member.
func (p *Provider) ProposeUpdate(ctx context.Context, groupID []byte) (*mls.MLSMessage, error) {
	return p.propose(ctx, groupID, func(g *mls.Group) (*mls.MLSMessage, *mls.Group, error) { return g.ProposeUpdate() })
}

func (p *Provider) propose(ctx context.Context, groupID []byte, f func(*mls.Group) (*mls.MLSMessage, *mls.Group, error)) (*mls.MLSMessage, error) {
	var out *mls.MLSMessage
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		m, next, err := f(s.g)
		if err != nil {
			return err
		}
		if err := p.st.Update(ctx, func(tx store.Tx) error { return p.putGroup(ctx, tx, next) }); err != nil {
			s.g = nil
			return err
		}
		s.g, out = next, m
		return nil
	})
	return out, err
}

// View runs fn with the group's current state, under its lock. fn must not
// keep g or call other methods of the provider on the same group.
func (p *Provider) View(ctx context.Context, groupID []byte, fn func(g *mls.Group) error) error {
	return p.withGroup(ctx, groupID, func(s *groupSlot) error { return fn(s.g) })
}

// Groups lists the ids of the stored groups.
func (p *Provider) Groups(ctx context.Context) ([][]byte, error) {
	sums, err := p.st.Groups(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([][]byte, len(sums))
	for i, s := range sums {
		ids[i] = s.ID
	}
	return ids, nil
}

// ForgetGroup deletes the group's state (after leaving or being removed).
func (p *Provider) ForgetGroup(ctx context.Context, groupID []byte) error {
	s := p.slot(groupID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteGroup(ctx, groupID) }); err != nil {
		return err
	}
	s.g = nil
	return nil
}
