package provider_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
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
	s := alice.Suite()
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	long, _, err := mls.NewKeyPackage(s, nil, signer, tree.NewBasicCredential([]byte("bob")),
		mls.KeyPackageOptions{Lifetime: 2 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{long}})
	if !errors.Is(err, mls.ErrInvalidProposal) || !errors.Is(err, mls.ErrInvalidLeafNode) {
		t.Fatalf("a key package valid for two years was accepted or refused for another reason: %v", err)
	}
	short, _, err := mls.NewKeyPackage(s, nil, signer, tree.NewBasicCredential([]byte("bob")), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{short}}); err != nil {
		t.Fatalf("a key package with the default lifetime was refused: %v", err)
	}
}
