package client

import (
	"context"
	"time"
)

// Deleting the outbox entries of posted messages. A message's entry is
// deleted once its outcome is known (sent, or dropped for good), but not
// in a transaction of its own: the next message sent deletes the entries
// posted before it in its own transaction, and what no message takes
// along within deleteDelay goes in one transaction for all channels. A
// crash before the deletion posts those messages again: the relay orders
// the same ciphertext twice and receivers pass the copy over as read
// (its key is used up), so nothing shows twice.

// deleteDelay is how long a posted entry waits for a message to delete it.
const deleteDelay = 100 * time.Millisecond

// addPosted queues its for deletion.
func (q *sendQueue) addPosted(its []*item) {
	q.mu.Lock()
	q.posted = append(q.posted, its...)
	q.mu.Unlock()
	select {
	case q.postedNew <- struct{}{}:
	default:
	}
}

// takePosted takes the entries queued for deletion.
func (q *sendQueue) takePosted() []*item {
	q.mu.Lock()
	defer q.mu.Unlock()
	its := q.posted
	q.posted = nil
	return its
}

// untake gives back entries taken by a transaction that failed.
func (q *sendQueue) untake(its []*item) {
	if len(its) > 0 {
		q.addPosted(its)
	}
}

// deleter deletes the entries no message took along, deleteDelay after
// they were queued, and what is left when the Client stops (the store
// closes after it).
func (c *Client) deleter() {
	defer c.wg.Done()
	q := c.sendq
	flush := func(ctx context.Context) {
		if its := q.takePosted(); len(its) > 0 {
			c.deleteQueued(ctx, its)
		}
	}
	defer flush(context.WithoutCancel(c.ctx))
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-q.postedNew:
		}
		if !sleepCtx(c.ctx, deleteDelay) {
			return
		}
		flush(c.ctx)
	}
}
