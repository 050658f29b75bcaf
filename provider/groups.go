package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
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
	return p.loadBlobs(ctx, p.st, groupID)
}

func (p *Provider) loadBlobs(ctx context.Context, rd store.Reader, groupID []byte) (*mls.Group, error) {
	rec, err := rd.Group(ctx, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %x", ErrGroupNotFound, groupID)
	}
	if err != nil {
		return nil, err
	}
	ratchet, err := rd.GroupBlob(ctx, groupID, ratchetBlob)
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
	g, err := mls.CreateGroup(p.suite, p.signer, groupID, mls.LeafOptions{Credential: p.cred, Capabilities: p.caps}, extensions, p.cfg)
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

// Encrypt protects application data for the group. The ratchet position
// that covers the message is stored before the ciphertext is returned, so
// no generation is ever used twice, even across a crash. With the engine's
// SendReservation (DefaultSendReservation unless set), one synced write
// covers a block of sends: after a crash the rest of the block is skipped.
func (p *Provider) Encrypt(ctx context.Context, groupID, data, authenticatedData []byte) (*mls.MLSMessage, error) {
	var out *mls.MLSMessage
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		m, err := s.g.Encrypt(data, authenticatedData)
		if err != nil {
			return err
		}
		// The saved ratchet stands SendReservation generations ahead; only
		// when this message used the last reserved one must it move on.
		if s.g.SendNeedsSave() {
			if err := p.saveRatchets(ctx, s.g); err != nil {
				s.g = nil // the generation is burnt in memory, not on disk: reload
				return err
			}
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
		if res, err := p.mergeEchoedCommit(ctx, s, m); res != nil || err != nil {
			out = res
			return err
		}
		res, err := s.g.Process(m)
		if err != nil {
			return err
		}
		switch {
		case res.State == s.g:
			err = p.saveRatchets(ctx, s.g)
		case res.State.Epoch() != s.g.Epoch():
			// Another member's commit won: our pending commit, if any,
			// can never be merged.
			err = p.st.Update(ctx, func(tx store.Tx) error { return p.putGroupDropPending(ctx, tx, res.State) })
		default:
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
		pend, err := encodePending(res)
		if err != nil {
			return err
		}
		rs, err := s.g.MarshalRatchetState()
		if err != nil {
			return err
		}
		err = p.st.Update(ctx, func(tx store.Tx) error {
			if err := tx.PutGroupBlob(ctx, groupID, ratchetBlob, rs); err != nil {
				return err
			}
			return tx.PutGroupBlob(ctx, groupID, pendingBlob, pend)
		})
		if err != nil {
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
		if err := p.st.Update(ctx, func(tx store.Tx) error { return p.putGroupDropPending(ctx, tx, next) }); err != nil {
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

// --- durable pending commits ---
//
// A commit goes out before it is merged (the delivery service must accept
// it first). If the process dies after the DS accepted it but before
// MergeCommit, the group has moved to the next epoch and only the pending
// commit's state can follow it: the engine cannot process its own commit
// (mls.ErrOwnCommit), and its own handshake key is already consumed. So
// Commit stores the pending commit (its message and the next epoch's
// state) in the same transaction as the advanced ratchet; MergeCommit, or
// the DS handing the commit back to Process, adopts it; another member's
// commit discards it.

// pendingBlob is the per-group blob key of the stored pending commit.
var pendingBlob = []byte("pending-commit")

// pendingRecord is the stored form of a pending commit.
type pendingRecord struct {
	Commit  []byte // the MLSMessage as sent
	Welcome []byte // the Welcome (bare, not an MLSMessage), or empty
	Epoch   []byte // next epoch: MarshalEpochState
	Ratchet []byte // next epoch: MarshalRatchetState
}

func (r *pendingRecord) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(r.Commit)
	b.AddOpaque(r.Welcome)
	b.AddOpaque(r.Epoch)
	b.AddOpaque(r.Ratchet)
}

func (r *pendingRecord) UnmarshalMLS(rd *wire.Reader) {
	r.Commit = rd.OpaqueCopy()
	r.Welcome = rd.OpaqueCopy()
	r.Epoch = rd.OpaqueCopy()
	r.Ratchet = rd.OpaqueCopy()
}

func encodePending(res *mls.CommitResult) ([]byte, error) {
	var r pendingRecord
	var err error
	if r.Commit, err = wire.Marshal(res.Commit); err != nil {
		return nil, err
	}
	if res.Welcome != nil {
		if r.Welcome, err = wire.Marshal(res.Welcome); err != nil {
			return nil, err
		}
	}
	if r.Epoch, err = res.State.MarshalEpochState(); err != nil {
		return nil, err
	}
	if r.Ratchet, err = res.State.MarshalRatchetState(); err != nil {
		return nil, err
	}
	return wire.Marshal(&r)
}

// storedPending reads the group's stored pending commit (nil if none).
func (p *Provider) storedPending(ctx context.Context, groupID []byte) (*pendingRecord, error) {
	b, err := p.st.GroupBlob(ctx, groupID, pendingBlob)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r pendingRecord
	if err := wire.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("provider: stored pending commit of group %x: %w", groupID, err)
	}
	return &r, nil
}

// putGroupDropPending stores g and deletes the group's pending commit.
func (p *Provider) putGroupDropPending(ctx context.Context, tx store.Tx, g *mls.Group) error {
	if err := p.putGroup(ctx, tx, g); err != nil {
		return err
	}
	if err := tx.DeleteGroupBlob(ctx, g.GroupID(), pendingBlob); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// mergeEchoedCommit merges the stored pending commit when m is that very
// commit handed back by the delivery service (after a restart lost the
// in-memory PendingCommit). It returns nil, nil when m is something else.
func (p *Provider) mergeEchoedCommit(ctx context.Context, s *groupSlot, m *mls.MLSMessage) (*mls.Processed, error) {
	if m.PublicMessage == nil && m.PrivateMessage == nil {
		return nil, nil
	}
	pend, err := p.storedPending(ctx, s.g.GroupID())
	if err != nil || pend == nil {
		return nil, err
	}
	mb, err := wire.Marshal(m)
	if err != nil || !bytes.Equal(mb, pend.Commit) {
		return nil, nil
	}
	next, err := mls.LoadGroup(pend.Epoch, pend.Ratchet, p.signer, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("provider: stored pending commit of group %x: %w", s.g.GroupID(), err)
	}
	if next.Epoch() != s.g.Epoch()+1 {
		return nil, fmt.Errorf("%w: own commit for epoch %d, group now in epoch %d", mls.ErrWrongEpoch, next.Epoch()-1, s.g.Epoch())
	}
	if err := p.st.Update(ctx, func(tx store.Tx) error { return p.putGroupDropPending(ctx, tx, next) }); err != nil {
		s.g = nil
		return nil, err
	}
	prev := s.g
	s.g = next
	res := &mls.Processed{ContentType: mls.ContentTypeCommit, Epoch: prev.Epoch(),
		Sender: mls.MemberSender(prev.OwnLeafIndex()), State: next}
	if me, ok := prev.Member(prev.OwnLeafIndex()); ok {
		c := me.Credential
		res.Credential = &c
	}
	return res, nil
}

// PendingCommit returns the group's stored pending commit (nil if there is
// none): after a restart, to send it again or merge it once the delivery
// service has accepted it. Result holds Commit, Welcome, RatchetTree and
// State (not GroupInfo or Added).
func (p *Provider) PendingCommit(ctx context.Context, groupID []byte) (*PendingCommit, error) {
	var out *PendingCommit
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		pend, err := p.storedPending(ctx, groupID)
		if err != nil || pend == nil {
			return err
		}
		next, err := mls.LoadGroup(pend.Epoch, pend.Ratchet, p.signer, p.cfg)
		if err != nil {
			return fmt.Errorf("provider: stored pending commit of group %x: %w", groupID, err)
		}
		cm, err := mls.UnmarshalMLSMessage(pend.Commit)
		if err != nil {
			return err
		}
		res := &mls.CommitResult{Commit: cm, RatchetTree: next.RatchetTree(), State: next}
		if len(pend.Welcome) > 0 {
			res.Welcome = new(mls.Welcome)
			if err := wire.Unmarshal(pend.Welcome, res.Welcome); err != nil {
				return err
			}
		}
		out = &PendingCommit{GroupID: groupID, Result: res}
		return nil
	})
	return out, err
}
