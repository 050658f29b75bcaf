package relay

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
)

// BenchmarkPost measures accepted application messages per second through
// the HTTP handler (loopback), 10 groups, parallel posters, per backend.
// Each post is one durable transaction (SQLite: WAL fsync; PostgreSQL: as
// the server is configured).
func BenchmarkPost(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			_, base := newTestServer(b, st, Options{Rate: 1e9, Burst: 1 << 30})
			alice := newIdent(b, "alice")
			ca := login(b, base, alice)
			const groups = 10
			for g := range groups {
				setupGroup(b, ca, []byte(fmt.Sprint("g", g)), alice)
			}
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := &client{t: b, base: base, token: ca.token}
				for pb.Next() {
					gid := []byte(fmt.Sprint("g", n.Add(1)%groups))
					c.must(200, "POST", "/v1/groups/"+gidPath(gid)+"/messages",
						map[string]any{"message": privMsg(b, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
