package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spacepanda/spacepanda/channel"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// ErrCommitConflict is a commit the relay kept refusing (other members'
// commits kept taking the epoch).
var ErrCommitConflict = errors.New("client: commit kept conflicting")

// errNothingToDo ends a retried state change that the winning commit made
// unnecessary.
var errNothingToDo = errors.New("client: nothing to commit")

// post is the Manager's CommitPoster (fixed at construction): with a relay
// the commit is ordered there and its Welcome stored in the outbox before
// the merge; without one it is accepted at once.
func (c *Client) post(ctx context.Context, oc *channel.OutgoingCommit) error {
	if c.relay != nil {
		// A change from the outbox: durable with its Welcome before the
		// commit leaves (changes.go).
		c.mu.Lock()
		inChange := c.inflight[oc.ChannelID] != nil
		c.mu.Unlock()
		if inChange {
			if err := c.stage(ctx, oc); err != nil {
				return err
			}
		}
		_, err := c.relay.PostCommit(ctx, oc)
		c.noteRelay(ctx, err)
		if err != nil {
			if unreachable(ctx, err) {
				return fmt.Errorf("%w: %w", ErrRelayUnreachable, err)
			}
			return err
		}
		if oc.Welcome != nil && !inChange {
			// Durable before the merge: a crash now loses no Welcome.
			w := &item{Kind: itemWelcome, ChannelID: oc.ChannelID, GroupID: oc.GroupID, Data: oc.Welcome,
				Tree: oc.RatchetTree, Recipients: userIDs(oc.Added), Epoch: oc.Epoch + 1}
			if err := c.enqueue(ctx, w); err != nil {
				c.log.Error("storing a Welcome failed; the commit is in", "channel", oc.ChannelID, "err", err)
			}
		}
	}
	c.mu.Lock()
	c.posted[oc.ChannelID] = oc
	c.mu.Unlock()
	return nil
}

func (c *Client) takePosted(channelID string) *channel.OutgoingCommit {
	c.mu.Lock()
	defer c.mu.Unlock()
	oc := c.posted[channelID]
	delete(c.posted, channelID)
	return oc
}

// commit runs op (a Manager commit) through the one path of every state
// change: staged, posted, merged when accepted; on a conflict the log is
// processed up to the relay's epoch and op retried. It returns what was
// posted (nil: op made no commit).
func (c *Client) commit(ctx context.Context, channelID string, op func(ctx context.Context) error) (*channel.OutgoingCommit, error) {
	d, err := c.requireActive(ctx, channelID)
	if err != nil {
		return nil, err
	}
	defer c.opLock(channelID)()
	if c.relay != nil {
		c.readLog(ctx, d)
	}
	for attempt := 0; ; attempt++ {
		c.takePosted(channelID)
		err := op(ctx)
		var ce *relayclient.CommitConflictError
		if errors.As(err, &ce) && attempt < c.cfg.CommitRetries {
			c.mu.Lock()
			c.stats.CommitRetries++
			c.mu.Unlock()
			c.log.Debug("commit refused, catching up", "channel", channelID, "relay_epoch", ce.CurrentEpoch)
			if err := c.catchUp(ctx, d, ce.CurrentEpoch); err != nil {
				return nil, err
			}
			continue
		}
		if errors.Is(err, errNothingToDo) {
			return nil, nil
		}
		if err != nil {
			if errors.As(err, &ce) {
				return nil, fmt.Errorf("%w (relay epoch %d): %w", ErrCommitConflict, ce.CurrentEpoch, err)
			}
			return nil, err
		}
		oc := c.takePosted(channelID)
		if oc != nil {
			c.afterCommit(ctx, channelID, oc.Added, oc.Removed, c.mgr.Identity())
		}
		return oc, nil
	}
}

// afterCommit reports what a merged commit (ours or a peer's) changed.
func (c *Client) afterCommit(ctx context.Context, channelID string, joined, removed []channel.Member, by string) {
	if len(joined) > 0 || len(removed) > 0 {
		c.emit(EventMembership, channelID, map[string]any{"joined": userIDs(joined), "removed": userIDs(removed), "by": by})
	}
	rs, err := c.mgr.Roles(ctx, channelID)
	if err != nil {
		return // no roles, or no group any more
	}
	c.mu.Lock()
	old, known := c.roles[channelID]
	c.roles[channelID] = rs
	c.mu.Unlock()
	if !known {
		return
	}
	for u, r := range rs {
		if o, ok := old[u]; ok && o != r {
			c.emit(EventRole, channelID, map[string]any{"user_id": u, "role": RoleName(r), "previous": RoleName(o), "by": by})
		}
	}
}

// readLog processes what the log holds now, before a commit of ours: our
// commit moves our epoch at once, ahead of the follower, and a member
// keeps only a few past epochs (mls.DefaultMaxPastEpochs) to open late
// messages (RFC 9420 §12.4.2: the old secret tree kept "for a short time
// to decrypt late messages"). A message ordered before a few quick commits
// of ours, read by a lagging follower after them, was lost to us. Bounded;
// an unreachable relay leaves it to the commit to fail.
func (c *Client) readLog(ctx context.Context, d *channel.Descriptor) {
	f := c.follow(d)
	for range 20 {
		n, err := f.pull(ctx)
		if err != nil || n == 0 {
			return
		}
	}
}

// catchUp processes the log until the channel reaches epoch target (or
// the log has nothing more).
func (c *Client) catchUp(ctx context.Context, d *channel.Descriptor, target uint64) error {
	f := c.follow(d)
	for i := 0; ; i++ {
		ep, err := c.mgr.Epoch(ctx, d.ID)
		if err != nil || ep >= target {
			return err
		}
		n, err := f.pull(ctx)
		c.noteRelay(ctx, err)
		if err != nil {
			return fmt.Errorf("%w: catch up: %w", ErrRelayUnreachable, err)
		}
		if n == 0 {
			if i > 50 {
				return fmt.Errorf("%w: the log does not reach epoch %d (we are in %d)", ErrCommitConflict, target, ep)
			}
			if !sleepCtx(ctx, 20*1e6) {
				return ctx.Err()
			}
		}
	}
}

// RoleName is a role as the API spells it: admin, member, read_only.
func RoleName(r channel.Role) string { return strings.ReplaceAll(string(r), "-", "_") }
