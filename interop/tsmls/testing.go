package tsmls

import (
	"context"
	"errors"
	"os"
	"testing"
)

// RequiredEnv names the environment variable that makes a missing node a
// test failure instead of a skip: CI=true (set by CI systems).
const RequiredEnv = "CI"

// Required reports whether the interop tests must run (CI=true).
func Required() bool { return os.Getenv(RequiredEnv) == "true" }

// StartT starts a peer for a test and initialises it with identity and
// suiteID; the peer is closed at the end of the test. When node or the
// peer's node_modules is missing, the test is skipped with a clear message,
// except under CI=true, where it fails.
func StartT(t testing.TB, identity string, suiteID uint16) *Peer {
	t.Helper()
	p := StartUninitT(t)
	if err := p.Init(identity, suiteID); err != nil {
		t.Fatalf("init ts-mls peer %s (suite %d): %v", identity, suiteID, err)
	}
	return p
}

// StartUninitT is StartT without the init command, for tests that send
// their own (Peer.InitWithLifetime, or Peer.Call with extra fields).
func StartUninitT(t testing.TB) *Peer {
	t.Helper()
	// Not t.Context(): it is cancelled before Cleanup runs, which would
	// kill node before Close can end it cleanly.
	p, err := Start(context.Background())
	if errors.Is(err, ErrNodeUnavailable) {
		if Required() {
			t.Fatalf("ts-mls interop peer required (CI=true) but unavailable: %v", err)
		}
		t.Skipf("skipping ts-mls interop test: %v (install Node 20+ and run `npm ci` in interop/tsmls; CI=true makes this a failure)", err)
	}
	if err != nil {
		t.Fatalf("starting ts-mls peer: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing ts-mls peer: %v", err)
		}
	})
	return p
}
