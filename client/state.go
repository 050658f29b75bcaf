package client

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/store"
)

// Channel states.
const (
	StateActive  = "active"  // we are a member
	StateRemoved = "removed" // a commit removed us (or the relay stopped letting us read)
	StateLeft    = "left"    // we left
)

// ChannelState is what the engine keeps about a channel beyond its
// descriptor (in store.Channel.Extra: a join rewrites the row, and the
// channel is active again).
type ChannelState struct {
	State     string `json:"state,omitempty"`
	RemovedBy string `json:"removed_by,omitempty"`
	// Recovered counts rejoins by external commit; RecoveryCausedBy is
	// the user whose commit we could not process, forcing the last one
	// (the relay authenticated its device; empty: we fell behind).
	Recovered        int    `json:"recovered,omitempty"`
	RecoveryCausedBy string `json:"recovery_caused_by,omitempty"`
}

func (c *Client) channelState(ctx context.Context, channelID string) (ChannelState, error) {
	ch, err := c.p.Store().Channel(ctx, channelID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ChannelState{}, errf(channel.ErrChannelNotFound, "%s", channelID)
		}
		return ChannelState{}, err
	}
	var st ChannelState
	if len(ch.Extra) > 0 {
		_ = json.Unmarshal(ch.Extra, &st) // unreadable: active
	}
	if st.State == "" {
		st.State = StateActive
	}
	return st, nil
}

// setState stores a channel's state and reports a change.
func (c *Client) setState(ctx context.Context, channelID string, st ChannelState) error {
	var old ChannelState
	err := c.p.Store().Update(ctx, func(tx store.Tx) error {
		ch, err := tx.Channel(ctx, channelID)
		if err != nil {
			return err
		}
		if len(ch.Extra) > 0 {
			_ = json.Unmarshal(ch.Extra, &old)
		}
		if ch.Extra, err = json.Marshal(st); err != nil {
			return err
		}
		return tx.PutChannel(ctx, ch)
	})
	if err != nil {
		return err
	}
	if old.State == "" {
		old.State = StateActive
	}
	if old.State != st.State {
		data := map[string]any{"state": st.State}
		if st.RemovedBy != "" {
			data["removed_by"] = st.RemovedBy
		}
		c.emit(EventChannelState, channelID, data)
	}
	return nil
}

// State is the channel's state.
func (c *Client) State(ctx context.Context, channelID string) (ChannelState, error) {
	return c.channelState(ctx, channelID)
}

// ErrNotActive is an operation on a channel we were removed from or left.
var ErrNotActive = errors.New("client: channel not active")

func (c *Client) requireActive(ctx context.Context, channelID string) (*channel.Descriptor, error) {
	d, err := c.mgr.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	st, err := c.channelState(ctx, channelID)
	if err != nil {
		return nil, err
	}
	if st.State != StateActive {
		return nil, errf(ErrNotActive, "channel %s is %s", channelID, st.State)
	}
	return d, nil
}
