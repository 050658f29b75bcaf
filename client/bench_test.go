package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/relay"
)

// The send path of the engine against a real relay (in-process HTTP
// server over a SQLite relay store) with SQLite stores on both sides:
// every Send returns once its message is durable at the sender and
// accepted (durably) by the relay; the timer stops once the receiver has
// stored every message too.
//
//	go test -run '^$' -bench BenchmarkSend -benchtime 2s ./client
//
// "seq" is one sender; "c8_1chan" and "c8_4chans" are 8 concurrent
// senders on one channel and on 4.
func BenchmarkSend(b *testing.B) {
	for _, cfg := range []struct {
		name              string
		senders, channels int
	}{{"seq", 1, 1}, {"c8_1chan", 8, 1}, {"c8_4chans", 8, 4}} {
		b.Run(cfg.name, func(b *testing.B) {
			url := benchRelay(b)
			alice, bob := benchMember(b, url, "alice"), benchMember(b, url, "bob")
			if _, err := bob.PutContact(ctx, alice.uid, nil); err != nil {
				b.Fatal(err)
			}
			var chans []string
			for range cfg.channels {
				d, err := alice.CreateChannel(ctx, "bench", false, false)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := alice.Invite(ctx, d.ID, client.InviteRequest{UserID: bob.uid}); err != nil {
					b.Fatal(err)
				}
				benchWait(b, "bob joins", func() bool {
					st, err := bob.State(ctx, d.ID)
					return err == nil && st.State == client.StateActive
				})
				chans = append(chans, d.ID)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for s := range cfg.senders {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						r, err := alice.Send(ctx, chans[(int(i)+s)%len(chans)], fmt.Sprintf("benchmark message %d", i), "")
						if err != nil {
							b.Error(err)
							return
						}
						if r.Status != "sent" {
							b.Errorf("message %d: status %s", i, r.Status)
							return
						}
					}
				})
			}
			wg.Wait()
			sent := b.Elapsed()
			benchWait(b, "bob has every message", func() bool {
				n := 0
				for _, ch := range chans {
					h, err := bob.History(ctx, ch, 0, 0, 100000)
					if err != nil {
						return false
					}
					n += len(h)
				}
				return n >= b.N
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/sent.Seconds(), "sent/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "delivered/s")
		})
	}
}

func benchRelay(b *testing.B) string {
	st, err := relay.OpenSQLite(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	srv := relay.New(st, relay.Options{Rate: 1e6, Burst: 1e6})
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	return hs.URL
}

func benchMember(b *testing.B, url, name string) *member {
	c, err := client.Open(ctx, client.Config{DataDir: filepath.Join(b.TempDir(), name), DisplayName: name, RelayURL: url,
		Wait: 2 * time.Second, Retry: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &member{Client: c, uid: c.Manager().Identity()}
}

func benchWait(b *testing.B, what string, cond func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("not within 60s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
