package node

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spacepanda/spacepanda/client"
)

// domain registers the engine's gauges: outbox depth, held messages, sync
// lag (channels whose follower is not running), key package pool.
func (m *metrics) domain(c *client.Client) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	ctx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*time.Second)
	}
	gauge("spacepanda_outbox_depth", "Items waiting for the relay.", func() float64 {
		cx, cancel := ctx()
		defer cancel()
		return float64(c.OutboxDepth(cx))
	})
	gauge("spacepanda_held_messages", "Future-epoch messages held.", func() float64 {
		n := 0
		for _, p := range c.Progress() {
			n += p.Held
		}
		return float64(n)
	})
	gauge("spacepanda_held_dropped_total", "Held messages dropped over the bounds.", func() float64 { return float64(c.Stats().HeldDropped) })
	gauge("spacepanda_entries_skipped_total", "Log entries that did not process.", func() float64 { return float64(c.Stats().EntriesSkipped) })
	gauge("spacepanda_relay_reachable", "1 when the relay answered last time.", func() float64 {
		if c.Reachable() {
			return 1
		}
		return 0
	})
	gauge("spacepanda_sync_lag_channels", "Channels not being followed (relay mode).", func() float64 {
		if !c.HasRelay() {
			return 0
		}
		n := 0
		for _, p := range c.Progress() {
			if p.Done {
				n++
			}
		}
		return float64(n)
	})
	gauge("spacepanda_key_package_pool", "Local unexpired key packages.", func() float64 {
		cx, cancel := ctx()
		defer cancel()
		kc, err := c.Provider().KeyPackageCount(cx)
		if err != nil {
			return -1
		}
		return float64(kc.OneTime)
	})
}
