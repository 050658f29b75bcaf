package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/identity"
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

// putRatchets writes only the ratchet blob of g in tx (after a send or a
// received application message).
func (p *Provider) putRatchets(ctx context.Context, tx store.Tx, g *mls.Group) error {
	rs, err := g.MarshalRatchetState()
	if err != nil {
		return err
	}
	return tx.PutGroupBlob(ctx, g.GroupID(), ratchetBlob, rs)
}

// CreateGroup creates a one-member group and stores it. groupID nil picks a
// random one.
func (p *Provider) CreateGroup(ctx context.Context, groupID []byte, extensions tree.Extensions) ([]byte, error) {
	leaf, err := p.leafOptions()
	if err != nil {
		return nil, err
	}
	g, err := mls.CreateGroup(p.suite, p.signer, groupID, leaf, extensions, p.cfg)
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
//
// Every leaf of the group's tree is checked by the identity validator
// (certificates, revocations; unverified leaves only where
// Options.AllowUnverified admits them) and no two may hold the same
// (user, device) (ErrDuplicateDevice).
func (p *Provider) Join(ctx context.Context, w *mls.Welcome, ratchetTree tree.RatchetTreeNodes) (*mls.Joined, error) {
	if _, err := p.current(); err != nil {
		return nil, err
	}
	joined, err := mls.JoinFromWelcome(w, ratchetTree, p.findKeyPackage(ctx), p.cfg)
	if err != nil {
		return nil, err
	}
	g := joined.Group
	if err := checkGroupDevices(g); err != nil {
		return nil, fmt.Errorf("%w: %w", mls.ErrInvalidWelcome, err)
	}
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
func (p *Provider) Encrypt(ctx context.Context, groupID, data, authenticatedData []byte) (*mls.Message, error) {
	return p.EncryptWith(ctx, groupID, data, authenticatedData, nil)
}

// EncryptWith is Encrypt with extra writes: fn (when not nil) gets the
// message and runs in a transaction that is committed before the message
// is returned — the one that stores the advanced ratchet when this send
// needs it saved, else one of its own (nothing of the group then needs
// storing: the saved ratchet already reserves the generation used). If fn
// fails, nothing is stored and no message is returned (so a generation it
// used may be used again: its ciphertext never left). fn must only use tx
// and must not call the provider.
func (p *Provider) EncryptWith(ctx context.Context, groupID, data, authenticatedData []byte, fn func(tx store.Tx, m *mls.Message) error) (*mls.Message, error) {
	var each func(store.Tx, int, *mls.Message) error
	if fn != nil {
		each = func(tx store.Tx, _ int, m *mls.Message) error { return fn(tx, m) }
	}
	ms, err := p.EncryptAllWith(ctx, groupID, [][]byte{data}, authenticatedData, each)
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// EncryptAllWith is EncryptWith for several messages of the group at
// once, encrypted in the order of datas: fn (when not nil) runs for each
// message in that order, all in one transaction, which also stores the
// ratchet when any of the sends needs it saved; the messages are returned
// once it is committed. If fn fails for any of them, or the transaction
// does, nothing is stored and no message is returned.
func (p *Provider) EncryptAllWith(ctx context.Context, groupID []byte, datas [][]byte, authenticatedData []byte, fn func(tx store.Tx, i int, m *mls.Message) error) ([]*mls.Message, error) {
	var out []*mls.Message
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		ms := make([]*mls.Message, len(datas))
		for i, data := range datas {
			m, err := s.g.Encrypt(data, authenticatedData)
			if err != nil {
				// The generations of the ones before are burnt in memory;
				// SendNeedsSave stays set until a save, so none of them
				// can leave uncovered later.
				return err
			}
			ms[i] = m
		}
		// The saved ratchet stands SendReservation generations ahead; only
		// when one of these messages used the last reserved one must it
		// move on (SendNeedsSave holds until the state is saved).
		switch save := s.g.SendNeedsSave(); {
		case save || fn != nil:
			err := p.st.Update(ctx, func(tx store.Tx) error {
				if fn != nil {
					for i, m := range ms {
						if err := fn(tx, i, m); err != nil {
							return err
						}
					}
				}
				if save {
					return p.putRatchets(ctx, tx, s.g)
				}
				return nil
			})
			if err != nil {
				if save {
					s.g = nil // the generation is burnt in memory, not on disk: reload
				}
				return err
			}
		}
		out = ms
		return nil
	})
	return out, err
}

// Process handles one incoming message for the group and stores the result
// before returning it. A rejected message changes nothing.
func (p *Provider) Process(ctx context.Context, groupID []byte, m *mls.Message) (*mls.Processed, error) {
	return p.ProcessWith(ctx, groupID, m, nil)
}

// ProcessWith is Process with extra writes: fn (when not nil) runs inside
// the transaction that stores the state the message leads to, so what fn
// writes (the message in a history, say) and the consumed key are
// committed together or not at all. If fn fails, nothing is stored, the
// message counts as not processed (it can be processed again) and
// ProcessWith returns fn's error. fn must only use tx (and read res), must
// not keep res.State, and must not call the provider.
func (p *Provider) ProcessWith(ctx context.Context, groupID []byte, m *mls.Message, fn func(tx store.Tx, res *mls.Processed) error) (*mls.Processed, error) {
	var out *mls.Processed
	each := func(tx store.Tx, _ int, res *mls.Processed) error {
		out = res
		if fn != nil {
			return fn(tx, res)
		}
		return nil
	}
	n, err := p.ProcessBatch(ctx, groupID, []*mls.Message{m}, each)
	if n == 0 {
		return nil, err
	}
	return out, nil
}

// ProcessBatch processes msgs in order under the group's lock and stores
// the outcome once: one transaction holds the state after the last
// processed message and everything each wrote, so a batch costs one synced
// write however long it is. each (when not nil) is called in that
// transaction, in order, once per processed message with its index and
// result; the same rules as ProcessWith's fn apply.
//
// It returns n, how many messages were processed and stored (msgs[:n]),
// and when n < len(msgs) the error that stopped it at msgs[n]:
//   - msgs[n] was rejected (it changed nothing): msgs[:n] are stored, and
//     the caller may go on with msgs[n+1:];
//   - each failed on msgs[n]: msgs[:n] are stored (processed again, and
//     each called again for them, in a second transaction) and msgs[n]
//     counts as not processed;
//   - storing failed: n is 0 and nothing is stored.
//
// A commit may be anywhere in the batch: the messages after it are
// processed in the epoch it starts, and the state stored is the one after
// the last message.
func (p *Provider) ProcessBatch(ctx context.Context, groupID []byte, msgs []*mls.Message, each func(tx store.Tx, i int, res *mls.Processed) error) (int, error) {
	var n int
	err := p.withGroup(ctx, groupID, func(s *groupSlot) error {
		var err error
		var eachAt int
		n, eachAt, err = p.processBatch(ctx, s, msgs, each)
		if eachAt <= 0 {
			return err
		}
		// each refused msgs[eachAt] and nothing was stored: store the
		// messages before it on their own, from the stored state.
		eachErr := err
		if s.g, err = p.load(ctx, groupID); err != nil {
			return err
		}
		if n, _, err = p.processBatch(ctx, s, msgs[:eachAt], each); err != nil {
			return err
		}
		return eachErr
	})
	return n, err
}

// saveKind is what a processed message changed, in increasing order of
// what must be stored.
type saveKind uint8

const (
	saveRatchets saveKind = iota // application message: the ratchets
	saveGroup                    // proposal: the epoch state too
	saveNewEpoch                 // commit: the new epoch, and the pending commit is void
)

// processBatch is one attempt of ProcessBatch (s locked and loaded). It
// returns how many messages were processed and stored and the error that
// stopped it; eachAt is the index each failed on (then nothing is stored
// and s.g is dropped), or -1.
func (p *Provider) processBatch(ctx context.Context, s *groupSlot, msgs []*mls.Message, each func(tx store.Tx, i int, res *mls.Processed) error) (n, eachAt int, err error) {
	// The pending commit is read once: only this batch could change it,
	// and only by a commit, after which it is void.
	pend, err := p.slotPending(ctx, s)
	if err != nil {
		return 0, -1, err
	}
	cur, save := s.g, saveRatchets
	results := make([]*mls.Processed, 0, len(msgs))
	var stop error
	for _, m := range msgs {
		if save == saveNewEpoch {
			pend = nil
		}
		res, kind, err := p.processOne(cur, pend, m)
		if err != nil {
			stop = err
			break
		}
		results = append(results, res)
		cur, save = res.State, max(save, kind)
	}
	if len(results) == 0 {
		return 0, -1, stop // a rejected message changes nothing
	}
	eachAt = -1
	err = p.st.Update(ctx, func(tx store.Tx) error {
		if each != nil {
			for i, res := range results {
				if err := each(tx, i, res); err != nil {
					eachAt = i
					return err
				}
			}
		}
		switch save {
		case saveRatchets:
			return p.putRatchets(ctx, tx, cur)
		case saveGroup:
			return p.putGroup(ctx, tx, cur)
		default:
			// Another member's commit won: our pending commit, if any,
			// can never be merged.
			return p.putGroupDropPending(ctx, tx, cur)
		}
	})
	if err != nil {
		s.g = nil // an application message advanced it in place: reload
		return 0, eachAt, err
	}
	s.g = cur
	return len(results), -1, stop
}

// processOne processes m against g in memory and says what must be
// stored. pend is the group's stored pending commit (nil if none or void).
func (p *Provider) processOne(g *mls.Group, pend *pendingRecord, m *mls.Message) (*mls.Processed, saveKind, error) {
	if res, err := p.echoedCommit(g, pend, m); res != nil || err != nil {
		return res, saveNewEpoch, err
	}
	res, err := g.Process(m)
	switch {
	case err != nil:
		return nil, 0, err
	case res.State == g:
		return res, saveRatchets, nil
	case res.ContentType == mls.ContentTypeCommit:
		if err := checkGroupDevices(res.State); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", mls.ErrInvalidCommit, err)
		}
		return res, saveNewEpoch, nil
	case res.State.Epoch() != g.Epoch():
		return res, saveNewEpoch, nil
	default:
		return res, saveGroup, nil
	}
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
		if err := p.renewLeaf(s.g, &o); err != nil {
			return err
		}
		res, err := s.g.Commit(o)
		if err != nil {
			return err
		}
		if err := checkGroupDevices(res.State); err != nil {
			return fmt.Errorf("%w: %w", mls.ErrInvalidCommit, err)
		}
		pend, err := encodePending(res)
		if err != nil {
			return err
		}
		rs, err := s.g.MarshalRatchetState()
		if err != nil {
			return err
		}
		s.noPending = false // whether or not the write below lands
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

// renewLeaf has the commit o carry this device's current leaf extensions
// (a renewed certificate, a new display name) when its leaf in g holds
// others, unless o sets its own.
func (p *Provider) renewLeaf(g *mls.Group, o *mls.CommitOptions) error {
	if o.LeafExtensions != nil || o.ReInit != nil || o.ReInitRef != nil {
		return nil
	}
	me, err := p.current()
	if err != nil {
		return err
	}
	rt := g.RatchetTree()
	i := int(g.OwnLeafIndex()) * 2
	if i >= len(rt) || rt[i] == nil || rt[i].Leaf == nil {
		return nil
	}
	have := rt[i].Leaf.Extensions
	if !sameExtensions(have, me.leafExts) && identityExtensionsOnly(have) {
		o.LeafExtensions = slices.Clone(me.leafExts)
	}
	return nil
}

// identityExtensionsOnly reports whether a leaf's extensions are only the
// ones the provider puts there (so replacing them loses nothing).
func identityExtensionsOnly(es tree.Extensions) bool {
	for _, e := range es {
		if e.ExtensionType != identity.ExtensionTypeDeviceCertificate && e.ExtensionType != ExtensionTypeDisplayName {
			return false
		}
	}
	return true
}

func sameExtensions(a, b tree.Extensions) bool {
	return slices.EqualFunc(a, b, func(x, y tree.Extension) bool {
		return x.ExtensionType == y.ExtensionType && bytes.Equal(x.ExtensionData, y.ExtensionData)
	})
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
func (p *Provider) Propose(ctx context.Context, groupID []byte, prop *mls.Proposal) (*mls.Message, error) {
	return p.propose(ctx, groupID, func(g *mls.Group) (*mls.Message, *mls.Group, error) { return g.Propose(prop) })
}

// ProposeUpdate proposes a fresh leaf key for this member.
func (p *Provider) ProposeUpdate(ctx context.Context, groupID []byte) (*mls.Message, error) {
	return p.propose(ctx, groupID, func(g *mls.Group) (*mls.Message, *mls.Group, error) { return g.ProposeUpdate() })
}

func (p *Provider) propose(ctx context.Context, groupID []byte, f func(*mls.Group) (*mls.Message, *mls.Group, error)) (*mls.Message, error) {
	var out *mls.Message
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

// slotPending is storedPending for the group of s (s.mu held), without
// a read when the store is known to hold none.
func (p *Provider) slotPending(ctx context.Context, s *groupSlot) (*pendingRecord, error) {
	if s.noPending {
		return nil, nil
	}
	pend, err := p.storedPending(ctx, s.g.GroupID())
	if err == nil && pend == nil {
		s.noPending = true
	}
	return pend, err
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

// echoedCommit adopts the stored pending commit pend when m is that very
// commit handed back by the delivery service (after a restart lost the
// in-memory PendingCommit): the result's State is its epoch, to be stored
// like any commit's. It returns nil, nil when m is something else.
func (p *Provider) echoedCommit(g *mls.Group, pend *pendingRecord, m *mls.Message) (*mls.Processed, error) {
	if pend == nil || (m.PublicMessage == nil && m.PrivateMessage == nil) {
		return nil, nil
	}
	mb, err := wire.Marshal(m)
	if err != nil || !bytes.Equal(mb, pend.Commit) {
		return nil, nil
	}
	next, err := mls.LoadGroup(pend.Epoch, pend.Ratchet, p.signer, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("provider: stored pending commit of group %x: %w", g.GroupID(), err)
	}
	if next.Epoch() != g.Epoch()+1 {
		return nil, fmt.Errorf("%w: own commit for epoch %d, group now in epoch %d", mls.ErrWrongEpoch, next.Epoch()-1, g.Epoch())
	}
	res := &mls.Processed{ContentType: mls.ContentTypeCommit, Epoch: g.Epoch(),
		Sender: mls.MemberSender(g.OwnLeafIndex()), State: next}
	if me, ok := g.Member(g.OwnLeafIndex()); ok {
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
		cm, err := mls.UnmarshalMessage(pend.Commit)
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
