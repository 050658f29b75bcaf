package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/wire"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
	"github.com/spacepanda/spacepanda/store"
)

// Recovery instead of forks (issue 13.6): a member that cannot follow the
// log (a commit for its epoch that does not process, or a commit for an
// epoch it never reached) rejoins by external commit (RFC 9420
// §12.4.3.2, resync: the new leaf replaces our old one) from the relay's
// latest GroupInfo, posted and merged like any commit; the history
// records it.

// ErrRecovery is a failed rejoin.
var ErrRecovery = errors.New("client: recovery by external commit failed")

// maxRecoveries bounds the rejoins of one follower (a hostile member must
// not keep us rejoining).
const maxRecoveries = 3

// maxRejoinRaces bounds the external commits of one recovery that lose
// the epoch to another commit.
const maxRejoinRaces = 4

// recover rejoins d's group from the relay's latest GroupInfo; by is the
// user whose commit we could not process ("" if none). An external
// commit that loses the race for its epoch (another member rejoining at
// the same time, or any commit) is made again from the winner's
// GroupInfo: the winner's commit is one we cannot process, and waiting
// for the follower to find that out costs a recovery and loses the
// messages of the winner's epoch too.
func (c *Client) recover(ctx context.Context, d *channel.Descriptor, why error, by string) error {
	defer c.opLock(d.ID)()
	for race := 0; ; race++ {
		err := c.rejoin(ctx, d, why, by)
		var ce *relayclient.CommitConflictError
		if !errors.As(err, &ce) || race == maxRejoinRaces {
			return err
		}
		c.log.Info("external commit lost its epoch, rejoining from the new GroupInfo", "channel", d.ID, "relay_epoch", ce.CurrentEpoch)
	}
}

// rejoin is one external commit from the relay's latest GroupInfo (under
// the channel's op lock).
func (c *Client) rejoin(ctx context.Context, d *channel.Descriptor, why error, by string) error {
	raw, _, err := c.relay.GroupInfo(ctx, d.GroupID)
	c.noteRelay(ctx, err)
	if err != nil {
		return fmt.Errorf("%w: group info: %w", ErrRecovery, err)
	}
	m, err := mls.UnmarshalMessage(raw)
	if err != nil || m.GroupInfo == nil {
		return fmt.Errorf("%w: the relay's group info does not decode: %v", ErrRecovery, err)
	}
	gi := m.GroupInfo
	if string(gi.GroupContext.GroupID) != string(d.GroupID) {
		return fmt.Errorf("%w: the relay's group info is for another group", ErrRecovery)
	}
	ej, err := c.p.JoinByExternalCommit(ctx, gi, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecovery, err)
	}
	oc := &channel.OutgoingCommit{ChannelID: d.ID, GroupID: d.GroupID, Epoch: gi.GroupContext.Epoch}
	if oc.Commit, err = wire.Marshal(ej.Commit); err != nil {
		return err
	}
	ngi, err := ej.State.GroupInfo(true)
	if err != nil {
		return err
	}
	if oc.GroupInfo, err = marshalGroupInfo(ngi); err != nil {
		return err
	}
	if _, err := c.relay.PostCommit(ctx, oc); err != nil {
		c.noteRelay(ctx, err)
		return fmt.Errorf("%w: post: %w", ErrRecovery, err)
	}
	// Accepted: merge even if the caller gave up meanwhile, or we would
	// stay in the state our own external commit removed.
	ctx = context.WithoutCancel(ctx)
	if err := c.p.MergeExternalJoin(ctx, ej); err != nil {
		return fmt.Errorf("%w: merge: %w", ErrRecovery, err)
	}
	st, _ := c.channelState(ctx, d.ID)
	st.State, st.Recovered, st.RecoveryCausedBy = StateActive, st.Recovered+1, by
	_ = c.setState(ctx, d.ID, st)
	reason := oneLine(why)
	text := fmt.Sprintf("rejoined by external commit at epoch %d: %s", oc.Epoch+1, reason)
	if by != "" {
		text = fmt.Sprintf("rejoined by external commit at epoch %d: a commit by %s could not be processed (%s)", oc.Epoch+1, by, reason)
	}
	c.note(ctx, d.ID, text)
	c.mu.Lock()
	c.stats.Recoveries++
	c.mu.Unlock()
	ev := map[string]any{"state": StateActive, "recovered": true, "epoch": oc.Epoch + 1, "reason": reason}
	if by != "" {
		ev["caused_by"] = by
	}
	c.emit(EventChannelState, d.ID, ev)
	c.log.Warn("rejoined a channel by external commit", "channel", d.ID, "epoch", oc.Epoch+1, "caused_by", by, "why", why)
	return nil
}

func marshalGroupInfo(gi *mls.GroupInfo) ([]byte, error) {
	m, err := mls.NewMessage(gi)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(m)
}

// SystemSender is the sender of the history's notes (recoveries).
const SystemSender = "system"

// note appends a system line to the channel's history.
func (c *Client) note(ctx context.Context, channelID, text string) {
	now := time.Now().UTC()
	msg := store.Message{ChannelID: channelID, ID: "system-" + newID(), Sender: SystemSender, Timestamp: now, Body: []byte(text), ReceivedAt: now}
	if err := c.p.Store().Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendMessage(ctx, msg)
		return err
	}); err != nil {
		c.log.Error("noting in the history", "channel", channelID, "err", err)
	}
}

// oneLine is err's message on one line (errors.Join puts each on its own).
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
