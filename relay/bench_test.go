package relay

import (
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

// BenchmarkPost measures accepted application messages per second through
// the HTTP handler (loopback), 10 groups, 8 or 64 parallel posters, per
// backend. A post is answered once it is durable (SQLite: WAL with
// synchronous=FULL, fsync; PostgreSQL: as the server is configured);
// concurrent posts share a transaction (group commit).
func BenchmarkPost(b *testing.B) {
	for _, be := range backends {
		for _, posters := range []int{8, 64} {
			b.Run(fmt.Sprintf("%s/posters=%d", be.name, posters), func(b *testing.B) { benchPost(b, be, posters) })
		}
	}
}

// BenchmarkReadTail measures a reader's read of the newest entry of a
// group's log (what every long poll does when a message arrives), with
// the log holding 100 or 10,000 entries before it: the read must seek to
// the reader's position, not walk the log from the start of its window.
func BenchmarkReadTail(b *testing.B) {
	for _, be := range backends {
		for _, n := range []int{100, 10_000} {
			b.Run(fmt.Sprintf("%s/entries=%d", be.name, n), func(b *testing.B) { benchReadTail(b, be, n) })
		}
	}
}

func benchReadTail(b *testing.B, be backend, n int) {
	ctx := b.Context()
	st := be.open(b)
	gid := []byte("g")
	if err := st.CreateGroup(ctx, gid, "alice", 0, time.Now()); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	for done := 0; done < n; done += batch {
		ms := make([]Message, min(batch, n-done))
		for i := range ms {
			ms[i] = Message{GroupID: gid, Kind: "application", Sender: "alice", Data: []byte("x"), ReceivedAt: time.Now()}
		}
		for _, r := range st.AppendAll(ctx, ms) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ms, err := st.Messages(ctx, gid, "alice", int64(n-1), 100, 1<<20)
		if err != nil || len(ms) != 1 || ms[0].Seq != int64(n) {
			b.Fatalf("read of the tail: %d entries, %v", len(ms), err)
		}
	}
}

func benchPost(b *testing.B, be backend, posters int) {
	st := be.open(b)
	_, base := newTestServer(b, st, Options{Rate: 1e9, Burst: 1 << 30})
	alice := newIdent(b, "alice")
	ca := login(b, base, alice)
	const groups = 10
	for g := range groups {
		setupGroup(b, ca, []byte(fmt.Sprint("g", g)), alice)
	}
	msgs := make([][]byte, groups)
	for g := range groups {
		msgs[g] = privMsg(b, []byte(fmt.Sprint("g", g)), 0, mls.ContentTypeApplication)
	}
	// Keep-alive connections for every poster, as real clients hold.
	tr := &http.Transport{MaxIdleConnsPerHost: posters}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var n atomic.Int64
	b.SetParallelism(max(1, posters/runtime.GOMAXPROCS(0)))
	cpu0 := processCPU()
	batches0 := sqlOf(b, st).batch.batches.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &client{t: b, base: base, hc: hc, token: ca.token}
		for pb.Next() {
			g := n.Add(1) % groups
			gid := []byte(fmt.Sprint("g", g))
			c.must(200, "POST", "/v1/groups/"+gidPath(gid)+"/messages",
				map[string]any{"message": msgs[g], "kind": "application", "epoch": 0})
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// CPU of this process (relay and posters, not a PostgreSQL server) per
	// message: steadier than msgs/s on a machine shared with other work.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
	// Entries per transaction: how well the group commit batches.
	b.ReportMetric(float64(b.N)/float64(sqlOf(b, st).batch.batches.Load()-batches0), "msgs/batch")
}
