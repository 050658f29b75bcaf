package provider_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// TestKeyPackageStoreBounded: a victim whose key packages are claimed
// from the relay over and over (each claim makes its node publish a new
// one, never used) keeps a bounded store: the oldest unused one-time and
// last-resort packages go, expired ones too, and the newest still join.
func TestKeyPackageStoreBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "store.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Now()
	p, err := provider.New(ctx, st, provider.Options{Name: "victim", Now: func() time.Time { return clock },
		MaxStoredKeyPackages: 5, MaxStoredLastResort: 2, KeyPackageLifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		clock = clock.Add(time.Second)
		if _, err := p.GenerateKeyPackages(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if round%5 == 0 {
			if _, err := p.GenerateLastResortKeyPackage(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := p.KeyPackageCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.OneTime != 5 || n.LastResort != 2 {
		t.Fatalf("after 50 claims: %+v stored, want 5 one-time and 2 last-resort", n)
	}
	// A day later all have expired; the next generation prunes them.
	clock = clock.Add(48 * time.Hour)
	if _, err := p.GenerateKeyPackages(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if pruned, err := p.PruneKeyPackages(ctx); err != nil || pruned != 0 {
		t.Fatalf("expired key packages left behind: %d %v", pruned, err)
	}
}
