package channel_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
)

// BenchmarkSendOneChannel measures sends to one channel from 16
// concurrent callers (a member posting faster than one fsync per message,
// a bot, a paste of many lines), on SQLite: each send is durable (its
// history row and the ratchet) before it returns.
func BenchmarkSendOneChannel(b *testing.B) {
	ctx := context.Background()
	alice := newSQLPeer(b, "alice", channel.Options{}, false)
	ch := must[*channel.Descriptor](b)(alice.CreateChannel(ctx, "bench", false)).ID
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := alice.SendMessage(ctx, ch, fmt.Sprint("m", n.Add(1)), ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
