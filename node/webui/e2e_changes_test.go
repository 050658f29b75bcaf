package webui_test

import (
	"context"
	"os"
	"os/exec"
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
	root := t.TempDir()
	exe := filepath.Join(root, "spacepanda")
	build := exec.CommandContext(ctx, "go", "build", "-o", exe, "github.com/spacepanda/spacepanda/cmd/spacepanda")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	relay := &proc{t: t, name: "relay", exe: exe, port: freePort(t), logDir: root}
	relay.args = []string{"relay", "--data", filepath.Join(root, "relay"), "--listen", relay.addr()}
	relay.ready = "spacepanda relay serving on "
	procs := map[string]*proc{"relay": relay}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
		if t.Failed() {
			for _, p := range procs {
				if b, err := os.ReadFile(p.logPath()); err == nil {
					t.Logf("--- %s log (last 3000 bytes) ---\n%s", p.name, tail(b, 3000))
				}
			}
		}
	}()
	if err := relay.start(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol", "phone"} {
		p := &proc{t: t, name: name, exe: exe, port: freePort(t), logDir: root, ready: "spacepanda: ", health: "/healthz"}
		p.args = []string{"serve", "--data", filepath.Join(root, name), "--listen", p.addr(), "--name", name,
			"--relay", "http://" + relay.addr()}
		if name == "phone" {
			p.args = append(p.args, "--link")
		}
		procs[name] = p
		if err := p.start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes[name] = "http://" + p.addr() + "/"
	}
	runDriver(t, ctx, "changes.mjs", map[string]any{"nodes": nodes, "profile": filepath.Join(root, "chromium-profile")},
		func(args []string) error { return control(ctx, procs, args) })
}
