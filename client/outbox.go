package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/wire"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
	"github.com/spacepanda/spacepanda/store"
)

// The outbox: what must reach the relay is stored (store.Records, kind
// "outbox") before it leaves, and delivered in order, per channel, until
// the relay accepts it. An unreachable relay stops the round and the
// loop retries with backoff; an item the relay refuses for good is
// dropped and reported.

const recOutbox = "outbox"

// Outbox item kinds.
const (
	itemGroup    = "group"    // register a channel's group
	itemMessage  = "message"  // an application message
	itemProposal = "proposal" // a proposal (our leave)
	itemWelcome  = "welcome"  // the Welcome of an accepted commit
	// itemChange: a state change (changes.go)
)

// item is one outbox entry.
type item struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"`
	ChannelID  string   `json:"channel_id"`
	GroupID    []byte   `json:"group_id"`
	Data       []byte   `json:"data,omitempty"`
	Tree       []byte   `json:"tree,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	Epoch      uint64   `json:"epoch"`
	MessageID  string   `json:"message_id,omitempty"`
	// Chat is the message as encoded, to encrypt it again when the group
	// moved on while it waited (receivers keep past epochs only briefly).
	Chat     *channel.ChatMessage `json:"chat,omitempty"`
	Attempts int                  `json:"attempts,omitempty"`
	QueuedAt time.Time            `json:"queued_at"`
	// Change is the intent of a state change.
	Change *change       `json:"change,omitempty"`
	result *CommitResult // a delivered change's result

	// Messages (sendloop.go): the record kind of the entry, and whether
	// it is written.
	rec    string
	stored bool
}

// recKind is the record kind of it's entry.
func (it *item) recKind() string {
	if it.rec != "" {
		return it.rec
	}
	return recOutbox
}

// maxAttempts bounds the retries of an item the relay answers but refuses
// for a reason that may pass (an epoch it has not reached).
const maxAttempts = 20

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// enqueue stores it durably and wakes the outbox.
func (c *Client) enqueue(ctx context.Context, it *item) error {
	b, err := c.outboxEntry(it)
	if err != nil {
		return err
	}
	if err := c.recs.PutRecord(ctx, recOutbox, it.ID, b); err != nil {
		return err
	}
	c.queued()
	return nil
}

// enqueueTx writes it to the outbox in tx (it.stored is set); once tx is
// committed the caller calls queued.
func (c *Client) enqueueTx(ctx context.Context, tx store.RecordsTx, it *item) error {
	b, err := c.outboxEntry(it)
	if err != nil {
		return err
	}
	if err := tx.PutRecord(ctx, recOutbox, it.ID, b); err != nil {
		return err
	}
	it.stored = true
	return nil
}

// outboxEntry gives it an id and a queue time if it has none and encodes
// it for the outbox.
func (c *Client) outboxEntry(it *item) ([]byte, error) {
	if it.ID == "" {
		it.ID = newID()
	}
	if it.QueuedAt.IsZero() {
		it.QueuedAt = time.Now().UTC()
	}
	return json.Marshal(it)
}

// queued tells the senders that the outbox has a new entry (after the
// write: it invalidates an "empty" a sender read before it, sendloop.go).
func (c *Client) queued() {
	c.obGen.Add(1)
	c.kickOutbox()
}

func (c *Client) kickOutbox() {
	select {
	case c.obKick <- struct{}{}:
	default:
	}
	c.sendq.kickAll()
}

func (c *Client) outboxItems(ctx context.Context) ([]*item, error) {
	recs, err := c.recs.Records(ctx, recOutbox)
	if err != nil {
		return nil, err
	}
	out := make([]*item, 0, len(recs))
	for _, r := range recs {
		var it item
		if err := json.Unmarshal(r.Value, &it); err != nil {
			c.log.Error("dropping an unreadable outbox entry", "id", r.ID, "err", err)
			_ = c.recs.DeleteRecord(ctx, recOutbox, r.ID)
			continue
		}
		out = append(out, &it)
	}
	return out, nil
}

// registrationQueued reports whether the outbox still holds the
// registration of the channel's group with the relay.
func (c *Client) registrationQueued(ctx context.Context, channelID string) bool {
	its, err := c.outboxItems(ctx)
	if err != nil {
		return false
	}
	for _, it := range its {
		if it.Kind == itemGroup && it.ChannelID == channelID {
			return true
		}
	}
	return false
}

// OutboxDepth is how many items wait for the relay.
func (c *Client) OutboxDepth(ctx context.Context) int {
	its, _ := c.outboxItems(ctx)
	n := c.sendq.depth()
	for _, it := range its {
		if it.Kind != itemMessage { // messages: counted in the send queue
			n++
		}
	}
	return n
}

// Queued reports the ids of our messages still in the outbox.
func (c *Client) Queued(ctx context.Context, channelID string) map[string]bool {
	return c.sendq.queued(channelID)
}

func (c *Client) outboxLoop() {
	defer c.wg.Done()
	delay := c.cfg.Retry
	for c.ctx.Err() == nil {
		if c.outboxRound(c.ctx) {
			delay = c.cfg.Retry
			select {
			case <-c.ctx.Done():
				return
			case <-c.obKick:
			case <-time.After(30 * time.Second):
			}
			continue
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.obKick:
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// outboxRound delivers what it can; false: the relay is unreachable (or a
// channel is held up) and the round should be retried after a backoff.
func (c *Client) outboxRound(ctx context.Context) bool {
	its, err := c.outboxItems(ctx)
	if err != nil {
		c.log.Error("reading the outbox", "err", err)
		return false
	}
	blocked := map[string]bool{}
	ok := true
	for _, it := range its {
		if blocked[it.ChannelID] {
			continue
		}
		if it.Kind == itemMessage {
			continue // the channel's sender posts it (sendloop.go)
		}
		if c.sendq.before(it.ChannelID, it.QueuedAt) {
			// After the channel's messages queued before it.
			blocked[it.ChannelID], ok = true, false
			continue
		}
		err := c.deliver(ctx, it)
		c.noteRelay(ctx, err)
		switch {
		case err == nil && it.Kind == itemChange:
			// Its status first: after a crash in between, the change is
			// found ordered again (changes.go).
			c.delivered(it, "sent", nil)
			_ = c.recs.DeleteRecord(ctx, recOutbox, it.ID)
		// The outcome is known before the item goes: a waiter reads it
		// once the item is gone (a drop reported as "sent" was a lost
		// accepted message in TestChaos).
		case err == nil:
			c.delivered(it, "sent", nil)
			_ = c.recs.DeleteRecord(ctx, recOutbox, it.ID)
		case ctx.Err() != nil:
			return false
		case unreachable(ctx, err):
			return false
		case retryable(err) && it.Attempts < maxAttempts:
			it.Attempts++
			if b, err := json.Marshal(it); err == nil {
				_ = c.recs.PutRecord(ctx, recOutbox, it.ID, b)
			}
			blocked[it.ChannelID], ok = true, false
		default:
			if it.Kind == itemChange {
				c.log.Warn("a state change failed", "op", it.Change.Op, "channel", it.ChannelID, "err", err)
				c.delivered(it, ChangeFailed, err)
				_ = c.recs.DeleteRecord(ctx, recOutbox, it.ID)
				continue
			}
			c.log.Warn("the relay refused an outgoing item; dropped", "kind", it.Kind, "channel", it.ChannelID, "message_id", it.MessageID, "err", err)
			c.delivered(it, "dropped", err)
			_ = c.recs.DeleteRecord(ctx, recOutbox, it.ID)
		}
	}
	return ok
}

// following reports whether a message of the channel may go out now: the
// channel's log is followed and has been read to its end. Not while a
// join is being checked (the group joined may be a look-alike: a message
// encrypted in it reached nobody) or no follower runs; a channel that is
// not active lets it through (the relay refuses it, and it is dropped).
func (c *Client) following(ctx context.Context, channelID string) bool {
	c.mu.Lock()
	f := c.followers[channelID]
	c.mu.Unlock()
	if f == nil || f.doneFlag.Load() {
		st, err := c.channelState(ctx, channelID)
		return err != nil || st.State != StateActive
	}
	return f.synced.Load()
}

func retryable(err error) bool {
	var ee *relayclient.EpochError
	var pe *permanentError
	if errors.As(err, &pe) {
		return false
	}
	return errors.As(err, &ee) || errors.Is(err, relayclient.ErrNotMember) || errors.Is(err, ErrCommitConflict)
}

func (c *Client) delivered(it *item, status string, err error) {
	if it.Kind == itemMessage {
		c.mu.Lock()
		if len(c.outcomes) > 4096 {
			c.outcomes = map[string]string{}
		}
		c.outcomes[it.MessageID] = status
		c.mu.Unlock()
	}
	data := map[string]any{"kind": it.Kind, "status": status}
	if it.MessageID != "" {
		data["message_id"] = it.MessageID
	}
	if it.Kind == itemChange {
		data["change_id"], data["op"] = it.ID, it.Change.Op
		if it.Change.UserID != "" {
			data["user_id"] = it.Change.UserID
		}
		if it.result != nil && it.result.Committed {
			data["epoch"] = it.result.Epoch
		}
		var pe *permanentError
		if errors.As(err, &pe) {
			err = pe.err
		}
		c.changeDone(c.ctx, it, status, err)
	}
	if err != nil {
		data["error"] = err.Error()
	}
	c.emit(EventDelivery, it.ChannelID, data)
	if it.Kind != itemMessage {
		c.sendq.kickChannel(it.ChannelID) // its messages may have waited for it (sendloop.go)
	}
	if it.Kind == itemGroup && status == "sent" {
		if d, err := c.mgr.Channel(c.ctx, it.ChannelID); err == nil {
			c.follow(d)
		}
	}
}

func (c *Client) deliver(ctx context.Context, it *item) error {
	switch it.Kind {
	case itemGroup:
		gi, err := c.groupInfo(ctx, it.GroupID)
		if err != nil {
			return err
		}
		return c.relay.CreateGroup(ctx, it.GroupID, gi)
	case itemMessage:
		if err := c.refresh(ctx, it); err != nil {
			return err
		}
		seq, err := c.relay.PostMessage(ctx, it.GroupID, relayclient.KindApplication, it.Epoch, it.Data)
		if err == nil {
			c.log.Debug("message posted", "channel", it.ChannelID, "message_id", it.MessageID, "seq", seq, "epoch", it.Epoch)
		}
		return err
	case itemProposal:
		_, err := c.relay.PostMessage(ctx, it.GroupID, relayclient.KindProposal, it.Epoch, it.Data)
		return err
	case itemChange:
		return c.deliverChange(ctx, it)
	case itemWelcome:
		return c.relay.PostWelcome(ctx, relayclient.Welcome{Recipients: it.Recipients, Welcome: it.Data,
			RatchetTree: it.Tree, GroupID: it.GroupID})
	}
	return errors.New("client: unknown outbox item kind " + it.Kind)
}

// refresh encrypts a waiting message again if the channel's epoch moved
// on since it was encrypted (same id: receivers keep one copy).
func (c *Client) refresh(ctx context.Context, it *item) error {
	ep, err := c.mgr.Epoch(ctx, it.ChannelID)
	if err != nil || ep == it.Epoch || it.Chat == nil {
		return err
	}
	ct, err := c.mgr.EncryptChat(ctx, it.ChannelID, it.Chat)
	if err != nil {
		return err
	}
	// The epoch it is encrypted in, not ep: a commit merged meanwhile
	// makes them differ, and the relay refuses (for good) a message whose
	// stated epoch is not its own.
	m, err := mls.UnmarshalMessage(ct)
	if err != nil || m.PrivateMessage == nil {
		return fmt.Errorf("client: own ciphertext does not decode: %v", err)
	}
	it.Data, it.Epoch = ct, m.PrivateMessage.Epoch
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return c.recs.PutRecord(ctx, it.recKind(), it.ID, b)
}

// groupInfo is the group's current signed GroupInfo with its ratchet tree
// (MLSMessage): what the relay registers a group from and verifies its
// commits against.
func (c *Client) groupInfo(ctx context.Context, groupID []byte) ([]byte, error) {
	var out []byte
	err := c.p.View(ctx, groupID, func(g *mls.Group) error {
		gi, err := g.GroupInfo(true)
		if err != nil {
			return err
		}
		m, err := mls.NewMessage(gi)
		if err != nil {
			return err
		}
		out, err = wire.Marshal(m)
		return err
	})
	return out, err
}
