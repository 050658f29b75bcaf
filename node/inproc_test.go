package node_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/provider"
)

// inProc is a node in this process: a provider on a SQLite store in a temp
// directory (durable, fsync on commit, as in `serve`), its channel manager
// and node.Server, behind an httptest.Server on loopback.
type inProc struct {
	srv *node.Server
	hs  *httptest.Server
	c   *node.Client
}

func newInProc(tb testing.TB, name string) *inProc {
	tb.Helper()
	ctx := context.Background()
	p, err := provider.Open(ctx, filepath.Join(tb.TempDir(), name), provider.OpenOptions{Options: channel.ProviderOptions(provider.Options{Name: name})})
	if err != nil {
		tb.Fatal(err)
	}
	userNames.Store(string(p.UserID()), name)
	cl, err := client.New(ctx, p, client.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	// Failures (5xx) are logged to stderr: a 5xx is a bug.
	srv := node.New(cl, node.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	hs := httptest.NewServer(srv.Handler())
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	tb.Cleanup(func() {
		hs.Close()
		tr.CloseIdleConnections()
		cl.Close()
		p.Close()
	})
	return &inProc{srv: srv, hs: hs, c: &node.Client{BaseURL: hs.URL, HTTP: &http.Client{Transport: tr}}}
}

// inProcPair is alice's channel with bob joined, both in this process.
func inProcPair(tb testing.TB) (alice, bob *inProc, chn *channelOf) {
	tb.Helper()
	alice, bob = newInProc(tb, "alice"), newInProc(tb, "bob")
	return alice, bob, pair(tb, alice.c, bob.c)
}
