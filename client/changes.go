package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/wire"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// State changes through the outbox (issue 13.2). With a relay, an invite,
// removal, role change or self-update is stored as an intent (outbox item
// kind "change") before anything leaves, and delivered in the channel's
// outbox order by the one path of every state change: staged on the
// epoch the channel is in when it is delivered (a commit staged on an
// older epoch would be stale), posted, merged when accepted, the winner
// processed and the intent restaged on a conflict.
//
// Before a staged commit is posted, the intent record is rewritten with
// it (the commit, and the Welcome with its recipients): the Welcome is
// durable before the commit leaves (DESIGN invariant 3). After a crash
// or a lost answer, the intent is resolved from the group: if the epoch
// the commit starts is the one the relay ordered (same confirmed
// transcript hash, RFC 9420 §8.2, which covers the commit's content), it
// was ours, and the record becomes the Welcome's outbox entry in one
// write; otherwise the intent is staged again. A Welcome of an accepted
// commit is never dropped by a crash, and never sent for a commit the
// relay did not order (RFC 9750 "Welcome Messages": only the Welcome of
// the commit that succeeded may reach the new members).
//
// An intent that cannot be carried out any more (the invitee is already a
// member, the target left, we lost the role that allowed it) ends as
// "failed" with the reason, in the change's status and in a delivery
// event; it is not retried.

const (
	itemChange = "change" // a state change (intent), see above

	recChange = "change" // a change's last status (Changes)

	opInvite = "invite"
	opRemove = "remove"
	opRole   = "role"
	opUpdate = "update"
)

// Change statuses.
const (
	ChangeQueued = "queued" // in the outbox
	ChangeSent   = "sent"   // the relay ordered the commit (or nothing was to commit)
	ChangeFailed = "failed" // impossible now; Error says why
)

// maxChangeStatuses bounds the change statuses kept for Changes.
const maxChangeStatuses = 256

// change is the intent of an outbox item of kind "change".
type change struct {
	Op          string       `json:"op"`
	UserID      string       `json:"user_id,omitempty"` // invitee, target of a removal or role change
	Role        channel.Role `json:"role,omitempty"`
	KeyPackages [][]byte     `json:"key_packages,omitempty"` // given, or claimed once (kept for a retry)
	LastResort  bool         `json:"last_resort,omitempty"`
	Staged      *staged      `json:"staged,omitempty"`
}

// staged is the commit of a change as last posted.
type staged struct {
	Epoch     uint64           `json:"epoch"` // the epoch it was posted in
	Commit    []byte           `json:"commit"`
	GroupInfo []byte           `json:"group_info,omitempty"`
	Confirmed []byte           `json:"confirmed"` // epoch+1's confirmed transcript hash
	Welcome   []byte           `json:"welcome,omitempty"`
	Tree      []byte           `json:"tree,omitempty"`
	Added     []channel.Member `json:"added,omitempty"`
	Removed   []channel.Member `json:"removed,omitempty"`
}

func (s *staged) outgoing(it *item) *channel.OutgoingCommit {
	return &channel.OutgoingCommit{ChannelID: it.ChannelID, GroupID: it.GroupID, Epoch: s.Epoch, Commit: s.Commit,
		Welcome: s.Welcome, RatchetTree: s.Tree, GroupInfo: s.GroupInfo, Added: s.Added, Removed: s.Removed}
}

// ChangeStatus is a state change's status (Changes, and delivery events).
type ChangeStatus struct {
	ID        string    `json:"id"`
	ChannelID string    `json:"channel_id"`
	Op        string    `json:"op"`
	UserID    string    `json:"user_id,omitempty"`
	Role      string    `json:"role,omitempty"`
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	Epoch     uint64    `json:"epoch,omitempty"` // the epoch the change made (sent)
	QueuedAt  time.Time `json:"queued_at"`
	DoneAt    time.Time `json:"done_at,omitzero"`
}

// changeWaiter is a caller waiting for its change's outcome.
type changeWaiter struct {
	done chan struct{}
	res  *CommitResult
	err  error
}

// errPermanent marks an error that ends a change as failed.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// changeWait bounds how long a state change call waits for the relay
// before it answers "queued".
const changeWait = 10 * time.Second

// submit stores a state change in the outbox and waits (bounded) for its
// outcome: the result when the relay ordered it, the error when it
// failed, or a "queued" result with the change's id.
func (c *Client) submit(ctx context.Context, channelID string, ch *change) (*CommitResult, error) {
	d, err := c.requireActive(ctx, channelID)
	if err != nil {
		return nil, err
	}
	if err := c.precheck(ctx, channelID, ch); err != nil {
		return nil, err
	}
	it := &item{ID: newID(), Kind: itemChange, ChannelID: channelID, GroupID: d.GroupID, Change: ch}
	w := &changeWaiter{done: make(chan struct{})}
	c.mu.Lock()
	c.waiters[it.ID] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, it.ID)
		c.mu.Unlock()
	}()
	// The status first: the outbox may finish the change before enqueue
	// returns, and its final status must not be overwritten.
	it.QueuedAt = time.Now().UTC()
	c.putChangeStatus(ctx, it, ChangeQueued, 0, nil)
	if err := c.enqueue(ctx, it); err != nil {
		_ = c.recs.DeleteRecord(ctx, recChange, it.ID)
		return nil, err
	}
	t := time.NewTimer(changeWait)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return w.res, w.err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		case <-tick.C:
			if c.reachable.Load() != 2 {
				continue
			}
		}
		select {
		case <-w.done:
			return w.res, w.err
		default:
		}
		// The relay is away (or slow): the change waits in the outbox.
		c.emit(EventDelivery, channelID, map[string]any{"kind": itemChange, "status": ChangeQueued, "change_id": it.ID, "op": ch.Op})
		return &CommitResult{Committed: true, Status: ChangeQueued, ID: it.ID}, nil
	}
}

// precheck refuses at once a change our role does not allow now (the
// engine checks again when the change is carried out, in the epoch it is
// staged on).
func (c *Client) precheck(ctx context.Context, channelID string, ch *change) error {
	mine, err := c.mgr.Role(ctx, channelID, c.mgr.Identity())
	if err != nil {
		return nil // no roles (or no group: the engine says so later)
	}
	need := []channel.Role{channel.RoleAdmin}
	switch {
	case ch.Op == opUpdate:
		return nil
	case ch.Op == opInvite && ch.Role == channel.RoleMember:
		need = append(need, channel.RoleMember)
	}
	for _, r := range need {
		if mine == r {
			return nil
		}
	}
	return fmt.Errorf("%w: %s as %s", channel.ErrPermission, ch.Op, RoleName(mine))
}

// deliverChange carries out a change (outbox goroutine). nil: done (a
// Welcome, if any, is then the item and was posted); a *permanentError
// or another refusal: failed; unreachable: retried with the backoff.
func (c *Client) deliverChange(ctx context.Context, it *item) error {
	err := c.deliverChange1(ctx, it)
	if it.Kind != itemChange {
		return err // now the Welcome of the accepted change: delivered as one
	}
	var re *relayclient.Error
	var ce *relayclient.CommitConflictError
	var ee *relayclient.EpochError
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, ErrRelayUnreachable), errors.Is(err, ErrCommitConflict),
		errors.As(err, &re), errors.As(err, &ce), errors.As(err, &ee):
		return err
	}
	// The engine's refusal (a role, a member, the channel's state): the
	// change is impossible as it stands.
	var pe *permanentError
	if errors.As(err, &pe) {
		return err
	}
	return &permanentError{err}
}

func (c *Client) deliverChange1(ctx context.Context, it *item) error {
	ch := it.Change
	if ch == nil {
		return &permanentError{errors.New("client: change without intent")}
	}
	d, err := c.requireActive(ctx, it.ChannelID)
	if err != nil {
		return &permanentError{err}
	}
	if ch.Staged != nil {
		won, err := c.resolveStaged(ctx, d, it)
		if err != nil {
			return err
		}
		if won {
			st := ch.Staged
			c.afterCommit(ctx, it.ChannelID, nil, nil, c.mgr.Identity())
			return c.changeAccepted(ctx, it, &CommitResult{Committed: true, Status: ChangeSent, Epoch: st.Epoch + 1, Added: userIDs(st.Added)}, st)
		}
	}
	if ch.Op == opInvite && len(ch.KeyPackages) == 0 {
		if err := c.claim(ctx, it); err != nil {
			return err
		}
	}
	oc, err := c.commit(ctx, it.ChannelID, func(ctx context.Context) error {
		c.mu.Lock()
		c.inflight[it.ChannelID] = it
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.inflight, it.ChannelID)
			c.mu.Unlock()
		}()
		return c.changeOp(ctx, it.ChannelID, ch)
	})
	if err != nil {
		return err
	}
	var st *staged
	if oc != nil {
		st = &staged{Epoch: oc.Epoch, Welcome: oc.Welcome, Tree: oc.RatchetTree, Added: oc.Added}
	}
	return c.changeAccepted(ctx, it, c.result(ctx, it.ChannelID, oc), st)
}

// changeOp is the Manager commit of a change.
func (c *Client) changeOp(ctx context.Context, channelID string, ch *change) error {
	switch ch.Op {
	case opInvite:
		_, _, err := c.mgr.CreateInvitesAs(ctx, channelID, ch.KeyPackages, ch.Role)
		return err
	case opRemove:
		_, err := c.mgr.RemoveMember(ctx, channelID, ch.UserID)
		return err
	case opRole:
		if cur, err := c.mgr.Role(ctx, channelID, ch.UserID); err == nil && cur == ch.Role {
			return errNothingToDo
		}
		_, err := c.mgr.SetRole(ctx, channelID, ch.UserID, ch.Role)
		return err
	case opUpdate:
		_, err := c.mgr.SelfUpdate(ctx, channelID)
		return err
	}
	return &permanentError{fmt.Errorf("client: unknown change %q", ch.Op)}
}

// claim claims the invitee's key packages and stores them in the intent
// (a retry reuses them: claimed one-time key packages are gone).
func (c *Client) claim(ctx context.Context, it *item) error {
	ch := it.Change
	claimed, err := c.relay.ClaimKeyPackages(ctx, identity.UserID(ch.UserID))
	c.noteRelay(ctx, err)
	if errors.Is(err, relayclient.ErrNotFound) || (err == nil && len(claimed) == 0) {
		return &permanentError{errf(ErrNoKeyPackage, "the relay has no key package for %q", ch.UserID)}
	}
	if err != nil {
		if unreachable(ctx, err) {
			return fmt.Errorf("%w: %w", ErrRelayUnreachable, err)
		}
		return err
	}
	for _, k := range claimed {
		ch.KeyPackages = append(ch.KeyPackages, k.KeyPackage)
		ch.LastResort = ch.LastResort || k.LastResort
	}
	return c.putItem(ctx, it)
}

func (c *Client) putItem(ctx context.Context, it *item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return c.recs.PutRecord(ctx, recOutbox, it.ID, b)
}

// stage records the commit of the change in flight on oc's channel, if
// any, before it is posted (from post).
func (c *Client) stage(ctx context.Context, oc *channel.OutgoingCommit) error {
	c.mu.Lock()
	it := c.inflight[oc.ChannelID]
	c.mu.Unlock()
	if it == nil {
		return nil
	}
	m, err := mls.UnmarshalMessage(oc.GroupInfo)
	if err != nil || m.GroupInfo == nil {
		return fmt.Errorf("client: own group info does not decode: %v", err)
	}
	it.Change.Staged = &staged{Epoch: oc.Epoch, Commit: oc.Commit, GroupInfo: oc.GroupInfo,
		Confirmed: m.GroupInfo.GroupContext.ConfirmedTranscriptHash, Welcome: oc.Welcome, Tree: oc.RatchetTree,
		Added: oc.Added, Removed: oc.Removed}
	return c.putItem(ctx, it)
}

// resolveStaged finds out whether the change's last posted commit was
// ordered by the relay (true), or must be staged again (false, and the
// staged commit is forgotten).
func (c *Client) resolveStaged(ctx context.Context, d *channel.Descriptor, it *item) (bool, error) {
	defer c.opLock(d.ID)()
	st := it.Change.Staged
	forget := func() (bool, error) {
		it.Change.Staged = nil
		return false, c.putItem(ctx, it)
	}
	// The pending commit before the epoch: the follower may adopt our
	// commit from the log meanwhile (dropping the pending one as it
	// moves the epoch, in one step).
	pc, err := c.p.PendingCommit(ctx, d.GroupID)
	if err != nil {
		return false, err
	}
	ep, err := c.mgr.Epoch(ctx, d.ID)
	if err != nil {
		return false, &permanentError{err}
	}
	if ep == st.Epoch {
		// Posted, answer unknown: post the very commit again (it is
		// still our pending one). Ordered meanwhile, it conflicts.
		if pc == nil {
			return forget()
		}
		if b, err := wire.Marshal(pc.Result.Commit); err != nil || !bytes.Equal(b, st.Commit) {
			return forget()
		}
		target := st.Epoch + 1
		_, err = c.relay.PostCommit(ctx, st.outgoing(it))
		c.noteRelay(ctx, err)
		var ce *relayclient.CommitConflictError
		switch {
		case err == nil:
		case errors.As(err, &ce):
			target = ce.CurrentEpoch
		case unreachable(ctx, err):
			return false, fmt.Errorf("%w: %w", ErrRelayUnreachable, err)
		default:
			c.log.Warn("the relay refused a staged commit again; staging anew", "channel", d.ID, "err", err)
			return forget()
		}
		// The follower adopts our pending commit from the log (provider
		// echoedCommit) or processes the winner.
		if err := c.catchUp(ctx, d, target); err != nil {
			return false, err
		}
		if ep, err = c.mgr.Epoch(ctx, d.ID); err != nil {
			return false, &permanentError{err}
		}
		if ep == st.Epoch {
			return forget()
		}
	}
	if ep < st.Epoch {
		return forget() // a recovery took us elsewhere
	}
	won, err := c.stagedWon(ctx, d, st, ep)
	if err != nil || !won {
		if err != nil {
			return false, err
		}
		return forget()
	}
	return true, nil
}

// stagedWon compares the confirmed transcript hash of the epoch the
// staged commit starts with the group's (now in epoch ep > st.Epoch).
func (c *Client) stagedWon(ctx context.Context, d *channel.Descriptor, st *staged, ep uint64) (bool, error) {
	if ep == st.Epoch+1 {
		var cth []byte
		if err := c.p.View(ctx, d.GroupID, func(g *mls.Group) error {
			cth = g.Context().ConfirmedTranscriptHash
			return nil
		}); err != nil {
			return false, err
		}
		return bytes.Equal(cth, st.Confirmed), nil
	}
	es, err := c.relay.EpochState(ctx, d.GroupID, st.Epoch+1)
	c.noteRelay(ctx, err)
	if err != nil {
		if unreachable(ctx, err) {
			return false, fmt.Errorf("%w: %w", ErrRelayUnreachable, err)
		}
		c.log.Warn("cannot tell whether a staged commit was ordered; staging anew", "channel", d.ID, "epoch", st.Epoch, "err", err)
		return false, nil
	}
	return bytes.Equal(es.ConfirmedTranscriptHash, st.Confirmed), nil
}

// changeAccepted ends a change: its commit st was ordered by the relay
// (st nil: nothing was to commit). A Welcome replaces the change in the
// outbox in one write, then is posted.
func (c *Client) changeAccepted(ctx context.Context, it *item, res *CommitResult, st *staged) error {
	res.LastResort = it.Change.LastResort
	it.result = res
	if st != nil && len(st.Welcome) > 0 {
		w := &item{ID: it.ID, Kind: itemWelcome, ChannelID: it.ChannelID, GroupID: it.GroupID, Data: st.Welcome,
			Tree: st.Tree, Recipients: userIDs(st.Added), Epoch: st.Epoch + 1, QueuedAt: it.QueuedAt}
		// The change's status first: after a crash in between, the
		// change is found ordered again and its Welcome stored then.
		c.delivered(it, "sent", nil)
		if err := c.putItem(ctx, w); err != nil {
			return err
		}
		*it = *w
		return c.deliver(ctx, it)
	}
	return nil
}

// changeDone records a change's final status and wakes its caller.
func (c *Client) changeDone(ctx context.Context, it *item, status string, err error) {
	var ep uint64
	if it.result != nil {
		ep = it.result.Epoch
	}
	c.putChangeStatus(ctx, it, status, ep, err)
	c.mu.Lock()
	w := c.waiters[it.ID]
	delete(c.waiters, it.ID)
	c.mu.Unlock()
	if w != nil {
		if status == ChangeSent {
			w.res = it.result
			if w.res == nil {
				w.res = &CommitResult{Status: ChangeSent}
			}
			w.res.ID = it.ID
		} else {
			var pe *permanentError
			if errors.As(err, &pe) {
				err = pe.err
			}
			w.err = err
		}
		close(w.done)
	}
}

func (c *Client) putChangeStatus(ctx context.Context, it *item, status string, epoch uint64, err error) {
	ch := it.Change
	cs := ChangeStatus{ID: it.ID, ChannelID: it.ChannelID, Op: ch.Op, UserID: ch.UserID, Status: status, Epoch: epoch, QueuedAt: it.QueuedAt}
	if ch.Role != "" {
		cs.Role = RoleName(ch.Role)
	}
	if err != nil {
		cs.Error = err.Error()
	}
	if status != ChangeQueued {
		cs.DoneAt = time.Now().UTC()
	}
	b, jerr := json.Marshal(cs)
	if jerr != nil {
		return
	}
	// Also while the engine closes: the status goes with the outbox
	// step that made it (the store closes after the outbox stopped).
	ctx = context.WithoutCancel(ctx)
	if err := c.recs.PutRecord(ctx, recChange, it.ID, b); err != nil {
		c.log.Warn("storing a change's status", "err", err)
		return
	}
	if status == ChangeQueued {
		return
	}
	recs, rerr := c.recs.Records(ctx, recChange)
	for i := 0; rerr == nil && i < len(recs)-maxChangeStatuses; i++ {
		_ = c.recs.DeleteRecord(ctx, recChange, recs[i].ID)
	}
}

// Changes lists the channel's recent state changes made through the
// outbox, oldest first, with their status.
func (c *Client) Changes(ctx context.Context, channelID string) ([]ChangeStatus, error) {
	if _, err := c.mgr.Channel(ctx, channelID); err != nil {
		return nil, err
	}
	recs, err := c.recs.Records(ctx, recChange)
	if err != nil {
		return nil, err
	}
	out := []ChangeStatus{}
	for _, r := range recs {
		var cs ChangeStatus
		if json.Unmarshal(r.Value, &cs) == nil && cs.ChannelID == channelID {
			out = append(out, cs)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].QueuedAt.Before(out[j].QueuedAt) })
	return out, nil
}
