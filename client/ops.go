package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/store"
)

// Errors of the operations (wrapped with %w).
var (
	// ErrRelayRequired is an operation that needs a relay.
	ErrRelayRequired = errors.New("client: a relay is required")
	// ErrNoKeyPackage is a user the relay has no key package for.
	ErrNoKeyPackage = errors.New("client: no key package for the user")
	// ErrInviteSelf is an invitation of ourselves.
	ErrInviteSelf = errors.New("client: cannot invite yourself")
	// ErrDeliveryRefused is a message the relay refused for good (we are
	// no longer a member there); it stays in our history only.
	ErrDeliveryRefused = errors.New("client: the relay refused the message")
	// ErrLookalikeGroup is a Welcome into a group that is not the one the
	// relay orders under that group id (joiner check).
	ErrLookalikeGroup = errors.New("client: the Welcome's group does not match the relay's")
)

// maxEventText bounds the text a message event carries (the events kept
// for resuming hold it): a longer one is read from the history.
const maxEventText = 4096

// messageEvent is the data of the event of a stored message: its id,
// sequence number and sender, and, when short enough, its text, so that
// a client following the events need not read the history for each one.
func messageEvent(m *store.Message) map[string]any {
	data := map[string]any{"message_id": m.ID, "seq": m.Seq, "sender": m.Sender}
	if len(m.Body) <= maxEventText {
		data["text"], data["sent_at"] = string(m.Body), m.Timestamp
		if m.ReplyTo != "" {
			data["reply_to"] = m.ReplyTo
		}
	}
	return data
}

// handle reports a processed message's event; true: we are out.
func (c *Client) handle(ctx context.Context, ev *channel.Event) bool {
	switch ev.Kind {
	case channel.EventChatMessage:
		c.emit(EventMessage, ev.ChannelID, messageEvent(ev.Message))
	case channel.EventProposal:
		c.commitLeaves(ctx, ev)
	case channel.EventRemoved:
		c.log.Info("removed from the channel", "channel", ev.ChannelID, "by", ev.Sender.Identity)
		c.emit(EventMembership, ev.ChannelID, map[string]any{"removed": []string{c.mgr.Identity()}, "by": ev.Sender.Identity})
		unlock := c.stateLock(ev.ChannelID)
		// A Welcome may have brought us back already (the group exists
		// again): then the removal is history.
		if _, err := c.mgr.Epoch(ctx, ev.ChannelID); err != nil {
			_ = c.setState(ctx, ev.ChannelID, ChannelState{State: StateRemoved, RemovedBy: ev.Sender.Identity})
		}
		unlock()
		return true
	default:
		c.afterCommit(ctx, ev.ChannelID, ev.Joined, ev.Removed, ev.Sender.Identity)
	}
	return false
}

// commitLeaves commits a member's leave proposal (as an admin, or anyone
// in a channel without roles), in the background: the follower must not
// wait for its own channel.
func (c *Client) commitLeaves(ctx context.Context, ev *channel.Event) {
	if len(ev.ProposedRemovals) == 0 {
		return
	}
	if r, err := c.mgr.Role(ctx, ev.ChannelID, c.mgr.Identity()); err == nil && r != channel.RoleAdmin {
		return
	}
	leaving := ev.ProposedRemovals
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_, err := c.commit(c.ctx, ev.ChannelID, func(ctx context.Context) error {
			ls, err := c.mgr.Leaves(ctx, ev.ChannelID)
			if err != nil {
				return err
			}
			still := false
			for _, l := range ls {
				for _, g := range leaving {
					still = still || l.LeafIndex == g.LeafIndex
				}
			}
			if !still {
				return errNothingToDo
			}
			_, err = c.mgr.SelfUpdate(ctx, ev.ChannelID)
			return err
		})
		if err != nil && c.ctx.Err() == nil {
			c.log.Warn("committing a leave failed", "channel", ev.ChannelID, "err", err)
		}
	}()
}

// CreateChannel creates a channel (roles: with roles, the default of the
// API; false: a plain RFC 9420 group). With a relay the group is
// registered there (queued while it is unreachable).
func (c *Client) CreateChannel(ctx context.Context, name string, public, roles bool) (*channel.Descriptor, error) {
	o := channel.CreateOptions{Name: name, Public: public, NoRoles: !roles}
	var reg *item // the group's registration at the relay
	if c.relay != nil {
		// Queued in the channel's own transaction: a channel is never on
		// disk without its registration queued, or a crash between the two
		// would leave a channel the relay never hears of (its log answers
		// 403, which the follower takes for a removal once nothing is
		// queued).
		o.Tx = func(tx store.Tx, d *channel.Descriptor) error {
			reg = &item{Kind: itemGroup, ChannelID: d.ID, GroupID: d.GroupID}
			if rt := c.recordsTx(tx); rt != nil {
				return c.enqueueTx(ctx, rt, reg)
			}
			return nil
		}
	}
	d, err := c.mgr.CreateChannelWith(ctx, o)
	if err != nil {
		return nil, err
	}
	c.emit(EventChannelState, d.ID, map[string]any{"state": StateActive})
	if c.relay != nil {
		if reg.stored {
			c.queued()
		} else if err := c.enqueue(ctx, reg); err != nil { // records outside the store (tests' memory store)
			return nil, err
		}
		c.waitOutbox(ctx, d.ID, 5*time.Second)
		c.wg.Add(1)
		go c.addOtherDevices(d.ID) // devices.go
	}
	return d, nil
}

// waitOutbox waits (bounded) until the channel has nothing queued; false:
// something still is.
func (c *Client) waitOutbox(ctx context.Context, channelID string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		its, err := c.outboxItems(ctx)
		if err != nil {
			return false
		}
		pending := false
		for _, it := range its {
			pending = pending || it.ChannelID == channelID
		}
		if !pending {
			return true
		}
		if time.Now().After(deadline) || c.reachable.Load() == 2 || !sleepCtx(ctx, 10*time.Millisecond) {
			return false
		}
	}
}

// InviteRequest names whom to invite: a user (relay: every device's key
// package is claimed) or key packages.
type InviteRequest struct {
	UserID      string
	KeyPackages [][]byte
	Role        channel.Role // "": member
}

// CommitResult is what a state change did.
type CommitResult struct {
	// Committed is false when nothing needed committing (same role).
	Committed bool
	// Status is "sent" (the relay accepted it), "queued" (in the outbox
	// while the relay is away: ID names the change, see Changes) or
	// "merged" (no relay).
	Status string
	ID     string
	Epoch  uint64
	// Commit, Welcome, RatchetTree and Invite are for the caller to carry
	// (without a relay).
	Commit, Welcome, RatchetTree []byte
	Invite                       *channel.InviteToken
	Added                        []string
	LastResort                   bool
}

func (c *Client) result(ctx context.Context, channelID string, oc *channel.OutgoingCommit) *CommitResult {
	r := &CommitResult{Status: "merged"}
	if c.relay != nil {
		r.Status = "sent"
	}
	if oc != nil {
		r.Committed, r.Commit, r.Welcome, r.RatchetTree, r.Added = true, oc.Commit, oc.Welcome, oc.RatchetTree, userIDs(oc.Added)
	}
	r.Epoch, _ = c.mgr.Epoch(ctx, channelID)
	return r
}

// Invite adds a user (or key packages' owners) by a commit. With a relay
// it goes through the outbox (changes.go): the result is "sent", or
// "queued" with the change's ID while the relay is away; an impossible
// invite answers its error when the relay is up, else ends "failed".
func (c *Client) Invite(ctx context.Context, channelID string, req InviteRequest) (*CommitResult, error) {
	role := req.Role
	if role == "" {
		role = channel.RoleMember
	}
	if _, err := channel.ParseRole(string(role)); err != nil {
		return nil, err
	}
	kps := req.KeyPackages
	if req.UserID != "" {
		if c.relay == nil {
			return nil, errf(ErrRelayRequired, "inviting by user id")
		}
		if req.UserID == c.mgr.Identity() {
			return nil, ErrInviteSelf
		}
	}
	if c.relay != nil {
		// The key packages are claimed when the change is delivered.
		return c.submit(ctx, channelID, &change{Op: opInvite, UserID: req.UserID, Role: role, KeyPackages: kps})
	}
	lastResort := false
	var tok *channel.InviteToken
	oc, err := c.commit(ctx, channelID, func(ctx context.Context) error {
		var err error
		tok, _, err = c.mgr.CreateInvitesAs(ctx, channelID, kps, role)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := c.result(ctx, channelID, oc)
	r.Invite, r.LastResort = tok, lastResort
	if tok != nil {
		r.Welcome, r.RatchetTree = tok.Welcome, tok.RatchetTree
	}
	return r, nil
}

// Remove removes every device of a user by a commit (with a relay,
// through the outbox as Invite).
func (c *Client) Remove(ctx context.Context, channelID, userID string) (*CommitResult, error) {
	if c.relay != nil {
		return c.submit(ctx, channelID, &change{Op: opRemove, UserID: userID})
	}
	oc, err := c.commit(ctx, channelID, func(ctx context.Context) error {
		_, err := c.mgr.RemoveMember(ctx, channelID, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.result(ctx, channelID, oc), nil
}

// SetRole gives a member a role; the same role again commits nothing
// (with a relay, through the outbox as Invite).
func (c *Client) SetRole(ctx context.Context, channelID, userID string, role channel.Role) (*CommitResult, error) {
	if _, err := channel.ParseRole(string(role)); err != nil {
		return nil, err
	}
	if c.relay != nil {
		return c.submit(ctx, channelID, &change{Op: opRole, UserID: userID, Role: role})
	}
	oc, err := c.commit(ctx, channelID, func(ctx context.Context) error {
		if cur, err := c.mgr.Role(ctx, channelID, userID); err == nil && cur == role {
			return errNothingToDo
		}
		_, err := c.mgr.SetRole(ctx, channelID, userID, role)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.result(ctx, channelID, oc), nil
}

// SelfUpdate commits a fresh leaf key (and pending proposals); with a
// relay, through the outbox as Invite.
func (c *Client) SelfUpdate(ctx context.Context, channelID string) (*CommitResult, error) {
	if c.relay != nil {
		return c.submit(ctx, channelID, &change{Op: opUpdate})
	}
	oc, err := c.commit(ctx, channelID, func(ctx context.Context) error {
		_, err := c.mgr.SelfUpdate(ctx, channelID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.result(ctx, channelID, oc), nil
}

// Leave proposes our removal (another member commits it), forgets the
// group's keys and keeps the history; the channel is then "left". The
// proposal is returned (without a relay) or queued for the relay.
func (c *Client) Leave(ctx context.Context, channelID string) (*CommitResult, error) {
	d, err := c.requireActive(ctx, channelID)
	if err != nil {
		return nil, err
	}
	defer c.opLock(channelID)()
	ep, _ := c.mgr.Epoch(ctx, channelID)
	prop, err := c.mgr.Depart(ctx, channelID)
	if err != nil {
		return nil, err
	}
	r := &CommitResult{Status: "merged", Epoch: ep, Commit: prop}
	if c.relay != nil && prop != nil {
		r.Status = "queued"
		if err := c.enqueue(ctx, &item{Kind: itemProposal, ChannelID: channelID, GroupID: d.GroupID, Data: prop, Epoch: ep}); err != nil {
			return nil, err
		}
	}
	if err := c.setState(ctx, channelID, ChannelState{State: StateLeft}); err != nil {
		return nil, err
	}
	if c.relay != nil && c.waitOutbox(ctx, channelID, 5*time.Second) {
		r.Status = "sent"
	}
	return r, nil
}

// SendResult is a sent message.
type SendResult struct {
	MessageID  string
	Status     string // "queued", "sent"; "merged" without a relay
	SentAt     time.Time
	Epoch      uint64
	Ciphertext []byte
}

// Send encrypts a chat message, stores it in the history and (relay) in
// the outbox, and waits briefly for the relay to take it.
func (c *Client) Send(ctx context.Context, channelID, text, replyTo string) (*SendResult, error) {
	d, err := c.requireActive(ctx, channelID)
	if err != nil {
		return nil, err
	}
	var it *item     // the outbox entry, stored with the message (sendloop.go)
	var took []*item // posted entries deleted in the message's transaction
	cm, ct, err := c.mgr.SendChatWith(ctx, channelID, text, replyTo, c.messageTx(ctx, d, &it, &took))
	if err != nil {
		c.sendq.untake(took)
		return nil, err
	}
	mid := cm.ID
	r := &SendResult{MessageID: mid, Status: "sent", SentAt: time.Now().UTC(), Ciphertext: ct}
	m, err := mls.UnmarshalMessage(ct)
	if err != nil || m.PrivateMessage == nil {
		return nil, fmt.Errorf("client: own ciphertext does not decode: %v", err)
	}
	r.Epoch = m.PrivateMessage.Epoch
	c.emit(EventMessage, channelID, map[string]any{"message_id": mid, "sender": c.mgr.Identity()})
	if c.relay == nil {
		return r, nil
	}
	w, err := c.queueMessage(ctx, it)
	if err != nil {
		return nil, err
	}
	if !c.waitSent(ctx, mid, w, 5*time.Second) {
		r.Status = "queued"
		c.emit(EventDelivery, channelID, map[string]any{"kind": itemMessage, "status": "queued", "message_id": mid})
		return r, nil
	}
	c.mu.Lock()
	outcome := c.outcomes[mid]
	c.mu.Unlock()
	if outcome == "dropped" {
		return r, errf(ErrDeliveryRefused, "message %s", mid)
	}
	return r, nil
}

// Receive processes a message handed over by the caller (no relay).
func (c *Client) Receive(ctx context.Context, channelID string, msg []byte) (*channel.Event, error) {
	if _, err := c.requireActive(ctx, channelID); err != nil {
		return nil, err
	}
	ev, err := c.mgr.ReceiveFor(ctx, channelID, msg)
	if err != nil {
		return nil, err
	}
	c.handle(ctx, ev)
	return ev, nil
}

// JoinWelcome joins from a Welcome (ratchetTree nil: in the Welcome).
func (c *Client) JoinWelcome(ctx context.Context, welcome, ratchetTree []byte) (*channel.Descriptor, error) {
	return c.join(ctx, welcome, ratchetTree)
}

// JoinInvite joins from an InviteToken.
func (c *Client) JoinInvite(ctx context.Context, tok *channel.InviteToken) (*channel.Descriptor, error) {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	d, err := c.mgr.JoinChannel(ctx, tok)
	if err != nil {
		return nil, err
	}
	return c.joined(ctx, d, false)
}

func (c *Client) join(ctx context.Context, welcome, ratchetTree []byte) (*channel.Descriptor, error) {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	// A channel we were removed from or left is joined anew: its group
	// state is gone, its history stays.
	before, err := c.mgr.Channels(ctx)
	if err != nil {
		return nil, err
	}
	d, err := c.mgr.JoinWelcome(ctx, welcome, ratchetTree)
	if err != nil {
		return nil, err
	}
	existed := false
	for _, b := range before {
		existed = existed || b.ID == d.ID
	}
	return c.joined(ctx, d, existed)
}

// joined checks the joined group against the relay (13.4), then follows it.
func (c *Client) joined(ctx context.Context, d *channel.Descriptor, existed bool) (*channel.Descriptor, error) {
	unlock := c.stateLock(d.ID)
	defer unlock()
	if err := c.checkJoin(ctx, d); err != nil {
		_ = c.p.ForgetGroup(ctx, d.GroupID)
		if !existed {
			_ = c.p.Store().Update(ctx, func(tx store.Tx) error { return tx.DeleteChannel(ctx, d.ID) })
		} else {
			_ = c.setState(ctx, d.ID, ChannelState{State: StateRemoved})
		}
		c.log.Warn("refused a Welcome", "channel", d.ID, "err", err)
		c.emit(EventDelivery, d.ID, map[string]any{"status": "refused", "kind": "welcome", "error": err.Error()})
		return nil, err
	}
	c.emit(EventChannelState, d.ID, map[string]any{"state": StateActive})
	if c.relay != nil {
		c.followFrom(d, true)
	}
	c.afterCommit(ctx, d.ID, nil, nil, "")
	return d, nil
}

// checkJoin compares the joined group's epoch, tree hash and confirmed
// transcript hash with the relay's public state of that group id.
func (c *Client) checkJoin(ctx context.Context, d *channel.Descriptor) error {
	if c.relay == nil {
		return nil
	}
	var ours EpochState
	if err := c.p.View(ctx, d.GroupID, func(g *mls.Group) error {
		gc := g.Context()
		ours = EpochState{Epoch: g.Epoch(), TreeHash: gc.TreeHash, ConfirmedTranscriptHash: gc.ConfirmedTranscriptHash}
		return nil
	}); err != nil {
		return err
	}
	theirs, err := c.relay.EpochState(ctx, d.GroupID, ours.Epoch)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: cannot check it: %w", ErrLookalikeGroup, err)
	}
	if theirs.Epoch != ours.Epoch || string(theirs.TreeHash) != string(ours.TreeHash) ||
		string(theirs.ConfirmedTranscriptHash) != string(ours.ConfirmedTranscriptHash) {
		return errf(ErrLookalikeGroup, "group %s epoch %d", d.ID, ours.Epoch)
	}
	return nil
}

// History pages a channel's history by seq: after (exclusive) ascending,
// or before (exclusive) descending then returned oldest first.
func (c *Client) History(ctx context.Context, channelID string, after, before uint64, limit int) ([]store.Message, error) {
	if before > 0 {
		if _, err := c.mgr.Channel(ctx, channelID); err != nil {
			return nil, err
		}
		return c.p.Store().MessagesBefore(ctx, channelID, before, limit)
	}
	return c.mgr.History(ctx, channelID, after, limit)
}
