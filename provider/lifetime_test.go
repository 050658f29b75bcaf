package provider_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

// TestMaxLeafLifetime: RFC 9420 §7.2 makes the application bound a leaf's
// total lifetime. The provider does by default (mls.DefaultMaxLifetime): a
// key package valid for longer is refused in an Add, one within it is taken.
func TestMaxLeafLifetime(t *testing.T) {
	alice := openOn(t, memory.New(), "alice")
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	longBob, err := provider.New(ctx, memory.New(), provider.Options{Name: "bob", KeyPackageLifetime: 2 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{newKeyPackage(t, longBob)}})
	if !errors.Is(err, mls.ErrInvalidProposal) || !errors.Is(err, mls.ErrInvalidLeafNode) {
		t.Fatalf("a key package valid for two years was accepted or refused for another reason: %v", err)
	}
	bob := openOn(t, memory.New(), "bob")
	if _, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{newKeyPackage(t, bob)}}); err != nil {
		t.Fatalf("a key package with the default lifetime was refused: %v", err)
	}
}

// newKeyPackage generates one key package of p, decoded.
func newKeyPackage(t testing.TB, p *provider.Provider) *mls.KeyPackage {
	t.Helper()
	kps, err := p.GenerateKeyPackages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mls.UnmarshalMessage(kps[0])
	if err != nil || m.KeyPackage == nil {
		t.Fatalf("key package: %v", err)
	}
	return m.KeyPackage
}
