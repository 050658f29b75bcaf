package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// TestRelayLoad: 20 node processes and one relay on loopback, 10 channels
// of 6 members; every member sends in a paced loop for a bounded time;
// the test reports messages per second (sent and delivered) and p50/p99
// delivery latency (sender's timestamp to the receiver's stored time).
// -short skips it; SPACEPANDA_LOAD_FULL=1 sends for 30 s instead of 4 s.
// It runs on SQLite, and on PostgreSQL when SPACEPANDA_TEST_POSTGRES is set.
func TestRelayLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test (-short)")
	}
	dur := 4 * time.Second
	if os.Getenv("SPACEPANDA_LOAD_FULL") != "" {
		dur = 30 * time.Second
	}
	t.Run("sqlite", func(t *testing.T) {
		u := rlRelayProc(t, nil)
		if u == "" {
			t.Skip("no real relay for nodes: they log in with device certificates once the provider carries them (issue 12)")
		}
		rlLoad(t, u, dur)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := os.Getenv("SPACEPANDA_TEST_POSTGRES")
		if pg == "" {
			t.Skip("SPACEPANDA_TEST_POSTGRES not set")
		}
		rlLoad(t, rlRelayProc(t, []string{"--postgres", pg}), dur)
	})
}

func rlLoad(t *testing.T, relayURL string, dur time.Duration) {
	const nNodes, nChannels, perChannel = 20, 10, 6
	pace := 100 * time.Millisecond // per member and channel (offered 600 msg/s)
	if v, err := time.ParseDuration(os.Getenv("SPACEPANDA_LOAD_PACE")); err == nil && v > 0 {
		pace = v
	}
	sfx := make([]byte, 3)
	rand.Read(sfx)
	nodes := make([]*proc, nNodes)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := rlNode(t, fmt.Sprintf("n%02d-%x", i, sfx), relayURL)
			mu.Lock()
			nodes[i] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Channel c: created by node c, members c..c+5 (mod 20).
	chans := make([]string, nChannels)
	members := make([][]*proc, nChannels)
	for c := range chans {
		owner := nodes[c]
		chans[c] = rlCreate(t, owner, fmt.Sprintf("load-%d", c))
		members[c] = []*proc{owner}
		for k := 1; k < perChannel; k++ {
			p := nodes[(c+k*3)%nNodes]
			rlInvite(t, owner, chans[c], p)
			members[c] = append(members[c], p)
		}
	}
	for c := range chans {
		for _, p := range members[c][1:] {
			rlWaitJoined(t, p, chans[c])
		}
	}
	// Everyone in the last epoch before sending.
	for c := range chans {
		rlEventually(t, 30*time.Second, "members converge", func() (bool, string) {
			e0, _, _ := rlState(members[c][0], chans[c])
			for _, p := range members[c][1:] {
				if e, _, err := rlState(p, chans[c]); err != nil || e != e0 {
					return false, fmt.Sprintf("%s epoch %d vs %d (%v)", p.name, e, e0, err)
				}
			}
			return true, ""
		})
	}

	var sent, failed atomic.Int64
	ctx := context.Background()
	start := time.Now()
	stop := start.Add(dur)
	for c := range chans {
		for _, p := range members[c] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := time.Now()
				for i := 0; time.Now().Before(stop); i++ {
					var r node.RelaySendResponse
					err := p.c.Do(ctx, "POST", rlPath(chans[c], "/messages"), node.SendRequest{Text: fmt.Sprintf("%s %d", p.name, i)}, &r)
					if err != nil {
						failed.Add(1)
					} else {
						sent.Add(1)
					}
					next = next.Add(pace)
					time.Sleep(time.Until(next))
				}
			}()
		}
	}
	wg.Wait()
	sendTime := time.Since(start)
	// Wait for delivery: every member holds every message of its channel.
	var lat []time.Duration
	delivered := 0
	for c := range chans {
		// The total sent to channel c is the sum of what its members hold
		// of their own messages.
		total := 0
		for _, p := range members[c] {
			for _, m := range rlHistory(t, p, chans[c]) {
				if m.Sender.UserID == p.name {
					total++
				}
			}
		}
		for _, p := range members[c] {
			h := rlWaitHistory(t, p, chans[c], total)
			for _, m := range h {
				if m.Sender.UserID == p.name {
					continue
				}
				ts, err1 := time.Parse(time.RFC3339Nano, m.SentAt)
				rt, err2 := time.Parse(time.RFC3339Nano, m.ReceivedAt)
				if err1 == nil && err2 == nil {
					lat = append(lat, rt.Sub(ts))
					delivered++
				}
			}
		}
	}
	elapsed := time.Since(start)
	var limited int64
	for _, p := range nodes {
		var st node.RelayStatus
		if err := p.c.Do(ctx, "GET", "/v1/relay", nil, &st); err != nil {
			t.Fatal(err)
		}
		limited += st.RateLimited
	}
	t.Logf("429 answers waited out by the nodes: %d", limited)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	t.Logf("pace %v per member: %d nodes, %d channels x %d members, %v of sending: sent %d (%d failed), %.0f msg/s sent, %d deliveries (%.0f/s until all delivered in %v); latency p50 %v p99 %v max %v",
		pace, nNodes, nChannels, perChannel, sendTime.Round(time.Millisecond), sent.Load(), failed.Load(),
		float64(sent.Load())/sendTime.Seconds(), delivered, float64(delivered)/elapsed.Seconds(), elapsed.Round(time.Millisecond),
		pct(0.5).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), pct(1).Round(100*time.Microsecond))
	if failed.Load() > 0 {
		t.Errorf("%d sends failed", failed.Load())
	}
}
