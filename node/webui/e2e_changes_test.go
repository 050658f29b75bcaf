package webui_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestBrowserChangesAndDevices drives e2e/changes.mjs against real
// processes: a relay, alice, bob and carol, and "phone", a second device
// of alice started with `serve --link`. The driver stops the relay so
// that a removal and a role change queue (the Members view shows them as
// pending), restarts it so that they land or fail (shown with the
// reason), then lists alice's devices, draws a link code and links phone
// with it from phone's own page.
func TestBrowserChangesAndDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("browser e2e skipped in -short mode")
	}
	browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startCluster(t, ctx)
	defer c.stop()
	nodes := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		nodes[name] = c.serve(name, "--relay", c.relayURL())
	}
	nodes["phone"] = c.serve("phone", "--relay", c.relayURL(), "--link")
	runDriver(t, ctx, "changes.mjs", map[string]any{"nodes": nodes, "profile": filepath.Join(c.root, "chromium-profile")},
		func(args []string) error { return control(ctx, c.procs, args) })
}
