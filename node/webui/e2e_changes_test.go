package webui_test

import (
	"path/filepath"
	"testing"
)

// TestBrowserChangesAndDevices drives e2e/changes.mjs against real
// processes: a relay, alice, bob and carol, and "phone", a second device
// of alice started with `serve --link`. The driver stops the relay so
// that a removal and a role change queue (the Members view shows them as
// pending), restarts it so that they land or fail (shown with the
// reason), then lists alice's devices, draws a link code and links phone
// with it from phone's own page.
func TestBrowserChangesAndDevices(t *testing.T) {
	ctx, c, nodes := relayTrio(t)
	nodes["phone"] = c.serve("phone", "--relay", c.relayURL(), "--link")
	runDriver(t, ctx, "changes.mjs", map[string]any{"nodes": nodes, "profile": filepath.Join(c.root, "chromium-profile")},
		func(args []string) error { return control(ctx, c.procs, args) })
}
