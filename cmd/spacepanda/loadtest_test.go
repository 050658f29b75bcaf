package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadtest runs `spacepanda loadtest --json` briefly in both modes (end
// to end: a relay and three node processes) and checks the object: every
// post was delivered to every other member, the figures are there, and
// the plot was written.
func TestLoadtest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		mode    string
		perPost int64
	}{
		{"relay-only", []string{"--relay-only", "--clients", "4"}, "relay-only", 1},
		{"end-to-end", []string{"--clients", "3", "--channels", "1", "--members", "3", "--rate", "20", "--profile", "PROF", "--node-procs", "3"}, "end-to-end", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plot := filepath.Join(t.TempDir(), "lat.svg")
			prof := t.TempDir()
			args := append([]string{"loadtest", "--duration", "2s", "--json", "--plot", plot}, c.args...)
			for i, a := range args {
				if a == "PROF" {
					args[i] = prof
				}
			}
			code, out, stderr := runSelf(t, 3*time.Minute, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("not one JSON object: %q", out)
			}
			for _, k := range []string{"mode", "backend", "clients", "duration_s", "posts_per_s", "delivered_per_s", "p50_ms", "p99_ms"} {
				if _, ok := r[k]; !ok {
					t.Errorf("no %q in %s", k, out)
				}
			}
			posts, deliv := int64(r["posts"].(float64)), int64(r["delivered"].(float64))
			if r["mode"] != c.mode || r["backend"] != "sqlite" || posts == 0 || deliv < posts*c.perPost || r["post_errors"].(float64) != 0 {
				t.Fatalf("result %s", out)
			}
			if st, err := os.Stat(plot); err != nil || st.Size() == 0 {
				t.Fatalf("plot: %v", err)
			}
			if c.mode == "end-to-end" { // --profile: the relay's and every node's CPU profiles
				for _, f := range []string{"relay.pprof", "n0.pprof", "n1.pprof", "n2.pprof", "relay.trace", "n0.trace"} {
					if st, err := os.Stat(filepath.Join(prof, f)); err != nil || st.Size() == 0 {
						t.Errorf("profile %s: %v", f, err)
					}
				}
				// The nodes ran with the GOMAXPROCS asked for.
				if r["node_procs"] != 3.0 {
					t.Errorf("node_procs = %v in %s", r["node_procs"], out)
				}
				// What a message cost the nodes: nodes that encrypt, store
				// and deliver spend CPU, read from /proc where there is one.
				if _, err := os.Stat("/proc/self/stat"); err == nil {
					for _, k := range []string{"node_cpu_ms_per_post", "busy_pct"} {
						if v, _ := r[k].(float64); v <= 0 {
							t.Errorf("%s = %v in %s", k, r[k], out)
						}
					}
				}
			}
			t.Logf("%s", out)
		})
	}
}
