package provider_test

// Benchmarks: what durability costs. Run with
//
//	go test -run '^$' -bench . -benchtime 2s ./provider/
//
// The bare engine rows are the crypto floor; the memory rows add the
// provider's encoding and locking; the SQLite rows add one durable
// (fsync'd) transaction per operation.

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

func benchProvider(b *testing.B, backend, name string) *provider.Provider {
	b.Helper()
	if backend == "sqlite" {
		return open(b, b.TempDir(), name)
	}
	p, err := provider.New(ctx, memory.New(), provider.Options{Name: name})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// BenchmarkKeyPackages: batches of 100 key packages, stored in one
// transaction.
func BenchmarkKeyPackages(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite"} {
		b.Run(backend, func(b *testing.B) {
			p := benchProvider(b, backend, "bob")
			start := time.Now()
			for b.Loop() {
				if _, err := p.GenerateKeyPackages(ctx, 100); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "kp/s")
		})
	}
}

// pairGroup makes a two-member group (alice on backend, bob in memory).
func pairGroup(b *testing.B, backend string) (alice, bob *provider.Provider, gid []byte) {
	b.Helper()
	alice, bob = benchProvider(b, backend, "alice"), benchProvider(b, "memory", "bob")
	kps, err := bob.GenerateKeyPackages(ctx, 1)
	if err != nil {
		b.Fatal(err)
	}
	if gid, err = alice.CreateGroup(ctx, nil, nil); err != nil {
		b.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{keyPackage(b, enc(kps[0]))}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bob.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		b.Fatal(err)
	}
	return alice, bob, gid
}

var payload = make([]byte, 100)

// BenchmarkSend: one 100-byte application message.
func BenchmarkSend(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		s, err := suite.New(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
		if err != nil {
			b.Fatal(err)
		}
		priv, _, err := s.GenerateSignatureKeyPair(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		signer, err := s.NewSigner(priv)
		if err != nil {
			b.Fatal(err)
		}
		g, err := mls.CreateGroup(s, signer, nil, mls.LeafOptions{Credential: tree.NewBasicCredential([]byte("alice"))}, nil, mls.Config{})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := g.Encrypt(payload, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, backend := range []string{"memory", "sqlite"} {
		b.Run(backend, func(b *testing.B) {
			alice, _, gid := pairGroup(b, backend)
			for b.Loop() {
				if _, err := alice.Encrypt(ctx, gid, payload, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReceive: processing one 100-byte application message (the
// messages are made before the timer starts).
func BenchmarkReceive(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite"} {
		b.Run(backend, func(b *testing.B) {
			alice, bob, gid := pairGroup(b, backend)
			// Bob's messages, made in batches so the receiver's out-of-order
			// window is never exceeded.
			const batch = 256
			msgs := make([]*mls.Message, 0, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(msgs) == 0 {
					b.StopTimer()
					for j := 0; j < batch; j++ {
						m, err := bob.Encrypt(ctx, gid, payload, nil)
						if err != nil {
							b.Fatal(err)
						}
						msgs = append(msgs, m)
					}
					b.StartTimer()
				}
				if _, err := alice.Process(ctx, gid, msgs[0]); err != nil {
					b.Fatal(err)
				}
				msgs = msgs[1:]
			}
		})
	}
}
