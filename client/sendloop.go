package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
	"github.com/spacepanda/spacepanda/store"
)

// The message send loop: one sender goroutine per channel posts that
// channel's queued messages in order, a batch at a time, and deletes the
// entries of a batch in one transaction. The entry of a message is
// written (kind recMessages) in the very transaction that appends the
// message to the history and, when this send stores it, advances the
// ratchet (channel.Manager.SendChatWith): its generation is durable before
// its ciphertext is posted (RFC 9420 §6.3.1: a client MUST keep persistent
// state as to where in the key schedule it is), and a crash leaves the
// three together or none of them. The queue is kept in memory too, so that neither a send nor a
// history read reads the outbox back; at start it is loaded from the
// store. The rest of the outbox (outbox.go: group registrations,
// proposals, Welcomes) stays in its own loop; a channel's messages and its
// other items keep their relative order (sendQueue.before and
// outboxBefore).

// recMessages is the record kind of queued messages (entries of kind
// recOutbox with Kind itemMessage, written before, are taken over at
// start).
const recMessages = "outbox.message"

// maxSendBatch bounds the messages one round of a channel's sender posts
// before it deletes their entries.
const maxSendBatch = 64

// sendQueue holds the queued messages of every channel.
type sendQueue struct {
	mu      sync.Mutex
	chans   map[string]*chanQueue
	ids     map[string]bool          // item ids queued
	started bool                     // senders run (the relay is online)
	waiters map[string]chan struct{} // message id -> closed at its first outcome
	// noBatch: the relay has no batch endpoint (postBatch).
	noBatch atomic.Bool
	// emptyAt is the Client.obGen at which the general outbox was last
	// read without items (0: not yet).
	emptyAt atomic.Uint64
	// posted are entries whose outcome is known, still in the store: the
	// next message's transaction deletes them, or deleter after
	// deleteDelay (deletions.go).
	posted    []*item
	postedNew chan struct{}
}

type chanQueue struct {
	items []*item
	kick  chan struct{}
}

func newSendQueue() *sendQueue {
	return &sendQueue{chans: map[string]*chanQueue{}, ids: map[string]bool{}, waiters: map[string]chan struct{}{},
		postedNew: make(chan struct{}, 1)}
}

// batchPoster is a Relay that posts application messages of a group in
// one request (the relay adapter; relay/API.md).
type batchPoster interface {
	PostMessages(ctx context.Context, groupID []byte, msgs [][]byte) ([]relayclient.PostResult, error)
}

// recordsTx is tx's records, when the engine's records are the store's.
func (c *Client) recordsTx(tx store.Tx) store.RecordsTx {
	if _, mem := c.recs.(*memRecords); mem {
		return nil
	}
	rt, _ := tx.(store.RecordsTx)
	return rt
}

// messageTx returns the hook that writes a message's outbox entry in the
// transaction of its history row, and deletes there the entries of
// messages posted since the last one (*took: the caller gives them back
// with untake if the transaction fails); *out is the entry (nil without a
// relay).
func (c *Client) messageTx(ctx context.Context, d *channel.Descriptor, out **item, took *[]*item) func(store.Tx, *channel.ChatMessage, []byte) error {
	if c.relay == nil {
		return nil
	}
	return func(tx store.Tx, cm *channel.ChatMessage, ct []byte) error {
		if rt := c.recordsTx(tx); rt != nil {
			*took = append(*took, c.sendq.takePosted()...)
			for _, it := range *took {
				if err := rt.DeleteRecord(ctx, it.rec, it.ID); err != nil {
					return err
				}
			}
		}
		m, err := mls.UnmarshalMessage(ct)
		if err != nil || m.PrivateMessage == nil {
			return errf(channel.ErrInvalidEncoding, "own ciphertext does not decode")
		}
		it := &item{ID: newID(), Kind: itemMessage, ChannelID: d.ID, GroupID: d.GroupID, Data: ct,
			Epoch: m.PrivateMessage.Epoch, MessageID: cm.ID, Chat: cm, QueuedAt: time.Now().UTC(), rec: recMessages}
		if rt := c.recordsTx(tx); rt != nil {
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if err := rt.PutRecord(ctx, recMessages, it.ID, b); err != nil {
				return err
			}
			it.stored = true
		}
		*out = it
		return nil
	}
}

// queueMessage queues it (written by messageTx) for its channel's sender
// and returns what closes at its first outcome.
func (c *Client) queueMessage(ctx context.Context, it *item) (<-chan struct{}, error) {
	if !it.stored { // records outside the store (memory store of tests)
		b, err := json.Marshal(it)
		if err != nil {
			return nil, err
		}
		if err := c.recs.PutRecord(ctx, recMessages, it.ID, b); err != nil {
			return nil, err
		}
	}
	q := c.sendq
	q.mu.Lock()
	defer q.mu.Unlock()
	w := make(chan struct{})
	q.waiters[it.MessageID] = w
	c.pushLocked(it)
	return w, nil
}

// pushLocked appends it to its channel's queue (once), starting the
// channel's sender when senders run. q.mu is held.
func (c *Client) pushLocked(it *item) {
	q := c.sendq
	if q.ids[it.ID] {
		return
	}
	q.ids[it.ID] = true
	cq := q.chans[it.ChannelID]
	if cq == nil {
		cq = &chanQueue{kick: make(chan struct{}, 1)}
		q.chans[it.ChannelID] = cq
		if q.started {
			c.startSender(it.ChannelID, cq)
		}
	}
	cq.items = append(cq.items, it)
	select {
	case cq.kick <- struct{}{}:
	default:
	}
}

func (c *Client) startSender(channelID string, cq *chanQueue) {
	c.wg.Add(1)
	go c.sender(channelID, cq)
}

// loadQueued loads the queued messages (taking over those of the general
// outbox written before), at start: they are reported queued while the
// relay is not reached yet.
func (c *Client) loadQueued(ctx context.Context) {
	var its []*item
	for _, kind := range []string{recOutbox, recMessages} {
		recs, err := c.recs.Records(ctx, kind)
		if err != nil {
			c.log.Error("reading the queued messages", "err", err)
		}
		for _, r := range recs {
			var it item
			if err := json.Unmarshal(r.Value, &it); err != nil {
				if kind == recMessages {
					c.log.Error("dropping an unreadable queued message", "id", r.ID, "err", err)
					_ = c.recs.DeleteRecord(ctx, kind, r.ID)
				}
				continue
			}
			if it.Kind == itemMessage {
				it.rec, it.stored = kind, true
				its = append(its, &it)
			}
		}
	}
	q := c.sendq
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range its {
		c.pushLocked(it)
	}
	// In the order queued.
	for _, cq := range q.chans {
		slices.SortStableFunc(cq.items, func(a, b *item) int { return a.QueuedAt.Compare(b.QueuedAt) })
	}
}

// startSenders starts one sender per channel (the relay is online).
func (c *Client) startSenders() {
	q := c.sendq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.started = true
	for id, cq := range q.chans {
		c.startSender(id, cq)
	}
}

// kickAll wakes every channel's sender.
func (q *sendQueue) kickAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, cq := range q.chans {
		select {
		case cq.kick <- struct{}{}:
		default:
		}
	}
}

// kickChannel wakes a channel's sender.
func (q *sendQueue) kickChannel(channelID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cq := q.chans[channelID]; cq != nil {
		select {
		case cq.kick <- struct{}{}:
		default:
		}
	}
}

// before reports whether the channel has a message queued before t (the
// general outbox waits for it).
func (q *sendQueue) before(channelID string, t time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	cq := q.chans[channelID]
	return cq != nil && len(cq.items) > 0 && cq.items[0].QueuedAt.Before(t)
}

// queued is the message ids queued in a channel.
func (q *sendQueue) queued(channelID string) map[string]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]bool{}
	if cq := q.chans[channelID]; cq != nil {
		for _, it := range cq.items {
			out[it.MessageID] = true
		}
	}
	return out
}

// depth is how many messages are queued.
func (q *sendQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ids)
}

// outboxBefore reports whether the general outbox holds an item of the
// channel queued before t (a registration, a proposal or a Welcome the
// channel's messages wait for).
func (c *Client) outboxBefore(ctx context.Context, channelID string, t time.Time) bool {
	// An outbox found without items stays so until the next enqueue.
	gen := c.obGen.Load()
	if gen == c.sendq.emptyAt.Load() {
		return false
	}
	its, err := c.outboxItems(ctx)
	if err != nil {
		return true
	}
	empty := true
	for _, it := range its {
		if it.Kind == itemMessage {
			continue
		}
		empty = false
		if it.ChannelID == channelID && it.QueuedAt.Before(t) {
			return true
		}
	}
	if empty {
		c.sendq.emptyAt.Store(gen)
	}
	return false
}

// sender posts channelID's queued messages until the engine stops.
func (c *Client) sender(channelID string, cq *chanQueue) {
	defer c.wg.Done()
	ctx := c.ctx
	delay := c.cfg.Retry
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-cq.kick:
		}
		for ctx.Err() == nil {
			n, ok := c.sendRound(ctx, channelID, cq)
			if ok {
				delay = c.cfg.Retry
				if n == 0 {
					break
				}
				continue
			}
			// Unreachable, held up or refused for now: retry later
			// (a new message or the follower's first read kicks us).
			select {
			case <-ctx.Done():
				return
			case <-cq.kick:
			case <-time.After(delay):
			}
			delay = min(2*delay, 30*time.Second)
		}
	}
}

// sendRound posts up to maxSendBatch queued messages of the channel in
// order; n: how many left the queue; false: retry after a backoff.
func (c *Client) sendRound(ctx context.Context, channelID string, cq *chanQueue) (n int, ok bool) {
	q := c.sendq
	q.mu.Lock()
	batch := append([]*item(nil), cq.items[:min(len(cq.items), maxSendBatch)]...)
	q.mu.Unlock()
	if len(batch) == 0 {
		return 0, true
	}
	// Post in the epoch the group is in: wait until the log has been read
	// once since we started (the follower kicks us), and after what the
	// general outbox holds for the channel from before.
	if !c.following(ctx, channelID) || c.outboxBefore(ctx, channelID, batch[0].QueuedAt) {
		return 0, false
	}
	var done []outcome
	if bp, isBP := c.relay.(batchPoster); isBP && len(batch) > 1 && !c.sendq.noBatch.Load() {
		done, ok = c.postBatch(ctx, bp, channelID, batch)
	} else {
		done, ok = c.postEach(ctx, channelID, batch)
	}
	if len(done) > 0 {
		// The outcomes are known: report them, then delete the entries
		// (a crash in between posts them again; receivers keep one copy
		// of a message id).
		its := make([]*item, len(done))
		gone := map[string]bool{}
		for i, o := range done {
			its[i] = o.it
			gone[o.it.ID] = true
			c.delivered(o.it, o.status, o.err)
			q.mu.Lock()
			if w := q.waiters[o.it.MessageID]; w != nil {
				close(w)
				delete(q.waiters, o.it.MessageID)
			}
			q.mu.Unlock()
		}
		q.addPosted(its) // deleted later, with other entries (deletions.go)
		q.mu.Lock()
		cq.items = slices.DeleteFunc(cq.items, func(it *item) bool { return gone[it.ID] })
		for _, it := range its {
			delete(q.ids, it.ID)
		}
		q.mu.Unlock()
		if c.obGen.Load() != q.emptyAt.Load() {
			// The general outbox may hold an item that waited for these.
			select {
			case c.obKick <- struct{}{}:
			default:
			}
		}
	}
	if !ok {
		// Whoever waits for a message of this batch learns it is queued.
		q.mu.Lock()
		for _, it := range batch {
			if w := q.waiters[it.MessageID]; w != nil {
				close(w)
				delete(q.waiters, it.MessageID)
			}
		}
		q.mu.Unlock()
	}
	return len(done), ok
}

type outcome struct {
	it     *item
	status string
	err    error
}

// settle decides what err (a post's outcome) does to it: done (sent or
// dropped for good), or kept for a retry; false: the round stops (the
// relay is unreachable or the message must wait).
func (c *Client) settle(ctx context.Context, channelID string, it *item, err error) (*outcome, bool) {
	switch {
	case err == nil:
		return &outcome{it, "sent", nil}, true
	case ctx.Err() != nil || unreachable(ctx, err):
		return nil, false
	case errors.Is(err, relayclient.ErrStaleEpoch):
		// The group is epochs ahead of our copy of it: the message waits
		// for our follower to bring the channel on, then is encrypted
		// again in the new epoch (refresh). Not the message's fault: no
		// attempt is counted.
		return nil, false
	case retryable(err) && it.Attempts < maxAttempts:
		it.Attempts++
		if b, err := json.Marshal(it); err == nil {
			_ = c.recs.PutRecord(ctx, it.recKind(), it.ID, b)
		}
		return nil, false
	}
	c.log.Warn("the relay refused an outgoing message; dropped", "channel", channelID, "err", err)
	return &outcome{it, "dropped", err}, true
}

// postEach posts batch one message at a time, stopping at the first that
// must wait.
func (c *Client) postEach(ctx context.Context, channelID string, batch []*item) ([]outcome, bool) {
	var done []outcome
	for _, it := range batch {
		err := c.deliver(ctx, it)
		c.noteRelay(ctx, err)
		o, ok := c.settle(ctx, channelID, it, err)
		if o != nil {
			done = append(done, *o)
		}
		if !ok {
			return done, false
		}
	}
	return done, true
}

// maxBatchBytes bounds the messages of one batch request (base64 in JSON
// stays well under the relay's request limit).
const maxBatchBytes = 3 << 20

// postBatch posts batch in one request (fewer round trips and one
// transaction at the relay). Each message is settled by its own result; a
// refused one stays queued while those after it that the relay accepted
// are done (the relay refuses one sender's messages of one epoch alike).
func (c *Client) postBatch(ctx context.Context, bp batchPoster, channelID string, batch []*item) ([]outcome, bool) {
	var msgs [][]byte
	size := 0
	for _, it := range batch {
		if err := c.refresh(ctx, it); err != nil {
			batch = batch[:len(msgs)]
			break
		}
		if size += len(it.Data); size > maxBatchBytes && len(msgs) > 0 {
			batch = batch[:len(msgs)]
			break
		}
		msgs = append(msgs, it.Data)
	}
	if len(msgs) == 0 {
		return c.postEach(ctx, channelID, batch[:1])
	}
	rs, err := bp.PostMessages(ctx, batch[0].GroupID, msgs)
	var re *relayclient.Error
	if errors.As(err, &re) && (re.Status == http.StatusNotFound && re.Code == "http_error" || re.Status == http.StatusMethodNotAllowed) {
		c.sendq.noBatch.Store(true) // a relay without the batch endpoint
		return c.postEach(ctx, channelID, batch)
	}
	c.noteRelay(ctx, err)
	if err != nil {
		// The request failed as a whole: as the first message's outcome.
		o, ok := c.settle(ctx, channelID, batch[0], err)
		if o != nil {
			return []outcome{*o}, ok
		}
		return nil, ok
	}
	var done []outcome
	ok := true
	for i, r := range rs {
		o, more := c.settle(ctx, channelID, batch[i], r.Err)
		if o != nil {
			done = append(done, *o)
		}
		ok = ok && more
	}
	return done, ok
}

// deleteQueued deletes the entries of its, in one transaction when the
// store allows.
func (c *Client) deleteQueued(ctx context.Context, its []*item) {
	if _, mem := c.recs.(*memRecords); !mem {
		err := c.p.Store().Update(ctx, func(tx store.Tx) error {
			rt := c.recordsTx(tx)
			if rt == nil {
				return errNoRecordsTx
			}
			for _, it := range its {
				if err := rt.DeleteRecord(ctx, it.rec, it.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			return
		}
	}
	for _, it := range its {
		_ = c.recs.DeleteRecord(ctx, it.rec, it.ID)
	}
}

var errNoRecordsTx = errors.New("client: the store's transactions have no records")

// waitSent waits (bounded by d) for the first outcome of the message
// behind w; false: it is still queued.
func (c *Client) waitSent(ctx context.Context, messageID string, w <-chan struct{}, d time.Duration) bool {
	if c.reachable.Load() == 2 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w:
	case <-t.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	_, out := c.outcomes[messageID]
	c.mu.Unlock()
	if !out {
		c.sendq.mu.Lock()
		delete(c.sendq.waiters, messageID)
		c.sendq.mu.Unlock()
	}
	return out
}
