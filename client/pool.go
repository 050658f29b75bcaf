package client

import (
	"context"
	"errors"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// topUp keeps PoolSize one-time key packages and a last-resort one
// published at the relay.
func (c *Client) topUp(ctx context.Context) error {
	n, lastResort, err := c.relay.KeyPackageCount(ctx)
	c.noteRelay(ctx, err)
	if err != nil {
		return err
	}
	var lr []byte
	if !lastResort {
		if lr, err = c.p.GenerateLastResortKeyPackage(ctx); err != nil {
			return err
		}
	}
	var kps [][]byte
	if n < c.cfg.PoolLow || (n < c.cfg.PoolSize && lr != nil) {
		if kps, err = c.mgr.GenerateKeyPackages(ctx, c.cfg.PoolSize-n); err != nil {
			return err
		}
	}
	if len(kps) == 0 && lr == nil {
		return nil
	}
	return c.relay.PublishKeyPackages(ctx, kps, lr)
}

// KeyPackagePool is the relay's count of our one-time key packages (-1
// without a relay or when it does not answer).
func (c *Client) KeyPackagePool(ctx context.Context) int {
	if c.relay == nil {
		return -1
	}
	n, _, err := c.relay.KeyPackageCount(ctx)
	if err != nil {
		return -1
	}
	return n
}

func (c *Client) kickPool() {
	select {
	case c.kpKick <- struct{}{}:
	default:
	}
}

func (c *Client) poolLoop() {
	defer c.wg.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if err := c.topUp(c.ctx); err != nil && c.ctx.Err() == nil {
			c.log.Warn("key package top-up failed", "err", err)
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.kpKick:
		}
	}
}

func (c *Client) welcomeLoop() {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		ws, err := c.relay.Welcomes(c.ctx, c.cfg.Wait)
		c.noteRelay(c.ctx, err)
		if err != nil {
			if c.ctx.Err() == nil {
				sleepCtx(c.ctx, time.Second)
			}
			continue
		}
		deferred := false
		for _, w := range ws {
			deferred = c.useWelcome(c.ctx, w) || deferred
		}
		if len(ws) > 0 {
			c.kickPool()
		}
		if deferred {
			// Unacknowledged Welcomes come back at once: one pause per
			// round, however many there are (a member posting Welcomes
			// for our channels must not slow the others down).
			sleepCtx(c.ctx, 200*time.Millisecond)
		}
	}
}

// maxWelcomeRetries bounds the retries of a Welcome for a channel whose
// group we still hold.
const maxWelcomeRetries = 50

// useWelcome joins from a queued Welcome (or keeps it as a pending
// invitation), then acknowledges it; deferred: it is left for a later
// round (not acknowledged).
func (c *Client) useWelcome(ctx context.Context, w relayclient.Welcome) (deferred bool) {
	var keep bool
	var err error
	if w.From != c.mgr.Identity() || w.FromDevice != c.p.DeviceID().String() {
		keep, err = c.screenWelcome(ctx, w)
	} else {
		// A Welcome this device sent to another of our devices reaches
		// our user's queue, so us too: nothing to join.
		keep = true
	}
	switch {
	case err != nil:
		c.log.Warn("keeping a Welcome as an invitation failed", "from", w.From, "err", err)
		return true // not acknowledged: it comes again
	case keep:
	default:
		d, err := c.join(ctx, w.Welcome, w.RatchetTree)
		switch {
		case err == nil:
			c.log.Info("joined from a queued Welcome", "channel", d.ID, "from", w.From)
		case errors.Is(err, channel.ErrChannelExists):
			// We still hold the group: maybe a removal we have not read
			// yet precedes this Welcome in the log. Try again later
			// (bounded), then give up on it as a duplicate.
			c.mu.Lock()
			c.retried[w.ID]++
			n := c.retried[w.ID]
			c.mu.Unlock()
			if n < maxWelcomeRetries {
				return true
			}
			c.log.Warn("a queued Welcome for a channel we hold", "channel", channel.ChannelID(w.GroupID), "from", w.From)
			c.emit(EventDelivery, "", map[string]any{"status": "skipped", "kind": "welcome", "sender": w.From, "error": err.Error()})
		case ctx.Err() != nil:
			return false
		default:
			// A Welcome we cannot use stays useless: acknowledge it
			// rather than retry forever, and say so.
			c.log.Warn("cannot join from a queued Welcome", "from", w.From, "err", err)
			c.emit(EventDelivery, "", map[string]any{"status": "skipped", "kind": "welcome", "sender": w.From, "error": err.Error()})
		}
	}
	if err := c.relay.AckWelcome(ctx, w.ID); err != nil && !errors.Is(err, relayclient.ErrNotFound) {
		c.log.Warn("acknowledging a Welcome failed", "id", w.ID, "err", err)
	}
	return false
}
