package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Messages per second through one node with durable state: in-process
// HTTP servers (loopback, keep-alive) over providers on SQLite stores (WAL,
// synchronous=FULL: every accepted message is fsynced before the answer).
//
//	go test -run '^$' -bench 'BenchmarkNode' -benchtime 2s ./node
//
// Send: POST /v1/channels/{id}/messages on alice's node. Inbox: POST
// /v1/channels/{id}/inbox on bob's node with ciphertexts alice made beforehand
// (outside the timer). "seq" is one client; "c8" is 8 concurrent clients, on
// one channel and on 8 channels (MLS state is per channel, so one channel
// serializes its writers).
func BenchmarkNodeSend(b *testing.B) {
	for _, cfg := range benchConfigs {
		b.Run(cfg.name, func(b *testing.B) {
			alice, bob, first := inProcPair(b)
			chans := benchChannels(b, alice, bob, first, cfg.channels)
			ctx := context.Background()
			b.ResetTimer()
			runClients(b, cfg.clients, func(i int) error {
				_, err := alice.c.Send(ctx, chans[i%len(chans)].id, "benchmark message", "")
				return err
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func BenchmarkNodeInbox(b *testing.B) {
	for _, cfg := range benchConfigs {
		b.Run(cfg.name, func(b *testing.B) {
			alice, bob, first := inProcPair(b)
			chans := benchChannels(b, alice, bob, first, cfg.channels)
			ctx := context.Background()
			cts := make([]string, b.N)
			for i := range cts {
				cts[i] = must(alice.c.Send(ctx, chans[i%len(chans)].id, "benchmark message", "")).Ciphertext
			}
			b.ResetTimer()
			runClients(b, cfg.clients, func(i int) error {
				_, err := bob.c.Inbox(ctx, chans[i%len(chans)].id, cts[i])
				return err
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

var benchConfigs = []struct {
	name              string
	clients, channels int
}{
	{"seq", 1, 1},
	{"c8_1chan", 8, 1},
	{"c8_8chans", 8, 8},
}

func benchChannels(b *testing.B, alice, bob *inProc, first *channelOf, n int) []*channelOf {
	chans := []*channelOf{first}
	for len(chans) < n {
		chans = append(chans, pair(b, alice.c, bob.c))
	}
	return chans
}

// runClients runs op(0..b.N-1) on n concurrent clients, each taking the
// next index.
func runClients(b *testing.B, n int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					once.Do(func() { first = fmt.Errorf("op %d: %w", i, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}
